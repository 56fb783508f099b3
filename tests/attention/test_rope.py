"""RoPE: scores depend on relative position only; the module is the function; bad input."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from refimpl.attention import RotaryEmbedding, rope


@given(i=st.integers(0, 500), j=st.integers(0, 500), shift=st.integers(0, 500),
       seed=st.integers(0, 2**16))
def test_rope_scores_depend_on_relative_position(i, j, shift, seed):
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, 1, 16, dtype=torch.float64, generator=g)
    def score(a, b):
        return (rope(q, torch.tensor([a])) * rope(k, torch.tensor([b]))).sum()
    torch.testing.assert_close(score(i, j), score(i + shift, j + shift), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(rope(q, torch.tensor([i])).norm(), q.norm())


def test_rope_module_is_the_function_and_rejects_odd_dims():
    x = torch.randn(3, 5, 8)
    module = RotaryEmbedding(8, 500.0)
    # Consecutive positions read a slice of the table, others gather its rows (the last one
    # spans 5 positions like a range but is not one).
    for positions in (torch.arange(5), torch.arange(200, 205), torch.tensor([3, 1, 4, 1, 5]),
                      torch.tensor([0, 2, 2, 3, 4])):
        torch.testing.assert_close(module(x, positions), rope(x, positions, 500.0))
    torch.testing.assert_close(rope(x, torch.zeros(5, dtype=torch.long)), x)
    with pytest.raises(ValueError, match="even"):
        RotaryEmbedding(7)
    with pytest.raises(ValueError, match="even"):
        rope(torch.randn(2, 3, 5), torch.arange(3))
    with pytest.raises(ValueError, match="positions"):
        rope(x, torch.arange(4))


def test_bad_rope_configurations_raise():
    with pytest.raises(ValueError, match="greater than 1"):
        RotaryEmbedding(8, 1.0)
    with pytest.raises(ValueError, match="base must be a finite number"):
        RotaryEmbedding(8, float("inf"))
    with pytest.raises(TypeError, match="dim must be an integer"):
        RotaryEmbedding(8.0)
    with pytest.raises(ValueError, match="last dimension must be 8"):
        RotaryEmbedding(8)(torch.randn(1, 3, 6), torch.arange(3))

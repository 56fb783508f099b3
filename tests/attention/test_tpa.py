"""Tensor product attention: RoPE on the factors is RoPE on the materialised queries and keys."""

import pytest
import torch

from refimpl.attention import TensorProductAttention, causal_attention, rope

from .attention_layers import D, build


def test_tpa_rope_on_factors_equals_rope_on_materialised_qk():
    m = build("tpa")
    x = torch.randn(2, 10, D, dtype=torch.float64)
    pos = torch.arange(10)
    with torch.no_grad():
        q_ref, k_ref = [], []
        for name, out in (("q", q_ref), ("k", k_ref)):
            a, b = m.factors(x, name)
            on_materialised = rope(m.materialize(a, b), pos)
            on_factors = m.materialize(a, rope(b.transpose(1, 2), pos).transpose(1, 2))
            torch.testing.assert_close(on_factors, on_materialised, rtol=0, atol=1e-13)
            out.append(on_materialised)
        v = m.materialize(*m.factors(x, "v"))
        ref = m.w_o(m._merge(causal_attention(q_ref[0], k_ref[0], v)))
        torch.testing.assert_close(m(x), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("make,match", [
    (lambda: TensorProductAttention(32, 4, 8, k_rank=0), "k_rank must be at least 1"),
    (lambda: TensorProductAttention(32, 4, 8, q_rank=-2), "q_rank must be at least 1"),
    (lambda: TensorProductAttention(30, 4), "n_heads=4 must divide d_model=30"),
])
def test_bad_configurations_raise(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()

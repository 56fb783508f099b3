"""Low-rank affinity attention pooling (LAMA): the factored heads are the bilinear heads."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from refimpl.attention import AffinityPooling, affinity_parameters


@given(d=st.integers(1, 12), heads=st.integers(1, 5), rank=st.integers(1, 6),
       dc=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_low_rank_heads_equal_materialised_bilinear_forms(d, heads, rank, dc, seed):
    torch.manual_seed(seed)
    pool = AffinityPooling(d, heads, rank, d_context=dc).double()
    h = torch.randn(2, 5, d, dtype=torch.float64)
    W = pool.head_matrices()
    assert W.shape == (heads, dc, d)
    assert all(torch.linalg.matrix_rank(W[j]) <= min(rank, dc, d) for j in range(heads))
    direct = torch.einsum("c,jcd,btd->btj", pool.context, W, h)
    torch.testing.assert_close(pool.scores(h), direct, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rank", [None, 3])
def test_weights_are_distributions_and_padding_is_ignored(rank):
    torch.manual_seed(0)
    pool = AffinityPooling(8, 4, rank).double()
    h = torch.randn(3, 6, 8, dtype=torch.float64)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[1, 4:] = False
    pooled, w = pool(h, mask)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(3, 4, dtype=torch.float64))
    assert torch.all(w[1, 4:] == 0)
    h2 = h.clone()
    h2[1, 4:] = 1e3  # changing padded positions changes nothing
    torch.testing.assert_close(pool(h2, mask)[0], pooled)
    assert pooled.shape == (3, 4 * 8)
    torch.testing.assert_close(pooled.view(3, 4, 8)[0, 2], (w[0, :, 2:3] * h[0]).sum(0))


@pytest.mark.parametrize("rank", [None, 1, 5])
def test_parameter_count_matches_closed_form(rank):
    pool = AffinityPooling(20, 6, rank, d_context=12)
    assert sum(p.numel() for p in pool.parameters()) == affinity_parameters(20, 6, rank, 12)
    if rank is not None:
        assert affinity_parameters(20, 6, rank, 12) < affinity_parameters(20, 6, None, 12)


def test_bad_configuration():
    with pytest.raises(ValueError, match="heads must be at least 1"):
        AffinityPooling(8, 0)
    with pytest.raises(ValueError, match="rank must be at least 1"):
        AffinityPooling(8, 2, 0)
    with pytest.raises(ValueError, match="activation=True needs a low-rank"):
        AffinityPooling(8, 2, None, activation=True)
    with pytest.raises(ValueError, match="h must have width 8"):
        AffinityPooling(8, 2, 2)(torch.randn(1, 3, 5))
    with pytest.raises(ValueError, match="at least one unmasked token"):
        AffinityPooling(8, 2, 2)(torch.randn(1, 3, 8), torch.zeros(1, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="rank must be an integer"):
        affinity_parameters(8, 2, 2.5)

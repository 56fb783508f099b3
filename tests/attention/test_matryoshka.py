"""MatryoshkaKV: exact at full rank, PCA makes truncation exact on low-rank data, cache sizes."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from refimpl.attention import (
    GroupedQueryAttention,
    MatryoshkaKVAttention,
    MultiHeadLatentAttention,
    pca_basis,
)

D = 32


def _layer(rope_base=10000.0, seed=0):
    torch.manual_seed(seed)
    return GroupedQueryAttention(D, 4, 2, rope_base=rope_base).double()


def test_full_rank_is_the_wrapped_layer_for_any_orthogonal_basis():
    base = _layer()
    m = MatryoshkaKVAttention(base)
    x = torch.randn(2, 9, D, dtype=torch.float64)
    with torch.no_grad():
        m.u_k.weight = torch.linalg.qr(torch.randn(2, 8, 8, dtype=torch.float64))[0]
        m.u_v.weight = torch.linalg.qr(torch.randn(2, 8, 8, dtype=torch.float64))[0]
        torch.testing.assert_close(m(x), base(x), rtol=0, atol=1e-12)


@given(rk=st.integers(1, 8), rv=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_pca_truncation_is_exact_when_keys_and_values_have_that_rank(rk, rv, seed):
    # Without RoPE, keys and values of rank r_K, r_V (per KV head) are kept exactly by the
    # leading r_K, r_V PCA directions.
    base = _layer(rope_base=None, seed=seed % 5)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for w, r in ((base.w_k.weight, rk), (base.w_v.weight, rv)):
            for h in range(2):
                block = w[h * 8:(h + 1) * 8]
                block.copy_(torch.randn(8, r, dtype=torch.float64, generator=g)
                            @ torch.randn(r, D, dtype=torch.float64, generator=g))
    m = MatryoshkaKVAttention(base)
    x = torch.randn(2, 12, D, dtype=torch.float64, generator=g)
    m.init_pca(x)
    m.key_rank, m.value_rank = rk, rv
    with torch.no_grad():
        torch.testing.assert_close(m(x), base(x), rtol=1e-9, atol=1e-9)


def test_pca_basis_is_the_best_truncation():
    X = torch.randn(3, 200, 6, dtype=torch.float64) @ torch.diag(
        torch.tensor([5.0, 3, 2, 1, 0.5, 0.1], dtype=torch.float64))
    U = pca_basis(X)
    eye = torch.eye(6, dtype=torch.float64).expand(3, 6, 6)
    torch.testing.assert_close(U.transpose(-1, -2) @ U, eye)
    s = torch.linalg.svdvals(X)
    for r in range(1, 6):
        P = U[..., :r] @ U[..., :r].transpose(-1, -2)
        err = ((X - X @ P) ** 2).sum((-1, -2))
        torch.testing.assert_close(err, (s[..., r:] ** 2).sum(-1))  # Eckart–Young


def test_truncated_cache_size_and_decoding_equals_full_forward():
    m = MatryoshkaKVAttention(_layer(), key_rank=3, value_rank=5)
    x = torch.randn(2, 10, D, dtype=torch.float64)
    m.init_pca(x)
    cache = m.new_cache()
    with torch.no_grad():
        full = m(x)
        steps = torch.cat([m(x[:, :4], cache)] + [m(x[:, t:t + 1], cache) for t in range(4, 10)],
                          dim=1)
    torch.testing.assert_close(steps, full, rtol=0, atol=1e-12)
    assert cache.elements_per_token == 2 * (3 + 5)
    assert cache.numel() == 2 * 10 * 16


def test_projections_are_trainable_and_stay_orthogonal():
    m = MatryoshkaKVAttention(_layer(), key_rank=4, value_rank=4)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    x = torch.randn(2, 6, D, dtype=torch.float64)
    before = m.u_k.weight.detach().clone()
    m(x).pow(2).sum().backward()
    opt.step()
    U = m.u_k.weight.detach()
    assert not torch.allclose(U, before)
    eye = torch.eye(8, dtype=torch.float64).expand(2, 8, 8)
    torch.testing.assert_close(U.transpose(-1, -2) @ U, eye)


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match="key_rank=9 exceeds head_dim=8"):
        MatryoshkaKVAttention(_layer(), key_rank=9)
    with pytest.raises(ValueError, match="value_rank must be at least 1"):
        MatryoshkaKVAttention(_layer(), value_rank=0)
    with pytest.raises(TypeError, match="GroupedQueryAttention"):
        MatryoshkaKVAttention(MultiHeadLatentAttention(D, 4, 8, 8))

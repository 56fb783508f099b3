"""Multi-head latent attention: the absorbed form equals the plain one; what the cache holds."""

import pytest
import torch

from refimpl.attention import MultiHeadLatentAttention, rope

from .attention_layers import D, build, decode


def test_mla_absorbed_equals_plain():
    m = build("mla")
    x = torch.randn(3, 9, D, dtype=torch.float64)
    with torch.no_grad():
        plain = m(x)
        m.absorbed = True
        absorbed = m(x)
        inc, _ = decode(m, x, 3)
    torch.testing.assert_close(absorbed, plain, rtol=0, atol=1e-12)
    torch.testing.assert_close(inc, plain, rtol=0, atol=1e-12)
    # The kept absorbed weight follows in-place weight updates (as an optimizer makes them).
    with torch.no_grad():
        m.w_uv.weight.mul_(2.0)
        m.absorbed = False
        plain2 = m(x)
        m.absorbed = True
        torch.testing.assert_close(m(x), plain2, rtol=0, atol=1e-12)
    assert not torch.allclose(plain2, plain)
    # The absorbed output weight really is W_O,i W_UV,i per head.
    W = m.absorbed_output_weight()
    H, dh = m.n_heads, m.head_dim
    for i in range(H):
        ref = m.w_o.weight[:, i * dh:(i + 1) * dh] @ m.w_uv.weight[i * dh:(i + 1) * dh]
        torch.testing.assert_close(W[i].T, ref, rtol=0, atol=1e-13)


def test_mla_without_query_latent_and_cache_contents():
    m = MultiHeadLatentAttention(D, 4, 8, kv_latent_dim=6, q_latent_dim=None,
                                 rope_head_dim=4).double()
    x = torch.randn(1, 7, D, dtype=torch.float64)
    with torch.no_grad():
        inc, cache = decode(m, x, 2)
        torch.testing.assert_close(inc, m(x), rtol=0, atol=1e-12)
        # The cache holds the normalised latent (d_c) and the rotated shared key (d_h^R).
        kv = cache.append(c_kv=torch.zeros(1, 0, 6, dtype=torch.float64),
                          k_rope=torch.zeros(1, 0, 4, dtype=torch.float64))
        torch.testing.assert_close(kv["c_kv"], m.kv_norm(m.w_dkv(x)))
        torch.testing.assert_close(kv["k_rope"], rope(m.w_kr(x), torch.arange(7)))


@pytest.mark.parametrize("make,match", [
    (lambda: MultiHeadLatentAttention(32, 4, 8, kv_latent_dim=0), "kv_latent_dim must be at"),
    (lambda: MultiHeadLatentAttention(32, 4, 8, 8, rope_head_dim=3), "even"),
    (lambda: MultiHeadLatentAttention(32, 4, 8, 8, rope_base=None), "needs RoPE"),
    (lambda: MultiHeadLatentAttention(32, 4, 8, 8, q_latent_dim=2.5), "q_latent_dim must be an"),
])
def test_bad_configurations_raise(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()

"""Multi-matrix factorization attention: MFA-KR caches the pre-RoPE key and derives the value."""

import pytest
import torch

from refimpl.attention import MultiMatrixFactorizationAttention, causal_attention

from .attention_layers import D, build, decode


def test_mfa_kr_caches_the_pre_rope_key_and_derives_the_value():
    m = build("mfa-kr")
    x = torch.randn(2, 6, D, dtype=torch.float64)
    with torch.no_grad():
        _, cache = decode(m, x, 2)
        k_pre = cache.append(k_pre_rope=torch.zeros(2, 0, 16, dtype=torch.float64))["k_pre_rope"]
        torch.testing.assert_close(k_pre, m.s_k(x))
        C = m.head_dim
        v = k_pre @ (torch.eye(C, dtype=torch.float64) + m.n_mix @ torch.diag(m.alpha))
        torch.testing.assert_close(m.value_from_key(k_pre), v)
        # Reference: per-token values v_j = k_j (I + N diag α), then ordinary attention.
        pos = torch.arange(6)
        q = m.rope(m._heads(m.w_up(m.q_norm(m.s_q(x))), m.n_heads), pos)
        o = causal_attention(q, m.rope(k_pre, pos)[:, None], m.value_from_key(k_pre)[:, None])
        torch.testing.assert_close(m(x), m.w_o(m._merge(o)), rtol=0, atol=1e-12)
    assert m.s_v is None and cache.elements_per_token == C


@pytest.mark.parametrize("make,match", [
    (lambda: MultiMatrixFactorizationAttention(32, 4, 0), "head_dim must be at least 1"),
    (lambda: MultiMatrixFactorizationAttention(32, 4, 8, rope_base=None), "needs RoPE"),
    (lambda: MultiMatrixFactorizationAttention(32, 4, 16, q_latent_dim=0), "q_latent_dim"),
])
def test_bad_configurations_raise(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()

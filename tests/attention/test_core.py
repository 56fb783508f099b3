"""The shared layer machinery (refimpl/attention/_core.py): cache = full forward for every
variant, the masked kernel against SDPA, causality, RMSNorm and bad inputs."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from refimpl.attention import KINDS, RMSNorm, causal_attention

from .attention_layers import D, build, decode


# float64: agreement to rounding; float32: to 1e-5 relative to the output's scale.
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("kind", KINDS)
def test_decoding_with_cache_equals_full_forward(kind, dtype, tol):
    m = build(kind, dtype)
    x = torch.randn(2, 11, D, dtype=dtype, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = m(x)
        for prefill in (0, 4):
            inc, cache = decode(m, x, prefill)
            assert cache.length == 11
            torch.testing.assert_close(inc, full, rtol=0, atol=tol * full.abs().max().item())


def test_causal_attention_matches_sdpa():
    m = build("gqa")
    x = torch.randn(2, 13, D, dtype=torch.float64)
    with torch.no_grad():
        q, k, v = m.qkv(x)
        ours = causal_attention(q, k, v)
        peer = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        torch.testing.assert_close(ours, peer, rtol=0, atol=1e-13)
        # GQA without repeating the KV heads gives the same as with them.
        Hk = m.n_kv_heads
        G = m.n_heads // Hk
        torch.testing.assert_close(causal_attention(q, k[:, ::G], v[:, ::G]), ours,
                                   rtol=0, atol=1e-13)
        assert k.shape[1] // G == Hk


@given(kind=st.sampled_from(KINDS), T=st.integers(2, 12), cut=st.integers(1, 11),
       seed=st.integers(0, 2**16))
def test_no_future_leakage(kind, T, cut, seed):
    cut = min(cut, T - 1)
    m = build(kind, seed=seed % 7)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, T, D, dtype=torch.float64, generator=g)
    y = x.clone()
    y[:, cut:] = 10 * torch.randn(1, T - cut, D, dtype=torch.float64, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(m(x)[:, :cut], m(y)[:, :cut], rtol=0, atol=1e-12)
        assert not torch.allclose(m(x)[:, cut:], m(y)[:, cut:])


def test_rms_norm_normalises_the_last_axis():
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    norm = RMSNorm(8).double()
    y = norm(x)
    torch.testing.assert_close(y.pow(2).mean(-1), torch.ones(3, 5, dtype=torch.float64),
                               rtol=1e-5, atol=0)
    with pytest.raises(ValueError, match="dim must be at least 1"):
        RMSNorm(0)
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        RMSNorm(4, eps=-1.0)


def test_bad_inputs_raise():
    m = build("mha")
    with pytest.raises(ValueError, match="d_model=32"):
        m(torch.randn(1, 3, 16, dtype=torch.float64))
    with pytest.raises(ValueError, match="3 dimensions"):
        m(torch.randn(3, D, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        m(torch.full((1, 2, D), math.nan, dtype=torch.float64))
    with pytest.raises(TypeError, match="floating-point"):
        m(torch.ones(1, 2, D, dtype=torch.int64))
    with pytest.raises(ValueError, match="expected 5 keys"):
        causal_attention(torch.randn(1, 1, 2, 4), torch.randn(1, 1, 4, 4), torch.randn(1, 1, 4, 4),
                         q_start=3)
    with pytest.raises(ValueError, match="key heads"):
        causal_attention(torch.randn(1, 3, 2, 4), torch.randn(1, 2, 2, 4), torch.randn(1, 2, 2, 4))

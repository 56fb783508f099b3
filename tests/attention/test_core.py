"""The shared layer machinery (refimpl/attention/_core.py): cache = full forward for every
variant, the fused kernel against the reference one (outputs, gradients, prefill and decoding,
the switch between them), ``qkv`` + SDPA = the training forward, causality, RMSNorm and bad
inputs."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from refimpl.attention import (
    IMPLS,
    KINDS,
    RMSNorm,
    attention_impl,
    causal_attention,
    get_attention_impl,
    set_attention_impl,
)

from .attention_layers import VARIANTS, D, build, build_variant, decode, decode_chunks

sdpa = torch.nn.functional.scaled_dot_product_attention

# Tolerances of the fused kernel against the reference, relative to the output's max |·|.
# float64 and float32: agreement to rounding (float32: eps = 1.2e-7, so 1e-5 leaves a margin
# of about 100 eps for the reassociated sums of the fused kernel's blocked softmax).
# bfloat16 has 8 significant bits (eps = 2^-8 = 3.9e-3): the reference rounds its scores,
# its probabilities and its output to bfloat16 (three roundings of up to eps/2 each), the
# fused kernel accumulates in float32 and rounds once, and the output projection rounds
# again; four eps (2^-6) bounds the difference with a margin (measured: about one eps).
TOL = {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 2.0**-6}


def _close(actual, expected, tol):
    scale = expected.abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=0, atol=tol * scale)


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


@pytest.mark.parametrize("impl", IMPLS)
def test_causal_attention_matches_sdpa(impl):
    m = build("gqa")
    x = torch.randn(2, 13, D, dtype=torch.float64)
    with torch.no_grad():
        q, k, v, _ = m.qkv(x)
        ours = causal_attention(q, k, v, impl=impl)
        peer = sdpa(q, k, v, is_causal=True)
        torch.testing.assert_close(ours, peer, rtol=0, atol=1e-13)
        # GQA without repeating the KV heads gives the same as with them.
        Hk = m.n_kv_heads
        G = m.n_heads // Hk
        torch.testing.assert_close(causal_attention(q, k[:, ::G], v[:, ::G], impl=impl), ours,
                                   rtol=0, atol=1e-13)
        assert k.shape[1] // G == Hk


# ---- the fused kernel against the reference -------------------------------------------------

@given(B=st.integers(1, 2), Hk=st.integers(1, 3), G=st.integers(1, 3), Tq=st.integers(1, 6),
       q_start=st.integers(0, 5), dk=st.integers(1, 9), dv=st.integers(1, 9),
       values=st.sampled_from(["own", "leading keys"]), scale=st.none() | st.floats(0.1, 2.0),
       seed=st.integers(0, 2**16))
def test_fused_kernel_equals_reference(B, Hk, G, Tq, q_start, dk, dv, values, scale, seed):
    # Grouped heads, decoding steps (Tq = 1), continuations (q_start > 0), dk ≠ dv either way,
    # and values that are a view of the keys' leading columns (absorbed MLA's case).
    g = torch.Generator().manual_seed(seed)
    Tk = q_start + Tq
    q = torch.randn(B, Hk * G, Tq, dk, dtype=torch.float64, generator=g)
    if values == "leading keys":
        dk = max(dk, dv + 1)
        q = torch.randn(B, Hk * G, Tq, dk, dtype=torch.float64, generator=g)
        k = torch.randn(B, Hk, Tk, dk, dtype=torch.float64, generator=g)
        v = k[..., :dv]
    else:
        k = torch.randn(B, Hk, Tk, dk, dtype=torch.float64, generator=g)
        v = torch.randn(B, Hk, Tk, dv, dtype=torch.float64, generator=g)
    ref = causal_attention(q, k, v, q_start=q_start, scale=scale, impl="reference")
    fused = causal_attention(q, k, v, q_start=q_start, scale=scale, impl="sdpa")
    assert fused.shape == ref.shape == (B, Hk * G, Tq, dv)
    _close(fused, ref, 1e-13)
    # The reference is the defining formula, head by head and row by row.
    s = scale if scale is not None else dk**-0.5
    h, i = Hk * G - 1, Tq - 1                    # the last head reads KV head Hk - 1
    p = torch.softmax(q[0, h, i] @ k[0, Hk - 1, : q_start + i + 1].T * s, dim=-1)
    torch.testing.assert_close(ref[0, h, i], p @ v[0, Hk - 1, : q_start + i + 1],
                               rtol=0, atol=1e-13)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", VARIANTS)
def test_fused_training_forward_equals_reference(name, dtype):
    if name == "matryoshka" and dtype == torch.bfloat16:
        pytest.skip("torch's orthogonal parametrization gives no orthogonal basis in bfloat16")
    m = build_variant(name, dtype)
    x = torch.randn(2, 17, D, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    x = x.to(dtype)
    with torch.no_grad():
        fused = m(x)
        with attention_impl("reference"):
            ref = m(x)
        _close(fused, ref, TOL[dtype])
        if dtype == torch.bfloat16:  # both are bfloat16 roundings of the float64 forward
            exact = build_variant(name)(x.double())
            for out in (fused, ref):
                _close(out.double(), exact, TOL[dtype])


@pytest.mark.parametrize("name", VARIANTS)
def test_fused_gradients_equal_reference(name):
    m = build_variant(name)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 9, D, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(2, 9, D, dtype=torch.float64, generator=g)
    inputs = [x, *m.parameters()]
    grads = {}
    for impl in IMPLS:
        with attention_impl(impl):
            loss = (m(x) * w).sum()
        grads[impl] = torch.autograd.grad(loss, inputs)
    for fused, ref in zip(grads["sdpa"], grads["reference"], strict=True):
        _close(fused, ref, 1e-10)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", VARIANTS)
def test_prefill_continuation_and_decoding_equal_training_rows(name, impl):
    # A prefill (q_start = 0), a multi-token continuation (q_start > 0: the offset mask) and
    # single-token steps reproduce the training forward's rows, on either kernel.
    m = build_variant(name)
    x = torch.randn(2, 12, D, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad(), attention_impl(impl):
        full = m(x)
        for sizes in ((3, 4), (1, 5, 2), (6,)):
            inc, cache = decode_chunks(m, x, sizes)
            assert cache.length == 12
            _close(inc, full, 1e-12)
    with torch.no_grad(), attention_impl("reference"):
        _close(full, m(x), 1e-12)


# ---- the switch between them ---------------------------------------------------------------

def test_attention_impl_switch_restores_the_default():
    assert get_attention_impl() == "sdpa"
    with attention_impl("reference") as name:
        assert name == "reference" and get_attention_impl() == "reference"
        with attention_impl("sdpa"):
            assert get_attention_impl() == "sdpa"
        assert get_attention_impl() == "reference"
    assert get_attention_impl() == "sdpa"
    with pytest.raises(RuntimeError, match="inside the block"):
        with attention_impl("reference"):
            raise RuntimeError("inside the block")
    assert get_attention_impl() == "sdpa"
    previous = set_attention_impl("reference")
    try:
        assert previous == "sdpa" and get_attention_impl() == "reference"
    finally:
        assert set_attention_impl(previous) == "reference"
    assert get_attention_impl() == "sdpa"
    q = torch.randn(1, 2, 3, 4)
    for bad in ("flash", "SDPA", 3, None):
        with pytest.raises(ValueError, match="impl must be one of"):
            attention_impl(bad)
        with pytest.raises(ValueError, match="impl must be one of"):
            set_attention_impl(bad)
        if bad is not None:  # impl=None is the default
            with pytest.raises(ValueError, match="impl must be one of"):
                causal_attention(q, q, q, impl=bad)
    assert get_attention_impl() == "sdpa"


class _SdpaCalled(Exception):
    pass


def _no_sdpa(*args, **kwargs):
    raise _SdpaCalled


@pytest.mark.parametrize("name", VARIANTS)
def test_the_two_kernels_are_different_code_paths(name, monkeypatch):
    # The default runs every layer's forward (and decoding step) through SDPA; the reference
    # never calls it. TPA's single-token step works on its cached factors on either setting;
    # a decoding step whose values are narrower than its keys and not a view of them (plain
    # MLA, truncated MatryoshkaKV) runs the explicit arithmetic on either setting too.
    m = build_variant(name)
    x = torch.randn(1, 6, D, dtype=torch.float64)
    with torch.no_grad():
        expected, _ = decode(m, x, 5)
        monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", _no_sdpa)
        with pytest.raises(_SdpaCalled):
            m(x)
        cache = m.new_cache()
        with attention_impl("reference"):
            m(x[:, :5], cache)
        if name in ("tpa", "mla", "matryoshka"):
            m(x[:, 5:], cache)
        else:
            with pytest.raises(_SdpaCalled):
                m(x[:, 5:], cache)
        with attention_impl("reference"):
            _close(decode(m, x, 5)[0], expected, 1e-12)
    with pytest.raises(_SdpaCalled):
        causal_attention(x[None], x[None], x[None])
    causal_attention(x[None], x[None], x[None], impl="reference")


# ---- qkv: softmax attention on the layer's own Q, K, V -------------------------------------

@pytest.mark.parametrize("name", VARIANTS)
def test_qkv_then_sdpa_then_w_o_is_the_training_forward(name):
    m = build_variant(name)
    x = torch.randn(2, 13, D, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        q, k, v, scale = m.qkv(x)
        assert q.shape[:3] == k.shape[:3] == v.shape[:3] == (2, m.n_heads, 13)
        assert q.shape[-1] == k.shape[-1] and isinstance(scale, float)
        o = sdpa(q, k, v, is_causal=True, scale=scale)
        full = m(x)
        _close(m.w_o(m._merge(o)), full, 1e-12)
    with pytest.raises(ValueError, match=f"d_model={D}"):
        m.qkv(torch.randn(1, 3, D + 1, dtype=torch.float64))


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

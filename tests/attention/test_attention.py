"""Attention variants: cache = full forward, absorbed MLA, TPA's RoPE, cache sizes, parameters,
causality, RoPE and bad configurations."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from refimpl.attention import (
    KINDS,
    GroupedQueryAttention,
    KVCache,
    MultiHeadAttention,
    MultiHeadLatentAttention,
    MultiMatrixFactorizationAttention,
    RotaryEmbedding,
    TensorProductAttention,
    TinyLM,
    attention_parameters,
    causal_attention,
    kv_cache_elements,
    make_attention,
    rope,
)

D = 32
CONFIGS = {
    "mha": {"n_heads": 4},
    "gqa": {"n_heads": 4, "n_kv_heads": 2},
    "mqa": {"n_heads": 4},
    "mla": {"n_heads": 4, "head_dim": 8, "kv_latent_dim": 12, "q_latent_dim": 10,
            "rope_head_dim": 4},
    "mfa": {"n_heads": 6, "head_dim": 16, "q_latent_dim": 12},
    "mfa-kr": {"n_heads": 6, "head_dim": 16},
    "tpa": {"n_heads": 4, "head_dim": 8, "q_rank": 3, "k_rank": 2, "v_rank": 1},
}


def build(kind, dtype=torch.float64, seed=0, **cfg):
    torch.manual_seed(seed)
    m = make_attention(kind, D, **(cfg or CONFIGS[kind])).to(dtype)
    if kind == "mfa-kr":  # α starts at 0 (value = key); make the value path non-trivial
        torch.nn.init.normal_(m.alpha)
    return m


def decode(m, x, prefill):
    """Prefill ``prefill`` tokens at once, then one token at a time."""
    cache = m.new_cache()
    outs = [m(x[:, :prefill], cache)] if prefill else []
    outs += [m(x[:, t:t + 1], cache) for t in range(prefill, x.shape[1])]
    return torch.cat(outs, dim=1), cache


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


# ---- cache sizes ---------------------------------------------------------------------------

def _config(kind, data):
    nh = data.draw(st.integers(1, 6), label="n_heads")
    dh = 2 * data.draw(st.integers(1, 6), label="head_dim/2")
    if kind == "mha" or kind == "mqa":
        return {"n_heads": nh, "head_dim": dh}
    if kind == "gqa":
        g = data.draw(st.sampled_from([d for d in range(1, nh + 1) if nh % d == 0]), label="g")
        return {"n_heads": nh, "n_kv_heads": g, "head_dim": dh}
    if kind == "mla":
        return {"n_heads": nh, "head_dim": dh, "kv_latent_dim": data.draw(st.integers(1, 20)),
                "q_latent_dim": data.draw(st.none() | st.integers(1, 20)),
                "rope_head_dim": 2 * data.draw(st.integers(1, 4))}
    if kind in ("mfa", "mfa-kr"):
        return {"n_heads": nh, "head_dim": dh,
                "q_latent_dim": data.draw(st.none() | st.integers(1, 20))}
    return {"n_heads": nh, "head_dim": dh, "q_rank": data.draw(st.integers(1, 6)),
            "k_rank": data.draw(st.integers(1, 6)), "v_rank": data.draw(st.integers(1, 6))}


@given(kind=st.sampled_from(KINDS), data=st.data(), B=st.integers(1, 3), T=st.integers(1, 40),
       d=st.integers(1, 24))
def test_cache_size_equals_formula(kind, data, B, T, d):
    cfg = _config(kind, data)
    m = make_attention(kind, d, **cfg)
    per_token = kv_cache_elements(kind, **cfg)
    assert m.cache_elements_per_token == per_token
    cache = m.new_cache()
    with torch.no_grad():
        m(torch.randn(B, T, d), cache)
    assert cache.length == T
    assert cache.numel() == B * T * per_token
    assert cache.nbytes() == 4 * B * T * per_token
    assert f"{per_token} elements/token" in repr(cache)


CATALOG_TABLE = [  # n_h = 32, d_h = 128 (chapter 11's KV-cache table)
    ("mha", {}, 8192),
    ("gqa", {"n_kv_heads": 8}, 2048),
    ("mqa", {}, 256),
    ("mla", {"kv_latent_dim": 512, "rope_head_dim": 64}, 576),
    ("mfa", {"head_dim": 256}, 512),
    ("mfa-kr", {"head_dim": 256}, 256),
    ("tpa", {"k_rank": 2, "v_rank": 2}, 640),
]


@pytest.mark.parametrize("kind,extra,expected", CATALOG_TABLE)
def test_catalog_kv_cache_table(kind, extra, expected):
    cfg = {"n_heads": 32, "head_dim": 128, **extra}
    assert kv_cache_elements(kind, **cfg) == expected
    with torch.device("meta"):  # the module's own cache layout, without allocating weights
        m = make_attention(kind, 4096, **cfg)
    assert m.cache_elements_per_token == expected


# ---- parameter counts ----------------------------------------------------------------------

@given(kind=st.sampled_from(KINDS), data=st.data(), d=st.integers(1, 40))
def test_parameter_count_equals_closed_form(kind, data, d):
    cfg = _config(kind, data)
    with torch.device("meta"):
        m = make_attention(kind, d, **cfg)
    assert sum(p.numel() for p in m.parameters()) == attention_parameters(kind, d, **cfg)


@given(n=st.integers(1, 8), g_pick=st.integers(0, 7), dh=st.integers(1, 8))
def test_gqa_parameters_match_the_mfa_papers_table(n, g_pick, dh):
    divisors = [g for g in range(1, n + 1) if n % g == 0]
    g = divisors[g_pick % len(divisors)]
    d = n * dh
    assert attention_parameters("gqa", d, n_heads=n, n_kv_heads=g) == (2 + 2 * g / n) * d * d
    assert attention_parameters("mha", d, n_heads=n) == 4 * d * d


# ---- causality -----------------------------------------------------------------------------

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


# ---- RoPE ----------------------------------------------------------------------------------

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
    for positions in (torch.arange(5), torch.arange(200, 205), torch.tensor([3, 1, 4, 1, 5])):
        torch.testing.assert_close(module(x, positions), rope(x, positions, 500.0))
    torch.testing.assert_close(rope(x, torch.zeros(5, dtype=torch.long)), x)
    with pytest.raises(ValueError, match="even"):
        RotaryEmbedding(7)
    with pytest.raises(ValueError, match="even"):
        rope(torch.randn(2, 3, 5), torch.arange(3))
    with pytest.raises(ValueError, match="positions"):
        rope(x, torch.arange(4))


# ---- the cache object and bad input --------------------------------------------------------

def test_kv_cache_grows_and_keeps_its_contents():
    c = KVCache({"k": (2, 3)})
    chunks = [torch.randn(2, n, 2, 3) for n in (1, 20, 1, 50)]
    for ch in chunks:
        out = c.append(k=ch)
    torch.testing.assert_close(out["k"], torch.cat(chunks, dim=1))
    assert c.length == 72 and c.numel() == 2 * 72 * 6 and c.nbytes() == 4 * c.numel()
    with pytest.raises(ValueError, match="fields"):
        c.append(v=chunks[0])
    with pytest.raises(ValueError, match="shape"):
        c.append(k=torch.randn(2, 1, 3, 2))
    with pytest.raises(ValueError, match="batch"):
        c.append(k=torch.randn(3, 1, 2, 3))


@pytest.mark.parametrize("make,match", [
    (lambda: MultiHeadAttention(30, 4), "n_heads=4 must divide d_model=30"),
    (lambda: GroupedQueryAttention(32, 8, 3), "n_kv_heads=3 must divide n_heads=8"),
    (lambda: GroupedQueryAttention(32, 0, 1), "n_heads must be at least 1"),
    (lambda: TensorProductAttention(32, 4, 8, k_rank=0), "k_rank must be at least 1"),
    (lambda: TensorProductAttention(32, 4, 8, q_rank=-2), "q_rank must be at least 1"),
    (lambda: TensorProductAttention(30, 4), "n_heads=4 must divide d_model=30"),
    (lambda: MultiHeadLatentAttention(32, 4, 8, kv_latent_dim=0), "kv_latent_dim must be at"),
    (lambda: MultiHeadLatentAttention(32, 4, 8, 8, rope_head_dim=3), "even"),
    (lambda: MultiMatrixFactorizationAttention(32, 4, 0), "head_dim must be at least 1"),
    (lambda: MultiMatrixFactorizationAttention(32, 4, 8, rope_base=None), "needs RoPE"),
    (lambda: MultiHeadLatentAttention(32, 4, 8, 8, rope_base=None), "needs RoPE"),
    (lambda: MultiMatrixFactorizationAttention(32, 4, 16, q_latent_dim=0), "q_latent_dim"),
    (lambda: make_attention("mqa", 32, n_heads=4, n_kv_heads=2), "unexpected"),
    (lambda: make_attention("lsh", 32, n_heads=4), "kind must be one of"),
    (lambda: kv_cache_elements("mla", n_heads=4, head_dim=8), "needs kv_latent_dim"),
])
def test_bad_configurations_raise(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


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


# ---- the tiny language model ---------------------------------------------------------------

@pytest.mark.parametrize("kind", ["mha", "mla", "mfa-kr", "tpa"])
def test_tiny_lm_decoding_equals_full_forward(kind):
    m = TinyLM(D, 2, kind, CONFIGS[kind], seed=3).double()
    tokens = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = m(tokens)
        caches = m.new_caches()
        steps = [m(tokens[:, :5], caches)] + [m(tokens[:, t:t + 1], caches) for t in range(5, 12)]
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=0, atol=1e-11)
    assert sum(c.numel() for c in caches) == 2 * 12 * m.cache_elements_per_token
    assert m.cache_elements_per_token == 2 * kv_cache_elements(
        kind, **{"head_dim": D // 4, **CONFIGS[kind]})
    # Same seed, same model.
    again = TinyLM(D, 2, kind, CONFIGS[kind], seed=3).double()
    torch.testing.assert_close(again(tokens), full, rtol=0, atol=0)


def test_tiny_lm_rejects_bad_tokens():
    m = TinyLM(16, 1, "mqa", {"n_heads": 2})
    with pytest.raises(TypeError, match="integer"):
        m(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"\[0, 256\)"):
        m(torch.tensor([[1, 256]]))
    with pytest.raises(ValueError, match="one cache per layer"):
        m(torch.tensor([[1, 2]]), [])


# ---- decoding cost -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_decode_flops_per_cached_token_match_counted_matmuls(kind):
    from torch.utils.flop_counter import FlopCounterMode

    from refimpl.attention import decode_attention_flops, prefilled_decode_step

    cfg = {"head_dim": 8, **CONFIGS[kind]}
    layer = build(kind, torch.float32)
    if kind == "mla":
        layer.absorbed = True
    counted = []
    for context in (40, 72):
        step, _ = prefilled_decode_step(layer, context)
        step()  # grow the cache's storage outside the count
        with FlopCounterMode(display=False) as fc:
            step()
        counted.append(fc.get_total_flops())
    per_token = (counted[1] - counted[0]) // 32
    # Elementwise work (RoPE of MFA-KR's cached keys, TPA's weighting by its a factors) is
    # not a matmul and is not counted.
    elementwise = 0
    if kind == "mfa-kr":
        elementwise = 3 * cfg["head_dim"]
    if kind == "tpa":
        elementwise = 2 * (cfg["k_rank"] + cfg["v_rank"]) * cfg["n_heads"]
    assert per_token == decode_attention_flops(kind, **cfg) - elementwise


def test_training_helpers_are_deterministic_and_learn():
    from refimpl.attention import compare_variants, stdlib_bytes

    data = stdlib_bytes(30_000)
    assert data.dtype == torch.int64 and len(data) == 30_000 and int(data.max()) < 256
    configs = {"MQA": ("mqa", {"n_heads": 2})}
    kw = {"d_model": 16, "n_layers": 1, "steps": 40, "batch_size": 4, "seq_len": 16,
          "eval_every": 20, "lr": 1e-2}
    a = compare_variants(configs, data[:25_000], data[25_000:], **kw)["MQA"]
    b = compare_variants(configs, data[:25_000], data[25_000:], **kw)["MQA"]
    assert a["result"] == b["result"]
    assert a["result"].final_eval_loss < 0.8 * math.log(256)  # well below a uniform guess
    assert a["cache_per_token"] == 2 * 8

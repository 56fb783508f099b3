"""Closed forms: cache elements per token, parameter counts and decoding FLOPs against the
modules; the catalog's KV-cache table; bad configurations of make_attention."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from refimpl.attention import (
    KINDS,
    attention_impl,
    attention_parameters,
    decode_attention_flops,
    kv_cache_elements,
    make_attention,
)
from refimpl.experiments import prefilled_decode_step

from .attention_layers import CONFIGS, build


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


# ---- cache sizes ---------------------------------------------------------------------------

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


# ---- decoding cost -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_decode_flops_per_cached_token_match_counted_matmuls(kind):
    from torch.utils.flop_counter import FlopCounterMode

    cfg = {"head_dim": 8, **CONFIGS[kind]}
    layer = build(kind, torch.float32)
    if kind == "mla":
        layer.absorbed = True
    counted = []
    for context in (40, 72):
        step, _ = prefilled_decode_step(layer, context)
        step()  # grow the cache's storage outside the count
        # Counted on the reference kernel: FlopCounterMode does not count the CPU's fused SDPA
        # op, and the two kernels do the same products.
        with attention_impl("reference"), FlopCounterMode(display=False) as fc:
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


# ---- bad configurations --------------------------------------------------------------------

@pytest.mark.parametrize("make,match", [
    (lambda: make_attention("mqa", 32, n_heads=4, n_kv_heads=2), "unexpected"),
    (lambda: make_attention("lsh", 32, n_heads=4), "kind must be one of"),
    (lambda: make_attention("mha", 0, n_heads=4), "d_model must be at least 1"),
    (lambda: kv_cache_elements("mla", n_heads=4, head_dim=8), "needs kv_latent_dim"),
    (lambda: kv_cache_elements("gqa", n_heads=4, n_kv_heads=3, head_dim=8),
     "n_kv_heads=3 must divide n_heads=4"),
    (lambda: attention_parameters("mha", 30, n_heads=4), "n_heads=4 must divide d_model=30"),
    (lambda: decode_attention_flops("tpa", n_heads=4, head_dim=8, k_rank=0), "k_rank must be"),
])
def test_bad_configurations_raise(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()

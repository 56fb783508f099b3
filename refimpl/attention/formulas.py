"""Closed forms: KV-cache elements per token and parameter counts of each attention variant.

Every function takes a variant name (one of :data:`KINDS`) and the same keyword arguments as
:func:`make_attention`, so a configuration can be built, sized and counted from one dict.
"""

from __future__ import annotations

from refimpl.attention._checks import divides, positive_int

KINDS = ("mha", "gqa", "mqa", "mla", "mfa", "mfa-kr", "tpa")

# The keyword arguments each variant takes (beyond d_model); others are refused.
_ARGS = {
    "mha": {"n_heads", "head_dim"},
    "gqa": {"n_heads", "n_kv_heads", "head_dim"},
    "mqa": {"n_heads", "head_dim"},
    "mla": {"n_heads", "head_dim", "kv_latent_dim", "q_latent_dim", "rope_head_dim"},
    "mfa": {"n_heads", "head_dim", "q_latent_dim"},
    "mfa-kr": {"n_heads", "head_dim", "q_latent_dim"},
    "tpa": {"n_heads", "head_dim", "q_rank", "k_rank", "v_rank"},
}
_DEFAULTS = {"q_rank": 6, "k_rank": 2, "v_rank": 2, "rope_head_dim": 16}


def _config(kind: str, cfg: dict, d_model: int | None = None) -> dict:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    unknown = set(cfg) - _ARGS[kind]
    if unknown:
        raise TypeError(f"{kind} takes {sorted(_ARGS[kind])}; got unexpected {sorted(unknown)}")
    c = {k: v for k, v in _DEFAULTS.items() if k in _ARGS[kind]}
    c.update({k: v for k, v in cfg.items() if v is not None})
    if c.get("head_dim") is None and d_model is not None and kind in ("mha", "gqa", "mqa", "tpa"):
        divides(positive_int(c["n_heads"], "n_heads"), "n_heads", d_model, "d_model")
        c["head_dim"] = d_model // c["n_heads"]
    for name in _ARGS[kind] - {"q_latent_dim"}:
        if name not in c:
            raise TypeError(f"{kind} needs {name}")
        c[name] = positive_int(c[name], name)
    if kind in ("mfa", "mfa-kr"):
        c["q_latent_dim"] = positive_int(c.get("q_latent_dim", c["head_dim"]), "q_latent_dim")
    elif "q_latent_dim" in c:
        c["q_latent_dim"] = positive_int(c["q_latent_dim"], "q_latent_dim")
    if kind == "gqa":
        divides(c["n_kv_heads"], "n_kv_heads", c["n_heads"], "n_heads")
    return c


def kv_cache_elements(kind: str, **cfg) -> int:
    """Elements cached per token per layer (per sequence).

    MHA ``2 n_h d_h``; GQA ``2 g d_h``; MQA ``2 d_h``; MLA ``d_c + d_h^R``; MFA ``2C``;
    MFA-KR ``C``; TPA ``(R_K + R_V)(n_h + d_h)``.
    """
    c = _config(kind, cfg)
    nh, dh = c["n_heads"], c["head_dim"]
    if kind == "mha":
        return 2 * nh * dh
    if kind == "gqa":
        return 2 * c["n_kv_heads"] * dh
    if kind == "mqa":
        return 2 * dh
    if kind == "mla":
        return c["kv_latent_dim"] + c["rope_head_dim"]
    if kind == "mfa":
        return 2 * dh
    if kind == "mfa-kr":
        return dh
    return (c["k_rank"] + c["v_rank"]) * (nh + dh)


def attention_parameters(kind: str, d_model: int, **cfg) -> int:
    """Trainable parameters of the layer :func:`make_attention` builds (no biases; norms counted).

    GQA family: ``2 d n_h d_h + 2 d g d_h`` (MHA g = n_h, MQA g = 1; with n_h d_h = d this is
    the MFA paper's ``(2 + 2g/n) d²``). MLA: query path ``d d_c' + d_c' + d_c' n_h (d_h + d_h^R)``
    (or ``d n_h (d_h + d_h^R)`` without a query latent), KV path ``d d_c + d_c + 2 d_c n_h d_h +
    d d_h^R``, output ``n_h d_h d``. MFA: ``d C_q + C_q + C_q m C + 2 d C + m C d``; MFA-KR
    replaces ``S_V`` (``d C``) by ``N`` and ``α`` (``C² + C``). TPA:
    ``d (R_Q + R_K + R_V)(n_h + d_h) + n_h d_h d``.
    """
    d = positive_int(d_model, "d_model")
    c = _config(kind, cfg, d)
    nh, dh = c["n_heads"], c["head_dim"]
    if kind in ("mha", "gqa", "mqa"):
        g = {"mha": nh, "mqa": 1}.get(kind) or c["n_kv_heads"]
        return 2 * d * nh * dh + 2 * d * g * dh
    if kind == "mla":
        dc, dr, dq = c["kv_latent_dim"], c["rope_head_dim"], c.get("q_latent_dim")
        q_path = d * nh * (dh + dr) if dq is None else d * dq + dq + dq * nh * (dh + dr)
        return q_path + d * dc + dc + 2 * dc * nh * dh + d * dr + nh * dh * d
    if kind in ("mfa", "mfa-kr"):
        C, Cq, m = dh, c["q_latent_dim"], nh
        shared_v = C * C + C if kind == "mfa-kr" else d * C
        return d * Cq + Cq + Cq * m * C + d * C + shared_v + m * C * d
    R = c["q_rank"] + c["k_rank"] + c["v_rank"]
    return d * R * (nh + dh) + nh * dh * d


def make_attention(kind: str, d_model: int, *, rope_base: float = 10000.0, **cfg):
    """Build the attention layer ``kind`` (see :data:`KINDS`) with width ``d_model``."""
    from refimpl.attention.mfa import MultiMatrixFactorizationAttention
    from refimpl.attention.mla import MultiHeadLatentAttention
    from refimpl.attention.standard import (
        GroupedQueryAttention,
        MultiHeadAttention,
        MultiQueryAttention,
    )
    from refimpl.attention.tpa import TensorProductAttention

    _config(kind, cfg, d_model)  # refuse unknown or missing keywords early
    if kind == "mha":
        return MultiHeadAttention(d_model, rope_base=rope_base, **cfg)
    if kind == "gqa":
        return GroupedQueryAttention(d_model, rope_base=rope_base, **cfg)
    if kind == "mqa":
        return MultiQueryAttention(d_model, rope_base=rope_base, **cfg)
    if kind == "mla":
        return MultiHeadLatentAttention(d_model, rope_base=rope_base, **cfg)
    if kind in ("mfa", "mfa-kr"):
        return MultiMatrixFactorizationAttention(d_model, key_reuse=kind == "mfa-kr",
                                                 rope_base=rope_base, **cfg)
    return TensorProductAttention(d_model, rope_base=rope_base, **cfg)


def decode_attention_flops(kind: str, **cfg) -> int:
    """FLOPs per *cached token* of one decoding step's attention (multiply-add = 2 FLOPs).

    Counts the score and weighted-sum products against the cache as this package computes
    them (projections of the new token are per step, not per cached token, and are left out):
    GQA family ``4 n_h d_h``; MLA in absorbed form ``2 n_h (2 d_c + d_h^R)``; MFA ``4 m C``;
    MFA-KR ``4 m C + 3 C`` (the cached key is rotated at each step); TPA, contracting the
    query with the cached ``b`` factors and weighting by the ``a`` factors,
    ``2 (R_K + R_V) n_h (d_h + 1)``.
    Divided by :func:`kv_cache_elements` this is the arithmetic intensity of decoding in FLOPs
    per cached element read.
    """
    c = _config(kind, cfg)
    nh, dh = c["n_heads"], c["head_dim"]
    if kind in ("mha", "gqa", "mqa"):
        return 4 * nh * dh
    if kind == "mla":
        return 2 * nh * (2 * c["kv_latent_dim"] + c["rope_head_dim"])
    if kind == "mfa":
        return 4 * nh * dh
    if kind == "mfa-kr":
        return 4 * nh * dh + 3 * dh
    return 2 * (c["k_rank"] + c["v_rank"]) * nh * (dh + 1)


def prefilled_decode_step(layer, context: int, *, seed: int = 0):
    """A zero-argument function running one decoding step of ``layer`` after ``context`` tokens.

    The cache is filled with random entries (their values do not change the cost), so long
    contexts can be timed without running the quadratic prefill. The first call grows the
    cache's storage once; later calls only append. Returns ``(step, cache)``.
    """
    import torch

    context = positive_int(context, "context")
    p = next(layer.parameters())
    gen = torch.Generator().manual_seed(seed)
    cache = layer.new_cache()
    cache.append(**{f: torch.randn(1, context, *shape, generator=gen).to(p.device, p.dtype)
                    for f, shape in cache.fields.items()})
    x = torch.randn(1, 1, layer.d_model, generator=gen).to(p.device, p.dtype)

    def step():
        with torch.no_grad():
            return layer(x, cache)

    return step, cache

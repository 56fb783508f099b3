"""Closed forms: KV-cache elements per token and parameter counts of each attention variant.

Every function takes a variant name (one of :data:`KINDS`) and the same keyword arguments as
:func:`make_attention`, so a configuration can be built, sized and counted from one dict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from refimpl._validation import check_choice, check_divides, check_positive_int

if TYPE_CHECKING:
    from refimpl.attention._core import CausalSelfAttention

#: The attention variants the formulas (and :func:`make_attention`) know, by their short name.
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
    """Validate ``cfg`` for ``kind`` and fill in the defaults (``head_dim`` from ``d_model``)."""
    check_choice(kind, "kind", KINDS)
    unknown = set(cfg) - _ARGS[kind]
    if unknown:
        raise TypeError(f"{kind} takes {sorted(_ARGS[kind])}; got unexpected {sorted(unknown)}")
    c = {k: v for k, v in _DEFAULTS.items() if k in _ARGS[kind]}
    c.update({k: v for k, v in cfg.items() if v is not None})
    if c.get("head_dim") is None and d_model is not None and kind in ("mha", "gqa", "mqa", "tpa"):
        check_divides(check_positive_int(c["n_heads"], "n_heads"), "n_heads", d_model, "d_model")
        c["head_dim"] = d_model // c["n_heads"]
    for name in _ARGS[kind] - {"q_latent_dim"}:
        if name not in c:
            raise TypeError(f"{kind} needs {name}")
        c[name] = check_positive_int(c[name], name)
    if kind in ("mfa", "mfa-kr"):
        c["q_latent_dim"] = check_positive_int(c.get("q_latent_dim", c["head_dim"]),
                                               "q_latent_dim")
    elif "q_latent_dim" in c:
        c["q_latent_dim"] = check_positive_int(c["q_latent_dim"], "q_latent_dim")
    if kind == "gqa":
        check_divides(c["n_kv_heads"], "n_kv_heads", c["n_heads"], "n_heads")
    return c


def kv_cache_elements(kind: str, **cfg: int | None) -> int:
    """Elements cached per token per layer (per sequence).

    MHA ``2 n_h d_h``; GQA ``2 g d_h``; MQA ``2 d_h``; MLA ``d_c + d_h^R``; MFA ``2C``;
    MFA-KR ``C``; TPA ``(R_K + R_V)(n_h + d_h)``.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    **cfg
        The variant's keyword arguments as for :func:`make_attention` (``n_heads``,
        ``head_dim``, ``n_kv_heads``, ``kv_latent_dim``, ``q_latent_dim``, ``rope_head_dim``,
        ``q_rank``, ``k_rank``, ``v_rank``, as the variant takes them); ``head_dim`` is
        required here.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``kind`` is unknown or a size is not a positive integer.
    TypeError
        If a keyword is missing or not taken by the variant.
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


def attention_parameters(kind: str, d_model: int, **cfg: int | None) -> int:
    """Trainable parameters of the layer :func:`make_attention` builds (no biases; norms counted).

    GQA family: ``2 d n_h d_h + 2 d g d_h`` (MHA g = n_h, MQA g = 1; with n_h d_h = d this is
    the MFA paper's ``(2 + 2g/n) d²``). MLA: query path ``d d_c' + d_c' + d_c' n_h (d_h + d_h^R)``
    (or ``d n_h (d_h + d_h^R)`` without a query latent), KV path ``d d_c + d_c + 2 d_c n_h d_h +
    d d_h^R``, output ``n_h d_h d``. MFA: ``d C_q + C_q + C_q m C + 2 d C + m C d``; MFA-KR
    replaces ``S_V`` (``d C``) by ``N`` and ``α`` (``C² + C``). TPA:
    ``d (R_Q + R_K + R_V)(n_h + d_h) + n_h d_h d``.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    d_model : int
        Model width d.
    **cfg
        The variant's keyword arguments, as for :func:`make_attention` (``head_dim`` defaults
        to ``d_model // n_heads`` for the GQA family and TPA).

    Returns
    -------
    int
        The layer's parameter count.

    Raises
    ------
    ValueError, TypeError
        As for :func:`kv_cache_elements`; also if ``d_model`` is not a positive integer or
        ``n_heads`` does not divide it when ``head_dim`` is left out.
    """
    d = check_positive_int(d_model, "d_model")
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


def make_attention(kind: str, d_model: int, *, rope_base: float = 10000.0,
                   **cfg: Any) -> CausalSelfAttention:
    """Build the attention layer ``kind`` (see :data:`KINDS`) with width ``d_model``.

    Parameters
    ----------
    kind : str
        ``"mha"``, ``"gqa"``, ``"mqa"`` (:mod:`~refimpl.attention.standard`), ``"mla"``
        (:class:`MultiHeadLatentAttention`), ``"mfa"``, ``"mfa-kr"``
        (:class:`MultiMatrixFactorizationAttention`) or ``"tpa"``
        (:class:`TensorProductAttention`).
    d_model : int
        Model width d.
    rope_base : float
        RoPE base of the layer.
    **cfg
        The variant's constructor arguments (``n_heads``, ``head_dim``, ``n_kv_heads``,
        ``kv_latent_dim``, ``q_latent_dim``, ``rope_head_dim``, ``q_rank``, ``k_rank``,
        ``v_rank``, as the variant takes them).

    Returns
    -------
    CausalSelfAttention

    Raises
    ------
    ValueError
        If ``kind`` is unknown or the sizes are invalid.
    TypeError
        If a keyword is missing or not taken by the variant.
    """
    from refimpl.attention.mfa import MultiMatrixFactorizationAttention
    from refimpl.attention.mla import MultiHeadLatentAttention
    from refimpl.attention.standard import (
        GroupedQueryAttention,
        MultiHeadAttention,
        MultiQueryAttention,
    )
    from refimpl.attention.tpa import TensorProductAttention

    _config(kind, cfg, check_positive_int(d_model, "d_model"))  # refuse bad keywords early
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


def decode_attention_flops(kind: str, **cfg: int | None) -> int:
    """FLOPs per *cached token* of one decoding step's attention (multiply-add = 2 FLOPs).

    Counts the score and weighted-sum products against the cache as this package computes
    them (projections of the new token are per step, not per cached token, and are left out):
    GQA family ``4 n_h d_h``; MLA in absorbed form ``2 n_h (2 d_c + d_h^R)``; MFA ``4 m C``;
    MFA-KR ``4 m C + 3 C`` (the cached key is rotated at each step); TPA, contracting the
    query with the cached ``b`` factors and weighting by the ``a`` factors,
    ``2 (R_K + R_V) n_h (d_h + 1)``.
    Divided by :func:`kv_cache_elements` this is the arithmetic intensity of decoding in FLOPs
    per cached element read.

    Parameters
    ----------
    kind, **cfg
        As for :func:`kv_cache_elements`.

    Returns
    -------
    int
        FLOPs per cached token.

    Raises
    ------
    ValueError, TypeError
        As for :func:`kv_cache_elements`.
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


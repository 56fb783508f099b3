"""Shared pieces: RMSNorm, the masked softmax-attention kernel and the layer base class.

:func:`causal_attention` has two kernels (:data:`IMPLS`): ``"sdpa"`` (the default, PyTorch's
fused ``scaled_dot_product_attention``) and ``"reference"`` (the explicit masked softmax that
mirrors the equations). The default is one process-wide setting: ``with
attention_impl("reference"): ...`` changes it for a block and restores it on exit (also on an
error), :func:`set_attention_impl` sets it and returns the previous one,
:func:`get_attention_impl` reads it, and ``impl=`` overrides it for one call. It is a module
global, not per thread.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, overload

import torch
import torch.nn.functional as F
from torch import nn

from refimpl._validation import check_array, check_choice, check_positive, check_positive_int
from refimpl.attention.cache import KVCache
from refimpl.attention.rope import RotaryEmbedding


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x²) + eps) · w`` over the last axis (the norm MLA and MFA put on latents).

    Parameters
    ----------
    dim : int
        Length of the normalised (last) axis; the learned gain ``w`` has this length and
        starts at ones.
    eps : float
        Added to the mean square before the square root (> 0).
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(check_positive_int(dim, "dim")))
        self.eps = check_positive(eps, "eps")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` (``(..., dim)``) over its last axis and scale by the gain.

        Parameters
        ----------
        x : torch.Tensor
            Input of shape ``(..., dim)``.

        Returns
        -------
        torch.Tensor
            Same shape and dtype as ``x``.
        """
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class QKV(NamedTuple):
    """A layer's per-head queries, keys and values over a sequence, and its score scale.

    ``o = scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)`` followed by the
    layer's output projection of the merged heads (``w_o(_merge(o))``) is its training forward
    (see :meth:`CausalSelfAttention.qkv`).

    Attributes
    ----------
    q : torch.Tensor
        Queries ``(B, H, T, dk)`` (RoPE applied) at positions ``0, …, T − 1``.
    k : torch.Tensor
        Keys ``(B, H, T, dk)``, shared KV heads repeated to the ``H`` query heads (possibly as
        expanded views).
    v : torch.Tensor
        Values ``(B, H, T, dv)``, likewise; any linear map the layer applies after attention
        and before its output projection is already applied to them.
    scale : float
        The score scale (``1/sqrt(dk)`` unless the layer scores otherwise).
    """

    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    scale: float


IMPLS = ("sdpa", "reference")
"""The kernels :func:`causal_attention` can run: the fused one (the default) and the reference."""

_default_impl = "sdpa"


def get_attention_impl() -> str:
    """The process-wide default kernel of :func:`causal_attention` (``"sdpa"`` at import).

    Returns
    -------
    str
        One of :data:`IMPLS`.
    """
    return _default_impl


def set_attention_impl(name: str) -> str:
    """Set the process-wide default kernel of :func:`causal_attention`; return the previous one.

    Every layer of :mod:`refimpl.attention` (and every model built from them) calls
    :func:`causal_attention` without ``impl``, so this selects the kernel everywhere. Prefer
    the :func:`attention_impl` context manager, which restores the previous default.

    Parameters
    ----------
    name : {"sdpa", "reference"}
        ``"sdpa"``: ``torch.nn.functional.scaled_dot_product_attention`` (fused);
        ``"reference"``: the explicit masked softmax that mirrors the equations.

    Returns
    -------
    str
        The default before the call.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`IMPLS`.
    """
    global _default_impl
    name = check_choice(name, "impl", IMPLS)
    previous, _default_impl = _default_impl, name
    return previous


def attention_impl(name: str) -> contextlib.AbstractContextManager[str]:
    """Context manager: run a block with ``name`` as :func:`causal_attention`'s default kernel.

    ``with attention_impl("reference"): model(x)`` runs every attention layer inside the block
    on the reference kernel; the previous default is restored on exit, also when the block
    raises. The name is checked at the call; the default changes only on entering the block.

    Parameters
    ----------
    name : {"sdpa", "reference"}
        As for :func:`set_attention_impl`.

    Returns
    -------
    contextlib.AbstractContextManager
        Entering it sets the default and gives ``name``; leaving it restores the previous one.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`IMPLS`.
    """
    return _impl_scope(check_choice(name, "impl", IMPLS))


@contextlib.contextmanager
def _impl_scope(name: str) -> Iterator[str]:
    previous = set_attention_impl(name)
    try:
        yield name
    finally:
        set_attention_impl(previous)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, q_start: int = 0,
                     scale: float | None = None, impl: str | None = None) -> torch.Tensor:
    """``softmax(q kᵀ · scale + causal mask) v`` with query heads grouped over shared KV heads.

    ``Hk`` must divide ``H``; query head ``h`` reads KV head ``h // (H / Hk)`` (MHA: Hk = H,
    GQA: Hk = g, MQA and the single-KV-head forms: Hk = 1). Query ``i`` sees the keys
    ``j ≤ q_start + i``. The value dimension ``dv`` may differ from the key dimension ``dk``.

    Two kernels compute the same thing (:data:`IMPLS`):

    - ``"reference"``: the equations as written: scores ``q kᵀ · scale`` for the ``G = H/Hk``
      query heads of each KV head at once, future keys set to ``−∞``, softmax, times ``v``;
    - ``"sdpa"``: ``torch.nn.functional.scaled_dot_product_attention`` (a fused kernel that
      never stores the ``Tq × Tk`` scores). A full sequence (``q_start = 0``) uses its
      ``is_causal``; a single decoding step (``Tq = 1``) needs no mask, and its ``G`` query
      heads per KV head are passed as ``G`` query rows of one head (no KV copy); a
      continuation (``q_start > 0``, ``Tq > 1``) passes the offset mask
      ``j ≤ q_start + i`` (``is_causal`` aligns the triangle to the top-left corner, which
      is wrong there). Grouped KV heads are expanded without a copy when ``Hk = 1`` and
      passed with ``enable_gqa`` otherwise. When ``dk ≠ dv`` the narrower of ``v`` and
      ``(q, k)`` is zero-padded to the wider, which changes no score and no output column
      (the CPU's fused kernel needs equal widths and falls back to an unfused one
      otherwise); values that are the leading columns of the keys (a view ``k[..., :dv]``,
      as absorbed MLA passes them) are padded with the rest of ``k``, without a copy. A
      decoding step with other unequal widths (plain MLA, truncated MatryoshkaKV) runs the
      reference arithmetic instead: one query row per head has no score matrix to avoid,
      and padding would copy the whole cache at every step.

    Parameters
    ----------
    q : torch.Tensor
        Queries ``(B, H, Tq, dk)`` at positions ``q_start, …, q_start + Tq − 1``.
    k : torch.Tensor
        Keys ``(B, Hk, Tk, dk)`` at positions ``0, …, Tk − 1`` with ``Tk = q_start + Tq``.
    v : torch.Tensor
        Values ``(B, Hk, Tk, dv)``.
    q_start : int
        Position of the first query (the number of cached tokens before it).
    scale : float, optional
        Score scale; defaults to ``1/sqrt(dk)``.
    impl : {"sdpa", "reference"}, optional
        The kernel; default the process-wide one (:func:`get_attention_impl`, set with
        :func:`set_attention_impl` or :func:`attention_impl`).

    Returns
    -------
    torch.Tensor
        ``(B, H, Tq, dv)``.

    Raises
    ------
    ValueError
        If ``Hk`` does not divide ``H``, ``Tk != q_start + Tq`` or ``impl`` is unknown.
    """
    H, Tq = q.shape[1], q.shape[2]
    Hk, Tk = k.shape[1], k.shape[2]
    if H % Hk:
        raise ValueError(f"key heads ({Hk}) must divide query heads ({H})")
    if Tk != q_start + Tq:
        raise ValueError(f"expected {q_start + Tq} keys (q_start + Tq); got {Tk}")
    impl = _default_impl if impl is None else check_choice(impl, "impl", IMPLS)
    if impl == "reference":
        return _reference_attention(q, k, v, q_start, scale)
    return _sdpa_attention(q, k, v, q_start, scale)


def _reference_attention(q, k, v, q_start, scale):
    """The explicit masked softmax (the book's equations); shapes checked by the caller."""
    B, H, Tq, dk = q.shape
    Hk, Tk = k.shape[1], k.shape[2]
    G = H // Hk
    scale = 1.0 / math.sqrt(dk) if scale is None else scale
    s = (q.reshape(B, Hk, G * Tq, dk) @ k.transpose(-1, -2)).mul_(scale)
    if Tq > 1:
        i = torch.arange(q_start, q_start + Tq, device=q.device)
        j = torch.arange(Tk, device=q.device)
        future = (j[None, :] > i[:, None]).repeat(G, 1)                   # (G·Tq, Tk)
        s = s.masked_fill(future, float("-inf"))
    p = torch.softmax(s, dim=-1)
    return (p @ v).reshape(B, H, Tq, v.shape[-1])


def _sdpa_attention(q, k, v, q_start, scale):
    """The fused kernel (see :func:`causal_attention`); shapes checked by the caller."""
    sdpa = F.scaled_dot_product_attention
    B, H, Tq, dk = q.shape
    Hk, Tk, dv = k.shape[1], k.shape[2], v.shape[-1]
    G = H // Hk
    scale = 1.0 / math.sqrt(dk) if scale is None else scale
    if dv < dk:  # pad v; when v is the leading columns of k (MLA), k itself is the padding
        leading = (v.data_ptr() == k.data_ptr() and v.stride() == k.stride()
                   and v.shape[:-1] == k.shape[:-1])
        if not leading and Tq == 1:  # padding would copy every cached value at every step
            return _reference_attention(q, k, v, q_start, scale)
        v = k if leading else _zero_pad(v, dk)
    elif dk < dv:
        if Tq == 1:
            return _reference_attention(q, k, v, q_start, scale)
        q, k = _zero_pad(q, dv), _zero_pad(k, dv)
    d = v.shape[-1]
    if Tq == 1:  # one step sees every key; the G heads of a KV head are G rows of one query
        o = sdpa(q.reshape(B, Hk, G, d), k, v, scale=scale).view(B, H, 1, d)
    else:
        gqa: dict[str, Any] = {}
        if Hk == 1 and H > 1:
            k, v = k.expand(B, H, Tk, d), v.expand(B, H, Tk, d)              # views, no copy
        elif Hk < H:
            gqa = {"enable_gqa": True}
        if q_start == 0:
            o = sdpa(q, k, v, is_causal=True, scale=scale, **gqa)
        else:
            visible = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device).tril(q_start)
            o = sdpa(q, k, v, attn_mask=visible, scale=scale, **gqa)
    return o if d == dv else o[..., :dv]


def _zero_pad(t: torch.Tensor, width: int) -> torch.Tensor:
    """``t`` with zero columns appended up to ``width`` (one copy; ``F.pad`` is several times
    slower on the strided head views the layers pass)."""
    zeros = t.new_zeros(()).expand(*t.shape[:-1], width - t.shape[-1])
    return torch.cat((t, zeros), dim=-1)


class CausalSelfAttention(nn.Module):
    """Base class: a causal self-attention layer with a training and a decoding forward.

    ``forward(x)`` attends over the whole sequence ``x`` (B, T, d) with a causal mask.
    ``forward(x, cache)`` treats ``x`` as the next tokens after the ``cache.length`` already
    cached ones, appends what the layer stores per token to ``cache`` and attends over all of
    them; with ``T = 1`` this is one decoding step. Both give the same outputs.
    Subclasses set ``d_model`` and ``n_heads`` in their ``__init__`` and define
    :meth:`cache_fields`, ``_attend(x, positions, cache)`` and ``_qkv(x, positions)`` (what
    :meth:`qkv` returns); the base class takes no constructor arguments.

    The contract of :meth:`qkv`: for every layer,
    ``w_o(_merge(scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)))`` with
    ``(q, k, v, scale) = layer.qkv(x)`` equals ``layer(x)`` (to rounding): the layer is softmax
    attention on its own materialised Q, K, V followed by its output projection.
    """

    d_model: int
    n_heads: int
    # (x, positions, cache) -> output: the forward, defined by every subclass
    _attend: Callable[[torch.Tensor, torch.Tensor, KVCache | None], torch.Tensor]

    def cache_fields(self) -> dict[str, tuple[int, ...]]:
        """The per-token layout of this layer's cache: field name → per-token shape.

        Returns
        -------
        dict of str to tuple of int
            What :class:`KVCache` stores for each token (e.g. ``{"k": (n_kv, d_h), ...}``).
        """
        raise NotImplementedError

    @property
    def cache_elements_per_token(self) -> int:
        """Elements this layer caches per token (per sequence), read off its cache layout."""
        return KVCache(self.cache_fields()).elements_per_token

    def new_cache(self) -> KVCache:
        """An empty :class:`KVCache` with this layer's :meth:`cache_fields`.

        Returns
        -------
        KVCache
            Storage is allocated at its first append.
        """
        return KVCache(self.cache_fields())

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Causal self-attention over ``x``, or over the cached prefix followed by ``x``.

        Parameters
        ----------
        x : torch.Tensor
            Inputs ``(B, T, d_model)``, floating point and finite.
        cache : KVCache, optional
            A cache from :meth:`new_cache`; ``x`` continues the ``cache.length`` tokens it
            holds, and what the layer stores for ``x`` is appended to it.

        Returns
        -------
        torch.Tensor
            ``(B, T, d_model)``, equal to the matching rows of the full forward.

        Raises
        ------
        TypeError, ValueError
            If ``x`` is not a finite floating-point ``(B, T, d_model)`` tensor.
        """
        self._check_input(x)
        start = 0 if cache is None else cache.length
        positions = torch.arange(start, start + x.shape[1], device=x.device)
        return self._attend(x, positions, cache)

    def qkv(self, x: torch.Tensor) -> QKV:
        """Materialised per-head queries, keys and values of ``x``, and the score scale.

        Keys and values are repeated to the ``n_heads`` query heads and carry any linear map
        the layer applies between attention and ``w_o`` (MFA-KR's value map, MatryoshkaKV's
        map back from the truncated coordinates), so that SDPA on them followed by
        ``w_o(_merge(·))`` reproduces the training forward. For comparisons with (and
        timings against) ``torch.nn.functional.scaled_dot_product_attention``.

        Parameters
        ----------
        x : torch.Tensor
            Inputs ``(B, T, d_model)`` at positions ``0, …, T − 1``.

        Returns
        -------
        QKV
            ``(q, k, v, scale)``: ``q``, ``k`` of shape ``(B, n_heads, T, dk)``, ``v`` of shape
            ``(B, n_heads, T, dv)`` and the float ``scale``.

        Raises
        ------
        TypeError, ValueError
            If ``x`` is not a finite floating-point ``(B, T, d_model)`` tensor.
        """
        self._check_input(x)
        return self._qkv(x, torch.arange(x.shape[1], device=x.device))

    def _qkv(self, x: torch.Tensor, positions: torch.Tensor) -> QKV:
        raise NotImplementedError

    def _check_input(self, x: torch.Tensor) -> None:
        check_array(x, "x", ndim=3)
        if x.shape[-1] != self.d_model:
            raise ValueError(
                f"x must have last dimension d_model={self.d_model}; got {x.shape[-1]}")

    def _store(self, cache: KVCache | None, **new: torch.Tensor) -> dict[str, torch.Tensor]:
        """Append to the cache (decoding) or pass the sequence's own tensors through (training)."""
        return new if cache is None else cache.append(**new)

    @overload
    def _make_rope(self, dim: int, rope_base: float) -> RotaryEmbedding: ...
    @overload
    def _make_rope(self, dim: int, rope_base: None) -> None: ...
    def _make_rope(self, dim: int, rope_base: float | None) -> RotaryEmbedding | None:
        return None if rope_base is None else RotaryEmbedding(dim, rope_base)

    @staticmethod
    def _heads(t: torch.Tensor, n: int) -> torch.Tensor:
        """(B, T, n·d) → (B, n, T, d)."""
        B, T, _ = t.shape
        return t.view(B, T, n, -1).transpose(1, 2)

    @staticmethod
    def _merge(o: torch.Tensor) -> torch.Tensor:
        """(B, H, T, d) → (B, T, H·d)."""
        B, H, T, d = o.shape
        return o.transpose(1, 2).reshape(B, T, H * d)

"""Shared pieces: RMSNorm, the masked softmax-attention kernel and the layer base class."""

from __future__ import annotations

import math

import torch
from torch import nn

from refimpl._validation import check_array, check_positive, check_positive_int
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

    def __init__(self, dim: int, eps: float = 1e-6):
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


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, q_start: int = 0,
                     scale: float | None = None) -> torch.Tensor:
    """``softmax(q kᵀ · scale + causal mask) v`` with query heads grouped over shared KV heads.

    ``Hk`` must divide ``H``; query head ``h`` reads KV head ``h // (H / Hk)`` (MHA: Hk = H,
    GQA: Hk = g, MQA and the single-KV-head forms: Hk = 1). Query ``i`` sees the keys
    ``j ≤ q_start + i``.

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

    Returns
    -------
    torch.Tensor
        ``(B, H, Tq, dv)``.

    Raises
    ------
    ValueError
        If ``Hk`` does not divide ``H`` or ``Tk != q_start + Tq``.
    """
    B, H, Tq, dk = q.shape
    Hk, Tk = k.shape[1], k.shape[2]
    if H % Hk:
        raise ValueError(f"key heads ({Hk}) must divide query heads ({H})")
    if Tk != q_start + Tq:
        raise ValueError(f"expected {q_start + Tq} keys (q_start + Tq); got {Tk}")
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


class CausalSelfAttention(nn.Module):
    """Base class: a causal self-attention layer with a training and a decoding forward.

    ``forward(x)`` attends over the whole sequence ``x`` (B, T, d) with a causal mask.
    ``forward(x, cache)`` treats ``x`` as the next tokens after the ``cache.length`` already
    cached ones, appends what the layer stores per token to ``cache`` and attends over all of
    them; with ``T = 1`` this is one decoding step. Both give the same outputs.
    Subclasses set ``d_model`` and ``n_heads`` in their ``__init__`` and define
    :meth:`cache_fields` and ``_attend(x, positions, cache)``; the base class takes no
    constructor arguments.
    """

    d_model: int
    n_heads: int

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
        check_array(x, "x", ndim=3)
        if x.shape[-1] != self.d_model:
            raise ValueError(
                f"x must have last dimension d_model={self.d_model}; got {x.shape[-1]}")
        start = 0 if cache is None else cache.length
        positions = torch.arange(start, start + x.shape[1], device=x.device)
        return self._attend(x, positions, cache)

    def _store(self, cache: KVCache | None, **new: torch.Tensor) -> dict[str, torch.Tensor]:
        """Append to the cache (decoding) or pass the sequence's own tensors through (training)."""
        return new if cache is None else cache.append(**new)

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

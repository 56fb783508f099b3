"""Multi-head attention and its KV-sharing forms: grouped-query and multi-query attention."""

from __future__ import annotations

import math

from torch import nn

from refimpl._validation import check_divides, check_positive_int
from refimpl.attention._core import QKV, CausalSelfAttention, causal_attention


class GroupedQueryAttention(CausalSelfAttention):
    """GQA: ``n_heads`` query heads share ``n_kv_heads`` key/value heads (groups).

    Cache per token: ``2 · n_kv_heads · head_dim`` (keys after RoPE, and values).
    ``n_kv_heads = n_heads`` is MHA, ``n_kv_heads = 1`` is MQA.

    Parameters
    ----------
    d_model : int
        Model width d.
    n_heads : int
        Query heads n_h.
    n_kv_heads : int
        Key/value heads g; must divide ``n_heads``.
    head_dim : int, optional
        d_h; default ``d_model // n_heads`` (then ``n_heads`` must divide ``d_model``).
    rope_base : float or None
        RoPE base on queries and keys; ``None`` for no position encoding.

    Raises
    ------
    ValueError, TypeError
        If a size is not a positive integer or a divisibility condition fails.
    """

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, head_dim: int | None = None,
                 *, rope_base: float | None = 10000.0) -> None:
        super().__init__()
        self.d_model = check_positive_int(d_model, "d_model")
        self.n_heads = check_positive_int(n_heads, "n_heads")
        self.n_kv_heads = check_positive_int(n_kv_heads, "n_kv_heads")
        check_divides(self.n_kv_heads, "n_kv_heads", self.n_heads, "n_heads")
        if head_dim is None:
            check_divides(self.n_heads, "n_heads", self.d_model, "d_model")
            head_dim = self.d_model // self.n_heads
        self.head_dim = check_positive_int(head_dim, "head_dim")
        hd = self.head_dim
        self.w_q = nn.Linear(d_model, n_heads * hd, bias=False)
        self.w_k = nn.Linear(d_model, n_kv_heads * hd, bias=False)
        self.w_v = nn.Linear(d_model, n_kv_heads * hd, bias=False)
        self.w_o = nn.Linear(n_heads * hd, d_model, bias=False)
        self.rope = self._make_rope(hd, rope_base)

    def cache_fields(self) -> dict[str, tuple[int, ...]]:
        """``{"k": (n_kv_heads, head_dim), "v": (n_kv_heads, head_dim)}`` (keys after RoPE)."""
        return {"k": (self.n_kv_heads, self.head_dim), "v": (self.n_kv_heads, self.head_dim)}

    def _project(self, x, positions):
        """Queries (B, H, T, d_h), keys and values (B, n_kv, T, d_h); RoPE on q and k."""
        q = self._heads(self.w_q(x), self.n_heads)
        k = self._heads(self.w_k(x), self.n_kv_heads)
        if self.rope is not None:
            q, k = self.rope(q, positions), self.rope(k, positions)
        return q, k, self._heads(self.w_v(x), self.n_kv_heads)

    def _attend(self, x, positions, cache):
        q, k, v = self._project(x, positions)
        kv = self._store(cache, k=k.transpose(1, 2), v=v.transpose(1, 2))
        o = causal_attention(q, kv["k"].transpose(1, 2), kv["v"].transpose(1, 2),
                             q_start=int(positions[0]))
        return self.w_o(self._merge(o))

    def _qkv(self, x, positions):
        q, k, v = self._project(x, positions)
        G = self.n_heads // self.n_kv_heads
        if G > 1:
            k, v = k.repeat_interleave(G, dim=1), v.repeat_interleave(G, dim=1)
        return QKV(q, k, v, 1.0 / math.sqrt(self.head_dim))

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, n_heads={self.n_heads}, "
                f"n_kv_heads={self.n_kv_heads}, head_dim={self.head_dim}")


class MultiHeadAttention(GroupedQueryAttention):
    """MHA: every query head has its own key and value head; cache ``2 · n_heads · head_dim``.

    Parameters
    ----------
    d_model, n_heads, head_dim, rope_base
        As for :class:`GroupedQueryAttention`.
    """

    def __init__(self, d_model: int, n_heads: int, head_dim: int | None = None, *,
                 rope_base: float | None = 10000.0) -> None:
        super().__init__(d_model, n_heads, n_heads, head_dim, rope_base=rope_base)


class MultiQueryAttention(GroupedQueryAttention):
    """MQA: one key head and one value head shared by all query heads; cache ``2 · head_dim``.

    Parameters
    ----------
    d_model, n_heads, head_dim, rope_base
        As for :class:`GroupedQueryAttention`.
    """

    def __init__(self, d_model: int, n_heads: int, head_dim: int | None = None, *,
                 rope_base: float | None = 10000.0) -> None:
        super().__init__(d_model, n_heads, 1, head_dim, rope_base=rope_base)

"""Tensor product attention (TPA): contextual low-rank factors of each token's Q, K and V."""

from __future__ import annotations

import math

import torch
from torch import nn

from refimpl._validation import check_divides, check_positive_int
from refimpl.attention._core import QKV, CausalSelfAttention, causal_attention


class TensorProductAttention(CausalSelfAttention):
    """TPA: ``Q_t = (1/R_Q) Σ_r a_r(x_t) ⊗ b_r(x_t)`` with ``a_r ∈ ℝ^{n_h}``, ``b_r ∈ ℝ^{d_h}``.

    Keys and values likewise with ranks ``R_K``, ``R_V``; all factors are linear in ``x_t``.
    RoPE acts on the last (``d_h``) axis only, so rotating the ``b`` factors of Q and K is
    exactly rotating the materialised Q and K. The cache holds ``a``, rotated ``b`` of the key
    and ``a``, ``b`` of the value: ``(R_K + R_V)(n_h + d_h)`` elements per token. The training
    forward (and a multi-token prefill) materialises Q, K and V and calls
    :func:`causal_attention`; a single-token decoding step works on the cached factors
    directly (``_factored_step``, which SDPA's shapes do not fit).

    Parameters
    ----------
    d_model : int
        Model width d.
    n_heads : int
        Heads n_h.
    head_dim : int, optional
        Per-head dimension d_h (even, for RoPE); default ``d_model // n_heads`` (then
        ``n_heads`` must divide ``d_model``).
    q_rank, k_rank, v_rank : int
        R_Q, R_K, R_V (defaults 6, 2, 2 as in the paper).
    rope_base : float or None
        RoPE base on the ``b`` factors of queries and keys; ``None`` for no position encoding.

    Raises
    ------
    ValueError, TypeError
        If a size or rank is not a positive integer or ``n_heads`` does not divide
        ``d_model`` when ``head_dim`` is left out.
    """

    def __init__(self, d_model: int, n_heads: int, head_dim: int | None = None, q_rank: int = 6,
                 k_rank: int = 2, v_rank: int = 2, *,
                 rope_base: float | None = 10000.0) -> None:
        super().__init__()
        self.d_model = check_positive_int(d_model, "d_model")
        self.n_heads = check_positive_int(n_heads, "n_heads")
        if head_dim is None:
            check_divides(self.n_heads, "n_heads", self.d_model, "d_model")
            head_dim = self.d_model // self.n_heads
        self.head_dim = check_positive_int(head_dim, "head_dim")
        self.ranks = {"q": check_positive_int(q_rank, "q_rank"),
                      "k": check_positive_int(k_rank, "k_rank"),
                      "v": check_positive_int(v_rank, "v_rank")}
        H, dh = self.n_heads, self.head_dim
        self.w_a = nn.ModuleDict({n: nn.Linear(d_model, R * H, bias=False)
                                  for n, R in self.ranks.items()})
        self.w_b = nn.ModuleDict({n: nn.Linear(d_model, R * dh, bias=False)
                                  for n, R in self.ranks.items()})
        self.w_o = nn.Linear(H * dh, d_model, bias=False)
        self.rope = self._make_rope(dh, rope_base)

    def factors(self, x: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The factors ``(a, b)`` of queries, keys or values, before RoPE.

        Parameters
        ----------
        x : torch.Tensor
            Inputs ``(B, T, d_model)``.
        name : str
            ``"q"``, ``"k"`` or ``"v"``.

        Returns
        -------
        tuple of torch.Tensor
            ``a`` of shape ``(B, T, R, n_h)`` and ``b`` of shape ``(B, T, R, d_h)``.
        """
        B, T, _ = x.shape
        R = self.ranks[name]
        return (self.w_a[name](x).view(B, T, R, self.n_heads),
                self.w_b[name](x).view(B, T, R, self.head_dim))

    @staticmethod
    def materialize(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``(1/R) Σ_r a_r ⊗ b_r`` per token.

        Parameters
        ----------
        a : torch.Tensor
            Head factors ``(B, T, R, n_h)``.
        b : torch.Tensor
            Feature factors ``(B, T, R, d_h)``.

        Returns
        -------
        torch.Tensor
            ``(B, n_h, T, d_h)``.
        """
        # A sum of R broadcast outer products (R is small): no per-token tiny matmuls.
        out = a[:, :, 0, :, None] * b[:, :, 0, None, :]
        for r in range(1, a.shape[2]):
            out = out + a[:, :, r, :, None] * b[:, :, r, None, :]
        return (out / a.shape[2]).transpose(1, 2)

    def cache_fields(self) -> dict[str, tuple[int, ...]]:
        """The key and value factors: ``a_k (R_K, n_h)``, ``b_k (R_K, d_h)``, likewise for v."""
        H, dh, Rk, Rv = self.n_heads, self.head_dim, self.ranks["k"], self.ranks["v"]
        return {"a_k": (Rk, H), "b_k": (Rk, dh), "a_v": (Rv, H), "b_v": (Rv, dh)}

    def _rotated_factors(self, x, positions):
        """The six factors; RoPE applied to the ``b`` factors of queries and keys."""
        a_q, b_q = self.factors(x, "q")
        a_k, b_k = self.factors(x, "k")
        a_v, b_v = self.factors(x, "v")
        if self.rope is not None:
            # (B, T, R, d_h) → rotate along T: move R in front of T and back.
            b_q = self.rope(b_q.transpose(1, 2), positions).transpose(1, 2)
            b_k = self.rope(b_k.transpose(1, 2), positions).transpose(1, 2)
        return a_q, b_q, a_k, b_k, a_v, b_v

    def _attend(self, x, positions, cache):
        a_q, b_q, a_k, b_k, a_v, b_v = self._rotated_factors(x, positions)
        kv = self._store(cache, a_k=a_k, b_k=b_k, a_v=a_v, b_v=b_v)
        q = self.materialize(a_q, b_q)
        if cache is not None and x.shape[1] == 1:
            return self.w_o(self._merge(self._factored_step(q, kv)))
        k = self.materialize(kv["a_k"], kv["b_k"])
        v = self.materialize(kv["a_v"], kv["b_v"])
        o = causal_attention(q, k, v, q_start=int(positions[0]))
        return self.w_o(self._merge(o))

    def _qkv(self, x, positions):
        a_q, b_q, a_k, b_k, a_v, b_v = self._rotated_factors(x, positions)
        return QKV(self.materialize(a_q, b_q), self.materialize(a_k, b_k),
                   self.materialize(a_v, b_v), 1.0 / math.sqrt(self.head_dim))

    def _factored_step(self, q: torch.Tensor, kv: dict) -> torch.Tensor:
        """One decoding step against the cached factors, never materialising K or V.

        This step does not go through :func:`causal_attention` (nor SDPA, whose inputs are
        materialised K and V): it is its own kernel on the factors, the same on either
        :data:`~refimpl.attention.IMPLS` setting.
        ``q_h · K_j[h] = (1/R_K) Σ_r a_K[j,r,h] (q_h · b_K[j,r])`` and
        ``Σ_j p_hj V_j[h] = (1/R_V) Σ_{j,r} (p_hj a_V[j,r,h]) b_V[j,r]``: two matmuls with the
        ``b`` factors of all cached tokens and elementwise work with the ``a`` factors.
        """
        B, H, _, dh = q.shape
        a_k, b_k, a_v, b_v = kv["a_k"], kv["b_k"], kv["a_v"], kv["b_v"]       # (B, T, R, ·)
        T, Rk, Rv = a_k.shape[1], a_k.shape[2], a_v.shape[2]
        qb = (q[:, :, 0] @ b_k.reshape(B, T * Rk, dh).transpose(1, 2)).view(B, H, T, Rk)
        scores = (qb * a_k.permute(0, 3, 1, 2)).sum(-1) / (Rk * dh**0.5)     # (B, H, T)
        p = torch.softmax(scores, dim=-1)
        w = (p[..., None] * a_v.permute(0, 3, 1, 2)).reshape(B, H, T * Rv) / Rv
        return (w @ b_v.reshape(B, T * Rv, dh))[:, :, None]                 # (B, H, 1, dh)

    def extra_repr(self) -> str:
        r = self.ranks
        return (f"d_model={self.d_model}, n_heads={self.n_heads}, head_dim={self.head_dim}, "
                f"ranks=(R_Q={r['q']}, R_K={r['k']}, R_V={r['v']})")

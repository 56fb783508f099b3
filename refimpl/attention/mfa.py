"""Multi-matrix factorization attention (MFA) and its key-reuse form (MFA-KR)."""

from __future__ import annotations

import math

import torch
from torch import nn

from refimpl._validation import check_positive_int
from refimpl.attention._core import QKV, CausalSelfAttention, RMSNorm, causal_attention


class MultiMatrixFactorizationAttention(CausalSelfAttention):
    """MFA: many large query heads from a low-rank query, one shared key head and value head.

    ``q = W_up · RMSNorm(S_Q x)`` split into ``m = n_heads`` heads of dimension ``C = head_dim``
    (``S_Q``: d → C_q, ``W_up``: C_q → m·C); one key ``k = S_K x`` and one value ``v = S_V x``
    (each C) shared by all heads; RoPE on every query head and on the key; output
    ``W_O [o_1; …; o_m]``. Cache per token: ``2C``.

    ``key_reuse=True`` is MFA-KR: there is no ``S_V``; the value is re-parameterised from the
    key *before* RoPE, ``v = k (I + N diag(α))`` with ``N ∈ ℝ^{C×C}`` and ``α ∈ ℝ^C``
    (this is the paper's ``S_V = S_K + α ⊙ N S_K`` read with row vectors, the only reading
    whose shapes agree). Only the pre-RoPE key is cached (``C`` per token); cached keys are
    rotated by their positions when scoring. The value map is linear and shared by the heads,
    so it can be applied to the cached keys before attention or to the attention-weighted
    sums after it: the layer maps whichever are fewer (a training forward or prefill maps the
    ``T`` values, a decoding step its ``m`` outputs). ``α`` starts at 0
    (value = key at initialisation) and ``N`` at a scaled Gaussian, so both get gradients.

    Parameters
    ----------
    d_model : int
        Model width d.
    n_heads : int
        m, the number of query heads.
    head_dim : int
        C, the head dimension and the shared key/value dimension (even, for RoPE).
    q_latent_dim : int, optional
        C_q, the query bottleneck; default ``head_dim``.
    key_reuse : bool
        MFA-KR: derive the value from the cached pre-RoPE key.
    rope_base : float
        RoPE base (MFA needs RoPE: ``None`` is refused).

    Raises
    ------
    ValueError, TypeError
        If a size is not a positive integer, ``head_dim`` is odd or ``rope_base`` is None.
    """

    def __init__(self, d_model: int, n_heads: int, head_dim: int, q_latent_dim: int | None = None,
                 *, key_reuse: bool = False, rope_base: float = 10000.0) -> None:
        super().__init__()
        if rope_base is None:
            raise ValueError("MFA needs RoPE: rope_base must be a number, not None")
        self.d_model = check_positive_int(d_model, "d_model")
        self.n_heads = check_positive_int(n_heads, "n_heads")
        self.head_dim = check_positive_int(head_dim, "head_dim")
        self.q_latent_dim = check_positive_int(head_dim if q_latent_dim is None else q_latent_dim,
                                               "q_latent_dim")
        self.key_reuse = bool(key_reuse)
        C, m = self.head_dim, self.n_heads
        self.s_q = nn.Linear(d_model, self.q_latent_dim, bias=False)
        self.q_norm = RMSNorm(self.q_latent_dim)
        self.w_up = nn.Linear(self.q_latent_dim, m * C, bias=False)
        self.s_k = nn.Linear(d_model, C, bias=False)
        if self.key_reuse:
            self.s_v: nn.Linear | None = None
            self.n_mix = nn.Parameter(torch.randn(C, C) / C**0.5)
            self.alpha = nn.Parameter(torch.zeros(C))
        else:
            self.s_v = nn.Linear(d_model, C, bias=False)
        self.w_o = nn.Linear(m * C, d_model, bias=False)
        self.rope = self._make_rope(C, rope_base)

    def cache_fields(self) -> dict[str, tuple[int, ...]]:
        """``{"k": (C,), "v": (C,)}``, or ``{"k_pre_rope": (C,)}`` with key reuse."""
        if self.key_reuse:
            return {"k_pre_rope": (self.head_dim,)}
        return {"k": (self.head_dim,), "v": (self.head_dim,)}

    def value_from_key(self, k_pre: torch.Tensor) -> torch.Tensor:
        """MFA-KR's value ``k (I + N diag(α))`` from the pre-RoPE key.

        Parameters
        ----------
        k_pre : torch.Tensor
            Pre-RoPE keys ``(..., C)``.

        Returns
        -------
        torch.Tensor
            Values of the same shape.
        """
        return k_pre + (k_pre @ self.n_mix) * self.alpha

    def _queries(self, x, positions):
        return self.rope(self._heads(self.w_up(self.q_norm(self.s_q(x))), self.n_heads),
                         positions)                                          # (B, m, T, C)

    def _attend(self, x, positions, cache):
        q = self._queries(x, positions)
        k_new = self.s_k(x)
        q_start = int(positions[0])
        if self.key_reuse:
            k_pre = self._store(cache, k_pre_rope=k_new)["k_pre_rope"]       # (B, Tk, C)
            Tk = k_pre.shape[1]
            k = self.rope(k_pre, torch.arange(Tk, device=x.device))[:, None]
            # The value map is linear and shared by every head, so Σ_j p_j v_j equals
            # (Σ_j p_j k_j)(I + N diag α): map the Tk cached keys before attention or the
            # m·T outputs after it, whichever are fewer (decoding: after, once per query).
            if Tk <= self.n_heads * x.shape[1]:
                o = causal_attention(q, k, self.value_from_key(k_pre)[:, None], q_start=q_start)
            else:
                o = self.value_from_key(causal_attention(q, k, k_pre[:, None], q_start=q_start))
            return self.w_o(self._merge(o))
        # s_v is a Linear unless key_reuse (mypy cannot tie the two)
        kv = self._store(cache, k=self.rope(k_new, positions), v=self.s_v(x))  # type: ignore[misc]
        o = causal_attention(q, kv["k"][:, None], kv["v"][:, None], q_start=q_start)
        return self.w_o(self._merge(o))

    def _qkv(self, x, positions):
        """The shared key and value expanded (as views) to the m heads; MFA-KR's value map
        applied to the values."""
        q = self._queries(x, positions)
        B, m, T, C = q.shape
        k_pre = self.s_k(x)
        v = self.value_from_key(k_pre) if self.key_reuse else self.s_v(x)  # type: ignore[misc]  # as above
        k = self.rope(k_pre, positions)
        return QKV(q, k[:, None].expand(B, m, T, C), v[:, None].expand(B, m, T, C),
                   1.0 / math.sqrt(C))

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, n_heads={self.n_heads}, head_dim={self.head_dim}, "
                f"q_latent_dim={self.q_latent_dim}, key_reuse={self.key_reuse}")

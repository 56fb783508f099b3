"""Multi-head latent attention (MLA, DeepSeek-V2): a latent KV cache and a decoupled RoPE key."""

from __future__ import annotations

import math

import torch
from torch import nn

from refimpl._validation import check_positive_int
from refimpl.attention._core import QKV, CausalSelfAttention, RMSNorm, causal_attention


class MultiHeadLatentAttention(CausalSelfAttention):
    """MLA with query latent, KV latent, RMSNorm on both latents and a decoupled RoPE key.

    Per token ``t`` with input ``h``:

    - query: ``c_Q = RMSNorm(W_DQ h)`` (``d_c'``), ``q_C = W_UQ c_Q`` (n_h·d_h),
      ``q_R = RoPE(W_QR c_Q)`` (n_h·d_h^R);
    - key/value: ``c_KV = RMSNorm(W_DKV h)`` (``d_c``), ``k_C = W_UK c_KV``, ``v = W_UV c_KV``,
      and one RoPE key shared by all heads ``k_R = RoPE(W_KR h)`` (``d_h^R``);
    - head ``i`` scores ``[q_C,i; q_R,i] · [k_C,i; k_R] / sqrt(d_h + d_h^R)``.

    The cache holds ``c_KV`` and ``k_R``: ``d_c + d_h^R`` elements per token.

    Two inference forms give the same outputs (``absorbed`` switches between them):

    - plain: up-project the cached latents to per-head keys and values;
    - absorbed: fold ``W_UK`` into the query side (``q̃_i = W_UK,iᵀ q_C,i`` lives in the
      ``d_c``-dimensional latent space) and ``W_UV`` into the output projection, so attention
      runs directly on the cache as one shared "head" of key dim ``d_c + d_h^R`` and value dim
      ``d_c`` (an MQA over latents). RoPE on ``k_C`` would put a position-dependent rotation
      between ``W_UK`` and ``c_KV`` and break this folding; hence the separate ``k_R``.

    Parameters
    ----------
    d_model : int
        Model width d.
    n_heads : int
        Heads n_h.
    head_dim : int
        Per-head dimension d_h of ``q_C``, ``k_C`` and ``v``.
    kv_latent_dim : int
        d_c, the width of the cached latent.
    q_latent_dim : int, optional
        d_c'; ``None`` projects queries straight from ``h`` (no query latent).
    rope_head_dim : int
        d_h^R (even), the width of the decoupled RoPE key.
    rope_base : float
        RoPE base (MLA needs RoPE: ``None`` is refused).
    absorbed : bool
        Start in the absorbed inference form (the attribute can be switched at any time).

    Raises
    ------
    ValueError, TypeError
        If a size is not a positive integer, ``rope_head_dim`` is odd or ``rope_base`` is None.
    """

    w_dq: nn.Linear | None
    q_norm: RMSNorm | None

    def __init__(self, d_model: int, n_heads: int, head_dim: int, kv_latent_dim: int,
                 q_latent_dim: int | None = None, rope_head_dim: int = 16, *,
                 rope_base: float = 10000.0, absorbed: bool = False) -> None:
        super().__init__()
        if rope_base is None:
            raise ValueError("MLA needs RoPE: rope_base must be a number, not None")
        self.d_model = check_positive_int(d_model, "d_model")
        self.n_heads = check_positive_int(n_heads, "n_heads")
        self.head_dim = check_positive_int(head_dim, "head_dim")
        self.kv_latent_dim = check_positive_int(kv_latent_dim, "kv_latent_dim")
        self.q_latent_dim = (None if q_latent_dim is None
                             else check_positive_int(q_latent_dim, "q_latent_dim"))
        self.rope_head_dim = check_positive_int(rope_head_dim, "rope_head_dim")
        self.absorbed = absorbed
        H, dh, dr, dc = n_heads, head_dim, rope_head_dim, kv_latent_dim
        if q_latent_dim is None:
            self.w_dq = self.q_norm = None
            q_in = d_model
        else:
            self.w_dq = nn.Linear(d_model, q_latent_dim, bias=False)
            self.q_norm = RMSNorm(q_latent_dim)
            q_in = q_latent_dim
        self.w_uq = nn.Linear(q_in, H * dh, bias=False)
        self.w_qr = nn.Linear(q_in, H * dr, bias=False)
        self.w_dkv = nn.Linear(d_model, dc, bias=False)
        self.kv_norm = RMSNorm(dc)
        self.w_uk = nn.Linear(dc, H * dh, bias=False)
        self.w_uv = nn.Linear(dc, H * dh, bias=False)
        self.w_kr = nn.Linear(d_model, dr, bias=False)
        self.w_o = nn.Linear(H * dh, d_model, bias=False)
        self.rope = self._make_rope(dr, rope_base)
        self.scale = 1.0 / math.sqrt(dh + dr)
        self._absorbed_cache: tuple[tuple[object, ...], torch.Tensor] | None = None

    def cache_fields(self) -> dict[str, tuple[int, ...]]:
        """``{"c_kv": (kv_latent_dim,), "k_rope": (rope_head_dim,)}``."""
        return {"c_kv": (self.kv_latent_dim,), "k_rope": (self.rope_head_dim,)}

    def _queries(self, x, positions):
        c_q = x if self.w_dq is None else self.q_norm(self.w_dq(x))  # type: ignore[misc]  # set together
        q_c = self._heads(self.w_uq(c_q), self.n_heads)                       # (B,H,T,dh)
        q_r = self.rope(self._heads(self.w_qr(c_q), self.n_heads), positions)  # (B,H,T,dr)
        return q_c, q_r

    def _attend(self, x, positions, cache):
        q_c, q_r = self._queries(x, positions)
        c_kv = self.kv_norm(self.w_dkv(x))
        k_r = self.rope(self.w_kr(x), positions)
        kv = self._store(cache, c_kv=c_kv, k_rope=k_r)
        c_kv, k_r = kv["c_kv"], kv["k_rope"]                                # (B,Tk,dc), (B,Tk,dr)
        q_start = int(positions[0])
        H, dh = self.n_heads, self.head_dim
        if not self.absorbed:
            Tk = c_kv.shape[1]
            k_c = self._heads(self.w_uk(c_kv), H)
            v = self._heads(self.w_uv(c_kv), H)
            k = torch.cat((k_c, k_r[:, None].expand(-1, H, Tk, -1)), dim=-1)
            o = causal_attention(torch.cat((q_c, q_r), dim=-1), k, v, q_start=q_start,
                                 scale=self.scale)
            return self.w_o(self._merge(o))
        # Absorbed: q̃_i = W_UK,iᵀ q_C,i; attention over the latents; W_O,i W_UV,i on the way out.
        w_uk = self.w_uk.weight.view(H, dh, -1)                              # (H, dh, dc)
        q_lat = q_c @ w_uk                                                   # (B,H,T,dc)
        q = torch.cat((q_lat, q_r), dim=-1)
        k = torch.cat((c_kv, k_r), dim=-1)[:, None]                           # (B,1,Tk,dc+dr)
        # The values c_KV are the leading d_c columns of the keys: pass a view, not a copy.
        o_lat = causal_attention(q, k, k[..., : self.kv_latent_dim], q_start=q_start,
                                 scale=self.scale)
        # Σ_i o_lat,i (W_O,i W_UV,i)ᵀ as one matmul over the merged (head, latent) axis.
        w_out = self.absorbed_output_weight().reshape(H * self.kv_latent_dim, self.d_model)
        return self._merge(o_lat) @ w_out

    def _qkv(self, x, positions):
        """The plain form's per-head Q, K, V (both forms compute the same attention)."""
        H, T = self.n_heads, x.shape[1]
        q_c, q_r = self._queries(x, positions)
        c_kv = self.kv_norm(self.w_dkv(x))
        k_r = self.rope(self.w_kr(x), positions)[:, None].expand(-1, H, T, -1)
        k = torch.cat((self._heads(self.w_uk(c_kv), H), k_r), dim=-1)
        return QKV(torch.cat((q_c, q_r), dim=-1), k, self._heads(self.w_uv(c_kv), H), self.scale)

    def absorbed_output_weight(self) -> torch.Tensor:
        """``W_O,i W_UV,i`` per head, stacked (H, d_c, d_model): latent outputs → model width.

        Without autograd (inference) the product is kept until either weight changes.

        Returns
        -------
        torch.Tensor
            ``(n_heads, kv_latent_dim, d_model)``.
        """
        if torch.is_grad_enabled():
            return self._absorb_output()
        key = (self.w_uv.weight._version, self.w_o.weight._version,
               self.w_uv.weight.data_ptr(), self.w_o.weight.data_ptr(), self.w_o.weight.dtype)
        if self._absorbed_cache is None or self._absorbed_cache[0] != key:
            self._absorbed_cache = (key, self._absorb_output())
        return self._absorbed_cache[1]

    def _absorb_output(self) -> torch.Tensor:
        H, dh = self.n_heads, self.head_dim
        w_uv = self.w_uv.weight.view(H, dh, -1)                              # (H, dh, dc)
        w_o = self.w_o.weight.view(self.d_model, H, dh)                       # (d, H, dh)
        return torch.einsum("hdc,mhd->hcm", w_uv, w_o)

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, n_heads={self.n_heads}, head_dim={self.head_dim}, "
                f"kv_latent_dim={self.kv_latent_dim}, q_latent_dim={self.q_latent_dim}, "
                f"rope_head_dim={self.rope_head_dim}, absorbed={self.absorbed}")

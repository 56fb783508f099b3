"""MatryoshkaKV: orthogonal projections of cached keys and values with nested truncation."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrizations

from refimpl._validation import check_array, check_rank
from refimpl.attention._core import QKV, CausalSelfAttention, causal_attention
from refimpl.attention.standard import GroupedQueryAttention


def pca_basis(samples: torch.Tensor) -> torch.Tensor:
    """Orthogonal bases of the principal directions of ``samples`` (…, n, d), by variance.

    The columns are sorted by decreasing second moment ``E[x xᵀ]`` (the projection is applied
    to uncentred keys and values, so the uncentred moment is the one whose leading
    eigenvectors minimise the truncation error).

    Parameters
    ----------
    samples : torch.Tensor
        ``(..., n, d)`` samples (n of them per basis), floating point and finite.

    Returns
    -------
    torch.Tensor
        ``(..., d, d)`` orthogonal matrices.
    """
    check_array(samples, "samples", batch=True)
    moment = samples.transpose(-1, -2) @ samples / samples.shape[-2]
    _, vecs = torch.linalg.eigh(moment)
    return vecs.flip(-1)


class MatryoshkaKVAttention(CausalSelfAttention):
    """A GQA/MHA layer whose cache stores keys and values in orthogonal coordinates, truncated.

    For each KV head, orthogonal ``U_K, U_V ∈ O(d_h)`` (trainable, kept orthogonal by a
    parametrization). The layer caches ``k U_K[:, :r_K]`` and ``v U_V[:, :r_V]``; a query is
    projected by the same ``U_K[:, :r_K]`` so that scores are ``q U_r U_rᵀ kᵀ``, and the
    attention output is mapped back by ``U_V[:, :r_V]ᵀ``. With full ranks this is exactly the
    wrapped layer; any leading block (``key_rank``, ``value_rank``, changeable at any time)
    gives a smaller cache, ``2·n_kv·… → n_kv (r_K + r_V)`` elements per token. The
    projections are applied after RoPE.
    :meth:`~refimpl.attention.CausalSelfAttention.qkv` gives the truncated queries and keys
    and the values already mapped back (``v U_V,r U_V,rᵀ``), and :attr:`w_o` is the wrapped
    layer's output projection, as for every layer. In bfloat16 torch's orthogonal
    parametrization does not return an orthogonal basis: keep this layer in float32/64.

    :meth:`init_pca` sets ``U_K, U_V`` to the principal directions of calibration keys and
    values, the initialisation that makes truncation least harmful before any training.

    Parameters
    ----------
    base : GroupedQueryAttention
        The wrapped MHA/GQA/MQA layer (its weights are shared, not copied).
    key_rank, value_rank : int, optional
        Leading coordinates of keys and values kept in the cache, ``1 … head_dim``;
        default ``head_dim`` (no truncation).

    Raises
    ------
    TypeError
        If ``base`` is not a :class:`GroupedQueryAttention`.
    ValueError
        If a rank is not in ``1 … head_dim``.
    """

    def __init__(self, base: GroupedQueryAttention, key_rank: int | None = None,
                 value_rank: int | None = None) -> None:
        super().__init__()
        if not isinstance(base, GroupedQueryAttention):
            raise TypeError(f"base must be a GroupedQueryAttention (MHA/GQA/MQA); got "
                            f"{type(base).__name__}")
        self.base = base
        self.d_model, self.n_heads = base.d_model, base.n_heads
        Hk, dh = base.n_kv_heads, base.head_dim
        p = next(base.parameters())
        eye = torch.eye(dh, dtype=p.dtype, device=p.device).expand(Hk, dh, dh)
        # orthogonal() returns the module it was given, typed as a plain Module
        self.u_k: _Basis = parametrizations.orthogonal(  # type: ignore[assignment]
            _Basis(eye.clone()), "weight")
        self.u_v: _Basis = parametrizations.orthogonal(  # type: ignore[assignment]
            _Basis(eye.clone()), "weight")
        self.key_rank = dh if key_rank is None else key_rank
        self.value_rank = dh if value_rank is None else value_rank

    @property
    def w_o(self) -> nn.Linear:
        """The wrapped layer's output projection (what follows attention, as in every layer)."""
        return self.base.w_o

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("key_rank", "value_rank"):
            value = check_rank(value, name, self.base.head_dim, what="head_dim")
        super().__setattr__(name, value)  # type: ignore[arg-type]  # torch's stub: only modules

    @torch.no_grad()
    def init_pca(self, x: torch.Tensor) -> None:
        """Set the bases to the principal directions of the keys and values of ``x``.

        Parameters
        ----------
        x : torch.Tensor
            Calibration inputs ``(B, T, d_model)`` of the layer.
        """
        self._check_input(x)
        _, k, v = self.base._project(x, torch.arange(x.shape[1], device=x.device))
        flat = lambda t: t.transpose(0, 1).reshape(t.shape[1], -1, t.shape[-1])  # noqa: E731
        self.u_k.weight = pca_basis(flat(k))
        self.u_v.weight = pca_basis(flat(v))

    def cache_fields(self) -> dict[str, tuple[int, ...]]:
        """``{"k": (n_kv_heads, key_rank), "v": (n_kv_heads, value_rank)}``."""
        Hk = self.base.n_kv_heads
        return {"k": (Hk, self.key_rank), "v": (Hk, self.value_rank)}

    def _attend(self, x, positions, cache):
        b = self.base
        q = self._heads(b.w_q(x), b.n_heads)
        k = self._heads(b.w_k(x), b.n_kv_heads)
        if b.rope is not None:
            q, k = b.rope(q, positions), b.rope(k, positions)
        v = self._heads(b.w_v(x), b.n_kv_heads)
        Uk = self.u_k.weight[..., : self.key_rank]                         # (Hk, dh, r_K)
        Uv = self.u_v.weight[..., : self.value_rank]                       # (Hk, dh, r_V)
        G = b.n_heads // b.n_kv_heads
        q_c = q @ Uk.repeat_interleave(G, dim=0)                           # (B, H, T, r_K)
        kv = self._store(cache, k=(k @ Uk).transpose(1, 2), v=(v @ Uv).transpose(1, 2))
        o = causal_attention(q_c, kv["k"].transpose(1, 2), kv["v"].transpose(1, 2),
                             q_start=int(positions[0]), scale=b.head_dim**-0.5)
        o = o @ Uv.transpose(-1, -2).repeat_interleave(G, dim=0)           # back to d_h
        return b.w_o(self._merge(o))

    def _qkv(self, x, positions):
        """Truncated queries and keys; values mapped back to ``d_h`` (``v U_V,r U_V,rᵀ``)."""
        b = self.base
        q, k, v = b._project(x, positions)
        Uk = self.u_k.weight[..., : self.key_rank]
        Uv = self.u_v.weight[..., : self.value_rank]
        G = b.n_heads // b.n_kv_heads
        k, v = k @ Uk, v @ Uv @ Uv.transpose(-1, -2)
        return QKV(q @ Uk.repeat_interleave(G, dim=0), k.repeat_interleave(G, dim=1),
                   v.repeat_interleave(G, dim=1), b.head_dim**-0.5)


class _Basis(nn.Module):
    def __init__(self, init: torch.Tensor) -> None:
        super().__init__()
        # a tensor under the orthogonal parametrization (assigning one sets the basis)
        self.weight: torch.Tensor = nn.Parameter(init)

"""CLOVER (tier B): orthogonalise the query–key and value–output pairs of attention heads and
fine-tune only the singular values between them.

For one head with query and key rows ``W_q^h``, ``W_k^h`` (d_h×d each) the attention logits
depend only on the product ``M_h = W_q^hᵀ W_k^h`` (d×d, rank ≤ d_h); for value and output,
the head's contribution to the output is ``M_h = W_o[:, h] W_v^h``. Both are ``L_hᵀ R_h`` with
``L_h``, ``R_h`` d_h-row blocks (``L = W_q, R = W_k``; ``L = W_oᵀ, R = W_v``). An SVD
``L_hᵀ R_h = P_hᵀ diag(s_h) Q_h`` gives new head weights ``P_h``, ``Q_h`` with orthonormal
rows and loses nothing (Meng et al.'s "absorb and decompose"; no extra transfer matrix is
stored). Biases are handled by appending them as a last column (the input is augmented with a
constant 1). Rotary position encodings break the Q–K absorption: apply to Q–K pairs only
without them.

:func:`clover_orthogonalize` is the matrix step; :func:`clover_wrap` rewrites the pairs of a
model and puts a :class:`CLOVERLinear` on the query (resp. value) projection, whose trainable
core per head, ``T_h``, starts at ``diag(s_h)`` so that the model's output is unchanged at
step 0: the singular values alone (``train="diagonal"``, H·d_h numbers per pair) or the full
d_h×d_h core (``train="full"``, H·d_h² per pair; our option, the core then mixes the
orthonormal directions of a head).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import torch
from torch import nn

from refimpl import _xp
from refimpl._typing import Array
from refimpl._validation import check_array, check_choice, check_positive_int, check_same_kind
from refimpl.lora._core import AdapterLayer

__all__ = ["CLOVERFactors", "CLOVERLinear", "clover_orthogonalize", "clover_wrap"]


class CLOVERFactors(NamedTuple):
    """``L_hᵀ R_h = P_hᵀ diag(s[h]) Q_h`` for every head ``h``.

    Attributes
    ----------
    P : torch.Tensor
        H·d_h×d_L, orthonormal rows within each head.
    s : torch.Tensor
        H×d_h, each row non-increasing.
    Q : torch.Tensor
        H·d_h×d_R, orthonormal rows within each head.
    """

    P: Any
    s: Any
    Q: Any


def clover_orthogonalize(L: Array, R: Array, n_heads: int) -> CLOVERFactors:
    """Per-head SVD of ``L_hᵀ R_h`` without forming the d_L×d_R products.

    With reduced QRs ``L_hᵀ = Q_L R_L`` and ``R_hᵀ = Q_R R_R`` and the SVD
    ``R_L R_Rᵀ = u diag(s) vᵀ`` (d_h×d_h), ``P_h = (Q_L u)ᵀ`` and ``Q_h = (Q_R v)ᵀ``.

    Parameters
    ----------
    L : torch.Tensor or array
        H·d_h×d_L, the row blocks ``L_h`` (d_h×d_L) of the heads.
    R : torch.Tensor or array
        H·d_h×d_R, the row blocks ``R_h``, of the same kind as ``L``.
    n_heads : int
        ``H``; must divide the number of rows.

    Returns
    -------
    CLOVERFactors
        As the caller's kind and dtype (computed in float32 for lower precisions).

    Raises
    ------
    ValueError
        If ``L`` and ``R`` differ in rows, ``n_heads`` does not divide them, or the head
        dimension exceeds a column count.
    """
    check_same_kind("L", L, "R", R)
    L, _, back = _xp.prepare(L, "L", paths=("torch",))
    R = _xp.to_path(check_array(R, "R"), "torch", like=L)
    n_heads = check_positive_int(n_heads, "n_heads")
    if L.shape[0] != R.shape[0] or L.shape[0] % n_heads:
        raise ValueError(f"L and R need the same number of rows, divisible by n_heads="
                         f"{n_heads}; got {tuple(L.shape)} and {tuple(R.shape)}")
    dh = L.shape[0] // n_heads
    if min(L.shape[1], R.shape[1]) < dh:
        raise ValueError(f"head dimension {dh} exceeds the column counts {L.shape[1]}, "
                         f"{R.shape[1]}")
    Lh = _xp.linalg_float(L).unflatten(0, (n_heads, dh))  # H × d_h × d_L
    Rh = _xp.linalg_float(R).unflatten(0, (n_heads, dh))
    QL, RL = _xp.qr(Lh.mT)
    QR_, RR = _xp.qr(Rh.mT)
    u, s, vt = _xp.svd(RL @ RR.mT)
    P = (QL @ u).mT.flatten(0, 1)
    Q = (vt @ QR_.mT).flatten(0, 1)
    return back(CLOVERFactors(P.contiguous(), s, Q.contiguous()))


def _augmented(layer: nn.Linear, with_bias: bool) -> torch.Tensor:
    """``[W | b]`` (a zero column for a layer without bias), or ``W`` alone."""
    W = layer.weight.detach()
    if not with_bias:
        return W
    b = layer.bias.detach() if layer.bias is not None else torch.zeros_like(W[:, 0])
    return torch.cat([W, b[:, None]], 1)


@torch.no_grad()
def _assign(layer: nn.Linear, M: torch.Tensor) -> None:
    """Write an (augmented) factor back: weight columns, and the last column into the bias."""
    f: dict[str, Any] = {"dtype": layer.weight.dtype, "device": layer.weight.device}
    d = layer.in_features
    layer.weight.data = M[:, :d].to(**f).contiguous()
    if layer.bias is not None:
        layer.bias.data = M[:, d].to(**f).contiguous()


class CLOVERLinear(AdapterLayer):
    """The carrier of a CLOVER pair (query or value projection): the base holds the
    orthonormal head rows, and each head's output is multiplied by the trainable core
    ``clover_core`` (H×d_h singular values, or H×d_h×d_h with ``full``):
    ``y_h = T_h (P_h x + p_h)``. Merging folds ``T_h`` into the weight and the bias.

    Parameters
    ----------
    base : torch.nn.Linear
        The query (or value) projection, already holding the orthonormal head rows.
    s : torch.Tensor
        H×d_h singular values, the core's initial value.
    full : bool
        Train a full d_h×d_h core per head instead of the singular values.
    """

    base: nn.Linear
    clover_weight: torch.Tensor
    clover_bias: torch.Tensor | None

    def __init__(self, base: nn.Linear, s: torch.Tensor, *, full: bool) -> None:
        super().__init__(base)
        f = self._factory()
        self.n_heads, self.head_dim = s.shape
        self.full = bool(full)
        core = torch.diag_embed(s) if full else s
        self.clover_core = nn.Parameter(core.to(**f).contiguous())
        self.register_buffer("clover_weight", base.weight.detach().clone(), persistent=False)
        bias = base.bias.detach().clone() if base.bias is not None else None
        self.register_buffer("clover_bias", bias, persistent=False)

    def _mix(self, h):
        """Apply ``T_h`` to the head blocks of the last axis of ``h`` (…×H·d_h)."""
        h = h.unflatten(-1, (self.n_heads, self.head_dim))
        T = self.clover_core.to(h.dtype)
        out = torch.einsum("hij,...hj->...hi", T, h) if self.full else h * T
        return out.flatten(-2)

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        return self._mix(base_out)

    def delta_merge(self, W: torch.Tensor) -> torch.Tensor:
        return self._mix(W.mT).mT

    def delta_unmerge(self, W: torch.Tensor) -> torch.Tensor:
        return self.clover_weight.to(W.dtype).clone()

    def delta_weight(self) -> torch.Tensor:
        W = self.clover_weight.float()
        return self._mix(W.mT).mT - W

    def merge(self, *, safe: bool = True) -> None:
        super().merge(safe=safe)
        if self.base.bias is not None:
            with torch.no_grad():
                self.base.bias.data = self._mix(self.clover_bias)

    def unmerge(self) -> None:
        super().unmerge()
        if self.base.bias is not None:
            self.base.bias.data = self.clover_bias.clone()  # type: ignore[union-attr]  # with bias


def _pairs(pairs, what):
    pairs = list(pairs)
    if not all(isinstance(p, tuple | list) and len(p) == 2 and all(isinstance(n, str) for n in p)
               for p in pairs):
        raise TypeError(f"{what} must be a list of (name, name) pairs; got {pairs!r}")
    return pairs


def clover_wrap(model: nn.Module, n_heads: int, *, qk: Iterable = (), vo: Iterable = (),
                train: str = "diagonal") -> nn.Module:
    """Orthogonalise attention pairs of ``model`` in place and make their singular values the
    only trainable parameters.

    Parameters
    ----------
    model : torch.nn.Module
    n_heads : int
        Heads per projection (query, key and value share the head layout; grouped-query
        attention is not handled).
    qk : list of (query_name, key_name)
        Full module names of ``nn.Linear`` query/key projections whose logits are plain dot
        products per head (no rotary encoding between them).
    vo : list of (value_name, output_name)
        Value projection and the output projection that consumes the heads' concatenation.
    train : {"diagonal", "full"}
        Train the H·d_h singular values per pair, or a full d_h×d_h core per head.

    Returns
    -------
    model
        With every parameter frozen except the cores; the query (value) modules are replaced
        by :class:`CLOVERLinear`, the key (output) weights by their orthonormal rows (columns).
    """
    check_choice(train, "train", ("diagonal", "full"))
    n_heads = check_positive_int(n_heads, "n_heads")
    qk, vo = _pairs(qk, "qk"), _pairs(vo, "vo")
    if not qk and not vo:
        raise ValueError("give at least one qk or vo pair")
    modules = dict(model.named_modules())
    names = [n for p in qk + vo for n in p]
    if len(set(names)) != len(names):
        raise ValueError(f"every module may appear in one pair only; got {names}")
    for n in names:
        if not isinstance(modules.get(n), nn.Linear):
            raise TypeError(f"{n!r} must name a torch.nn.Linear of the model")
    for p in model.parameters():
        p.requires_grad_(False)
    carriers = {}
    for q_name, k_name in qk:
        q, k = modules[q_name], modules[k_name]
        aug = q.bias is not None or k.bias is not None
        f = clover_orthogonalize(_xp.linalg_float(_augmented(q, aug)),
                                 _xp.linalg_float(_augmented(k, aug)), n_heads)
        # for a layer without bias the last column of its factor vanishes (dropped)
        _assign(q, f.P)
        _assign(k, f.Q)
        carriers[q_name] = f.s
    for v_name, o_name in vo:
        v, o = modules[v_name], modules[o_name]
        if o.in_features != v.out_features:
            raise ValueError(f"{o_name} must consume the {v.out_features} outputs of {v_name}")
        f = clover_orthogonalize(_xp.linalg_float(o.weight.detach().mT),
                                 _xp.linalg_float(_augmented(v, v.bias is not None)), n_heads)
        with torch.no_grad():
            o.weight.data = f.P.mT.to(o.weight.dtype).contiguous()
        _assign(v, f.Q)
        carriers[v_name] = f.s
    for name, s in carriers.items():
        parent_name, _, child = name.rpartition(".")
        parent = modules[parent_name] if parent_name else model
        setattr(parent, child, CLOVERLinear(modules[name], s, full=train == "full"))
    return model

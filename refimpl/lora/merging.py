"""Decom-Renorm-Merge (tier B): merge the weight updates of several fine-tuned models in a joint
singular-vector space instead of entry by entry.

For one weight matrix and ``T`` task updates ``ΔW_t`` (m×n), horizontal stacking takes the
SVD ``[ΔW_1 … ΔW_T] = U S [V_1ᵀ … V_Tᵀ]`` (directions with ``S < rank_tol·S_max`` dropped), so
that every task is ``ΔW_t = U S V_tᵀ`` in the shared left basis ``U``. Renormalisation makes each
task's coordinates comparable: every row of ``V_tᵀ`` is scaled to unit norm and its norm moved
into per-task singular values, ``ΔW_t = U diag(S_t) C_t``. Merging then works entry-wise on the
normalised coordinates ``C_t`` as TIES does on raw weights: keep the largest ``1 − drop``
fraction of their magnitudes (over all tasks together), multiply back by ``S_t`` (and the
task coefficients), elect a sign per entry from the sum over tasks and zero the entries that
disagree, and average the surviving entries (zeros excluded, the "disjoint mean"); the merged
update is ``U`` times that average. Vertical stacking (``[ΔW_1; …; ΔW_T] = [U_1; …; U_T] S Vᵀ``)
is the same with the roles of the two sides exchanged, normalising the columns of ``U_t``.

Written from Chaichana et al. (2025) and the steps of their public code; two differences: a
task's coordinate row (column) whose weight ``S_i·‖row‖`` is below ``rank_tol·S_max`` is set
to zero rather than renormalised (the public code divides it by its norm, which turns a
rounding-level row into a unit-norm one that then counts in the disjoint mean), and
``drop=0`` merges without pruning (the public code then returns the unmerged stack).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from refimpl import _xp
from refimpl._typing import Array
from refimpl._validation import check_array, check_choice, check_rate, check_same_kind

__all__ = ["DRMDecomposition", "drm_decompose", "drm_merge"]


class DRMDecomposition(NamedTuple):
    """``ΔW_t = basis @ diag(scales[t]) @ coords[t]`` (horizontal) or
    ``coords[t] @ diag(scales[t]) @ basis`` (vertical), exact up to the dropped directions.

    Attributes
    ----------
    basis : torch.Tensor
        m×k (horizontal) or k×n (vertical), orthonormal.
    scales : torch.Tensor
        T×k per-task singular values.
    coords : torch.Tensor
        T×k×n (horizontal) or T×m×k (vertical), with unit-norm (or zero) rows (horizontal) or
        columns (vertical).
    stack : str
        ``"horizontal"`` or ``"vertical"``.
    """

    basis: Any
    scales: Any
    coords: Any
    stack: str


def _stacked(deltas):
    """The T×m×n stack of ``deltas`` on torch (float32 or float64), and the way back to the
    caller's kind and dtype."""
    if isinstance(deltas, list | tuple):
        if not deltas:
            raise ValueError("deltas must be a non-empty list of matrices or a T×m×n array")
        mats = [check_array(d, f"deltas[{i}]") for i, d in enumerate(deltas)]
        for i, d in enumerate(mats[1:], 1):
            check_same_kind("deltas[0]", mats[0], f"deltas[{i}]", d)
        if len({tuple(d.shape) for d in mats}) != 1:
            raise ValueError(f"deltas must hold matrices of one shape; got "
                             f"{[tuple(d.shape) for d in mats]}")
        deltas = _xp.stack(mats)
    D, _, back = _xp.prepare(deltas, "deltas", ndim=3, paths=("torch",))
    return _xp.linalg_float(D), back


def drm_decompose(deltas: Sequence[Array] | Array, *, stack: str = "horizontal",
                  rank_tol: float = 1e-2) -> DRMDecomposition:
    """The "decompose" and "renormalise" steps of DRM (see the module docstring).

    Parameters
    ----------
    deltas : list of matrices, or a (T, m, n) array or tensor
        ``T`` task updates of one shape m×n (fine-tuned minus pretrained weights, or LoRA
        updates ``s B A``).
    stack : {"horizontal", "vertical"}
        Share the left singular vectors (horizontal, the paper's default) or the right ones.
    rank_tol : float
        Directions with singular value below ``rank_tol`` times the largest are dropped (the
        public code's 1 %); 0 keeps all ``min(m, T·n)`` directions (numerically zero ones
        included) and the decomposition is exact.

    Returns
    -------
    DRMDecomposition
        As the caller's kind and dtype (computed in float32 for lower precisions).

    Raises
    ------
    ValueError
        If ``deltas`` is empty or of mixed shapes, ``stack`` unknown or ``rank_tol`` not in
        [0, 1).
    """
    D, back = _stacked(deltas)
    check_choice(stack, "stack", ("horizontal", "vertical"))
    rank_tol = check_rate(rank_tol, "rank_tol")
    return back(_decompose(D, stack, rank_tol))


def _decompose(D, stack, rank_tol):
    T, m, n = D.shape
    if stack == "vertical":  # the transpose of the horizontal problem
        out = _decompose(D.mT, "horizontal", rank_tol)
        return DRMDecomposition(out.basis.mT, out.scales, out.coords.mT, "vertical")
    U, S, Vt = _xp.svd(D.permute(1, 0, 2).reshape(m, T * n))
    keep = S > rank_tol * S[0] if rank_tol > 0 else torch.ones_like(S, dtype=torch.bool)
    U, S, Vt = U[:, keep], S[keep], Vt[keep]
    C = Vt.reshape(-1, T, n).permute(1, 0, 2)  # T × k × n
    norms = torch.linalg.vector_norm(C, dim=-1)  # T × k
    # a task whose weight on a direction is below the rank threshold has no component there
    # (renormalising its rounding-level row would blow it up to unit norm)
    norms = torch.where(S * norms > rank_tol * S[0], norms, 0) if rank_tol > 0 else norms
    C = torch.where(norms[..., None] > 0, C / torch.where(norms > 0, norms, 1)[..., None], 0)
    return DRMDecomposition(U, S * norms, C, "horizontal")


def drm_merge(deltas: Sequence[Array] | Array, *, drop: float = 0.0,
              coeffs: float | Sequence[float] = 1.0, stack: str = "horizontal",
              rank_tol: float = 1e-2, disjoint: bool = True) -> torch.Tensor:
    """Decom-Renorm-Merge of ``T`` task updates of one matrix; returns the merged update (m×n).

    Parameters
    ----------
    deltas : list of torch.Tensor or torch.Tensor
        As in :func:`drm_decompose`.
    drop : float
        Fraction of the normalised coordinates (all tasks pooled) zeroed by magnitude.
    coeffs : float or sequence of T floats
        Per-task merging coefficients (applied before the sign election).
    disjoint : bool
        Average over the tasks whose entry survived (True) or over all ``T`` tasks.
    stack, rank_tol
        As in :func:`drm_decompose`.

    Returns
    -------
    array or tensor
        The merged update, m×n, as the caller's kind and dtype.

    Raises
    ------
    ValueError
        If ``drop`` is not in [0, 1), ``coeffs`` has the wrong length, or as
        :func:`drm_decompose`.
    """
    D, back = _stacked(deltas)
    check_choice(stack, "stack", ("horizontal", "vertical"))
    drop = check_rate(drop, "drop")
    dec = _decompose(D, stack, check_rate(rank_tol, "rank_tol"))
    C = dec.coords.clone()
    T = C.shape[0]
    if drop > 0:
        keep = C.numel() - round(C.numel() * drop)
        mask = torch.zeros(C.numel(), dtype=torch.bool, device=C.device)
        mask[C.abs().flatten().topk(keep).indices] = True
        C = C * mask.reshape(C.shape)
    lam = torch.as_tensor(coeffs, dtype=C.dtype, device=C.device).reshape(-1)
    if lam.numel() not in (1, T):
        raise ValueError(f"coeffs must be a number or {T} numbers; got {lam.numel()}")
    lam = lam.expand(T)[:, None, None]
    if stack == "horizontal":
        X = dec.scales[..., None] * C * lam  # rows scaled
    else:
        X = C * dec.scales[:, None, :] * lam  # columns scaled
    sign = torch.sign(X.sum(0))
    sign[sign == 0] = torch.sign(sign.sum()) if sign.sum() != 0 else 1
    X = torch.where(torch.sign(X) == sign, X, torch.zeros_like(X))
    count = (X != 0).sum(0).clamp(min=1) if disjoint else T
    merged = X.sum(0) / count
    return back(dec.basis @ merged if stack == "horizontal" else merged @ dec.basis)

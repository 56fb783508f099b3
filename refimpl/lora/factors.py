"""The adapters' initial factors taken from the pretrained weight: PiSSA/MiLoRA, OLoRA, CorDA,
NLoRA's Nyström factors; each returns its factors and the frozen residual as the caller's array
kind and dtype."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from refimpl import _xp
from refimpl._typing import Array, ArrayT, SeedLike
from refimpl._validation import (
    check_array,
    check_choice,
    check_positive,
    check_positive_int,
    check_rank,
    check_same_kind,
    check_square,
)

__all__ = [
    "LowRankFactors",
    "NystromFactors",
    "corda_damped_covariance",
    "corda_factors",
    "nystrom_factors",
    "olora_factors",
    "pissa_factors",
]


class LowRankFactors(NamedTuple):
    """An adapter's initial factors and the frozen residual: ``W = residual + s·B A``.

    Attributes
    ----------
    A : (r, d_in) array or tensor
        The down-projection.
    B : (d_out, r) array or tensor
        The up-projection.
    residual : (d_out, d_in) array or tensor
        ``W − s·B A``, which replaces the base weight so that the model is unchanged.
    """

    A: Any
    B: Any
    residual: Any


class NystromFactors(NamedTuple):
    """NLoRA's initial factors and the frozen residual: ``W = residual + s·B N A``.

    Attributes
    ----------
    A : (r, d_in) array or tensor
        The chosen rows ``W[I, :]``.
    N : (r, r) array or tensor
        The core ``W[I, J]⁻¹ / s``.
    B : (d_out, r) array or tensor
        The chosen columns ``W[:, J]``.
    residual : (d_out, d_in) array or tensor
        ``W − s·B N A``.
    """

    A: Any
    N: Any
    B: Any
    residual: Any


def _weight(W, rank):
    """``W`` on torch in a LAPACK dtype, the checked rank, and the way back to the caller's kind.

    The factor functions compute in the input's precision (float32 for float16/bfloat16);
    the adapters' builds pass float32 weights, as PEFT does.
    """
    W, _, back = _xp.prepare(W, "W", paths=("torch",))
    return _xp.linalg_float(W), check_rank(rank, "rank", min(W.shape)), back


def pissa_factors(W: Array, rank: int, s: float, *, smallest: bool = False,
                  svd: str = "exact", n_iter: int = 4, seed: SeedLike = None) -> LowRankFactors:
    """PiSSA (and MiLoRA with ``smallest=True``) factors of ``W``.

    With ``W = U S Vᵀ`` and the ``rank`` largest (smallest) triplets,
    ``A = √(S_r/s) V_rᵀ``, ``B = U_r √(S_r/s)`` and the frozen residual
    ``W_res = W − s B A``, so ``W_res + s B A = W``.

    Parameters
    ----------
    W : (d_out, d_in) torch.Tensor or array
        The weight (float16/bfloat16 are computed in float32).
    rank : int
        ``r``, ``1 <= r <= min(d_out, d_in)``.
    s : float
        The adapter's scaling (α/r).
    smallest : bool
        Take the smallest triplets (MiLoRA) instead of the largest (PiSSA).
    svd : {"exact", "randomized"}
        ``"randomized"`` uses :func:`refimpl.sketch.randomized_svd` with ``n_iter`` power
        iterations (largest triplets only).
    n_iter : int
        Power iterations of the randomized SVD.
    seed : int, numpy.random.Generator or None
        Randomness of the randomized SVD.

    Returns
    -------
    LowRankFactors
        ``A`` (r×d_in), ``B`` (d_out×r) and the frozen residual ``W − s B A``, as the
        caller's kind and dtype.

    Raises
    ------
    ValueError
        If ``rank`` is out of range, ``svd`` unknown, or ``smallest`` asked of the randomized
        SVD.
    """
    W, rank, back = _weight(W, rank)
    check_choice(svd, "svd", ("exact", "randomized"))
    if svd == "exact":
        U, S, Vt = _xp.svd(W)
        sl = slice(-rank, None) if smallest else slice(0, rank)
        U, S, Vt = U[:, sl], S[sl], Vt[sl]
    else:
        if smallest:
            raise ValueError("the randomized SVD finds the largest triplets only")
        from refimpl.sketch import randomized_svd

        res = randomized_svd(W, rank, n_iter=n_iter, seed=seed, backend="torch")
        U, S, Vt = res.U, res.s, res.Vt
    root = (S / s).sqrt()
    A = root[:, None] * Vt
    B = U * root
    return back(LowRankFactors(A, B, W - s * (B @ A)))


def olora_factors(W: Array, rank: int, s: float) -> LowRankFactors:
    """OLoRA factors of ``W``: unpivoted QR ``W = Q R``, ``B = Q[:, :r]``, ``A = R[:r]``.

    The factors are not divided by ``s``, so the residual ``W − s B A`` depends on ``α``, and
    on the column order of ``W``.

    Parameters
    ----------
    W, rank, s
        As in :func:`pissa_factors`.

    Returns
    -------
    LowRankFactors
        ``A = R[:r]``, ``B = Q[:, :r]`` and the frozen residual ``W − s B A``.
    """
    W, rank, back = _weight(W, rank)
    Q, R = _xp.qr(W)
    A, B = R[:rank].contiguous(), Q[:, :rank].contiguous()
    return back(LowRankFactors(A, B, W - s * (B @ A)))


def corda_damped_covariance(C: ArrayT, *, damp: float = 0.01, tol: float = 0.05,
                            max_doublings: int = 60) -> tuple[ArrayT, ArrayT]:
    """Damp a calibration covariance until it inverts accurately.

    ``C + δ·mean(diag C)·I`` with ``δ`` doubled from ``damp`` until
    ``‖(C+δ…)(C+δ…)⁻¹ − I‖_F < tol`` (the rule of the CorDA authors' code, also PEFT's).

    Parameters
    ----------
    C : torch.Tensor or array
        A square covariance (e.g. from :func:`refimpl.lora.input_covariances`).
    damp : float
        Initial relative damping ``δ``, ``> 0``.
    tol : float
        Accepted ``‖C_d C_d⁻¹ − I‖_F``, ``> 0``.
    max_doublings : int
        How many times ``δ`` may double.

    Returns
    -------
    C_damped, C_damped_inv : torch.Tensor or array
        As the caller's kind and dtype (computed in at least float32).

    Raises
    ------
    ValueError
        If ``C`` is not square, or no damping within ``max_doublings`` inverts it.
    """
    C, _, back = _xp.prepare(C, "C", paths=("torch",))
    C = _xp.linalg_float(C)
    check_square(C, "C")
    damp = check_positive(damp, "damp")
    tol = check_positive(tol, "tol")
    max_doublings = check_positive_int(max_doublings, "max_doublings")
    eye = torch.eye(C.shape[0], dtype=C.dtype, device=C.device)
    scale = torch.diagonal(C).mean()
    for _ in range(max_doublings):
        Cd = C + eye * (scale * damp)
        Ci = torch.linalg.inv(Cd)
        if torch.dist(Cd @ Ci, eye).item() < tol:
            return back((Cd, Ci))
        damp *= 2
    raise ValueError("the covariance could not be damped into an invertible matrix")


def corda_factors(W: Array, C: Array, rank: int, s: float, *,
                  mode: str = "ipm") -> LowRankFactors:
    """CorDA factors of ``W`` from the input covariance ``C``.

    The SVD of ``W C_d`` (``C_d`` the damped covariance, :func:`corda_damped_covariance`) is
    mapped back so that ``W = U S (C_d⁻¹V)ᵀ`` exactly; ``A = √(S/s) (C_d⁻¹V)ᵀ``,
    ``B = U √(S/s)`` over the chosen triplets and ``W_res = W − s B A``.

    Parameters
    ----------
    W, rank, s
        As in :func:`pissa_factors`.
    C : torch.Tensor or array
        The input covariance, d_in×d_in, of the same kind as ``W``.
    mode : {"ipm", "kpm"}
        IPM (instruction-previewed) adapts the ``r`` largest triplets, KPM
        (knowledge-preserving) the ``r`` smallest.

    Returns
    -------
    LowRankFactors
        As in :func:`pissa_factors`, from the chosen triplets.

    Raises
    ------
    ValueError
        If ``rank`` is out of range, ``C`` has the wrong shape or ``mode`` is unknown.
    """
    check_same_kind("W", W, "C", C)
    W, rank, back = _weight(W, rank)
    check_choice(mode, "mode", ("ipm", "kpm"))
    C = _xp.to_path(check_array(C, "C"), "torch", like=W)
    if C.shape != (W.shape[1], W.shape[1]):
        raise ValueError(f"C must be {W.shape[1]}×{W.shape[1]}; got {tuple(C.shape)}")
    Cd, Ci = corda_damped_covariance(C)
    U, S, Vt = _xp.svd(W @ Cd)
    Vt = Vt @ Ci
    sl = slice(0, rank) if mode == "ipm" else slice(-rank, None)
    root = (S[sl] / s).sqrt()
    A = root[:, None] * Vt[sl]
    B = U[:, sl] * root
    return back(LowRankFactors(A, B, W - s * (B @ A)))


def nystrom_factors(W: Array, rank: int, s: float) -> NystromFactors:
    """NLoRA's Nyström factors of ``W``: the skeleton CUR
    ``W ≈ W[:, J] W[I, J]⁻¹ W[I, :]`` with ``I, J`` the pivots of pivoted QR
    (:func:`refimpl.meta.cur`).

    Parameters
    ----------
    W, rank, s
        As in :func:`pissa_factors`; ``rank`` rows and ``rank`` columns are picked.

    Returns
    -------
    NystromFactors
        ``A = W[I, :]``, ``N = W[I, J]⁻¹ / s``, ``B = W[:, J]`` and the frozen residual
        ``W_res = W − s B N A``.

    Raises
    ------
    ValueError
        If ``rank`` is out of range or the core ``W[I, J]`` is singular.
    """
    from refimpl.meta import cur

    W, rank, back = _weight(W, rank)
    c = cur(W, rank, u="skeleton")
    B, N, A = c.C, c.U / s, c.R
    if not bool(torch.isfinite(N).all()):
        raise ValueError("the Nyström core W[I, J] is singular; lower the rank")
    return back(NystromFactors(A, N, B, W - s * (B @ N @ A)))

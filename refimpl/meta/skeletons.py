r"""Interpolatory and sketched factorizations, and the pseudoinverse, as meta-factorizations.

Here the factors are not orthonormal bases but sketches of A (generalized Nyström), chosen
columns and rows of A (CUR) or a full-rank factorization of A (the pseudoinverse). Each
function returns its decomposition and the :class:`~refimpl.meta.MetaFactorization` behind it:

=====================  =====================================  =================================
instance               F, H                                   B, D
=====================  =====================================  =================================
generalized Nyström    A Ω, Aᵀ Ψ (Gaussian sketches)          Ψ, Ω
CUR (optimal U)        C = A[:, J], Rᵀ = A[I, :]ᵀ             F, H          → U = C⁺ A R⁺
CUR (skeleton)         C, Rᵀ                                  selectors S_I, S_J → U = A[I, J]⁻¹
Moore–Penrose          full-rank A = B D (from CPQR)          A⁺ = Dᵀ (Bᵀ A Dᵀ)⁻¹ Bᵀ
=====================  =====================================  =================================

The instances with orthonormal factors (CPQR, SVD, UTV/ULV) are in
:mod:`refimpl.meta.instances`; ``numerical_rank`` is shared with
:mod:`refimpl.meta.projectors`.

All accept a NumPy array or a torch tensor (batched, any device); ``backend`` chooses the
pivoted-QR kernel (``"numba"`` by default for NumPy input) or moves the whole computation to
torch (``backend="torch"``), returning the input's kind.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from refimpl import _xp
from refimpl._typing import Array
from refimpl._validation import check_choice, check_nonnegative_int, check_positive, check_rank
from refimpl.linalg import PivotedQR, cpqr
from refimpl.meta.core import MetaFactorization, instance_rank, meta_factorize
from refimpl.seeding import SeedLike, as_generator

_PATHS = ("numpy", "numba", "torch")


class Nystrom(NamedTuple):
    """Generalized Nyström: ``A ≈ (A Ω) (Ψᵀ A Ω)⁺ (Ψᵀ A)``.

    Attributes
    ----------
    AOmega : (..., m, k) array or tensor
        The right sketch ``A Ω``.
    core : (..., k, l) array or tensor
        ``(Ψᵀ A Ω)⁺``, truncated by ``rcond``.
    PsiA : (..., l, n) array or tensor
        The left sketch ``Ψᵀ A``.
    meta : MetaFactorization
        ``F = A Ω``, ``H = Aᵀ Ψ`` with test matrices ``B = Ψ``, ``D = Ω``; its core equals
        ``core``.
    """

    AOmega: Any
    core: Any
    PsiA: Any
    meta: MetaFactorization

    def reconstruct(self) -> Array:
        """``(A Ω) (Ψᵀ A Ω)⁺ (Ψᵀ A)``."""
        return self.AOmega @ self.core @ self.PsiA


def generalized_nystrom(A: Array, rank: int, *, oversample: int | None = None,
                        rcond: float | None = None, seed: SeedLike = None,
                        backend: str = "auto") -> Nystrom:
    r"""Generalized Nyström approximation (Nakatsukasa, 2020) as a meta-factorization.

    With Gaussian sketches Ω (n×k) and Ψ (m×l), ``l = min(m, k + oversample)``, take
    ``F = A Ω``, ``H = Aᵀ Ψ`` and the test matrices ``B = Ψ``, ``D = Ω``. The core
    ``G = Yᵀ A X`` collapses to :math:`(\Psi^\top A \Omega)^+`, so

    .. math:: A \approx A\Omega\,(\Psi^\top A \Omega)^+\,\Psi^\top A .

    Oversampling the left sketch (``l > k``) is what keeps the pseudoinverse well posed;
    ``rcond`` truncates the small singular values of the l×k core (the stabilised form).
    The sketches are drawn from NumPy's generator for ``seed``, so every backend sees the
    same Ω and Ψ.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) tensor
        Real floating-point matrix (batches on the torch path, one Ω and Ψ per matrix).
    rank : int
        Columns ``k`` of the right sketch Ω, ``1 <= k <= min(m, n)``.
    oversample : int, optional
        Extra columns ``l - k >= 0`` of the left sketch Ψ; default ``ceil(k / 2)``
        (``l = ceil(1.5 k)``, Nakatsukasa's recommendation).
    rcond : float, optional
        Relative cut-off (``>= 0``) for the pseudoinverse of the core; default the
        library's.
    seed : int or numpy.random.Generator, optional
        Draws Ω, then Ψ.
    backend : {"auto", "numpy", "numba", "torch"}
        ``"torch"`` computes on torch; the other paths are NumPy (the choice only matters
        to the other instances).

    Returns
    -------
    Nystrom
        The input's array kind, device and dtype.

    Raises
    ------
    ValueError
        If ``rank`` or ``oversample`` is out of range, or ``A`` is empty or not finite.
    TypeError
        If ``A`` is not a real floating-point array, or ``rank`` or ``oversample`` not an
        integer.
    """
    A, path, back = _xp.prepare(A, backend=backend, paths=_PATHS, prefer="numba")
    k = instance_rank(rank, A)
    p = math.ceil(k / 2) if oversample is None else check_nonnegative_int(oversample,
                                                                            "oversample")
    m, n = A.shape[-2:]
    l = min(m, k + p)
    rng = as_generator(seed)
    batch = tuple(A.shape[:-2])
    dtype = _xp.float_dtype(A)
    Omega = _xp.to_path(rng.standard_normal((*batch, n, k)).astype(dtype), path, like=A)
    Psi = _xp.to_path(rng.standard_normal((*batch, m, l)).astype(dtype), path, like=A)
    AOmega = A @ Omega
    PsiA = _xp.mT(Psi) @ A
    meta = meta_factorize(A, AOmega, _xp.mT(PsiA), B=Psi, D=Omega, method="pinv",
                          rcond=rcond)
    core = _xp.pinv(_xp.mT(Psi) @ AOmega, rtol=rcond)
    return back(Nystrom(AOmega, core, PsiA, meta))


class CUR(NamedTuple):
    """``A ≈ C U R`` with ``C = A[:, cols]`` and ``R = A[rows, :]``.

    Attributes
    ----------
    C : (..., m, k) array or tensor
        The chosen columns of A.
    U : (..., k, k) array or tensor
        The middle factor (``C⁺ A R⁺`` or ``A[rows, cols]⁻¹``).
    R : (..., k, n) array or tensor
        The chosen rows of A.
    rows : (..., k) integer array or tensor
        Row indices.
    cols : (..., k) integer array or tensor
        Column indices.
    meta : MetaFactorization
        ``F = C``, ``H = Rᵀ`` with the test matrices of ``u``; its core is ``U``.
    """

    C: Any
    U: Any
    R: Any
    rows: Any
    cols: Any
    meta: MetaFactorization

    def reconstruct(self) -> Array:
        """``C U R``."""
        return self.C @ self.U @ self.R


def cur(A: Array, rank: int, *, u: str = "optimal", rows: Array | None = None,
        cols: Array | None = None, backend: str = "auto") -> CUR:
    r"""CUR decomposition as a meta-factorization with ``F = C``, ``H = Rᵀ``.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) tensor
        Real floating-point matrix (batches on the torch path).
    rank : int
        Number ``k`` of rows and of columns, ``1 <= k <= min(m, n)``.
    u : {"optimal", "skeleton"}
        ``"optimal"``: test matrices ``B = C``, ``D = Rᵀ`` give the Frobenius-optimal middle
        factor :math:`U = C^+ A R^+`. ``"skeleton"``: selector test matrices ``B = S_I``,
        ``D = S_J`` give :math:`U = A[I, J]^{-1}`, which interpolates A on the chosen rows
        and columns.
    rows, cols : (..., k) integer arrays, optional
        The selections (distinct indices, NumPy or torch); by default the first k pivots of
        pivoted QR of Aᵀ (rows of A) and of A (columns), as in a QR-based DEIM selection.
    backend : {"auto", "numpy", "numba", "torch"}
        As in :func:`~refimpl.meta.cpqr_meta`.

    Returns
    -------
    CUR
        The input's array kind, device and dtype.

    Raises
    ------
    ValueError
        If ``rank`` or ``u`` is out of range, ``rows``/``cols`` are not ``k`` distinct
        in-range integer indices, ``u="skeleton"`` meets a singular ``A[I, J]``, or ``A`` is
        empty or not finite.
    TypeError
        If ``A`` is not a real floating-point array or ``rank`` not an integer.
    """
    A, path, back = _xp.prepare(A, backend=backend, paths=_PATHS, prefer="numba")
    k = instance_rank(rank, A)
    check_choice(u, "u", ("optimal", "skeleton"))
    m, n = A.shape[-2:]
    if cols is None:
        cols = cpqr(A, k, backend=path).perm[..., :k]
    else:
        cols = _check_index(cols, "cols", n, k, A, path)
    if rows is None:
        rows = cpqr(_xp.mT(A), k, backend=path).perm[..., :k]
    else:
        rows = _check_index(rows, "rows", m, k, A, path)
    C = _xp.take_cols(A, cols)
    R = _xp.take_rows(A, rows)
    if u == "optimal":
        meta = meta_factorize(A, C, _xp.mT(R), method="pinv")
    else:
        meta = meta_factorize(A, C, _xp.mT(R), B=_xp.selector(m, rows, A),
                              D=_xp.selector(n, cols, A), method="solve")
    return back(CUR(C, meta.G, R, rows, cols, meta))


def _check_index(idx: Array, name: str, size: int, k: int, A: Array,
                 path: str) -> Array:
    arr = _xp.to_numpy(idx)
    if arr.shape[-1:] != (k,) or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold {k} integer indices; got shape {arr.shape} "
                         f"and dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= size:
        raise ValueError(f"{name} must index 0..{size - 1}; got values {arr.min()}..{arr.max()}")
    if any(len(set(r)) != k for r in arr.reshape(-1, k).tolist()):
        raise ValueError(f"{name} must not repeat an index")
    return _xp.to_path(arr, path, like=A)


def numerical_rank(qr: PivotedQR, rtol: float | None = None) -> int:
    """Numerical rank from pivoted QR: the number of ``|R_ii| > rtol·|R_11|``.

    The default ``rtol = max(m, n)·eps`` matches ``numpy.linalg.matrix_rank``'s spirit with
    R's diagonal standing in for the singular values.

    Parameters
    ----------
    qr : refimpl.linalg.PivotedQR
        A (full) pivoted QR of A, NumPy or torch, possibly batched.
    rtol : float, optional
        Relative threshold (``>= 0``) on ``|R_ii| / |R_11|``.

    Returns
    -------
    int
        The rank, at least 1.

    Raises
    ------
    ValueError
        If the matrices of a batch have different numerical ranks (pass the rank
        explicitly), or ``rtol`` is negative or not finite.
    """
    m, n = qr.Q.shape[-2], qr.R.shape[-1]
    tol = max(m, n) * _xp.eps(qr.R) if rtol is None else check_positive(rtol, "rtol",
                                                                         allow_zero=True)
    d = np.abs(_xp.to_numpy(qr.R).diagonal(0, -2, -1))
    ranks = np.sum(d > tol * d[..., :1], axis=-1)
    if np.unique(ranks).size != 1:
        raise ValueError(f"matrices of the batch have different numerical ranks "
                         f"{sorted(set(ranks.ravel().tolist()))}; pass the rank explicitly")
    return max(1, int(np.ravel(ranks)[0]))


class PinvMeta(NamedTuple):
    """The Moore–Penrose pseudoinverse and the meta-factorization it was read from.

    Attributes
    ----------
    pinv : (..., n, m) array or tensor
        ``A⁺``.
    rank : int
        The rank ``r`` of the full-rank factorization ``A = B D`` used.
    meta : MetaFactorization
        ``F = B = Q_r``, ``H = Dᵀ``; its core is the r×r identity to rounding.
    """

    pinv: Any
    rank: int
    meta: MetaFactorization


def pinv_meta(A: Array, *, rank: int | None = None, rtol: float | None = None,
              backend: str = "auto") -> PinvMeta:
    r"""The Moore–Penrose pseudoinverse from a full-rank factorization ``A = B D``.

    Pivoted QR gives ``A = B D`` with ``B = Q_r`` (m×r) and ``D = R_r Pᵀ`` (r×n) for the
    numerical rank r (the number of ``|R_ii| > rtol·|R_11|``, default
    ``rtol = max(m, n)·eps``); then

    .. math:: A^+ = D^\top (B^\top A D^\top)^{-1} B^\top ,

    computed as ``X G⁻¹ Yᵀ`` from the meta-factorization of A with ``F = B``, ``H = Dᵀ``
    (whose core G is the r×r identity up to rounding).

    Parameters
    ----------
    A : (m, n) array or (..., m, n) tensor
        Real floating-point matrix (batches on the torch path).
    rank : int, optional
        The rank ``r`` to use, ``1 <= r <= min(m, n)``; default the numerical rank (on the
        torch path every matrix of a batch must then have the same one).
    rtol : float, optional
        Relative threshold of the numerical rank, see ``refimpl.meta.skeletons.numerical_rank``.
    backend : {"auto", "numpy", "numba", "torch"}
        As in :func:`~refimpl.meta.cpqr_meta`.

    Returns
    -------
    PinvMeta
        ``pinv`` (n×m) and its factors, as the input's array kind, device and dtype.

    Raises
    ------
    ValueError
        If ``rank`` is out of range, a batch has mixed numerical ranks, or ``A`` is empty or
        not finite.
    TypeError
        If ``A`` is not a real floating-point array.
    """
    A, path, back = _xp.prepare(A, backend=backend, paths=_PATHS, prefer="numba")
    m, n = A.shape[-2:]
    qr = cpqr(A, backend=path)
    rank = numerical_rank(qr, rtol) if rank is None else check_rank(rank, "rank", min(m, n))
    Bf = qr.Q[..., :, :rank]
    Hf = _xp.mT(_xp.unpermute_cols(qr.R[..., :rank, :], qr.perm))  # P R_rᵀ, n × r, = Dᵀ
    # The meta-factorization of A with F = B, H = Dᵀ has core G = I_r (to rounding) and
    # A⁺ = X G⁻¹ Yᵀ, which expands to Dᵀ (Bᵀ A Dᵀ)⁻¹ Bᵀ.
    meta = meta_factorize(A, Bf, Hf, method="solve")
    P = meta.X @ _xp.solve(meta.G, _xp.mT(meta.Y))
    return back(PinvMeta(P, rank, meta))

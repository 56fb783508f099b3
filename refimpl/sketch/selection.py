r"""Choosing rows and columns: leverage scores, interpolative decomposition, DEIM, CUR and
Nyström for positive semidefinite matrices.

- Leverage scores of the rows of ``A`` for rank ``k``: :math:`\ell_i = \|U_k[i, :]\|^2`
  (``U_k`` the top-k left singular vectors); they sum to ``k``. ``svd="randomized"`` takes
  ``U_k`` from :func:`~refimpl.sketch.randomized_svd` instead of the full SVD.
- Column interpolative decomposition (ID): :math:`A \approx A[:, J]\,X` with ``X`` (k×n),
  :math:`X[:, J] = I_k`. From pivoted QR :math:`A P = Q [R_{11}\; R_{12}]`:
  :math:`X[:, P] = [I\;\; R_{11}^{-1} R_{12}]` and the error is the norm of the block
  pivoted QR did not factor. The randomized ID runs the same on the small ``Qᵀ A``,
  ``Q`` (m×(k+p)) from the randomized range finder: its columns have the linear
  dependencies of the columns of :math:`QQ^\top A \approx A`.
- DEIM (Chaturantabut & Sorensen; Sorensen & Embree for CUR): greedy interpolation indices
  from a basis ``V`` (n×k), :math:`p_j = \arg\max_i |(v_j - V_{:, <j} V_{p, <j}^{-1} v_{j,p})_i|`.
- CUR: rows and columns chosen by DEIM, by leverage-score sampling or by pivoted QR; the
  middle factor (optimal :math:`C^+ A R^+` or skeleton :math:`A[I, J]^{-1}`) is computed by
  :func:`refimpl.meta.cur`.
- Nyström for PSD ``A`` (Tropp, Yurtsever, Udell & Cevher, 2017, the stable variant): with
  ``Y = A Ω``, a shift :math:`\nu = \sqrt{n}\,\varepsilon\,\|Y\|_F`, ``Y_ν = Y + νΩ``,
  ``Ωᵀ Y_ν = L Lᵀ``, ``F = Y_ν L^{-T} = U Σ Wᵀ``:
  :math:`\hat A = U \max(\Sigma^2 - \nu I, 0) U^\top`, positive semidefinite by construction.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from refimpl import _validation, _xp
from refimpl._typing import Array, ArrayT
from refimpl._validation import (
    check_choice,
    check_nonnegative_int,
    check_positive,
    check_rank,
    check_square,
)
from refimpl.linalg import cpqr
from refimpl.seeding import SeedLike, as_generator
from refimpl.sketch.rsvd import _test_matrix, randomized_range_finder, randomized_svd

if TYPE_CHECKING:
    from refimpl.meta import CUR

SVD_METHODS = ("exact", "randomized")
"""The values of the ``svd`` option: the exact (deterministic) or the randomized route."""


def _top_singular_vectors(A, k, svd, seed):
    """U_k, V_k (as columns) of a 2-D A, exactly or by randomized SVD."""
    if svd == "exact":
        U, _, Vt = _xp.svd(A)
        return U[..., :, :k], _xp.mT(Vt[..., :k, :])
    r = randomized_svd(A, k, seed=seed)
    return r.U, _xp.mT(r.Vt)


def leverage_scores(A: ArrayT, rank: int | None = None, *, svd: str = "exact",
                    seed: SeedLike = None) -> ArrayT:
    """Rank-``rank`` leverage scores of the rows of ``A`` (pass ``Aᵀ`` for the columns).

    Parameters
    ----------
    A : (m, n) array or (..., m, n) tensor
        Real floating-point matrix (batches as torch tensors).
    rank : int, optional
        ``k``, ``1 <= k <= min(m, n)``; default the numerical rank (singular values above
        ``max(m, n)·eps·σ_1``), which needs ``svd="exact"``.
    svd : {"exact", "randomized"}
        Take ``U_k`` from the full SVD or from :func:`~refimpl.sketch.randomized_svd`.
    seed : int or numpy.random.Generator, optional
        For ``svd="randomized"``.

    Returns
    -------
    array or tensor
        (..., m) scores in [0, 1] that sum to ``k``; the input's array kind, device and
        dtype.

    Raises
    ------
    ValueError
        If ``rank`` or ``svd`` is out of range (or ``rank=None`` with ``svd="randomized"``),
        or ``A`` is empty or not finite.
    TypeError
        If ``A`` is not a real floating-point array.
    """
    A, _, back = _xp.prepare(A)
    check_choice(svd, "svd", SVD_METHODS)
    m, n = A.shape[-2:]
    if rank is None:
        if svd != "exact":
            raise ValueError("rank=None (numerical rank) needs svd='exact'")
        U, s, _ = _xp.svd(A)
        s_np = _xp.to_numpy(s)
        ranks = np.sum(s_np > max(m, n) * _xp.eps(A) * s_np[..., :1], axis=-1)
        U = U[..., :, :int(np.max(ranks))]
    else:
        k = check_rank(rank, "rank", min(m, n))
        U = _top_singular_vectors(A, k, svd, seed)[0]
    return back((U * U).sum(-1))


class InterpolativeDecomposition(NamedTuple):
    """``A ≈ C X`` with ``C = A[:, cols]`` and ``X[:, cols] = I``.

    Attributes
    ----------
    C : (..., m, k) array or tensor
        The skeleton columns of A.
    X : (..., k, n) array or tensor
        The interpolation matrix, the identity on the skeleton columns.
    cols : (..., k) integer array or tensor
        The skeleton column indices.
    """

    C: Any
    X: Any
    cols: Any

    def reconstruct(self) -> Array:
        """``C X``."""
        return self.C @ self.X


def _interpolation_matrix(R, perm, k, path):
    """X (k×n) with X[:, perm] = [I, R11⁻¹ R12]; minimum-norm solve when R11 is singular."""
    R11, R12 = R[..., :k, :k], R[..., :k, k:]
    d = np.abs(_xp.to_numpy(R11).diagonal(0, -2, -1))
    singular = R.shape[-1] > k and bool(
        np.any(d[..., -1] <= max(R.shape[-2:]) * _xp.eps(R) * d[..., 0]))
    if path == "torch":
        import torch

        T = (torch.linalg.lstsq(R11, R12, driver="gelsd" if R.device.type == "cpu" else None)
             .solution if singular else torch.linalg.solve_triangular(R11, R12, upper=True))
        M = torch.cat((_xp.eye_like(k, R).expand(*R.shape[:-2], k, k), T), dim=-1)
        X = torch.zeros_like(M)
        X.scatter_(-1, perm.unsqueeze(-2).expand_as(M), M)
        return X
    import scipy.linalg as sla

    T = (sla.lstsq(R11, R12, check_finite=False)[0] if singular
         else sla.solve_triangular(R11, R12, lower=False, check_finite=False))
    X = np.empty_like(R)
    X[:, perm[:k]] = np.eye(k, dtype=R.dtype)
    X[:, perm[k:]] = T
    return X


def interpolative_decomposition(A: Array, rank: int, *, svd: str = "exact",
                                oversample: int = 20, n_iter: int = 0, seed: SeedLike = None,
                                backend: str = "auto") -> InterpolativeDecomposition:
    """Column interpolative decomposition ``A ≈ A[:, cols] X`` of rank ``rank``.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) tensor
        Real floating-point matrix (batches on the torch path).
    rank : int
        Number ``k`` of skeleton columns, ``1 <= k <= min(m, n)``.
    svd : {"exact", "randomized"}
        ``"exact"``: pivoted QR of ``A`` itself (:func:`refimpl.linalg.cpqr`, ``k`` steps),
        the deterministic ID. ``"randomized"``: pivoted QR of ``Qᵀ A`` with ``Q`` from
        :func:`~refimpl.sketch.randomized_range_finder` (``k + oversample`` columns,
        ``n_iter`` power iterations); the error is then within a modest factor of the
        deterministic one (20 oversamples matched it to 0.1% on the benchmark matrix).
    oversample : int
        Extra columns ``>= 0`` of the range finder (``svd="randomized"`` only).
    n_iter : int
        Power iterations ``>= 0`` of the range finder (``svd="randomized"`` only).
    seed : int or numpy.random.Generator, optional
        Draws the range finder's test matrix.
    backend : {"auto", "numpy", "numba", "torch"}
        The pivoted-QR kernel (Numba by default for NumPy input).

    Returns
    -------
    InterpolativeDecomposition
        The input's array kind, device and dtype.

    Raises
    ------
    ValueError
        If ``rank`` or an option is out of range, or ``A`` is empty or not finite.
    TypeError
        If ``A`` is not a real floating-point array or a count not an integer.
    """
    A, path, back = _xp.prepare(A, backend=backend, paths=("numpy", "numba", "torch"),
                                prefer="numba")
    m, n = A.shape[-2:]
    k = check_rank(rank, "rank", min(m, n))
    check_choice(svd, "svd", SVD_METHODS)
    oversample = check_nonnegative_int(oversample, "oversample")
    n_iter = check_nonnegative_int(n_iter, "n_iter")
    if svd == "exact":
        Y = A
    else:
        Q = randomized_range_finder(A, min(m, n, k + oversample), n_iter=n_iter,
                                    normalizer="lu", seed=seed,
                                    backend="torch" if path == "torch" else "numpy")
        Y = _xp.mT(Q) @ A
    qr = cpqr(Y, k, backend=path)
    cols = qr.perm[..., :k]
    X = _interpolation_matrix(qr.R, qr.perm, k, path)
    return back(InterpolativeDecomposition(_xp.take_cols(A, cols), X, cols))


def deim(V: ArrayT, *, tol: float | None = None) -> ArrayT:
    """DEIM interpolation indices (k distinct rows) of a basis ``V`` (n×k, full column rank).

    Step ``j`` interpolates the ``j``-th column on the indices chosen so far and takes the
    row where the interpolation error is largest.

    Parameters
    ----------
    V : (n, k) array or tensor
        A basis, ``k <= n`` (e.g. the top singular vectors of a matrix).
    tol : float, optional
        Relative tolerance (``> 0``) below which a residual counts as vanished; default
        ``n·eps``.

    Returns
    -------
    integer array or tensor
        ``p`` (k,), distinct row indices; the input's array kind and device.

    Raises
    ------
    ValueError
        If ``V`` is numerically rank deficient (a residual vanishes), has more columns
        than rows, or is empty or not finite.
    TypeError
        If ``V`` is not a real floating-point array.
    """
    V, _, back = _xp.prepare(V, "V", batch=False)
    n, k = V.shape[-2:]
    if k > n:
        raise ValueError(f"V must have at most as many columns as rows; got shape {tuple(V.shape)}")
    tol = n * _xp.eps(V) if tol is None else check_positive(tol, "tol")
    scale = float(abs(V).max())
    p = [int(abs(V[:, 0]).argmax())]
    for j in range(1, k):
        c = _xp.solve(V[p, :j], V[p, j])
        r = V[:, j] - V[:, :j] @ c
        i = int(abs(r).argmax())
        if float(abs(r[i])) <= tol * scale:
            raise ValueError(f"V is numerically rank deficient: DEIM residual vanished at step {j}")
        p.append(i)
    return back(np.array(p))


def cur(A: Array, rank: int, *, select: str = "deim", u: str = "optimal", svd: str = "exact",
        seed: SeedLike = None, backend: str = "auto") -> CUR:
    """CUR with rows and columns chosen by ``select``; U comes from :func:`refimpl.meta.cur`.

    Parameters
    ----------
    A : (m, n) array or tensor (2-D)
        Real floating-point matrix.
    rank : int
        Number ``k`` of rows and of columns, ``1 <= k <= min(m, n)``.
    select : {"deim", "leverage", "qr"}
        ``"deim"``: DEIM on the top-k singular vectors (Sorensen & Embree, 2016);
        ``"leverage"``: ``k`` distinct rows/columns sampled with probabilities proportional
        to their rank-k leverage scores (needs ``seed``); ``"qr"``: the pivots of
        column-pivoted QR of ``A`` and ``Aᵀ``.
    u : {"optimal", "skeleton"}
        Passed to :func:`refimpl.meta.cur`.
    svd : {"exact", "randomized"}
        How the singular vectors for ``"deim"`` and ``"leverage"`` are computed.
    seed : int or numpy.random.Generator, optional
        For the leverage-score sampling and the randomized SVD.
    backend : {"auto", "numpy", "numba", "torch"}
        Passed to :func:`refimpl.meta.cur` (the pivoted-QR kernel).

    Returns
    -------
    refimpl.meta.CUR
        The input's array kind, device and dtype; raises as
        :func:`interpolative_decomposition`.
    """
    from refimpl.meta import cur as meta_cur

    A, path, back = _xp.prepare(A, backend=backend, paths=("numpy", "numba", "torch"),
                                prefer="numba", batch=False)
    m, n = A.shape
    k = check_rank(rank, "rank", min(m, n))
    check_choice(select, "select", ("deim", "leverage", "qr"))
    check_choice(svd, "svd", SVD_METHODS)
    if select == "qr":
        return back(meta_cur(A, k, u=u, backend=path))
    Uk, Vk = _top_singular_vectors(A, k, svd, seed)
    if select == "deim":
        rows, cols = _xp.to_numpy(deim(Uk)), _xp.to_numpy(deim(Vk))
    else:
        rng = as_generator(seed)
        picks = []
        for B in (Uk, Vk):
            lev = _xp.to_numpy((B * B).sum(-1)).astype(np.float64)
            picks.append(np.sort(rng.choice(lev.size, size=k, replace=False, p=lev / lev.sum())))
        rows, cols = picks
    return back(meta_cur(A, k, u=u, rows=rows, cols=cols, backend=path))


class NystromPSD(NamedTuple):
    """``A ≈ U diag(lam) Uᵀ`` with orthonormal ``U`` (n×k) and ``lam >= 0``.

    Attributes
    ----------
    U : (..., n, k) array or tensor
        Orthonormal columns.
    lam : (..., k) array or tensor
        Non-negative eigenvalue estimates, non-increasing.
    """

    U: Any
    lam: Any

    def reconstruct(self) -> Array:
        """``U diag(lam) Uᵀ``, positive semidefinite."""
        return (self.U * self.lam[..., None, :]) @ _xp.mT(self.U)


def nystrom_psd(A: Array, rank: int, *, Omega: Array | None = None, seed: SeedLike = None,
                check_symmetric: bool = True,
                backend: str = "auto") -> NystromPSD:
    """Randomized Nyström approximation of a symmetric PSD ``A`` (n×n) of rank ``rank``.

    The shifted (stable) variant of Tropp et al. (2017): the shift ``ν`` makes the Cholesky
    factorization of ``Ωᵀ(Y + νΩ)`` succeed in floating point, and is removed from the
    squared singular values afterwards.

    Parameters
    ----------
    A : (n, n) array or (..., n, n) tensor
        Symmetric positive semidefinite (batches on the torch path).
    rank : int
        ``k``, the columns of Ω, ``1 <= k <= n``.
    Omega : (n, k) array or tensor, optional
        The test matrix (the same kind of array as ``A``; orthonormalised here); by default
        Gaussian from ``seed``.
    seed : int or numpy.random.Generator, optional
        Draws Ω (with NumPy, on every path).
    check_symmetric : bool
        Refuse a non-symmetric ``A`` (``refimpl._validation.check_symmetric``).
    backend : {"auto", "numpy", "torch"}
        ``"numpy"``: NumPy/SciPy; ``"torch"``: any device, batched.

    Returns
    -------
    NystromPSD
        The input's array kind, device and dtype.

    Raises
    ------
    ValueError
        If ``A`` is not square, not symmetric, not PSD (the shifted core has no Cholesky
        factor, NumPy path), ``rank`` is out of range, ``Omega`` has the wrong shape, or
        ``A`` is empty or not finite.
    TypeError
        If ``A`` or ``Omega`` is not a real floating-point array, or they mix NumPy and
        torch.
    """
    Omega = None if Omega is None else _xp.operand(Omega, "Omega", A)
    A, path, back = _xp.prepare(A, backend=backend)
    check_square(A, "A")
    n = A.shape[-1]
    k = check_rank(rank, "rank", n, what="n")
    if check_symmetric:
        _validation.check_symmetric(A, "A")
    Omega = _xp.qr(_test_matrix(A, n, k, Omega, seed, path))[0]
    Y = A @ Omega
    nu = math.sqrt(n) * _xp.eps(A) * float(_xp.to_numpy(_xp.fro(Y)).max())
    Y = Y + nu * Omega
    Bm = _xp.mT(Omega) @ Y
    Bm = (Bm + _xp.mT(Bm)) / 2
    if path == "torch":
        import torch

        L = torch.linalg.cholesky(Bm)
        F = _xp.mT(torch.linalg.solve_triangular(L, _xp.mT(Y), upper=False))
    else:
        import scipy.linalg as sla

        try:
            L = np.linalg.cholesky(Bm)
        except np.linalg.LinAlgError as err:
            raise ValueError("A does not look positive semidefinite: the shifted core "
                             "ΩᵀAΩ + νI has no Cholesky factor") from err
        F = sla.solve_triangular(L, Y.T, lower=True, check_finite=False).T
    U, s, _ = _xp.svd(F)
    return back(NystromPSD(U, (s * s - nu).clip(min=0)))

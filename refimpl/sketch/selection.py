r"""Choosing rows and columns: leverage scores, interpolative decomposition, DEIM, CUR and
Nyström for positive semidefinite matrices.

- Leverage scores of the rows of ``A`` for rank ``k``: :math:`\ell_i = \|U_k[i, :]\|^2`
  (``U_k`` the top-k left singular vectors); they sum to ``k``. ``method="randomized"`` takes
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
import numbers
from typing import Any, NamedTuple

import numpy as np

from refimpl import _xp
from refimpl._validation import check_array, check_rank
from refimpl.backend import is_torch_tensor, resolve_backend
from refimpl.linalg import cpqr
from refimpl.seeding import as_generator
from refimpl.sketch.rsvd import _range_finder, _test_matrix, randomized_svd


def _check_oversample(oversample):
    if isinstance(oversample, bool) or not isinstance(oversample, numbers.Integral) \
            or oversample < 0:
        raise ValueError(f"oversample must be a non-negative integer; got {oversample!r}")
    return int(oversample)


def _top_singular_vectors(A, k, method, seed):
    """U_k, V_k (as columns) of a 2-D A, exactly or by randomized SVD."""
    if method == "exact":
        U, _, Vt = _xp.svd(A)
        return U[..., :, :k], _xp.mT(Vt[..., :k, :])
    if method == "randomized":
        r = randomized_svd(A, k, seed=seed)
        return r.U, _xp.mT(r.Vt)
    raise ValueError(f"method must be 'exact' or 'randomized'; got {method!r}")


def leverage_scores(A, k: int | None = None, *, method: str = "exact", seed=None):
    """Rank-``k`` leverage scores of the rows of ``A`` (pass ``Aᵀ`` for the columns).

    ``k=None`` uses the numerical rank (singular values above ``max(m, n)·eps·σ_1``) and
    needs ``method="exact"``. The scores lie in [0, 1] and sum to ``k``.
    """
    A = check_array(A, "A", batch=is_torch_tensor(A), ndim=2)
    m, n = A.shape[-2:]
    if k is None:
        if method != "exact":
            raise ValueError("k=None (numerical rank) needs method='exact'")
        U, s, _ = _xp.svd(A)
        s_np = _xp.to_numpy(s)
        ranks = np.sum(s_np > max(m, n) * _xp.eps(A) * s_np[..., :1], axis=-1)
        k = int(np.max(ranks))
        U = U[..., :, :k]
    else:
        k = check_rank(k, "k", min(m, n))
        U = _top_singular_vectors(A, k, method, seed)[0]
    return (U * U).sum(-1)


class InterpolativeDecomposition(NamedTuple):
    """``A ≈ C X`` with ``C = A[:, cols]`` and ``X[:, cols] = I``."""

    C: Any
    X: Any
    cols: Any

    def reconstruct(self):
        return self.C @ self.X


def _interpolation_matrix(R, perm, k):
    """X (k×n) with X[:, perm] = [I, R11⁻¹ R12]; minimum-norm solve when R11 is singular."""
    R11, R12 = R[..., :k, :k], R[..., :k, k:]
    d = np.abs(_xp.to_numpy(R11).diagonal(0, -2, -1))
    singular = R.shape[-1] > k and bool(
        np.any(d[..., -1] <= max(R.shape[-2:]) * _xp.eps(R) * d[..., 0]))
    if is_torch_tensor(R):
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


def interpolative_decomposition(A, k: int, *, method: str = "qr", oversample: int = 20,
                                n_iter: int = 0, seed=None,
                                backend: str = "auto") -> InterpolativeDecomposition:
    """Column interpolative decomposition ``A ≈ A[:, cols] X`` of rank ``k``.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) tensor
    k : int
        Number of skeleton columns.
    method : {"qr", "randomized"}
        ``"qr"``: pivoted QR of ``A`` itself (:func:`refimpl.linalg.cpqr`, ``k`` steps).
        ``"randomized"``: pivoted QR of ``Qᵀ A`` with ``Q`` from
        :func:`~refimpl.sketch.randomized_range_finder` (``k + oversample`` columns,
        ``n_iter`` power iterations); the error is then within a modest factor of the
        deterministic one (20 oversamples matched it to 0.1% on the benchmark matrix).
    backend : {"auto", "numpy", "numba", "torch"}
        The pivoted-QR kernel (Numba by default for NumPy input).
    """
    A_in = A
    A = check_array(A, "A", batch=is_torch_tensor(A), ndim=2)
    m, n = A.shape[-2:]
    k = check_rank(k, "k", min(m, n))
    oversample = _check_oversample(oversample)
    path = resolve_backend(backend, A, available=("numpy", "numba", "torch"), prefer="numba")
    A = _xp.as_path(A, path)
    if method == "qr":
        Y = A
    elif method == "randomized":
        if isinstance(n_iter, bool) or not isinstance(n_iter, numbers.Integral) or n_iter < 0:
            raise ValueError(f"n_iter must be a non-negative integer; got {n_iter!r}")
        l = min(m, n, k + oversample)
        Q = _range_finder(A, l, int(n_iter), "lu", _test_matrix(A, n, l, None, seed))
        Y = _xp.mT(Q) @ A
    else:
        raise ValueError(f"method must be 'qr' or 'randomized'; got {method!r}")
    qr = cpqr(Y, k, backend=path)
    cols = qr.perm[..., :k]
    X = _interpolation_matrix(qr.R, qr.perm, k)
    result = InterpolativeDecomposition(_xp.take_cols(A, cols), X, cols)
    return InterpolativeDecomposition(*(_xp.like_input(v, A_in) for v in result))


def deim(V, *, tol: float | None = None):
    """DEIM interpolation indices (k distinct rows) of a basis ``V`` (n×k, full column rank).

    Step ``j`` interpolates the ``j``-th column on the indices chosen so far and takes the
    row where the interpolation error is largest. Raises ``ValueError`` if a residual
    vanishes (``V`` rank deficient, relative tolerance ``tol``, default ``n·eps``).
    """
    V = check_array(V, "V", ndim=2)
    n, k = V.shape[-2:]
    if k > n:
        raise ValueError(f"V must have at most as many columns as rows; got shape {tuple(V.shape)}")
    tol = n * _xp.eps(V) if tol is None else float(tol)
    xp_abs = (lambda x: x.abs()) if is_torch_tensor(V) else np.abs
    scale = float(xp_abs(V).max())
    p = [int(xp_abs(V[:, 0]).argmax())]
    for j in range(1, k):
        c = _xp.solve(V[p, :j], V[p, j])
        r = V[:, j] - V[:, :j] @ c
        i = int(xp_abs(r).argmax())
        if float(xp_abs(r[i])) <= tol * scale:
            raise ValueError(f"V is numerically rank deficient: DEIM residual vanished at step {j}")
        p.append(i)
    return _xp.like_input(np.array(p), V)


def cur(A, k: int, *, select: str = "deim", u: str = "optimal", svd: str = "exact",
        seed=None, backend: str = "auto"):
    """CUR with rows and columns chosen by ``select``; U comes from :func:`refimpl.meta.cur`.

    Parameters
    ----------
    A : (m, n) array or tensor (2-D)
    k : int
        Number of rows and columns.
    select : {"deim", "leverage", "qr"}
        ``"deim"``: DEIM on the top-k singular vectors (Sorensen & Embree, 2016);
        ``"leverage"``: ``k`` distinct rows/columns sampled with probabilities proportional
        to their rank-k leverage scores (needs ``seed``); ``"qr"``: the pivots of
        column-pivoted QR of ``A`` and ``Aᵀ``.
    u : {"optimal", "skeleton"}
        Passed to :func:`refimpl.meta.cur`.
    svd : {"exact", "randomized"}
        How the singular vectors for ``"deim"`` and ``"leverage"`` are computed.

    Returns
    -------
    refimpl.meta.CUR
    """
    from refimpl.meta import cur as meta_cur

    A = check_array(A, "A", ndim=2)
    m, n = A.shape
    k = check_rank(k, "k", min(m, n))
    if select == "qr":
        return meta_cur(A, k, u=u, backend=backend)
    if select not in ("deim", "leverage"):
        raise ValueError(f"select must be 'deim', 'leverage' or 'qr'; got {select!r}")
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
    return meta_cur(A, k, u=u, rows=rows, cols=cols, backend=backend)


class NystromPSD(NamedTuple):
    """``A ≈ U diag(lam) Uᵀ`` with orthonormal ``U`` (n×k) and ``lam >= 0``."""

    U: Any
    lam: Any

    def reconstruct(self):
        return (self.U * self.lam[..., None, :]) @ _xp.mT(self.U)


def nystrom_psd(A, k: int, *, Omega=None, seed=None, check_symmetric: bool = True,
                backend: str = "auto") -> NystromPSD:
    """Randomized Nyström approximation of a symmetric PSD ``A`` (n×n) of rank ``k``.

    The shifted (stable) variant of Tropp et al. (2017): the shift ``ν`` makes the Cholesky
    factorization of ``Ωᵀ(Y + νΩ)`` succeed in floating point, and is removed from the
    squared singular values afterwards. ``Ω`` (n×k) is Gaussian from ``seed``, then
    orthonormalised, unless given.
    """
    A_in = A
    A = check_array(A, "A", batch=is_torch_tensor(A), ndim=2)
    n = A.shape[-1]
    if A.shape[-2] != n:
        raise ValueError(f"A must be square; got shape {tuple(A.shape)}")
    k = check_rank(k, "k", n, what="n")
    path = resolve_backend(backend, A, available=("numpy", "torch"), prefer="numpy")
    A = _xp.as_path(A, path)
    if check_symmetric:
        asym = float(_xp.to_numpy(_xp.fro(A - _xp.mT(A))).max())
        if asym > 100 * n * _xp.eps(A) * float(_xp.to_numpy(_xp.fro(A)).max()):
            raise ValueError(f"A must be symmetric; ||A - Aᵀ||_F = {asym:.3g}")
    Omega = _xp.qr(_test_matrix(A, n, k, Omega, seed))[0]
    Y = A @ Omega
    nu = math.sqrt(n) * _xp.eps(A) * float(_xp.to_numpy(_xp.fro(Y)).max())
    Y = Y + nu * Omega
    Bm = _xp.mT(Omega) @ Y
    Bm = (Bm + _xp.mT(Bm)) / 2
    if is_torch_tensor(A):
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
    lam = s * s - nu
    lam = lam.clamp(min=0) if is_torch_tensor(lam) else np.maximum(lam, 0.0)
    return NystromPSD(_xp.like_input(U, A_in), _xp.like_input(lam, A_in))

r"""Jacobi methods: one-sided Jacobi SVD (Hestenes) and the symmetric Jacobi eigensolver.

Both sweep over pairs :math:`(p, q)` in cyclic order and apply a plane rotation

.. math:: J = \begin{pmatrix} c & s \\ -s & c \end{pmatrix}, \qquad c = \frac{1}{\sqrt{1+t^2}},
          \quad s = c\,t, \quad t = \frac{\operatorname{sign}\zeta}{|\zeta| + \sqrt{1+\zeta^2}},

chosen to zero one entry of a 2×2 symmetric matrix
:math:`\left(\begin{smallmatrix}\alpha & \gamma\\ \gamma & \beta\end{smallmatrix}\right)`,
with :math:`\zeta = (\beta - \alpha) / (2\gamma)` (the smaller of the two rotation angles).

- :func:`jacobi_svd` rotates pairs of *columns* of :math:`A` until they are mutually
  orthogonal (:math:`\alpha, \beta, \gamma` are the entries of the Gram block
  :math:`[a_p\; a_q]^\top [a_p\; a_q]`); the column norms are then the singular values.
- :func:`jacobi_eigh` rotates rows and columns :math:`p, q` of a symmetric :math:`A`
  (:math:`A \leftarrow J^\top A J`) until it is diagonal.

Convergence is declared when a whole sweep applies no rotation, i.e. every pair is already
orthogonal (respectively every off-diagonal entry is negligible) relative to ``tol``; the
largest relative coupling met in each sweep is reported in :class:`refimpl.results.Info`.
The NumPy path is the reference, the equations as written. The Numba path is the fast one:
for the SVD it first preconditions with two pivoted QR factorizations (Drmač & Veselić,
2008), which leaves a triangle whose columns are nearly orthogonal and graded, sweeps that
triangle instead, and recovers the right factor by one triangular solve; both methods sweep
in blocks whose rotations reach the accumulated factor as one matrix product per pair of
blocks (see :mod:`refimpl.linalg._jacobi_numba`). It reaches the same factorizations to
working accuracy, in fewer sweeps for the SVD, so its sweep report differs from the
reference's.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, overload

import numpy as np

from refimpl import _xp
from refimpl._typing import Array
from refimpl._validation import check_positive, check_positive_int, check_symmetric
from refimpl.linalg.svd import TruncatedSVD
from refimpl.results import Info

BLOCK = 32  # block size of the compiled sweeps (rotations accumulated per pair of blocks)


class Eigh(NamedTuple):
    """``A = V @ diag(w) @ V.T``.

    Attributes
    ----------
    w : (n,) array or tensor
        Eigenvalues, ascending (NumPy's ``eigh`` order).
    V : (n, n) array or tensor
        Orthonormal eigenvectors, column ``i`` for ``w[i]``.
    """

    w: Any
    V: Any

    def reconstruct(self) -> Array:
        """``V diag(w) Vᵀ``."""
        return (self.V * self.w[..., None, :]) @ _xp.mT(self.V)


def _rotation(alpha, beta, gamma):
    """``(c, s)`` of the rotation that zeroes ``gamma`` in ``[[alpha, gamma], [gamma, beta]]``."""
    zeta = (beta - alpha) / (2.0 * gamma)
    t = np.copysign(1.0, zeta) / (abs(zeta) + np.sqrt(1.0 + zeta * zeta))
    c = 1.0 / np.sqrt(1.0 + t * t)
    return c, c * t


def _options(tol, max_sweeps, dtype, size):
    """Checked ``(tol, max_sweeps)``; the default ``tol`` is ``size * eps``."""
    max_sweeps = check_positive_int(max_sweeps, "max_sweeps")
    if tol is None:
        return float(np.finfo(dtype).eps) * max(size, 1), max_sweeps
    return check_positive(tol, "tol", allow_zero=True), max_sweeps


def _info(sweeps, converged, errors):
    return Info(int(sweeps), bool(converged), tuple(float(e) for e in errors[:sweeps]))


@overload
def jacobi_svd(A: Array, *, tol: float | None = ..., max_sweeps: int = ...,
               backend: str = ..., return_info: Literal[False] = ...) -> TruncatedSVD: ...
@overload
def jacobi_svd(A: Array, *, tol: float | None = ..., max_sweeps: int = ...,
               backend: str = ..., return_info: Literal[True]) -> tuple[TruncatedSVD, Info]: ...
@overload
def jacobi_svd(A: Array, *, tol: float | None = ..., max_sweeps: int = ...,
               backend: str = ...,
               return_info: bool) -> TruncatedSVD | tuple[TruncatedSVD, Info]: ...
def jacobi_svd(A: Array, *, tol: float | None = None, max_sweeps: int = 40,
               backend: str = "auto",
               return_info: bool = False) -> TruncatedSVD | tuple[TruncatedSVD, Info]:
    r"""Thin SVD by one-sided Jacobi rotations (Hestenes' method).

    Columns :math:`p < q` are rotated whenever their cosine
    :math:`|a_p^\top a_q| / (\|a_p\|\,\|a_q\|)` exceeds ``tol``; the default ``tol`` is
    :math:`m\,\varepsilon`. Wide inputs are handled through :math:`A^\top`. Columns whose
    norm is exactly zero (rank deficiency) get left singular vectors that complete ``U`` to
    an orthonormal set; tiny nonzero columns are kept, so small singular values are found to
    high relative accuracy (Demmel & Veselić, 1992).

    Parameters
    ----------
    A : (m, n) array or torch tensor
        Real floating-point matrix (a tensor is computed on the CPU and returned as a
        tensor on its device).
    tol : float, optional
        Orthogonality tolerance on the cosine of every column pair, ``>= 0``.
    max_sweeps : int
        Upper bound on cyclic sweeps, ``>= 1``; reaching it without convergence warns
        nothing but ``return_info=True`` reports ``converged=False``.
    backend : {"auto", "numpy", "numba"}
        ``"auto"`` runs the Numba kernel: preconditioned by two pivoted QRs, the sweeps then
        run on the triangle ``R₂ᵀ`` (``"numpy"`` sweeps ``A`` itself).
    return_info : bool
        Also return an :class:`refimpl.results.Info`: ``n_iter`` sweeps and, in ``errors``,
        the largest column-pair cosine met in each sweep (before its rotation); the loop
        stops after the first sweep in which it is at most ``tol``.

    Returns
    -------
    TruncatedSVD
        ``U`` (m, k), ``s`` (k,) non-increasing, ``Vt`` (k, n), ``k = min(m, n)``, and the
        empty ``tail`` (nothing is discarded, so ``error()`` is zero).
    Info
        Only with ``return_info=True``.

    Raises
    ------
    TypeError
        If ``A`` is not a real floating-point array or ``max_sweeps`` not an integer.
    ValueError
        If ``A`` is empty, not finite or not 2-D, ``tol < 0`` or ``max_sweeps < 1``.
    """
    A, path, back = _xp.prepare(A, backend=backend, paths=("numpy", "numba"), prefer="numba")
    A = A.astype(np.result_type(A.dtype, np.float32), copy=False)
    wide = A.shape[0] < A.shape[1]
    W = A.T if wide else A
    tol, max_sweeps = _options(tol, max_sweeps, W.dtype, W.shape[0])
    if path == "numba":
        U, s, V, sweeps, converged, errors = _one_sided_numba(W, tol, max_sweeps)
    else:
        G, V, sweeps, converged, errors = _one_sided_numpy(W, tol, max_sweeps)
        U, s, V = _finish_svd(G, V)
    tail = s[len(s):]
    result = back(TruncatedSVD(V, s, U.T, tail) if wide else TruncatedSVD(U, s, V.T, tail))
    return (result, _info(sweeps, converged, errors)) if return_info else result


def _one_sided_numba(W, tol, max_sweeps):
    """Preconditioned, blocked one-sided Jacobi (the fast path); returns ``U, s, V`` and the
    sweep report.

    Drmač–Veselić preconditioning with two QR factorizations (this package's compiled
    :func:`~refimpl.linalg.cpqr` both times): ``Π W P = Q R`` with the rows first sorted by
    decreasing max-norm (``Π``; this makes Householder QR with column pivoting row-wise
    backward stable, Cox & Higham 1998, so row grading survives), then ``Rᵀ P₂ = Q₂ R₂``, and
    one-sided Jacobi on the columns of the lower triangular ``X = R₂ᵀ``. Those columns are
    much closer to orthogonal than ``W``'s, and graded in norm, so few sweeps are needed
    (two to four on a graded matrix). With ``X M = U_x Σ``,

    ``P₂ᵀ R = U_x Σ (Q₂ M)ᵀ`` and ``W = Πᵀ (Q P₂ U_x) Σ (P Q₂ M)ᵀ``.

    The rotations are not accumulated: ``M = X⁻¹ (U_x Σ)`` comes from one triangular solve
    (as in LAPACK's xGEJSV), followed by one Newton–Schulz step ``M ← M (3I − MᵀM)/2`` to
    orthogonality at working precision. If the solved ``M`` is farther than ``8 n ε`` from
    orthogonal (``X`` too ill-conditioned after its column scaling), the sweeps are run again
    from ``X``, accumulating ``M`` from the rotations instead.
    """
    from scipy.linalg import solve_triangular

    from refimpl.linalg._blas_numba import blas_for
    from refimpl.linalg._jacobi_numba import one_sided_jacobi
    from refimpl.linalg.qr import cpqr

    n = W.shape[1]
    rows = np.argsort(-np.abs(W).max(axis=1), kind="stable")
    Q, R, perm = cpqr(W[rows], backend="numba")
    Q2, R2, perm2 = cpqr(R.T, backend="numba")
    fgemm, = blas_for(W.dtype, "gemm")

    def sweep(accumulate):
        """The sweeps on X = R₂ᵀ: (X_final as rows, M as rows or nothing, the report)."""
        Xt = np.array(R2, order="C", copy=True)
        Mt = np.eye(n, dtype=W.dtype) if accumulate else np.empty((n, 0), dtype=W.dtype)
        return Xt, Mt, one_sided_jacobi(fgemm, Xt, Mt, tol, max_sweeps, BLOCK, accumulate)

    Xt, _, report = sweep(False)
    M = solve_triangular(R2, Xt.T, trans="T")            # X M = X_final
    departure = M.T @ M - np.eye(n, dtype=W.dtype)
    if np.abs(departure).max() <= 8 * n * np.finfo(W.dtype).eps:
        M -= M @ (departure / 2)                         # M (3I − MᵀM) / 2
    else:
        Xt, Mt, report = sweep(True)
        M = Mt.T
    sweeps, converged, errors = report
    Ux, s, M = _finish_svd(Xt.T, M)
    Ur = np.empty_like(Ux)
    Ur[perm2] = Ux
    U = np.empty((W.shape[0], n), dtype=W.dtype)
    U[rows] = Q @ Ur
    V = np.empty_like(M)
    V[perm] = Q2 @ M
    return U, s, V, sweeps, converged, errors


def _one_sided_numpy(W, tol, max_sweeps):
    G = W.copy()
    n = G.shape[1]
    V = np.eye(n, dtype=G.dtype)
    errors = np.zeros(max_sweeps)
    for sweep in range(1, max_sweeps + 1):
        worst = 0.0
        for p in range(n - 1):
            for q in range(p + 1, n):
                alpha = G[:, p] @ G[:, p]
                beta = G[:, q] @ G[:, q]
                gamma = G[:, p] @ G[:, q]
                if gamma == 0.0:
                    continue
                norm = np.sqrt(alpha * beta)
                cos = abs(gamma) / norm if norm > 0.0 else np.inf
                worst = max(worst, cos)
                if cos <= tol:
                    continue
                c, s = _rotation(alpha, beta, gamma)
                G[:, [p, q]] = G[:, [p, q]] @ np.array([[c, s], [-s, c]], dtype=G.dtype)
                V[:, [p, q]] = V[:, [p, q]] @ np.array([[c, s], [-s, c]], dtype=G.dtype)
        errors[sweep - 1] = worst
        if worst <= tol:
            return G, V, sweep, True, errors
    return G, V, max_sweeps, False, errors


def _finish_svd(G, V):
    """Column norms become ``s``; normalized columns become ``U`` (completed if rank-deficient)."""
    s = np.linalg.norm(G, axis=0)
    order = np.argsort(-s, kind="stable")
    s, G, V = s[order], G[:, order], V[:, order]
    m, n = G.shape
    # Jacobi leaves every pair of columns orthogonal *relative to their norms*, so even a
    # tiny column normalizes to a valid singular vector (this is what gives Jacobi its high
    # relative accuracy); only columns that are exactly zero (or underflow) need completing.
    r = int(np.sum(s > np.finfo(G.dtype).tiny))
    U = np.zeros_like(G)
    U[:, :r] = G[:, :r] / s[:r]
    s[r:] = 0.0
    if r < n:
        # Orthonormal completion: the trailing columns of a complete QR of U[:, :r].
        basis = np.linalg.qr(np.concatenate([U[:, :r], np.eye(m, dtype=G.dtype)], axis=1))[0]
        U[:, r:] = basis[:, r:n]
    return U, s, V


@overload
def jacobi_eigh(A: Array, *, tol: float | None = ..., max_sweeps: int = ...,
                backend: str = ..., return_info: Literal[False] = ...) -> Eigh: ...
@overload
def jacobi_eigh(A: Array, *, tol: float | None = ..., max_sweeps: int = ...,
                backend: str = ..., return_info: Literal[True]) -> tuple[Eigh, Info]: ...
@overload
def jacobi_eigh(A: Array, *, tol: float | None = ..., max_sweeps: int = ...,
                backend: str = ..., return_info: bool) -> Eigh | tuple[Eigh, Info]: ...
def jacobi_eigh(A: Array, *, tol: float | None = None, max_sweeps: int = 40,
                backend: str = "auto",
                return_info: bool = False) -> Eigh | tuple[Eigh, Info]:
    r"""Eigendecomposition of a symmetric matrix by cyclic two-sided Jacobi rotations.

    Entry :math:`(p, q)` is rotated away whenever its relative size
    :math:`|a_{pq}| / \max(\sqrt{|a_{pp} a_{qq}|}, \|A\|_F / n)` exceeds ``tol`` (the
    second term handles zero diagonals); default ``tol`` :math:`n\varepsilon`.

    Parameters
    ----------
    A : (n, n) array or torch tensor
        Real symmetric matrix (checked to ``100 n ε ‖A‖_F``; a tensor is computed on the CPU
        and returned as a tensor on its device).
    tol : float, optional
        Tolerance on the relative size of every off-diagonal entry, ``>= 0``.
    max_sweeps : int
        Upper bound on cyclic sweeps, ``>= 1``.
    backend : {"auto", "numpy", "numba"}
        ``"auto"`` runs the Numba kernel.
    return_info : bool
        Also return an :class:`refimpl.results.Info`: ``n_iter`` sweeps and, in ``errors``,
        the largest relative off-diagonal entry met in each sweep (before its rotation);
        the loop stops after the first sweep in which it is at most ``tol``.

    Returns
    -------
    Eigh
        ``w`` (n,) ascending and ``V`` (n, n) orthogonal with ``A V = V diag(w)``.
    Info
        Only with ``return_info=True``.

    Raises
    ------
    TypeError, ValueError
        As :func:`jacobi_svd`; also ``ValueError`` if ``A`` is not square and symmetric.
    """
    A, path, back = _xp.prepare(A, backend=backend, paths=("numpy", "numba"), prefer="numba")
    A = A.astype(np.result_type(A.dtype, np.float32), copy=False)
    check_symmetric(A, "A")
    n = A.shape[0]
    tol, max_sweeps = _options(tol, max_sweeps, A.dtype, n)
    S = np.array((A + A.T) / 2, order="C")
    V = np.eye(n, dtype=S.dtype)
    if path == "numba":
        from refimpl.linalg._blas_numba import blas_for
        from refimpl.linalg._jacobi_numba import two_sided_jacobi

        # The kernel accumulates V transposed (rows are eigenvectors) for contiguity.
        # mypy cannot count the arguments a starred tuple supplies (here one: fgemm)
        sweeps, converged, errors = two_sided_jacobi(  # type: ignore[call-arg]
            *blas_for(S.dtype, "gemm"), S, V, tol, max_sweeps, BLOCK)
        V = V.T
    else:
        sweeps, converged, errors = _two_sided_numpy(S, V, tol, max_sweeps)
    w = np.diagonal(S).copy()
    order = np.argsort(w, kind="stable")
    result = back(Eigh(w[order], V[:, order]))
    return (result, _info(sweeps, converged, errors)) if return_info else result


def _two_sided_numpy(S, V, tol, max_sweeps):
    n = S.shape[0]
    floor = float(np.linalg.norm(S)) / n
    errors = np.zeros(max_sweeps)
    for sweep in range(1, max_sweeps + 1):
        worst = 0.0
        for p in range(n - 1):
            for q in range(p + 1, n):
                gamma = S[p, q]
                if gamma == 0.0:
                    continue
                scale = max(np.sqrt(abs(S[p, p] * S[q, q])), floor)
                size = abs(gamma) / scale if scale > 0.0 else np.inf
                worst = max(worst, size)
                if size <= tol:
                    continue
                c, s = _rotation(S[p, p], S[q, q], gamma)
                J = np.array([[c, s], [-s, c]], dtype=S.dtype)
                S[:, [p, q]] = S[:, [p, q]] @ J
                S[[p, q], :] = J.T @ S[[p, q], :]
                S[p, q] = S[q, p] = 0.0
                V[:, [p, q]] = V[:, [p, q]] @ J
        errors[sweep - 1] = worst
        if worst <= tol:
            return sweep, True, errors
    return max_sweeps, False, errors

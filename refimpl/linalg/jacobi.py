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
orthogonal (respectively every off-diagonal entry is negligible) relative to ``tol``. The
NumPy path is the reference; the Numba path runs the same sweeps compiled, with columns
stored contiguously.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from refimpl import _xp
from refimpl._validation import check_array
from refimpl.backend import is_torch_tensor, resolve_backend


class SVD(NamedTuple):
    """``A = U @ diag(s) @ Vt`` with ``s`` non-increasing."""

    U: Any
    s: Any
    Vt: Any

    def reconstruct(self):
        return (self.U * self.s[..., None, :]) @ self.Vt


class Eigh(NamedTuple):
    """``A = V @ diag(w) @ V.T`` with ``w`` ascending (NumPy's ``eigh`` order)."""

    w: Any
    V: Any

    def reconstruct(self):
        return (self.V * self.w[..., None, :]) @ _xp.mT(self.V)


class JacobiInfo(NamedTuple):
    sweeps: int
    converged: bool


def _rotation(alpha, beta, gamma):
    """``(c, s)`` of the rotation that zeroes ``gamma`` in ``[[alpha, gamma], [gamma, beta]]``."""
    zeta = (beta - alpha) / (2.0 * gamma)
    t = np.copysign(1.0, zeta) / (abs(zeta) + np.sqrt(1.0 + zeta * zeta))
    c = 1.0 / np.sqrt(1.0 + t * t)
    return c, c * t


def _default_tol(dtype, m):
    return float(np.finfo(dtype).eps) * max(m, 1)


def jacobi_svd(A, *, tol: float | None = None, max_sweeps: int = 40,
               backend: str = "auto", return_info: bool = False):
    r"""Thin SVD by one-sided Jacobi rotations (Hestenes' method).

    Columns :math:`p < q` are rotated whenever
    :math:`|a_p^\top a_q| > \text{tol}\,\|a_p\|\,\|a_q\|`; the default ``tol`` is
    :math:`m\,\varepsilon`. Wide inputs are handled through :math:`A^\top`. Columns whose
    norm is exactly zero (rank deficiency) get left singular vectors that complete ``U`` to
    an orthonormal set; tiny nonzero columns are kept, so small singular values are found to
    high relative accuracy (Demmel & Veselić, 1992).

    Parameters
    ----------
    A : (m, n) array (a torch tensor is computed on the CPU and returned as a tensor)
    tol : float, optional
    max_sweeps : int
        Upper bound on cyclic sweeps; reaching it without convergence warns nothing but
        ``return_info=True`` reports ``converged=False``.
    backend : {"auto", "numpy", "numba"}
        ``"auto"`` runs the Numba kernel.
    return_info : bool
        Also return a :class:`JacobiInfo` with the number of sweeps.

    Returns
    -------
    SVD
        ``U`` (m, k), ``s`` (k,) non-increasing, ``Vt`` (k, n), ``k = min(m, n)``.
    """
    A = check_array(A, "A", ndim=2)
    path = resolve_backend(backend, None, available=("numpy", "numba"), prefer="numba")
    A_np = _xp.to_numpy(A)
    A_np = A_np.astype(np.result_type(A_np.dtype, np.float32), copy=False)
    wide = A_np.shape[0] < A_np.shape[1]
    W = A_np.T if wide else A_np
    m = W.shape[0]
    tol = _default_tol(W.dtype, m) if tol is None else float(tol)
    if path == "numba":
        from refimpl.linalg._jacobi_numba import one_sided_jacobi

        # Rows of Gt / Vt_acc are the columns of W / V: contiguous for the kernel.
        Gt = np.array(W.T, dtype=W.dtype, order="C", copy=True)
        Vt_acc = np.eye(W.shape[1], dtype=W.dtype)
        sweeps, converged = one_sided_jacobi(Gt, Vt_acc, tol, max_sweeps)
        G, V = Gt.T, Vt_acc.T
    else:
        G, V, sweeps, converged = _one_sided_numpy(W, tol, max_sweeps)
    U, s, V = _finish_svd(G, V)
    result = SVD(V, s, U.T) if wide else SVD(U, s, V.T)
    result = SVD(*(_xp.like_input(t, A) for t in result))
    return (result, JacobiInfo(sweeps, converged)) if return_info else result


def _one_sided_numpy(W, tol, max_sweeps):
    G = W.copy()
    n = G.shape[1]
    V = np.eye(n, dtype=G.dtype)
    for sweep in range(1, max_sweeps + 1):
        rotated = False
        for p in range(n - 1):
            for q in range(p + 1, n):
                alpha = G[:, p] @ G[:, p]
                beta = G[:, q] @ G[:, q]
                gamma = G[:, p] @ G[:, q]
                if abs(gamma) <= tol * np.sqrt(alpha * beta) or gamma == 0.0:
                    continue
                rotated = True
                c, s = _rotation(alpha, beta, gamma)
                G[:, [p, q]] = G[:, [p, q]] @ np.array([[c, s], [-s, c]], dtype=G.dtype)
                V[:, [p, q]] = V[:, [p, q]] @ np.array([[c, s], [-s, c]], dtype=G.dtype)
        if not rotated:
            return G, V, sweep, True
    return G, V, max_sweeps, False


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


def jacobi_eigh(A, *, tol: float | None = None, max_sweeps: int = 40,
                backend: str = "auto", return_info: bool = False):
    r"""Eigendecomposition of a symmetric matrix by cyclic two-sided Jacobi rotations.

    Entry :math:`(p, q)` is rotated away whenever
    :math:`|a_{pq}| > \text{tol}\,\sqrt{|a_{pp} a_{qq}|}` or
    :math:`|a_{pq}| > \text{tol}\,\|A\|_F / n` (the second guard handles zero diagonals);
    default ``tol`` :math:`n\varepsilon`.

    Parameters
    ----------
    A : (n, n) symmetric array (checked to ``100 n ε ‖A‖_F``)
    tol, max_sweeps, backend, return_info : as in :func:`jacobi_svd`

    Returns
    -------
    Eigh
        ``w`` (n,) ascending and ``V`` (n, n) orthogonal with ``A V = V diag(w)``.
    """
    A = check_array(A, "A", ndim=2)
    A_np = _xp.to_numpy(A)
    A_np = A_np.astype(np.result_type(A_np.dtype, np.float32), copy=False)
    check_symmetric(A_np, "A")
    path = resolve_backend(backend, None, available=("numpy", "numba"), prefer="numba")
    n = A_np.shape[0]
    tol = _default_tol(A_np.dtype, n) if tol is None else float(tol)
    S = np.array((A_np + A_np.T) / 2, order="C")
    V = np.eye(n, dtype=S.dtype)
    if path == "numba":
        from refimpl.linalg._jacobi_numba import two_sided_jacobi

        # The kernel accumulates V transposed (rows are eigenvectors) for contiguity.
        sweeps, converged = two_sided_jacobi(S, V, tol, max_sweeps)
        V = V.T
    else:
        sweeps, converged = _two_sided_numpy(S, V, tol, max_sweeps)
    w = np.diagonal(S).copy()
    order = np.argsort(w, kind="stable")
    result = Eigh(_xp.like_input(w[order], A), _xp.like_input(V[:, order], A))
    return (result, JacobiInfo(sweeps, converged)) if return_info else result


def _two_sided_numpy(S, V, tol, max_sweeps):
    n = S.shape[0]
    floor = tol * float(np.linalg.norm(S)) / n
    for sweep in range(1, max_sweeps + 1):
        rotated = False
        for p in range(n - 1):
            for q in range(p + 1, n):
                gamma = S[p, q]
                if abs(gamma) <= max(tol * np.sqrt(abs(S[p, p] * S[q, q])), floor):
                    continue
                rotated = True
                c, s = _rotation(S[p, p], S[q, q], gamma)
                J = np.array([[c, s], [-s, c]], dtype=S.dtype)
                S[:, [p, q]] = S[:, [p, q]] @ J
                S[[p, q], :] = J.T @ S[[p, q], :]
                S[p, q] = S[q, p] = 0.0
                V[:, [p, q]] = V[:, [p, q]] @ J
        if not rotated:
            return sweep, True
    return max_sweeps, False


def check_symmetric(A, name: str) -> None:
    """Raise ``ValueError`` unless ``A`` is square and symmetric to ``100 n ε ‖A‖_F``."""
    if A.shape[-1] != A.shape[-2]:
        raise ValueError(f"{name} must be square; got shape {tuple(A.shape)}")
    n = A.shape[-1]
    gap = _xp.fro(A - _xp.mT(A))
    scale = 100 * n * _xp.eps(A) * _xp.fro(A)
    bad = bool((gap > scale).any()) if is_torch_tensor(gap) else bool(np.any(gap > scale))
    if bad:
        raise ValueError(f"{name} must be symmetric; ‖{name} − {name}ᵀ‖_F / ‖{name}‖_F = "
                         f"{float((gap / _xp.fro(A)).max()):.2e}")

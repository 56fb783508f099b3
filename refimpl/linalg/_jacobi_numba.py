"""Numba kernels for the Jacobi sweeps of :mod:`refimpl.linalg.jacobi`.

Both kernels work on arrays whose *rows* are the vectors being rotated (columns of A for
the one-sided method, eigenvector columns for the two-sided one), so every rotation
streams through contiguous memory.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _rotation(alpha, beta, gamma):
    zeta = (beta - alpha) / (2.0 * gamma)
    t = (1.0 if zeta >= 0 else -1.0) / (abs(zeta) + np.sqrt(1.0 + zeta * zeta))
    c = 1.0 / np.sqrt(1.0 + t * t)
    return c, c * t


@njit(cache=True, fastmath=True)
def _rotate_rows(X, p, q, c, s):
    for r in range(X.shape[1]):
        xp = X[p, r]
        xq = X[q, r]
        X[p, r] = c * xp - s * xq
        X[q, r] = s * xp + c * xq


@njit(cache=True)
def one_sided_jacobi(Gt, Vt, tol, max_sweeps):
    """Rotate rows of ``Gt`` (columns of A) until pairwise orthogonal; accumulate into ``Vt``.

    Returns ``(sweeps, converged, errors)``: ``errors[i]`` is the largest pair cosine
    ``|gamma| / sqrt(alpha beta)`` met in sweep ``i``; a sweep where it is ``<= tol`` ends.
    """
    n, m = Gt.shape
    errors = np.zeros(max_sweeps)
    for sweep in range(1, max_sweeps + 1):
        worst = 0.0
        for p in range(n - 1):
            for q in range(p + 1, n):
                alpha = 0.0
                beta = 0.0
                gamma = 0.0
                for r in range(m):
                    gp = Gt[p, r]
                    gq = Gt[q, r]
                    alpha += gp * gp
                    beta += gq * gq
                    gamma += gp * gq
                if gamma == 0.0:
                    continue
                norm = np.sqrt(alpha * beta)
                cos = abs(gamma) / norm if norm > 0.0 else np.inf
                worst = max(worst, cos)
                if cos <= tol:
                    continue
                c, s = _rotation(alpha, beta, gamma)
                _rotate_rows(Gt, p, q, c, s)
                _rotate_rows(Vt, p, q, c, s)
        errors[sweep - 1] = worst
        if worst <= tol:
            return sweep, True, errors
    return max_sweeps, False, errors


@njit(cache=True)
def two_sided_jacobi(S, Vt, tol, max_sweeps):
    """Cyclic Jacobi on symmetric ``S`` (overwritten, ends diagonal); rows of ``Vt`` hold V.

    Returns ``(sweeps, converged, errors)``: ``errors[i]`` is the largest relative entry
    ``|S_pq| / max(sqrt|S_pp S_qq|, ‖S‖_F / n)`` met in sweep ``i``; a sweep where it is
    ``<= tol`` ends.
    """
    n = S.shape[0]
    fro = 0.0
    for i in range(n):
        for j in range(n):
            fro += S[i, j] * S[i, j]
    floor = np.sqrt(fro) / n
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
                app = S[p, p]
                aqq = S[q, q]
                c, s = _rotation(app, aqq, gamma)
                # S <- J^T S J touches rows and columns p, q only. By symmetry the new column
                # p equals the new row p: rotate the rows (contiguous reads) and mirror them.
                for r in range(n):
                    if r == p or r == q:
                        continue
                    sp = S[p, r]
                    sq = S[q, r]
                    new_p = c * sp - s * sq
                    new_q = s * sp + c * sq
                    S[p, r] = new_p
                    S[q, r] = new_q
                    S[r, p] = new_p
                    S[r, q] = new_q
                t = s / c
                S[p, p] = app - t * gamma
                S[q, q] = aqq + t * gamma
                S[p, q] = 0.0
                S[q, p] = 0.0
                _rotate_rows(Vt, p, q, c, s)
        errors[sweep - 1] = worst
        if worst <= tol:
            return sweep, True, errors
    return max_sweeps, False, errors

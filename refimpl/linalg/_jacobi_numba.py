"""Numba kernels for the fast paths of :mod:`refimpl.linalg.jacobi`: blocked Jacobi sweeps.

Both kernels store the vectors being rotated as *rows* (columns of the matrix for the
one-sided method, rows of the symmetric matrix for the two-sided one), so every rotation
streams through contiguous memory, and both visit the pairs of a sweep block by block:

- the indices are split into blocks of ``block``; a sweep takes the block pairs ``(I, J)``,
  ``I <= J``, in row-cyclic order, and within a pair every index pair ``(p, q)`` with
  ``p in I`` and ``q in J`` (``p < q`` inside one block) once, so every pair is visited once
  per sweep, as in the cyclic method, and the rows of a block pair stay in cache while it is
  worked on;
- the rotations of one block pair are accumulated into a small ``(|I| + |J|)``-square
  orthogonal matrix ``Q``, applied to the accumulated transformation (``V``) with one
  matrix-matrix product (BLAS ``xGEMM``, in place) per block pair instead of one vector
  update per rotation.

One-sided (:func:`one_sided_jacobi`): every angle comes from the current columns (one dot
product per pair, the two squared norms kept by their exact update formulas), and the
rotation is applied to the two columns at once, so the relative accuracy of the unblocked
method is kept. Each sweep starts by sorting the columns by decreasing norm (de Rijk's
pivoting).

Two-sided (:func:`two_sided_jacobi`): the angles of a block pair depend only on its
principal ``(|I| + |J|)``-square block, which is copied out and rotated (rows and columns)
in cache; ``S``'s rows of the pair are then updated by one matrix product with ``Q``, the
principal block written back, and the rows mirrored into the columns, where the unblocked
kernel wrote two strided column entries per rotation.

The compiler may reassociate and fuse multiply-adds (``FASTMATH``), so that the dot products
vectorise, and nothing more.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from refimpl.linalg._blas_numba import _N, FASTMATH, gemm


@njit(cache=True, inline="always")
def _rotation(alpha, beta, gamma):
    zeta = (beta - alpha) / (2.0 * gamma)
    t = (1.0 if zeta >= 0 else -1.0) / (abs(zeta) + np.sqrt(1.0 + zeta * zeta))
    c = 1.0 / np.sqrt(1.0 + t * t)
    return c, c * t, t


@njit(cache=True, fastmath=FASTMATH)
def _rotate(x, y, c, s):
    """``(x, y) <- (c x - s y, s x + c y)`` for two distinct rows."""
    for r in range(x.shape[0]):
        a = x[r]
        b = y[r]
        x[r] = c * a - s * b
        y[r] = s * a + c * b


@njit(cache=True, fastmath=FASTMATH)
def _dot(x, y):
    acc = 0.0
    for r in range(x.shape[0]):
        acc += x[r] * y[r]
    return acc


@njit(cache=True)
def _identity(k, dtype):
    Q = np.zeros((k, k), dtype=dtype)
    for a in range(k):
        Q[a, a] = 1.0
    return Q


@njit(cache=True)
def _block_pair(n, block, I, J, idx):
    """Fill ``idx`` with the indices of blocks ``I`` and ``J``; return ``(k, k_I)``."""
    i0, i1 = I * block, min(n, (I + 1) * block)
    k = 0
    for i in range(i0, i1):
        idx[k] = i
        k += 1
    if J != I:
        for j in range(J * block, min(n, (J + 1) * block)):
            idx[k] = j
            k += 1
    return k, i1 - i0


@njit(cache=True)
def _apply_block(fgemm, X, Q, idx, k, kI, buf):
    """``X[idx[:k]] <- Q @ X[idx[:k]]`` (``Q`` k × k): the rows of a block pair, which are
    two contiguous ranges, each written in place by one matrix product from a copy."""
    B = buf[:k]
    for a in range(k):
        B[a] = X[idx[a]]
    n = X.shape[1]
    i0 = idx[0]
    gemm(fgemm, _N, _N, n, kI, k, 1.0, B, Q[:kI], 0.0, X[i0:i0 + kI])
    if k > kI:
        j0 = idx[kI]
        gemm(fgemm, _N, _N, n, k - kI, k, 1.0, B, Q[kI:], 0.0, X[j0:j0 + k - kI])


@njit(cache=True)
def one_sided_jacobi(fgemm, Gt, Vt, tol, max_sweeps, block, accumulate):
    """Rotate rows of ``Gt`` (columns of the matrix) until pairwise orthogonal.

    Each sweep first orders the columns by decreasing norm (de Rijk's pivoting, applied to
    ``Gt`` and ``Vt`` alike) and recomputes their squared norms; within the sweep a rotation
    updates the two norms by the exact formulas ``alpha - t gamma`` and ``beta + t gamma``
    (recomputing one that cancels to under half its value), so each pair needs one dot
    product. With ``accumulate`` the rotations are accumulated into the rows of ``Vt`` (one
    matrix product per block pair, ``fgemm`` being BLAS ``xGEMM``); otherwise ``Vt`` is only
    permuted. Returns ``(sweeps, converged, errors)``: ``errors[i]`` is the largest pair
    cosine ``|gamma| / sqrt(alpha beta)`` met in sweep ``i``; a sweep where it is ``<= tol``
    ends.
    """
    n = Gt.shape[0]
    errors = np.zeros(max_sweeps)
    norms = np.empty(n)
    nblocks = (n + block - 1) // block
    buf = np.empty((2 * block, Vt.shape[1]), dtype=Vt.dtype)
    idx = np.empty(2 * block, dtype=np.int64)
    for sweep in range(1, max_sweeps + 1):
        for i in range(n):
            norms[i] = _dot(Gt[i], Gt[i])
        order = np.argsort(-norms, kind="mergesort")
        Gt[:] = Gt[order]
        Vt[:] = Vt[order]
        norms[:] = norms[order]
        worst = 0.0
        for I in range(nblocks):
            for J in range(I, nblocks):
                k, kI = _block_pair(n, block, I, J, idx)
                Q = _identity(k if accumulate else 0, Gt.dtype)
                rotated = False
                for a in range(kI):
                    p = idx[a]
                    x = Gt[p]
                    for b in range(a + 1 if J == I else kI, k):
                        q = idx[b]
                        y = Gt[q]
                        gamma = _dot(x, y)
                        if gamma == 0.0:
                            continue
                        alpha = norms[p]
                        beta = norms[q]
                        norm = np.sqrt(alpha * beta)
                        cos = abs(gamma) / norm if norm > 0.0 else np.inf
                        worst = max(worst, cos)
                        if cos <= tol:
                            continue
                        c, s, t = _rotation(alpha, beta, gamma)
                        _rotate(x, y, c, s)
                        if accumulate:
                            _rotate(Q[a], Q[b], c, s)
                        rotated = True
                        norms[p] = alpha - t * gamma
                        norms[q] = beta + t * gamma
                        if norms[p] < 0.5 * alpha:
                            norms[p] = _dot(x, x)
                        if norms[q] < 0.5 * beta:
                            norms[q] = _dot(y, y)
                if rotated and accumulate:
                    _apply_block(fgemm, Vt, Q, idx, k, kI, buf)
        errors[sweep - 1] = worst
        if worst <= tol:
            return sweep, True, errors
    return max_sweeps, False, errors


@njit(cache=True)
def two_sided_jacobi(fgemm, S, Vt, tol, max_sweeps, block):
    """Cyclic Jacobi on symmetric ``S`` (overwritten, ends diagonal); rows of ``Vt`` hold V.

    Returns ``(sweeps, converged, errors)``: ``errors[i]`` is the largest relative entry
    ``|S_pq| / max(sqrt|S_pp S_qq|, ‖S‖_F / n)`` met in sweep ``i``; a sweep where it is
    ``<= tol`` ends.
    """
    n = S.shape[0]
    floor = np.sqrt(np.sum(S * S)) / n
    errors = np.zeros(max_sweeps)
    nblocks = (n + block - 1) // block
    buf = np.empty((2 * block, n), dtype=S.dtype)
    idx = np.empty(2 * block, dtype=np.int64)
    inside = np.zeros(n, dtype=np.bool_)
    for sweep in range(1, max_sweeps + 1):
        worst = 0.0
        for I in range(nblocks):
            for J in range(I, nblocks):
                k, kI = _block_pair(n, block, I, J, idx)
                # The angles come from the pair's principal block alone, rotated (rows and
                # columns) in a small contiguous copy; the rotations are accumulated in Q.
                P = np.empty((k, k), dtype=S.dtype)
                for e in range(k):
                    for f in range(k):
                        P[e, f] = S[idx[e], idx[f]]
                Q = _identity(k, S.dtype)
                rotated = False
                for a in range(kI):
                    for b in range(a + 1 if J == I else kI, k):
                        gamma = P[a, b]
                        if gamma == 0.0:
                            continue
                        app = P[a, a]
                        aqq = P[b, b]
                        scale = max(np.sqrt(abs(app * aqq)), floor)
                        size = abs(gamma) / scale if scale > 0.0 else np.inf
                        worst = max(worst, size)
                        if size <= tol:
                            continue
                        c, s, t = _rotation(app, aqq, gamma)
                        _rotate(P[a], P[b], c, s)
                        for e in range(k):
                            P[e, a] = P[a, e]
                            P[e, b] = P[b, e]
                        P[a, a] = app - t * gamma
                        P[b, b] = aqq + t * gamma
                        P[a, b] = 0.0
                        P[b, a] = 0.0
                        _rotate(Q[a], Q[b], c, s)
                        rotated = True
                if not rotated:
                    continue
                # S <- Q S Qᵀ on the pair's rows and columns: the rows by one matrix product
                # each, the principal block from P, the columns mirrored from the rows.
                _apply_block(fgemm, S, Q, idx, k, kI, buf)
                for e in range(k):
                    inside[idx[e]] = True
                    for f in range(k):
                        S[idx[e], idx[f]] = P[e, f]
                for r in range(n):
                    if not inside[r]:
                        for e in range(k):
                            S[r, idx[e]] = S[idx[e], r]
                for e in range(k):
                    inside[idx[e]] = False
                _apply_block(fgemm, Vt, Q, idx, k, kI, buf)
        errors[sweep - 1] = worst
        if worst <= tol:
            return sweep, True, errors
    return max_sweeps, False, errors

"""Numba kernels for LU with partial pivoting, blocked as in LAPACK's ``xGETRF``.

``W`` is row-major (C order). The factorization runs in panels of ``nb`` columns; for each
panel (columns ``j0:j1``)

1. the tall panel ``W[j0:, j0:j1]`` is copied, transposed, into a buffer so that its
   columns are contiguous (the column-major layout LAPACK works in) and factored there by
   the recursive panel kernel :func:`_getrf2` (LAPACK's ``xGETRF2``: factor the left half,
   solve for the top of the right half, update the rest of the right half with one
   matrix-matrix product, factor it), whose small leaves are unblocked right-looking
   elimination;
2. the panel's row interchanges are applied to the columns left and right of it;
3. the block row is solved, ``U12 = L11^{-1} A12`` (BLAS ``xTRSM``);
4. the trailing matrix is updated by one matrix-matrix product,
   ``A22 <- A22 - L21 U12`` (BLAS ``xGEMM``, in place).

The pivots are those of partial pivoting (the first row of largest magnitude in the
current column), so the factorization is the unblocked loop's up to rounding. A pivot
column that is exactly zero is skipped, as ``xGETRF`` does.

Block sizes (measured on one core against ``scipy.linalg.lu_factor``, OpenBLAS, on a
shared machine, so differences under ~10% are noise): panels of ``nb = 64`` from
``min(m, n) = 512`` on (96 and 128 were no faster at n = 1024 and 2048, 32 was slower at
2048), ``nb = 32`` below (equal to 64 there, and less BLAS-2 panel work); leaves of 4
columns (8 within noise, 16 and 32 ~10% slower).

BLAS is called in place through :mod:`refimpl.linalg._blas_numba`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from refimpl.linalg._blas_numba import _L, _N, _R, _U, FASTMATH, blas_for, gemm, trxm

NB = 64  # panel width for min(m, n) >= NB_SMALL_BELOW (see "Block sizes" above)
NB_SMALL = 32  # panel width below that
NB_SMALL_BELOW = 512
LEAF = 4  # panel columns at or below which the recursive panel eliminates unblocked

@njit(cache=True, fastmath=FASTMATH)
def _getf2(Pt, c0, w, r0, ipiv):
    """Unblocked right-looking elimination of ``P[r0:, c0:c0+w]`` (``P = Pt.T``), swapping
    whole panel rows; ``ipiv[c]`` is the row (of ``P``) swapped with row ``r0 + c - c0``."""
    nc, M = Pt.shape
    for j in range(c0, c0 + w):
        rr = r0 + j - c0
        col = Pt[j]
        p = rr
        best = abs(col[rr])
        for i in range(rr + 1, M):
            if abs(col[i]) > best:
                best = abs(col[i])
                p = i
        ipiv[j] = p
        if p != rr:
            for c in range(nc):
                Pt[c, rr], Pt[c, p] = Pt[c, p], Pt[c, rr]
        piv = col[rr]
        if piv == 0.0:  # the column is zero from rr down: nothing to eliminate
            continue
        for i in range(rr + 1, M):
            col[i] /= piv
        for c in range(j + 1, c0 + w):
            dst = Pt[c]
            u = dst[rr]
            if u != 0.0:
                for i in range(rr + 1, M):
                    dst[i] -= u * col[i]


@njit(cache=True)
def _getrf2(Pt, w, ipiv, fgemm, ftrsm, leaf):
    """Recursive LU (LAPACK ``xGETRF2``) of the panel ``P = Pt.T[:, :w]`` (column-major).

    Node ``(c0, w, r0)`` factors ``P[r0:, c0:c0+w]``: its left half recursively, then
    ``A12 <- L11^{-1} A12`` and ``A22 <- A22 - A21 A12`` (one matrix-matrix product), then
    its right half; a node of at most ``leaf`` columns is eliminated unblocked. The
    recursion runs on an explicit stack (cached Numba code may not call itself).
    """
    M = Pt.shape[1]
    depth = 2
    while (1 << (depth - 2)) * leaf < w:
        depth += 1
    node = np.empty((depth, 4), dtype=np.int64)  # c0, width, r0, stage
    node[0, 0], node[0, 1], node[0, 2], node[0, 3] = 0, w, 0, 0
    top = 0
    while top >= 0:
        c0, nw, r0, stage = node[top, 0], node[top, 1], node[top, 2], node[top, 3]
        if nw <= leaf:
            _getf2(Pt, c0, nw, r0, ipiv)
            top -= 1
            continue
        n1 = nw // 2
        n2 = nw - n1
        if stage == 0:  # factor the left half first
            node[top, 3] = 1
            top += 1
            node[top, 0], node[top, 1], node[top, 2], node[top, 3] = c0, n1, r0, 0
        elif stage == 1:  # update the right half from it, then factor the right half
            trxm(ftrsm, _L, _L, _N, _U, n1, n2, 1.0, Pt[c0:c0 + n1, r0:],
                 Pt[c0 + n1:c0 + nw, r0:])
            gemm(fgemm, _N, _N, M - r0 - n1, n2, n1, -1.0, Pt[c0:c0 + n1, r0 + n1:],
                 Pt[c0 + n1:c0 + nw, r0:], 1.0, Pt[c0 + n1:c0 + nw, r0 + n1:])
            node[top, 3] = 2
            top += 1
            node[top, 0], node[top, 1], node[top, 2], node[top, 3] = c0 + n1, n2, r0 + n1, 0
        else:
            top -= 1


@njit(cache=True)
def _lu_blocked(W, perm, fgemm, ftrsm, nb, leaf):
    """Blocked right-looking LU of the row-major ``W`` in place (steps 1-4 of the module
    notes), panels of ``nb`` columns, recursive panel leaves of ``leaf`` columns."""
    m, n = W.shape
    k = min(m, n)
    buf = np.empty((min(nb, k), m + 8), dtype=W.dtype)  # padded: rows not 4 KiB apart
    ipiv = np.empty(min(nb, k), dtype=np.int64)
    for j0 in range(0, k, nb):
        jb = min(nb, k - j0)
        j1 = j0 + jb
        M = m - j0
        Pt = buf[:jb, :M]
        # The panel, transposed (its columns become contiguous rows of Pt), in tiles of
        # 16 rows so that neither side of the copy walks a whole column at a large stride.
        for i0 in range(0, M, 16):
            for c in range(jb):
                for i in range(i0, min(i0 + 16, M)):
                    Pt[c, i] = W[j0 + i, j0 + c]
        _getrf2(Pt, jb, ipiv, fgemm, ftrsm, leaf)
        for i0 in range(0, M, 16):
            for i in range(i0, min(i0 + 16, M)):
                for c in range(jb):
                    W[j0 + i, j0 + c] = Pt[c, i]
        # The panel's interchanges, applied in order to the columns outside the panel.
        for c in range(jb):
            i, p = j0 + c, j0 + ipiv[c]
            if p != i:
                perm[i], perm[p] = perm[p], perm[i]
                for col in range(j0):
                    W[i, col], W[p, col] = W[p, col], W[i, col]
                for col in range(j1, n):
                    W[i, col], W[p, col] = W[p, col], W[i, col]
        if j1 < n:
            # U12 <- L11^{-1} A12: row-major views are the transposes, so X^T L11^{-T}.
            trxm(ftrsm, _R, _U, _N, _U, n - j1, jb, 1.0, W[j0:j1, j0:j1], W[j0:j1, j1:])
            if j1 < m:  # A22 <- A22 - L21 U12, i.e. A22^T -= U12^T L21^T column-major.
                gemm(fgemm, _N, _N, n - j1, m - j1, jb, -1.0, W[j0:j1, j1:], W[j1:, j0:j1],
                     1.0, W[j1:, j1:])


def block_size(m, n):
    """Panel width ``nb`` for an (m, n) matrix (see "Block sizes" in the module notes)."""
    return NB_SMALL if min(m, n) < NB_SMALL_BELOW else NB


def lu_inplace(W, perm, nb=None, leaf=LEAF):
    """Overwrite the C-contiguous float32/float64 ``W`` (m, n) with its LU factors
    (multipliers below the diagonal, ``U`` on and above) and ``perm`` with the row order,
    so that ``A[perm] = L U``."""
    nb = block_size(*W.shape) if nb is None else nb
    fgemm, ftrsm = blas_for(W.dtype, "gemm", "trsm")
    _lu_blocked(W, perm, fgemm, ftrsm, max(1, int(nb)), max(1, int(leaf)))


@njit(cache=True)
def _split(W, L, U):
    """Unit lower ``L`` and upper ``U`` from the packed factors in ``W`` (one of them may be
    ``W`` itself: every entry is read before it is overwritten)."""
    m, n = W.shape
    k = min(m, n)
    for i in range(m):
        for j in range(min(i, k)):
            L[i, j] = W[i, j]
        if i < k:  # row i of both factors; copies first, then the zeros and the unit
            for j in range(i, n):
                U[i, j] = W[i, j]
            for j in range(i):
                U[i, j] = 0.0
            L[i, i] = 1.0
            for j in range(i + 1, k):
                L[i, j] = 0.0


def lu_factors(W, perm, nb=None, leaf=LEAF):
    """:func:`lu_inplace`, then ``(L, U)`` with ``A[perm] = L U``; ``W`` is reused for the
    larger factor (``L`` when ``m >= n``, else ``U``)."""
    lu_inplace(W, perm, nb, leaf)
    m, n = W.shape
    k = min(m, n)
    if m >= n:
        L, U = W, np.empty((k, n), dtype=W.dtype)
    else:
        L, U = np.empty((m, k), dtype=W.dtype), W
    _split(W, L, U)
    return L, U

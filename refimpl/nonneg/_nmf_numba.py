"""Compiled HALS sweep for :func:`refimpl.nonneg.nmf` (imported lazily: it imports Numba).

One HALS half-step updates every column of a factor ``W`` (m×k) against the Gram products
``P = X Hᵀ`` (m×k) and ``G = H Hᵀ`` (k×k) computed once per outer iteration by BLAS:

    w_j ← max(0, w_j + (p_j − W g_j) / G_jj),   j = 0, …, k−1,

with the current ``W`` on the right (Gauss–Seidel over the columns). Row ``i`` of the update
reads only row ``i`` of ``W``, so the kernel runs row by row (contiguous in a C-ordered
``W``) and, within a row, over the columns in order: the same arithmetic as the column-wise
reference, apart from the order of the length-k dot products.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, fastmath={"reassoc", "contract"})
def hals_sweep(W, P, G):
    """One HALS pass over the columns of ``W`` (m×k, C-ordered), in place; returns the
    squared Frobenius norm of the change (the inner-sweep stopping test reads it).

    ``P`` is ``X Hᵀ`` (m×k) and ``G`` is ``H Hᵀ`` (k×k). A column whose ``G_jj`` is zero
    (an all-zero row of ``H``) is left as it is.
    """
    m, k = W.shape
    change = 0.0
    for i in range(m):
        for j in range(k):
            gjj = G[j, j]
            if gjj <= 0.0:
                continue
            s = 0.0
            for r in range(k):
                s += W[i, r] * G[r, j]
            w = W[i, j] + (P[i, j] - s) / gjj
            w = w if w > 0.0 else 0.0
            change += (w - W[i, j]) ** 2
            W[i, j] = w
    return change

"""Compiled HALS sweeps for :func:`refimpl.nonneg.nmf` (imported lazily: they import Numba).

One HALS half-step updates every column of a factor ``W`` (m×k) against the Gram products
``P = X Hᵀ`` (m×k) and ``G = H Hᵀ`` (k×k) computed once per outer iteration by BLAS:

    w_j ← max(0, w_j + (p_j − W g_j) / G_jj),   j = 0, …, k−1,

with the current ``W`` on the right (Gauss–Seidel over the columns). Row ``i`` of the update
reads only row ``i`` of ``W``, so the kernel runs row by row (contiguous in a C-ordered
``W``) and, within a row, over the columns in order: the same arithmetic as the column-wise
reference, apart from the order of the length-k dot products.

Weighted HALS (per-entry weights ``M``; 0 marks a missing entry) has no Gram shortcut: each
coordinate update reads the residual ``E = X − W H`` under the weights, and ``E`` is kept up
to date in place (:func:`weighted_hals_w`, :func:`weighted_hals_h`).
"""

from __future__ import annotations

import numpy as np
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


@njit(cache=True, fastmath={"reassoc", "contract"})
def weighted_hals_w(E, M, W, H):
    """The W half-step of weighted HALS, in place on ``W`` (m×k) and on the residual
    ``E = X − W H`` (m×n); ``M`` (m×n) holds the weights, ``H`` is k×n.

    Entry ``w_ij`` is set to ``max(0, Σ_l M_il (E_il + w_ij h_jl) h_jl / Σ_l M_il h_jl²)`` and
    row ``i`` of ``E`` follows it; an entry whose denominator is zero stays. Row ``i`` of the
    update reads and writes only row ``i`` of ``W`` and ``E``, so running the rows one by one
    (the columns in order within a row) is the column-wise reference's arithmetic, apart from
    the order of the sums over ``l``.
    """
    m, n = E.shape
    k = W.shape[1]
    for i in range(m):
        for j in range(k):
            wij = W[i, j]
            num = 0.0
            den = 0.0
            for q in range(n):
                mh = M[i, q] * H[j, q]
                num += mh * (E[i, q] + wij * H[j, q])
                den += mh * H[j, q]
            if den <= 0.0:
                continue
            new = num / den
            new = new if new > 0.0 else 0.0
            d = new - wij
            if d != 0.0:
                for q in range(n):
                    E[i, q] -= d * H[j, q]
            W[i, j] = new


@njit(cache=True, fastmath={"reassoc", "contract"})
def weighted_hals_h(E, M, W, H):
    """The H half-step of weighted HALS, in place on ``H`` (k×n) and on ``E`` (m×n).

    Row ``h_j`` is set to ``max(0, Σ_i M_il w_ij (E_il + w_ij h_jl) / Σ_i M_il w_ij²)`` entry by
    entry (an entry whose denominator is zero stays), then ``E`` follows, before the next
    row. The sums over ``i`` are accumulated row by row of ``E`` and ``M``, so that every
    pass reads them contiguously.
    """
    m, n = E.shape
    k = W.shape[1]
    num = np.empty(n)
    den = np.empty(n)
    delta = np.empty(n)
    for j in range(k):
        num[:] = 0.0
        den[:] = 0.0
        for i in range(m):
            w = W[i, j]
            if w == 0.0:
                continue
            for q in range(n):
                mw = M[i, q] * w
                num[q] += mw * (E[i, q] + w * H[j, q])
                den[q] += mw * w
        for q in range(n):
            if den[q] > 0.0:
                new = num[q] / den[q]
                new = new if new > 0.0 else 0.0
                delta[q] = new - H[j, q]
                H[j, q] = new
            else:
                delta[q] = 0.0
        for i in range(m):
            w = W[i, j]
            if w == 0.0:
                continue
            for q in range(n):
                E[i, q] -= w * delta[q]

"""Numba kernel for LU with partial pivoting (right-looking, row-major: rows stream)."""

from __future__ import annotations

from numba import njit


@njit(cache=True, fastmath=True)
def lu_inplace(W, perm):
    m, n = W.shape
    for j in range(min(m, n)):
        p = j
        best = abs(W[j, j])
        for i in range(j + 1, m):
            if abs(W[i, j]) > best:
                best = abs(W[i, j])
                p = i
        if p != j:
            for c in range(n):
                W[j, c], W[p, c] = W[p, c], W[j, c]
            perm[j], perm[p] = perm[p], perm[j]
        piv = W[j, j]
        if piv == 0.0:
            continue
        for i in range(j + 1, m):
            lij = W[i, j] / piv
            W[i, j] = lij
            if lij != 0.0:
                for c in range(j + 1, n):
                    W[i, c] -= lij * W[j, c]

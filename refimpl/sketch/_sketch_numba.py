"""Numba kernels for the structured sketches (imported lazily by :mod:`refimpl.sketch.sketches`)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def fwht_rows(X):
    """In-place unnormalised Walsh–Hadamard transform along the rows of ``X`` (m×n, m = 2^p).

    Row ``i`` of the result is ``sum_j (-1)^{popcount(i & j)} X[j]``; rows are updated in
    butterflies of width ``h = 1, 2, 4, ...`` so that each pass streams whole rows.
    """
    m, n = X.shape
    h = 1
    while h < m:
        for start in range(0, m, 2 * h):
            for i in range(start, start + h):
                for c in range(n):
                    a = X[i, c]
                    b = X[i + h, c]
                    X[i, c] = a + b
                    X[i + h, c] = a - b
        h *= 2
    return X


@njit(cache=True)
def countsketch_rows(A, buckets, signs, d):
    """``S A`` for the CountSketch ``S`` (d×m) with one ``signs[i]`` in row ``buckets[i]``."""
    m, n = A.shape
    out = np.zeros((d, n), dtype=A.dtype)
    for i in range(m):
        b = buckets[i]
        s = signs[i]
        for c in range(n):
            out[b, c] += s * A[i, c]
    return out

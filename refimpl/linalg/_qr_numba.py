"""Numba kernel for Householder QR with column pivoting.

The matrix is passed transposed (``At = A.T``, C-contiguous) so that each column of A is a
contiguous row of ``At``: every reflector application and norm update then streams through
memory. Column norms are downdated after each step and recomputed when cancellation makes
the downdate unreliable (the safeguard of LAPACK's ``xLAQP2``).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, fastmath=True)
def _cpqr_inplace(At, k, perm, V, taus):
    n, m = At.shape
    norms = np.empty(n, dtype=At.dtype)
    for i in range(n):
        norms[i] = np.sqrt(np.sum(At[i, :] * At[i, :]))
    ref = norms.copy()
    tol3z = np.sqrt(np.finfo(At.dtype).eps)
    for j in range(k):
        p = j
        for i in range(j + 1, n):
            if norms[i] > norms[p]:
                p = i
        if p != j:
            for r in range(m):
                At[j, r], At[p, r] = At[p, r], At[j, r]
            perm[j], perm[p] = perm[p], perm[j]
            norms[p] = norms[j]
            ref[p] = ref[j]
        # Householder reflector for column j, rows j..m-1.
        alpha = At[j, j]
        sigma2 = 0.0
        for r in range(j + 1, m):
            sigma2 += At[j, r] * At[j, r]
        V[j, j] = 1.0
        if sigma2 == 0.0:
            taus[j] = 0.0
        else:
            nrm = np.sqrt(alpha * alpha + sigma2)
            beta = -nrm if alpha >= 0 else nrm
            scale = 1.0 / (alpha - beta)
            for r in range(j + 1, m):
                V[j, r] = At[j, r] * scale
                At[j, r] = 0.0
            taus[j] = (beta - alpha) / beta
            At[j, j] = beta
            tau = taus[j]
            for i in range(j + 1, n):
                dot = At[i, j]
                for r in range(j + 1, m):
                    dot += V[j, r] * At[i, r]
                dot *= tau
                At[i, j] -= dot
                for r in range(j + 1, m):
                    At[i, r] -= dot * V[j, r]
        # Downdate the norms of the remaining columns (LAPACK xLAQP2).
        for i in range(j + 1, n):
            if norms[i] != 0.0:
                t = abs(At[i, j]) / norms[i]
                t = max(0.0, (1.0 + t) * (1.0 - t))
                t2 = t * (norms[i] / ref[i]) ** 2
                if t2 <= tol3z:
                    s = 0.0
                    for r in range(j + 1, m):
                        s += At[i, r] * At[i, r]
                    norms[i] = np.sqrt(s)
                    ref[i] = norms[i]
                else:
                    norms[i] *= np.sqrt(t)


def _form_q(V, taus, m, k, block=32):
    """Q = H_0 H_1 ... H_{k-1} I[:, :k], accumulated backwards in blocks.

    A block of reflectors is applied at once in compact WY form
    ``H_j ... H_{j+b-1} = I - V_b T V_b^T`` (Schreiber & Van Loan), so this part runs as
    matrix-matrix products (BLAS-3) rather than one reflector at a time. Columns before the
    block are untouched (they are zero from its first row down), as in LAPACK's xORGQR.
    """
    Q = np.eye(m, k, dtype=V.dtype)
    for j0 in range(((k - 1) // block) * block, -1, -block):
        j1 = min(j0 + block, k)
        Vb = V[j0:j1, j0:].T
        T = np.zeros((j1 - j0, j1 - j0), dtype=V.dtype)
        for i in range(j1 - j0):
            T[i, i] = taus[j0 + i]
            if i:
                T[:i, i] = -taus[j0 + i] * (T[:i, :i] @ (Vb[:, :i].T @ Vb[:, i]))
        Q[j0:, j0:] -= Vb @ (T @ (Vb.T @ Q[j0:, j0:]))
    return Q


def cpqr_kernel(At, k):
    """Pivoted QR of ``A = At.T`` after ``k`` steps; returns ``Q, R, perm`` (signs normalised)."""
    At = np.array(At, dtype=np.result_type(At.dtype, np.float32), order="C", copy=True)
    n, m = At.shape
    perm = np.arange(n)
    V = np.zeros((k, m), dtype=At.dtype)
    taus = np.zeros(k, dtype=At.dtype)
    _cpqr_inplace(At, k, perm, V, taus)
    Q = _form_q(V, taus, m, k)
    R = np.triu(At[:, :k].T)
    d = np.where(np.diagonal(R) < 0, -1.0, 1.0).astype(R.dtype)
    return Q * d, R * d[:, None], perm

"""Numba kernel for Householder QR with column pivoting, blocked as in LAPACK's ``xGEQP3``.

The matrix is passed transposed (``At = A.T``, C-contiguous) so that each column of A is a
contiguous row of ``At``. The factorization runs in panels of ``nb`` columns, following
Quintana-Ortí, Sun & Bischof (1998) [quintana1998blas3] (LAPACK's ``xLAQPS``). Within a
panel, step ``j`` (panel column ``q``)

1. picks the pivot from the partial column norms and swaps it to position ``j``;
2. brings the pivot column up to date with the panel's pending reflectors,
   ``A[j:, j] -= V[j:, :q] F[j, :q]^T``;
3. generates the reflector ``I - tau v v^T`` that zeroes it below the diagonal;
4. appends a column to the auxiliary matrix ``F`` (``A_new = A_old - V F^T`` on the rows
   the panel has not finalised),
   ``F[:, q] = tau A[j:, j+1:]^T v - tau F[:, :q] (V[j:, :q]^T v)``;
5. updates row ``j`` only, ``A[j, j+1:] -= V[j, :q+1] F[j+1:, :q+1]^T``, and downdates the
   remaining column norms from that row.

The rest of the trailing matrix is left stale until the panel ends, when one matrix-matrix
product ``A[j1:, j1:] -= V F^T`` (BLAS-3, done by NumPy) brings it up to date. A panel ends
early when a downdated norm loses too much to cancellation (the ``tol3z`` test of
``xLAQP2``); such norms are recomputed from the updated trailing matrix before the next pivot
is chosen, so the pivots are those of the unblocked Businger–Golub loop (up to rounding in
near-ties). Step 4 still reads the trailing matrix once per column (BLAS-2, one dot product
per contiguous row), but no step writes it any more.
"""

from __future__ import annotations

import numpy as np
from numba import njit

BLOCK = 32  # panel width nb (LAPACK's default for xGEQP3) and Q's compact-WY block size


@njit(cache=True, fastmath=True)
def _recompute_norms(At, start, rows, norms, ref):
    """Exact norms of ``At[i, start:]`` for the rows ``i`` flagged in ``rows``."""
    for i in range(At.shape[0]):
        if rows[i]:
            norms[i] = np.sqrt(np.dot(At[i, start:], At[i, start:]))
            ref[i] = norms[i]
            rows[i] = False


@njit(cache=True, fastmath=True)
def _factor_panel(At, j0, k, perm, norms, ref, stale, V, taus, F):
    """Factor columns ``j0, j0 + 1, ...`` of ``A = At.T`` (at most ``F.shape[1]`` and up to
    column ``k``), leaving ``A[j1:, j1:]`` stale by ``V F^T``; returns the number of columns
    factored. Stops early after a step that flags a column norm in ``stale``."""
    n, m = At.shape
    nb = F.shape[1]
    tol3z = np.sqrt(np.finfo(At.dtype).eps)
    w = np.empty(nb, dtype=At.dtype)
    q = 0
    flagged = False
    while q < nb and j0 + q < k and not flagged:
        j = j0 + q
        p = j
        for i in range(j + 1, n):
            if norms[i] > norms[p]:
                p = i
        if p != j:
            for r in range(m):
                At[j, r], At[p, r] = At[p, r], At[j, r]
            for c in range(q):
                F[j, c], F[p, c] = F[p, c], F[j, c]
            perm[j], perm[p] = perm[p], perm[j]
            norms[p] = norms[j]
            ref[p] = ref[j]
        # Pending panel updates to the pivot column: A[j:, j] -= V[j:, :q] F[j, :q]^T.
        for c in range(q):
            f = F[j, c]
            for r in range(j, m):
                At[j, r] -= f * V[j0 + c, r]
        # Householder reflector for column j, rows j..m-1 (v stored in V[j], v[j] = 1).
        alpha = At[j, j]
        sigma2 = np.dot(At[j, j + 1:], At[j, j + 1:])
        V[j, j] = 1.0
        if sigma2 == 0.0:
            taus[j] = 0.0
        else:
            nrm = np.sqrt(alpha * alpha + sigma2)
            beta = -nrm if alpha >= 0 else nrm
            scale = 1.0 / (alpha - beta)
            for r in range(j + 1, m):
                V[j, r] = At[j, r] * scale
            taus[j] = (beta - alpha) / beta
            At[j, j] = beta
        tau = taus[j]
        # New column of F: tau A_old[j:, j+1:]^T v - tau F[:, :q] (V[j:, :q]^T v).
        v = V[j, j:]
        for c in range(q):
            w[c] = tau * np.dot(V[j0 + c, j:], v)
        for i in range(j + 1, n):
            s = 0.0
            if tau != 0.0:
                s = tau * np.dot(At[i, j:], v)
                for c in range(q):
                    s -= F[i, c] * w[c]
            F[i, q] = s
        # Row j of the trailing matrix: A[j, j+1:] -= V[j, :q+1] F[j+1:, :q+1]^T.
        for c in range(q + 1):
            w[c] = V[j0 + c, j]
        for i in range(j + 1, n):
            s = 0.0
            for c in range(q + 1):
                s += F[i, c] * w[c]
            At[i, j] -= s
        # Downdate the remaining column norms from row j (LAPACK xLAQP2 / xLAQPS).
        for i in range(j + 1, n):
            if norms[i] != 0.0:
                t = abs(At[i, j]) / norms[i]
                t = max(0.0, (1.0 + t) * (1.0 - t))
                if t * (norms[i] / ref[i]) ** 2 <= tol3z:
                    stale[i] = True
                    flagged = True
                else:
                    norms[i] *= np.sqrt(t)
        q += 1
    return q


def _form_q(V, taus, m, k, block=BLOCK):
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


def cpqr_kernel(At, k, block=BLOCK):
    """Pivoted QR of ``A = At.T`` after ``k`` steps; returns ``Q, R, perm`` (signs normalised)."""
    At = np.array(At, dtype=np.result_type(At.dtype, np.float32), order="C", copy=True)
    n, m = At.shape
    perm = np.arange(n)
    V = np.zeros((k, m), dtype=At.dtype)
    taus = np.zeros(k, dtype=At.dtype)
    F = np.empty((n, block), dtype=At.dtype)
    norms = np.empty(n, dtype=At.dtype)
    ref = np.empty(n, dtype=At.dtype)
    stale = np.ones(n, dtype=np.bool_)
    _recompute_norms(At, 0, stale, norms, ref)
    j0 = 0
    while j0 < k:
        kb = _factor_panel(At, j0, k, perm, norms, ref, stale, V, taus, F)
        j1 = j0 + kb
        if j1 < k:  # the last panel's trailing block is not part of Q or R
            At[j1:, j1:] -= F[j1:, :kb] @ V[j0:j1, j1:]
            _recompute_norms(At, j1, stale, norms, ref)
        j0 = j1
    Q = _form_q(V, taus, m, k, block)
    R = np.triu(At[:, :k].T)
    d = np.where(np.diagonal(R) < 0, -1.0, 1.0).astype(R.dtype)
    return Q * d, R * d[:, None], perm

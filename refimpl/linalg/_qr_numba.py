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
product ``A[j1:, j1:] -= V F^T`` (BLAS-3, one in-place xGEMM) brings it up to date. A panel
ends early when a downdated norm loses too much to cancellation (the ``tol3z`` test of
``xLAQP2``); such norms are recomputed from the updated trailing matrix before the next pivot
is chosen, so the pivots are those of the unblocked Businger–Golub loop (up to rounding in
near-ties). Step 4 still reads the trailing matrix once per column, as one xGEMV (BLAS-2:
this read, not the flops, bounds the factorization at large sizes, for LAPACK too), but no
step writes it; steps 4 (its correction) and 5 share one pass over ``F``.

``Q`` is then formed as ``xORGQR`` does, backwards in compact-WY blocks, every step a
matrix-matrix product (:func:`_form_q_blocked`). BLAS is called in place on views through
:mod:`refimpl.linalg._blas_numba`'s wrappers; ``Q`` and (when ``k = m``) ``R`` come back
column-major, as LAPACK's do, so that neither is copied.

Block sizes: panels of ``nb = 32`` (LAPACK's choice; the panel ends, and stale norms are
recomputed, where ``xGEQP3``'s do); ``Q`` in blocks of 32, 64 from ``k = 768`` on
(measured on one core: 64 forms ``Q`` ~10% faster at n = 1024, 32 is faster below).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from refimpl.linalg._blas_numba import _L, _N, _T, _U, FASTMATH, blas_for, gemm, gemv, trxm

BLOCK = 32  # panel width nb (xGEQP3's)
Q_BLOCK = 32  # Q's compact-WY block size ...
Q_BLOCK_LARGE, Q_LARGE_FROM = 64, 768  # ... and from k = 768 on


@njit(cache=True, fastmath=FASTMATH)
def _recompute_norms(At, start, rows, norms, ref):
    """Exact norms of ``At[i, start:]`` for the rows ``i`` flagged in ``rows``."""
    for i in range(At.shape[0]):
        if rows[i]:
            norms[i] = np.sqrt(np.dot(At[i, start:], At[i, start:]))
            ref[i] = norms[i]
            rows[i] = False


@njit(cache=True, fastmath=FASTMATH)
def _factor_panel(At, j0, k, perm, norms, ref, stale, V, taus, F, fgemv):
    """Factor columns ``j0, j0 + 1, ...`` of ``A = At.T`` (at most ``F.shape[1]`` and up to
    column ``k``), leaving ``A[j1:, j1:]`` stale by ``V F^T``; returns the number of columns
    factored. Stops early after a step that flags a column norm in ``stale``."""
    n, m = At.shape
    nb = F.shape[1]
    tol3z = np.sqrt(np.finfo(At.dtype).eps)
    w = np.empty(nb, dtype=At.dtype)
    u = np.empty(nb, dtype=At.dtype)
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
        # New column of F: tau A_old[j:, j+1:]^T v - F[:, :q] (tau V[j:, :q]^T v); the
        # first term is one xGEMV over the trailing matrix (its only read in this step).
        v = V[j, j:]
        for c in range(q):
            w[c] = tau * np.dot(V[j0 + c, j:], v)
            u[c] = V[j0 + c, j]
        if tau != 0.0:
            gemv(fgemv, _T, m - j, n - j - 1, tau, At[j + 1:, j:], v, 0.0, F[j + 1:, q])
        # Then, column by column of the trailing matrix (one pass over F[j+1:, :q+1]):
        # F's correction, row j of the trailing matrix, A[j, j+1:] -= V[j, :q+1] F^T, and
        # the downdate of the remaining column norms from that row (xLAQP2 / xLAQPS).
        for i in range(j + 1, n):
            fiq = 0.0
            s = 0.0
            if tau != 0.0:
                corr = 0.0
                for c in range(q):
                    corr += F[i, c] * w[c]
                    s += F[i, c] * u[c]
                fiq = F[i, q] - corr
            else:
                for c in range(q):
                    s += F[i, c] * u[c]
            F[i, q] = fiq
            a = At[i, j] - (s + fiq)  # V[j, j] = 1
            At[i, j] = a
            if norms[i] != 0.0:
                t = abs(a) / norms[i]
                t = max(0.0, (1.0 + t) * (1.0 - t))
                if t * (norms[i] / ref[i]) ** 2 <= tol3z:
                    stale[i] = True
                    flagged = True
                else:
                    norms[i] *= np.sqrt(t)
        q += 1
    return q


@njit(cache=True)
def _geqp3(At, k, perm, norms, ref, stale, V, taus, F, fgemm, fgemv):
    """The blocked factorization (LAPACK ``xGEQP3``): panels by :func:`_factor_panel`, each
    followed by the trailing update ``A[j1:, j1:] -= V[j1:, panel] F[j1:, :kb]^T`` (one
    in-place xGEMM) and the recomputation of the norms the panel flagged."""
    n, m = At.shape
    _recompute_norms(At, 0, stale, norms, ref)
    j0 = 0
    while j0 < k:
        kb = _factor_panel(At, j0, k, perm, norms, ref, stale, V, taus, F, fgemv)
        j1 = j0 + kb
        if j1 < k:  # the last panel's trailing block is not part of Q or R
            gemm(fgemm, _N, _N, m - j1, n - j1, kb, -1.0, V[j0:j1, j1:], F[j1:, :kb], 1.0,
                 At[j1:, j1:])
            _recompute_norms(At, j1, stale, norms, ref)
        j0 = j1


@njit(cache=True)
def _larft(Vb, taus, Gt, Tt):
    """Triangular factor ``T`` of ``H_0 ... H_{b-1} = I - V T V^T`` (LAPACK ``xLARFT``,
    forward, columnwise) for the ``b`` reflectors in the rows of ``Vb`` (``V = Vb.T``, unit
    diagonal, zeros above it), from their Gram matrix ``Gt = V^T V``:
    ``T[:i, i] = -tau_i T[:i, :i] G[:i, i]``. Written transposed, ``Tt[c, r] = T[r, c]``,
    which is ``T`` in column-major order."""
    b = Vb.shape[0]
    for i in range(b):
        tau = taus[i]
        Tt[i, i] = tau
        for r in range(i):
            s = 0.0
            for c in range(r, i):
                s += Tt[c, r] * Gt[i, c]
            Tt[i, r] = -tau * s
        for r in range(i + 1, b):
            Tt[i, r] = 0.0


@njit(cache=True)
def _form_q_blocked(V, taus, Qt, nb, fgemm, ftrmm):
    """``Q = H_0 H_1 ... H_{k-1} I[:, :k]`` (LAPACK ``xORGQR``), written as ``Qt = Q^T``
    (C order, i.e. ``Q`` column-major); ``Qt`` starts at zero.

    Blocks of ``nb`` reflectors are applied backwards in compact WY form
    ``H_{j0} ... H_{j1-1} = I - V_b T V_b^T`` (Schreiber & Van Loan): ``T`` from one
    matrix-matrix product ``V_b^T V_b`` and the ``xLARFT`` recurrence; then the columns
    already formed are updated as ``W = T (V_b^T Q[j1:, j1:])``, ``Q[j0:, j1:] -= V_b W``
    (their rows ``j0:j1`` are still zero, so ``V_b^T`` needs only rows ``j1:`` and the top
    block of the update is the triangular product ``-V_11 W``), and the block's own columns
    are ``Q[j0:, j0:j1] = I[:, :b] - V_b (T V_11^T)``. Every step is BLAS-3.
    """
    k, m = Qt.shape
    dt = Qt.dtype
    Gt = np.empty((nb, nb), dtype=dt)
    Tt = np.empty((nb, nb), dtype=dt)
    St = np.empty((nb, nb), dtype=dt)
    Wt = np.zeros((max(k - 1, 1), nb), dtype=dt)
    for j0 in range(((k - 1) // nb) * nb, -1, -nb):
        j1 = min(j0 + nb, k)
        b = j1 - j0
        Vb = V[j0:j1, j0:]  # column-major V_b, (m - j0) x b
        G = Gt[:b, :b]
        gemm(fgemm, _T, _N, b, b, m - j0, 1.0, Vb, Vb, 0.0, G)
        T = Tt[:b, :b]
        _larft(Vb, taus[j0:j1], G, T)
        if j1 < k:
            C = Qt[j1:, j1:]  # column-major Q[j1:, j1:]
            V2 = V[j0:j1, j1:]  # rows j1: of V_b
            W = Wt[:k - j1, :b]  # column-major b x (k - j1)
            gemm(fgemm, _T, _N, b, k - j1, m - j1, 1.0, V2, C, 0.0, W)
            trxm(ftrmm, _L, _U, _N, _N, b, k - j1, 1.0, T, W)
            top = Qt[j1:, j0:j1]  # column-major Q[j0:j1, j1:]
            top[:, :] = W
            trxm(ftrmm, _L, _L, _N, _U, b, k - j1, -1.0, Vb, top)
            gemm(fgemm, _N, _N, m - j1, k - j1, b, -1.0, V2, W, 1.0, C)
        # S = T V_11^T (upper triangular), written transposed: St[c, r] = S[r, c].
        S = St[:b, :b]
        for c in range(b):
            for r in range(b):
                s = 0.0
                for t in range(r, c + 1):
                    s += T[t, r] * Vb[t, c]
                S[c, r] = s
        gemm(fgemm, _N, _N, m - j0, b, b, -1.0, Vb, S, 0.0, Qt[j0:j1, j0:])
        for i in range(b):
            Qt[j0 + i, j0 + i] += 1.0


def _form_q(V, taus, m, k, block=Q_BLOCK):
    """``Q^T`` (k, m), C order, for the reflectors in the rows of ``V``; see
    :func:`_form_q_blocked`."""
    fgemm, ftrmm = blas_for(V.dtype, "gemm", "trmm")
    Qt = np.zeros((k, m), dtype=V.dtype)
    _form_q_blocked(V, taus, Qt, max(1, int(block)), fgemm, ftrmm)
    return Qt


@njit(cache=True)
def _copy_transposed(A, out):
    """``out[:] = A.T`` in 32 x 32 tiles (a plain strided copy misses the cache on every
    element of one side)."""
    r, c = out.shape
    for i0 in range(0, r, 32):
        for j0 in range(0, c, 32):
            for j in range(j0, min(j0 + 32, c)):
                for i in range(i0, min(i0 + 32, r)):
                    out[i, j] = A[j, i]


@njit(cache=True)
def _finish(At, Qt, k):
    """Normalise signs and clear what is not ``R`` in place: ``R = At[:, :k].T`` becomes
    upper trapezoidal, and row ``i`` of ``R`` and column ``i`` of ``Q`` (row ``i`` of
    ``Qt``) are negated where ``R[i, i] < 0``."""
    n = At.shape[0]
    d = np.ones(k, dtype=At.dtype)
    for i in range(k):
        if At[i, i] < 0:
            d[i] = -1.0
            for r in range(Qt.shape[1]):
                Qt[i, r] = -Qt[i, r]
    for c in range(n):  # row c of At is column c of R: entries 0..min(c, k-1) are R's
        row = At[c]
        for i in range(min(c + 1, k)):
            row[i] *= d[i]
        for i in range(c + 1, k):
            row[i] = 0.0


def _copy_tr(At):
    """C-contiguous copy of ``At``: tiled when ``At`` is a transposed C array."""
    if At.flags.f_contiguous and not At.flags.c_contiguous:
        out = np.empty(At.shape, dtype=At.dtype)
        _copy_transposed(At.T, out)
        return out
    return np.array(At, order="C", copy=True)


def cpqr_kernel(At, k, block=BLOCK, q_block=None):
    """Pivoted QR of ``A = At.T`` after ``k`` steps; returns ``Q, R, perm`` (signs normalised).

    ``At`` (n, m) may be any view (``A.T`` itself); it is copied, C-contiguous, first.
    """
    dtype = np.result_type(At.dtype, np.float32)
    if At.dtype != dtype:
        At = At.astype(dtype)
    n, m = At.shape
    At = _copy_tr(At)
    fgemm, fgemv = blas_for(dtype, "gemm", "gemv")
    perm = np.arange(n)
    V = np.zeros((k, m), dtype=dtype)
    taus = np.zeros(k, dtype=dtype)
    F = np.zeros((n, block), dtype=dtype)
    norms = np.empty(n, dtype=dtype)
    ref = np.empty(n, dtype=dtype)
    stale = np.ones(n, dtype=np.bool_)
    _geqp3(At, k, perm, norms, ref, stale, V, taus, F, fgemm, fgemv)
    if q_block is None:
        q_block = Q_BLOCK_LARGE if k >= Q_LARGE_FROM else Q_BLOCK
    Qt = _form_q(V, taus, m, k, q_block)
    _finish(At, Qt, k)
    if k == m:  # R is all of At: return it as the (column-major) view, no copy
        R = At.T
    else:
        R = np.empty((k, n), dtype=dtype)
        _copy_transposed(At[:, :k], R)
    return Qt.T, R, perm

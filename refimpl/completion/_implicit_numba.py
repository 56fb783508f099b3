"""Compiled kernels for :mod:`refimpl.completion.implicit` (imported lazily: they import Numba).

**ALS rows.** Every half-sweep of implicit ALS solves, for each row ``u`` of a CSR matrix
(users × items for the user half, items × users for the item half), the normal equations

    (G + lam[u] I + sum_idx w[idx] y_i y_iᵀ) x_u = sum_idx bc[idx] y_i,

``idx`` running over the stored entries of row ``u`` (column ``i = indices[idx]``), with
``G = Yᵀ Y`` formed once per half-sweep by BLAS. ``w`` (confidence − 1) and ``bc``
(confidence × preference) are per entry and prepared by the caller for either confidence
convention, so one kernel serves both. Two solvers:

- ``cg_row``: ``cg_steps`` conjugate-gradient steps started from the current ``x_u``
  (Takács, Pilászy & Tikk, 2011); the matrix is never formed, every product
  ``A v = G v + lam v + sum w (y·v) y`` costs ``k² + 2k nnz_u``. The steps stop early when
  the squared residual norm falls below ``CG_TOL`` (the constant of the ``implicit``
  package).
- ``chol_row``: the exact solve, forming ``A`` (lower triangle) and factoring it by
  Cholesky.

A row without entries gets ``x_u = 0`` (the exact solution of both conventions there).

Rows are independent, so the sweeps distribute fixed chunks of rows over Numba threads
with ``prange``; each row's arithmetic is the same code on the same inputs whatever the
thread count, so the results are bitwise identical for any number of threads. One thread
runs the same parallel kernel (``numba.set_num_threads(1)``), so there is one compiled code
path. The scratch vectors of each chunk are slices of one array allocated before the
``prange`` loop: a ``np.empty`` inside the loop body is loop-invariant to Numba, which
hoists it out of the parallel region, and the threads would then share it (a data race).

All ALS arithmetic is in the factors' dtype (float32 stays float32): accumulators start at
the typed ``zero`` argument.

**BPR epoch.** ``bpr_epoch`` runs stochastic gradient ascent on ``ln σ(x_uij)`` over given
triples (see :func:`refimpl.completion.bpr`), in float64.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from refimpl.completion._explicit_numba import _cholesky_solve

#: Conjugate gradient stops once the squared residual norm ``r·r`` falls below this.
CG_TOL = 1e-20

_FM = {"reassoc", "contract"}


@njit(cache=True, fastmath=_FM)
def cg_row(u, indptr, indices, w, bc, lam, X, Y, G, cg_steps, r, p, Ap, zero):
    """``cg_steps`` CG steps on row ``u``'s normal equations, from ``X[u]``, in place.

    ``r``, ``p``, ``Ap`` are scratch vectors of length k, fully overwritten.
    """
    k = X.shape[1]
    start = indptr[u]
    end = indptr[u + 1]
    if start == end:
        for c in range(k):
            X[u, c] = zero
        return
    lu = lam[u]
    # r = b - A x
    for a in range(k):
        s = zero
        for c in range(k):
            s += G[a, c] * X[u, c]
        r[a] = -s - lu * X[u, a]
    for idx in range(start, end):
        i = indices[idx]
        d = zero
        for c in range(k):
            d += Y[i, c] * X[u, c]
        t = bc[idx] - w[idx] * d
        for c in range(k):
            r[c] += t * Y[i, c]
    rsold = zero
    for c in range(k):
        p[c] = r[c]
        rsold += r[c] * r[c]
    if rsold < CG_TOL:
        return
    for _ in range(cg_steps):
        # Ap = G p + lam p + sum w (y·p) y
        for a in range(k):
            s = zero
            for c in range(k):
                s += G[a, c] * p[c]
            Ap[a] = s + lu * p[a]
        for idx in range(start, end):
            i = indices[idx]
            d = zero
            for c in range(k):
                d += Y[i, c] * p[c]
            t = w[idx] * d
            for c in range(k):
                Ap[c] += t * Y[i, c]
        pAp = zero
        for c in range(k):
            pAp += p[c] * Ap[c]
        if not pAp > 0:
            break
        step = rsold / pAp
        rsnew = zero
        for c in range(k):
            X[u, c] += step * p[c]
            r[c] -= step * Ap[c]
            rsnew += r[c] * r[c]
        if rsnew < CG_TOL:
            break
        beta = rsnew / rsold
        for c in range(k):
            p[c] = r[c] + beta * p[c]
        rsold = rsnew


@njit(cache=True, fastmath=_FM)
def chol_row(u, indptr, indices, w, bc, lam, X, Y, G, A, b, zero):
    """Exact solve of row ``u``'s normal equations into ``X[u]``; False if ``A`` is not
    positive definite (``X[u]`` is then left unchanged).

    ``A`` (k×k) and ``b`` (k) are scratch, fully overwritten; the solve is the Cholesky
    kernel the explicit ALS uses (``_cholesky_solve``).
    """
    k = X.shape[1]
    start = indptr[u]
    end = indptr[u + 1]
    if start == end:
        for c in range(k):
            X[u, c] = zero
        return True
    for a in range(k):
        for c in range(a + 1):
            A[a, c] = G[a, c]
        A[a, a] += lam[u]
        b[a] = zero
    for idx in range(start, end):
        i = indices[idx]
        wi = w[idx]
        bi = bc[idx]
        for a in range(k):
            ya = wi * Y[i, a]
            b[a] += bi * Y[i, a]
            for c in range(a + 1):
                A[a, c] += ya * Y[i, c]
    for a in range(k):  # the solver reads the upper triangle
        for c in range(a):
            A[c, a] = A[a, c]
    return _cholesky_solve(A, b, X[u])


@njit(cache=True, fastmath=_FM, parallel=True)
def cg_sweep(indptr, indices, w, bc, lam, X, Y, G, cg_steps, zero, chunk):
    """CG update of every row of ``X``, chunks of ``chunk`` rows spread over threads."""
    m, k = X.shape
    n_chunks = (m + chunk - 1) // chunk
    # scratch: one (3, k) block per chunk, allocated here (never shared between chunks)
    scratch = np.empty((n_chunks, 3, k), dtype=X.dtype)
    for ch in prange(n_chunks):
        r = scratch[ch, 0]
        p = scratch[ch, 1]
        Ap = scratch[ch, 2]
        for u in range(ch * chunk, min(m, (ch + 1) * chunk)):
            cg_row(u, indptr, indices, w, bc, lam, X, Y, G, cg_steps, r, p, Ap, zero)


@njit(cache=True, fastmath=_FM, parallel=True)
def chol_sweep(indptr, indices, w, bc, lam, X, Y, G, zero, chunk):
    """Exact update of every row of ``X`` over threads; returns the smallest failing row
    among the chunks (each chunk stops at its first failure), or -1."""
    m, k = X.shape
    n_chunks = (m + chunk - 1) // chunk
    bad = np.full(n_chunks, -1, dtype=np.int64)
    # scratch: one (k + 1, k) block per chunk, allocated here (never shared between chunks)
    scratch = np.empty((n_chunks, k + 1, k), dtype=X.dtype)
    for ch in prange(n_chunks):
        A = scratch[ch, :k]
        b = scratch[ch, k]
        for u in range(ch * chunk, min(m, (ch + 1) * chunk)):
            if not chol_row(u, indptr, indices, w, bc, lam, X, Y, G, A, b, zero):
                bad[ch] = u
                break
    for ch in range(n_chunks):
        if bad[ch] >= 0:
            return bad[ch]
    return -1


@njit(cache=True)
def observed_loss(indptr, indices, w, bc, X, Y):
    """``sum over stored entries of bc (1 - 2 s) + w s²``, ``s = x_u·y_i``, in float64.

    With ``w = c − 1`` and ``bc = c p`` this is the observed-entry part of
    ``sum_ui c_ui (p_ui − s_ui)²`` once ``sum_ui s_ui²`` is added (see the caller).
    """
    k = X.shape[1]
    total = 0.0
    for u in range(X.shape[0]):
        for idx in range(indptr[u], indptr[u + 1]):
            i = indices[idx]
            s = 0.0
            for c in range(k):
                s += float(X[u, c]) * float(Y[i, c])
            total += float(bc[idx]) * (1.0 - 2.0 * s) + float(w[idx]) * s * s
    return total


@njit(cache=True)
def bpr_epoch(P, Q, bias, us, its, js, lr, reg):
    """One pass of BPR SGD over the triples ``(us[t], its[t], js[t])`` in order, in place.

    Returns ``(mean of −ln σ(x_uij), fraction with x_uij > 0)``, both measured on each
    triple just before its update.
    """
    n = us.shape[0]
    k = P.shape[1]
    loss = 0.0
    correct = 0
    for t in range(n):
        u = us[t]
        i = its[t]
        j = js[t]
        x = bias[i] - bias[j]
        for c in range(k):
            x += P[u, c] * (Q[i, c] - Q[j, c])
        if x > 0:
            correct += 1
        # −ln σ(x) and z = σ(−x), written to avoid overflow of exp
        if x >= 0:
            e = np.exp(-x)
            loss += np.log1p(e)
            z = e / (1.0 + e)
        else:
            e = np.exp(x)
            loss += -x + np.log1p(e)
            z = 1.0 / (1.0 + e)
        for c in range(k):
            pu = P[u, c]
            qi = Q[i, c]
            qj = Q[j, c]
            P[u, c] = pu + lr * (z * (qi - qj) - reg * pu)
            Q[i, c] = qi + lr * (z * pu - reg * qi)
            Q[j, c] = qj + lr * (-z * pu - reg * qj)
        bias[i] += lr * (z - reg * bias[i])
        bias[j] += lr * (-z - reg * bias[j])
    return loss / n, correct / n

"""Compiled kernels for :mod:`refimpl.completion.explicit` (imported lazily: they import Numba).

Rows are given in a CSR-like layout over the *observations*: the observations of row ``r``
(a user for the user step, an item for the item step) are ``t = indptr[r], ..., indptr[r+1]-1``,
with ``cols[t]`` the index of the other side's factor and ``y[t]`` the target. ``F`` holds the
fixed factors (one row per index of the other side), ``lam[r]`` the ridge weight of row ``r``.
Every row solves (exactly, or approximately by conjugate gradients) the ridge problem

    min_x  sum_t (y[t] - F[cols[t]] . x)^2 + lam[r] ||x||^2,
    i.e.   (F_r^T F_r + lam[r] I) x = F_r^T y_r,

and a row without observations gets ``x = 0``. The SGD epoch kernel follows the update order
of the Funk / Koren-style biased matrix factorization (see :func:`sgd_epoch`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Reassociation lets LLVM vectorise the length-k loops (the dot products of the row solves
# and of the SGD step, and the SGD step's factor updates).
FASTMATH = {"reassoc", "contract"}


@njit(cache=True)
def _cholesky_solve(G, b, x):
    """Solve ``G x = b`` for a symmetric ``G`` (d×d, upper triangle read) by Cholesky.

    ``G`` is overwritten by its lower Cholesky factor. Returns False (and leaves ``x``
    undefined) when a pivot is not safely positive, i.e. ``G`` is singular to working
    precision; the caller then falls back to a minimum-norm least-squares solve.
    """
    d = G.shape[0]
    big = 0.0
    for j in range(d):
        if G[j, j] > big:
            big = G[j, j]
    if big <= 0.0:
        return False
    floor = d * 2.220446049250313e-16 * big
    for j in range(d):
        s = G[j, j]
        for p in range(j):
            s -= G[j, p] * G[j, p]
        if s <= floor:
            return False
        ljj = np.sqrt(s)
        G[j, j] = ljj
        for i in range(j + 1, d):
            t = G[j, i]  # upper triangle still holds the original entries
            for p in range(j):
                t -= G[i, p] * G[j, p]
            G[i, j] = t / ljj
    # forward substitution L z = b, then back substitution L^T x = z
    for i in range(d):
        s = b[i]
        for p in range(i):
            s -= G[i, p] * x[p]
        x[i] = s / G[i, i]
    for i in range(d - 1, -1, -1):
        s = x[i]
        for p in range(i + 1, d):
            s -= G[p, i] * x[p]
        x[i] = s / G[i, i]
    return True


@njit(cache=True, fastmath=FASTMATH)
def ridge_rows(indptr, cols, y, F, lam, X):
    """Exact ridge solve of every row (in place in ``X``, n_rows×d); returns the number of
    rows that needed the least-squares fallback (a singular normal matrix, possible only
    when ``lam[r] == 0``).

    The row's fixed factors are gathered into ``B`` (n_r×d) and its Gram matrix
    ``Bᵀ B + lam I`` and right-hand side ``Bᵀ y`` formed by BLAS, then solved by Cholesky.
    """
    n_rows = indptr.shape[0] - 1
    d = F.shape[1]
    x = np.empty(d)
    fallbacks = 0
    for r in range(n_rows):
        start, end = indptr[r], indptr[r + 1]
        n = end - start
        if n == 0:
            for a in range(d):
                X[r, a] = 0.0
            continue
        B = np.empty((n, d))
        yr = np.empty(n)
        for t in range(n):
            j = cols[start + t]
            yr[t] = y[start + t]
            for a in range(d):
                B[t, a] = F[j, a]
        G = B.T @ B
        b = B.T @ yr
        for a in range(d):
            G[a, a] += lam[r]
        Gs = G.copy()
        if not _cholesky_solve(G, b, x):
            fallbacks += 1
            x[:] = np.linalg.lstsq(Gs, b, d * 2.220446049250313e-16)[0]
        for a in range(d):
            X[r, a] = x[a]
    return fallbacks


@njit(cache=True, fastmath=FASTMATH)
def _apply_normal(start, end, cols, F, lam, v, out):
    """``out = F_r^T (F_r v) + lam v`` without forming ``F_r^T F_r`` (2 n_r d flops)."""
    d = v.shape[0]
    for a in range(d):
        out[a] = lam * v[a]
    for t in range(start, end):
        j = cols[t]
        s = 0.0
        for a in range(d):
            s += F[j, a] * v[a]
        for a in range(d):
            out[a] += s * F[j, a]


@njit(cache=True, fastmath=FASTMATH)
def cg_rows(indptr, cols, y, F, lam, X, steps):
    """At most ``steps`` conjugate-gradient steps on every row's normal equations, warm-started
    from the row's current value in ``X`` (updated in place).

    The matrix is applied matrix-free (``_apply_normal``), so one step costs
    ``O(n_r d)`` and a whole sweep ``O(steps |Omega| d)``: no ``d×d`` matrix is formed. CG
    stops early when the residual vanishes (to rounding) or a direction has no curvature.
    Each step decreases the row's quadratic, so the ridge objective never increases.
    """
    n_rows = indptr.shape[0] - 1
    d = F.shape[1]
    b = np.empty(d)
    x = np.empty(d)
    res = np.empty(d)
    p = np.empty(d)
    Ap = np.empty(d)
    for r in range(n_rows):
        start, end = indptr[r], indptr[r + 1]
        if end == start:
            for a in range(d):
                X[r, a] = 0.0
            continue
        for a in range(d):
            b[a] = 0.0
            x[a] = X[r, a]
        for t in range(start, end):
            j = cols[t]
            for a in range(d):
                b[a] += F[j, a] * y[t]
        bb = 0.0
        for a in range(d):
            bb += b[a] * b[a]
        _apply_normal(start, end, cols, F, lam[r], x, Ap)
        rs = 0.0
        for a in range(d):
            res[a] = b[a] - Ap[a]
            p[a] = res[a]
            rs += res[a] * res[a]
        for _ in range(steps):
            if rs <= 1e-30 * bb or rs == 0.0:
                break
            _apply_normal(start, end, cols, F, lam[r], p, Ap)
            pAp = 0.0
            for a in range(d):
                pAp += p[a] * Ap[a]
            if pAp <= 0.0:
                break
            alpha = rs / pAp
            rs_new = 0.0
            for a in range(d):
                x[a] += alpha * p[a]
                res[a] -= alpha * Ap[a]
                rs_new += res[a] * res[a]
            beta = rs_new / rs
            rs = rs_new
            for a in range(d):
                p[a] = res[a] + beta * p[a]
        for a in range(d):
            X[r, a] = x[a]


@njit(cache=True, fastmath=FASTMATH)
def dot_obs(users, items, P, Q, out):
    """``out[t] = P[users[t]] . Q[items[t]]`` for every observation ``t``."""
    k = P.shape[1]
    for t in range(users.shape[0]):
        u = users[t]
        i = items[t]
        s = 0.0
        for a in range(k):
            s += P[u, a] * Q[i, a]
        out[t] = s


@njit(cache=True, fastmath=FASTMATH)
def sgd_epoch(users, items, values, order, P, Q, bu, bi, mean, lr, reg, biased):
    """One SGD epoch over the observations ``order[0], order[1], ...`` (in place).

    For each observation ``(u, i, r)``: ``e = r - (mean + bu[u] + bi[i] + P[u].Q[i])``, then,
    if ``biased``, ``bu[u] += lr (e - reg bu[u])`` and ``bi[i] += lr (e - reg bi[i])``, then for
    every factor ``f`` (with the values before this step) ``P[u,f] += lr (e Q[i,f] - reg P[u,f])``
    and ``Q[i,f] += lr (e P[u,f] - reg Q[i,f])``. The arithmetic is in the factors' dtype
    (``mean``, ``lr`` and ``reg`` are given in it); the dot product is reassociated so that it
    vectorises. Returns the sum of the squared errors ``e`` in float64 (each measured just
    before its own update: the running training error of the epoch, which costs no second
    pass).
    """
    k = P.shape[1]
    sse = 0.0
    for s in range(order.shape[0]):
        t = order[s]
        pu = P[users[t]]
        qi = Q[items[t]]
        dot = pu[0] * qi[0]
        for f in range(1, k):
            dot += pu[f] * qi[f]
        err = values[t] - (mean + bu[users[t]] + bi[items[t]] + dot)
        sse += np.float64(err) * np.float64(err)
        if biased:
            bu[users[t]] += lr * (err - reg * bu[users[t]])
            bi[items[t]] += lr * (err - reg * bi[items[t]])
        for f in range(k):
            puf = pu[f]
            qif = qi[f]
            pu[f] = puf + lr * (err * qif - reg * puf)
            qi[f] = qif + lr * (err * puf - reg * qif)
    return sse

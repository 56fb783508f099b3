r"""Householder QR with column pivoting (Businger & Golub, 1965).

At step :math:`j` the remaining column of largest norm is swapped to position :math:`j`,
then a Householder reflector :math:`I - \tau v v^\top` zeroes it below the diagonal. After
:math:`k` steps

.. math:: A P = Q R, \qquad Q \in \mathbb{R}^{m\times k},\; R \in \mathbb{R}^{k\times n},

with :math:`R` upper trapezoidal, :math:`|R_{11}| \ge |R_{22}| \ge \dots`, and the residual
:math:`\|A P - Q R\|_F` equal to the norm of the trailing block that was not factorized.
Signs are normalised so that the diagonal of :math:`R` is non-negative.

Without the pivot search the same loop is plain Householder QR (:func:`householder_qr`,
NumPy and torch paths).

Three paths for :func:`cpqr`: ``"numpy"`` (reference, vectorised per step), ``"numba"``
(compiled, columns stored contiguously, blocked as in LAPACK's ``xGEQP3``: panels of pivots
with one matrix-matrix trailing update each, Quintana-Ortí, Sun & Bischof 1998; ``Q`` formed
in compact-WY blocks as in ``xORGQR``) and
``"torch"`` (any device, batched over leading dimensions).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from refimpl import _xp
from refimpl._typing import Array
from refimpl._validation import check_rank


class PivotedQR(NamedTuple):
    """Pivoted QR after ``k`` steps: ``A[..., :, perm] ≈ Q @ R`` (exact when ``k = min(m, n)``).

    Attributes
    ----------
    Q : (..., m, k) array or tensor
        Orthonormal columns.
    R : (..., k, n) array or tensor
        Upper trapezoidal, with a non-negative, non-increasing diagonal.
    perm : (..., n) integer array or tensor
        The column order: ``A[..., :, perm]`` is the pivoted matrix.
    """

    Q: Any
    R: Any
    perm: Any

    def reconstruct(self) -> Array:
        """The rank-k approximation ``Q R`` with its columns put back in A's order."""
        return _xp.unpermute_cols(self.Q @ self.R, self.perm)


def cpqr(A: Array, rank: int | None = None, *, backend: str = "auto") -> PivotedQR:
    """Householder QR with column pivoting (Businger–Golub), stopped after ``rank`` steps.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) torch tensor
        Real floating-point matrix (batches on the torch path only).
    rank : int, optional
        Number of steps ``k``, the rank of the factorization, ``1 <= k <= min(m, n)``;
        default ``min(m, n)`` (a complete factorization).
    backend : {"auto", "numpy", "numba", "torch"}
        ``"numpy"``: the reference loop, one pivot and one reflector per step;
        ``"numba"``: the compiled kernel, blocked as in LAPACK's ``xGEQP3`` and
        ``xORGQR`` (its ``Q`` and ``R`` are column-major arrays, as LAPACK's); ``"torch"``:
        any device, batched over leading dimensions. ``"auto"`` runs the Numba kernel for
        NumPy input and torch for tensors.

    Returns
    -------
    PivotedQR
        ``Q`` (..., m, k) with orthonormal columns, ``R`` (..., k, n) upper trapezoidal with
        a non-negative, non-increasing diagonal, and ``perm`` (..., n) with
        ``A[..., :, perm] ≈ Q R``; the residual ``‖A P − Q R‖_F`` is the norm of the
        trailing block left after ``k`` steps. NumPy in gives NumPy out, torch in gives
        torch out on the input's device and dtype.

    Raises
    ------
    TypeError
        If ``A`` is not a real floating-point array, or ``rank`` is not an integer.
    ValueError
        If ``A`` is empty, not finite or of the wrong shape (batches need
        ``backend="torch"``), or ``rank`` is outside ``[1, min(m, n)]``.
    """
    A, path, back = _xp.prepare(A, backend=backend, paths=("numpy", "numba", "torch"),
                                prefer="numba")
    m, n = A.shape[-2:]
    k = min(m, n) if rank is None else check_rank(rank, "rank", min(m, n))
    if path == "torch":
        result = _cpqr_torch(A, k)
    elif path == "numba":
        from refimpl.linalg._qr_numba import cpqr_kernel

        result = PivotedQR(*cpqr_kernel(A.T, k))  # the kernel copies A, transposed
    else:
        result = PivotedQR(*_cpqr_numpy(A, k))
    return back(result)


class QR(NamedTuple):
    """``A = Q @ R``.

    Attributes
    ----------
    Q : (..., m, k) array or tensor
        Orthonormal columns.
    R : (..., k, n) array or tensor
        Upper triangular (trapezoidal when ``m < n``) with a non-negative diagonal.
    """

    Q: Any
    R: Any

    def reconstruct(self) -> Array:
        """``Q R``."""
        return self.Q @ self.R


def householder_qr(A: Array, *, backend: str = "auto") -> QR:
    r"""Reduced Householder QR without pivoting: :math:`A = QR`.

    Reflector :math:`j` zeroes column :math:`j` below the diagonal; ``Q`` is the product of
    the reflectors applied to the first :math:`\min(m, n)` columns of the identity. The
    diagonal of ``R`` is made non-negative, which makes the factorization unique when
    ``A`` has full column rank (the same ``Q, R`` that any other QR returns after the same
    sign fix).

    Parameters
    ----------
    A : (m, n) array or (..., m, n) torch tensor
        Real floating-point matrix (batches on the torch path only).
    backend : {"auto", "numpy", "torch"}
        ``"numpy"``: the reference loop of :func:`cpqr` without the pivot search;
        ``"torch"``: the same loop batched, on any device.

    Returns
    -------
    QR
        ``Q`` (..., m, k) and ``R`` (..., k, n) with ``k = min(m, n)``, as the input's kind.

    Raises
    ------
    TypeError
        If ``A`` is not a real floating-point array.
    ValueError
        If ``A`` is empty, not finite or of the wrong shape.
    """
    A, path, back = _xp.prepare(A, backend=backend, paths=("numpy", "torch"))
    k = min(A.shape[-2:])
    if path == "torch":
        Q, R, _ = _cpqr_torch(A, k, pivot=False)
    else:
        Q, R, _ = _cpqr_numpy(A, k, pivot=False)
    return back(QR(Q, R))


def _householder(x):
    """Reflector ``H = I - tau v v^T`` with ``v[0] = 1`` and ``H x = beta e_1``."""
    alpha = x[0]
    sigma = np.linalg.norm(x[1:])
    v = np.zeros_like(x)
    v[0] = 1.0
    if sigma == 0.0:  # nothing to annihilate: H = I
        return v, 0.0, alpha
    beta = -np.copysign(np.hypot(alpha, sigma), alpha)
    v[1:] = x[1:] / (alpha - beta)
    return v, (beta - alpha) / beta, beta


def _cpqr_numpy(A, k, pivot=True):
    """Reference path: one pivot, one reflector per step, as in the book's equations.

    With ``pivot=False`` this is plain Householder QR (:func:`refimpl.linalg.householder_qr`).
    """
    m, n = A.shape
    W = A.astype(np.result_type(A.dtype, np.float32), copy=True)
    perm = np.arange(n)
    V = np.zeros((m, k), dtype=W.dtype)
    taus = np.zeros(k, dtype=W.dtype)
    for j in range(k):
        if pivot:
            norms = np.linalg.norm(W[j:, j:], axis=0)
            p = j + int(np.argmax(norms))
            W[:, [j, p]] = W[:, [p, j]]
            perm[[j, p]] = perm[[p, j]]
        v, tau, beta = _householder(W[j:, j])
        W[j:, j:] -= tau * np.outer(v, v @ W[j:, j:])
        W[j, j] = beta
        W[j + 1:, j] = 0.0
        V[j:, j], taus[j] = v, tau
    R = np.triu(W[:k, :])
    # Q = H_0 H_1 ... H_{k-1} applied to the first k columns of the identity.
    Q = np.eye(m, k, dtype=W.dtype)
    for j in range(k - 1, -1, -1):
        v = V[j:, j]
        Q[j:, :] -= taus[j] * np.outer(v, v @ Q[j:, :])
    return (*_fix_signs(Q, R), perm)


def _fix_signs(Q, R):
    d = np.where(np.diagonal(R) < 0, -1.0, 1.0).astype(R.dtype)
    return Q * d, R * d[:, None]


def _cpqr_torch(A, k, pivot=True):
    """Batched torch path. Column norms are recomputed each step (exact, O(mn) per step).

    With ``pivot=False`` this is plain Householder QR.
    """
    import torch

    W = A.clone()
    *batch, m, n = W.shape
    perm = torch.arange(n, device=W.device).expand(*batch, n).clone()
    Q_refl = []
    for j in range(k):
        if pivot:
            norms = torch.linalg.vector_norm(W[..., j:, j:], dim=-2)
            p = j + torch.argmax(norms, dim=-1, keepdim=True)  # (..., 1)
            jj = torch.full_like(p, j)
            # Swap columns j and p of W and of perm.
            idx = perm.new_tensor(range(n)).expand(*batch, n).clone()
            idx.scatter_(-1, jj, p)
            idx.scatter_(-1, p, jj)
            W = torch.take_along_dim(W, idx.unsqueeze(-2).expand(*batch, m, n), dim=-1)
            perm = torch.take_along_dim(perm, idx, dim=-1)
        x = W[..., j:, j]
        alpha = x[..., 0]
        sigma = torch.linalg.vector_norm(x[..., 1:], dim=-1)
        nrm = torch.sqrt(alpha**2 + sigma**2)
        # beta = -sign(alpha) * ||x||; where sigma == 0 no reflection is needed.
        sign = torch.where(alpha >= 0, 1.0, -1.0).to(W.dtype)
        beta = -sign * nrm
        denom = alpha - beta
        safe = sigma > 0
        v = torch.where(safe.unsqueeze(-1), x / torch.where(safe, denom, 1.0).unsqueeze(-1),
                        torch.zeros_like(x))
        v[..., 0] = 1.0
        tau = torch.where(safe, (beta - alpha) / torch.where(safe, beta, 1.0),
                          torch.zeros_like(beta))
        block = W[..., j:, j:]
        W = W.clone()
        W[..., j:, j:] = block - tau[..., None, None] * v.unsqueeze(-1) * (
            v.unsqueeze(-2) @ block)
        Q_refl.append((v, tau))
    R = torch.triu(W[..., :k, :])
    Q = torch.eye(m, k, dtype=W.dtype, device=W.device).expand(*batch, m, k).clone()
    for j in range(k - 1, -1, -1):
        v, tau = Q_refl[j]
        blk = Q[..., j:, :]
        Q[..., j:, :] = blk - tau[..., None, None] * v.unsqueeze(-1) * (v.unsqueeze(-2) @ blk)
    d = torch.where(torch.diagonal(R, dim1=-2, dim2=-1) < 0, -1.0, 1.0).to(W.dtype)
    return PivotedQR(Q * d.unsqueeze(-2), R * d.unsqueeze(-1), perm)

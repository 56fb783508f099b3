r"""LU with partial pivoting and Cholesky.

LU (Gaussian elimination with partial pivoting): at step :math:`j` the entry of largest
magnitude in column :math:`j` (rows :math:`j..m-1`) is swapped to the diagonal, the
multipliers :math:`\ell_{ij} = a_{ij} / a_{jj}` are stored below it, and the trailing block
gets the rank-one update :math:`A_{22} \leftarrow A_{22} - \ell\, u^\top`. The result is

.. math:: A[\text{perm}, :] = L U,

with :math:`L` unit lower trapezoidal (:math:`|\ell_{ij}| \le 1`) and :math:`U` upper
trapezoidal. A zero pivot column (rank deficiency) is skipped, as LAPACK's ``xGETRF`` does.

Cholesky is the same elimination on a symmetric positive definite matrix, without pivoting
and with the symmetric scaling :math:`L = L_{\text{unit}} D^{1/2}`: :math:`A = L L^\top`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from refimpl import _xp
from refimpl._validation import check_array
from refimpl.backend import is_torch_tensor, resolve_backend
from refimpl.linalg.jacobi import check_symmetric


class LU(NamedTuple):
    """``A[perm, :] = L @ U``."""

    perm: Any
    L: Any
    U: Any

    def reconstruct(self):
        """``A`` itself: ``L U`` with its rows put back in A's order."""
        return (self.L @ self.U)[np.argsort(self.perm)]

    def permutation_matrix(self):
        """``P`` with ``P A = L U`` (``P = I[perm]``)."""
        return _xp.eye_like(len(self.perm), self.L)[self.perm]


def lu(A, *, backend: str = "auto") -> LU:
    """LU factorization with partial (row) pivoting of an (m, n) matrix.

    Parameters
    ----------
    A : (m, n) array (torch tensors are computed on the CPU and returned as tensors)
    backend : {"auto", "numpy", "numba"}
        ``"auto"`` runs the Numba kernel.

    Returns
    -------
    LU
        ``perm`` (m,), ``L`` (m, k) unit lower trapezoidal, ``U`` (k, n) upper trapezoidal,
        ``k = min(m, n)``, with ``A[perm] = L @ U``.
    """
    A = check_array(A, "A", ndim=2)
    path = resolve_backend(backend, None, available=("numpy", "numba"), prefer="numba")
    W = _xp.to_numpy(A)
    W = np.array(W, dtype=np.result_type(W.dtype, np.float32), order="C", copy=True)
    perm = np.arange(W.shape[0])
    if path == "numba":
        from refimpl.linalg._lu_numba import lu_inplace

        lu_inplace(W, perm)
    else:
        _lu_numpy(W, perm)
    m, n = W.shape
    k = min(m, n)
    L = np.tril(W[:, :k], -1) + np.eye(m, k, dtype=W.dtype)
    U = np.triu(W[:k, :])
    if is_torch_tensor(A):
        import torch

        return LU(*(torch.as_tensor(t, device=A.device) for t in (perm, L, U)))
    return LU(perm, L, U)


def _lu_numpy(W, perm):
    """Right-looking elimination in place: multipliers below the diagonal, U on and above."""
    m, n = W.shape
    for j in range(min(m, n)):
        p = j + int(np.argmax(np.abs(W[j:, j])))
        if p != j:
            W[[j, p], :] = W[[p, j], :]
            perm[[j, p]] = perm[[p, j]]
        if W[j, j] == 0.0:  # the whole column is zero below j: nothing to eliminate
            continue
        W[j + 1:, j] /= W[j, j]
        W[j + 1:, j + 1:] -= np.outer(W[j + 1:, j], W[j, j + 1:])


class Cholesky(NamedTuple):
    """``A = L @ L.T`` with ``L`` lower triangular, positive diagonal."""

    L: Any

    def reconstruct(self):
        return self.L @ _xp.mT(self.L)


def cholesky(A, *, backend: str = "auto") -> Cholesky:
    r"""Cholesky factorization :math:`A = L L^\top` of a symmetric positive definite matrix.

    Column :math:`j` of :math:`L` is
    :math:`\ell_{jj} = \sqrt{a_{jj} - \sum_{k<j} \ell_{jk}^2}`,
    :math:`\ell_{ij} = (a_{ij} - \sum_{k<j} \ell_{ik}\ell_{jk}) / \ell_{jj}` (left-looking).
    One code serves NumPy arrays and (batched, any device) torch tensors.

    Raises ``ValueError`` if ``A`` is not symmetric or not (numerically) positive definite,
    naming the first failing pivot.

    Parameters
    ----------
    A : (n, n) array or (..., n, n) torch tensor
    backend : {"auto", "numpy", "torch"}
    """
    A = check_array(A, "A", batch=is_torch_tensor(A), ndim=2)
    check_symmetric(A, "A")
    path = resolve_backend(backend, A, available=("numpy", "torch"))
    X = _xp.as_path(A, path)
    if not is_torch_tensor(X):
        X = X.astype(np.result_type(X.dtype, np.float32), copy=False)
    n = X.shape[-1]
    L = _xp.zeros_like_shape(X.shape, X)
    for j in range(n):
        d = X[..., j, j] - (L[..., j, :j] ** 2).sum(-1)
        bad = (d <= 0)
        if bool(bad.any()):
            raise ValueError(
                f"A is not positive definite: pivot {j} is {float(d.min()):.3e} <= 0")
        L[..., j, j] = d ** 0.5
        col = X[..., j + 1:, j] - (L[..., j + 1:, :j] @ L[..., j, :j, None])[..., 0]
        L[..., j + 1:, j] = col / L[..., j, j, None]
    return Cholesky(_xp.like_input(L, A))

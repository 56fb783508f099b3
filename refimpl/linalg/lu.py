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
from refimpl._typing import Array
from refimpl._validation import check_symmetric


class LU(NamedTuple):
    """``A[perm, :] = L @ U``.

    Attributes
    ----------
    perm : (m,) integer array or tensor
        The row order chosen by partial pivoting.
    L : (m, k) array or tensor
        Unit lower trapezoidal, ``|L_ij| <= 1``; ``k = min(m, n)``.
    U : (k, n) array or tensor
        Upper trapezoidal.
    """

    perm: Any
    L: Any
    U: Any

    def reconstruct(self) -> Array:
        """``A`` itself: ``L U`` with its rows put back in A's order."""
        return _xp.take_rows(self.L @ self.U, _xp.inverse_permutation(self.perm))

    def permutation_matrix(self) -> Array:
        """``P`` with ``P A = L U`` (``P = I[perm]``)."""
        return _xp.eye_like(len(self.perm), self.L)[self.perm]


def lu(A: Array, *, backend: str = "auto") -> LU:
    """LU factorization with partial (row) pivoting of an (m, n) matrix.

    Parameters
    ----------
    A : (m, n) array or torch tensor
        Real floating-point matrix (a tensor is computed on the CPU and returned as tensors
        on its device).
    backend : {"auto", "numpy", "numba"}
        ``"numpy"``: the reference loop, one rank-one update per column; ``"numba"``: the
        compiled kernel, blocked as in LAPACK's ``xGETRF`` (recursive panels, one
        matrix-matrix trailing update per panel). ``"auto"`` runs the Numba kernel.

    Returns
    -------
    LU
        ``perm`` (m,), ``L`` (m, k) unit lower trapezoidal, ``U`` (k, n) upper trapezoidal,
        ``k = min(m, n)``, with ``A[perm] = L @ U``.

    Raises
    ------
    TypeError
        If ``A`` is not a real floating-point array.
    ValueError
        If ``A`` is empty, not finite or not 2-D.
    """
    A, path, back = _xp.prepare(A, backend=backend, paths=("numpy", "numba"), prefer="numba")
    W = np.array(A, dtype=np.result_type(A.dtype, np.float32), order="C", copy=True)
    perm = np.arange(W.shape[0])
    if path == "numba":  # blocked as in xGETRF (recursive panel, BLAS-3 trailing update)
        from refimpl.linalg._lu_numba import lu_factors

        return back(LU(perm, *lu_factors(W, perm)))
    _lu_numpy(W, perm)
    m, n = W.shape
    k = min(m, n)
    L = np.tril(W[:, :k], -1) + np.eye(m, k, dtype=W.dtype)
    return back(LU(perm, L, np.triu(W[:k, :])))


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
    """``A = L @ L.T``.

    Attributes
    ----------
    L : (..., n, n) array or tensor
        Lower triangular with a positive diagonal.
    """

    L: Any

    def reconstruct(self) -> Array:
        """``L Lᵀ``."""
        return self.L @ _xp.mT(self.L)


def cholesky(A: Array, *, backend: str = "auto") -> Cholesky:
    r"""Cholesky factorization :math:`A = L L^\top` of a symmetric positive definite matrix.

    Column :math:`j` of :math:`L` is
    :math:`\ell_{jj} = \sqrt{a_{jj} - \sum_{k<j} \ell_{jk}^2}`,
    :math:`\ell_{ij} = (a_{ij} - \sum_{k<j} \ell_{ik}\ell_{jk}) / \ell_{jj}` (left-looking).
    One code serves NumPy arrays and (batched, any device) torch tensors.

    Parameters
    ----------
    A : (n, n) array or (..., n, n) torch tensor
        Symmetric (to ``100 n ε ‖A‖_F``) positive definite matrix; batches on the torch path.
    backend : {"auto", "numpy", "torch"}
        ``"torch"`` runs on any device and takes batches.

    Returns
    -------
    Cholesky
        ``L`` (..., n, n), as the input's kind and dtype.

    Raises
    ------
    TypeError
        If ``A`` is not a real floating-point array.
    ValueError
        If ``A`` is empty, not finite, not square, not symmetric or not (numerically)
        positive definite (the message names the first failing pivot).
    """
    A, path, back = _xp.prepare(A, backend=backend)
    check_symmetric(A, "A")
    if path == "numpy":
        A = A.astype(np.result_type(A.dtype, np.float32), copy=False)
    n = A.shape[-1]
    L = _xp.zeros_like_shape(A.shape, A)
    for j in range(n):
        d = A[..., j, j] - (L[..., j, :j] ** 2).sum(-1)
        bad = (d <= 0)
        if bool(bad.any()):
            raise ValueError(
                f"A is not positive definite: pivot {j} is {float(d.min()):.3e} <= 0")
        L[..., j, j] = d ** 0.5
        col = A[..., j + 1:, j] - (L[..., j + 1:, :j] @ L[..., j, :j, None])[..., 0]
        L[..., j + 1:, j] = col / L[..., j, j, None]
    return back(Cholesky(L))

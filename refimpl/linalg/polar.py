r"""Polar decomposition :math:`A = U H` and truncated SVD with its Eckart–Young–Mirsky error.

Polar: for :math:`A \in \mathbb{R}^{m\times n}`, :math:`m \ge n`, :math:`U` has orthonormal
columns and :math:`H = (A^\top A)^{1/2}` is symmetric positive semidefinite. From the SVD
:math:`A = W \Sigma V^\top`: :math:`U = W V^\top`, :math:`H = V \Sigma V^\top`. Two
iterations reach :math:`U` with matrix products only:

- Newton (square, nonsingular :math:`A`): :math:`X_{k+1} = \tfrac12(\mu_k X_k + \mu_k^{-1}
  X_k^{-\top})`, with the Frobenius scaling :math:`\mu_k = (\|X_k^{-1}\|_F / \|X_k\|_F)^{1/2}`
  (Higham), quadratically convergent;
- Newton–Schulz (inverse-free): :math:`X_{k+1} = \tfrac12 X_k (3I - X_k^\top X_k)`, started
  from :math:`X_0 = A / \|A\|_F` so that all singular values lie in :math:`(0, 1]`; it
  converges (quadratically near the end) for full column rank.

Both stop when :math:`\|X_{k+1} - X_k\|_F \le \text{tol}`; then :math:`H = \operatorname{sym}
(U^\top A)`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from refimpl import _xp
from refimpl._validation import check_array, check_rank
from refimpl.backend import is_torch_tensor, resolve_backend
from refimpl.linalg.jacobi import jacobi_svd


class Polar(NamedTuple):
    """``A = U @ H``: ``U`` with orthonormal columns, ``H`` symmetric PSD."""

    U: Any
    H: Any

    def reconstruct(self):
        return self.U @ self.H


class PolarInfo(NamedTuple):
    iterations: int
    converged: bool


_METHODS = ("svd", "newton", "newton_schulz")


def polar(A, *, method: str = "svd", tol: float | None = None, max_iter: int = 100,
          backend: str = "auto", return_info: bool = False):
    """Polar decomposition ``A = U H`` of a tall or square matrix.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) torch tensor with ``m >= n``
    method : {"svd", "newton", "newton_schulz"}
        ``"newton"`` needs square nonsingular ``A``; ``"newton_schulz"`` needs full column
        rank (it converges slowly when ``A`` is ill-conditioned: the smallest singular
        value of ``A / ‖A‖_F`` grows by about a factor 1.5 per step until it nears 1).
    tol : float, optional
        Stopping tolerance on ``‖X_{k+1} − X_k‖_F``; default ``sqrt(n) * 10 * eps``.
    max_iter : int
    backend : {"auto", "numpy", "torch"}
    return_info : bool
        Also return :class:`PolarInfo` (iterations; 0 for ``"svd"``).
    """
    A = check_array(A, "A", batch=is_torch_tensor(A), ndim=2)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}; got {method!r}")
    m, n = A.shape[-2:]
    if m < n:
        raise ValueError(f"A must have at least as many rows as columns (m >= n); got shape "
                         f"{tuple(A.shape)} (factor A.T for the left polar form)")
    if method == "newton" and m != n:
        raise ValueError(f"method='newton' needs a square A; got shape {tuple(A.shape)}")
    path = resolve_backend(backend, A, available=("numpy", "torch"))
    X = _xp.as_path(A, path)
    if not is_torch_tensor(X):
        X = X.astype(np.result_type(X.dtype, np.float32), copy=False)
    tol = 10 * np.sqrt(n) * _xp.eps(X) if tol is None else float(tol)
    if method == "svd":
        W, _, Vh = _xp.svd(X)
        U, it, ok = W @ Vh, 0, True
    elif method == "newton":
        U, it, ok = _newton(X, tol, max_iter)
    else:
        U, it, ok = _newton_schulz(X, tol, max_iter)
    H = _xp.mT(U) @ X
    H = (H + _xp.mT(H)) / 2
    result = Polar(_xp.like_input(U, A), _xp.like_input(H, A))
    return (result, PolarInfo(it, ok)) if return_info else result


def _newton(X, tol, max_iter):
    for it in range(1, max_iter + 1):
        Xinv_T = _xp.mT(_xp.linalg(X).inv(X))
        mu = (_xp.fro(Xinv_T) / _xp.fro(X)) ** 0.5
        X_new = (mu[..., None, None] * X + Xinv_T / mu[..., None, None]) / 2
        done = float(_xp.fro(X_new - X).max()) <= tol
        X = X_new
        if done:
            return X, it, True
    return X, max_iter, False


def _newton_schulz(X, tol, max_iter):
    X = X / _xp.fro(X)[..., None, None]
    eye = _xp.eye_like(X.shape[-1], X)
    for it in range(1, max_iter + 1):
        X_new = X @ (3 * eye - _xp.mT(X) @ X) / 2
        done = float(_xp.fro(X_new - X).max()) <= tol
        X = X_new
        if done:
            return X, it, True
    return X, max_iter, False


class TruncatedSVD(NamedTuple):
    """The best rank-k approximation ``U diag(s) Vt`` and the discarded singular values."""

    U: Any
    s: Any
    Vt: Any
    tail: Any

    def reconstruct(self):
        return (self.U * self.s[..., None, :]) @ self.Vt

    def error(self, ord: str | int = "fro"):
        """Eckart–Young–Mirsky: ``‖A − A_k‖_F = ‖tail‖_2`` and ``‖A − A_k‖_2 = tail[0]``."""
        if ord == "fro":
            return (self.tail ** 2).sum(-1) ** 0.5
        if ord == 2:
            return self.tail[..., 0] if self.tail.shape[-1] else self.tail.sum(-1)
        raise ValueError(f"ord must be 'fro' or 2; got {ord!r}")


def truncated_svd(A, k: int, *, backend: str = "auto") -> TruncatedSVD:
    r"""Best rank-``k`` approximation in every unitarily invariant norm (Eckart–Young–Mirsky).

    .. math:: \min_{\operatorname{rank} B \le k} \|A - B\|_F^2 = \sum_{i>k} \sigma_i^2,
              \qquad \min_{\operatorname{rank} B \le k} \|A - B\|_2 = \sigma_{k+1}.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) torch tensor
    k : int, 1 <= k <= min(m, n)
    backend : {"auto", "numpy", "numba", "torch"}
        ``"numpy"``: LAPACK through :func:`numpy.linalg.svd`; ``"numba"``: this package's
        :func:`refimpl.linalg.jacobi_svd`; ``"torch"``: :func:`torch.linalg.svd`, batched,
        any device.
    """
    A = check_array(A, "A", batch=is_torch_tensor(A), ndim=2)
    k = check_rank(k, "k", min(A.shape[-2:]))
    path = resolve_backend(backend, A, available=("numpy", "numba", "torch"))
    if path == "numba":
        if A.ndim != 2:
            raise ValueError(f"backend='numba' takes one matrix; got shape {tuple(A.shape)}")
        U, s, Vt = jacobi_svd(_xp.to_numpy(A), backend="numba")
    else:
        X = _xp.as_path(A, path)
        U, s, Vt = _xp.svd(X)
    out = TruncatedSVD(U[..., :, :k], s[..., :k], Vt[..., :k, :], s[..., k:])
    return TruncatedSVD(*(_xp.like_input(t, A) for t in out))


r"""Polar decomposition :math:`A = U H` by the SVD, Newton or Newton–Schulz.

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

from typing import Any, Literal, NamedTuple, overload

import numpy as np

from refimpl import _xp
from refimpl._typing import Array
from refimpl._validation import check_choice, check_positive, check_positive_int
from refimpl.results import Info


class Polar(NamedTuple):
    """``A = U @ H``.

    Attributes
    ----------
    U : (..., m, n) array or tensor
        Orthonormal columns: the nearest such matrix to ``A`` in every unitarily invariant
        norm.
    H : (..., n, n) array or tensor
        Symmetric positive semidefinite, ``(AᵀA)^{1/2}``.
    """

    U: Any
    H: Any

    def reconstruct(self) -> Array:
        """``U H``."""
        return self.U @ self.H


_METHODS = ("svd", "newton", "newton_schulz")


@overload
def polar(A: Array, *, method: str = ..., tol: float | None = ..., max_iter: int = ...,
          backend: str = ..., return_info: Literal[False] = ...) -> Polar: ...
@overload
def polar(A: Array, *, method: str = ..., tol: float | None = ..., max_iter: int = ...,
          backend: str = ..., return_info: Literal[True]) -> tuple[Polar, Info]: ...
@overload
def polar(A: Array, *, method: str = ..., tol: float | None = ..., max_iter: int = ...,
          backend: str = ..., return_info: bool) -> Polar | tuple[Polar, Info]: ...
def polar(A: Array, *, method: str = "svd", tol: float | None = None, max_iter: int = 100,
          backend: str = "auto", return_info: bool = False) -> Polar | tuple[Polar, Info]:
    """Polar decomposition ``A = U H`` of a tall or square matrix.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) torch tensor with ``m >= n``
        Real floating-point matrix (batches on the torch path).
    method : {"svd", "newton", "newton_schulz"}
        ``"newton"`` needs square nonsingular ``A``; ``"newton_schulz"`` needs full column
        rank (it converges slowly when ``A`` is ill-conditioned: the smallest singular
        value of ``A / ‖A‖_F`` grows by about a factor 1.5 per step until it nears 1).
    tol : float, optional
        Stopping tolerance on ``‖X_{k+1} − X_k‖_F`` (the largest over a batch), ``>= 0``;
        default ``10 sqrt(n) eps``.
    max_iter : int
        Upper bound on the iterations, ``>= 1``.
    backend : {"auto", "numpy", "torch"}
        ``"torch"`` runs on any device and takes batches.
    return_info : bool
        Also return an :class:`refimpl.results.Info`: ``n_iter`` iterations and, in
        ``errors``, ``‖X_{k+1} − X_k‖_F`` after each (``n_iter = 0`` and no errors for
        ``"svd"``).

    Returns
    -------
    Polar
        ``U`` (..., m, n) and ``H`` (..., n, n), as the input's kind and dtype.
    Info
        Only with ``return_info=True``.

    Raises
    ------
    TypeError
        If ``A`` is not a real floating-point array, or ``max_iter`` not an integer.
    ValueError
        If ``A`` is empty, not finite, wide (``m < n``) or, for ``"newton"``, not square;
        if ``method`` is unknown, ``tol < 0`` or ``max_iter < 1``.
    """
    A, path, back = _xp.prepare(A, backend=backend)
    method = check_choice(method, "method", _METHODS)
    max_iter = check_positive_int(max_iter, "max_iter")
    m, n = A.shape[-2:]
    if m < n:
        raise ValueError(f"A must have at least as many rows as columns (m >= n); got shape "
                         f"{tuple(A.shape)} (factor A.T for the left polar form)")
    if method == "newton" and m != n:
        raise ValueError(f"method='newton' needs a square A; got shape {tuple(A.shape)}")
    if path == "numpy":
        A = A.astype(np.result_type(A.dtype, np.float32), copy=False)
    tol = 10 * np.sqrt(n) * _xp.eps(A) if tol is None else check_positive(tol, "tol",
                                                                           allow_zero=True)
    if method == "svd":
        W, _, Vt = _xp.svd(A)
        U, info = W @ Vt, Info(0, True)
    elif method == "newton":
        U, info = _newton(A, tol, max_iter)
    else:
        U, info = _newton_schulz(A, tol, max_iter)
    H = _xp.mT(U) @ A
    result = back(Polar(U, (H + _xp.mT(H)) / 2))
    return (result, info) if return_info else result


def _iterate(step, X, tol, max_iter):
    """Run ``X <- step(X)`` until ``‖X_{k+1} − X_k‖_F <= tol``; return ``X`` and its Info."""
    errors: list[float] = []
    while len(errors) < max_iter and not (errors and errors[-1] <= tol):
        X_new = step(X)
        errors.append(float(_xp.fro(X_new - X).max()))
        X = X_new
    return X, Info(len(errors), bool(errors[-1] <= tol), tuple(errors))


def _newton(X, tol, max_iter):
    def step(X):
        Xinv_T = _xp.mT(_xp.linalg(X).inv(X))
        mu = (_xp.fro(Xinv_T) / _xp.fro(X)) ** 0.5
        return (mu[..., None, None] * X + Xinv_T / mu[..., None, None]) / 2

    return _iterate(step, X, tol, max_iter)


def _newton_schulz(X, tol, max_iter):
    eye = _xp.eye_like(X.shape[-1], X)
    return _iterate(lambda X: X @ (3 * eye - _xp.mT(X) @ X) / 2,
                    X / _xp.fro(X)[..., None, None], tol, max_iter)

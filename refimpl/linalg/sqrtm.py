r"""Fast differentiable matrix square root (Song, Sebe & Wang, ICLR 2022).

Forward. Scale :math:`A` (symmetric positive definite) by its Frobenius norm and write
:math:`A / \|A\|_F = I - Z`; every eigenvalue of :math:`Z` lies in :math:`[0, 1)`, where
the binomial series of :math:`\sqrt{1-z}` converges. Then

.. math:: A^{1/2} = \sqrt{\|A\|_F}\,\sum_{k\ge 0} \binom{1/2}{k} (-Z)^k

truncated after degree :math:`K` is the Matrix Taylor Polynomial (MTP, :func:`sqrtm_taylor`),
and replacing the series by its :math:`[M/N]` Padé approximant
:math:`\sqrt{1-z} \approx P_M(z) / Q_N(z)` gives the Matrix Padé Approximant
(MPA, :func:`sqrtm_pade`): :math:`A^{1/2} \approx \sqrt{\|A\|_F}\, Q_N(Z)^{-1} P_M(Z)` — one
linear solve instead of many more matrix powers.

Backward. For :math:`Y = A^{1/2}` and an upstream gradient :math:`G = \partial\ell/\partial Y`,
differentiating :math:`Y Y = A` gives the continuous Lyapunov (Sylvester) equation

.. math:: Y\,X + X\,Y = G, \qquad X = \partial \ell / \partial A

(for symmetric :math:`Y`). It is solved with the matrix sign function:
:math:`\operatorname{sign}\left(\begin{smallmatrix} Y & G\\ 0 & -Y\end{smallmatrix}\right)
= \left(\begin{smallmatrix} I & 2X\\ 0 & -I\end{smallmatrix}\right)`, computed by the
Newton–Schulz iteration :math:`M \leftarrow \tfrac12 M (3I - M^2)` written on the two
blocks (:func:`solve_lyapunov`). :class:`MatrixSqrt` joins the two as a
:class:`torch.autograd.Function`.

Our reading: the Padé coefficients are computed from the Taylor coefficients by the
standard linear system (the same coefficients as ``mpmath.pade``, which the authors' public
code uses); the defaults follow that code, degree 10 for MTP and ``[5/5]`` for MPA. The
backward runs to a tolerance rather than a fixed iteration count (the paper fixes the count
for speed).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from refimpl import _xp
from refimpl._typing import Array, ArrayT
from refimpl._validation import (
    check_array,
    check_choice,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
    check_rows,
    check_same_kind,
    check_square,
)
from refimpl.results import Info

if TYPE_CHECKING:
    import torch


@cache
def taylor_coefficients(K: int) -> tuple[float, ...]:
    r"""Coefficients :math:`c_k` of :math:`\sqrt{1-z} = \sum_k c_k z^k`, :math:`k \le K`.

    Parameters
    ----------
    K : int
        The highest degree.

    Returns
    -------
    tuple of float
        ``(c_0, ..., c_K)``.
    """
    c = [1.0]
    for k in range(1, K + 1):
        c.append(c[-1] * (k - 1.5) / k)  # c_k = c_{k-1} (k - 1 - 1/2) / k
    return tuple(c)


@cache
def pade_coefficients(M: int, N: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    r"""``(p, q)`` of the :math:`[M/N]` Padé approximant of :math:`\sqrt{1-z}` (``q[0] = 1``).

    :math:`Q_N(z)\sqrt{1-z} - P_M(z) = O(z^{M+N+1})`: the coefficients of
    :math:`z^{M+1},\dots,z^{M+N}` of :math:`Q_N \cdot \text{series}` vanish.

    Parameters
    ----------
    M, N : int
        Degrees of the numerator :math:`P_M` and the denominator :math:`Q_N`.

    Returns
    -------
    (tuple of float, tuple of float)
        The coefficients of :math:`P_M` and of :math:`Q_N`, lowest degree first.
    """
    c = np.array(taylor_coefficients(M + N))
    cc = lambda i: c[i] if i >= 0 else 0.0  # noqa: E731
    if N:
        system = np.array([[cc(i - j) for j in range(1, N + 1)] for i in range(M + 1, M + N + 1)])
        rhs = -np.array([cc(i) for i in range(M + 1, M + N + 1)])
        q = np.concatenate([[1.0], np.linalg.solve(system, rhs)])
    else:
        q = np.array([1.0])
    p = np.array([sum(q[j] * cc(i - j) for j in range(min(i, N) + 1)) for i in range(M + 1)])
    return tuple(p.tolist()), tuple(q.tolist())


def _normalize(A):
    """``(Z, sqrt(‖A‖_F))`` with ``A / ‖A‖_F = I − Z``, batched."""
    norm = _xp.fro(A)[..., None, None]
    return _xp.eye_like(A.shape[-1], A) - A / norm, norm ** 0.5


def _poly(coeffs, Z, powers):
    out = coeffs[0] * powers[0]
    for ck, Zk in zip(coeffs[1:], powers[1:], strict=False):
        out = out + ck * Zk
    return out


def _powers(Z, K):
    P = [_xp.eye_like(Z.shape[-1], Z) + 0 * Z]
    for _ in range(K):
        P.append(P[-1] @ Z)
    return P


def sqrtm_taylor(A: ArrayT, degree: int = 10) -> ArrayT:
    """Matrix square root of SPD ``A`` by the degree-``degree`` Matrix Taylor Polynomial.

    Works on NumPy arrays and (batched, any device) torch tensors; differentiable by plain
    autograd. The truncation error is largest for ill-conditioned ``A`` (the series of
    ``sqrt(1-z)`` converges slowly near ``z = 1``).

    Parameters
    ----------
    A : (n, n) array or (..., n, n) torch tensor
        Symmetric positive definite matrix.
    degree : int
        Degree ``K >= 0`` of the truncated binomial series.

    Returns
    -------
    array or tensor
        The approximate square root, as the input's kind.

    Raises
    ------
    TypeError
        If ``A`` is not a real floating-point array or ``degree`` not an integer.
    ValueError
        If ``A`` is empty, not finite or not square, or ``degree < 0``.
    """
    A, _, back = _xp.prepare(A)
    check_square(A, "A")
    degree = check_nonnegative_int(degree, "degree")
    Z, scale = _normalize(A)
    return back(scale * _poly(taylor_coefficients(degree), Z, _powers(Z, degree)))


def sqrtm_pade(A: ArrayT, degree: tuple[int, int] | int = 5) -> ArrayT:
    """Matrix square root of SPD ``A`` by the ``[M/N]`` Matrix Padé Approximant.

    Parameters
    ----------
    A : (n, n) array or (..., n, n) torch tensor
        Symmetric positive definite matrix.
    degree : int or (int, int)
        ``(M, N)``, the degrees of numerator and denominator (each ``>= 0``), or one
        integer for ``M = N``.

    Returns
    -------
    array or tensor
        The Padé approximant of ``A^{1/2}``, as the input's kind.

    Raises
    ------
    TypeError
        As :func:`sqrtm_taylor` (for either degree).
    ValueError
        If ``A`` is empty, not finite or not square, or a degree is negative.
    """
    A, _, back = _xp.prepare(A)
    check_square(A, "A")
    M, N = degree if isinstance(degree, tuple | list) else (degree, degree)
    M, N = check_nonnegative_int(M, "degree"), check_nonnegative_int(N, "degree")
    Z, scale = _normalize(A)
    p, q = pade_coefficients(M, N)
    powers = _powers(Z, max(M, N))
    return back(scale * _xp.solve(_poly(q, Z, powers[:N + 1]), _poly(p, Z, powers[:M + 1])))


def sqrtm_eigh(A: ArrayT) -> ArrayT:
    r"""Reference square root of symmetric PSD ``A``: :math:`V \operatorname{diag}(\sqrt{\lambda})
    V^\top` from LAPACK's symmetric eigensolver (negative rounding-level eigenvalues clipped).

    Differentiable through ``torch.linalg.eigh``'s autograd (the route whose backward the
    book shows failing at repeated eigenvalues).

    Parameters
    ----------
    A : (n, n) array or (..., n, n) torch tensor
        Symmetric positive semidefinite matrix (only its lower triangle is read).

    Returns
    -------
    array or tensor
        ``A^{1/2}``, as the input's kind.

    Raises
    ------
    TypeError
        If ``A`` is not a real floating-point array.
    ValueError
        If ``A`` is empty, not finite or not square.
    """
    A, path, back = _xp.prepare(A)
    check_square(A, "A")
    w, V = _xp.linalg(A).eigh(A)
    root = w.clamp_min(0) ** 0.5 if path == "torch" else np.sqrt(np.maximum(w, 0))
    return back((V * root[..., None, :]) @ _xp.mT(V))


def sqrtm_newton_schulz(A: ArrayT, iters: int = 10) -> ArrayT:
    r"""Matrix square root of SPD ``A`` by the coupled Newton–Schulz iteration (the baseline
    the paper compares with): from :math:`Y_0 = A/\|A\|_F`, :math:`Z_0 = I`,

    .. math:: T_k = \tfrac12(3I - Z_k Y_k), \quad Y_{k+1} = Y_k T_k, \quad Z_{k+1} = T_k Z_k,

    :math:`Y_k \to (A/\|A\|_F)^{1/2}` and :math:`Z_k \to (A/\|A\|_F)^{-1/2}`, three
    products per step. Differentiable by plain autograd (that is the slow backward the paper
    replaces).

    Parameters
    ----------
    A : (n, n) array or (..., n, n) torch tensor
        Symmetric positive definite matrix.
    iters : int
        Number of steps, ``>= 0`` (fixed: there is no stopping test).

    Returns
    -------
    array or tensor
        :math:`\sqrt{\|A\|_F}\, Y_{\text{iters}}`, as the input's kind.

    Raises
    ------
    TypeError, ValueError
        As :func:`sqrtm_taylor` (with ``iters`` for ``degree``).
    """
    A, _, back = _xp.prepare(A)
    check_square(A, "A")
    iters = check_nonnegative_int(iters, "iters")
    Z, scale = _normalize(A)
    eye = _xp.eye_like(A.shape[-1], A)
    Y, Zi = eye - Z, eye + 0 * Z
    for _ in range(iters):
        T = (3 * eye - Zi @ Y) / 2
        Y, Zi = Y @ T, T @ Zi
    return back(scale * Y)


@overload
def solve_lyapunov(Y: ArrayT, G: ArrayT, *, tol: float | None = ..., max_iter: int = ...,
                   return_info: Literal[False] = ...) -> ArrayT: ...
@overload
def solve_lyapunov(Y: ArrayT, G: ArrayT, *, tol: float | None = ..., max_iter: int = ...,
                   return_info: Literal[True]) -> tuple[ArrayT, Info]: ...
@overload
def solve_lyapunov(Y: ArrayT, G: ArrayT, *, tol: float | None = ..., max_iter: int = ...,
                   return_info: bool) -> ArrayT | tuple[ArrayT, Info]: ...
def solve_lyapunov(Y: Array, G: Array, *, tol: float | None = None, max_iter: int = 100,
                   return_info: bool = False) -> Array | tuple[Array, Info]:
    r"""Solve :math:`Y X + X Y = G` for symmetric positive definite ``Y`` by the
    Newton–Schulz sign iteration on :math:`\left(\begin{smallmatrix} B & C\\ 0 & -B
    \end{smallmatrix}\right)` with :math:`B = Y / \|Y\|_F`, :math:`C = G / \|Y\|_F`:

    .. math:: B \leftarrow \tfrac12 B (3I - B^2), \qquad
              C \leftarrow \tfrac12 \left(3C - B^2 C + B C B - C B^2\right),

    until :math:`\|B^2 - I\|_F \le` ``tol``; then :math:`X = C / 2`. The iteration count grows
    like :math:`\log_{1.5} \kappa(Y)`. NumPy or (batched) torch.

    Parameters
    ----------
    Y : (n, n) array or (..., n, n) torch tensor
        Symmetric positive definite matrix.
    G : array or tensor of the same kind and shape
        Right-hand side (Inf and NaN are passed through, as an upstream gradient may carry
        them under loss scaling).
    tol : float, optional
        Stopping tolerance on ``‖B² − I‖_F`` (the largest over a batch), ``>= 0``; default
        ``100 n eps``.
    max_iter : int
        Upper bound on the iterations, ``>= 1``.
    return_info : bool
        Also return an :class:`refimpl.results.Info`: ``n_iter`` iterations and, in
        ``errors``, the ``‖B² − I‖_F`` each iteration tested (that of the ``B`` it started
        from).

    Returns
    -------
    array or tensor
        ``X``, as ``Y``'s kind.
    Info
        Only with ``return_info=True``.

    Raises
    ------
    TypeError
        If ``Y`` or ``G`` is not a real floating-point array, they are of different kinds,
        or ``max_iter`` is not an integer.
    ValueError
        If ``Y`` is empty, not finite or not square, ``G``'s shape differs, ``tol < 0`` or
        ``max_iter < 1``.
    """
    Y, path, back = _xp.prepare(Y, "Y")
    check_square(Y, "Y")
    check_same_kind("Y", Y, "G", G)
    G = _xp.to_path(check_array(G, "G", batch=path == "torch", finite=False), path, like=Y)
    check_square(G, "G")
    check_rows("Y", Y, "G", G)
    max_iter = check_positive_int(max_iter, "max_iter")
    tol = 100 * Y.shape[-1] * _xp.eps(Y) if tol is None else check_positive(
        tol, "tol", allow_zero=True)
    scale = _xp.fro(Y)[..., None, None]
    B, C = Y / scale, G / scale
    eye = _xp.eye_like(Y.shape[-1], Y)
    errors: list[float] = []
    while len(errors) < max_iter and not (errors and errors[-1] <= tol):
        B2 = B @ B
        C = (3 * C - B2 @ C + B @ C @ B - C @ B2) / 2
        B = B @ (3 * eye - B2) / 2
        errors.append(float(_xp.fro(B2 - eye).max()))
    X = back(C / 2)
    return (X, Info(len(errors), bool(errors[-1] <= tol), tuple(errors))) if return_info else X


def _torch_function() -> type[torch.autograd.Function]:
    import torch

    class MatrixSqrt(torch.autograd.Function):
        """``MatrixSqrt.apply(A, method="pade", degree=None)``: MTP/MPA forward, Lyapunov backward.

        ``method`` is ``"pade"`` or ``"taylor"``; ``degree`` as in :func:`sqrtm_pade` /
        :func:`sqrtm_taylor` (``None``: their defaults). Arguments are positional, as
        ``autograd.Function.apply`` requires, e.g. ``MatrixSqrt.apply(A, "pade", 8)``.
        The backward solves ``Y X + X Y = G`` with
        :func:`solve_lyapunov` (symmetrized, as ``A`` is symmetric).
        """

        @staticmethod
        def forward(ctx: Any, A: torch.Tensor, method: str = "pade",
                    degree: int | tuple[int, int] | None = None) -> torch.Tensor:
            """The square root of ``A`` by :func:`sqrtm_pade` or :func:`sqrtm_taylor`,
            saved for the backward pass."""
            root: Callable[..., torch.Tensor] = {"pade": sqrtm_pade, "taylor": sqrtm_taylor}[
                check_choice(method, "method", ("pade", "taylor"))]
            Y = root(A) if degree is None else root(A, degree)
            ctx.save_for_backward(Y)
            return Y

        @staticmethod
        def backward(ctx: Any, G: torch.Tensor) -> tuple[torch.Tensor, None, None]:
            """The gradient with respect to ``A``: ``X`` solving ``Y X + X Y = G`` with
            :func:`solve_lyapunov`, ``Y`` the saved square root (symmetrized)."""
            (Y,) = ctx.saved_tensors
            Ys = (Y + Y.mT) / 2
            return solve_lyapunov(Ys, G), None, None

    return MatrixSqrt


def __getattr__(name: str) -> type[torch.autograd.Function]:
    # MatrixSqrt subclasses a torch class: built on first access so that importing this
    # module does not import torch.
    if name == "MatrixSqrt":
        cls = _torch_function()
        globals()["MatrixSqrt"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

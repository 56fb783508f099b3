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

from functools import cache

import numpy as np

from refimpl import _xp
from refimpl._validation import check_array
from refimpl.backend import is_torch_tensor


@cache
def taylor_coefficients(K: int) -> tuple[float, ...]:
    r"""Coefficients :math:`c_k` of :math:`\sqrt{1-z} = \sum_k c_k z^k`, :math:`k \le K`."""
    c = [1.0]
    for k in range(1, K + 1):
        c.append(c[-1] * (k - 1.5) / k)  # c_k = c_{k-1} (k - 1 - 1/2) / k
    return tuple(c)


@cache
def pade_coefficients(M: int, N: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    r"""``(p, q)`` of the :math:`[M/N]` Padé approximant of :math:`\sqrt{1-z}` (``q[0] = 1``).

    :math:`Q_N(z)\sqrt{1-z} - P_M(z) = O(z^{M+N+1})`: the coefficients of
    :math:`z^{M+1},\dots,z^{M+N}` of :math:`Q_N \cdot \text{series}` vanish.
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


def _check_square(A):
    A = check_array(A, "A", batch=is_torch_tensor(A), ndim=2)
    if A.shape[-1] != A.shape[-2]:
        raise ValueError(f"A must be square; got shape {tuple(A.shape)}")
    return A


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


def sqrtm_taylor(A, degree: int = 10):
    """Matrix square root of SPD ``A`` by the degree-``degree`` Matrix Taylor Polynomial.

    Works on NumPy arrays and (batched, any device) torch tensors; differentiable by plain
    autograd. The truncation error is largest for ill-conditioned ``A`` (the series of
    ``sqrt(1-z)`` converges slowly near ``z = 1``).
    """
    A = _check_square(A)
    Z, scale = _normalize(A)
    c = taylor_coefficients(int(degree))
    return scale * _poly(c, Z, _powers(Z, int(degree)))


def sqrtm_pade(A, degree: tuple[int, int] | int = 5):
    """Matrix square root of SPD ``A`` by the ``[M/N]`` Matrix Padé Approximant.

    ``degree`` is ``(M, N)`` or one integer for ``M = N``.
    """
    A = _check_square(A)
    M, N = (degree, degree) if isinstance(degree, int) else degree
    Z, scale = _normalize(A)
    p, q = pade_coefficients(int(M), int(N))
    powers = _powers(Z, max(M, N))
    return scale * _xp.solve(_poly(q, Z, powers[:N + 1]), _poly(p, Z, powers[:M + 1]))


def sqrtm_eigh(A):
    r"""Reference square root of symmetric PSD ``A``: :math:`V \operatorname{diag}(\sqrt{\lambda})
    V^\top` from LAPACK's symmetric eigensolver (negative rounding-level eigenvalues clipped).

    Differentiable through ``torch.linalg.eigh``'s autograd (the route whose backward the
    book shows failing at repeated eigenvalues).
    """
    A = _check_square(A)
    w, V = _xp.linalg(A).eigh(A)
    root = w.clamp_min(0) ** 0.5 if is_torch_tensor(w) else np.sqrt(np.maximum(w, 0))
    return (V * root[..., None, :]) @ _xp.mT(V)


def sqrtm_newton_schulz(A, iters: int = 10):
    r"""Matrix square root of SPD ``A`` by the coupled Newton–Schulz iteration (the baseline
    the paper compares with): from :math:`Y_0 = A/\|A\|_F`, :math:`Z_0 = I`,

    .. math:: T_k = \tfrac12(3I - Z_k Y_k), \quad Y_{k+1} = Y_k T_k, \quad Z_{k+1} = T_k Z_k,

    :math:`Y_k \to (A/\|A\|_F)^{1/2}` and :math:`Z_k \to (A/\|A\|_F)^{-1/2}`, three
    products per step. Differentiable by plain autograd (that is the slow backward the paper
    replaces).
    """
    A = _check_square(A)
    Z, scale = _normalize(A)
    eye = _xp.eye_like(A.shape[-1], A)
    Y, Zi = eye - Z, eye + 0 * Z
    for _ in range(int(iters)):
        T = (3 * eye - Zi @ Y) / 2
        Y, Zi = Y @ T, T @ Zi
    return scale * Y


def solve_lyapunov(Y, G, *, tol: float | None = None, max_iter: int = 100):
    r"""Solve :math:`Y X + X Y = G` for symmetric positive definite ``Y`` by the
    Newton–Schulz sign iteration on :math:`\left(\begin{smallmatrix} B & C\\ 0 & -B
    \end{smallmatrix}\right)` with :math:`B = Y / \|Y\|_F`, :math:`C = G / \|Y\|_F`:

    .. math:: B \leftarrow \tfrac12 B (3I - B^2), \qquad
              C \leftarrow \tfrac12 \left(3C - B^2 C + B C B - C B^2\right),

    until :math:`\|B^2 - I\|_F \le` ``tol``; then :math:`X = C / 2`. The iteration count grows
    like :math:`\log_{1.5} \kappa(Y)`. NumPy or (batched) torch.
    """
    scale = _xp.fro(Y)[..., None, None]
    B, C = Y / scale, G / scale
    eye = _xp.eye_like(Y.shape[-1], Y)
    tol = 100 * Y.shape[-1] * _xp.eps(Y) if tol is None else float(tol)
    for _ in range(max_iter):
        B2 = B @ B
        C = (3 * C - B2 @ C + B @ C @ B - C @ B2) / 2
        B = B @ (3 * eye - B2) / 2
        if float(_xp.fro(B2 - eye).max()) <= tol:
            break
    return C / 2


def _torch_function():
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
        def forward(ctx, A, method="pade", degree=None):
            if method == "pade":
                Y = sqrtm_pade(A) if degree is None else sqrtm_pade(A, degree)
            elif method == "taylor":
                Y = sqrtm_taylor(A) if degree is None else sqrtm_taylor(A, degree)
            else:
                raise ValueError(f"method must be 'pade' or 'taylor'; got {method!r}")
            ctx.save_for_backward(Y)
            return Y

        @staticmethod
        def backward(ctx, G):
            (Y,) = ctx.saved_tensors
            Ys = (Y + Y.mT) / 2
            return solve_lyapunov(Ys, G), None, None

    return MatrixSqrt


def __getattr__(name):
    # MatrixSqrt subclasses a torch class: built on first access so that importing this
    # module does not import torch.
    if name == "MatrixSqrt":
        cls = _torch_function()
        globals()["MatrixSqrt"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

r"""The projectors hidden in every factorization (Karpowicz, "The secret life of matrix
factorizations").

Write a rank-k factorization as :math:`A_k = F H^\top` (F m×k, H n×k) and pick test
matrices B, D. Then

.. math:: P_{\text{col}} = F (B^\top F)^{-1} B^\top, \qquad
          P_{\text{row}} = D (H^\top D)^{-1} H^\top

are idempotent, ``P_col`` maps onto range F and ``P_row`` onto range H, and
``A⁻ = X Yᵀ = D (HᵀD)⁻¹ (BᵀF)⁻¹ Bᵀ`` is a generalized inverse with ``A A⁻ = P_col`` and
``A⁻ A = P_row`` whenever ``A = F Hᵀ``. Which B and D a factorization hides:

======  =======================================  =====================================
kind    F, H                                     B, D (projectors)
======  =======================================  =====================================
svd     U_k, V_k Σ_k                             F, V_k (orthogonal)
qr      Q_k, P R_kᵀ (pivoted QR)                 F, H (orthogonal)
lu      (P L)[:, :k], U[:k]ᵀ (partial pivoting)  selectors of the pivot rows and the
                                                 first k columns (oblique)
cur     C = A[:, J], Rᵀ A[I, J]⁻ᵀ                 selectors S_I, S_J (oblique)
======  =======================================  =====================================
"""

from __future__ import annotations

from typing import Any, NamedTuple

from refimpl import _xp
from refimpl._validation import check_array, check_rank, check_same_kind
from refimpl.backend import is_torch_tensor
from refimpl.linalg import cpqr
from refimpl.meta.core import dual_basis
from refimpl.meta.instances import _pivot_row_factor, numerical_rank

KINDS = ("svd", "qr", "lu", "cur")


class HiddenProjectors(NamedTuple):
    """Column and row projectors of a rank-k factorization ``A_k = F Hᵀ``."""

    col: Any
    row: Any
    F: Any
    H: Any
    Y: Any
    X: Any
    kind: str

    def apply(self, A):
        """``P_col A P_row``: A itself when ``rank(A) <= k`` and the factorization is exact."""
        return self.col @ A @ self.row

    def ginv(self):
        """The generalized inverse ``X Yᵀ`` (n×m) with ``A A⁻ = P_col``, ``A⁻ A = P_row``."""
        return self.X @ _xp.mT(self.Y)


def hidden_projectors(A, kind: str = "svd", k: int | None = None) -> HiddenProjectors:
    """Extract the column and row projectors hidden in a factorization of ``A``.

    Parameters
    ----------
    A : (..., m, n) array or tensor
    kind : {"svd", "qr", "lu", "cur"}
    k : int, optional
        Rank of the factorization; default the numerical rank of A (from pivoted QR).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    A = check_array(A, "A", batch=is_torch_tensor(A), ndim=2)
    m, n = A.shape[-2:]
    qr = cpqr(A)
    k = numerical_rank(qr) if k is None else check_rank(k, "k", min(m, n))
    if kind == "svd":
        U, s, Vt = _xp.svd(A)
        V = _xp.mT(Vt[..., :k, :])
        F, H, B, D = U[..., :k], V * s[..., None, :k], U[..., :k], V
    elif kind == "qr":
        F = qr.Q[..., :k]
        H = _pivot_row_factor(qr.R[..., :k, :], qr.perm)
        B, D = F, H
    elif kind == "lu":
        P, L, Uf = _lu(A)
        F = (P @ L)[..., :k]
        H = _xp.mT(Uf[..., :k, :])
        rows = _argmax_rows(P[..., :, :k])
        B = _xp.selector(m, rows, A)
        D = _xp.eye_like(n, A)[:, :k]
    else:
        cols = qr.perm[..., :k]
        rows = cpqr(_xp.mT(A)).perm[..., :k]
        F = _xp.take_cols(A, cols)
        R = _xp.take_rows(A, rows)
        core = _xp.take_cols(R, cols)  # A[I, J]
        H = _xp.mT(_solve_checked(core, R, "A[I, J]"))
        B, D = _xp.selector(m, rows, A), _xp.selector(n, cols, A)
    Y = _dual(F, B, kind)
    X = _dual(H, D, kind)
    return HiddenProjectors(F @ _xp.mT(Y), X @ _xp.mT(H), F, H, Y, X, kind)


def _dual(F, B, kind):
    try:
        return dual_basis(F, B, method="solve")
    except ValueError as exc:
        raise ValueError(
            f"the {kind} factorization's pivot block is singular at this k; choose a smaller "
            f"k (the numerical rank is the default) or kind='cur'") from exc


def _solve_checked(M, R, what):
    try:
        return _xp.solve(M, R)
    except Exception as exc:
        raise ValueError(f"{what} is singular at this k; choose a smaller k") from exc


def _lu(A):
    if is_torch_tensor(A):
        import torch

        return torch.linalg.lu(A)
    import scipy.linalg

    return scipy.linalg.lu(A)


def _argmax_rows(P):
    if is_torch_tensor(P):
        return P.argmax(dim=-2)
    return P.argmax(axis=-2)


def generalized_inverse(A, kind: str = "svd", k: int | None = None):
    """A {1}-inverse ``A⁻`` of A read off a factorization (``A A⁻ A = A`` when rank A <= k).

    ``kind="svd"`` and ``"qr"`` give the Moore–Penrose pseudoinverse (orthogonal
    projectors); ``"lu"`` and ``"cur"`` give oblique generalized inverses that only touch the
    pivot rows and columns.
    """
    return hidden_projectors(A, kind, k).ginv()


class MatrixEquationSolution(NamedTuple):
    """Solution of ``A X B = C``: ``X``, its relative residual and whether C is consistent."""

    X: Any
    residual: float
    consistent: bool


def solve_matrix_equation(A, B, C, *, kind: str = "svd", W=None,
                          tol: float | None = None) -> MatrixEquationSolution:
    r"""Solve the linear matrix equation :math:`A X B = C` with hidden projectors.

    With generalized inverses :math:`A^-` and :math:`B^-` from ``kind`` factorizations,
    every solution is

    .. math:: X = A^- C B^- + W - A^- A\, W\, B B^- ,

    and one exists iff :math:`P_{\text{col}}(A)\, C\, P_{\text{row}}(B) = C`. ``W`` (n×p)
    selects one solution (default 0). ``consistent`` reports whether the relative residual
    ``‖A X B − C‖_F / ‖C‖_F`` is below ``tol`` (default ``sqrt(eps)``); when it is not,
    X is the solution of the projected equation.
    """
    A = check_array(A, "A")
    B = check_array(B, "B")
    C = check_array(C, "C")
    for name, arr in (("B", B), ("C", C)):
        check_same_kind("A", A, name, arr)
    if C.shape[-2] != A.shape[-2]:
        raise ValueError(f"C must have {A.shape[-2]} rows to match A; got shape "
                         f"{tuple(C.shape)}")
    if C.shape[-1] != B.shape[-1]:
        raise ValueError(f"C must have {B.shape[-1]} columns to match B; got shape "
                         f"{tuple(C.shape)}")
    Ag = generalized_inverse(A, kind)
    Bg = generalized_inverse(B, kind)
    X = Ag @ C @ Bg
    if W is not None:
        W = check_array(W, "W")
        check_same_kind("A", A, "W", W)
        want = (A.shape[-1], B.shape[-2])
        if tuple(W.shape) != want:
            raise ValueError(f"W must have shape {want}; got {tuple(W.shape)}")
        X = X + W - Ag @ A @ W @ B @ Bg
    residual = float(_xp.fro(A @ X @ B - C) / _xp.fro(C))
    tol = _xp.eps(A) ** 0.5 if tol is None else tol
    return MatrixEquationSolution(X, residual, residual <= tol)

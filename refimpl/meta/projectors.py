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
from refimpl._typing import Array, ArrayT
from refimpl._validation import check_choice, check_positive, check_rank, check_rows
from refimpl.linalg import cpqr
from refimpl.meta.core import dual_basis
from refimpl.meta.skeletons import numerical_rank

KINDS = ("svd", "qr", "lu", "cur")


class HiddenProjectors(NamedTuple):
    """Column and row projectors of a rank-k factorization ``A_k = F Hᵀ``.

    Attributes
    ----------
    col : (..., m, m) array or tensor
        ``P_col = F Yᵀ``, onto range F along null Bᵀ.
    row : (..., n, n) array or tensor
        ``P_row = X Hᵀ``, onto range H along null Dᵀ (it acts on A from the right).
    F : (..., m, k) array or tensor
        Column factor of the factorization.
    H : (..., n, k) array or tensor
        Row factor.
    Y : (..., m, k) array or tensor
        Dual basis of F with respect to the test matrix B.
    X : (..., n, k) array or tensor
        Dual basis of H with respect to the test matrix D.
    kind : str
        The factorization, one of ``"svd"``, ``"qr"``, ``"lu"``, ``"cur"``.
    """

    col: Any
    row: Any
    F: Any
    H: Any
    Y: Any
    X: Any
    kind: str

    def apply(self, A: Array) -> Array:
        """``P_col A P_row``: A itself when ``rank(A) <= k`` and the factorization is exact."""
        return self.col @ A @ self.row

    def ginv(self) -> Array:
        """The generalized inverse ``X Yᵀ`` (n×m) with ``A A⁻ = P_col``, ``A⁻ A = P_row``."""
        return self.X @ _xp.mT(self.Y)


def hidden_projectors(A: Array, kind: str = "svd", rank: int | None = None) -> HiddenProjectors:
    """Extract the column and row projectors hidden in a factorization of ``A``.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) tensor
        Real floating-point matrix (batches as torch tensors).
    kind : {"svd", "qr", "lu", "cur"}
        The factorization whose projectors are read off (table in the module docstring).
    rank : int, optional
        Rank ``k`` of the factorization, ``1 <= k <= min(m, n)``; default the numerical rank
        of A (from pivoted QR).

    Returns
    -------
    HiddenProjectors
        The input's array kind, device and dtype.

    Raises
    ------
    ValueError
        If ``kind`` or ``rank`` is out of range, the factorization's pivot block is singular
        at this rank, or ``A`` is empty or not finite.
    TypeError
        If ``A`` is not a real floating-point array.
    """
    A, path, back = _xp.prepare(A)
    check_choice(kind, "kind", KINDS)
    m, n = A.shape[-2:]
    qr = cpqr(A)
    k = numerical_rank(qr) if rank is None else check_rank(rank, "rank", min(m, n))
    if kind == "svd":
        U, s, Vt = _xp.svd(A)
        V = _xp.mT(Vt[..., :k, :])
        F, H, B, D = U[..., :k], V * s[..., None, :k], U[..., :k], V
    elif kind == "qr":
        F = qr.Q[..., :k]
        H = _xp.mT(_xp.unpermute_cols(qr.R[..., :k, :], qr.perm))
        B, D = F, H
    elif kind == "lu":
        P, L, Uf = _lu(A, path)
        F = (P @ L)[..., :k]
        H = _xp.mT(Uf[..., :k, :])
        rows = P[..., :, :k].argmax(axis=-2)  # the pivot row of each of the first k columns
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
    return back(HiddenProjectors(F @ _xp.mT(Y), X @ _xp.mT(H), F, H, Y, X, kind))


def _dual(F, B, kind):
    try:
        return dual_basis(F, B, method="solve")
    except ValueError as exc:
        raise ValueError(
            f"the {kind} factorization's pivot block is singular at this rank; choose a "
            f"smaller rank (the numerical rank is the default) or kind='cur'") from exc


def _solve_checked(M, R, what):
    try:
        return _xp.solve(M, R)
    except Exception as exc:
        raise ValueError(f"{what} is singular at this rank; choose a smaller rank") from exc


def _lu(A, path):
    """``P, L, U`` with ``A = P L U`` (partial pivoting): torch's or SciPy's."""
    if path == "torch":
        import torch

        return torch.linalg.lu(A)
    import scipy.linalg

    return scipy.linalg.lu(A)


def generalized_inverse(A: ArrayT, kind: str = "svd", rank: int | None = None) -> ArrayT:
    """A {1}-inverse ``A⁻`` of A read off a factorization (``A A⁻ A = A`` when rank A <= k).

    ``kind="svd"`` and ``"qr"`` give the Moore–Penrose pseudoinverse (orthogonal
    projectors); ``"lu"`` and ``"cur"`` give oblique generalized inverses that only touch the
    pivot rows and columns.

    Parameters
    ----------
    A, kind, rank
        As in :func:`hidden_projectors`.

    Returns
    -------
    array or tensor
        ``A⁻`` (..., n, m), the input's array kind, device and dtype.

    Raises
    ------
    ValueError, TypeError
        As :func:`hidden_projectors`.
    """
    return hidden_projectors(A, kind, rank).ginv()  # type: ignore[return-value]  # A's kind


class MatrixEquationSolution(NamedTuple):
    """Solution of ``A X B = C``.

    Attributes
    ----------
    X : (n, p) array or tensor
        A solution (of the projected equation when C is inconsistent).
    residual : float
        ``‖A X B − C‖_F / ‖C‖_F``.
    consistent : bool
        Whether ``residual`` is below the tolerance, i.e. the equation has a solution.
    """

    X: Any
    residual: float
    consistent: bool


def solve_matrix_equation(A: Array, B: Array, C: Array, *, kind: str = "svd",
                          W: Array | None = None,
                          tol: float | None = None) -> MatrixEquationSolution:
    r"""Solve the linear matrix equation :math:`A X B = C` with hidden projectors.

    With generalized inverses :math:`A^-` and :math:`B^-` from ``kind`` factorizations,
    every solution is

    .. math:: X = A^- C B^- + W - A^- A\, W\, B B^- ,

    and one exists iff :math:`P_{\text{col}}(A)\, C\, P_{\text{row}}(B) = C`.

    Parameters
    ----------
    A : (m, n) array or tensor
        Left coefficient matrix.
    B : (p, q) array or tensor
        Right coefficient matrix (the same kind of array as ``A``, like ``C`` and ``W``).
    C : (m, q) array or tensor
        Right-hand side.
    kind : {"svd", "qr", "lu", "cur"}
        Factorization that supplies the generalized inverses, see
        :func:`hidden_projectors`.
    W : (n, p) array or tensor, optional
        Selects one solution of the general form (default 0).
    tol : float, optional
        Threshold (``> 0``) on the relative residual below which C counts as consistent;
        default ``sqrt(eps)``.

    Returns
    -------
    MatrixEquationSolution
        ``X`` as the input's array kind; when C is inconsistent, X solves the projected
        equation.

    Raises
    ------
    ValueError
        If the shapes do not fit, an option is out of range, or an input is empty or not
        finite.
    TypeError
        If an input is not a real floating-point matrix, or NumPy and torch are mixed.
    """
    A, _, back = _xp.prepare(A, batch=False)
    B = _xp.operand(B, "B", A)
    C = _xp.operand(C, "C", A)
    W = None if W is None else _xp.operand(W, "W", A)
    check_choice(kind, "kind", KINDS)
    tol = _xp.eps(A) ** 0.5 if tol is None else check_positive(tol, "tol")
    check_rows("A", A, "C", C)
    if C.shape[-1] != B.shape[-1]:
        raise ValueError(f"C must have {B.shape[-1]} columns to match B; got shape "
                         f"{tuple(C.shape)}")
    Ag = generalized_inverse(A, kind)
    Bg = generalized_inverse(B, kind)
    X = Ag @ C @ Bg
    if W is not None:
        want = (A.shape[-1], B.shape[-2])
        if tuple(W.shape) != want:
            raise ValueError(f"W must have shape {want}; got {tuple(W.shape)}")
        X = X + W - Ag @ A @ W @ B @ Bg
    residual = float(_xp.fro(A @ X @ B - C) / _xp.fro(C))
    return back(MatrixEquationSolution(X, residual, residual <= tol))

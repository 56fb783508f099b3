r"""The projector and reconstruction equations of meta-factorization (Karpowicz, 2021).

For :math:`A \in \mathbb{R}^{m\times n}`, a column factor :math:`F \in \mathbb{R}^{m\times p}`,
a row factor :math:`H \in \mathbb{R}^{n\times q}` and test matrices :math:`B` (m×p') and
:math:`D` (n×q'), the dual bases

.. math:: Y = B\,(F^\top B)^{-1}, \qquad X = D\,(H^\top D)^{-1}

satisfy :math:`Y^\top F = I` and :math:`H^\top X = I`, so :math:`F Y^\top` and
:math:`X H^\top` are (oblique) projectors: the projector equation :math:`F Y^\top F = F`.
The reconstruction equation :math:`F G H^\top = A` then has the general solution

.. math:: G = Y^\top A X + W - Y^\top F\, W\, H^\top X

for any :math:`W`. When :math:`F^\top B` is singular, ill-conditioned or not square, the
inverse is replaced by the pseudoinverse: :math:`Y^\top = (B^\top F)^+ B^\top` is then a
{1}-inverse of :math:`F` whenever :math:`B^\top F` has the rank of :math:`F` (e.g. ``B = F``),
and the free term :math:`W` matters exactly when :math:`F` or :math:`H` is rank deficient.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from refimpl import _xp
from refimpl._typing import Array, ArrayT
from refimpl._validation import check_choice, check_positive, check_rank, check_rows

METHODS = ("auto", "solve", "pinv")


class MetaFactorization(NamedTuple):
    """``A ≈ F G Hᵀ`` with the dual bases ``Y`` (of F) and ``X`` (of H).

    Attributes
    ----------
    F : (..., m, p) array or tensor
        The column factor.
    G : (..., p, q) array or tensor
        The core, ``Yᵀ A X`` (plus the free term when one was given).
    H : (..., n, q) array or tensor
        The row factor.
    Y : (..., m, p) array or tensor
        The dual basis of ``F`` with respect to its test matrix ``B``: ``Yᵀ F = I`` when
        ``Fᵀ B`` is invertible.
    X : (..., n, q) array or tensor
        The dual basis of ``H`` with respect to its test matrix ``D``.
    """

    F: Any
    G: Any
    H: Any
    Y: Any
    X: Any

    def reconstruct(self) -> Array:
        """``F G Hᵀ``: equals A when range(A) ⊆ range(F) and row(A) ⊆ range(H)."""
        return self.F @ self.G @ _xp.mT(self.H)

    def column_projector(self) -> Array:
        """``F Yᵀ`` (m×m), the projector onto range(F) along null(Bᵀ)."""
        return self.F @ _xp.mT(self.Y)

    def row_projector(self) -> Array:
        """``X Hᵀ`` (n×n); ``A (X Hᵀ)`` projects A's rows onto range(H) along null(Dᵀ)."""
        return self.X @ _xp.mT(self.H)


def instance_rank(rank: int | None, A: Array) -> int:
    """``rank`` checked against ``min(m, n)`` of ``A``; ``None`` means full rank.

    Shared by the instances of :mod:`refimpl.meta.instances` and :mod:`refimpl.meta.skeletons`
    that take a rank (package-internal: not exported from :mod:`refimpl.meta`).
    """
    full = min(A.shape[-2:])
    return full if rank is None else check_rank(rank, "rank", full)


def _check_options(method, rcond):
    check_choice(method, "method", METHODS)
    if rcond is not None:
        check_positive(rcond, "rcond", allow_zero=True)


def dual_basis(F: ArrayT, B: ArrayT | None = None, *, method: str = "auto",
               rcond: float | None = None) -> ArrayT:
    r"""The dual basis :math:`Y = B (F^\top B)^{-1}` of ``F`` with respect to test matrix ``B``.

    Parameters
    ----------
    F : (m, p) array or (..., m, p) tensor
        The factor whose dual basis is wanted.
    B : (m, p') array or (..., m, p') tensor, optional
        Test matrix, the same kind of array as ``F``; default ``F`` (then ``F Yᵀ`` is the
        orthogonal projector onto range F).
    method : {"auto", "solve", "pinv"}
        ``"solve"`` needs a square, non-singular ``Fᵀ B`` and gives ``Yᵀ F = I`` to rounding.
        ``"pinv"`` uses :math:`(F^\top B)^+`, defined for any shapes and ranks.
        ``"auto"`` solves when ``Fᵀ B`` is square with condition number below
        ``1/sqrt(eps)`` and falls back to the pseudoinverse otherwise.
    rcond : float, optional
        Relative cut-off (``>= 0``) for small singular values on the pseudoinverse path
        (default: the library's, ``max(shape)·eps``).

    Returns
    -------
    array or tensor
        ``Y`` (..., m, p'), the kind, device and dtype of ``F``.

    Raises
    ------
    ValueError
        If ``method="solve"`` meets a non-square or singular ``Fᵀ B``, if ``B`` does not have
        the rows of ``F``, or if an option is out of range.
    TypeError
        If ``F`` or ``B`` is not a real floating-point array, or they mix NumPy and torch.
    """
    F, _, back = _xp.prepare(F, "F")
    _check_options(method, rcond)
    if B is None:
        return back(_orthogonal_dual(F, method, rcond))
    B = _xp.operand(B, "B", F, "F")
    check_rows("F", F, "B", B)
    M = _xp.mT(F) @ B  # p × p'
    square = M.shape[-1] == M.shape[-2]
    if method == "auto":
        ok = square and bool((_xp.cond(M) < _xp.eps(M) ** -0.5).all())
        method = "solve" if ok else "pinv"
    if method == "solve":
        if not square:
            raise ValueError(
                f"method='solve' needs a square FᵀB; F has {F.shape[-1]} columns and B has "
                f"{B.shape[-1]}: use method='pinv'")
        try:
            # Y = B M^{-1}  <=>  Yᵀ = M^{-ᵀ} Bᵀ, one solve with Mᵀ.
            return back(_xp.mT(_xp.solve(_xp.mT(M), _xp.mT(B))))
        except Exception as exc:  # numpy.linalg.LinAlgError / torch's _LinAlgError
            raise ValueError(
                "FᵀB is singular, so the dual basis Y = B (FᵀB)⁻¹ does not exist; "
                "use method='pinv' (or 'auto') for the pseudoinverse path") from exc
    return back(B @ _xp.pinv(M, rtol=rcond))


def _orthogonal_dual(F, method, rcond):
    """``Y = F (FᵀF)⁻¹`` without forming FᵀF (which would square F's condition number).

    With ``F = Q R``: ``Yᵀ = R⁻¹ Qᵀ``; on the pseudoinverse path ``Y = (F⁺)ᵀ``.
    """
    if method != "pinv" and F.shape[-1] <= F.shape[-2]:
        Q, R = _xp.qr(F)
        if method == "solve" or bool((_xp.cond(R) < _xp.eps(R) ** -0.5).all()):
            try:
                return _xp.mT(_xp.solve(R, _xp.mT(Q)))
            except Exception as exc:
                raise ValueError(
                    "F is rank deficient, so FᵀF is singular and Y = F (FᵀF)⁻¹ does not "
                    "exist; use method='pinv' (or 'auto')") from exc
    elif method == "solve":
        raise ValueError(f"method='solve' needs F with at least as many rows as columns; "
                         f"got shape {tuple(F.shape)}: use method='pinv'")
    return _xp.mT(_xp.pinv(F, rtol=rcond))


def oblique_projector(F: ArrayT, B: ArrayT | None = None, *, method: str = "auto",
                      rcond: float | None = None) -> ArrayT:
    r"""The projector :math:`P = F Y^\top = F (B^\top F)^{-1} B^\top` onto range F along null Bᵀ.

    Parameters
    ----------
    F, B, method, rcond
        As in :func:`dual_basis`.

    Returns
    -------
    array or tensor
        ``P`` (..., m, m), idempotent, the kind, device and dtype of ``F``.

    Raises
    ------
    ValueError, TypeError
        As :func:`dual_basis`.
    """
    F, _, back = _xp.prepare(F, "F")
    Y = dual_basis(F, B, method=method, rcond=rcond)
    return back(F @ _xp.mT(Y))


def meta_factorize(A: Array, F: Array, H: Array, B: Array | None = None,
                   D: Array | None = None, W: Array | None = None, *, method: str = "auto",
                   rcond: float | None = None) -> MetaFactorization:
    r"""Solve the reconstruction equation :math:`F G H^\top = A` for the core ``G``.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) tensor
        The matrix to factorize.
    F : (..., m, p) array or tensor
        Column factor (spans, or approximates, the column space of A); the same kind of
        array as ``A``, like every other argument.
    H : (..., n, q) array or tensor
        Row factor (spans, or approximates, the row space of A).
    B, D : array or tensor, optional
        Test matrices for F (m×p') and H (n×q') (defaults ``B = F``, ``D = H``: orthogonal
        projectors).
    W : (..., p, q) array or tensor, optional
        The free term of the general solution; only changes ``G`` when ``Yᵀ F ≠ I`` or
        ``Hᵀ X ≠ I`` (rank-deficient factors on the pseudoinverse path).
    method, rcond
        How the dual bases are computed, see :func:`dual_basis`.

    Returns
    -------
    MetaFactorization
        ``reconstruct()`` gives ``(F Yᵀ) A (X Hᵀ)``, which is A itself when the ranges of F
        and H contain those of A.

    Raises
    ------
    ValueError
        If the shapes of ``F``, ``H``, ``B``, ``D`` or ``W`` do not fit ``A``, or as
        :func:`dual_basis`.
    TypeError
        If an argument is not a real floating-point array, or NumPy and torch are mixed.
    """
    A, _, back = _xp.prepare(A)
    F = _xp.operand(F, "F", A)
    H = _xp.operand(H, "H", A)
    W = None if W is None else _xp.operand(W, "W", A)
    _check_options(method, rcond)
    check_rows("A", A, "F", F)
    if H.shape[-2] != A.shape[-1]:
        raise ValueError(
            f"H must have {A.shape[-1]} rows, one per column of A (shape {tuple(A.shape)}); "
            f"got shape {tuple(H.shape)}")
    Y = dual_basis(F, B, method=method, rcond=rcond)
    X = dual_basis(H, D, method=method, rcond=rcond)
    G = _xp.mT(Y) @ A @ X
    if W is not None:
        want = (F.shape[-1], H.shape[-1])
        if tuple(W.shape[-2:]) != want:
            raise ValueError(f"W must have shape {want} (columns of F, columns of H); "
                             f"got {tuple(W.shape)}")
        G = G + W - _xp.mT(Y) @ F @ W @ _xp.mT(H) @ X
    return back(MetaFactorization(F, G, H, Y, X))


def projector_residual(F: Array, Y: Array) -> float:
    r"""Relative residual of the projector equation, :math:`\|F Y^\top F - F\|_F / \|F\|_F`.

    Parameters
    ----------
    F : (m, p) array or (..., m, p) tensor
        A factor.
    Y : (m, p) array or (..., m, p) tensor
        A candidate dual basis of ``F`` (the same kind of array).

    Returns
    -------
    float
        The residual (the largest over a batch); zero to rounding when ``Yᵀ F = I``.
    """
    F, _, _ = _xp.prepare(F, "F")
    Y = _xp.operand(Y, "Y", F, "F")
    return float((_xp.fro(F @ _xp.mT(Y) @ F - F) / _xp.fro(F)).max())

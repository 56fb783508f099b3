"""Sums of Kronecker products (chapter 06's primitive): the nearest-Kronecker-product SVD of
Van Loan and Pitsianis.

Rearranging a (m1·m2)×(n1·n2) matrix ``W`` so that its block ``(i, j)`` (m2×n2) becomes row
``(i, j)`` of an (m1·n1)×(m2·n2) matrix ``R(W)`` turns ``A ⊗ B`` into the rank-one matrix
``vec(A) vec(B)ᵀ``; the SVD of ``R(W)`` therefore gives ``W = Σ_k σ_k A_k ⊗ B_k``, and keeping
the leading ``rank`` terms is optimal in the Frobenius norm. Used by SoKA
(:mod:`refimpl.lora.kronecker`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from refimpl import _xp
from refimpl._typing import Array, ArrayT
from refimpl._validation import check_divides, check_positive_int, check_rank

__all__ = ["KronSVD", "kron_shape", "kron_sum", "kron_svd"]


def kron_shape(n: int) -> tuple[int, int]:
    """The most balanced split of ``n`` into two factors.

    Parameters
    ----------
    n : int
        A positive integer.

    Returns
    -------
    (a, b) : tuple of int
        ``a·b = n`` with ``a`` the largest divisor of ``n`` not above ``√n``.
    """
    n = check_positive_int(n, "n")
    a = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    return a, n // a


def kron_sum(A: ArrayT, B: ArrayT) -> ArrayT:
    """``Σ_k A_k ⊗ B_k``.

    Parameters
    ----------
    A : (K, m1, n1) array or torch tensor
    B : (K, m2, n2) array or torch tensor
        Of the same kind as ``A``.

    Returns
    -------
    (m1·m2, n1·n2) array or torch tensor
    """
    m1, n1 = A.shape[1:]
    m2, n2 = B.shape[1:]
    # reshape keeps the array kind, which mypy cannot map back to ArrayT
    return _xp.einsum("kij,kab->iajb", A, B).reshape(m1 * m2, n1 * n2)  # type: ignore[return-value]


class KronSVD(NamedTuple):
    """``W ≈ Σ_k s_k A_k ⊗ B_k`` with ``‖A_k‖_F = ‖B_k‖_F = 1``.

    Attributes
    ----------
    A : (K, m1, n1) array or torch tensor
        The left factors.
    B : (K, m2, n2) array or torch tensor
        The right factors.
    s : (K,) array or torch tensor
        The weights, non-increasing (the singular values of the rearranged matrix).
    """

    A: Any
    B: Any
    s: Any

    def reconstruct(self) -> Array:
        """``Σ_k s_k A_k ⊗ B_k`` ((m1·m2)×(n1·n2))."""
        return kron_sum(self.s[:, None, None] * self.A, self.B)


def kron_svd(W: Array, m1: int, n1: int, rank: int | None = None, *,
             backend: str = "auto") -> KronSVD:
    """Nearest sums of Kronecker products (Van Loan & Pitsianis).

    Parameters
    ----------
    W : ((m1·m2), (n1·n2)) array or torch tensor
        Real floating-point matrix.
    m1, n1 : int
        Shape of the left factors ``A_k``; they must divide the numbers of rows and columns of
        ``W`` (``m2 = d_out / m1``, ``n2 = d_in / n1``).
    rank : int, optional
        Number of Kronecker terms kept, ``1 <= rank <= min(m1·n1, m2·n2)``; ``None`` keeps all
        (exact).
    backend : {"auto", "numpy", "torch"}
        ``"auto"`` follows the input's kind.

    Returns
    -------
    KronSVD
        The terms in decreasing order of ``s``, as the caller's array kind and dtype.

    Raises
    ------
    ValueError
        If ``m1`` or ``n1`` does not divide the shape, ``rank`` is out of range, or ``W`` is
        empty or not finite.
    TypeError
        If ``W`` is not a real floating-point matrix or ``m1``, ``n1``, ``rank`` not integers.
    """
    W, _, back = _xp.prepare(W, "W", backend=backend, batch=False)
    d_out, d_in = W.shape
    m1, n1 = check_positive_int(m1, "m1"), check_positive_int(n1, "n1")
    check_divides(m1, "m1", d_out, "d_out")
    check_divides(n1, "n1", d_in, "d_in")
    m2, n2 = d_out // m1, d_in // n1
    W = _xp.linalg_float(W)
    R = _xp.permute(W.reshape(m1, m2, n1, n2), (0, 2, 1, 3)).reshape(m1 * n1, m2 * n2)
    U, s, Vt = _xp.svd(R)
    k = len(s) if rank is None else check_rank(rank, "rank", len(s),
                                               what="min(m1·n1, m2·n2)")
    return back(KronSVD(_xp.mT(U[:, :k]).reshape(k, m1, n1), Vt[:k].reshape(k, m2, n2), s[:k]))

r"""Classical factorizations rebuilt as meta-factorizations with orthonormal factors.

Each function chooses the column factor ``F``, the row factor ``H`` and the test matrices
``B``, ``D`` that turn :func:`~refimpl.meta.meta_factorize` into a known decomposition, and
returns it together with the :class:`~refimpl.meta.MetaFactorization` it came from:

=====================  =====================================  =================================
instance               F, H                                   B, D
=====================  =====================================  =================================
CPQR                   Q_k, P R_kᵀ (pivoted QR)               F, H
SVD                    orthonormal bases of range A, Aᵀ       F, H; then the SVD of the k×k G
UTV / ULV              orthonormal bases (CPQR)               F, H; G triangular by construction
=====================  =====================================  =================================

The interpolatory and sketched instances (generalized Nyström, CUR) and the Moore–Penrose
pseudoinverse are in :mod:`refimpl.meta.skeletons`.

All accept a NumPy array or a torch tensor (batched, any device); ``backend`` chooses the
pivoted-QR kernel (``"numba"`` by default for NumPy input) or moves the whole computation to
torch (``backend="torch"``), returning the input's kind.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from refimpl import _xp
from refimpl._typing import Array
from refimpl.linalg import cpqr
from refimpl.linalg.svd import TruncatedSVD
from refimpl.meta.core import MetaFactorization, instance_rank, meta_factorize

_PATHS = ("numpy", "numba", "torch")


def _row_factor(R, perm):
    """H = P Rᵀ (n×k) from A P = Q R, so that A ≈ Q Hᵀ."""
    return _xp.mT(_xp.unpermute_cols(R, perm))


class CPQRMeta(NamedTuple):
    """Column-pivoted QR ``A[:, perm] ≈ Q R`` and the meta-factorization it came from.

    Attributes
    ----------
    Q : (..., m, k) array or tensor
        Orthonormal columns.
    R : (..., k, n) array or tensor
        Upper trapezoidal, non-negative non-increasing diagonal.
    perm : (..., n) integer array or tensor
        The column pivots.
    meta : MetaFactorization
        ``F = Q``, ``H = P Rᵀ``, ``B = F``, ``D = H``; ``G`` is the identity to rounding.
    """

    Q: Any
    R: Any
    perm: Any
    meta: MetaFactorization


def cpqr_meta(A: Array, rank: int | None = None, *, backend: str = "auto") -> CPQRMeta:
    """Column-pivoted QR as a meta-factorization: ``F = Q_k``, ``H = P R_kᵀ``, ``B = F, D = H``.

    ``meta.reconstruct()`` equals ``Q_k R_k Pᵀ`` (``= Q_k Q_kᵀ A``), the rank-k pivoted-QR
    approximation, and ``meta.G`` is the identity up to rounding.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) tensor
        Real floating-point matrix (batches on the torch path).
    rank : int, optional
        Number of pivoted-QR steps ``k``, ``1 <= k <= min(m, n)``; default ``min(m, n)``.
    backend : {"auto", "numpy", "numba", "torch"}
        The pivoted-QR kernel (Numba by default for NumPy input) or, with ``"torch"``, the
        whole computation on torch.

    Returns
    -------
    CPQRMeta
        The input's array kind, device and dtype.

    Raises
    ------
    ValueError
        If ``rank`` is out of range or ``A`` is empty, not finite or of the wrong shape.
    TypeError
        If ``A`` is not a real floating-point array or ``rank`` not an integer.
    """
    A, path, back = _xp.prepare(A, backend=backend, paths=_PATHS, prefer="numba")
    k = instance_rank(rank, A)
    Q, R, perm = cpqr(A, k, backend=path)
    meta = meta_factorize(A, Q, _row_factor(R, perm))
    return back(CPQRMeta(Q, R, perm, meta))


class SVDMeta(NamedTuple):
    """An SVD ``A ≈ U diag(s) Vt`` and the meta-factorization it came from.

    :attr:`svd` gives the SVD part as the package's one SVD type,
    :class:`refimpl.linalg.TruncatedSVD`, for any function that consumes an SVD.

    Attributes
    ----------
    U : (..., m, k) array or tensor
        Orthonormal left singular vectors.
    s : (..., k) array or tensor
        Singular values, non-increasing.
    Vt : (..., k, n) array or tensor
        Orthonormal right singular vectors, as rows.
    meta : MetaFactorization
        ``F``, ``H`` the pivoted-QR bases of A and Aᵀ, ``G = Fᵀ A H`` the core whose SVD
        was taken.
    """

    U: Any
    s: Any
    Vt: Any
    meta: MetaFactorization

    @property
    def svd(self) -> TruncatedSVD:
        """``TruncatedSVD(U, s, Vt)`` (``tail=None``: the discarded values are not known)."""
        return TruncatedSVD(self.U, self.s, self.Vt)

    def reconstruct(self) -> Array:
        """``U diag(s) Vt``."""
        return self.svd.reconstruct()


def svd_meta(A: Array, rank: int | None = None, *, backend: str = "auto") -> SVDMeta:
    r"""SVD from meta-factorization: orthonormal bases, then the SVD of the small core.

    ``F`` is the ``Q`` of pivoted QR of A (k columns) and ``H`` that of Aᵀ; the core
    ``G = Fᵀ A H`` (k×k) is factorized as ``G = U_G Σ V_Gᵀ`` and ``U = F U_G``,
    ``V = H V_G``. With ``k = rank(A)`` this is A's exact SVD. With a smaller k it is the SVD
    of ``(F Fᵀ) A (H Hᵀ)``: close to, but not, the truncated SVD (see chapter 01).

    Parameters
    ----------
    A : (m, n) array or (..., m, n) tensor
        Real floating-point matrix (batches on the torch path).
    rank : int, optional
        Number of singular triplets ``k``, ``1 <= k <= min(m, n)``; default ``min(m, n)``.
    backend : {"auto", "numpy", "numba", "torch"}
        As in :func:`cpqr_meta`.

    Returns
    -------
    SVDMeta
        The input's array kind, device and dtype; ``.svd`` is its
        :class:`~refimpl.linalg.TruncatedSVD`. Raises as :func:`cpqr_meta`.
    """
    A, path, back = _xp.prepare(A, backend=backend, paths=_PATHS, prefer="numba")
    k = instance_rank(rank, A)
    F = cpqr(A, k, backend=path).Q
    H = cpqr(_xp.mT(A), k, backend=path).Q
    meta = meta_factorize(A, F, H)
    Ug, s, Vgt = _xp.svd(meta.G)
    return back(SVDMeta(F @ Ug, s, Vgt @ _xp.mT(H), meta))


class UTV(NamedTuple):
    """``A ≈ U T Vᵀ`` with orthonormal U, V and triangular T.

    Attributes
    ----------
    U : (..., m, k) array or tensor
        Orthonormal columns (the column factor ``F``).
    T : (..., k, k) array or tensor
        Upper triangular (:func:`utv`) or lower triangular (:func:`ulv`).
    V : (..., n, k) array or tensor
        Orthonormal columns (the row factor ``H``).
    meta : MetaFactorization
        The meta-factorization whose core ``G`` is ``T`` before the rounding outside the
        triangle was dropped.
    """

    U: Any
    T: Any
    V: Any
    meta: MetaFactorization

    def reconstruct(self) -> Array:
        """``U T Vᵀ``."""
        return self.U @ self.T @ _xp.mT(self.V)


def utv(A: Array, rank: int | None = None, *, backend: str = "auto") -> UTV:
    r"""Rank-revealing URV (upper-triangular middle factor) as a meta-factorization.

    ``H`` = the orthonormal ``Q`` of pivoted QR of Aᵀ (an approximate row basis); the
    column factor is then chosen from the QR of ``A H`` itself, ``A H = F T``, so that the
    core ``G = Fᵀ A H = T`` comes out upper triangular. ``|diag(T)|`` tracks the singular
    values of A as well as pivoted QR's ``|diag(R)|`` does.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) tensor
        Real floating-point matrix (batches on the torch path).
    rank : int, optional
        Size ``k`` of the triangular factor, ``1 <= k <= min(m, n)``; default ``min(m, n)``.
    backend : {"auto", "numpy", "numba", "torch"}
        As in :func:`cpqr_meta`.

    Returns
    -------
    UTV
        ``T`` upper triangular; the input's array kind, device and dtype. Raises as
        :func:`cpqr_meta`.
    """
    A, path, back = _xp.prepare(A, backend=backend, paths=_PATHS, prefer="numba")
    k = instance_rank(rank, A)
    H = cpqr(_xp.mT(A), k, backend=path).Q
    F, _ = _xp.qr(A @ H)
    meta = meta_factorize(A, F, H)
    # G = Fᵀ A H is triangular in exact arithmetic; drop the rounding below the diagonal.
    return back(UTV(F, _xp.triu(meta.G), H, meta))


def ulv(A: Array, rank: int | None = None, *, backend: str = "auto") -> UTV:
    r"""Rank-revealing ULV (lower-triangular middle factor) as a meta-factorization.

    ``F`` = the ``Q`` of pivoted QR of A; the row factor comes from the QR of
    ``Aᵀ F = H Lᵀ``, so that ``G = Fᵀ A H = L`` is lower triangular.

    Parameters
    ----------
    A, rank, backend
        As in :func:`utv`.

    Returns
    -------
    UTV
        ``T`` lower triangular (raises as :func:`utv`); the input's kind, device and dtype.
    """
    A, path, back = _xp.prepare(A, backend=backend, paths=_PATHS, prefer="numba")
    k = instance_rank(rank, A)
    F = cpqr(A, k, backend=path).Q
    H, _ = _xp.qr(_xp.mT(A) @ F)
    meta = meta_factorize(A, F, H)
    return back(UTV(F, _xp.mT(_xp.triu(_xp.mT(meta.G))), H, meta))

r"""The truncated SVD: one result type for every SVD in the package, and the exact routine.

Every function that produces an SVD (:func:`truncated_svd`, :func:`refimpl.linalg.jacobi_svd`,
:func:`refimpl.sketch.randomized_svd`, :func:`refimpl.sketch.update_truncated_svd`,
:func:`refimpl.meta.svd_meta`, ...) returns :class:`TruncatedSVD`, and every function that
consumes one accepts it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from refimpl import _xp
from refimpl._typing import Array
from refimpl._validation import check_rank


class TruncatedSVD(NamedTuple):
    r"""``A ≈ U diag(s) Vt``: ``U`` (..., m, k), ``s`` (..., k) non-increasing, ``Vt`` (..., k, n).

    Attributes
    ----------
    U : (..., m, k) array or tensor
        Left singular vectors (orthonormal columns).
    s : (..., k) array or tensor
        Singular values, non-increasing.
    Vt : (..., k, n) array or tensor
        Right singular vectors as rows.
    tail : (..., min(m, n) - k) array or tensor, or None
        The discarded singular values :math:`\sigma_{k+1}, \dots` when they are known (an
        exact SVD; empty for a full one) and ``None`` when they are not (a randomized or
        updated SVD).
    """

    U: Any
    s: Any
    Vt: Any
    tail: Any = None

    def reconstruct(self) -> Array:
        """``U diag(s) Vt``."""
        return (self.U * self.s[..., None, :]) @ self.Vt

    def error(self, ord: str | int = "fro") -> Array:
        """Eckart–Young–Mirsky: ``‖A − A_k‖_F = ‖tail‖_2`` and ``‖A − A_k‖_2 = tail[0]``.

        Parameters
        ----------
        ord : {"fro", 2}
            The norm.

        Returns
        -------
        float array or tensor
            The error of ``reconstruct()`` (one per matrix of a batch).

        Raises
        ------
        ValueError
            If ``tail`` is ``None`` or ``ord`` is neither ``"fro"`` nor 2.
        """
        if self.tail is None:
            raise ValueError("the discarded singular values are not known for this SVD "
                             "(randomized or updated); measure ‖A − reconstruct()‖ directly")
        if ord == "fro":
            return (self.tail ** 2).sum(-1) ** 0.5
        if ord == 2:
            return self.tail[..., 0] if self.tail.shape[-1] else self.tail.sum(-1)
        raise ValueError(f"ord must be 'fro' or 2; got {ord!r}")


def truncated_svd(A: Array, rank: int, *, backend: str = "auto") -> TruncatedSVD:
    r"""Best rank-``rank`` approximation in every unitarily invariant norm (Eckart–Young–Mirsky).

    .. math:: \min_{\operatorname{rank} B \le k} \|A - B\|_F^2 = \sum_{i>k} \sigma_i^2,
              \qquad \min_{\operatorname{rank} B \le k} \|A - B\|_2 = \sigma_{k+1}.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) torch tensor
        Real floating-point matrix (batches on the torch path).
    rank : int
        Target rank ``k``, ``1 <= k <= min(m, n)``.
    backend : {"auto", "numpy", "numba", "torch"}
        ``"numpy"``: LAPACK through :func:`numpy.linalg.svd`; ``"numba"``: this package's
        :func:`refimpl.linalg.jacobi_svd`; ``"torch"``: :func:`torch.linalg.svd`, batched,
        any device.

    Returns
    -------
    TruncatedSVD
        The leading ``rank`` singular triplets and, in ``tail``, the discarded singular
        values (so that ``error()`` is the approximation error without forming ``A_k``).

    Raises
    ------
    ValueError
        If ``rank`` is out of range or ``A`` is empty or not finite.
    TypeError
        If ``A`` is not a real floating-point array.
    """
    A, path, back = _xp.prepare(A, backend=backend, paths=("numpy", "numba", "torch"))
    k = check_rank(rank, "rank", min(A.shape[-2:]))
    if path == "numba":
        from refimpl.linalg.jacobi import jacobi_svd

        U, s, Vt, _ = jacobi_svd(A, backend="numba")
    else:
        U, s, Vt = _xp.svd(A)
    return back(TruncatedSVD(U[..., :, :k], s[..., :k], Vt[..., :k, :], s[..., k:]))

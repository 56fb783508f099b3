"""Tucker-2 (chapter 06's primitive): a stack of matrices sharing a column space and a row space.

A stack ``X`` (L×m×n) in Tucker-2 form is ``X_l = U G_l Vᵀ`` with ``U`` (m×r1) and ``V``
(n×r2) shared by every slice and one core ``G_l`` (r1×r2) per slice: the Tucker decomposition
with the first mode left uncompressed. LoTR's update of ``L`` layers is of this form,
``ΔW_l = s·B G_l A`` (:mod:`refimpl.lora.shared`). :func:`tucker2` fits it by the truncated
higher-order SVD: ``U`` and ``V`` are the leading left singular vectors of the mode-1 and mode-2
unfoldings, and ``G_l = Uᵀ X_l V``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from refimpl import _xp
from refimpl._typing import Array
from refimpl._validation import check_rank

__all__ = ["Tucker2", "tucker2"]


class Tucker2(NamedTuple):
    """``X_l ≈ U core[l] Vᵀ`` for every slice ``l``.

    Attributes
    ----------
    U : (m, r1) array or torch tensor
        The shared column factor.
    core : (L, r1, r2) array or torch tensor
        One core per slice.
    V : (n, r2) array or torch tensor
        The shared row factor.
    """

    U: Any
    core: Any
    V: Any

    def reconstruct(self) -> Array:
        """The stack ``U core[l] Vᵀ`` (L×m×n)."""
        return self.U @ self.core @ _xp.mT(self.V)


def tucker2(X: Array, rank: int | Sequence[int], *, backend: str = "auto") -> Tucker2:
    """Tucker-2 approximation of a stack of matrices by the truncated higher-order SVD.

    The error obeys ``‖X − X̂‖_F² ≤ Σ_{i>r1} σ_i(X₍₁₎)² + Σ_{j>r2} σ_j(X₍₂₎)²`` over the
    discarded singular values of the two unfoldings (so it is exact at full ranks and within
    a factor √2 of the best Tucker-2 approximation of those ranks).

    Parameters
    ----------
    X : (L, m, n) array or torch tensor
        Real floating-point stack.
    rank : int or (int, int)
        ``(r1, r2)``, the ranks of the shared column and row spaces (an int for both), with
        ``r1 <= min(m, L·n)`` and ``r2 <= min(n, L·m)``.
    backend : {"auto", "numpy", "torch"}
        ``"auto"`` follows the input's kind.

    Returns
    -------
    Tucker2
        ``U`` and ``V`` with orthonormal columns and the cores, as the caller's array kind
        and dtype.

    Raises
    ------
    ValueError
        If a rank is out of range or ``X`` is not 3-D, empty or not finite.
    TypeError
        If ``X`` is not a real floating-point array or a rank not an integer.
    """
    X, _, back = _xp.prepare(X, "X", backend=backend, ndim=3, batch=False)
    L, m, n = X.shape
    pair = isinstance(rank, tuple | list) and len(rank) == 2
    r1, r2 = rank if pair else (rank, rank)  # type: ignore[misc]  # pair: rank holds two
    r1 = check_rank(r1, "rank[0]" if pair else "rank", min(m, L * n), what="min(m, L·n)")
    r2 = check_rank(r2, "rank[1]" if pair else "rank", min(n, L * m), what="min(n, L·m)")
    X = _xp.linalg_float(X)
    U = _xp.svd(_xp.permute(X, (1, 0, 2)).reshape(m, L * n))[0][:, :r1]
    V = _xp.svd(_xp.permute(X, (2, 0, 1)).reshape(n, L * m))[0][:, :r2]
    return back(Tucker2(U, _xp.mT(U) @ X @ V, V))

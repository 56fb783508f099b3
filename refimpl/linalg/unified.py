r"""One pivoted loop for Jacobi, Gram–Schmidt and Cholesky (Detherage & Shah, 2025).

Our reading of "A Unified Perspective on Orthogonalization and Diagonalization"
(arXiv:2505.02023): every algorithm of the family keeps a matrix :math:`T` (start
:math:`T = I`) and repeats

1. pick a pivot set :math:`J \subset \{1..n\}` of size :math:`k`, *uniformly at random*;
2. find an invertible :math:`k\times k` matrix :math:`S` that diagonalizes the Gram block
   :math:`G = B_{JJ}`: :math:`S^\top G S` diagonal;
3. apply it to the columns in :math:`J`: :math:`T_{:,J} \leftarrow T_{:,J} S`.

In the *one-sided* form the columns of :math:`A` are transformed (:math:`A \leftarrow A S`
on :math:`J`, so :math:`B = A^\top A`); in the *two-sided* form a symmetric :math:`B` is
(:math:`B \leftarrow S^\top B S` on rows and columns :math:`J`). Two choices of :math:`S`
give the two families:

- :math:`S` orthogonal (the eigenvectors of :math:`G`; for :math:`k=2` the Jacobi rotation):
  one-sided Jacobi SVD, two-sided Jacobi eigenvalue algorithm;
- :math:`S` unit upper triangular (:math:`S = L^{-\top}` from :math:`G = L D L^\top`):
  one-sided this is Gram–Schmidt (later columns of :math:`J` lose their components along
  earlier ones) and :math:`T` stays upper triangular, so :math:`A = Q T^{-1}` is a QR
  factorization; two-sided it is symmetric Gaussian elimination, so
  :math:`B = T^{-\top} D T^{-1}` is a Cholesky factorization.

Progress is measured by the potential the paper analyses,

.. math:: \Gamma(B) = \operatorname{tr}(B \circ B^{-1}) - n
          = \sum_i B_{ii} (B^{-1})_{ii} - n \;\ge 0,

which is zero exactly when :math:`B` is diagonal and is invariant under diagonal scaling.
With uniform pivots the paper proves linear convergence of :math:`\mathbb{E}\,\Gamma` at a
rate that depends only on :math:`k` and :math:`n`, the same for every choice of :math:`S`.
We do not restate the paper's constant; the book measures the rates.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, overload

import numpy as np

from refimpl import _xp
from refimpl._typing import Array
from refimpl._validation import (
    check_choice,
    check_positive,
    check_positive_int,
    check_rank,
    check_square,
    check_symmetric,
)
from refimpl.linalg.jacobi import Eigh, _rotation
from refimpl.linalg.lu import Cholesky
from refimpl.linalg.qr import QR
from refimpl.linalg.svd import TruncatedSVD
from refimpl.results import Info
from refimpl.seeding import SeedLike, as_generator

KINDS = {"jacobi_svd": ("one", "orthogonal"), "gram_schmidt": ("one", "triangular"),
         "jacobi_eigh": ("two", "orthogonal"), "cholesky": ("two", "triangular")}


class UnifiedResult(NamedTuple):
    """What the unified pivoted loop computed.

    Attributes
    ----------
    factors : TruncatedSVD, QR, Eigh or Cholesky
        The factorization ``kind`` names.
    T : (n, n) array
        The accumulated transformation: orthogonal for the Jacobi kinds, unit upper
        triangular for Gram–Schmidt and Cholesky.
    """

    factors: Any
    T: Any


def potential(B: Array) -> float:
    """``Γ(B) = tr(B ∘ B⁻¹) − n`` for symmetric positive definite ``B``.

    Parameters
    ----------
    B : (n, n) array or torch tensor
        Symmetric positive definite matrix.

    Returns
    -------
    float
        ``Γ(B) >= 0``, zero exactly when ``B`` is diagonal, invariant under diagonal scaling.

    Raises
    ------
    TypeError, ValueError
        If ``B`` is not a finite, non-empty, square real floating-point matrix.
    """
    B, _, _ = _xp.prepare(B, "B", paths=("numpy",))
    check_square(B, "B")
    return _potential(B)


def _potential(B: Array) -> float:
    return float(np.sum(np.diagonal(B) * np.diagonal(np.linalg.inv(B))) - B.shape[0])


def _pivot_transform(G, rule):
    """``S`` with ``S.T @ G @ S`` diagonal: orthogonal (Jacobi) or unit upper triangular."""
    k = G.shape[0]
    if rule == "orthogonal":
        if k == 2:
            if G[0, 1] == 0.0:
                return np.eye(2, dtype=G.dtype)
            c, s = _rotation(G[0, 0], G[1, 1], G[0, 1])
            return np.array([[c, s], [-s, c]], dtype=G.dtype)
        return np.linalg.eigh(G)[1]
    # G = L D L^T with L unit lower (from the Cholesky factor C = L D^{1/2}); S = L^{-T}.
    C = np.linalg.cholesky(G)
    L = C / np.diagonal(C)
    return np.linalg.inv(L).T


@overload
def unified_pivoted(A: Array, kind: str = ..., *, block: int = ..., max_steps: int | None = ...,
                    tol: float | None = ..., seed: SeedLike = ..., track: bool = ...,
                    return_info: Literal[False] = ...) -> UnifiedResult: ...
@overload
def unified_pivoted(A: Array, kind: str = ..., *, block: int = ..., max_steps: int | None = ...,
                    tol: float | None = ..., seed: SeedLike = ..., track: bool = ...,
                    return_info: Literal[True]) -> tuple[UnifiedResult, Info]: ...
@overload
def unified_pivoted(A: Array, kind: str = ..., *, block: int = ..., max_steps: int | None = ...,
                    tol: float | None = ..., seed: SeedLike = ..., track: bool = ...,
                    return_info: bool) -> UnifiedResult | tuple[UnifiedResult, Info]: ...
def unified_pivoted(A: Array, kind: str = "jacobi_svd", *, block: int = 2,
                    max_steps: int | None = None, tol: float | None = None,
                    seed: SeedLike = None, track: bool = False,
                    return_info: bool = False) -> UnifiedResult | tuple[UnifiedResult, Info]:
    """Run the unified pivoted loop with uniformly random pivot sets.

    Parameters
    ----------
    A : (m, n) array or torch tensor
        One-sided kinds (``"jacobi_svd"``, ``"gram_schmidt"``): full column rank, ``m >= n``.
        Two-sided kinds (``"jacobi_eigh"``, ``"cholesky"``): symmetric (positive definite for
        ``"cholesky"``) ``n × n``. A tensor is computed on the CPU and the result returned
        as tensors on its device.
    kind : {"jacobi_svd", "gram_schmidt", "jacobi_eigh", "cholesky"}
        The factorization to compute.
    block : int
        Size ``k`` of the random pivot set, ``2 <= k <= n`` (2 gives the classical pairwise
        methods).
    max_steps : int, optional
        Upper bound on the steps, ``>= 1``; default ``200 n²``.
    tol : float, optional
        Stop when every pair's relative coupling ``|B_ij| / sqrt(B_ii B_jj)`` is below
        ``tol`` (checked every ``n(n−1)/2`` steps), ``>= 0`` (0 runs all ``max_steps``);
        default ``n ε``.
    seed : int or numpy.random.Generator
        Source of the pivot sets.
    track : bool
        Record ``Γ(B)`` (:func:`potential`) after every step in ``Info.errors`` (costs
        ``O(n³)`` per step; needs ``return_info=True``).
    return_info : bool
        Also return an :class:`refimpl.results.Info`: ``n_iter`` steps, whether the coupling
        test was met, and, with ``track=True``, ``errors`` = the potential ``Γ(B)`` after
        each step (otherwise ``()``).

    Returns
    -------
    UnifiedResult
        ``factors`` (:class:`~refimpl.linalg.TruncatedSVD`, :class:`~refimpl.linalg.QR`,
        :class:`~refimpl.linalg.Eigh` or :class:`~refimpl.linalg.Cholesky`) and ``T``.
    Info
        Only with ``return_info=True``.

    Raises
    ------
    TypeError
        If ``A`` is not a real floating-point array, ``block`` or ``max_steps`` not an
        integer, or ``seed`` not a seed.
    ValueError
        If ``kind`` is unknown; ``A`` is empty, not finite, or does not meet ``kind``'s
        requirement (shape, full column rank, symmetry, positive definiteness); ``block``
        is outside ``[2, n]``; ``max_steps < 1`` or ``tol < 0``; or ``track=True`` without
        ``return_info=True``.
    """
    X, _, back = _xp.prepare(A, paths=("numpy",))
    side, rule = KINDS[check_choice(kind, "kind", tuple(KINDS))]
    X = np.array(X, dtype=np.result_type(X.dtype, np.float32), copy=True)
    m, n = X.shape
    if side == "two":
        check_symmetric(X, "A")
        X = (X + X.T) / 2
    elif m < n:
        raise ValueError(f"kind={kind!r} needs m >= n (full column rank); got shape {(m, n)}")
    if side == "one" and np.linalg.matrix_rank(X) < n:
        raise ValueError(f"kind={kind!r} needs A of full column rank {n}; got rank "
                         f"{np.linalg.matrix_rank(X)}")
    if kind == "cholesky" and np.linalg.eigvalsh(X)[0] <= 0:
        raise ValueError("kind='cholesky' needs a positive definite A; its smallest "
                         f"eigenvalue is {np.linalg.eigvalsh(X)[0]:.3e}")
    block = check_rank(block, "block", n, what="n")
    if block < 2:
        raise ValueError(f"block must be at least 2 (a pivot set is a pair or more); got {block}")
    if track and not return_info:
        raise ValueError("track=True records Γ in Info.errors: pass return_info=True too")
    rng = as_generator(seed)
    tol = n * float(np.finfo(X.dtype).eps) if tol is None else check_positive(
        tol, "tol", allow_zero=True)
    max_steps = 200 * n * n if max_steps is None else check_positive_int(max_steps,
                                                                         "max_steps")
    check_every = max(n * (n - 1) // 2, 1)
    T = np.eye(n, dtype=X.dtype)
    history = []
    steps, converged = 0, False
    for steps in range(1, max_steps + 1):
        J = np.sort(rng.choice(n, size=block, replace=False))
        G = X[:, J].T @ X[:, J] if side == "one" else X[np.ix_(J, J)]
        S = _pivot_transform(G, rule)
        X[:, J] = X[:, J] @ S
        if side == "two":
            X[J, :] = S.T @ X[J, :]
        T[:, J] = T[:, J] @ S
        if track:
            history.append(_potential(_gram(X, side)))
        if steps % check_every == 0 and _coupling(_gram(X, side)) <= tol:
            converged = True
            break
    result = back(UnifiedResult(_specialize(kind, X, T), T))
    return (result, Info(steps, converged, tuple(history))) if return_info else result


def _gram(X, side):
    return X.T @ X if side == "one" else X


def _coupling(B):
    d = np.sqrt(np.abs(np.diagonal(B)))
    d = np.where(d > 0, d, 1.0)
    C = np.abs(B) / np.outer(d, d)
    np.fill_diagonal(C, 0.0)
    return float(C.max())


def _specialize(kind, X, T):
    if kind == "jacobi_svd":  # A T = X with orthogonal columns, T orthogonal
        s = np.linalg.norm(X, axis=0)
        order = np.argsort(-s, kind="stable")
        return TruncatedSVD(X[:, order] / s[order], s[order], T[:, order].T, s[len(s):])
    if kind == "gram_schmidt":  # A = X T^{-1}, T unit upper triangular
        d = np.linalg.norm(X, axis=0)
        R = d[:, None] * np.linalg.inv(T)
        return QR(X / d, np.triu(R))
    if kind == "jacobi_eigh":  # T^T B T = diag(w), T orthogonal
        w = np.diagonal(X).copy()
        order = np.argsort(w, kind="stable")
        return Eigh(w[order], T[:, order])
    # cholesky: T^T B T = D, B = T^{-T} D T^{-1}, L = T^{-T} D^{1/2}
    L = np.linalg.inv(T).T * np.sqrt(np.diagonal(X))
    return Cholesky(np.tril(L))

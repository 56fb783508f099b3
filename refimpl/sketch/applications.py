r"""Sketching applied: coordinated sampling for ``AᵀB``, CUR-based nearest neighbours for an
expensive scorer, and updating a truncated SVD when rows or columns arrive.

**Coordinated sampling** (Daliri et al., 2025). ``A`` (n×d) and
``B`` (n×m) are sketched *independently*, sharing only a seed: a uniform hash
:math:`h(i)\in(0,1)` per row index. Threshold sampling keeps row ``i`` of ``A`` when
:math:`h(i) \le p_i = \min(1, s\,\|a_i\|^2/\|A\|_F^2)` (expected ``≤ s`` rows), priority
sampling keeps the ``s`` rows of smallest :math:`h(i)/w_i` and sets
:math:`p_i = \min(1, w_i \tau)` with :math:`\tau` the ``(s+1)``-th smallest rank. Because the
hash is shared, row ``i`` is in both sketches with probability :math:`\min(p^A_i, p^B_i)`, and

.. math:: \widehat{A^\top B} = \sum_{i \in S_A\cap S_B} \frac{a_i b_i^\top}{\min(p^A_i, p^B_i)}

is unbiased. A sketch stores only the sampled rows, so for rows with ``≤ t`` non-zeros its size
is ``O(t s)`` numbers, against ``s d`` for a linear sketch ``S A`` of the same ``s``.

**CUR for cross-encoder kNN** (Yadav et al., 2022). Exact scores of
``q`` anchor queries against all ``N`` items form ``R`` (q×N). A test query is scored exactly
on ``|I|`` anchor items only; its full row is approximated by
:math:`\hat s = s_I\, R[:, I]^+ R` (a CUR whose middle factor is :math:`R[:, I]^+`), the top
candidates under :math:`\hat s` are re-scored exactly, and the best ``k`` are returned.

**Truncated SVD update** (Zha & Simon, 1999; the sparse setting of Deng et al., 2024). For
:math:`A \approx U\Sigma V^\top` and new rows ``E``, write
:math:`(I - VV^\top)E^\top = Q_E R_E`; then

.. math:: \begin{bmatrix} U\Sigma V^\top \\ E\end{bmatrix}
   = \begin{bmatrix} U & 0\\ 0 & I\end{bmatrix}
     \begin{bmatrix} \Sigma & 0 \\ E V & R_E^\top\end{bmatrix}
     \begin{bmatrix} V & Q_E\end{bmatrix}^\top ,

and the SVD of the small middle matrix gives the updated rank-k factors (Rayleigh–Ritz on the
augmented subspaces). ``residual_rank=l`` replaces ``Q_E`` by an ``l``-column randomized range
finder of the residual, which keeps the cost linear in the number of new rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from refimpl._typing import ArrayLike, SparseMatrix, SVDFactors
from refimpl._validation import (
    check_array,
    check_choice,
    check_nonnegative_int,
    check_rank,
    check_rows,
)
from refimpl.linalg.svd import TruncatedSVD
from refimpl.seeding import SeedLike, as_generator

_SAMPLING = ("threshold", "priority")

# ----------------------------------------------------------------------------------------------
# Coordinated sampling


class CoordinatedSketch(NamedTuple):
    """Sampled rows of one matrix: ``rows`` (r×d) at indices ``index`` kept with ``prob``.

    Attributes
    ----------
    index : (r,) integer numpy.ndarray
        Indices of the kept rows, increasing.
    rows : (r, d) numpy.ndarray
        The kept rows (dense).
    prob : (r,) numpy.ndarray
        The probability with which each was kept.
    n : int
        Rows of the sketched matrix.
    """

    index: Any
    rows: Any
    prob: Any
    n: int

    @property
    def stored(self) -> int:
        """Numbers kept: the non-zeros of the sampled rows plus one index and one probability."""
        return int(np.count_nonzero(self.rows)) + 2 * len(self.index)


def _dense_rows(A, name):
    import scipy.sparse as sp

    if sp.issparse(A):
        A = sp.csr_array(A)
        if not np.issubdtype(A.dtype, np.floating):
            raise TypeError(f"{name} must have a floating-point dtype; got {A.dtype}")
        if not np.isfinite(A.data).all():
            raise ValueError(f"{name} contains NaN or Inf")
        return A
    return check_array(A, name, ndim=2, allow_torch=False)


def coordinated_sketch(A: ArrayLike | SparseMatrix, size: int, *, seed: int,
                       method: str = "priority") -> CoordinatedSketch:
    """Sample rows of ``A`` (dense or SciPy sparse, n×d) with the hash shared through ``seed``.

    Weights are the squared row norms.

    Parameters
    ----------
    A : (n, d) numpy.ndarray or SciPy sparse matrix
        Real floating-point rows.
    size : int
        Target sample size, ``1 <= size <= n``.
    seed : int
        Seeds the shared hash ``h``; it must be an int (``>= 0``), the same for the two
        matrices of a product, which is what coordinates their samples.
    method : {"threshold", "priority"}
        ``"threshold"`` keeps about ``size`` rows, ``"priority"`` exactly ``size`` (or all
        non-zero rows when there are fewer).

    Returns
    -------
    CoordinatedSketch

    Raises
    ------
    ValueError
        If ``size`` or ``method`` is out of range, ``A`` is all zeros, empty or not finite.
    TypeError
        If ``A`` is not a real floating-point matrix or ``seed`` not an int.
    """
    A = _dense_rows(A, "A")
    n = A.shape[0]
    size = check_rank(size, "size", n, what="the number of rows")
    seed = check_nonnegative_int(seed, "seed")
    check_choice(method, "method", _SAMPLING)
    h = as_generator(seed).random(n)
    w = np.asarray(A.multiply(A).sum(axis=1)).ravel() if hasattr(A, "multiply") \
        else np.einsum("ij,ij->i", A, A)
    total = w.sum()
    if total == 0:
        raise ValueError("A must not be all zeros")
    if method == "threshold":
        p = np.minimum(1.0, size * w / total)
        keep = np.flatnonzero(h < p)
    else:
        nz = np.flatnonzero(w > 0)
        rank = h[nz] / w[nz]
        if nz.size <= size:
            keep, p = nz, np.where(w > 0, 1.0, 0.0)
        else:
            order = np.argpartition(rank, size)
            tau = rank[order[size]]
            keep = np.sort(nz[order[:size]])
            p = np.minimum(1.0, w * tau)
    rows = A[keep].toarray() if hasattr(A, "toarray") else A[keep]
    return CoordinatedSketch(keep, rows, p[keep], n)


def coordinated_sample_product(A: ArrayLike | SparseMatrix, B: ArrayLike | SparseMatrix,
                               size: int, *, seed: int,
                               method: str = "priority") -> tuple[np.ndarray, int]:
    """Estimate ``Aᵀ B`` from coordinated samples of the rows of ``A`` and ``B``.

    Each matrix is sketched on its own by :func:`coordinated_sketch` with the shared
    ``seed``; the estimate uses only the two sketches.

    Parameters
    ----------
    A : (n, d) numpy.ndarray or SciPy sparse matrix
        Left factor of the product.
    B : (n, p) numpy.ndarray or SciPy sparse matrix
        Right factor (the same number of rows).
    size, seed, method
        As in :func:`coordinated_sketch`, for both.

    Returns
    -------
    tuple
        ``(estimate, stored)``: the unbiased (d×p) estimate of ``AᵀB`` and the numbers
        kept by the two sketches together.

    Raises
    ------
    ValueError, TypeError
        As :func:`coordinated_sketch`, or if ``A`` and ``B`` have different numbers of rows.
    """
    A = _dense_rows(A, "A")
    B = _dense_rows(B, "B")
    check_rows("A", A, "B", B, axis_a=0, axis_b=0)
    SA = coordinated_sketch(A, size, seed=seed, method=method)
    SB = coordinated_sketch(B, size, seed=seed, method=method)
    return estimate_product(SA, SB), SA.stored + SB.stored


def estimate_product(SA: CoordinatedSketch, SB: CoordinatedSketch) -> np.ndarray:
    """The unbiased estimate of ``AᵀB`` from two coordinated sketches.

    Parameters
    ----------
    SA, SB : CoordinatedSketch
        Sketches of ``A`` and ``B`` made with the same ``seed``.

    Returns
    -------
    numpy.ndarray
        The estimate (d×p).

    Raises
    ------
    ValueError
        If the sketches come from matrices with different numbers of rows.
    """
    if SA.n != SB.n:
        raise ValueError(f"the sketches come from matrices with {SA.n} and {SB.n} rows")
    _, ia, ib = np.intersect1d(SA.index, SB.index, return_indices=True)
    scale = 1.0 / np.minimum(SA.prob[ia], SB.prob[ib])
    return (SA.rows[ia] * scale[:, None]).T @ SB.rows[ib]


# ----------------------------------------------------------------------------------------------
# CUR-based kNN for an expensive scorer


class CURkNN(NamedTuple):
    """Top-``k`` items by exact score, the CUR approximation of the full row and the call count.

    Attributes
    ----------
    indices : (k,) integer numpy.ndarray
        The neighbours found, best first.
    scores : (k,) numpy.ndarray
        Their exact scores.
    approx_scores : (N,) numpy.ndarray
        The CUR approximation of the query's scores against every item.
    n_calls : int
        Exact scorer calls made.
    """

    indices: Any
    scores: Any
    approx_scores: Any
    n_calls: int


def cur_knn(score: Callable[[np.ndarray], np.ndarray], anchor_scores: ArrayLike, k: int, *,
            budget: int, n_anchor_items: int, anchor_items: ArrayLike | None = None,
            seed: SeedLike = None) -> CURkNN:
    """Approximate k-nearest-neighbour search for one query under an expensive scorer.

    Parameters
    ----------
    score : callable
        ``score(items)`` returns the exact scores of the query against the item indices
        ``items`` (an int array); each item scored counts as one call.
    anchor_scores : (q, N) array
        Exact scores of ``q`` anchor queries against all ``N`` items (computed offline).
    k : int
        Number of neighbours returned.
    budget : int
        Total exact-scorer calls for this query (anchor items plus re-ranked candidates).
    n_anchor_items : int
        Items scored first to place the query in the span of the anchor rows. Keep it well
        below ``q``: near ``q`` the pseudoinverse of ``R[:, I]`` amplifies the part of the
        query's row outside that span.
    anchor_items : int array, optional
        Which items; by default ``n_anchor_items`` drawn uniformly without replacement.
    seed : int or numpy.random.Generator, optional
        Draws the anchor items.

    Returns
    -------
    CURkNN

    Raises
    ------
    ValueError
        If a count is out of range (``k <= budget <= N``, ``n_anchor_items <= budget``) or
        ``anchor_items`` are not distinct in-range indices.
    """
    R = check_array(anchor_scores, "anchor_scores", ndim=2, allow_torch=False)
    N = R.shape[1]
    n_anchor_items = check_rank(n_anchor_items, "n_anchor_items", N, what="the number of items")
    budget = check_rank(budget, "budget", N, what="the number of items")
    k = check_rank(k, "k", budget, what="budget")
    if budget < n_anchor_items:
        raise ValueError(f"budget={budget} must cover n_anchor_items={n_anchor_items}")
    if anchor_items is None:
        anchor_items = as_generator(seed).choice(N, size=n_anchor_items, replace=False)
    anchor_items = np.asarray(anchor_items)
    if anchor_items.shape != (n_anchor_items,) or len(set(anchor_items.tolist())) \
            != n_anchor_items or anchor_items.min() < 0 or anchor_items.max() >= N:
        raise ValueError(f"anchor_items must be {n_anchor_items} distinct indices in 0..{N - 1}")
    s_anchor = np.asarray(score(anchor_items), dtype=np.float64)
    approx = (s_anchor @ np.linalg.pinv(R[:, anchor_items])) @ R
    masked = approx.copy()
    masked[anchor_items] = -np.inf
    n_more = budget - n_anchor_items
    cand = np.argpartition(-masked, n_more)[:n_more] if n_more < N - n_anchor_items \
        else np.flatnonzero(np.isfinite(masked))
    s_cand = np.asarray(score(cand), dtype=np.float64) if n_more else np.empty(0)
    items = np.concatenate((anchor_items, cand))
    exact = np.concatenate((s_anchor, s_cand))
    top = np.argsort(-exact, kind="stable")[:k]
    return CURkNN(items[top], exact[top], approx, int(items.size))


# ----------------------------------------------------------------------------------------------
# Updating a truncated SVD


def update_truncated_svd(svd: SVDFactors, E: ArrayLike | SparseMatrix, *, axis: int = 0,
                         rank: int | None = None, residual_rank: int | None = None,
                         seed: SeedLike = None) -> TruncatedSVD:
    """Rank-``rank`` SVD of ``A`` with rows (``axis=0``) or columns (``axis=1``) ``E`` appended.

    Parameters
    ----------
    svd : TruncatedSVD or any result with ``U``, ``s``, ``Vt``
        ``U`` (m×r), ``s`` (r,), ``Vt`` (r×n) approximating ``A`` (NumPy arrays): the result
        of :func:`refimpl.linalg.truncated_svd`, :func:`refimpl.linalg.jacobi_svd`,
        :func:`~refimpl.sketch.randomized_svd`, an earlier update, or
        :func:`refimpl.meta.svd_meta` (or its ``.svd``). A ``tail`` is ignored.
    E : numpy.ndarray or SciPy sparse matrix
        New rows (p×n) or new columns (m×p).
    axis : {0, 1}
        Append rows (0) or columns (1).
    rank : int, optional
        Rank kept after the update, ``1 <= rank <= r + p``; default ``r``.
    residual_rank : int, optional
        If given, the part of ``E`` outside the current subspace is compressed to this many
        directions by a randomized range finder (cost linear in ``p``); default exact.
    seed : int or numpy.random.Generator, optional
        For ``residual_rank``.

    Returns
    -------
    refimpl.linalg.TruncatedSVD
        The updated factors (``tail`` is ``None``: the discarded values of the updated
        matrix are not known).

    Raises
    ------
    TypeError
        If ``svd`` has no ``U``, ``s``, ``Vt``, or an input is not a real floating-point
        NumPy array.
    ValueError
        If the factors disagree, ``E`` does not fit, an option is out of range, or an input
        is empty or not finite.
    """
    import scipy.linalg as sla
    import scipy.sparse as sp

    try:
        U, s, Vt = svd.U, svd.s, svd.Vt
    except AttributeError:
        raise TypeError("svd must be a TruncatedSVD (or any result with U, s, Vt); got "
                        f"{type(svd).__name__}") from None
    U = check_array(U, "svd.U", allow_torch=False)
    s = check_array(s, "svd.s", ndim=1, allow_torch=False)
    Vt = check_array(Vt, "svd.Vt", allow_torch=False)
    r = s.shape[0]
    if U.shape[1] != r or Vt.shape[0] != r:
        raise ValueError(f"svd factors disagree: U {U.shape}, s {s.shape}, Vt {Vt.shape}")
    check_choice(axis, "axis", (0, 1))
    E = _dense_rows(E, "E")
    if axis == 1:
        out = update_truncated_svd(TruncatedSVD(Vt.T, s, U.T), E.T, rank=rank,
                                   residual_rank=residual_rank, seed=seed)
        return TruncatedSVD(out.Vt.T, out.s, out.U.T)
    if E.shape[1] != Vt.shape[1]:
        raise ValueError(f"E must have {Vt.shape[1]} columns to append as rows; got shape "
                         f"{E.shape}")
    p = E.shape[0]
    k = r if rank is None else check_rank(rank, "rank", r + p, what="rank + new rows")
    V = Vt.T
    EV = np.asarray(E @ V)                                     # p×r
    if residual_rank is None:
        Et = E.T.toarray() if sp.issparse(E) else E.T
        Qe, Re = _qr(Et - V @ EV.T)                            # n×p, p×p
    else:
        l = check_rank(residual_rank, "residual_rank", min(p, E.shape[1]))
        Om = as_generator(seed).standard_normal((p, l))
        Y = np.asarray(E.T @ Om) - V @ (EV.T @ Om)              # n×l
        Qe = _qr(Y - V @ (V.T @ Y))[0]
        Re = np.asarray(E @ Qe).T - (Qe.T @ V) @ EV.T          # l×p
    l = Qe.shape[1]
    M = np.zeros((r + p, r + l))
    M[:r, :r] = np.diag(s)
    M[r:, :r] = EV
    M[r:, r:] = Re.T
    F, theta, Gt = sla.svd(M, full_matrices=False, overwrite_a=True, check_finite=False)
    k = min(k, theta.size)
    U_new = np.vstack((U @ F[:r, :k], F[r:, :k]))
    V_new = V @ Gt[:k, :r].T + Qe @ Gt[:k, r:].T
    return TruncatedSVD(U_new, theta[:k], V_new.T)


def _qr(Y):
    """Thin QR through LAPACK on a Fortran-ordered copy (which LAPACK factors in place)."""
    import scipy.linalg as sla

    return sla.qr(np.asfortranarray(Y), mode="economic", overwrite_a=True, check_finite=False)

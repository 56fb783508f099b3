r"""One-sided matrix completion: the right singular subspace from two observations per row.

The setting (Cao, Liang & Valiant, 2023): :math:`X` is :math:`m \times n` of rank
:math:`r` with :math:`m \gg n`, and each row reveals only a few entries, perhaps only two —
fewer than the rank, so no row can be completed and the left factor is out of reach. The
right singular vectors can still be recovered, through the Gram matrix
:math:`X^\top X = \sum_i x_i x_i^\top`: its entry :math:`(j, k)` is a sum over rows of
:math:`x_{ij} x_{ik}`, and every row in which both :math:`j` and :math:`k` are observed
contributes one unbiased sample of that product. Their algorithm imputes the missing entries
of :math:`X^\top X` rather than of :math:`X`, and they prove that with two observations per
row :math:`\Omega(r^2 n \log n)` rows suffice to recover :math:`X^\top X`.

1. **Estimate the Gram matrix** (:func:`onesided_gram`). With
   :math:`c_{jk} = \#\{i : j, k \in \Omega_i\}` (:math:`c_{jj}` the rows observing
   :math:`j`) and :math:`S_{jk} = \sum_{i: j,k \in \Omega_i} x_{ij}x_{ik}`,

   .. math:: \hat G_{jk} = \frac{m}{c_{jk}}\, S_{jk} \quad (c_{jk} > 0),

   :math:`m` times the mean product over the rows that saw the pair (normalising each entry
   by its observed frequency, the estimator Zhang, Zhang, Nguyen & Lan (2026) analyse for
   this problem): unbiased given :math:`c_{jk} > 0` whenever the observed positions are drawn
   independently of the values and identically for every row (in particular for exactly two
   uniformly random entries per row). With a known Bernoulli
   observation probability :math:`p` per entry, the rescaling by the sampling probability
   :math:`\hat G_{jk} = S_{jk}/p^2`, :math:`\hat G_{jj} = S_{jj}/p` is available instead.
   Pairs never observed together (:math:`c_{jk} = 0`) are missing.
2. **Complete it at low rank** (:func:`onesided_completion`): fit :math:`G \approx YY^\top`,
   :math:`Y \in \mathbb{R}^{n\times r}`, on the estimated entries,

   .. math:: \min_Y \; \tfrac12 \sum_{c_{jk} > 0} w_{jk} \big((YY^\top)_{jk} - \hat G_{jk}\big)^2,
             \qquad \nabla = 2\,[W \odot (YY^\top - \hat G)]\, Y,

   with uniform weights (the plain least-squares fit) or :math:`w_{jk} \propto c_{jk}` (each
   entry weighted by the rows behind it, which helps while many pairs are seen only a few
   times). The objective is smooth; here L-BFGS minimises it from the spectral start
   :math:`Y_0 = V_r \Lambda_r^{1/2}` (top eigenpairs of the zero-filled :math:`\hat G`),
   where the paper uses first-order descent. The right singular subspace estimate is the
   column space of :math:`Y`, and :math:`YY^\top` estimates :math:`X^\top X`.

The naive alternative — right singular vectors of the zero-filled :math:`X` — fails here: with
two entries per row the zero-filled Gram has diagonal :math:`\approx \tfrac{2}{n} G_{jj}` but
off-diagonal :math:`\approx \tfrac{2}{n(n-1)} G_{jk}`, so it is dominated by its diagonal.
:func:`subspace_distance` measures the error :math:`\|\sin\Theta\|_2 =
\|(I - VV^\top) V_\star\|_2`.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, overload

import numpy as np

from refimpl._typing import ArrayLike, NDArray, SeedLike
from refimpl._validation import (
    check_array,
    check_choice,
    check_fraction,
    check_nonnegative_int,
    check_positive,
    check_rank,
)
from refimpl.completion.model import Interactions, as_interactions
from refimpl.results import Info
from refimpl.seeding import as_generator

__all__ = ["OneSided", "observe_per_row", "onesided_completion", "onesided_gram",
           "subspace_distance"]

_WEIGHTS = ("uniform", "counts")


class OneSided(NamedTuple):
    r"""The result of one-sided completion: the right subspace and the completed Gram.

    Attributes
    ----------
    V : (n, r) float64 array
        Orthonormal estimate of the right singular vectors of :math:`X`, ordered by
        decreasing ``s``.
    s : (r,) float64 array
        Eigenvalues of the completed Gram :math:`YY^\top` (estimates of the squared singular
        values of :math:`X`).
    Y : (n, r) float64 array
        The fitted factor, :math:`YY^\top \approx X^\top X`.
    """

    V: NDArray[np.float64]
    s: NDArray[np.float64]
    Y: NDArray[np.float64]

    @property
    def gram(self) -> NDArray[np.float64]:
        r"""The completed Gram matrix :math:`YY^\top`, the estimate of :math:`X^\top X`.

        Returns
        -------
        (n, n) float64 array
        """
        return self.Y @ self.Y.T


def observe_per_row(X: ArrayLike, per_row: int = 2, *, seed: SeedLike = None) -> Interactions:
    """Reveal ``per_row`` uniformly random distinct entries of every row of a dense matrix.

    Parameters
    ----------
    X : (m, n) array
        The full matrix.
    per_row : int
        Entries revealed per row, ``1 <= per_row <= n``.
    seed : int, numpy.random.Generator or None
        Draws the positions.

    Returns
    -------
    Interactions
        ``m · per_row`` observations, row by row.

    Raises
    ------
    ValueError
        If ``X`` is not a finite matrix or ``per_row`` exceeds its columns.
    """
    X = np.asarray(check_array(X, "X", allow_torch=False), dtype=np.float64)
    m, n = X.shape
    per_row = check_rank(per_row, "per_row", n, what="n")
    cols = np.argsort(as_generator(seed).random((m, n)), axis=1)[:, :per_row]
    rows = np.repeat(np.arange(m, dtype=np.int64), per_row)
    cols = cols.reshape(-1).astype(np.int64)
    return Interactions(rows, cols, X[rows, cols], m, n)


def onesided_gram(R: Any, *, p: float | None = None
                  ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    r"""Estimate :math:`X^\top X` from the observed entries of :math:`X`.

    See :mod:`refimpl.completion.onesided`, step 1 (Cao, Liang & Valiant, 2023).

    Parameters
    ----------
    R : Interactions or SciPy sparse matrix
        The observed entries of :math:`X` (rows × columns); duplicates are summed.
    p : float, optional
        Known probability that an entry is observed (independent Bernoulli sampling): then
        :math:`\hat G_{jk} = S_{jk}/p^2` off the diagonal and :math:`S_{jj}/p` on it. By
        default each entry is normalised by how often it was observed,
        :math:`\hat G_{jk} = m S_{jk} / c_{jk}`, which needs no :math:`p` and is unbiased
        for any row-uniform sampling (two entries per row included).

    Returns
    -------
    G_hat : (n, n) float64 array
        The estimate; 0 where ``counts`` is 0.
    counts : (n, n) int64 array
        :math:`c_{jk}`: rows in which both ``j`` and ``k`` are observed (the diagonal: rows
        in which ``j`` is).

    Raises
    ------
    ValueError
        If ``R`` is invalid or ``p`` is not in ``(0, 1]``.
    """
    import scipy.sparse

    R = as_interactions(R)
    if p is not None:
        p = check_fraction(p, "p")
    X = R.csr()
    X.sum_duplicates()
    B = scipy.sparse.csr_matrix((np.ones_like(X.data), X.indices, X.indptr), shape=X.shape)
    S = np.asarray((X.T @ X).toarray(), dtype=np.float64)
    counts = np.rint(np.asarray((B.T @ B).toarray())).astype(np.int64)
    if p is None:
        G = np.zeros_like(S)
        seen = counts > 0
        G[seen] = R.n_users * S[seen] / counts[seen]
    else:
        G = S / p**2
        np.fill_diagonal(G, np.diag(S) / p)
    return G, counts


def subspace_distance(V: ArrayLike, V_true: ArrayLike) -> float:
    r"""The largest principal-angle sine :math:`\|(I - QQ^\top) Q_\star\|_2`.

    Both arguments are orthonormalised first (QR), so any bases of the two subspaces will do.

    Parameters
    ----------
    V : (n, r) array
        A basis of the estimated subspace.
    V_true : (n, s) array
        A basis of the true subspace.

    Returns
    -------
    float
        In ``[0, 1]``; 0 when the true subspace lies in the estimated one.

    Raises
    ------
    ValueError
        If the row counts differ.
    """
    V = np.asarray(check_array(V, "V", allow_torch=False), dtype=np.float64)
    W = np.asarray(check_array(V_true, "V_true", allow_torch=False), dtype=np.float64)
    if V.shape[0] != W.shape[0]:
        raise ValueError(f"V and V_true must have equal rows; got {V.shape[0]} and {W.shape[0]}")
    Q = np.linalg.qr(V)[0]
    Qs = np.linalg.qr(W)[0]
    return min(1.0, float(np.linalg.norm(Qs - Q @ (Q.T @ Qs), 2)))


def _objective(y: NDArray[np.float64], G: NDArray[np.float64], Wt: NDArray[np.float64],
               n: int, r: int) -> tuple[float, NDArray[np.float64]]:
    """``½ Σ w (YYᵀ − G)²`` over the weighted entries and its gradient ``2 E Y``."""
    Y = y.reshape(n, r)
    E = Wt * (Y @ Y.T - G)
    return 0.5 * float(np.sum(E * (Y @ Y.T - G))), (2.0 * E @ Y).reshape(-1)


@overload
def onesided_completion(R: Any, rank: int, *, p: float | None = ..., weights: str = ...,
                        max_iter: int = ..., tol: float = ...,
                        return_info: Literal[False] = ...) -> OneSided: ...
@overload
def onesided_completion(R: Any, rank: int, *, p: float | None = ..., weights: str = ...,
                        max_iter: int = ..., tol: float = ...,
                        return_info: Literal[True]) -> tuple[OneSided, Info]: ...
@overload
def onesided_completion(R: Any, rank: int, *, p: float | None = ..., weights: str = ...,
                        max_iter: int = ..., tol: float = ...,
                        return_info: bool) -> OneSided | tuple[OneSided, Info]: ...
def onesided_completion(R: Any, rank: int, *, p: float | None = None,
                        weights: str = "uniform", max_iter: int = 500, tol: float = 1e-10,
                        return_info: bool = False) -> OneSided | tuple[OneSided, Info]:
    r"""Recover the right singular subspace of :math:`X` by completing its Gram matrix.

    Estimates :math:`X^\top X` with :func:`onesided_gram`, then fits
    :math:`YY^\top` of rank ``rank`` to the entries observed at least once (L-BFGS from the
    spectral start; see :mod:`refimpl.completion.onesided`; Cao, Liang & Valiant, 2023).

    Parameters
    ----------
    R : Interactions or SciPy sparse matrix
        The observed entries of :math:`X` (rows × columns).
    rank : int
        The rank :math:`r`, ``1 <= rank <= n``.
    p : float, optional
        Known per-entry observation probability, passed to :func:`onesided_gram`.
    weights : {"uniform", "counts"}
        Weights of the fitted entries: all equal, or proportional to the number of rows
        behind each estimate.
    max_iter : int
        L-BFGS iteration limit.
    tol : float
        L-BFGS stops once the relative decrease of the objective falls below this
        (``ftol``).
    return_info : bool
        Also return an :class:`~refimpl.results.Info` whose ``errors`` are the objective
        after each L-BFGS iteration, divided by :math:`\tfrac12\sum w \hat G^2`.

    Returns
    -------
    OneSided
        With ``return_info``, ``(result, info)``.

    Raises
    ------
    ValueError
        If ``R`` is invalid or a parameter is out of range.
    """
    from scipy.optimize import minimize

    R = as_interactions(R)
    n = R.n_items
    rank = check_rank(rank, "rank", n, what="the number of columns")
    weights = check_choice(weights, "weights", _WEIGHTS)
    max_iter = check_nonnegative_int(max_iter, "max_iter")
    tol = check_positive(tol, "tol")
    G, counts = onesided_gram(R, p=p)
    seen = counts > 0
    Wt = seen.astype(np.float64) if weights == "uniform" else counts.astype(np.float64)
    Wt /= Wt[seen].mean()
    lam, vec = np.linalg.eigh(G)
    top = np.argsort(lam)[::-1][:rank]
    Y0 = vec[:, top] * np.sqrt(np.maximum(lam[top], 1e-12 * max(float(np.abs(lam).max()), 1.0)))
    scale = 0.5 * float(np.sum(Wt * G * G)) or 1.0
    history: list[float] = []

    def record(intermediate_result: Any) -> None:
        history.append(float(intermediate_result.fun) / scale)

    if max_iter > 0:
        res = minimize(_objective, Y0.reshape(-1), args=(G, Wt, n, rank), jac=True,
                       method="L-BFGS-B", callback=record,
                       options={"maxiter": max_iter, "ftol": tol, "gtol": 0.0})
        Y = np.asarray(res.x, dtype=np.float64).reshape(n, rank)
        n_iter, converged = int(res.nit), bool(res.success)
    else:
        Y, n_iter, converged = Y0, 0, False
    U, sv, _ = np.linalg.svd(Y, full_matrices=False)
    out = OneSided(U, sv**2, Y)
    if return_info:
        return out, Info(n_iter, converged, tuple(history))
    return out

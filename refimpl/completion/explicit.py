r"""Completion of explicit ratings: ALS (exact and inexact), Funk-style SGD and Soft-Impute.

All methods fit the observed entries :math:`\Omega` of a users × items matrix :math:`R` and
return an :class:`~refimpl.completion.MF`,
:math:`\hat r_{ui} = \mu + b_u + c_i + p_u^\top q_i`.

- **Alternating least squares** (:func:`als`) minimises the regularised squared error

  .. math:: f = \sum_{(u,i)\in\Omega} (r_{ui} - \mu - b_u - c_i - p_u^\top q_i)^2
            + \lambda \Big(\sum_u w_u (\|p_u\|^2 + b_u^2) + \sum_i w_i (\|q_i\|^2 + c_i^2)\Big),

  (biases and :math:`\mu` only with ``biases=True``), with :math:`w = 1` or, with
  ``weighted_reg=True``, :math:`w_u = n_u`, :math:`w_i = n_i` (the observation counts:
  ALS-WR, Zhou, Wilkinson, Schreiber & Pan, 2008). With the items fixed, each user's factor
  solves its own ridge problem,
  :math:`p_u = (Q_{\Omega_u}^\top Q_{\Omega_u} + \lambda w_u I)^{-1} Q_{\Omega_u}^\top r_u`,
  and symmetrically for the items (Koren, Bell & Volinsky, 2009). Every block update is an
  exact minimisation, so :math:`f` (see :func:`objective`) never increases.
- **Inexact alternating minimisation** (``cg_steps=s``): each row's normal equations get
  only ``s`` conjugate-gradient steps, warm-started from the row's current factor and applied
  matrix-free, so a sweep costs :math:`O(s\,|\Omega|\,k)` rather than the
  :math:`O(|\Omega|\,k^2)` of forming the Gram matrices. Gu, Song, Yin & Zhang (2023; ICLR
  2024, "Low Rank Matrix Completion via Robust Alternating Minimization in Nearly Linear
  Time") show that alternating minimisation still recovers an incoherent low-rank matrix
  when each least-squares step is solved only approximately, and, with a sketching-based
  preconditioned high-accuracy regression solver, in :math:`\widetilde O(|\Omega| k)` time.
  Warm-started, unpreconditioned CG is the simple practical instance of such an inexact solver
  (not their solver); CG decreases each row's quadratic, so :math:`f` still never increases.
- **SGD** (:func:`sgd_mf`): Funk's stochastic gradient descent with biases, in the form of
  Koren (2008/2009) that scikit-surprise's ``SVD`` implements: per observation,
  :math:`e = r_{ui} - \hat r_{ui}`, :math:`b_u \mathrel{+}= \gamma(e - \lambda b_u)`,
  :math:`c_i \mathrel{+}= \gamma(e - \lambda c_i)`,
  :math:`p_u \mathrel{+}= \gamma(e q_i - \lambda p_u)`,
  :math:`q_i \mathrel{+}= \gamma(e p_u - \lambda q_i)` (with the old :math:`p_u`).
- **Soft-Impute** (:func:`soft_impute`; Mazumder, Hastie & Tibshirani, 2010) solves the
  nuclear-norm regularised problem
  :math:`\min_Z \tfrac12\|P_\Omega(R - Z)\|_F^2 + \lambda \|Z\|_*` by the fixed-point iteration
  :math:`Z \leftarrow S_\lambda(P_\Omega(R) + P_\Omega^\perp(Z))`, with
  :math:`S_\lambda(Y) = U \operatorname{diag}((\sigma - \lambda)_+) V^\top` the singular
  value soft-thresholding of :math:`Y = U \operatorname{diag}(\sigma) V^\top`. Since
  :math:`P_\Omega(R) + P_\Omega^\perp(Z) = P_\Omega(R - Z) + Z` is sparse plus low rank, its
  leading singular triplets come from matrix-vector products alone.
- **Fold-in** (:func:`fold_in`): a new user's factor from its ratings against the fixed item
  side, the same ridge solve as an ALS user step.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal, NamedTuple, overload

import numpy as np

from refimpl._typing import ArrayLike, DTypeLike, NDArray, SeedLike
from refimpl._validation import (
    check_array,
    check_choice,
    check_float_dtype,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
    check_rank,
)
from refimpl.completion.model import MF, Interactions, as_interactions
from refimpl.results import Info
from refimpl.seeding import as_generator

__all__ = ["ALS_INIT_STD", "FoldIn", "als", "fold_in", "objective", "sgd_mf", "soft_impute",
           "soft_impute_path"]

#: Standard deviation of the random normal initial item factors of :func:`als` (the user
#: factors start at zero: the first user step does not read them, except as the warm start
#: of the inexact variant).
ALS_INIT_STD = 0.1


class FoldIn(NamedTuple):
    """The fitted parameters of one new user (see :func:`fold_in`).

    Attributes
    ----------
    factor : (k,) float64 array
        The user factor :math:`p_u`.
    bias : float or None
        The user bias :math:`b_u`, or None when the model has no user biases.
    """

    factor: NDArray[np.float64]
    bias: float | None


# --------------------------------------------------------------------------- helpers


def _row_layout(rows: NDArray[np.int64], n_rows: int) -> tuple[NDArray[np.int64],
                                                               NDArray[np.int64]]:
    """The observations grouped by ``rows`` (stable): the permutation and the row pointer."""
    perm = np.argsort(rows, kind="stable")
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return perm, indptr


def _check_init(X: object, name: str, shape: tuple[int, int]) -> NDArray[np.float64]:
    A = check_array(X, name, allow_torch=False)
    if tuple(A.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}; got {tuple(A.shape)}")
    return np.array(A, dtype=np.float64, order="C")


def _residuals(data: Interactions, model: MF) -> NDArray[np.float64]:
    """``r - r_hat`` at every observation, in the order of ``data``."""
    from refimpl.completion._explicit_numba import dot_obs

    dots = np.empty(data.nnz)
    dot_obs(data.users, data.items, np.ascontiguousarray(model.P, dtype=np.float64),
            np.ascontiguousarray(model.Q, dtype=np.float64), dots)
    e = data.values - model.mean - dots
    if model.user_bias is not None:
        e -= model.user_bias[data.users]
    if model.item_bias is not None:
        e -= model.item_bias[data.items]
    return e


def _penalty(model: MF, reg: float, wu: NDArray[np.float64] | None,
             wi: NDArray[np.float64] | None) -> float:
    pu = np.einsum("uk,uk->u", model.P, model.P)
    qi = np.einsum("ik,ik->i", model.Q, model.Q)
    if model.user_bias is not None:
        pu = pu + model.user_bias ** 2
    if model.item_bias is not None:
        qi = qi + model.item_bias ** 2
    su = float(pu.sum() if wu is None else wu @ pu)
    si = float(qi.sum() if wi is None else wi @ qi)
    return reg * (su + si)


def _counts(data: Interactions) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    return (np.bincount(data.users, minlength=data.n_users).astype(np.float64),
            np.bincount(data.items, minlength=data.n_items).astype(np.float64))


def _spectral_start(data: Interactions, k: int, centre: bool) -> NDArray[np.float64]:
    """``V_k Σ_k^{1/2}`` of the zero-filled observations (centred when ``centre``) / density."""
    import scipy.sparse
    import scipy.sparse.linalg

    values = data.values - data.values.mean() if centre else data.values
    Y = scipy.sparse.csr_matrix((values, (data.users, data.items)), shape=data.shape)
    Y = Y * (data.n_users * data.n_items / data.nnz)
    if k < min(data.shape) - 1:
        _, s, Vt = scipy.sparse.linalg.svds(Y, k, random_state=0)
    else:  # svds needs k < min(m, n); small problems take the dense SVD
        _, s, Vt = np.linalg.svd(Y.toarray(), full_matrices=False)
        s, Vt = s[:k], Vt[:k]
    return np.ascontiguousarray(Vt.T * np.sqrt(s))


def objective(model: MF, R: Any, reg: float, weighted_reg: bool = False) -> float:
    r"""The regularised squared error that :func:`als` decreases.

    .. math:: f = \sum_{(u,i)\in\Omega} (r_{ui} - \hat r_{ui})^2
              + \lambda \Big(\sum_u w_u (\|p_u\|^2 + b_u^2) + \sum_i w_i (\|q_i\|^2 + c_i^2)\Big)

    with :math:`w_u = w_i = 1`, or the observation counts :math:`n_u, n_i` when
    ``weighted_reg``; bias terms count only where the model has biases (the mean
    :math:`\mu` is not regularised).

    Parameters
    ----------
    model : MF
        The factor model (``P`` must have ``R``'s rows, ``Q`` its columns).
    R : Interactions or SciPy sparse matrix
        The observed ratings (users × items).
    reg : float
        The regularisation weight :math:`\lambda \ge 0`.
    weighted_reg : bool
        Weight each row's penalty by its number of observations (ALS-WR).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``R`` is invalid, ``reg`` is negative or the model's shape does not match ``R``.
    """
    data = as_interactions(R)
    reg = check_positive(reg, "reg", allow_zero=True)
    if model.P.shape[0] != data.n_users or model.Q.shape[0] != data.n_items:
        raise ValueError(f"model has {model.P.shape[0]} users and {model.Q.shape[0]} items; R "
                         f"has shape {data.shape}")
    e = _residuals(data, model)
    wu, wi = _counts(data) if weighted_reg else (None, None)
    return float(e @ e) + _penalty(model, reg, wu, wi)


# --------------------------------------------------------------------------- ALS


@overload
def als(R: Any, rank: int, *, reg: float = ..., biases: bool = ..., max_iter: int = ...,
        tol: float = ..., cg_steps: int | None = ..., weighted_reg: bool = ...,
        Q0: ArrayLike | None = ..., init: str = ..., seed: SeedLike = ...,
        return_info: Literal[False] = ...) -> MF: ...
@overload
def als(R: Any, rank: int, *, reg: float = ..., biases: bool = ..., max_iter: int = ...,
        tol: float = ..., cg_steps: int | None = ..., weighted_reg: bool = ...,
        Q0: ArrayLike | None = ..., init: str = ..., seed: SeedLike = ...,
        return_info: Literal[True]) -> tuple[MF, Info]: ...
@overload
def als(R: Any, rank: int, *, reg: float = ..., biases: bool = ..., max_iter: int = ...,
        tol: float = ..., cg_steps: int | None = ..., weighted_reg: bool = ...,
        Q0: ArrayLike | None = ..., init: str = ..., seed: SeedLike = ...,
        return_info: bool) -> MF | tuple[MF, Info]: ...
def als(R: Any, rank: int, *, reg: float = 0.1, biases: bool = False, max_iter: int = 15,
        tol: float = 1e-4, cg_steps: int | None = None, weighted_reg: bool = False,
        Q0: ArrayLike | None = None, init: str = "random", seed: SeedLike = None,
        return_info: bool = False) -> MF | tuple[MF, Info]:
    r"""Alternating least squares over the observed entries (explicit feedback).

    Each sweep updates every user factor with the items fixed, then every item factor with
    the users fixed (one ridge problem per row, see :mod:`refimpl.completion.explicit`),
    then, with ``biases``, the mean. Observations are visited through a CSR grouping (users)
    and a CSC grouping (items) built once; repeated ``(u, i)`` pairs count as separate
    observations.

    **Exact rows** (``cg_steps=None``): the row's Gram matrix
    :math:`G = F_r^\top F_r + \lambda w_r I` is formed from its observations and solved by
    Cholesky (a singular :math:`G`, possible only with ``reg=0``, falls back to the
    minimum-norm least-squares solution). **Inexact rows** (``cg_steps=s``): ``s``
    conjugate-gradient steps warm-started from the current factor, matrix-free; with
    ``s >= rank`` (``rank + 1`` with biases) CG is exact in exact arithmetic.

    **Biases** (``biases=True``): the user step solves for the augmented vector
    :math:`(p_u, b_u)` against the design rows :math:`(q_i, 1)` and the targets
    :math:`r_{ui} - \mu - c_i` (a constant-1 column appended to the fixed side), so the factor
    and the bias come out of one joint ridge solve; the item step solves for
    :math:`(q_i, c_i)` against :math:`(p_u, 1)` and :math:`r_{ui} - \mu - b_u`. The biases are
    regularised like the factors. The unregularised mean starts at the mean rating and, after
    each sweep, is set to its exact minimiser :math:`\mu \mathrel{+}= \operatorname{mean}(e)`
    (the mean residual). Every step is a block minimisation, so :func:`objective` is
    non-increasing over the sweeps.

    A user (item) without observations gets a zero factor (and bias): the minimiser of its
    penalty alone. It is not an error.

    Parameters
    ----------
    R : Interactions or SciPy sparse matrix
        Observed ratings, users × items.
    rank : int
        Number of factors ``k``, ``1 <= k <= min(n_users, n_items)``.
    reg : float
        Ridge weight :math:`\lambda \ge 0`.
    biases : bool
        Fit :math:`\mu`, :math:`b_u` and :math:`c_i` as well.
    max_iter : int
        Most sweeps.
    tol : float
        Stop once a sweep lowers the objective by at most ``tol`` times its previous value
        (``tol=0``: run ``max_iter`` sweeps unless it reaches 0).
    cg_steps : int, optional
        Conjugate-gradient steps per row (inexact alternating minimisation); None: exact.
    weighted_reg : bool
        ALS-WR: the ridge weight of a row is :math:`\lambda n_r` (its observation count).
    Q0 : (n_items, rank) array, optional
        Initial item factors (overrides ``init``). The user factors start at zero and the
        biases at zero.
    init : {"random", "svd"}
        Without ``Q0``: ``"random"``, ``ALS_INIT_STD`` times standard normal draws from
        ``seed``; ``"svd"``, the spectral start of the completion theory,
        :math:`Q_0 = V_k \Sigma_k^{1/2}` from the leading ``rank`` singular triplets of the
        zero-filled observed matrix (minus the mean rating when ``biases``) divided by the
        fraction observed (a sparse truncated SVD; deterministic up to signs). From a random
        start ALS can stall at a spurious stationary point (rarely, on small matrices); the
        spectral start avoids that in the regime where completion is possible.
    seed : int, numpy.random.Generator or None
        Seed of the initial item factors.
    return_info : bool
        Also return an :class:`~refimpl.results.Info`; its ``errors`` are
        :func:`objective` after each sweep.

    Returns
    -------
    MF or (MF, Info)
        ``user_bias``, ``item_bias`` and ``mean`` are set only with ``biases``.

    Raises
    ------
    TypeError
        If ``R`` is not Interactions or a sparse matrix, or an integer argument is not one.
    ValueError
        If ``R`` is empty or not finite, ``rank`` is out of range, ``reg`` is negative,
        ``init`` is unknown, or ``Q0`` has the wrong shape.
    """
    from refimpl.completion._explicit_numba import cg_rows, ridge_rows

    data = as_interactions(R)
    m, n = data.shape
    k = check_rank(rank, "rank", min(m, n))
    reg = check_positive(reg, "reg", allow_zero=True)
    max_iter = check_positive_int(max_iter, "max_iter")
    tol = check_positive(tol, "tol", allow_zero=True)
    steps = None if cg_steps is None else check_positive_int(cg_steps, "cg_steps")

    init = check_choice(init, "init", ("random", "svd"))
    if Q0 is not None:
        Q = _check_init(Q0, "Q0", (n, k))
    elif init == "svd":
        Q = _spectral_start(data, k, biases)
    else:
        Q = ALS_INIT_STD * as_generator(seed).standard_normal((n, k))
    d = k + 1 if biases else k
    # the factors live in augmented arrays: [P | b] and [Q | c] (the last column unused
    # without biases, so that d == k there)
    Xu = np.zeros((m, d))
    Xi = np.zeros((n, d))
    Xi[:, :k] = Q
    mean = float(data.values.mean()) if biases else 0.0

    nu, ni = _counts(data)
    lam_u = reg * (nu if weighted_reg else np.ones(m))
    lam_i = reg * (ni if weighted_reg else np.ones(n))
    perm_u, ptr_u = _row_layout(data.users, m)
    perm_i, ptr_i = _row_layout(data.items, n)
    cols_u, cols_i = data.items[perm_u], data.users[perm_i]
    r_u, r_i = data.values[perm_u], data.values[perm_i]
    Fu = np.ones((n, d))  # design rows of the user step: [q_i, 1]
    Fi = np.ones((m, d))  # design rows of the item step: [p_u, 1]

    def model() -> MF:
        if biases:
            return MF(Xu[:, :k].copy(), Xi[:, :k].copy(), Xu[:, k].copy(), Xi[:, k].copy(),
                      mean)
        return MF(Xu.copy(), Xi.copy())

    def half(ptr: Any, cols: Any, y: Any, F: Any, lam: Any, X: Any) -> None:
        if steps is None:
            ridge_rows(ptr, cols, y, F, lam, X)
        else:
            cg_rows(ptr, cols, y, F, lam, X, steps)

    wu, wi = (nu, ni) if weighted_reg else (None, None)
    prev = float(np.sum((data.values - mean) ** 2)) + _penalty(model(), reg, wu, wi)
    errors: list[float] = []
    converged = False
    for _ in range(max_iter):
        Fu[:, :k] = Xi[:, :k]
        y = r_u - mean - (Xi[cols_u, k] if biases else 0.0)
        half(ptr_u, cols_u, y, Fu, lam_u, Xu)
        Fi[:, :k] = Xu[:, :k]
        y = r_i - mean - (Xu[cols_i, k] if biases else 0.0)
        half(ptr_i, cols_i, y, Fi, lam_i, Xi)
        e = _residuals(data, model())
        if biases:
            shift = float(e.mean())
            mean += shift
            e -= shift
        cur = float(e @ e) + _penalty(model(), reg, wu, wi)
        errors.append(cur)
        if cur == 0.0 or (tol > 0 and prev - cur <= tol * abs(prev)):
            converged = True
            break
        prev = cur
    result = model()
    if return_info:
        return result, Info(len(errors), converged, tuple(errors))
    return result


# --------------------------------------------------------------------------- fold-in


def fold_in(model: MF, items: ArrayLike, values: ArrayLike, *, reg: float,
            weighted_reg: bool = False) -> FoldIn:
    r"""The factor (and bias) of a new user from its ratings, the item side held fixed.

    Solves the ridge problem of an ALS user step,
    :math:`\min_{p, b} \sum_t (r_t - \mu - c_{i_t} - b - p^\top q_{i_t})^2
    + \lambda w (\|p\|^2 + b^2)` with :math:`w = 1` or :math:`w = n` (the number of ratings)
    when ``weighted_reg``; :math:`b` is fitted only when ``model.user_bias`` is not None,
    :math:`c_i` and :math:`\mu` are taken from the model. With the ``reg`` and
    ``weighted_reg`` of the :func:`als` fit this is exactly the row ALS would compute for the
    user against the model's ``Q``, so the model can serve the user without a refit.

    Parameters
    ----------
    model : MF
        A fitted model (its ``Q``, ``item_bias`` and ``mean`` are used).
    items : (t,) int array
        The items the user rated (repeats allowed: each counts).
    values : (t,) float array
        The ratings.
    reg : float
        Ridge weight :math:`\lambda \ge 0`.
    weighted_reg : bool
        ALS-WR weighting of the ridge term.

    Returns
    -------
    FoldIn
        ``factor`` (k,) and ``bias`` (None without user biases). Append them to ``model.P``
        and ``model.user_bias`` to score the user with the model.

    Raises
    ------
    TypeError
        If ``items`` is not an integer array.
    ValueError
        If ``items`` is empty (a user without ratings has no factor to fit: score such
        users with a popularity fallback), an item is out of range, the lengths differ, a
        value is not finite or ``reg`` is negative.
    """
    reg = check_positive(reg, "reg", allow_zero=True)
    it = np.asarray(items)
    if it.size and not np.issubdtype(it.dtype, np.integer):
        raise TypeError(f"items must be integer indices; got dtype {it.dtype}")
    it = it.astype(np.int64).ravel()
    v = np.asarray(values, dtype=np.float64).ravel()
    if it.size == 0:
        raise ValueError("items is empty: a user without ratings cannot be folded in; "
                         "recommend to such users with a popularity fallback instead")
    if it.shape != v.shape:
        raise ValueError(f"items and values must have equal lengths; got {it.size}, {v.size}")
    n, k = model.Q.shape
    if it.min() < 0 or it.max() >= n:
        raise ValueError(f"items must lie in [0, {n}) (the model's items)")
    if not np.all(np.isfinite(v)):
        raise ValueError("values contains NaN or Inf")
    y = v - model.mean - (0.0 if model.item_bias is None else model.item_bias[it])
    F = np.asarray(model.Q, dtype=np.float64)[it]
    if model.user_bias is not None:
        F = np.hstack([F, np.ones((it.size, 1))])
    lam = reg * (it.size if weighted_reg else 1.0)
    G = F.T @ F + lam * np.eye(F.shape[1])
    b = F.T @ y
    try:
        L = np.linalg.cholesky(G)
        x = np.linalg.solve(L.T, np.linalg.solve(L, b))
    except np.linalg.LinAlgError:  # singular (reg = 0 and too few ratings): min-norm
        x = np.linalg.lstsq(G, b, rcond=None)[0]
    if model.user_bias is not None:
        return FoldIn(x[:k].copy(), float(x[k]))
    return FoldIn(x, None)


# --------------------------------------------------------------------------- SGD


@overload
def sgd_mf(R: Any, rank: int, *, lr: float = ..., reg: float = ..., n_epochs: int = ...,
           init_std: float = ..., biases: bool = ..., shuffle: bool = ...,
           P0: ArrayLike | None = ..., Q0: ArrayLike | None = ..., seed: SeedLike = ...,
           dtype: DTypeLike = ..., return_info: Literal[False] = ...) -> MF: ...
@overload
def sgd_mf(R: Any, rank: int, *, lr: float = ..., reg: float = ..., n_epochs: int = ...,
           init_std: float = ..., biases: bool = ..., shuffle: bool = ...,
           P0: ArrayLike | None = ..., Q0: ArrayLike | None = ..., seed: SeedLike = ...,
           dtype: DTypeLike = ..., return_info: Literal[True]) -> tuple[MF, Info]: ...
@overload
def sgd_mf(R: Any, rank: int, *, lr: float = ..., reg: float = ..., n_epochs: int = ...,
           init_std: float = ..., biases: bool = ..., shuffle: bool = ...,
           P0: ArrayLike | None = ..., Q0: ArrayLike | None = ..., seed: SeedLike = ...,
           dtype: DTypeLike = ..., return_info: bool) -> MF | tuple[MF, Info]: ...
def sgd_mf(R: Any, rank: int, *, lr: float = 0.005, reg: float = 0.02, n_epochs: int = 20,
           init_std: float = 0.1, biases: bool = True, shuffle: bool = True,
           P0: ArrayLike | None = None, Q0: ArrayLike | None = None, seed: SeedLike = None,
           dtype: DTypeLike = np.float64, return_info: bool = False) -> MF | tuple[MF, Info]:
    r"""Funk-style stochastic gradient descent on the regularised squared error, with biases.

    The per-observation updates (see :mod:`refimpl.completion.explicit`) are those of
    scikit-surprise's ``SVD`` with one learning rate and one regularisation weight for all
    parameters: the error :math:`e` is computed once, the biases are updated, then every
    factor coordinate with the values of :math:`p_u` and :math:`q_i` from before the step.
    With ``biases`` the mean :math:`\mu` is the mean observed rating (fixed) and the biases
    start at zero; without, :math:`\mu = 0` and no biases are fitted (probabilistic matrix
    factorization's objective).

    Given the same initial factors and the same visiting order (``shuffle=False`` with the
    observations ordered as surprise's ``trainset.all_ratings()``, inner ids as indices),
    the arithmetic is that of surprise's loop, so the fits agree to rounding (the kernel sums
    each dot product in vector-width partial sums, which is all that differs).

    Parameters
    ----------
    R : Interactions or SciPy sparse matrix
        Observed ratings, users × items.
    rank : int
        Number of factors ``k``, ``1 <= k <= min(n_users, n_items)``.
    lr : float
        Learning rate :math:`\gamma > 0`.
    reg : float
        Regularisation weight :math:`\lambda \ge 0`.
    n_epochs : int
        Passes over the observations.
    init_std : float
        Standard deviation of the zero-mean normal initial factors.
    biases : bool
        Fit :math:`\mu`, :math:`b_u`, :math:`c_i`.
    shuffle : bool
        Visit the observations in a fresh random order each epoch (drawn from ``seed``);
        False: in the order of ``R`` (for a sparse matrix, its COO order).
    P0, Q0 : (n_users, rank), (n_items, rank) arrays, optional
        Initial factors; by default ``P0`` then ``Q0`` are drawn from ``seed``.
    seed : int, numpy.random.Generator or None
        Seed of the initial factors and of the shuffles.
    dtype : float32 or float64
        Precision of the factors, the biases and the arithmetic. ``float32`` halves the memory
        each update touches (the initial draw is the same, rounded) and is faster once the
        item factors no longer fit in the cache.
    return_info : bool
        Also return an :class:`~refimpl.results.Info`; its ``errors`` are the running
        training RMSE of each epoch (every error measured just before its own update, so no
        second pass is needed; it lags the RMSE at the epoch's end); ``converged`` is whether
        the last one is finite (SGD runs a fixed number of epochs; a non-finite RMSE means
        the learning rate made it diverge).

    Returns
    -------
    MF or (MF, Info)

    Raises
    ------
    TypeError
        If ``R`` is not Interactions or a sparse matrix, or an integer argument is not one.
    ValueError
        If ``R`` is empty or not finite, ``rank`` is out of range, ``lr`` is not positive,
        ``reg`` or ``init_std`` is negative, ``P0``/``Q0`` has the wrong shape, or ``dtype``
        is not float32 or float64.
    """
    from refimpl.completion._explicit_numba import sgd_epoch

    data = as_interactions(R)
    m, n = data.shape
    k = check_rank(rank, "rank", min(m, n))
    lr = check_positive(lr, "lr")
    reg = check_positive(reg, "reg", allow_zero=True)
    n_epochs = check_nonnegative_int(n_epochs, "n_epochs")
    init_std = check_positive(init_std, "init_std", allow_zero=True)
    rng = as_generator(seed)
    P = (init_std * rng.standard_normal((m, k)) if P0 is None
         else _check_init(P0, "P0", (m, k)))
    Q = (init_std * rng.standard_normal((n, k)) if Q0 is None
         else _check_init(Q0, "Q0", (n, k)))
    dt: Any = check_float_dtype(dtype)
    P, Q = P.astype(dt, copy=False), Q.astype(dt, copy=False)
    values = data.values.astype(dt, copy=False)
    bu = np.zeros(m, dtype=dt)
    bi = np.zeros(n, dtype=dt)
    mean = float(data.values.mean()) if biases else 0.0
    order = np.arange(data.nnz, dtype=np.int64)
    errors: list[float] = []
    for _ in range(n_epochs):
        if shuffle:
            order = rng.permutation(data.nnz).astype(np.int64)
        sse = sgd_epoch(data.users, data.items, values, order, P, Q, bu, bi, dt.type(mean),
                        dt.type(lr), dt.type(reg), biases)
        errors.append(float(np.sqrt(sse / data.nnz)))
    result = MF(P, Q, bu, bi, mean) if biases else MF(P, Q)
    if return_info:
        converged = bool(np.isfinite(errors[-1])) if errors else True
        return result, Info(n_epochs, converged, tuple(errors))
    return result


# --------------------------------------------------------------------------- Soft-Impute


class _Observed(NamedTuple):
    """The observations in CSR order (row-major, no duplicates), for Soft-Impute."""

    rows: NDArray[np.int64]
    cols: NDArray[np.int64]
    values: NDArray[np.float64]
    indptr: NDArray[np.int64]
    shape: tuple[int, int]


def _observed(R: Any) -> _Observed:
    data = as_interactions(R)
    m, n = data.shape
    key = data.users * n + data.items
    order = np.argsort(key, kind="stable")
    key = key[order]
    if key.size > 1 and np.any(key[1:] == key[:-1]):
        t = int(np.flatnonzero(key[1:] == key[:-1])[0])
        raise ValueError(f"R: the entry (user {key[t] // n}, item {key[t] % n}) is observed "
                         f"more than once; Soft-Impute needs one value per entry (aggregate "
                         f"duplicates first)")
    rows, cols = data.users[order], data.items[order]
    indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=m), out=indptr[1:])
    return _Observed(rows, cols, data.values[order], indptr, (m, n))


def _svd_dense(obs: _Observed, U: Any, s: Any, V: Any, rank: int) -> tuple[Any, Any, Any]:
    Z = (U * s) @ V.T
    Z[obs.rows, obs.cols] = obs.values
    Uy, sy, Vty = np.linalg.svd(Z, full_matrices=False)
    return Uy[:, :rank], sy[:rank], Vty[:rank].T


def _svd_sparse(obs: _Observed, U: Any, s: Any, V: Any, rank: int,
                v0: Any) -> tuple[Any, Any, Any]:
    import scipy.sparse
    import scipy.sparse.linalg

    m, n = obs.shape
    z = np.einsum("tr,tr->t", U[obs.rows] * s, V[obs.cols])
    S = scipy.sparse.csr_matrix((obs.values - z, obs.cols, obs.indptr), shape=(m, n))
    St = S.T.tocsr()
    Us = U * s

    def mv(x: Any) -> Any:
        return S @ x + Us @ (V.T @ x)

    def rmv(x: Any) -> Any:
        return St @ x + V @ (Us.T @ x)

    op = scipy.sparse.linalg.LinearOperator((m, n), matvec=mv, rmatvec=rmv, matmat=mv,
                                            rmatmat=rmv, dtype=np.float64)
    Uy, sy, Vty = scipy.sparse.linalg.svds(op, k=rank, v0=v0, tol=0, solver="arpack")
    idx = np.argsort(sy)[::-1]
    return Uy[:, idx], sy[idx], Vty[idx].T


def _change2(U1: Any, s1: Any, V1: Any, U0: Any, s0: Any, V0: Any) -> float:
    """``||U1 diag(s1) V1ᵀ - U0 diag(s0) V0ᵀ||_F^2`` without forming either matrix.

    The difference is ``A Bᵀ`` with ``A = [U1 s1, -U0 s0]`` and ``B = [V1, V0]``; with the
    triangular factors of their QR decompositions it is ``||R_A R_Bᵀ||_F^2``. Expanding
    ``||Z1||² + ||Z0||² - 2<Z1, Z0>`` instead would lose every digit below
    ``eps ||Z||²`` to cancellation, and the stopping test could not go below ``1e-16``.
    """
    import scipy.linalg

    Ra = scipy.linalg.qr(np.hstack([U1 * s1, -(U0 * s0)]), mode="r")[0]
    Rb = scipy.linalg.qr(np.hstack([V1, V0]), mode="r")[0]
    return float(np.sum((Ra @ Rb.T) ** 2))


def _soft_impute_run(obs: _Observed, reg: float, rank: int | None, max_iter: int, tol: float,
                     start: tuple[Any, Any, Any], rng: np.random.Generator
                     ) -> tuple[tuple[Any, Any, Any], Info]:
    m, n = obs.shape
    dense = rank is None or rank >= min(m, n)
    r = min(m, n) if rank is None else rank
    U, s, V = start
    v0 = rng.standard_normal(min(m, n))
    errors: list[float] = []
    converged = False
    for _ in range(max_iter):
        if dense:
            Uy, sy, Vy = _svd_dense(obs, U, s, V, r)
        else:
            Uy, sy, Vy = _svd_sparse(obs, U, s, V, r, v0)
        s_new = np.maximum(sy - reg, 0.0)
        old2 = float(s @ s)
        diff2 = _change2(Uy, s_new, Vy, U, s, V)
        U, s, V = Uy, s_new, Vy
        change = diff2 / old2 if old2 > 0 else (0.0 if diff2 == 0 else float("inf"))
        errors.append(change)
        if change <= tol:
            converged = True
            break
    if not dense and s.size == r and s[-1] > 0:
        warnings.warn(f"soft_impute: all rank={r} singular values stayed above the threshold "
                      f"reg={reg:g}, so the rank cap binds and the fit is not the "
                      f"nuclear-norm solution; raise rank (or reg)", RuntimeWarning,
                      stacklevel=3)
    return (U, s, V), Info(len(errors), converged, tuple(errors))


def _to_mf(U: Any, s: Any, V: Any, keep_zeros: bool) -> MF:
    if not keep_zeros:
        pos = s > 0
        pos[0] = True  # keep at least one (possibly zero) component
        U, s, V = U[:, pos], s[pos], V[:, pos]
    root = np.sqrt(s)
    return MF(U * root, V * root)


def _zero_start(m: int, n: int) -> tuple[Any, Any, Any]:
    return np.zeros((m, 1)), np.zeros(1), np.zeros((n, 1))


def _check_soft(obs: _Observed, rank: int | None, max_iter: int, tol: float
                ) -> tuple[int | None, int, float]:
    if rank is not None:
        rank = check_rank(rank, "rank", min(obs.shape))
    return (rank, check_positive_int(max_iter, "max_iter"),
            check_positive(tol, "tol", allow_zero=True))


@overload
def soft_impute(R: Any, reg: float, *, rank: int | None = ..., max_iter: int = ...,
                tol: float = ..., seed: SeedLike = ...,
                return_info: Literal[False] = ...) -> MF: ...
@overload
def soft_impute(R: Any, reg: float, *, rank: int | None = ..., max_iter: int = ...,
                tol: float = ..., seed: SeedLike = ...,
                return_info: Literal[True]) -> tuple[MF, Info]: ...
@overload
def soft_impute(R: Any, reg: float, *, rank: int | None = ..., max_iter: int = ...,
                tol: float = ..., seed: SeedLike = ...,
                return_info: bool) -> MF | tuple[MF, Info]: ...
def soft_impute(R: Any, reg: float, *, rank: int | None = None, max_iter: int = 100,
                tol: float = 1e-4, seed: SeedLike = None,
                return_info: bool = False) -> MF | tuple[MF, Info]:
    r"""Soft-Impute: nuclear-norm regularised completion (Mazumder, Hastie & Tibshirani, 2010).

    Iterates :math:`Z \leftarrow S_\lambda(P_\Omega(R) + P_\Omega^\perp(Z))` from
    :math:`Z = 0` and stops once
    :math:`\|Z_{\text{new}} - Z_{\text{old}}\|_F^2 / \|Z_{\text{old}}\|_F^2 \le \mathrm{tol}`
    (the paper's criterion; computed from the factors).

    - ``rank=None`` (or ``rank = min(m, n)``): the dense path forms the m×n matrix
      :math:`P_\Omega(R) + P_\Omega^\perp(Z)` and takes its full SVD (small problems only). Its
      fixed point is the minimiser of :math:`\tfrac12\|P_\Omega(R - Z)\|_F^2 + \lambda\|Z\|_*`.
    - ``rank=r < min(m, n)``: the sparse-plus-low-rank path. The matrix is never formed: it is
      :math:`P_\Omega(R - Z) + U\operatorname{diag}(s)V^\top`, a sparse matrix (the residuals
      at the observed entries) plus the current factors, and its ``r`` leading singular
      triplets come from ARPACK (``scipy.sparse.linalg.svds``) on that matrix-vector product,
      ``O(|Omega| + (m + n) r)`` per product. Only ``r`` singular values are thresholded: the
      iteration is the rank-restricted Soft-Impute of the paper, which has the same fixed
      point as the dense path whenever the solution's rank is below ``r``. If all ``r``
      shrunken values stay positive the cap binds: a ``RuntimeWarning`` says so (raise
      ``rank``).

    The values are fitted as they are (no centering: subtract a mean or baselines first if
    wanted; the model's ``mean`` is 0).

    Parameters
    ----------
    R : Interactions or SciPy sparse matrix
        Observed entries, users × items, each entry at most once.
    reg : float
        The threshold :math:`\lambda \ge 0` (0: hard imputation by iterated SVD).
    rank : int, optional
        Rank bound of the sparse path; None: dense path.
    max_iter : int
        Most iterations.
    tol : float
        Tolerance of the relative squared change.
    seed : int, numpy.random.Generator or None
        Seed of ARPACK's start vector (the result does not depend on it to rounding).
    return_info : bool
        Also return an :class:`~refimpl.results.Info`; its ``errors`` are the relative squared
        changes per iteration (``inf`` for a first step away from :math:`Z = 0`).

    Returns
    -------
    MF or (MF, Info)
        ``P = U diag(sqrt(s))``, ``Q = V diag(sqrt(s))`` with the shrunken singular values
        ``s``, so ``P Qᵀ = Z``. With ``rank`` given, ``P`` has ``rank`` columns (some may be
        zero); on the dense path only the nonzero components are kept (at least one column).

    Raises
    ------
    TypeError
        If ``R`` is not Interactions or a sparse matrix.
    ValueError
        If ``R`` is empty, not finite or has a repeated entry, ``reg`` is negative or
        ``rank`` is out of range.

    Warns
    -----
    RuntimeWarning
        If ``rank`` is given and every one of its ``rank`` singular values ends above the
        threshold (the cap binds).
    """
    obs = _observed(R)
    reg = check_positive(reg, "reg", allow_zero=True)
    rank, max_iter, tol = _check_soft(obs, rank, max_iter, tol)
    (U, s, V), info = _soft_impute_run(obs, reg, rank, max_iter, tol, _zero_start(*obs.shape),
                                       as_generator(seed))
    result = _to_mf(U, s, V, keep_zeros=rank is not None)
    return (result, info) if return_info else result


@overload
def soft_impute_path(R: Any, regs: ArrayLike, *, rank: int | None = ..., max_iter: int = ...,
                     tol: float = ..., seed: SeedLike = ...,
                     return_info: Literal[False] = ...) -> list[MF]: ...
@overload
def soft_impute_path(R: Any, regs: ArrayLike, *, rank: int | None = ..., max_iter: int = ...,
                     tol: float = ..., seed: SeedLike = ...,
                     return_info: Literal[True]) -> tuple[list[MF], list[Info]]: ...
@overload
def soft_impute_path(R: Any, regs: ArrayLike, *, rank: int | None = ..., max_iter: int = ...,
                     tol: float = ..., seed: SeedLike = ...,
                     return_info: bool) -> list[MF] | tuple[list[MF], list[Info]]: ...
def soft_impute_path(R: Any, regs: ArrayLike, *, rank: int | None = None, max_iter: int = 100,
                     tol: float = 1e-4, seed: SeedLike = None,
                     return_info: bool = False) -> list[MF] | tuple[list[MF], list[Info]]:
    r"""Soft-Impute along a sequence of thresholds, each fit warm-started from the previous.

    The paper's regularisation path: for decreasing :math:`\lambda_1 > \lambda_2 > \dots`
    the solution changes little from one to the next, so starting each fit from the previous
    :math:`Z` saves most iterations (small :math:`\lambda` from a cold start converges
    slowly). The thresholds are taken in the order given; decreasing order is the useful one.

    Parameters
    ----------
    R : Interactions or SciPy sparse matrix
        Observed entries, users × items, each entry at most once.
    regs : (p,) array of float
        Thresholds :math:`\lambda \ge 0`, usually decreasing.
    rank, max_iter, tol, seed
        As for :func:`soft_impute` (``max_iter`` and ``tol`` apply to each fit).
    return_info : bool
        Also return one :class:`~refimpl.results.Info` per threshold.

    Returns
    -------
    list of MF, or (list of MF, list of Info)
        One model per threshold, in the order of ``regs``.

    Raises
    ------
    TypeError
        If ``R`` is not Interactions or a sparse matrix.
    ValueError
        As :func:`soft_impute`, or if ``regs`` is empty.

    Warns
    -----
    RuntimeWarning
        As :func:`soft_impute`, for each threshold at which the rank cap binds.
    """
    obs = _observed(R)
    lams = np.asarray(regs, dtype=np.float64).ravel()
    if lams.size == 0:
        raise ValueError("regs must contain at least one threshold")
    for t, lam in enumerate(lams):
        check_positive(float(lam), f"regs[{t}]", allow_zero=True)
    rank, max_iter, tol = _check_soft(obs, rank, max_iter, tol)
    rng = as_generator(seed)
    state = _zero_start(*obs.shape)
    models: list[MF] = []
    infos: list[Info] = []
    for lam in lams:
        state, info = _soft_impute_run(obs, float(lam), rank, max_iter, tol, state, rng)
        models.append(_to_mf(*state, keep_zeros=rank is not None))
        infos.append(info)
    return (models, infos) if return_info else models

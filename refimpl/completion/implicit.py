r"""Recommenders for implicit feedback: weighted ALS, BPR and EASE, and new users.

Implicit feedback (clicks, plays, purchases) records what users did, never what they
disliked: an observed count :math:`r_{ui} \ge 0` and, everywhere else, nothing.

**Weighted ALS** (Hu, Koren & Volinsky, 2008). Every entry, observed or not, gets a
*preference* :math:`p_{ui} = [r_{ui} > 0]` and a *confidence* :math:`c_{ui}`; the factors
minimise

.. math:: \sum_{u, i} c_{ui}\,(p_{ui} - x_u^\top y_i)^2
          + \sum_u \lambda_u \|x_u\|^2 + \sum_i \lambda_i \|y_i\|^2

over *all* :math:`m n` entries. With the item factors fixed, row :math:`u` solves

.. math:: \big(Y^\top Y + Y^\top (C_u - I) Y + \lambda_u I\big)\, x_u = Y^\top C_u\, p_u,

where :math:`C_u = \operatorname{diag}(c_{u\cdot})`; since :math:`c_{ui} = 1` off the
observed entries, :math:`Y^\top (C_u - I) Y` and :math:`Y^\top C_u p_u` are sums over the
observed entries of the row only, and :math:`Y^\top Y` is formed once per half-sweep. Two
conventions for :math:`c` and :math:`\lambda` are in use (``convention=``):

- ``"implicit"`` (the ``implicit`` package): :math:`c_{ui} = \alpha r_{ui}` on observed
  entries (``alpha`` scales the data), 1 elsewhere; :math:`\lambda_u = \lambda_i = \lambda`.
- ``"spark"`` (Spark MLlib's ``ALS(implicitPrefs=True)``): :math:`c_{ui} = 1 + \alpha
  r_{ui}` on observed entries, 1 elsewhere; :math:`\lambda` is scaled by the number of
  observed entries of the row, :math:`\lambda_u = \lambda n_u`, :math:`\lambda_i = \lambda
  n_i` (the "weighted-λ" regularisation of Zhou, Wilkinson, Schreiber & Pan, 2008).

No constant :math:`(\alpha, \lambda)` maps one convention onto the other in general: the
confidences map (``"spark"`` on ``r`` is ``"implicit"`` on ``1 + αr`` with ``α = 1``), the
count-scaled λ only where every row and column has the same count.

Each half-sweep solves every row either exactly (``solver="cholesky"``) or, the default, by
``cg_steps`` conjugate-gradient steps started from the current factor (Takács, Pilászy &
Tikk, 2011), as the ``implicit`` package does with 3 steps: the matrix is never formed and a
row costs :math:`O(k^2 + k\, n_u)` per step instead of :math:`O(k^2 n_u + k^3)`. Users are
updated first, then items, in each iteration.

**BPR** (Rendle, Freudenthaler, Gantner & Schmidt-Thieme, 2009) fits the ranking instead:
for triples (user :math:`u`, observed item :math:`i`, unobserved item :math:`j`) it
maximises :math:`\sum \ln \sigma(\hat x_{ui} - \hat x_{uj}) - \lambda \|\Theta\|^2` by
stochastic gradient ascent, with :math:`\hat x_{ui} = p_u^\top q_i + b_i` (an item bias,
as in the ``implicit`` package).

**EASE** (Steck, 2019) is a linear item-item model :math:`\hat X = X B` without factors:
:math:`\min_B \|X - XB\|_F^2 + \lambda \|B\|_F^2` subject to :math:`\operatorname{diag}(B)
= 0`, solved in closed form,

.. math:: P = (X^\top X + \lambda I)^{-1}, \qquad
          B = I - P \operatorname{diag}(1 / \operatorname{diag} P)
          \quad (B_{ij} = -P_{ij} / P_{jj},\ B_{jj} = 0).

**New users.** A factor model scores a user absent from training after one per-row solve
with the item factors fixed (*fold-in*, :func:`fold_in_implicit`), EASE directly from the
user's interaction vector (:meth:`EASE.scores_for`); a user with no interaction at all gets
a fallback (popularity) ranking, :func:`recommend_new_user`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, overload

import numpy as np

from refimpl._typing import ArrayLike, DTypeLike, NDArray, SeedLike
from refimpl._validation import (
    check_choice,
    check_float_dtype,
    check_positive,
    check_positive_int,
    check_rank,
)
from refimpl.completion.model import MF, Interactions, as_interactions, mask_seen, top_k
from refimpl.results import Info
from refimpl.seeding import as_generator

if TYPE_CHECKING:
    import scipy.sparse

__all__ = ["ALS_SOLVERS", "CONVENTIONS", "EASE", "INIT_SCALE", "bpr", "ease",
           "fold_in_implicit", "implicit_als", "recommend_new_user"]

#: The confidence conventions of :func:`implicit_als` (see the module docstring).
CONVENTIONS = ("implicit", "spark")

#: The per-row solvers of :func:`implicit_als`.
ALS_SOLVERS = ("cg", "cholesky")

#: Default initial ALS factors are uniform on ``[0, INIT_SCALE)`` (the ``implicit``
#: package's choice: with the same integer seed both start from the same factors).
INIT_SCALE = 0.01

# Rows per task of the multithreaded sweeps (a fixed split: results do not depend on it).
_CHUNK_ROWS = 64

# --------------------------------------------------------------------------- helpers


def _implicit_data(R: Any, name: str = "R") -> tuple[Interactions, scipy.sparse.csr_matrix]:
    """Checked nonnegative interactions and their canonical CSR (duplicates summed)."""
    inter = as_interactions(R, name)
    low = float(inter.values.min())
    if low < 0:
        bad = int(np.argmin(inter.values))
        raise ValueError(f"{name}: implicit feedback must be nonnegative; value {low!r} at "
                         f"(user {inter.users[bad]}, item {inter.items[bad]})")
    X = inter.csr()
    X.sum_duplicates()
    X.sort_indices()
    return inter, X


def _weights(r: NDArray[np.float64], convention: str, alpha: float,
             dtype: np.dtype[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    """Per observed entry: ``w = c − 1`` (the weight in ``A``) and ``bc = c p`` (in ``b``)."""
    pref = r > 0
    if convention == "implicit":
        c = (alpha * r).astype(dtype)
        w = c - dtype.type(1)
    else:
        w = (alpha * r).astype(dtype)
        c = (1.0 + alpha * r).astype(dtype)
    bc = np.where(pref, c, dtype.type(0)).astype(dtype)
    return np.ascontiguousarray(w), bc


def _reg_per_row(counts: NDArray[np.int64], reg: float, convention: str,
                 dtype: np.dtype[Any]) -> NDArray[Any]:
    """``λ_u``: ``λ`` (``"implicit"``) or ``λ n_u`` (``"spark"``) for every row."""
    if convention == "implicit":
        return np.full(counts.shape[0], reg, dtype=dtype)
    return (reg * counts).astype(dtype)


class _Side(NamedTuple):
    """One half-sweep's CSR arrays (rows being solved), weights and per-row λ."""

    indptr: NDArray[np.int64]
    indices: NDArray[np.int64]
    w: NDArray[Any]
    bc: NDArray[Any]
    lam: NDArray[Any]


def _sides(X: scipy.sparse.csr_matrix, convention: str, alpha: float, reg: float,
           dtype: np.dtype[Any]) -> tuple[_Side, _Side]:
    """The user side (rows of ``X``) and the item side (rows of ``Xᵀ``)."""
    import scipy.sparse

    w, bc = _weights(X.data, convention, alpha, dtype)
    indptr = X.indptr.astype(np.int64)
    indices = X.indices.astype(np.int64)
    # the transpose's entry order, as a permutation of X's entries
    perm_m = scipy.sparse.csr_matrix((np.arange(X.nnz, dtype=np.int64), indices, indptr),
                                     shape=X.shape).T.tocsr()
    perm_m.sort_indices()
    perm = perm_m.data
    user = _Side(indptr, indices, w, bc,
                 _reg_per_row(np.diff(indptr), reg, convention, dtype))
    item = _Side(perm_m.indptr.astype(np.int64), perm_m.indices.astype(np.int64),
                 np.ascontiguousarray(w[perm]), np.ascontiguousarray(bc[perm]),
                 _reg_per_row(np.diff(perm_m.indptr), reg, convention, dtype))
    return user, item


@contextlib.contextmanager
def _numba_threads(n: int) -> Iterator[None]:
    """Run the enclosed Numba parallel code on ``n`` threads, then restore the setting."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _check_threads(num_threads: object) -> int:
    import numba

    n = check_positive_int(num_threads, "num_threads")
    top = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    if n > top:
        raise ValueError(f"num_threads={n} exceeds the {top} threads Numba was started with "
                         f"(NUMBA_NUM_THREADS)")
    return n


def _half_sweep(side: _Side, X: NDArray[Any], Y: NDArray[Any], solver: str, cg_steps: int,
                threads: int, what: str) -> None:
    """Update every row of ``X`` (in place) from ``Y``."""
    from refimpl.completion import _implicit_numba as K

    G = np.ascontiguousarray(Y.T @ Y)
    zero = X.dtype.type(0)
    args = (side.indptr, side.indices, side.w, side.bc, side.lam, X, Y, G)
    with _numba_threads(threads):
        if solver == "cg":
            K.cg_sweep(*args, cg_steps, zero, _CHUNK_ROWS)
            return
        bad = K.chol_sweep(*args, zero, _CHUNK_ROWS)
    if bad >= 0:
        raise ValueError(f"the normal equations of {what} {bad} are not positive definite "
                         f"(numerically); increase reg")


def _als_loss(user: _Side, item: _Side, P: NDArray[Any], Q: NDArray[Any]) -> float:
    """The weighted loss of the module docstring, in float64."""
    from refimpl.completion import _implicit_numba as K

    observed = K.observed_loss(user.indptr, user.indices, user.w, user.bc, P, Q)
    P64 = P.astype(np.float64)
    Q64 = Q.astype(np.float64)
    every = float(np.sum((P64.T @ P64) * (Q64.T @ Q64)))  # sum over all (u, i) of s_ui²
    penalty = float(user.lam.astype(np.float64) @ np.einsum("uk,uk->u", P64, P64)
                    + item.lam.astype(np.float64) @ np.einsum("ik,ik->i", Q64, Q64))
    return float(observed) + every + penalty


def _initial(F0: Any, shape: tuple[int, int], dtype: np.dtype[Any], name: str) -> NDArray[Any]:
    F = np.asarray(F0)
    if F.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {F.shape}")
    if not np.issubdtype(F.dtype, np.floating) and not np.issubdtype(F.dtype, np.integer):
        raise TypeError(f"{name} must be a real array; got dtype {F.dtype}")
    if not np.all(np.isfinite(F)):
        raise ValueError(f"{name} contains NaN or Inf")
    return np.array(F, dtype=dtype, order="C", copy=True)


# --------------------------------------------------------------------------- ALS


@overload
def implicit_als(R: Any, rank: int, *, reg: float = ..., alpha: float = ...,
                 convention: str = ..., max_iter: int = ..., cg_steps: int = ...,
                 solver: str = ..., seed: SeedLike = ..., dtype: DTypeLike = ...,
                 num_threads: int = ..., P0: ArrayLike | None = ..., Q0: ArrayLike | None = ...,
                 return_info: Literal[False] = ...) -> MF: ...
@overload
def implicit_als(R: Any, rank: int, *, reg: float = ..., alpha: float = ...,
                 convention: str = ..., max_iter: int = ..., cg_steps: int = ...,
                 solver: str = ..., seed: SeedLike = ..., dtype: DTypeLike = ...,
                 num_threads: int = ..., P0: ArrayLike | None = ..., Q0: ArrayLike | None = ...,
                 return_info: Literal[True]) -> tuple[MF, Info]: ...
@overload
def implicit_als(R: Any, rank: int, *, reg: float = ..., alpha: float = ...,
                 convention: str = ..., max_iter: int = ..., cg_steps: int = ...,
                 solver: str = ..., seed: SeedLike = ..., dtype: DTypeLike = ...,
                 num_threads: int = ..., P0: ArrayLike | None = ..., Q0: ArrayLike | None = ...,
                 return_info: bool) -> MF | tuple[MF, Info]: ...
def implicit_als(R: Any, rank: int, *, reg: float = 0.01, alpha: float = 1.0,
                 convention: str = "implicit", max_iter: int = 15, cg_steps: int = 3,
                 solver: str = "cg", seed: SeedLike = None, dtype: DTypeLike = np.float32,
                 num_threads: int = 1, P0: ArrayLike | None = None, Q0: ArrayLike | None = None,
                 return_info: bool = False) -> MF | tuple[MF, Info]:
    r"""Weighted ALS for implicit feedback (Hu, Koren & Volinsky, 2008).

    Alternates the per-row normal equations of the module docstring,
    :math:`(Y^\top Y + Y^\top (C_u - I) Y + \lambda_u I) x_u = Y^\top C_u p_u`, over the
    users and then over the items, ``max_iter`` times. A row (user or item) without
    observations gets a zero factor.

    Parameters
    ----------
    R : Interactions or SciPy sparse matrix
        Nonnegative counts (users × items); duplicates are summed. A stored zero is an
        observation with preference 0 (confidence 0 under ``"implicit"``, so it drops out;
        1 under ``"spark"``, where it still counts in :math:`n_u`).
    rank : int
        Number of factors, ``1 <= rank <= min(n_users, n_items)``.
    reg : float
        :math:`\lambda \ge 0` (scaled by the row's count under ``"spark"``).
    alpha : float
        The confidence scale :math:`\alpha > 0`.
    convention : {"implicit", "spark"}
        How :math:`c_{ui}` and :math:`\lambda_u` depend on ``alpha``, ``reg`` and the data
        (see the module docstring).
    max_iter : int
        ALS iterations (a user half-sweep then an item half-sweep each); there is no
        stopping test.
    cg_steps : int
        Conjugate-gradient steps per row and half-sweep (``solver="cg"``); the steps of a row
        stop early once its squared residual norm falls below ``CG_TOL`` of
        ``refimpl.completion._implicit_numba`` (1e-20, the ``implicit`` package's constant).
    solver : {"cg", "cholesky"}
        ``"cg"``: ``cg_steps`` CG steps started from the current factor (Takács, Pilászy &
        Tikk, 2011); ``"cholesky"``: the exact solve.
    seed : int, numpy.random.Generator or None
        Draws the initial factors not given: ``P0`` then ``Q0``, uniform on
        ``[0, INIT_SCALE)`` in ``dtype`` (the ``implicit`` package's initialisation, in the
        same order, so an integer seed reproduces its ``random_state``).
    dtype : {numpy.float32, numpy.float64}
        The factors' dtype; all ALS arithmetic is carried out in it.
    num_threads : int
        Numba threads for the row solves (at most ``NUMBA_NUM_THREADS``). Rows are
        independent and each is computed by the same code whatever the thread count, so the
        result is bitwise the same for any ``num_threads``.
    P0, Q0 : (n_users, rank), (n_items, rank) arrays, optional
        Initial factors (copied). ``Q0`` feeds the first user half-sweep; ``P0`` only warm
        starts its CG steps.
    return_info : bool
        Also return an :class:`~refimpl.results.Info`.

    Returns
    -------
    MF
        ``P`` (n_users, rank) and ``Q`` (n_items, rank) in ``dtype``, no biases, mean 0.
    Info
        Only with ``return_info``: ``n_iter = max_iter``, ``converged`` False (there is no
        stopping test) and ``errors``, after each iteration, the weighted loss
        :math:`\sum_{u,i} c_{ui}(p_{ui} - x_u^\top y_i)^2 + \sum_u \lambda_u \|x_u\|^2 +
        \sum_i \lambda_i \|y_i\|^2` over all :math:`mn` entries, in float64, computed in
        :math:`O(k\,\mathrm{nnz} + (m + n) k^2)` as :math:`\sum_{\text{obs}} [c p (1 - 2s)
        + (c - 1) s^2] + \langle X^\top X, Y^\top Y\rangle` plus the penalty (the
        ``implicit`` package's ``calculate_loss`` is this divided by :math:`\sum_{\text{obs}}
        c + mn - \mathrm{nnz}`).

    Raises
    ------
    TypeError
        If ``R`` is not Interactions or a sparse matrix, or an argument has the wrong type.
    ValueError
        If ``R`` is empty or has a negative value, ``rank`` exceeds ``min(n_users,
        n_items)``, ``alpha <= 0``, ``reg < 0``, an option is unknown, ``P0``/``Q0`` have the
        wrong shape, or a Cholesky solve meets a matrix that is not positive definite.
    """
    inter, X = _implicit_data(R)
    m, n = inter.shape
    rank = check_rank(rank, "rank", min(m, n))
    reg = check_positive(reg, "reg", allow_zero=True)
    alpha = check_positive(alpha, "alpha")
    convention = check_choice(convention, "convention", CONVENTIONS)
    solver = check_choice(solver, "solver", ALS_SOLVERS)
    max_iter = check_positive_int(max_iter, "max_iter")
    cg_steps = check_positive_int(cg_steps, "cg_steps")
    threads = _check_threads(num_threads)
    dt: Any = check_float_dtype(dtype)
    rng = as_generator(seed)
    P = (_initial(P0, (m, rank), dt, "P0") if P0 is not None
         else rng.random((m, rank), dtype=dt) * dt.type(INIT_SCALE))
    Q = (_initial(Q0, (n, rank), dt, "Q0") if Q0 is not None
         else rng.random((n, rank), dtype=dt) * dt.type(INIT_SCALE))
    user, item = _sides(X, convention, alpha, reg, dt)
    errors: list[float] = []
    for _ in range(max_iter):
        _half_sweep(user, P, Q, solver, cg_steps, threads, "user")
        _half_sweep(item, Q, P, solver, cg_steps, threads, "item")
        if return_info:
            errors.append(_als_loss(user, item, P, Q))
    model = MF(P, Q)
    return (model, Info(max_iter, False, tuple(errors))) if return_info else model


# --------------------------------------------------------------------------- BPR


def _bpr_negatives(users: NDArray[np.int64], keys: NDArray[np.int64], n_items: int,
                   rng: np.random.Generator) -> NDArray[np.int64]:
    """A uniform unobserved item for each user, redrawn while it is observed.

    ``keys`` are the sorted ``u * n_items + i`` of the observed entries.
    """
    j = np.asarray(rng.integers(n_items, size=users.shape[0]), dtype=np.int64)
    todo = np.arange(users.shape[0])
    while todo.size:
        key = users[todo] * n_items + j[todo]
        pos = np.minimum(np.searchsorted(keys, key), keys.shape[0] - 1)
        todo = todo[keys[pos] == key]
        j[todo] = rng.integers(n_items, size=todo.size)
    return j


@overload
def bpr(R: Any, rank: int, *, lr: float = ..., reg: float = ..., n_epochs: int = ...,
        samples_per_epoch: int | None = ..., seed: SeedLike = ...,
        return_info: Literal[False] = ...) -> MF: ...
@overload
def bpr(R: Any, rank: int, *, lr: float = ..., reg: float = ..., n_epochs: int = ...,
        samples_per_epoch: int | None = ..., seed: SeedLike = ...,
        return_info: Literal[True]) -> tuple[MF, Info]: ...
@overload
def bpr(R: Any, rank: int, *, lr: float = ..., reg: float = ..., n_epochs: int = ...,
        samples_per_epoch: int | None = ..., seed: SeedLike = ...,
        return_info: bool) -> MF | tuple[MF, Info]: ...
def bpr(R: Any, rank: int, *, lr: float = 0.01, reg: float = 0.01, n_epochs: int = 20,
        samples_per_epoch: int | None = None, seed: SeedLike = None,
        return_info: bool = False) -> MF | tuple[MF, Info]:
    r"""Bayesian personalised ranking by SGD (Rendle et al., 2009), with an item bias.

    Each step draws a triple :math:`(u, i, j)`: an observed pair :math:`(u, i)` uniformly
    among the observations, then :math:`j` uniformly among all items, redrawn until
    :math:`(u, j)` is unobserved (the ``implicit`` package instead draws :math:`j` in
    proportion to item popularity and skips the step when it is observed). With
    :math:`x = \hat x_{ui} - \hat x_{uj}`, :math:`\hat x_{ui} = p_u^\top q_i + b_i` and
    :math:`z = \sigma(-x) = 1 - \sigma(x)`, the ascent step on
    :math:`\ln\sigma(x) - \lambda(\|p_u\|^2 + \|q_i\|^2 + \|q_j\|^2 + b_i^2 + b_j^2)/2`:

    .. math:: p_u \mathrel{+}= \eta\,(z (q_i - q_j) - \lambda p_u), \quad
              q_i \mathrel{+}= \eta\,(z p_u - \lambda q_i), \quad
              q_j \mathrel{+}= \eta\,(-z p_u - \lambda q_j),

    :math:`b_i \mathrel{+}= \eta (z - \lambda b_i)`, :math:`b_j \mathrel{+}= \eta (-z -
    \lambda b_j)`, all from the values before the step. The triples of an epoch are drawn
    with NumPy from ``seed`` and applied in order by a Numba kernel: deterministic given
    the seed.

    Parameters
    ----------
    R : Interactions or SciPy sparse matrix
        Nonnegative implicit feedback; the entries with a positive value (duplicates summed)
        are the observed pairs, their values are not used.
    rank : int
        Number of factors, ``1 <= rank <= min(n_users, n_items)``.
    lr : float
        The step size :math:`\eta > 0`.
    reg : float
        :math:`\lambda \ge 0`.
    n_epochs : int
        Epochs (``>= 1``).
    samples_per_epoch : int, optional
        Triples per epoch (default: the number of observed pairs).
    seed : int, numpy.random.Generator or None
        Draws the initial factors (``P`` then ``Q``, uniform on :math:`[-\tfrac12,
        \tfrac12)/\text{rank}`, as ``implicit`` does; item biases start at 0) and the
        triples.
    return_info : bool
        Also return an :class:`~refimpl.results.Info`.

    Returns
    -------
    MF
        float64 ``P``, ``Q`` and ``item_bias``; ``user_bias`` None, mean 0.
    Info
        Only with ``return_info``: ``n_iter = n_epochs``, ``converged`` False (no stopping
        test) and ``errors``, per epoch, the mean BPR loss :math:`-\ln\sigma(x_{uij})` of
        the epoch's triples, each measured just before its update.

    Raises
    ------
    TypeError
        If ``R`` is not Interactions or a sparse matrix, or an argument has the wrong type.
    ValueError
        If ``R`` is empty or has a negative value, no user has both an observed and an
        unobserved item, ``rank`` exceeds ``min(n_users, n_items)``, ``lr <= 0`` or
        ``reg < 0``.

    Notes
    -----
    The observations of a user who has seen every item cannot form a triple; they are left
    out of the sampling.
    """
    from refimpl.completion import _implicit_numba as K

    inter, X = _implicit_data(R)
    m, n = inter.shape
    rank = check_rank(rank, "rank", min(m, n))
    lr = check_positive(lr, "lr")
    reg = check_positive(reg, "reg", allow_zero=True)
    n_epochs = check_positive_int(n_epochs, "n_epochs")
    X.data[X.data <= 0] = 0
    X.eliminate_zeros()
    counts = np.diff(X.indptr)
    users = np.repeat(np.arange(m, dtype=np.int64), counts)
    items = X.indices.astype(np.int64)
    keys = users * n + items  # sorted: CSR rows ascending, sorted columns within rows
    usable = counts[users] < n
    if not usable.any():
        raise ValueError("R: every user with an observation has seen every item; BPR has no "
                         "unobserved item to rank below")
    pos_u, pos_i = users[usable], items[usable]
    S = (pos_u.shape[0] if samples_per_epoch is None
         else check_positive_int(samples_per_epoch, "samples_per_epoch"))
    rng = as_generator(seed)
    P = (rng.random((m, rank)) - 0.5) / rank
    Q = (rng.random((n, rank)) - 0.5) / rank
    bias = np.zeros(n)
    errors: list[float] = []
    for _ in range(n_epochs):
        t = rng.integers(pos_u.shape[0], size=S)
        u, i = pos_u[t], pos_i[t]
        j = _bpr_negatives(u, keys, n, rng)
        loss, _correct = K.bpr_epoch(P, Q, bias, u, i, j, lr, reg)
        errors.append(float(loss))
    model = MF(P, Q, None, bias, 0.0)
    return (model, Info(n_epochs, False, tuple(errors))) if return_info else model


# --------------------------------------------------------------------------- EASE


class EASE(NamedTuple):
    r"""A fitted EASE model: scores :math:`\hat X = X B` (Steck, 2019).

    Attributes
    ----------
    B : (n_items, n_items) float64 array
        The item-item weights, zero diagonal.
    X : (n_users, n_items) scipy.sparse.csr_matrix
        The training interactions (float64, duplicates summed), kept because EASE scores a
        user from the user's own row: ``scores(users) = X[users] @ B``.
    """

    B: NDArray[np.float64]
    X: scipy.sparse.csr_matrix

    @property
    def n_items(self) -> int:
        """Number of items.

        Returns
        -------
        int
        """
        return int(self.B.shape[0])

    def scores(self, users: ArrayLike | None = None) -> NDArray[np.float64]:
        """Scores of every item for training users: their rows of ``X B``.

        Parameters
        ----------
        users : (u,) int array, optional
            Training users (all by default).

        Returns
        -------
        (u, n_items) float64 array
        """
        u = (np.arange(self.X.shape[0]) if users is None
             else np.asarray(users, dtype=np.int64).ravel())
        return np.asarray(self.X[u] @ self.B, dtype=np.float64)

    def scores_for(self, x: Any) -> NDArray[np.float64]:
        """Scores of every item for any user given the user's interaction vector: ``x B``.

        EASE needs no fold-in: a new user is scored exactly as a training user with the
        same row.

        Parameters
        ----------
        x : (n_items,) array-like or (1, n_items) SciPy sparse matrix
            The user's interaction values (0 where none).

        Returns
        -------
        (n_items,) float64 array

        Raises
        ------
        ValueError
            If ``x`` has the wrong length or a non-finite value.
        """
        import scipy.sparse

        if scipy.sparse.issparse(x):
            if x.shape != (1, self.n_items):
                raise ValueError(f"x must have shape (1, {self.n_items}); got {x.shape}")
            v = np.asarray(x.toarray(), dtype=np.float64).ravel()
        else:
            v = np.asarray(x, dtype=np.float64)
            if v.shape != (self.n_items,):
                raise ValueError(f"x must have shape ({self.n_items},); got {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError("x contains NaN or Inf")
        return v @ self.B

    def recommend(self, users: ArrayLike, k: int = 10, *,
                  exclude: Any = None) -> NDArray[np.int64]:
        """The ``k`` best-scored items for each training user, best first.

        Parameters
        ----------
        users : (u,) int array
        k : int
            Items per user.
        exclude : Interactions or SciPy sparse matrix, optional
            Items already seen (for example ``self.X``); they are never recommended.

        Returns
        -------
        (u, k) int64 array
        """
        u = np.asarray(users, dtype=np.int64).ravel()
        s = self.scores(u)
        if exclude is not None:
            mask_seen(s, u, exclude)
        return top_k(s, k)


def ease(R: Any, reg: float = 500.0) -> EASE:
    r"""EASE, the closed-form item-item autoencoder of Steck (2019).

    :math:`B = \arg\min_B \|X - XB\|_F^2 + \lambda\|B\|_F^2` subject to
    :math:`\operatorname{diag}(B) = 0`: with :math:`P = (X^\top X + \lambda I)^{-1}`,
    :math:`B_{ij} = -P_{ij} / P_{jj}` and :math:`B_{jj} = 0`. The Lagrange conditions read
    :math:`(X^\top X + \lambda I) B - X^\top X = -\operatorname{diag}(\mu)`: the left side
    is diagonal. :math:`P` comes from a Cholesky factorisation of the Gram matrix
    (:math:`O(n^3)` time, :math:`O(n^2)` memory in the number of items). Negative weights are
    kept (cornac's ``EASE`` clips them by default, ``posB=True``).

    Parameters
    ----------
    R : Interactions or SciPy sparse matrix
        The interactions (users × items), used with their values as given (binarise them
        first for Steck's 0/1 matrix); duplicates are summed.
    reg : float
        :math:`\lambda > 0` (Steck's defaults lie in the hundreds for counts of this size).

    Returns
    -------
    EASE

    Raises
    ------
    TypeError
        If ``R`` is not Interactions or a sparse matrix.
    ValueError
        If ``R`` is empty or ``reg <= 0``.
    """
    import scipy.linalg

    inter = as_interactions(R)
    reg = check_positive(reg, "reg")
    X = inter.csr().astype(np.float64)
    X.sum_duplicates()
    X.sort_indices()
    G = np.asarray((X.T @ X).toarray(), dtype=np.float64)
    G[np.diag_indices_from(G)] += reg
    P = scipy.linalg.cho_solve(scipy.linalg.cho_factor(G, lower=True),
                               np.eye(G.shape[0]))
    B = -P / np.diag(P)[None, :]
    B[np.diag_indices_from(B)] = 0.0
    return EASE(B, X)


# --------------------------------------------------------------------------- new users


def _user_items(items: ArrayLike, values: ArrayLike | None,
                n_items: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Checked item indices and values of one user, duplicates summed, sorted by item."""
    it = np.asarray(items).ravel()
    if it.size and not np.issubdtype(it.dtype, np.integer):
        raise TypeError(f"items must hold integer item indices; got dtype {it.dtype}")
    it = it.astype(np.int64)
    vals = (np.ones(it.shape[0]) if values is None
            else np.asarray(values, dtype=np.float64).ravel())
    if vals.shape != it.shape:
        raise ValueError(f"values must have one entry per item; got {vals.shape[0]} values "
                         f"for {it.shape[0]} items")
    if it.size and (it.min() < 0 or it.max() >= n_items):
        raise ValueError(f"items must lie in [0, {n_items})")
    if not np.all(np.isfinite(vals)):
        raise ValueError("values contains NaN or Inf")
    if vals.size and vals.min() < 0:
        raise ValueError(f"values must be nonnegative (implicit feedback); smallest is "
                         f"{float(vals.min())!r}")
    uniq, inv = np.unique(it, return_inverse=True)
    summed = np.zeros(uniq.shape[0])
    np.add.at(summed, inv, vals)
    return uniq, summed


def fold_in_implicit(model: MF, items: ArrayLike, values: ArrayLike | None = None, *,
                     reg: float, alpha: float,
                     convention: str = "implicit") -> NDArray[np.float64]:
    r"""The factor of a new user, by one exact ALS row solve with the item factors fixed.

    Solves :math:`(Q^\top Q + Q^\top (C_u - I) Q + \lambda_u I)\, x = Q^\top C_u p_u` for the
    user's observations (the normal equations of :func:`implicit_als`, same convention),
    in float64; the model is not refitted.

    Parameters
    ----------
    model : MF
        A fitted factor model (its ``Q`` is used).
    items : (t,) int array
        The user's items (repeats are summed).
    values : (t,) array, optional
        Their nonnegative counts (all 1 by default).
    reg : float
        :math:`\lambda \ge 0`, the value the model was fitted with.
    alpha : float
        :math:`\alpha > 0`, the value the model was fitted with.
    convention : {"implicit", "spark"}
        As in :func:`implicit_als`.

    Returns
    -------
    (rank,) float64 array
        The user factor (zero for a user without items).

    Raises
    ------
    TypeError
        If ``model`` is not an MF or ``items`` are not integers.
    ValueError
        If an item is out of range, a value is negative or not finite, ``reg < 0``,
        ``alpha <= 0``, ``convention`` is unknown, or the system is singular.
    """
    if not isinstance(model, MF):
        raise TypeError(f"model must be an MF; got {type(model).__name__}")
    reg = check_positive(reg, "reg", allow_zero=True)
    alpha = check_positive(alpha, "alpha")
    convention = check_choice(convention, "convention", CONVENTIONS)
    Q = np.asarray(model.Q, dtype=np.float64)
    k = Q.shape[1]
    it, r = _user_items(items, values, Q.shape[0])
    if it.size == 0:
        return np.zeros(k)
    w, bc = _weights(r, convention, alpha, np.dtype(np.float64))
    lam = reg if convention == "implicit" else reg * it.size
    Yu = Q[it]
    A = Q.T @ Q + (Yu * w[:, None]).T @ Yu + lam * np.eye(k)
    b = Yu.T @ bc
    try:
        return np.asarray(np.linalg.solve(A, b), dtype=np.float64)
    except np.linalg.LinAlgError as e:
        raise ValueError(f"the fold-in system is singular ({e}); increase reg") from e


def recommend_new_user(model: MF | EASE, items: ArrayLike, values: ArrayLike | None = None,
                       k: int = 10, *, reg: float | None = None, alpha: float | None = None,
                       convention: str = "implicit", fallback: MF | None = None,
                       exclude_seen: bool = True) -> NDArray[np.int64]:
    r"""The ``k`` best items for a user absent from training, best first.

    - An :class:`~refimpl.completion.MF` model folds the user in
      (:func:`fold_in_implicit`, no refit) and scores :math:`\mu + c_i + q_i^\top x` (the
      model's mean and item bias, when it has them; a new user has no user bias).
    - An :class:`EASE` model scores the user's interaction vector,
      :meth:`EASE.scores_for`.
    - A user with no items at all (the cold start) gets the top ``k`` of ``fallback``, for
      example :func:`refimpl.completion.popularity` of the training data, with a
      ``UserWarning`` saying so.

    Parameters
    ----------
    model : MF or EASE
        The fitted model.
    items : (t,) int array
        The user's items (may be empty).
    values : (t,) array, optional
        Their nonnegative counts (all 1 by default).
    k : int
        How many items.
    reg, alpha : float, optional
        The fitting values for the fold-in of an MF model (default: :func:`implicit_als`'s
        defaults, 0.01 and 1.0); ignored for EASE.
    convention : {"implicit", "spark"}
        The fold-in convention of an MF model; ignored for EASE.
    fallback : MF, optional
        The model whose item scores (:math:`\mu + c_i`) rank items for a user without any.
    exclude_seen : bool
        Never recommend the user's own items.

    Returns
    -------
    (k,) int64 array

    Raises
    ------
    TypeError
        If ``model`` or ``fallback`` is of the wrong type.
    ValueError
        If ``items`` is empty and no ``fallback`` is given, or as :func:`fold_in_implicit`
        and :func:`~refimpl.completion.top_k` raise.

    Warns
    -----
    UserWarning
        When ``items`` is empty and the fallback's ranking is returned.
    """
    if not isinstance(model, MF | EASE):
        raise TypeError(f"model must be an MF or an EASE; got {type(model).__name__}")
    n = model.n_items if isinstance(model, EASE) else int(np.asarray(model.Q).shape[0])
    it, r = _user_items(items, values, n)
    if it.size == 0:
        if fallback is None:
            raise ValueError("the new user has no items and no fallback model was given "
                             "(pass fallback=popularity(train))")
        if not isinstance(fallback, MF):
            raise TypeError(f"fallback must be an MF; got {type(fallback).__name__}")
        if np.asarray(fallback.Q).shape[0] != n:
            raise ValueError(f"fallback has {np.asarray(fallback.Q).shape[0]} items; the model "
                             f"has {n}")
        warnings.warn("the new user has no items: returning the top-k of the fallback model "
                      f"(fallback, an MF of rank {np.asarray(fallback.Q).shape[1]}, scored by "
                      "its mean and item bias)", UserWarning, stacklevel=2)
        s = np.full(n, float(fallback.mean))
        if fallback.item_bias is not None:
            s += np.asarray(fallback.item_bias, dtype=np.float64)
        return top_k(s[None, :], k)[0]
    if isinstance(model, EASE):
        x = np.zeros(n)
        x[it] = r
        s = model.scores_for(x)
    else:
        x = fold_in_implicit(model, it, r, reg=0.01 if reg is None else reg,
                             alpha=1.0 if alpha is None else alpha, convention=convention)
        s = np.asarray(model.Q, dtype=np.float64) @ x + float(model.mean)
        if model.item_bias is not None:
            s += np.asarray(model.item_bias, dtype=np.float64)
    if exclude_seen:
        s[it] = -np.inf
    return top_k(s[None, :], k)[0]

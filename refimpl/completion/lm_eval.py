r"""Finding the best of many methods with few evaluations: bandits plus low-rank completion.

Zhou, Belardi, Wu, Zhang, Gomes, Sun & Weinberger (2025, ICLR; "On Speeding Up Language
Model Evaluation") cast the choice among :math:`m` methods (models, prompts, settings)
evaluated on :math:`n` examples as a matrix :math:`S \in [0, 1]^{m \times n}` of scores of
which only a budget of :math:`T \ll mn` entries may be computed. The goal is the best
method :math:`i^\star = \arg\max_i \bar S_i`, :math:`\bar S_i = \frac1n \sum_j S_{ij}`.
Two ideas cut the cost:

- **a best-arm bandit** decides which entry to evaluate next: methods that are clearly
  worse stop being evaluated. *UCB-E* (Audibert, Bubeck & Munos, 2010) evaluates, in each
  round, a batch of random unseen examples of the method with the largest bound

  .. math:: B_i = \hat\mu_i + \sqrt{a / n_i},

  :math:`\hat\mu_i` the mean of the :math:`n_i` scores seen for method :math:`i`
  (:math:`B_i = \infty` while :math:`n_i = 0`);
- **low-rank completion** fills in the unseen scores: examples are correlated (an easy
  example is easy for every method), so :math:`S` is close to low rank, and every method's
  estimate borrows strength from the others. *UCB-E-LRF* first evaluates a random
  ``warmup`` fraction of the entries, then in each round fits an **ensemble** of
  :math:`K` rank-:math:`r` factorisations :math:`S \approx U_k V_k^\top` by alternating
  ridge least squares on the observed entries (each member on a random subset of them,
  a fraction ``drop_probability`` dropped, and from its own random start), takes the
  ensemble mean :math:`\hat S_{ij}` and standard deviation :math:`\sigma_{ij}` of each
  unseen entry, and bounds each method by

  .. math:: B_i = \frac1n \Big(\sum_{j\ \text{seen}} S_{ij}
            + \sum_{j\ \text{unseen}} (\hat S_{ij} + \eta\, \sigma_{ij})\Big);

  the method with the largest bound gets its unseen examples of largest
  :math:`\sigma_{ij}` evaluated. The estimate of :math:`\bar S_i` completes the row with
  :math:`\hat S` (no :math:`\eta` term).

The paper reports that the best method is found with 5–15% of the evaluations on real LLM
benchmarks. Here :func:`synthetic_score_matrix` plants the structure (a low-rank logit
matrix with a strong example-difficulty direction) so that the claim can be checked at a
small scale; the ALS is a few lines of dense masked NumPy, vectorised over the ensemble.

One deviation from the paper, on by default (``biases=True``): the factorisations carry a
global mean and per-method and per-example offsets, :math:`\hat S_{ij} = \mu + b_i + c_j +
u_i^\top v_j` (the model of ``refimpl.completion.als`` with ``biases=True``). The
paper's plain :math:`U V^\top` (rank 1, ridge 0.1) relies on matrices with hundreds of
methods, where every example is seen many times after the warm-up; on the matrices of a
few dozen methods used here it completes the 0/1 scores worse than the row means do,
while the offsets capture the example difficulty that the bandit needs.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from refimpl._typing import NDArray
from refimpl._validation import (
    check_fraction,
    check_positive,
    check_positive_int,
)
from refimpl.seeding import SeedLike, as_generator

__all__ = ["BanditResult", "ScoreMatrix", "synthetic_score_matrix", "ucb_e", "ucb_low_rank",
           "uniform_baseline"]

#: What the evaluation functions take as ``scores_oracle``: the full (m, n) score matrix (an
#: evaluation is a look-up) or a function ``(methods, examples) -> scores`` of int arrays.
Oracle = NDArray[np.floating] | Callable[[NDArray[np.int64], NDArray[np.int64]], Any]


class ScoreMatrix(NamedTuple):
    """A synthetic methods × examples score matrix with known answer.

    Attributes
    ----------
    scores : (m, n) float64 array
        The scores (0.0 / 1.0 when binary, else the probabilities).
    probabilities : (m, n) float64 array
        :math:`\\sigma(\\text{logits})`, the chance that method ``i`` solves example ``j``.
    logits : (m, n) float64 array
        The planted low-rank logit matrix.
    means : (m,) float64 array
        Each method's mean score over the ``n`` examples, ``scores.mean(1)``.
    best : int
        ``argmax(means)`` (the lowest index among ties): what a search should find.
    """

    scores: NDArray[np.float64]
    probabilities: NDArray[np.float64]
    logits: NDArray[np.float64]
    means: NDArray[np.float64]
    best: int


class BanditResult(NamedTuple):
    """The outcome of a budgeted search for the best method.

    Attributes
    ----------
    best : int
        The method judged best (``argmax(means)``).
    n_evaluations : int
        Entries evaluated (calls of the oracle per entry), at most the budget.
    means : (m,) float64 array
        The estimated mean score of each method (NaN for a method never evaluated by an
        estimator that needs its own evaluations).
    observed : (m, n) bool array
        Which entries were evaluated.
    """

    best: int
    n_evaluations: int
    means: NDArray[np.float64]
    observed: NDArray[np.bool_]


def synthetic_score_matrix(n_methods: int, n_examples: int, rank: int = 3, *,
                           difficulty: float = 2.0, spread: float = 1.0, binary: bool = True,
                           seed: SeedLike = None) -> ScoreMatrix:
    r"""A score matrix with a rank-``rank`` logit matrix and a known best method.

    The logits are :math:`L = U V^\top` with :math:`U_{:,0} = 1` and
    :math:`V_{:,0} = d \sim \mathcal N(0, \text{difficulty}^2)` (the easiness of each example,
    shared by every method), and for the other ``rank - 1`` columns
    :math:`U_{i,c} \sim \mathcal N(0, \text{spread}^2)`, :math:`V_{j,c} \sim \mathcal N(\mu_c,
    1)` with :math:`\mu = (1, 0, \dots, 0)` (so method ``i``'s skill is mostly
    :math:`U_{i,1}`, the rest is method-example interaction). Scores are Bernoulli draws of
    :math:`\sigma(L)` (``binary=True``) or the probabilities themselves.

    Parameters
    ----------
    n_methods, n_examples : int
        The shape ``(m, n)``, each ``>= 2``.
    rank : int
        The rank of the logit matrix, ``2 <= rank <= min(m, n)``.
    difficulty : float
        Standard deviation of the example easiness, ``>= 0``.
    spread : float
        Scale of the method factors, ``> 0``.
    binary : bool
        Bernoulli scores (the usual correct/incorrect metric) or probabilities.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    ScoreMatrix

    Raises
    ------
    TypeError
        If a count is not an integer.
    ValueError
        If a count or scale is out of range.
    """
    m = check_positive_int(n_methods, "n_methods")
    n = check_positive_int(n_examples, "n_examples")
    if m < 2 or n < 2:
        raise ValueError(f"n_methods and n_examples must be at least 2; got {m}, {n}")
    rank = check_positive_int(rank, "rank")
    if not 2 <= rank <= min(m, n):
        raise ValueError(f"rank must lie in [2, min(n_methods, n_examples)={min(m, n)}]; "
                         f"got {rank}")
    difficulty = check_positive(difficulty, "difficulty", allow_zero=True)
    spread = check_positive(spread, "spread")
    rng = as_generator(seed)
    U = np.ones((m, rank))
    V = np.empty((n, rank))
    V[:, 0] = difficulty * rng.standard_normal(n)
    U[:, 1:] = spread * rng.standard_normal((m, rank - 1))
    V[:, 1:] = rng.standard_normal((n, rank - 1))
    V[:, 1] += 1.0
    logits = U @ V.T
    prob = 1.0 / (1.0 + np.exp(-logits))
    scores = (rng.random((m, n)) < prob).astype(np.float64) if binary else prob.copy()
    means = scores.mean(axis=1)
    return ScoreMatrix(scores, prob, logits, means, int(np.argmax(means)))


# --------------------------------------------------------------------------- helpers


class _Evaluator:
    """Wraps the oracle: counts the evaluations and records what was seen."""

    def __init__(self, oracle: Any, shape: tuple[int, int] | None) -> None:
        if callable(oracle):
            if shape is None:
                raise ValueError("shape=(n_methods, n_examples) is required with a callable "
                                 "scores_oracle")
            self.fn = oracle
            m, n = (check_positive_int(s, "shape") for s in shape)
        else:
            S = np.asarray(oracle, dtype=np.float64)
            if S.ndim != 2 or min(S.shape) < 1:
                raise ValueError(f"scores_oracle must be a non-empty 2-D array; got shape "
                                 f"{S.shape}")
            if not np.all(np.isfinite(S)):
                raise ValueError("scores_oracle contains NaN or Inf")
            self.fn = lambda i, j: S[i, j]
            m, n = S.shape
        self.shape = (m, n)
        self.values = np.zeros((m, n))
        self.seen = np.zeros((m, n), dtype=bool)

    @property
    def count(self) -> int:
        return int(self.seen.sum())

    def __call__(self, i: NDArray[np.int64], j: NDArray[np.int64]) -> None:
        i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
        if i.size == 0:
            return
        v = np.asarray(self.fn(i, j), dtype=np.float64).reshape(i.shape)
        if not np.all(np.isfinite(v)):
            raise ValueError("scores_oracle returned NaN or Inf")
        self.values[i, j] = v
        self.seen[i, j] = True

    def random_unseen(self, k: int, rng: np.random.Generator) -> None:
        flat = np.flatnonzero(~self.seen)
        pick = rng.choice(flat, size=min(k, flat.size), replace=False)
        self(*np.unravel_index(pick, self.shape))


def _budget(budget: object, total: int) -> int:
    """An int budget is a count, a float one a fraction of the ``total`` entries."""
    if isinstance(budget, numbers.Integral) and not isinstance(budget, bool):
        return min(check_positive_int(budget, "budget"), total)
    if isinstance(budget, numbers.Real) and not isinstance(budget, bool):
        return max(1, min(total, round(check_fraction(budget, "budget") * total)))
    raise TypeError(f"budget must be an int (a count) or a float (a fraction); got "
                    f"{type(budget).__name__}")


def _empirical_means(ev: _Evaluator) -> NDArray[np.float64]:
    counts = ev.seen.sum(axis=1)
    sums = np.where(ev.seen, ev.values, 0.0).sum(axis=1)
    out = np.full(ev.shape[0], np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


def _argmax(means: NDArray[np.float64]) -> int:
    return int(np.argmax(np.where(np.isnan(means), -np.inf, means)))


def _ensemble_als(Y: NDArray[np.float64], seen: NDArray[np.bool_], rank: int, *,
                  n_models: int, reg: float, n_iter: int, drop_probability: float,
                  biases: bool, rng: np.random.Generator
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""``n_models`` ridge ALS fits of ``Y ≈ U Vᵀ`` (plus offsets) on the seen entries.

    Member ``e`` minimises :math:`\sum_{(i,j) \in \Omega_e} (Y_{ij} - \hat Y_{ij})^2
    + \lambda(\|U\|_F^2 + \|V\|_F^2 + \|b\|^2 + \|c\|^2)` over its own random subset
    :math:`\Omega_e` of the seen entries, with :math:`\hat Y_{ij} = u_i^\top v_j` or, with
    ``biases``, :math:`\hat Y_{ij} = \mu + b_i + c_j + u_i^\top v_j` (:math:`\mu` not
    penalised); each half-step is the exact ridge solve of every row (a factor row and its
    offset together), and each sweep ends by setting :math:`\mu` to its exact minimiser,
    the objective of ``refimpl.completion.als`` with ``biases=True``. Returns the
    ensemble mean and standard deviation of the completed matrices.
    """
    m, n = Y.shape
    M = np.broadcast_to(seen, (n_models, m, n)) & (rng.random((n_models, m, n))
                                                   >= drop_probability)
    M = M.astype(np.float64)
    Y0 = np.where(seen, Y, 0.0)
    q = rank + 1 if biases else rank
    U = rng.standard_normal((n_models, m, rank)) / math.sqrt(rank)
    V = rng.standard_normal((n_models, n, rank)) / math.sqrt(rank)
    b, c = np.zeros((n_models, m)), np.zeros((n_models, n))
    counts = np.maximum(M.sum(axis=(1, 2)), 1.0)
    mu = (M * Y0).sum(axis=(1, 2)) / counts if biases else np.zeros(n_models)
    ridge = reg * np.eye(q)
    MY = M * Y0
    Mt, MYt = M.transpose(0, 2, 1), MY.transpose(0, 2, 1)
    ones = np.ones((n_models, max(m, n), 1))

    def half(Mask: NDArray[np.float64], MaskY: NDArray[np.float64], W: NDArray[np.float64],
             w0: NDArray[np.float64]) -> tuple[Any, Any]:
        # row j: min_x sum_i Mask_ji (Y_ji - mu - w0_i - [w_i, 1]·x)^2 + reg |x|^2 (exact);
        # the right side sum_i Mask_ji (Y_ji - mu - w0_i) w_i is formed by products only
        if biases:
            W = np.concatenate([W, ones[:, :W.shape[1]]], axis=2)
        WW = (W[:, :, :, None] * W[:, :, None, :]).reshape(n_models, -1, q * q)
        G = (Mask @ WW).reshape(n_models, -1, q, q) + ridge
        rhs = MaskY @ W
        if biases:
            rhs -= mu[:, None, None] * (Mask @ W) + Mask @ (w0[:, :, None] * W)
        x = np.linalg.solve(G, rhs[..., None])[..., 0]
        return (x[..., :rank], x[..., rank]) if biases else (x, np.zeros(x.shape[:2]))

    def predict() -> NDArray[np.float64]:
        return U @ V.transpose(0, 2, 1) + mu[:, None, None] + b[:, :, None] + c[:, None, :]

    row_n, col_n = M.sum(axis=2), M.sum(axis=1)
    total_y = MY.sum(axis=(1, 2))
    for _ in range(n_iter):
        V, c = half(Mt, MYt, U, b)
        U, b = half(M, MY, V, c)
        if biases:  # the unpenalised mean: its exact minimiser given the rest
            fitted = ((M @ V) * U).sum(axis=(1, 2)) + (row_n * b).sum(1) + (col_n * c).sum(1)
            mu = (total_y - fitted) / counts
    pred = predict()
    return pred.mean(axis=0), pred.std(axis=0)


# --------------------------------------------------------------------------- searches


def uniform_baseline(scores_oracle: Oracle, budget: int | float, *, rank: int | None = None,
                     biases: bool = True, reg: float = 3.0, als_iter: int = 20,
                     ensemble_size: int = 8, shape: tuple[int, int] | None = None,
                     seed: SeedLike = None) -> BanditResult:
    r"""Evaluate ``budget`` entries drawn uniformly without replacement; estimate the means.

    Parameters
    ----------
    scores_oracle : (m, n) array or callable
        The full score matrix (evaluation = look-up) or ``f(methods, examples) -> scores``.
    budget : int or float
        Entries to evaluate: a count (int) or a fraction of ``m n`` in ``(0, 1]`` (float).
    rank : int, optional
        ``None`` (default): each method's mean is the mean of its evaluated scores (NaN if
        none). An int: complete the matrix by the ensemble ALS of rank ``rank`` first (see
        :mod:`refimpl.completion.lm_eval`) and average the completed rows.
    biases : bool
        Fit :math:`\mu + b_i + c_j + u_i^\top v_j` rather than :math:`u_i^\top v_j`.
    reg, als_iter, ensemble_size : float, int, int
        The ALS's ridge weight (``> 0``), sweeps (``>= 1``) and ensemble size (``>= 1``),
        used only with ``rank``.
    shape : (int, int), optional
        ``(m, n)``; needed with a callable oracle.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    BanditResult

    Raises
    ------
    TypeError
        If ``budget`` is neither an int nor a float, or a count is not an integer.
    ValueError
        If an argument is out of range or the oracle's scores are not finite.
    """
    rng = as_generator(seed)
    ev = _Evaluator(scores_oracle, shape)
    T = _budget(budget, ev.seen.size)
    ev.random_unseen(T, rng)
    if rank is None:
        means = _empirical_means(ev)
    else:
        rank = check_positive_int(rank, "rank")
        pred, _ = _ensemble_als(ev.values, ev.seen, rank, n_models=check_positive_int(
            ensemble_size, "ensemble_size"), reg=check_positive(reg, "reg"),
            n_iter=check_positive_int(als_iter, "als_iter"), drop_probability=0.0,
            biases=bool(biases), rng=rng)
        means = np.where(ev.seen, ev.values, pred).mean(axis=1)
    return BanditResult(_argmax(means), ev.count, means, ev.seen.copy())


def ucb_e(scores_oracle: Oracle, budget: int | float, *, a: float = 1.0,
          batch_size: int = 8, shape: tuple[int, int] | None = None,
          seed: SeedLike = None) -> BanditResult:
    r"""UCB-E (Audibert, Bubeck & Munos, 2010) with per-method empirical means.

    Each round evaluates ``batch_size`` random unseen examples of the method with the
    largest :math:`\hat\mu_i + \sqrt{a / n_i}` (unseen methods first, ties to the lowest
    index; fully evaluated methods are skipped) until the budget is spent.

    Parameters
    ----------
    scores_oracle : (m, n) array or callable
        As for :func:`uniform_baseline`.
    budget : int or float
        A count or a fraction of ``m n``.
    a : float
        Exploration constant, ``> 0``.
    batch_size : int
        Evaluations per round, ``>= 1``.
    shape : (int, int), optional
        ``(m, n)``; needed with a callable oracle.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    BanditResult
        ``means`` are the empirical means (NaN for a method never evaluated).

    Raises
    ------
    TypeError, ValueError
        As :func:`uniform_baseline`.
    """
    rng = as_generator(seed)
    a = check_positive(a, "a")
    batch_size = check_positive_int(batch_size, "batch_size")
    ev = _Evaluator(scores_oracle, shape)
    m, n = ev.shape
    T = _budget(budget, m * n)
    while ev.count < T:
        counts = ev.seen.sum(axis=1)
        mu = _empirical_means(ev)
        bound = np.where(counts > 0, np.nan_to_num(mu) + np.sqrt(a / np.maximum(counts, 1)),
                         np.inf)
        bound[counts == n] = -np.inf
        i = int(np.argmax(bound))
        free = np.flatnonzero(~ev.seen[i])
        take = rng.choice(free, size=min(batch_size, free.size, T - ev.count), replace=False)
        ev(np.full(take.size, i), take)
    means = _empirical_means(ev)
    return BanditResult(_argmax(means), ev.count, means, ev.seen.copy())


def ucb_low_rank(scores_oracle: Oracle, budget: int | float, rank: int = 1, *,
                 rounds: int = 20, warmup: float = 0.05, eta: float = 5.0,
                 biases: bool = True,
                 ensemble_size: int = 16, reg: float = 3.0, drop_probability: float = 0.05,
                 als_iter: int = 10, shape: tuple[int, int] | None = None,
                 seed: SeedLike = None) -> BanditResult:
    r"""UCB-E-LRF (Zhou et al., 2025): a bandit over methods on low-rank-completed scores.

    First ``warmup · m n`` entries (at most the budget) are evaluated uniformly at random.
    The rest of the budget is split into ``rounds`` near-equal batches; before each, the
    ensemble ALS (see :mod:`refimpl.completion.lm_eval`) completes the matrix, and the
    method with the largest completed-row bound gets the unseen examples of largest
    ensemble spread evaluated (if it has fewer unseen examples than the batch, the next
    methods by bound fill the batch). After the last round the ensemble is refitted and
    the means are the completed row averages.

    Parameters
    ----------
    scores_oracle : (m, n) array or callable
        As for :func:`uniform_baseline`.
    budget : int or float
        A count or a fraction of ``m n``.
    rank : int
        Rank of the factorisations, ``>= 1``.
    rounds : int
        Adaptive rounds after the warm-up, ``>= 1`` (each refits the ensemble).
    warmup : float
        Fraction of the entries evaluated at random first, in ``(0, 1]`` (the paper: 5%).
    eta : float
        Weight of the ensemble spread in the bound, ``>= 0``.
    biases : bool
        Fit :math:`\mu + b_i + c_j + u_i^\top v_j` (default) or the paper's plain
        :math:`u_i^\top v_j`.
    ensemble_size : int
        Factorisations in the ensemble, ``>= 2``.
    reg : float
        Ridge weight of the ALS, ``> 0``.
    drop_probability : float
        Fraction of the seen entries each member leaves out, in ``[0, 1)``.
    als_iter : int
        ALS sweeps per fit, ``>= 1``.
    shape : (int, int), optional
        ``(m, n)``; needed with a callable oracle.
    seed : int, numpy.random.Generator or None
        Source of the warm-up, the ensemble's starts and its dropped entries.

    Returns
    -------
    BanditResult

    Raises
    ------
    TypeError, ValueError
        As :func:`uniform_baseline`, or for an out-of-range parameter.
    """
    rng = as_generator(seed)
    rank = check_positive_int(rank, "rank")
    rounds = check_positive_int(rounds, "rounds")
    warmup = check_fraction(warmup, "warmup")
    eta = check_positive(eta, "eta", allow_zero=True)
    ensemble_size = check_positive_int(ensemble_size, "ensemble_size")
    if ensemble_size < 2:
        raise ValueError(f"ensemble_size must be at least 2 (its spread is the uncertainty); "
                         f"got {ensemble_size}")
    reg = check_positive(reg, "reg")
    drop_probability = check_positive(drop_probability, "drop_probability", allow_zero=True)
    if drop_probability >= 1:
        raise ValueError(f"drop_probability must lie in [0, 1); got {drop_probability}")
    als_iter = check_positive_int(als_iter, "als_iter")
    ev = _Evaluator(scores_oracle, shape)
    m, n = ev.shape
    T = _budget(budget, m * n)
    ev.random_unseen(min(T, max(1, round(warmup * m * n))), rng)

    def fit() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        return _ensemble_als(ev.values, ev.seen, rank, n_models=ensemble_size, reg=reg,
                             n_iter=als_iter, drop_probability=drop_probability,
                             biases=bool(biases), rng=rng)

    remaining = T - ev.count
    sizes = [remaining // rounds + (1 if r < remaining % rounds else 0) for r in range(rounds)]
    for size in sizes:
        if size == 0 or ev.count >= m * n:
            continue
        mean, std = fit()
        bound = np.where(ev.seen, ev.values, mean + eta * std).mean(axis=1)
        bound[ev.seen.all(axis=1)] = -np.inf
        spread = np.where(ev.seen, -np.inf, std)
        left = size
        for i in np.argsort(-bound, kind="stable"):
            if left == 0 or bound[i] == -np.inf:
                break
            free = np.flatnonzero(~ev.seen[i])
            take = free[np.argsort(-spread[i, free], kind="stable")[:left]]
            ev(np.full(take.size, i), take)
            left -= take.size
    mean, _ = fit()
    means = np.where(ev.seen, ev.values, mean).mean(axis=1)
    return BanditResult(_argmax(means), ev.count, means, ev.seen.copy())

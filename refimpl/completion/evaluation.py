r"""Evaluating completion and recommendation: train/test splits, rating error, ranking metrics.

**Splits.** :func:`split_by_user` holds out, for every user, a random
:math:`\lfloor f\, n_u + \tfrac12 \rfloor` of their :math:`n_u` observations (``f`` the test
fraction), always keeping ``min_train`` of them in the training set, so every user can be
scored; :func:`split_by_time` holds out each user's latest observations instead (or all
observations after a global time cut), the protocol that does not let a model see the
future (Campos, Díez & Cantador, 2014).

**Rating error** on the held-out entries :math:`T` (the Netflix Prize measure; Bennett &
Lanning, 2007):

.. math:: \mathrm{RMSE} = \Big(\frac1{|T|}\sum_{(u,i)\in T} (\hat r_{ui} - r_{ui})^2\Big)^{1/2},
          \qquad \mathrm{MAE} = \frac1{|T|}\sum_{(u,i)\in T} |\hat r_{ui} - r_{ui}|.

**Ranking** (top-N recommendation; Cremonesi, Koren & Turrin, 2010). For user ``u`` the
items are ranked by score with the user's training items removed; :math:`L_u` is the top
``k`` and :math:`T_u` the relevant held-out items. With binary relevance,

.. math:: \mathrm{precision@}k = \frac{|L_u \cap T_u|}{k}, \qquad
          \mathrm{recall@}k = \frac{|L_u \cap T_u|}{\min(k, |T_u|)},

.. math:: \mathrm{NDCG@}k = \frac{\sum_{j=1}^{k} [L_{u,j} \in T_u] / \log_2(j + 1)}
          {\sum_{j=1}^{\min(k, |T_u|)} 1 / \log_2(j + 1)}

(Järvelin & Kekäläinen, 2002), each averaged over the users with at least one relevant
held-out item. The recall is the *capped* one (as in Liang, Krishnan, Hoffman & Jebara,
2018): its denominator is :math:`\min(k, |T_u|)`, so a perfect list scores 1 even for a user
with more than ``k`` relevant items. The ``implicit`` library's ``ranking_metrics_at_k``
uses the same cap, but pooled over users: its ``"precision"`` is
:math:`\sum_u |L_u \cap T_u| / \sum_u \min(k, |T_u|)`, which equals the mean of our
recall@k when every user has the same :math:`\min(k, |T_u|)`; its ``"ndcg"`` is ours.

**Baseline.** :func:`popularity` recommends the same items to everybody, the most rated
first (TopPop in Cremonesi et al., 2010): any personalised method should beat it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from refimpl._typing import ArrayLike, NDArray
from refimpl._validation import check_fraction, check_nonnegative_int, check_positive_int
from refimpl.completion.model import MF, Interactions, as_interactions, mask_seen, top_k
from refimpl.seeding import SeedLike, as_generator

__all__ = [
    "mae",
    "ndcg_at_k",
    "popularity",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
    "rmse",
    "split_by_time",
    "split_by_user",
]

#: Users scored at once by :func:`ranking_metrics` (bounds the (users × items) score block).
BATCH_USERS = 2048


# ---------------------------------------------------------------- splits

def _test_counts(users: NDArray[np.int64], n_users: int, fraction: float,
                 min_train: int) -> NDArray[np.int64]:
    """Held-out observations per user: ``floor(f n_u + 1/2)``, at most ``n_u - min_train``."""
    n_u = np.bincount(users, minlength=n_users)
    want = np.floor(fraction * n_u + 0.5).astype(np.int64)
    return np.where(n_u > min_train, np.minimum(want, n_u - min_train), 0)


def _hold_out_last(users: NDArray[np.int64], order: NDArray[np.int64],
                   counts: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Mask of the last ``counts[u]`` observations of each user in ``order``.

    ``order`` must list every observation, grouped by user in increasing user order.
    """
    u_sorted = users[order]
    starts = np.searchsorted(u_sorted, np.arange(len(counts)), side="left")
    ends = np.searchsorted(u_sorted, np.arange(len(counts)), side="right")
    pos = np.arange(len(order)) - starts[u_sorted]          # rank within the user
    keep_train = ends[u_sorted] - starts[u_sorted] - counts[u_sorted]
    test = np.zeros(len(order), dtype=bool)
    test[order] = pos >= keep_train
    return test


def split_by_user(R: Any, test_fraction: float = 0.2, *, min_train: int = 1,
                  seed: SeedLike = None) -> tuple[Interactions, Interactions]:
    r"""Hold out a random fraction of every user's observations.

    User ``u`` with :math:`n_u` observations gives
    :math:`\min(\lfloor f n_u + \tfrac12 \rfloor,\; n_u - \text{min\_train})` of them, chosen
    uniformly at random, to the test set; a user with ``n_u <= min_train`` keeps all in
    training.

    Parameters
    ----------
    R : Interactions or SciPy sparse matrix
        All observations.
    test_fraction : float
        ``f``, in ``(0, 1]``.
    min_train : int
        Observations every user keeps in training (``>= 0``).
    seed : int, numpy.random.Generator or None
        The same seed gives the same split.

    Returns
    -------
    train, test : Interactions
        Disjoint, together all of ``R``, each in ``R``'s order and shape, with its timestamps.

    Raises
    ------
    TypeError, ValueError
        On a bad argument (named in the message).
    """
    R = as_interactions(R)
    fraction = check_fraction(test_fraction, "test_fraction")
    min_train = check_nonnegative_int(min_train, "min_train")
    rng = as_generator(seed)
    counts = _test_counts(R.users, R.n_users, fraction, min_train)
    order = np.lexsort((rng.random(R.nnz), R.users))     # by user, random within the user
    test = _hold_out_last(R.users, order, counts)
    return R.subset(~test), R.subset(test)


def split_by_time(R: Any, test_fraction: float = 0.2, *, per_user: bool = True,
                  min_train: int = 1) -> tuple[Interactions, Interactions]:
    r"""Hold out the latest observations, per user or after a global time cut.

    Observations are ordered by timestamp, equal timestamps by their position in ``R``
    (earlier first). With ``per_user`` each user's last
    :math:`\min(\lfloor f n_u + \tfrac12 \rfloor, n_u - \text{min\_train})` observations go to
    the test set (the count of :func:`split_by_user`); otherwise the last
    :math:`\lfloor f\,\mathrm{nnz} + \tfrac12 \rfloor` observations overall do, a cut at the
    :math:`1 - f` quantile of time (observations at the cut's timestamp may fall on either
    side, by their order in ``R``; some users may then have no training data).

    Parameters
    ----------
    R : Interactions
        All observations, with timestamps.
    test_fraction : float
        ``f``, in ``(0, 1]``.
    per_user : bool
        Cut each user's history (True) or the whole log at one time (False).
    min_train : int
        With ``per_user``: observations every user keeps in training (``>= 0``).

    Returns
    -------
    train, test : Interactions
        Disjoint, together all of ``R``, in ``R``'s order; no test observation is earlier
        than a training one (of the same user, with ``per_user``).

    Raises
    ------
    ValueError
        If ``R`` has no timestamps, or on a bad argument.
    """
    R = as_interactions(R)
    if R.timestamps is None:
        raise ValueError("R has no timestamps: split_by_time needs Interactions with timestamps")
    fraction = check_fraction(test_fraction, "test_fraction")
    min_train = check_nonnegative_int(min_train, "min_train")
    position = np.arange(R.nnz)
    if per_user:
        counts = _test_counts(R.users, R.n_users, fraction, min_train)
        order = np.lexsort((position, R.timestamps, R.users))
        test = _hold_out_last(R.users, order, counts)
    else:
        n_test = min(R.nnz, math.floor(fraction * R.nnz + 0.5))
        order = np.lexsort((position, R.timestamps))
        test = np.zeros(R.nnz, dtype=bool)
        test[order[R.nnz - n_test:]] = True
    return R.subset(~test), R.subset(test)


# ---------------------------------------------------------------- rating error

def _errors(model: Any, test: Any, clip: tuple[float, float] | None) -> NDArray[np.float64]:
    T = as_interactions(test, "test")
    if not hasattr(model, "predict"):
        raise TypeError(f"model must have a .predict(users, items) method; got "
                        f"{type(model).__name__}")
    pred = np.asarray(model.predict(T.users, T.items), dtype=np.float64)
    if pred.shape != T.values.shape:
        raise ValueError(f"model.predict returned shape {pred.shape}; expected {T.values.shape}")
    if clip is not None:
        try:
            lo, hi = (float(c) for c in clip)
        except (TypeError, ValueError):
            raise TypeError(f"clip must be a pair (low, high); got {clip!r}") from None
        if not lo <= hi:
            raise ValueError(f"clip must have low <= high; got {clip!r}")
        pred = np.clip(pred, lo, hi)
    return pred - T.values


def rmse(model: Any, test: Any, *, clip: tuple[float, float] | None = None) -> float:
    """Root-mean-square error of a model's predictions on held-out ratings.

    Parameters
    ----------
    model : MF or any object with ``.predict(users, items)``
        The fitted model.
    test : Interactions or SciPy sparse matrix
        The held-out ratings.
    clip : (float, float), optional
        Clip the predictions to this rating scale first.

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        On a bad argument (named in the message).
    """
    e = _errors(model, test, clip)
    return float(np.sqrt(np.mean(e * e)))


def mae(model: Any, test: Any, *, clip: tuple[float, float] | None = None) -> float:
    """Mean absolute error of a model's predictions on held-out ratings.

    Parameters
    ----------
    model : MF or any object with ``.predict(users, items)``
        The fitted model.
    test : Interactions or SciPy sparse matrix
        The held-out ratings.
    clip : (float, float), optional
        Clip the predictions to this rating scale first.

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        On a bad argument (named in the message).
    """
    return float(np.mean(np.abs(_errors(model, test, clip))))


def popularity(R: Any) -> MF:
    """The popularity baseline: every user is offered the items with most observations.

    A factor model of rank 0 whose only term is the item bias, the number of observations
    of each item (ties in the ranking go to the lower item index).

    Parameters
    ----------
    R : Interactions or SciPy sparse matrix
        The training observations.

    Returns
    -------
    MF
        ``P`` zeros ``(n_users, 0)``, ``Q`` zeros ``(n_items, 0)``, ``item_bias`` the float64
        observation counts, ``user_bias`` None and ``mean`` 0.
    """
    R = as_interactions(R)
    counts = np.bincount(R.items, minlength=R.n_items).astype(np.float64)
    return MF(np.zeros((R.n_users, 0)), np.zeros((R.n_items, 0)), None, counts, 0.0)


# ---------------------------------------------------------------- ranking

def _single_user(ranked: ArrayLike, relevant: Any,
                 k: int) -> tuple[NDArray[np.bool_], int]:
    k = check_positive_int(k, "k")
    top = np.asarray(ranked).ravel()[:k]
    if top.size and not np.issubdtype(top.dtype, np.integer):
        raise TypeError(f"ranked must hold integer item indices; got dtype {top.dtype}")
    if np.unique(top).size != top.size:
        raise ValueError("ranked must not repeat an item among its first k")
    rel = np.unique(np.asarray(list(relevant) if isinstance(relevant, set | frozenset)
                               else relevant, dtype=np.int64).ravel())
    if rel.size == 0:
        raise ValueError("relevant must hold at least one item")
    return np.isin(top, rel), int(rel.size)


def precision_at_k(ranked: ArrayLike, relevant: Any, k: int) -> float:
    """Precision@k of one ranked list: relevant items among the first ``k``, over ``k``.

    Parameters
    ----------
    ranked : (>= 0,) int array
        Item indices, best first (a list shorter than ``k`` counts its missing places as
        misses).
    relevant : set or int array
        The relevant items (not empty).
    k : int
        The cutoff.

    Returns
    -------
    float
    """
    hits, _ = _single_user(ranked, relevant, k)
    return float(hits.sum()) / k


def recall_at_k(ranked: ArrayLike, relevant: Any, k: int) -> float:
    """Capped recall@k of one ranked list: hits among the first ``k`` over ``min(k, |relevant|)``.

    Parameters
    ----------
    ranked : (>= 0,) int array
        Item indices, best first.
    relevant : set or int array
        The relevant items (not empty).
    k : int
        The cutoff.

    Returns
    -------
    float
        In ``[0, 1]``; 1 when the first ``k`` are all relevant or hold all relevant items.
    """
    hits, n_rel = _single_user(ranked, relevant, k)
    return float(hits.sum()) / min(k, n_rel)


def ndcg_at_k(ranked: ArrayLike, relevant: Any, k: int) -> float:
    r"""NDCG@k of one ranked list, binary relevance and :math:`\log_2` discount.

    :math:`\sum_{j \le k,\ L_j \in T} 1/\log_2(j+1)` over its largest possible value,
    :math:`\sum_{j \le \min(k, |T|)} 1/\log_2(j+1)`.

    Parameters
    ----------
    ranked : (>= 0,) int array
        Item indices, best first.
    relevant : set or int array
        The relevant items ``T`` (not empty).
    k : int
        The cutoff.

    Returns
    -------
    float
        In ``[0, 1]``.
    """
    hits, n_rel = _single_user(ranked, relevant, k)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    return float(discount[:hits.size][hits].sum() / discount[:min(k, n_rel)].sum())


def ranking_metrics(model_or_scores: Any, train: Any, test: Any, k: int = 10, *,
                    users: ArrayLike | None = None,
                    relevant_threshold: float | None = None) -> dict[str, float]:
    """Precision@k, capped recall@k and NDCG@k, averaged over users (see the module docstring).

    Every user with at least one relevant test item (and among ``users``, when given) is
    evaluated: all items are scored, the user's training items are masked out (set to
    ``-inf`` with ``mask_seen``), the ``k`` best are taken (ties to the lower item index,
    as :func:`~refimpl.completion.top_k` does) and compared with the relevant test
    items. A test item that is also a training item can never be hit. Users are scored in
    blocks of ``BATCH_USERS``.

    Parameters
    ----------
    model_or_scores : MF, object with ``.scores(users)``, or (n_users, n_items) array
        The scores to rank by.
    train : Interactions or SciPy sparse matrix
        The seen entries, excluded from each ranking.
    test : Interactions or SciPy sparse matrix
        The held-out entries, of the same shape.
    k : int
        The cutoff, ``1 <= k <= n_items``.
    users : int array, optional
        Evaluate only these users.
    relevant_threshold : float, optional
        A test item is relevant when its value is ``>= relevant_threshold`` (all test items
        are relevant by default).

    Returns
    -------
    dict of str to float
        ``"precision@k"``, ``"recall@k"``, ``"ndcg@k"`` (with the number ``k`` in the key,
        e.g. ``"ndcg@10"``) and ``"users"`` (how many users were evaluated, an int).

    Raises
    ------
    TypeError, ValueError
        On mismatched shapes, NaN scores, a bad ``k``, or no user to evaluate.
    """
    train = as_interactions(train, "train")
    test = as_interactions(test, "test")
    if train.shape != test.shape:
        raise ValueError(f"train and test must have the same shape; got {train.shape} and "
                         f"{test.shape}")
    n_users, n_items = test.shape
    k = check_positive_int(k, "k")
    if k > n_items:
        raise ValueError(f"k={k} exceeds the number of items {n_items}")
    if hasattr(model_or_scores, "scores"):
        dense = None
    else:
        dense = np.asarray(model_or_scores)
        if dense.shape != test.shape or not np.issubdtype(dense.dtype, np.number):
            raise ValueError(f"model_or_scores must have .scores(users) or be a numeric array of "
                             f"shape {test.shape}; got {type(model_or_scores).__name__} "
                             f"{getattr(dense, 'shape', '')}")
    rel = test
    if relevant_threshold is not None:
        threshold = float(relevant_threshold)
        if math.isnan(threshold):
            raise ValueError("relevant_threshold must not be NaN")
        rel = test.subset(test.values >= threshold)
    rel_keys = np.unique(rel.users * n_items + rel.items)
    n_rel = np.bincount(rel_keys // n_items, minlength=n_users)
    candidates = np.flatnonzero(n_rel > 0)
    if users is not None:
        chosen = np.unique(np.asarray(users, dtype=np.int64).ravel())
        if chosen.size and (chosen.min() < 0 or chosen.max() >= n_users):
            raise ValueError(f"users must lie in [0, {n_users}); got "
                             f"{chosen.min()}..{chosen.max()}")
        candidates = np.intersect1d(candidates, chosen)
    if candidates.size == 0:
        raise ValueError("no user to evaluate: none has a relevant test item")

    seen = train.csr()
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)
    sums = np.zeros(3)
    for start in range(0, candidates.size, BATCH_USERS):
        batch = candidates[start:start + BATCH_USERS]
        if dense is None:
            s = np.array(model_or_scores.scores(batch), dtype=np.float64)
            if s.shape != (batch.size, n_items):
                raise ValueError(f"model_or_scores.scores returned shape {s.shape}; expected "
                                 f"{(batch.size, n_items)}")
        else:
            s = np.array(dense[batch], dtype=np.float64)
        if np.isnan(s).any():
            raise ValueError("model_or_scores: the scores contain NaN")
        block = seen[batch]
        if block.nnz:
            mask_seen(s, np.arange(batch.size), block)
        top = top_k(s, k)
        hits = np.isin(batch[:, None] * n_items + top, rel_keys)
        n_hits = hits.sum(axis=1)
        cap = np.minimum(k, n_rel[batch])
        sums += (n_hits.sum() / k, (n_hits / cap).sum(),
                 ((hits @ discount) / ideal[cap - 1]).sum())
    mean = sums / candidates.size
    return {f"precision@{k}": float(mean[0]), f"recall@{k}": float(mean[1]),
            f"ndcg@{k}": float(mean[2]), "users": int(candidates.size)}

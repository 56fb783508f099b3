"""refimpl.completion.evaluation: splits, rating error, ranking metrics (hand-computed, peer)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refimpl.completion.data import synthetic_ratings
from refimpl.completion.evaluation import (
    mae,
    ndcg_at_k,
    popularity,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    rmse,
    split_by_time,
    split_by_user,
)
from refimpl.completion.model import MF, Interactions


def _keys(R):
    return R.users * R.n_items + R.items


@pytest.fixture(scope="module")
def ratings():
    return synthetic_ratings(80, 60, 3, density=0.15, seed=11).data.interactions


# ---------------------------------------------------------------- split_by_user


@pytest.mark.parametrize("fraction", [0.2, 0.5, 1.0])
@pytest.mark.parametrize("min_train", [0, 1, 3])
def test_split_by_user_properties(ratings, fraction, min_train):
    R = ratings
    train, test = split_by_user(R, fraction, min_train=min_train, seed=0)
    assert train.shape == test.shape == R.shape
    assert train.nnz + test.nnz == R.nnz
    k_tr, k_te = _keys(train), _keys(test)
    assert np.intersect1d(k_tr, k_te).size == 0
    np.testing.assert_array_equal(np.sort(np.r_[k_tr, k_te]), np.sort(_keys(R)))
    n_u = np.bincount(R.users, minlength=R.n_users)
    n_te = np.bincount(test.users, minlength=R.n_users)
    want = np.where(n_u > min_train,
                    np.minimum(np.floor(fraction * n_u + 0.5), n_u - min_train), 0)
    np.testing.assert_array_equal(n_te, want)
    # values and timestamps travel with their entries
    lookup = dict(zip(_keys(R).tolist(), zip(R.values, R.timestamps, strict=True), strict=True))
    for part in (train, test):
        for key, v, t in zip(_keys(part).tolist(), part.values, part.timestamps, strict=True):
            assert lookup[key] == (v, t)


def test_split_by_user_hand_case_and_small_users():
    # user 0: 5 obs -> 1 test; user 1: 1 obs -> all train; user 2: 3 obs -> round(0.6)=1
    R = Interactions(np.array([0, 0, 0, 0, 0, 1, 2, 2, 2]), np.arange(9) % 4,
                     np.arange(9.0), 3, 4)
    train, test = split_by_user(R, 0.2, seed=3)
    np.testing.assert_array_equal(np.bincount(test.users, minlength=3), [1, 0, 1])
    train, test = split_by_user(R, 0.5, seed=3)   # 2.5 -> 3 (half up); 1.5 -> 2
    np.testing.assert_array_equal(np.bincount(test.users, minlength=3), [3, 0, 2])
    train, test = split_by_user(R, 1.0, min_train=0, seed=3)
    assert train.nnz == 0 and test.nnz == 9


def test_split_by_user_deterministic_and_random(ratings):
    a = split_by_user(ratings, seed=5)
    b = split_by_user(ratings, seed=np.random.default_rng(5))
    c = split_by_user(ratings, seed=6)
    np.testing.assert_array_equal(_keys(a[1]), _keys(b[1]))
    assert not np.array_equal(_keys(a[1]), _keys(c[1]))
    # every observation of a user is equally likely to be held out
    hits = np.zeros(ratings.nnz)
    rng = np.random.default_rng(0)
    for _ in range(200):
        _, te = split_by_user(ratings, 0.5, seed=rng)
        hits += np.isin(_keys(ratings), _keys(te))
    user0 = ratings.users == 0
    freq = hits[user0] / 200
    assert freq.std() < 0.15 and 0.3 < freq.mean() < 0.7


def test_split_accepts_sparse_and_rejects_bad_input(ratings):
    tr, te = split_by_user(ratings.csr(), 0.3, seed=0)
    assert tr.nnz + te.nnz == ratings.nnz
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="test_fraction"):
            split_by_user(ratings, bad)
    with pytest.raises(ValueError, match="min_train"):
        split_by_user(ratings, min_train=-1)
    with pytest.raises(TypeError, match="R"):
        split_by_user(np.ones((3, 3)))
    with pytest.raises(TypeError, match="seed"):
        split_by_user(ratings, seed="a")


# ---------------------------------------------------------------- split_by_time


@pytest.mark.parametrize("min_train", [0, 1, 2])
def test_split_by_time_per_user(min_train):
    rng = np.random.default_rng(1)
    nnz = 400
    users = rng.integers(0, 30, nnz)
    items = rng.integers(0, 1000, nnz)
    ts = rng.integers(0, 20, nnz)       # many ties
    R = Interactions(users, items, rng.random(nnz), 30, 1000, ts)
    train, test = split_by_time(R, 0.3, min_train=min_train)
    assert train.nnz + test.nnz == nnz
    n_u = np.bincount(users, minlength=30)
    want = np.where(n_u > min_train, np.minimum(np.floor(0.3 * n_u + 0.5), n_u - min_train), 0)
    np.testing.assert_array_equal(np.bincount(test.users, minlength=30), want)
    is_test = np.zeros(nnz, dtype=bool)
    # reconstruct the test positions through the subset order: test keeps R's order
    pos = np.arange(nnz)
    tr_pos = split_by_time(R._replace(values=pos.astype(float)), 0.3,
                           min_train=min_train)[1].values.astype(int)
    is_test[tr_pos] = True
    for u in range(30):
        mine = users == u
        if is_test[mine].any() and (~is_test[mine]).any():
            t_te, t_tr = ts[mine & is_test], ts[mine & ~is_test]
            assert t_te.min() >= t_tr.max()
            # ties at the boundary: the earlier position stays in train
            tie = ts[mine] == t_te.min()
            if (tie & ~is_test[mine]).any():
                last_train = pos[mine][tie & ~is_test[mine]].max()
                first_test = pos[mine][tie & is_test[mine]].min()
                assert last_train < first_test


def test_split_by_time_global_and_ties():
    ts = np.array([5, 1, 3, 3, 3, 9, 0, 3])
    R = Interactions(np.arange(8) % 3, np.arange(8), np.arange(8.0), 3, 8, ts)
    train, test = split_by_time(R, 0.5, per_user=False)
    # time order with ties by position: 6(0) 1(1) 2,3,4,7(3) 0(5) 5(9) -> last 4: 4, 7, 0, 5
    np.testing.assert_array_equal(np.sort(test.values), [0.0, 4.0, 5.0, 7.0])
    assert test.timestamps.min() >= train.timestamps.max()
    # hand case per user: user 0 has positions 0,3,6 at times 5,3,0 -> latest = position 0
    train, test = split_by_time(R, 0.34, per_user=True)
    assert 0.0 in test.values.tolist()


def test_split_by_time_needs_timestamps(ratings):
    with pytest.raises(ValueError, match="timestamps"):
        split_by_time(ratings._replace(timestamps=None))
    with pytest.raises(ValueError, match="timestamps"):
        split_by_time(ratings.csr())
    with pytest.raises(ValueError, match="test_fraction"):
        split_by_time(ratings, 2.0)


# ---------------------------------------------------------------- rmse, mae, popularity


def test_rmse_mae_hand_computed():
    model = MF(np.array([[1.0], [2.0]]), np.array([[1.0], [0.5]]), mean=1.0)
    # predictions: (0,0)=2, (0,1)=1.5, (1,0)=3, (1,1)=2
    T = Interactions(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]),
                     np.array([2.0, 2.5, 1.0, 5.0]), 2, 2)
    err = np.array([0.0, -1.0, 2.0, -3.0])
    assert rmse(model, T) == pytest.approx(math.sqrt(np.mean(err ** 2)))
    assert mae(model, T) == pytest.approx(np.mean(np.abs(err)))
    # clip to [1.8, 2.2]: predictions 2, 1.8, 2.2, 2
    err_c = np.array([0.0, -0.7, 1.2, -3.0])
    assert rmse(model, T, clip=(1.8, 2.2)) == pytest.approx(math.sqrt(np.mean(err_c ** 2)))
    assert mae(model, T.csr(), clip=(1.8, 2.2)) == pytest.approx(np.mean(np.abs(err_c)))
    with pytest.raises(ValueError, match="clip"):
        rmse(model, T, clip=(3, 1))
    with pytest.raises(TypeError, match="clip"):
        rmse(model, T, clip=3)
    with pytest.raises(TypeError, match="model"):
        rmse(object(), T)
    with pytest.raises(TypeError, match="test"):
        mae(model, np.ones((2, 2)))


def test_popularity_baseline():
    R = Interactions(np.array([0, 1, 2, 2, 0]), np.array([2, 2, 0, 2, 3]), np.ones(5), 3, 5)
    m = popularity(R)
    assert m.P.shape == (3, 0) and m.Q.shape == (5, 0)
    assert m.user_bias is None and m.mean == 0.0
    assert m.item_bias.dtype == np.float64
    np.testing.assert_array_equal(m.item_bias, [1, 0, 3, 1, 0])
    np.testing.assert_array_equal(m.scores([0, 1]), [[1, 0, 3, 1, 0]] * 2)
    np.testing.assert_array_equal(m.recommend([1], k=3), [[2, 0, 3]])   # ties to lower index
    np.testing.assert_array_equal(m.recommend([0], k=2, exclude=R), [[0, 1]])


# ---------------------------------------------------------------- single-user metrics


def test_single_user_metrics_hand_computed():
    ranked = np.array([4, 2, 7, 1, 0])
    relevant = {2, 0, 9}
    # k=3: hits at ranks 2 -> precision 1/3, recall 1/min(3,3), dcg 1/log2(3)
    assert precision_at_k(ranked, relevant, 3) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, relevant, 3) == pytest.approx(1 / 3)
    idcg3 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranked, relevant, 3) == pytest.approx((1 / math.log2(3)) / idcg3)
    # k=5: hits at ranks 2 and 5; cap min(5,3)=3
    assert precision_at_k(ranked, relevant, 5) == pytest.approx(2 / 5)
    assert recall_at_k(ranked, relevant, 5) == pytest.approx(2 / 3)
    assert ndcg_at_k(ranked, relevant, 5) == pytest.approx(
        (1 / math.log2(3) + 1 / math.log2(6)) / idcg3)
    # capped recall: 2 relevant, k = 1 with a hit -> 1
    assert recall_at_k([2, 4], np.array([2, 0]), 1) == 1.0
    assert ndcg_at_k([2, 4], [2, 0], 1) == 1.0
    # perfect list
    assert ndcg_at_k([0, 2, 9, 5], relevant, 4) == pytest.approx(1.0)
    assert ndcg_at_k([5, 0, 2, 9], relevant, 4) < 1.0
    # a list shorter than k: missing places are misses
    assert precision_at_k([2], relevant, 4) == pytest.approx(1 / 4)
    assert recall_at_k([2], relevant, 4) == pytest.approx(1 / 3)


def test_single_user_metrics_bad_input():
    with pytest.raises(ValueError, match="relevant"):
        recall_at_k([1, 2], set(), 2)
    with pytest.raises(ValueError, match="repeat"):
        ndcg_at_k([1, 1, 2], {1}, 3)
    with pytest.raises(ValueError, match="k"):
        precision_at_k([1, 2], {1}, 0)
    with pytest.raises(TypeError, match="ranked"):
        recall_at_k(np.array([1.0, 2.0]), {1}, 2)


# ---------------------------------------------------------------- ranking_metrics


def test_ranking_metrics_hand_case_with_ties_and_masking():
    # 2 users × 6 items; user 0 trained on item 0 (its top score), user 1 on item 5
    scores = np.array([[9.0, 5.0, 5.0, 1.0, 5.0, 0.0],
                       [3.0, 3.0, 2.0, 2.0, 1.0, 8.0]])
    train = Interactions(np.array([0, 1]), np.array([0, 5]), np.ones(2), 2, 6)
    test = Interactions(np.array([0, 0, 1]), np.array([2, 3, 4]), np.array([5.0, 1.0, 4.0]),
                        2, 6)
    out = ranking_metrics(scores, train, test, k=2)
    # user 0: item 0 masked; ties 1, 2, 4 at 5.0 -> top-2 = [1, 2]; relevant {2, 3}: 1 hit
    # user 1: item 5 masked; ties 0, 1 -> [0, 1]; relevant {4}: 0 hits
    u0 = (1 / 2, 1 / 2, (1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert out["precision@2"] == pytest.approx((u0[0] + 0) / 2)
    assert out["recall@2"] == pytest.approx((u0[1] + 0) / 2)
    assert out["ndcg@2"] == pytest.approx((u0[2] + 0) / 2)
    assert out["users"] == 2
    assert set(out) == {"precision@2", "recall@2", "ndcg@2", "users"}
    # the train item would be a hit without masking: put it in test too
    test2 = Interactions(np.array([0]), np.array([0]), np.ones(1), 2, 6)
    assert ranking_metrics(scores, train, test2, k=1)["recall@1"] == 0.0
    train_other = Interactions(np.array([1]), np.array([5]), np.ones(1), 2, 6)
    assert ranking_metrics(scores, train_other, test2, k=1)["recall@1"] == 1.0
    # threshold: only item 2 (value 5) relevant for user 0; user 1 (value 4) too with 4
    out = ranking_metrics(scores, train, test, k=2, relevant_threshold=4.5)
    assert out["users"] == 1 and out["recall@2"] == 1.0
    assert out["ndcg@2"] == pytest.approx(1 / math.log2(3))
    # capped recall: 3 relevant items, k = 2, both recommended -> recall 1, precision 1
    test3 = Interactions(np.array([0, 0, 0]), np.array([1, 2, 3]), np.ones(3), 2, 6)
    out = ranking_metrics(scores, train, test3, k=2)
    assert out["recall@2"] == 1.0 and out["precision@2"] == 1.0
    assert out["ndcg@2"] == pytest.approx(1.0)
    # users restriction
    out = ranking_metrics(scores, train, test, k=2, users=[1])
    assert out["users"] == 1 and out["recall@2"] == 0.0
    # scores untouched
    assert scores[0, 0] == 9.0


def test_ranking_metrics_matches_single_user_functions_and_batches(monkeypatch):
    s = synthetic_ratings(70, 50, 3, density=0.2, seed=2)
    train, test = split_by_user(s.data.interactions, 0.3, seed=1)
    rng = np.random.default_rng(4)
    model = MF(rng.standard_normal((70, 4)), rng.standard_normal((50, 4)))
    import refimpl.completion.evaluation as ev

    monkeypatch.setattr(ev, "BATCH_USERS", 16)       # several blocks
    S = model.scores()
    tr, te = train.csr(), test.csr()
    assert np.diff(te.indptr).max() > 2             # some users have more than k=2 test items
    for k in (2, 7):
        out = ranking_metrics(model, train, test, k=k)
        per = []
        for u in range(70):
            rel = te[u].indices
            if rel.size == 0:
                continue
            row = S[u].copy()
            row[tr[u].indices] = -np.inf
            ranked = np.argsort(-row, kind="stable")[:k]
            per.append((precision_at_k(ranked, rel, k), recall_at_k(ranked, rel, k),
                        ndcg_at_k(ranked, rel, k)))
        per = np.array(per)
        assert out["users"] == len(per)
        np.testing.assert_allclose([out[f"precision@{k}"], out[f"recall@{k}"],
                                    out[f"ndcg@{k}"]], per.mean(axis=0), rtol=1e-12)
        # a dense score array gives the same
        assert ranking_metrics(S, train.csr(), test.csr(), k=k) == out


def test_ranking_metrics_perfect_and_popularity():
    s = synthetic_ratings(60, 40, 2, density=0.25, seed=9)
    train, test = split_by_user(s.data.interactions, 0.25, seed=0)
    oracle = np.zeros((60, 40))
    oracle[test.users, test.items] = 1.0
    out = ranking_metrics(oracle, train, test, k=5)
    assert out["recall@5"] == 1.0 and out["ndcg@5"] == pytest.approx(1.0)
    pop = ranking_metrics(popularity(train), train, test, k=5)
    rand = ranking_metrics(np.random.default_rng(0).random((60, 40)), train, test, k=5)
    assert 0 <= rand["ndcg@5"] < 1 and 0 <= pop["ndcg@5"] < 1


def test_ranking_metrics_bad_input():
    train = Interactions(np.array([0]), np.array([0]), np.ones(1), 2, 3)
    test = Interactions(np.array([1]), np.array([1]), np.ones(1), 2, 3)
    S = np.zeros((2, 3))
    with pytest.raises(ValueError, match="k"):
        ranking_metrics(S, train, test, k=4)
    with pytest.raises(ValueError, match="k"):
        ranking_metrics(S, train, test, k=0)
    with pytest.raises(ValueError, match="model_or_scores"):
        ranking_metrics(np.zeros((2, 4)), train, test, k=1)
    with pytest.raises(ValueError, match="NaN"):
        ranking_metrics(np.full((2, 3), np.nan), train, test, k=1)
    with pytest.raises(ValueError, match="same shape"):
        ranking_metrics(S, train, test._replace(n_items=4), k=1)
    with pytest.raises(ValueError, match="no user"):
        ranking_metrics(S, train, test, k=1, users=[0])
    with pytest.raises(ValueError, match="no user"):
        ranking_metrics(S, train, test, k=1, relevant_threshold=2.0)
    with pytest.raises(ValueError, match="users"):
        ranking_metrics(S, train, test, k=1, users=[5])
    with pytest.raises(TypeError, match="train"):
        ranking_metrics(S, S, test, k=1)


@pytest.mark.filterwarnings("ignore:OpenBLAS is configured")
def test_ranking_metrics_parity_with_implicit():
    """implicit's ndcg is ours; its "precision" is our capped recall pooled over users, equal to
    the mean when every user has the same ``min(k, |T_u|)`` (3 test items each here)."""
    ie = pytest.importorskip("implicit.evaluation")
    from implicit.cpu.als import AlternatingLeastSquares

    rng = np.random.default_rng(8)
    m, n, k = 90, 70, 10
    s = synthetic_ratings(m, n, 3, density=0.2, seed=8)
    R = s.data.interactions
    train = R
    seen = R.csr().toarray() != 0
    te_users, te_items = [], []
    for u in range(m):
        items = rng.choice(np.flatnonzero(~seen[u]), 3, replace=False)
        te_users += [u] * 3
        te_items += items.tolist()
    test = Interactions(np.array(te_users), np.array(te_items), np.ones(3 * m), m, n)
    P, Q = rng.standard_normal((m, 6)), rng.standard_normal((n, 6))
    ours = ranking_metrics(MF(P, Q), train, test, k=k)
    als = AlternatingLeastSquares(factors=6, dtype=np.float64, num_threads=1)
    als.user_factors, als.item_factors = P, Q
    theirs = ie.ranking_metrics_at_k(als, train.csr(), test.csr(), K=k, show_progress=False)
    assert ours["ndcg@10"] == pytest.approx(theirs["ndcg"], rel=1e-10)
    assert ours["recall@10"] == pytest.approx(theirs["precision"], rel=1e-10)

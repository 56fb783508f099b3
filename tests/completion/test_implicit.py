"""Tests for refimpl.completion.implicit: weighted ALS, BPR, EASE and new users."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from refimpl.completion.implicit import (
    EASE,
    _bpr_negatives,
    bpr,
    ease,
    fold_in_implicit,
    implicit_als,
    recommend_new_user,
)
from refimpl.completion.model import MF, Interactions


def _counts(m=40, n=30, density=0.25, seed=0):
    """Random counts in 1..4 with every user and item observed at least once."""
    rng = np.random.default_rng(seed)
    D = (rng.random((m, n)) < density) * rng.integers(1, 5, (m, n))
    D[np.arange(m), rng.integers(n, size=m)] += 1
    D[rng.integers(m, size=n), np.arange(n)] += 1
    return sp.csr_matrix(D.astype(np.float64))


def _clustered(m=240, n=120, n_clusters=4, per_user=14, held=2, seed=0):
    """Users who mostly pick items of their own cluster; returns (train, test) CSR."""
    rng = np.random.default_rng(seed)
    size = n // n_clusters
    rows, cols = [], []
    for u in range(m):
        g = u % n_clusters
        own = rng.choice(np.arange(g * size, (g + 1) * size), per_user - 2, replace=False)
        other = rng.choice(n, 2, replace=False)
        its = np.unique(np.concatenate([own, other]))
        rows += [u] * its.size
        cols += list(its)
    rows, cols = np.array(rows), np.array(cols)
    test = np.zeros(rows.size, bool)
    for u in range(m):
        idx = np.flatnonzero(rows == u)
        test[rng.choice(idx, held, replace=False)] = True
    mk = lambda mask: sp.csr_matrix((np.ones(mask.sum()), (rows[mask], cols[mask])),  # noqa: E731
                                    shape=(m, n))
    return mk(~test), mk(test)


def _implicit_model(**kw):
    import implicit.cpu.als

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # implicit's BLAS-threads advice
        return implicit.cpu.als.AlternatingLeastSquares(use_cg=True, num_threads=1,
                                                        calculate_training_loss=False, **kw)


def _fit_implicit(model, R):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(R.astype(np.float32), show_progress=False)


def _rel(A, B):
    return float(np.abs(np.asarray(A, np.float64) - B).max() / np.abs(B).max())


def _dense_normal_solve(R, F, reg, alpha, convention):
    """Each row of R solved against the fixed factors F from the dense normal equations."""
    D = R.toarray()
    P = (D > 0).astype(float)
    C = alpha * D if convention == "implicit" else 1.0 + alpha * D
    C[D == 0] = 1.0
    k = F.shape[1]
    out = np.zeros((D.shape[0], k))
    for u in range(D.shape[0]):
        lam = reg if convention == "implicit" else reg * np.count_nonzero(D[u])
        A = F.T @ (C[u][:, None] * F) + lam * np.eye(k)
        out[u] = np.linalg.solve(A, F.T @ (C[u] * P[u]))
    return out


# --------------------------------------------------------------------------- ALS vs implicit


def test_als_matches_implicit_float64():
    R = _counts()
    rng = np.random.default_rng(1)
    P0, Q0 = rng.random((40, 6)), rng.random((30, 6))
    # reg is a power of two: implicit's CG kernel takes it as a C float
    ours = implicit_als(R, 6, reg=0.125, alpha=2.0, max_iter=3, P0=P0, Q0=Q0, dtype=np.float64)
    peer = _implicit_model(factors=6, regularization=0.125, alpha=2.0, iterations=3,
                           dtype=np.float64)
    peer.user_factors, peer.item_factors = P0.copy(), Q0.copy()
    _fit_implicit(peer, R)
    assert _rel(ours.P, peer.user_factors) < 1e-10
    assert _rel(ours.Q, peer.item_factors) < 1e-10


def test_als_matches_implicit_float32():
    R = _counts(seed=2)
    rng = np.random.default_rng(3)
    P0 = rng.random((40, 6)).astype(np.float32)
    Q0 = rng.random((30, 6)).astype(np.float32)
    # float32 CG rounding grows over iterations on ill-conditioned rows (in both codes):
    # a moderate reg keeps the rows well conditioned
    ours = implicit_als(R, 6, reg=1.0, alpha=2.0, max_iter=3, P0=P0, Q0=Q0)
    assert ours.P.dtype == np.float32 and ours.Q.dtype == np.float32
    peer = _implicit_model(factors=6, regularization=1.0, alpha=2.0, iterations=3,
                           dtype=np.float32)
    peer.user_factors, peer.item_factors = P0.copy(), Q0.copy()
    _fit_implicit(peer, R)
    assert _rel(ours.P, peer.user_factors) < 1e-4
    assert _rel(ours.Q, peer.item_factors) < 1e-4


def test_als_seed_reproduces_implicit_initialisation():
    R = _counts(seed=4)
    ours = implicit_als(R, 5, reg=0.25, alpha=1.0, max_iter=2, seed=7, dtype=np.float64)
    peer = _implicit_model(factors=5, regularization=0.25, alpha=1.0, iterations=2,
                           dtype=np.float64, random_state=7)
    _fit_implicit(peer, R)
    assert _rel(ours.P, peer.user_factors) < 1e-10
    assert _rel(ours.Q, peer.item_factors) < 1e-10


def test_als_loss_matches_implicit_calculate_loss_and_cholesky_decreases():
    import implicit.cpu._als as _als

    R = _counts(seed=5)
    alpha, reg = 3.0, 0.5
    model, info = implicit_als(R, 4, reg=reg, alpha=alpha, max_iter=6, solver="cholesky",
                               seed=0, dtype=np.float64, return_info=True)
    assert info.n_iter == 6 and len(info.errors) == 6 and not info.converged
    C = (alpha * R).astype(np.float32).tocsr()
    normaliser = C.sum() + R.shape[0] * R.shape[1] - R.nnz
    peer_loss = _als.calculate_loss(C, model.P, model.Q, reg, num_threads=1) * normaliser
    assert info.errors[-1] == pytest.approx(peer_loss, rel=1e-6)
    # exact ALS minimises the loss over one block at a time: it never increases
    assert np.all(np.diff(info.errors) <= 1e-9 * info.errors[0])


# --------------------------------------------------------------------------- ALS equations


@pytest.mark.parametrize("convention", ["implicit", "spark"])
def test_cholesky_rows_solve_dense_normal_equations(convention):
    D = _counts(seed=6).toarray()
    D[3] = 0  # a user without observations
    R = sp.csr_matrix(D)
    rng = np.random.default_rng(0)
    Q0 = rng.random((30, 5))
    reg, alpha = 0.3, 2.5
    model = implicit_als(R, 5, reg=reg, alpha=alpha, convention=convention, max_iter=1,
                         solver="cholesky", Q0=Q0, dtype=np.float64)
    P_ref = _dense_normal_solve(R, Q0, reg, alpha, convention)
    np.testing.assert_allclose(model.P, P_ref, rtol=1e-10, atol=1e-12)
    assert np.all(model.P[3] == 0)
    Q_ref = _dense_normal_solve(R.T.tocsr(), model.P, reg, alpha, convention)
    np.testing.assert_allclose(model.Q, Q_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("convention", ["implicit", "spark"])
def test_cg_with_rank_steps_is_the_exact_solve(convention):
    R = _counts(seed=7)
    Q0 = np.random.default_rng(1).random((30, 4))
    kw = dict(reg=0.2, alpha=2.0, convention=convention, max_iter=1, Q0=Q0, dtype=np.float64,
              seed=3)
    exact = implicit_als(R, 4, solver="cholesky", **kw)
    cg = implicit_als(R, 4, solver="cg", cg_steps=4, **kw)
    assert _rel(cg.P, exact.P) < 1e-8
    assert _rel(cg.Q, exact.Q) < 1e-6


def test_spark_convention_maps_to_implicit_on_regular_data():
    # every user and every item has d observations: λ n_u = λ d is a constant
    n, d = 24, 5
    rng = np.random.default_rng(8)
    rows = np.repeat(np.arange(n), d)
    cols = (rows + np.tile(np.arange(d) * 3, n)) % n
    r = rng.integers(1, 6, size=rows.size).astype(float)
    R = sp.csr_matrix((r, (rows, cols)), shape=(n, n))
    assert np.all(np.diff(R.indptr) == d) and np.all(np.diff(R.tocsc().indptr) == d)
    alpha, reg = 1.5, 0.05
    spark = implicit_als(R, 4, reg=reg, alpha=alpha, convention="spark", max_iter=4, seed=2,
                         dtype=np.float64)
    R2 = R.copy()
    R2.data = 1.0 + alpha * R2.data
    mapped = implicit_als(R2, 4, reg=reg * d, alpha=1.0, convention="implicit", max_iter=4,
                          seed=2, dtype=np.float64)
    assert _rel(spark.P, mapped.P) < 1e-10
    assert _rel(spark.Q, mapped.Q) < 1e-10


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_threads_give_bitwise_equal_factors(solver):
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba was started with one thread")
    R = _counts(m=300, n=200, density=0.05, seed=9)
    kw = dict(rank=8, max_iter=2, solver=solver, seed=4, reg=0.1)
    one = implicit_als(R, num_threads=1, **kw)
    two = implicit_als(R, num_threads=2, **kw)
    assert np.array_equal(one.P, two.P) and np.array_equal(one.Q, two.Q)


def test_als_recovers_clusters():
    train, test = _clustered(seed=1)
    from refimpl.completion.evaluation import popularity, ranking_metrics

    model = implicit_als(train, 8, reg=0.1, alpha=10.0, max_iter=8, seed=0)
    ours = ranking_metrics(model, train, test, k=10)["recall@10"]
    pop = ranking_metrics(popularity(train), train, test, k=10)["recall@10"]
    assert ours > 0.35 and ours > 2 * pop


# --------------------------------------------------------------------------- ALS inputs


def test_als_bad_inputs():
    R = _counts()
    neg = R.copy()
    neg.data[0] = -1.0
    with pytest.raises(ValueError, match="nonnegative"):
        implicit_als(neg, 3)
    with pytest.raises(ValueError, match="rank"):
        implicit_als(R, 31)
    with pytest.raises(ValueError, match="alpha"):
        implicit_als(R, 3, alpha=0.0)
    with pytest.raises(ValueError, match="reg"):
        implicit_als(R, 3, reg=-0.1)
    with pytest.raises(ValueError, match=r"convention must be one of \('implicit', 'spark'\)"):
        implicit_als(R, 3, convention="mllib")
    with pytest.raises(ValueError, match="solver"):
        implicit_als(R, 3, solver="lu")
    with pytest.raises(ValueError, match="dtype"):
        implicit_als(R, 3, dtype=np.float16)
    with pytest.raises(ValueError, match="P0"):
        implicit_als(R, 3, P0=np.zeros((40, 2)))
    with pytest.raises(ValueError, match="num_threads"):
        implicit_als(R, 3, num_threads=10_000)
    with pytest.raises(ValueError, match=r"empty|no observed"):
        implicit_als(sp.csr_matrix((4, 5)), 2)
    with pytest.raises(ValueError, match="empty"):
        implicit_als(Interactions(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0),
                                  0, 5), 1)
    with pytest.raises(TypeError):
        implicit_als(R.toarray(), 3)


# --------------------------------------------------------------------------- BPR


def _auc(scores, train, test):
    """Mean over users of P(score of a held-out item > score of an unobserved item)."""
    aucs = []
    tr, te = train.tocsr(), test.tocsr()
    for u in range(scores.shape[0]):
        pos = te.indices[te.indptr[u]:te.indptr[u + 1]]
        if pos.size == 0:
            continue
        neg = np.setdiff1d(np.arange(scores.shape[1]),
                           np.concatenate([pos, tr.indices[tr.indptr[u]:tr.indptr[u + 1]]]))
        aucs.append(np.mean(scores[u, pos][:, None] > scores[u, neg][None, :]))
    return float(np.mean(aucs))


def test_bpr_ranks_planted_structure_and_loss_decreases():
    train, test = _clustered(seed=2)
    model, info = bpr(train, 8, lr=0.05, reg=0.01, n_epochs=30, seed=0, return_info=True)
    assert isinstance(model, MF) and model.item_bias is not None and model.user_bias is None
    assert info.n_iter == 30 and len(info.errors) == 30
    assert info.errors[-1] < 0.6 * info.errors[0]
    assert _auc(model.scores(), train, test) > 0.8
    again = bpr(train, 8, lr=0.05, reg=0.01, n_epochs=30, seed=0)
    assert np.array_equal(model.P, again.P) and np.array_equal(model.item_bias, again.item_bias)


def test_bpr_recall_close_to_implicit():
    import implicit.cpu.bpr

    from refimpl.completion.evaluation import popularity, ranking_metrics

    train, test = _clustered(seed=3)
    ours = ranking_metrics(bpr(train, 16, lr=0.05, reg=0.01, n_epochs=40, seed=1), train,
                           test, k=10)["recall@10"]
    peer = implicit.cpu.bpr.BayesianPersonalizedRanking(factors=16, learning_rate=0.05,
                                                        regularization=0.01, iterations=40,
                                                        num_threads=1, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer.fit(train.astype(np.float32), show_progress=False)
    theirs = ranking_metrics(MF(peer.user_factors.astype(np.float64),
                                peer.item_factors.astype(np.float64)),
                             train, test, k=10)["recall@10"]
    pop = ranking_metrics(popularity(train), train, test, k=10)["recall@10"]
    assert ours > 2 * pop and theirs > 2 * pop
    assert abs(ours - theirs) < 0.15


def test_bpr_negatives_are_unobserved():
    train, _ = _clustered(seed=4)
    X = train.tocsr()
    users = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    keys = users * X.shape[1] + X.indices
    j = _bpr_negatives(users, keys, X.shape[1], np.random.default_rng(0))
    assert not np.any(np.asarray(X[users, j]).ravel())


def test_bpr_bad_inputs():
    R = _counts()
    with pytest.raises(ValueError, match="lr"):
        bpr(R, 3, lr=0.0)
    with pytest.raises(ValueError, match="reg"):
        bpr(R, 3, reg=-1.0)
    with pytest.raises(ValueError, match="rank"):
        bpr(R, 31)
    with pytest.raises(ValueError, match="every item"):
        bpr(sp.csr_matrix(np.ones((3, 4))), 2)
    neg = R.copy()
    neg.data[0] = -2.0
    with pytest.raises(ValueError, match="nonnegative"):
        bpr(neg, 3)


# --------------------------------------------------------------------------- EASE


def test_ease_satisfies_the_lagrange_conditions():
    R = _counts(seed=10)
    lam = 7.0
    model = ease(R, reg=lam)
    assert isinstance(model, EASE)
    assert np.all(np.diag(model.B) == 0)
    G = (R.T @ R).toarray()
    M = (G + lam * np.eye(G.shape[0])) @ model.B - G
    off = M - np.diag(np.diag(M))
    assert np.abs(off).max() < 1e-9 * np.abs(G).max()
    # and the unconstrained minimiser (I - λP) does have a nonzero diagonal: the constraint bites
    assert np.abs(np.diag(M)).min() > 0


def test_ease_matches_cornac():
    import cornac
    from cornac.data import Dataset

    R = sp.coo_matrix(_counts(seed=11))
    triplets = [(f"u{u}", f"i{i}", float(v)) for u, i, v in zip(R.row, R.col, R.data,
                                                                strict=True)]
    ds = Dataset.from_uir(triplets, seed=0)
    lam = 25.0
    ours = ease(R, reg=lam)
    order = np.array([ds.iid_map[f"i{i}"] for i in range(R.shape[1])])
    exact = cornac.models.EASE(lamb=lam, posB=False, verbose=False).fit(ds)
    np.testing.assert_allclose(ours.B, exact.B[np.ix_(order, order)], atol=1e-8)
    assert (ours.B < 0).any()
    clipped = cornac.models.EASE(lamb=lam, verbose=False).fit(ds)  # posB=True by default
    assert (clipped.B >= 0).all()
    assert np.abs(ours.B - clipped.B[np.ix_(order, order)]).max() > 1e-3


def test_ease_scores_and_recommend():
    R = _counts(seed=12)
    model = ease(R, reg=10.0)
    S = model.scores([0, 5])
    np.testing.assert_allclose(S, R[[0, 5]].toarray() @ model.B)
    np.testing.assert_allclose(model.scores_for(R[5].toarray().ravel()), S[1])
    np.testing.assert_allclose(model.scores_for(R[5]), S[1])
    rec = model.recommend([0, 5], k=4, exclude=R)
    for row, u in zip(rec, [0, 5], strict=True):
        assert not set(row) & set(R[u].indices)
    with pytest.raises(ValueError, match="reg"):
        ease(R, reg=0.0)
    with pytest.raises(ValueError, match="shape"):
        model.scores_for(np.ones(3))


# --------------------------------------------------------------------------- new users


@pytest.mark.parametrize("convention", ["implicit", "spark"])
def test_fold_in_equals_the_als_row_with_q_fixed(convention):
    R = _counts(seed=13)
    kw = dict(reg=0.3, alpha=2.0, convention=convention)
    model = implicit_als(R, 5, max_iter=3, seed=0, dtype=np.float64, **kw)
    # one more user half-sweep against the final Q (and an item half-sweep we ignore)
    step = implicit_als(R, 5, max_iter=1, solver="cholesky", P0=model.P, Q0=model.Q,
                        dtype=np.float64, **kw)
    for u in (0, 7, 19):
        row = R[u]
        x = fold_in_implicit(model, row.indices, row.data, **kw)
        np.testing.assert_allclose(x, step.P[u], rtol=1e-10, atol=1e-12)


def test_recommend_new_user_mf_and_ease():
    R = _counts(seed=14)
    model = implicit_als(R, 5, reg=0.3, alpha=2.0, max_iter=3, seed=0, dtype=np.float64)
    items, values = np.array([2, 9, 4]), np.array([1.0, 3.0, 2.0])
    rec = recommend_new_user(model, items, values, k=6, reg=0.3, alpha=2.0)
    x = fold_in_implicit(model, items, values, reg=0.3, alpha=2.0)
    s = model.Q @ x
    s[items] = -np.inf
    assert rec.shape == (6,) and np.array_equal(rec, np.argsort(-s, kind="stable")[:6])
    assert not set(rec) & set(items)
    kept = recommend_new_user(model, items, values, k=30, reg=0.3, alpha=2.0,
                              exclude_seen=False)
    assert set(items) <= set(kept)
    em = ease(R, reg=10.0)
    row = R[3]
    np.testing.assert_array_equal(recommend_new_user(em, row.indices, row.data, k=5),
                                  em.recommend([3], k=5, exclude=R)[0])


def test_recommend_new_user_cold_start():
    from refimpl.completion.evaluation import popularity

    R = _counts(seed=15)
    model = implicit_als(R, 4, max_iter=2, seed=0)
    pop = popularity(R)
    with pytest.warns(UserWarning, match="fallback"):
        rec = recommend_new_user(model, [], k=5, fallback=pop)
    counts = np.bincount(sp.coo_matrix(R).col, minlength=R.shape[1])
    np.testing.assert_array_equal(rec, np.argsort(-counts, kind="stable")[:5])
    with pytest.raises(ValueError, match="fallback"):
        recommend_new_user(model, [], k=5)
    with pytest.raises(ValueError, match="items must lie"):
        recommend_new_user(model, [99], k=5)
    with pytest.raises(ValueError, match="nonnegative"):
        recommend_new_user(model, [1], [-1.0], k=5)
    with pytest.raises(TypeError):
        recommend_new_user("not a model", [1])  # type: ignore[arg-type]


def test_inputs_are_not_modified():
    R = _counts(seed=16)
    R.data[:3] = 0.0  # stored zeros, which bpr drops from its own copy
    coo = sp.coo_matrix(R)
    inter = Interactions(coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.copy(),
                         *R.shape)
    before_R, before_v = R.copy(), inter.values.copy()
    Q0 = np.random.default_rng(0).random((30, 3))
    Q0_before = Q0.copy()
    for data in (R, inter):
        implicit_als(data, 3, max_iter=1, Q0=Q0, seed=0)
        bpr(data, 3, n_epochs=1, seed=0)
        ease(data, reg=5.0)
    assert (R != before_R).nnz == 0 and np.array_equal(R.data, before_R.data)
    assert np.array_equal(inter.values, before_v) and np.array_equal(Q0, Q0_before)

"""Tests for refimpl.completion.explicit: ALS (exact, inexact), SGD, Soft-Impute, fold-in."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl.completion.explicit import (
    FoldIn,
    als,
    fold_in,
    objective,
    sgd_mf,
    soft_impute,
    soft_impute_path,
)
from refimpl.completion.model import MF, Interactions


def planted(m, n, k, frac, seed):
    """A rank-k matrix and a random observed subset (every row and column observed)."""
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((m, k)) @ rng.standard_normal((k, n))
    mask = rng.random((m, n)) < frac
    mask[np.arange(m), rng.integers(0, n, m)] = True
    mask[rng.integers(0, m, n), np.arange(n)] = True
    u, i = np.nonzero(mask)
    return M, mask, Interactions(u.astype(np.int64), i.astype(np.int64), M[u, i], m, n)


def ratings(m, n, nnz, seed):
    rng = np.random.default_rng(seed)
    pairs = rng.choice(m * n, nnz, replace=False)
    u, i = pairs // n, pairs % n
    return Interactions(u.astype(np.int64), i.astype(np.int64),
                        rng.integers(1, 6, nnz).astype(float), m, n)


def rows_of(R, axis):
    idx = R.users if axis == 0 else R.items
    other = R.items if axis == 0 else R.users
    return [(other[idx == r], R.values[idx == r]) for r in range(R.shape[axis])]


def ridge(F, y, lam):
    return np.linalg.solve(F.T @ F + lam * np.eye(F.shape[1]), F.T @ y)


def test_planted_interactions_cover_rows():
    _, mask, _ = planted(12, 9, 2, 0.3, 0)
    assert mask.any(axis=0).all() and mask.any(axis=1).all()


# --------------------------------------------------------------------------- ALS


@pytest.mark.parametrize("weighted", [False, True])
def test_als_rows_solve_normal_equations(weighted):
    R = ratings(15, 12, 80, 1)
    k, reg = 3, 0.3
    Q0 = np.random.default_rng(2).standard_normal((12, k))
    mod = als(R, k, reg=reg, max_iter=1, Q0=Q0, weighted_reg=weighted)
    for u, (items, vals) in enumerate(rows_of(R, 0)):
        lam = reg * (len(items) if weighted else 1)
        np.testing.assert_allclose(mod.P[u], ridge(Q0[items], vals, lam), atol=1e-12)
    for i, (users, vals) in enumerate(rows_of(R, 1)):
        lam = reg * (len(users) if weighted else 1)
        np.testing.assert_allclose(mod.Q[i], ridge(mod.P[users], vals, lam), atol=1e-12)
    assert mod.user_bias is None and mod.item_bias is None and mod.mean == 0.0


def test_objective_by_hand():
    R = Interactions(np.array([0, 0, 1]), np.array([0, 1, 1]), np.array([1.0, 2.0, 3.0]), 2, 2)
    mod = MF(np.array([[1.0], [2.0]]), np.array([[0.5], [1.0]]), np.array([0.1, -0.2]),
             np.array([0.0, 0.3]), 1.0)
    e = np.array([1 - (1 + 0.1 + 0.0 + 0.5), 2 - (1 + 0.1 + 0.3 + 1.0), 3 - (1 - 0.2 + 0.3 + 2.0)])
    pen_u = np.array([1 + 0.01, 4 + 0.04])
    pen_i = np.array([0.25, 1 + 0.09])
    assert objective(mod, R, 0.5) == pytest.approx(e @ e + 0.5 * (pen_u.sum() + pen_i.sum()))
    # weighted: n_u = (2, 1), n_i = (1, 2)
    assert objective(mod, R, 0.5, weighted_reg=True) == pytest.approx(
        e @ e + 0.5 * (pen_u @ [2, 1] + pen_i @ [1, 2]))


@settings(max_examples=15, deadline=None)
@given(m=st.integers(2, 10), n=st.integers(2, 10), k=st.integers(1, 4),
       frac=st.floats(0.2, 1.0), reg=st.sampled_from([0.0, 0.01, 1.0]),
       biases=st.booleans(), weighted=st.booleans(),
       cg=st.sampled_from([None, 1, 2]), seed=st.integers(0, 2**16))
def test_als_objective_nonincreasing(m, n, k, frac, reg, biases, weighted, cg, seed):
    k = min(k, m, n)
    rng = np.random.default_rng(seed)
    mask = rng.random((m, n)) < frac
    mask[0, 0] = True
    u, i = np.nonzero(mask)
    R = Interactions(u, i, rng.uniform(1, 5, u.size), m, n)
    mod, info = als(R, k, reg=reg, biases=biases, weighted_reg=weighted, cg_steps=cg,
                    max_iter=8, tol=0, seed=seed, return_info=True)
    f = np.array(info.errors)
    assert np.all(np.isfinite(f))
    assert np.all(np.diff(f) <= 1e-9 * (1 + f[:-1]))
    assert objective(mod, R, reg, weighted_reg=weighted) == pytest.approx(f[-1], rel=1e-9,
                                                                          abs=1e-12)


def test_als_recovers_planted_low_rank():
    M, mask, R = planted(60, 50, 3, 0.5, 3)
    mod, info = als(R, 3, reg=1e-9, max_iter=200, tol=1e-12, seed=0, return_info=True)
    rmse = np.sqrt(np.mean((mod.reconstruct() - M)[~mask] ** 2))
    assert rmse < 1e-3
    assert info.errors[-1] < 1e-8 * np.sum(M[mask] ** 2)


def test_als_biases_rows_are_direct_least_squares():
    R = ratings(8, 7, 30, 4)
    k, reg = 2, 0.2
    Q0 = np.random.default_rng(5).standard_normal((7, k))
    mod = als(R, k, reg=reg, biases=True, max_iter=1, Q0=Q0)
    mu0 = R.values.mean()
    # the user step: [p_u, b_u] is the least-squares solution of the stacked ridge system
    for u, (items, vals) in enumerate(rows_of(R, 0)):
        A = np.vstack([np.hstack([Q0[items], np.ones((len(items), 1))]),
                       np.sqrt(reg) * np.eye(k + 1)])
        x = np.linalg.lstsq(A, np.concatenate([vals - mu0, np.zeros(k + 1)]), rcond=None)[0]
        np.testing.assert_allclose(np.append(mod.P[u], mod.user_bias[u]), x, atol=1e-12)
    for i, (users, vals) in enumerate(rows_of(R, 1)):
        A = np.vstack([np.hstack([mod.P[users], np.ones((len(users), 1))]),
                       np.sqrt(reg) * np.eye(k + 1)])
        y = np.concatenate([vals - mu0 - mod.user_bias[users], np.zeros(k + 1)])
        x = np.linalg.lstsq(A, y, rcond=None)[0]
        np.testing.assert_allclose(np.append(mod.Q[i], mod.item_bias[i]), x, atol=1e-12)
    # the mean: shifted by the mean residual, so the residuals now sum to zero
    e = R.values - mod.predict(R.users, R.items)
    assert abs(e.sum()) < 1e-10


def test_als_biases_converge_to_stationary_point():
    R = ratings(10, 9, 50, 6)
    reg = 0.5
    mod = als(R, 2, reg=reg, biases=True, max_iter=2000, tol=1e-15, seed=1)
    e = R.values - mod.predict(R.users, R.items)
    # gradients of the objective (halved) with respect to every block vanish
    gP = -np.array([e[R.users == u] @ mod.Q[R.items[R.users == u]] for u in range(10)])
    gP += reg * mod.P
    gQ = -np.array([e[R.items == i] @ mod.P[R.users[R.items == i]] for i in range(9)])
    gQ += reg * mod.Q
    gb = -np.bincount(R.users, e, 10) + reg * mod.user_bias
    gc = -np.bincount(R.items, e, 9) + reg * mod.item_bias
    for g in (gP, gQ, gb, gc, e.sum()):
        assert np.abs(g).max() < 1e-6


def test_als_weighted_reg_shrinks_busy_rows_more():
    # one user with many ratings, one with few: ALS-WR's penalty grows with the count
    R = ratings(6, 20, 60, 7)
    plain = als(R, 2, reg=0.5, max_iter=1, Q0=np.ones((20, 2)))
    wr = als(R, 2, reg=0.5, max_iter=1, Q0=np.ones((20, 2)), weighted_reg=True)
    n_u = np.bincount(R.users, minlength=6)
    for u in range(6):
        Qu = np.ones((n_u[u], 2))
        r_u = R.values[R.users == u]
        np.testing.assert_allclose(wr.P[u], ridge(Qu, r_u, 0.5 * n_u[u]), atol=1e-12)
        np.testing.assert_allclose(plain.P[u], ridge(Qu, r_u, 0.5), atol=1e-12)


# --------------------------------------------------------------------------- inexact AltMin


def test_cg_with_rank_steps_equals_exact_als():
    _, _, R = planted(30, 25, 3, 0.5, 8)
    exact = als(R, 3, reg=0.05, max_iter=10, tol=0, seed=2)
    cg = als(R, 3, reg=0.05, max_iter=10, tol=0, cg_steps=3, seed=2)
    np.testing.assert_allclose(cg.reconstruct(), exact.reconstruct(), atol=1e-8)
    # with biases the rows have k + 1 unknowns
    exact_b = als(R, 3, reg=0.05, biases=True, max_iter=5, tol=0, seed=2)
    cg_b = als(R, 3, reg=0.05, biases=True, max_iter=5, tol=0, cg_steps=4, seed=2)
    np.testing.assert_allclose(cg_b.reconstruct(), exact_b.reconstruct(), atol=1e-8)


def test_inexact_altmin_still_recovers_planted():
    """Gu, Song, Yin & Zhang's claim: approximate least-squares steps still converge.

    Started, as in the theory (Jain, Netrapalli & Sanghavi), from the top right singular
    vectors of the zero-filled observed matrix; from a random start ALS can stall at a
    spurious point on this instance (one of three seeds tried did).
    """
    M, mask, R = planted(80, 60, 4, 0.4, 0)
    Q0 = np.linalg.svd(np.where(mask, M, 0.0) / mask.mean())[2][:4].T

    def sweeps_to(thr, **kw):
        for it in range(1, 60):
            mod = als(R, 4, reg=1e-9, max_iter=it, tol=0, Q0=Q0, **kw)
            if np.sqrt(np.mean((mod.reconstruct() - M)[~mask] ** 2)) < thr:
                return it
        return None

    exact = sweeps_to(1e-3)
    two = sweeps_to(1e-3, cg_steps=2)
    one = sweeps_to(1e-3, cg_steps=1)
    # measured: exact 9, cg_steps=2 10, cg_steps=1 15 sweeps
    assert exact is not None and two is not None and one is not None
    assert two <= 2 * exact and one <= 4 * exact


# --------------------------------------------------------------------------- SGD


def _surprise_setup(nnz, seed):
    pd = pytest.importorskip("pandas")
    surprise = pytest.importorskip("surprise")
    rng = np.random.default_rng(seed)
    pairs = rng.choice(30 * 25, nnz, replace=False)
    df = pd.DataFrame({"u": [f"u{p // 25}" for p in pairs], "i": [f"i{p % 25}" for p in pairs],
                       "r": rng.integers(1, 6, nnz).astype(float)})
    data = surprise.Dataset.load_from_df(df, surprise.Reader(rating_scale=(1, 5)))
    ts = data.build_full_trainset()
    trip = np.array(list(ts.all_ratings()))
    R = Interactions(trip[:, 0].astype(np.int64), trip[:, 1].astype(np.int64), trip[:, 2],
                     ts.n_users, ts.n_items)
    return surprise, df, ts, R


@pytest.mark.parametrize("biased", [True, False])
def test_sgd_matches_surprise_svd(biased):
    surprise, _df, ts, R = _surprise_setup(300, 1)
    k, epochs = 4, 5
    algo = surprise.SVD(n_factors=k, n_epochs=epochs, biased=biased, lr_all=0.01,
                        reg_all=0.05, random_state=7).fit(ts)
    # surprise's initialisation: pu then qi from RandomState(random_state).normal(0, 0.1)
    rs = np.random.RandomState(7)
    P0 = rs.normal(0, 0.1, (ts.n_users, k))
    Q0 = rs.normal(0, 0.1, (ts.n_items, k))
    mod = sgd_mf(R, k, lr=0.01, reg=0.05, n_epochs=epochs, biases=biased, shuffle=False,
                 P0=P0, Q0=Q0)
    np.testing.assert_allclose(mod.P, algo.pu, atol=1e-12)
    np.testing.assert_allclose(mod.Q, algo.qi, atol=1e-12)
    if biased:
        np.testing.assert_allclose(mod.user_bias, algo.bu, atol=1e-12)
        np.testing.assert_allclose(mod.item_bias, algo.bi, atol=1e-12)
    ours = mod.predict(R.users, R.items)
    theirs = [algo.predict(ts.to_raw_uid(u), ts.to_raw_iid(i), clip=False).est
              for u, i in zip(R.users[:50], R.items[:50], strict=True)]
    np.testing.assert_allclose(ours[:50], theirs, atol=1e-8)


def test_sgd_info_and_determinism():
    R = ratings(20, 15, 120, 9)
    mod, info = sgd_mf(R, 3, n_epochs=30, lr=0.02, seed=4, return_info=True)
    again = sgd_mf(R, 3, n_epochs=30, lr=0.02, seed=4)
    np.testing.assert_array_equal(mod.P, again.P)
    assert info.n_iter == 30 and info.converged and len(info.errors) == 30
    # the running error of the last epoch: replay it from the state after epoch 29, errors
    # measured just before each update, in that epoch's order (the 30th shuffle)
    before = sgd_mf(R, 3, n_epochs=29, lr=0.02, seed=4)
    rng = np.random.default_rng(4)
    rng.standard_normal((20, 3)), rng.standard_normal((15, 3))
    for _ in range(29):
        rng.permutation(R.nnz)
    P, Q = before.P.copy(), before.Q.copy()
    bu, bi, mu = before.user_bias.copy(), before.item_bias.copy(), before.mean
    sse = 0.0
    for t in rng.permutation(R.nnz):
        u, i = R.users[t], R.items[t]
        e = R.values[t] - (mu + bu[u] + bi[i] + P[u] @ Q[i])
        sse += e * e
        bu[u] += 0.02 * (e - 0.02 * bu[u])
        bi[i] += 0.02 * (e - 0.02 * bi[i])
        P[u], Q[i] = P[u] + 0.02 * (e * Q[i] - 0.02 * P[u]), Q[i] + 0.02 * (e * P[u] - 0.02 * Q[i])
    assert info.errors[-1] == pytest.approx(np.sqrt(sse / R.nnz), rel=1e-10)
    np.testing.assert_allclose(P, mod.P, atol=1e-12)
    assert info.errors[-1] < info.errors[0]
    assert mod.mean == pytest.approx(R.values.mean())


def test_sgd_float32_follows_float64():
    # the same draw and order in single precision: factors in float32, the fit within
    # single-precision rounding of the double one after a few epochs
    R = ratings(40, 30, 500, 12)
    m64, i64 = sgd_mf(R, 4, lr=0.01, n_epochs=10, seed=3, return_info=True)
    m32, i32 = sgd_mf(R, 4, lr=0.01, n_epochs=10, seed=3, dtype=np.float32, return_info=True)
    assert m32.P.dtype == np.float32 and m32.Q.dtype == np.float32
    assert m32.user_bias.dtype == np.float32
    np.testing.assert_allclose(m32.P, m64.P, atol=1e-5)
    np.testing.assert_allclose(m32.item_bias, m64.item_bias, atol=1e-5)
    np.testing.assert_allclose(i32.errors, i64.errors, rtol=1e-5)
    with pytest.raises(ValueError, match="dtype must be float32 or float64; got int32"):
        sgd_mf(R, 4, dtype=np.int32)
    with pytest.raises(TypeError, match="dtype must be a NumPy dtype"):
        sgd_mf(R, 4, dtype="not a dtype")


def test_sgd_divergence_is_reported():
    R = ratings(10, 10, 60, 10)
    with np.errstate(all="ignore"):
        _, info = sgd_mf(R, 2, lr=5.0, n_epochs=30, seed=0, return_info=True)
    assert not info.converged


# --------------------------------------------------------------------------- Soft-Impute


def soft_threshold(Y, lam):
    U, s, Vt = np.linalg.svd(Y, full_matrices=False)
    return (U * np.maximum(s - lam, 0)) @ Vt


def test_soft_impute_is_fixed_point():
    rng = np.random.default_rng(11)
    m, n = 15, 12
    X = rng.standard_normal((m, n))
    mask = rng.random((m, n)) < 0.6
    u, i = np.nonzero(mask)
    R = scipy.sparse.coo_matrix((X[u, i], (u, i)), shape=(m, n))
    lam = 1.0
    mod, info = soft_impute(R, lam, max_iter=5000, tol=1e-20, return_info=True)
    Z = mod.reconstruct()
    fixed = soft_threshold(np.where(mask, X, Z), lam)
    assert np.abs(fixed - Z).max() < 1e-8
    assert info.errors[0] == np.inf and info.errors[-1] < 1e-12


def test_soft_impute_path_recovers_planted_as_reg_to_zero():
    M, mask, R = planted(60, 50, 3, 0.6, 12)
    lam_max = np.linalg.norm(np.where(mask, M, 0), 2)
    regs = lam_max * np.geomspace(1, 1e-5, 15)
    mods, infos = soft_impute_path(R, regs, max_iter=2000, tol=1e-12, return_info=True)
    err = [np.sqrt(np.mean((f.reconstruct() - M)[~mask] ** 2)) for f in mods]
    assert err[-1] < 1e-3 * np.sqrt(np.mean(M ** 2))
    assert mods[0].P.shape[1] <= mods[-1].P.shape[1]
    assert mods[-1].P.shape[1] == 3  # the nuclear-norm solution has the planted rank
    assert all(i.converged for i in infos)


def test_soft_impute_sparse_path_equals_dense():
    M, _mask, R = planted(30, 25, 2, 0.5, 13)
    X = M + 0.1 * np.random.default_rng(0).standard_normal(M.shape)
    R = Interactions(R.users, R.items, X[R.users, R.items], 30, 25)
    lam = 2.0
    dense = soft_impute(R, lam, max_iter=3000, tol=1e-24)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the cap does not bind: no warning
        sparse_, info = soft_impute(R, lam, rank=8, max_iter=3000, tol=1e-24, seed=0,
                                    return_info=True)
    assert sparse_.P.shape == (30, 8)
    assert dense.P.shape[1] < 8  # the rank bound does not bind
    np.testing.assert_allclose(sparse_.reconstruct(), dense.reconstruct(), atol=1e-7)
    assert info.converged
    # a rank-restricted fit with rank = the planted rank and tiny reg recovers M; the cap
    # binds there (both values stay above the threshold), which is reported
    with pytest.warns(RuntimeWarning, match="all rank=2 singular values stayed above"):
        exact = soft_impute(Interactions(R.users, R.items, M[R.users, R.items], 30, 25),
                            1e-8, rank=2, max_iter=2000, tol=1e-20, seed=1)
    assert np.abs(exact.reconstruct() - M).max() < 1e-4


def test_soft_impute_large_reg_gives_zero_and_duplicates_refused():
    R = ratings(6, 5, 12, 14)
    mod = soft_impute(R, 1e6)
    assert np.all(mod.reconstruct() == 0)
    dup = Interactions(np.array([0, 0]), np.array([1, 1]), np.array([1.0, 2.0]), 2, 2)
    with pytest.raises(ValueError, match="more than once"):
        soft_impute(dup, 0.1)
    with pytest.raises(ValueError, match="regs"):
        soft_impute_path(R, [])


# --------------------------------------------------------------------------- fold-in


@pytest.mark.parametrize("biases", [False, True])
def test_fold_in_equals_als_user_row(biases):
    R = ratings(12, 10, 60, 15)
    k, reg = 3, 0.4
    Q0 = np.random.default_rng(16).standard_normal((10, k))
    mod = als(R, k, reg=reg, biases=biases, max_iter=1, Q0=Q0, weighted_reg=True)
    # the user step ran against Q0 (and, with biases, zero item biases and the mean rating)
    before = MF(mod.P, Q0, mod.user_bias, None if not biases else np.zeros(10),
                R.values.mean() if biases else 0.0)
    for u, (items, vals) in enumerate(rows_of(R, 0)):
        fold = fold_in(before, items, vals, reg=reg, weighted_reg=True)
        assert isinstance(fold, FoldIn)
        np.testing.assert_allclose(fold.factor, mod.P[u], atol=1e-12)
        if biases:
            assert fold.bias == pytest.approx(mod.user_bias[u], abs=1e-12)
        else:
            assert fold.bias is None


def test_fold_in_at_convergence_reproduces_fit():
    R = ratings(10, 9, 50, 17)
    mod = als(R, 2, reg=0.5, biases=True, max_iter=2000, tol=1e-15, seed=1)
    items, vals = R.items[R.users == 3], R.values[R.users == 3]
    fold = fold_in(mod, items, vals, reg=0.5)
    np.testing.assert_allclose(fold.factor, mod.P[3], atol=1e-6)
    assert fold.bias == pytest.approx(mod.user_bias[3], abs=1e-6)


def test_fold_in_bad_input():
    mod = MF(np.ones((2, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="popularity"):
        fold_in(mod, [], [], reg=0.1)
    with pytest.raises(ValueError, match="items"):
        fold_in(mod, [3], [1.0], reg=0.1)
    with pytest.raises(ValueError, match="values"):
        fold_in(mod, [1], [np.nan], reg=0.1)
    with pytest.raises(ValueError, match="reg"):
        fold_in(mod, [1], [1.0], reg=-1)
    # reg = 0 with fewer ratings than factors: the minimum-norm solution, no crash
    fold = fold_in(mod, [1], [2.0], reg=0.0)
    np.testing.assert_allclose(fold.factor, [1.0, 1.0])


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("fit", [
    lambda R, **kw: als(R, **kw),
    lambda R, **kw: sgd_mf(R, n_epochs=2, **kw),
    lambda R, **kw: soft_impute(R, 0.1, **kw),
])
def test_bad_rank(fit):
    R = ratings(5, 4, 10, 18)
    with pytest.raises(ValueError, match="rank"):
        fit(R, rank=5)
    with pytest.raises(ValueError, match="rank"):
        fit(R, rank=0)


def test_bad_arguments():
    R = ratings(5, 4, 10, 19)
    with pytest.raises(ValueError, match="reg"):
        als(R, 2, reg=-0.1)
    with pytest.raises(ValueError, match="reg"):
        sgd_mf(R, 2, reg=-0.1)
    with pytest.raises(ValueError, match="reg"):
        soft_impute(R, -1.0)
    with pytest.raises(ValueError, match="lr"):
        sgd_mf(R, 2, lr=0.0)
    with pytest.raises(ValueError, match="cg_steps"):
        als(R, 2, cg_steps=0)
    with pytest.raises(ValueError, match="Q0"):
        als(R, 2, Q0=np.ones((3, 2)))
    with pytest.raises(ValueError, match="P0"):
        sgd_mf(R, 2, P0=np.ones((5, 3)))
    with pytest.raises(ValueError, match="not finite"):
        als(Interactions(np.array([0]), np.array([0]), np.array([np.nan]), 2, 2), 1)
    with pytest.raises(ValueError, match="no observed entries"):
        als(scipy.sparse.csr_matrix((3, 3)), 1)
    with pytest.raises(ValueError, match="empty"):
        sgd_mf(scipy.sparse.csr_matrix((0, 3)), 1)
    with pytest.raises(TypeError):
        soft_impute(np.ones((3, 3)), 0.1)


@pytest.mark.parametrize("kw", [{}, {"weighted_reg": True}, {"cg_steps": 2},
                                {"biases": True}, {"reg": 0.0}])
def test_als_user_and_item_without_observations(kw):
    # user 2 and item 3 have no observation: their factors (and biases) stay zero
    u = np.array([0, 0, 1, 1, 3, 3, 0])
    i = np.array([0, 1, 1, 2, 0, 2, 2])
    R = Interactions(u, i, np.array([5.0, 3, 4, 2, 1, 4, 2]), 4, 4)
    params = {"reg": 0.1, **kw}
    mod = als(R, 2, max_iter=5, seed=0, **params)
    assert np.all(mod.P[2] == 0) and np.all(mod.Q[3] == 0)
    assert np.all(np.isfinite(mod.P)) and np.all(np.isfinite(mod.Q))
    if kw.get("biases"):
        assert mod.user_bias[2] == 0 and mod.item_bias[3] == 0
    # SGD leaves an unseen item at its initial draw; Soft-Impute fills its column
    sgd = sgd_mf(R, 2, n_epochs=3, seed=0)
    assert np.all(sgd.item_bias[3] == 0)
    assert np.all(np.isfinite(soft_impute(R, 0.5).reconstruct()))


def test_spectral_start_avoids_the_stall_of_a_random_one():
    # a planted rank-2 matrix, 60% observed, where the random start of seed 0 stalls at a
    # spurious stationary point (a plain NumPy ALS from the same start stalls there too)
    g = np.random.default_rng(0)
    full = g.standard_normal((40, 2)) @ g.standard_normal((2, 30))
    seen = g.random((40, 30)) < 0.6
    u, i = np.nonzero(seen)
    R = Interactions(u, i, full[seen], 40, 30)

    def error(model):
        return np.abs(model.reconstruct() - full)[~seen].max() / np.abs(full).max()

    stalled = als(R, 2, reg=1e-8, max_iter=200, tol=0, seed=0)
    spectral = als(R, 2, reg=1e-8, max_iter=200, tol=0, init="svd")
    assert error(stalled) > 1.0 and error(spectral) < 1e-6
    with_bias = als(R, 2, reg=1e-8, max_iter=50, tol=0, init="svd", biases=True)
    assert np.all(np.isfinite(with_bias.reconstruct()))
    with pytest.raises(ValueError, match="init"):
        als(R, 2, init="nndsvd")

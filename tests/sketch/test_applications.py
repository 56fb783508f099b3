"""Coordinated sampling for AᵀB, CUR-based kNN, truncated SVD updates."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from refimpl import linalg, meta
from refimpl.linalg import TruncatedSVD
from refimpl.sketch import (
    coordinated_sample_product,
    coordinated_sketch,
    cur_knn,
    estimate_product,
    randomized_svd,
    update_truncated_svd,
)

# ---------------------------------------------------------------- coordinated sampling


def _sparse_pair(n=3000, d=30, m=40, density=0.03, seed=0):
    A = sp.random(n, d, density=density, random_state=seed, format="csr")
    B = sp.random(n, m, density=density, random_state=seed + 1, format="csr")
    return A, B


@pytest.mark.parametrize("method", ["threshold", "priority"])
def test_coordinated_estimate_is_unbiased(method):
    # Unbiasedness: the mean of 300 estimates (different shared seeds) is within 5 standard
    # errors of AᵀB entrywise-in-norm: ||mean - AᵀB||_F <= 5 * sqrt(sum var / 300).
    A, B = _sparse_pair(n=400, d=5, m=6, density=0.3)
    true = (A.T @ B).toarray()
    ests = np.stack([coordinated_sample_product(A, B, 60, seed=s, method=method)[0]
                     for s in range(300)])
    se = np.sqrt(ests.var(axis=0).sum() / len(ests))
    assert np.linalg.norm(ests.mean(axis=0) - true) <= 5 * se


def test_coordinated_error_bound():
    # Variance bound for threshold sampling with p_i = min(1, s w_i / ||·||_F^2):
    #   E ||est - AᵀB||_F^2 <= (2/s) ||A||_F^2 ||B||_F^2; checked on the mean over 30 seeds.
    A, B = _sparse_pair()
    true = (A.T @ B).toarray()
    s = 200
    mse = np.mean([np.linalg.norm(coordinated_sample_product(A, B, s, seed=sd,
                                                             method="threshold")[0] - true)**2
                   for sd in range(30)])
    assert mse <= 2 / s * sp.linalg.norm(A) ** 2 * sp.linalg.norm(B) ** 2


def test_coordinated_dense_and_exact_when_everything_is_kept(rng):
    A = rng.standard_normal((20, 3))
    B = rng.standard_normal((20, 4))
    est, stored = coordinated_sample_product(A, B, 20, seed=0)  # priority keeps all 20 rows
    np.testing.assert_allclose(est, A.T @ B, atol=1e-12)
    assert stored == 2 * 20 + 20 * 3 + 2 * 20 + 20 * 4


def test_coordinated_sketches_are_independent_but_coordinated(rng):
    A = rng.standard_normal((500, 3))
    SA1 = coordinated_sketch(A, 50, seed=5)
    SA2 = coordinated_sketch(A * 2.0, 50, seed=5)  # same weights up to scale: same rows
    np.testing.assert_array_equal(SA1.index, SA2.index)
    assert len(SA1.index) == 50
    SB = coordinated_sketch(rng.standard_normal((499, 2)), 50, seed=5)
    with pytest.raises(ValueError, match="rows"):
        estimate_product(SA1, SB)


def test_coordinated_bad_inputs(rng):
    A = rng.standard_normal((10, 2))
    with pytest.raises(TypeError, match="seed must be an int"):
        coordinated_sketch(A, 3, seed=None)
    with pytest.raises(ValueError, match="method"):
        coordinated_sketch(A, 3, seed=0, method="uniform")
    with pytest.raises(ValueError, match="all zeros"):
        coordinated_sketch(np.zeros((10, 2)), 3, seed=0)
    with pytest.raises(ValueError, match="rows to match"):
        coordinated_sample_product(A, rng.standard_normal((9, 2)), 3, seed=0)


# ---------------------------------------------------------------- CUR kNN


def _scores(rng, q=60, N=500, r=6):
    return rng.standard_normal((q, r)) @ rng.standard_normal((r, N))


def test_cur_knn_exact_on_low_rank_scores(rng):
    # When the score matrix has rank r and r anchor items are scored, the CUR row is exact,
    # so the top-k under the budget equals the exact top-k.
    S = _scores(rng)
    R, test = S[:40], S[40:]
    calls = []
    for row in test:
        def score(items, row=row):
            calls.append(len(items))
            return row[items]
        out = cur_knn(score, R, 10, budget=30, n_anchor_items=12, seed=0)
        np.testing.assert_allclose(out.approx_scores, row, atol=1e-8)
        np.testing.assert_array_equal(np.sort(out.indices), np.sort(np.argsort(-row)[:10]))
        assert out.n_calls == 30
    assert sum(calls) == 30 * len(test)


def test_cur_knn_budget_covers_everything(rng):
    S = _scores(rng, N=50)
    row = S[-1] + rng.standard_normal(50)  # not in the span: the CUR row is inexact
    out = cur_knn(lambda it: row[it], S[:20], 5, budget=50, n_anchor_items=10, seed=1)
    np.testing.assert_array_equal(out.indices, np.argsort(-row)[:5])


def test_cur_knn_bad_inputs(rng):
    R = _scores(rng, q=5, N=30)
    with pytest.raises(ValueError, match="budget=4 must cover"):
        cur_knn(lambda it: R[0, it], R, 2, budget=4, n_anchor_items=6)
    with pytest.raises(ValueError, match="distinct"):
        cur_knn(lambda it: R[0, it], R, 2, budget=10, n_anchor_items=2, anchor_items=[1, 1])
    with pytest.raises(ValueError, match="k=11 exceeds budget=10"):
        cur_knn(lambda it: R[0, it], R, 11, budget=10, n_anchor_items=2)


# ---------------------------------------------------------------- truncated SVD updates


def _best(A, k):
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    return TruncatedSVD(U[:, :k], s[:k], Vt[:k])


def test_update_exact_when_starting_from_exact_low_rank(rng):
    # Zha–Simon: if A has rank <= k and the starting SVD is exact, the update of [A; E] is
    # the exact rank-(k + p) SVD truncated to k — exact whenever [A; E] has rank <= k.
    M = rng.standard_normal((120, 6)) @ rng.standard_normal((6, 50))
    up = update_truncated_svd(_best(M[:100], 6), M[100:])
    np.testing.assert_allclose(up.reconstruct(), M, atol=1e-10 * np.abs(M).max())
    np.testing.assert_allclose(up.U.T @ up.U, np.eye(6), atol=1e-10)
    np.testing.assert_allclose(up.Vt @ up.Vt.T, np.eye(6), atol=1e-10)


def test_update_columns_sparse_and_randomized_residual(rng):
    M = rng.standard_normal((80, 5)) @ rng.standard_normal((5, 70))
    up = update_truncated_svd(_best(M[:, :50], 5), sp.csr_matrix(M[:, 50:]), axis=1)
    np.testing.assert_allclose(up.reconstruct(), M, atol=1e-10 * np.abs(M).max())
    upr = update_truncated_svd(_best(M[:60], 5), sp.csr_matrix(M[60:]), residual_rank=3,
                               seed=0)
    np.testing.assert_allclose(upr.reconstruct(), M, atol=1e-10 * np.abs(M).max())


def test_update_matches_recomputation_on_noisy_data(rng):
    # Rows drawn from the same low-rank model plus noise: after the update the rank-k error is
    # within 1% of the best rank-k error of the full matrix (Zha & Simon's observation that
    # the update is near-optimal when the data have low-rank-plus-noise structure).
    base = rng.standard_normal((10, 60))
    M = rng.standard_normal((400, 10)) @ base + 0.01 * rng.standard_normal((400, 60))
    k = 10
    svd = _best(M[:200], k)
    for start in range(200, 400, 50):
        svd = update_truncated_svd(svd, M[start:start + 50])
    opt = np.linalg.norm(M - _best(M, k).reconstruct())
    assert np.linalg.norm(M - svd.reconstruct()) <= 1.01 * opt
    np.testing.assert_allclose(svd.s, _best(M, k).s, rtol=1e-3)


def test_update_with_randomized_svd_result(rng):
    M = rng.standard_normal((90, 4)) @ rng.standard_normal((4, 40))
    up = update_truncated_svd(randomized_svd(M[:70], 4, seed=0), M[70:], rank=4)
    np.testing.assert_allclose(up.reconstruct(), M, atol=1e-9 * np.abs(M).max())


def test_update_bad_inputs(rng):
    svd = _best(rng.standard_normal((10, 8)), 3)
    with pytest.raises(ValueError, match="8 columns"):
        update_truncated_svd(svd, np.ones((2, 7)))
    with pytest.raises(ValueError, match="axis"):
        update_truncated_svd(svd, np.ones((2, 8)), axis=2)
    with pytest.raises(TypeError, match="TruncatedSVD"):
        update_truncated_svd((svd.U, svd.s), np.ones((2, 8)))
    with pytest.raises(ValueError, match="factors disagree"):
        update_truncated_svd(TruncatedSVD(svd.U, svd.s[:2], svd.Vt), np.ones((2, 8)))
    with pytest.raises(ValueError, match="NaN"):
        update_truncated_svd(svd, np.full((2, 8), np.nan))
    with pytest.raises(ValueError, match=r"rank=6 exceeds rank \+ new rows=5"):
        update_truncated_svd(svd, np.ones((2, 8)), rank=6)
    with pytest.raises(TypeError, match=r"svd\.U must be a NumPy array"):
        update_truncated_svd(TruncatedSVD(*(torch.as_tensor(f) for f in svd[:3])),
                             np.ones((2, 8)))


def test_update_accepts_the_exact_truncated_svd(rng):
    # The named bug: update_truncated_svd(linalg.truncated_svd(A, k), E) raised TypeError,
    # because the two TruncatedSVD types differed (linalg's had a fourth field, tail).
    M = rng.standard_normal((50, 3)) @ rng.standard_normal((3, 20))
    start = linalg.truncated_svd(M[:40], 3)
    assert start.tail is not None
    up = update_truncated_svd(start, M[40:])
    assert isinstance(up, TruncatedSVD) and up.tail is None
    np.testing.assert_allclose(up.reconstruct(), M, atol=1e-10 * np.abs(M).max())


def _svd_producers():
    """Every SVD-producing function of linalg, sketch and meta, as (name, A -> SVD result)."""
    return {
        "linalg.truncated_svd": lambda A: linalg.truncated_svd(A, 4),
        "linalg.jacobi_svd": lambda A: linalg.jacobi_svd(A),
        "sketch.randomized_svd": lambda A: randomized_svd(A, 4, seed=0),
        "sketch.update_truncated_svd": lambda A: update_truncated_svd(
            linalg.truncated_svd(A[:-5], 4), A[-5:]),
        "meta.svd_meta": lambda A: meta.svd_meta(A, 4),
        "meta.svd_meta.svd": lambda A: meta.svd_meta(A, 4).svd,
    }


def _svd_consumers():
    """Every function of meta and sketch that takes an SVD result, as
    (name, (split M into the part the SVD is of and the new part, consume(svd, new)))."""
    return {
        "update_truncated_svd(rows)": (lambda M: (M[:30], M[30:]),
                                       lambda svd, E: update_truncated_svd(svd, E)),
        "update_truncated_svd(columns)": (lambda M: (M[:, :18], M[:, 18:]),
                                          lambda svd, E: update_truncated_svd(svd, E, axis=1)),
    }


@pytest.mark.parametrize("consumer", sorted(_svd_consumers()))
@pytest.mark.parametrize("producer", sorted(_svd_producers()))
def test_every_svd_producer_feeds_every_svd_consumer(rng, producer, consumer):
    # M has rank 4, so every producer's SVD of the old part is exact and so is the update:
    # the updated SVD must reconstruct all of M to rounding.
    M = rng.standard_normal((40, 4)) @ rng.standard_normal((4, 25))
    split, consume = _svd_consumers()[consumer]
    old, new = split(M)
    svd = _svd_producers()[producer](old)
    np.testing.assert_allclose(svd.reconstruct(), old, atol=1e-10 * np.abs(M).max())
    out = consume(svd, new)
    assert isinstance(out, TruncatedSVD)
    np.testing.assert_allclose(out.reconstruct(), M, atol=1e-9 * np.abs(M).max())

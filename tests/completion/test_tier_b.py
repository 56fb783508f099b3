"""Tests for the tier-B completion methods: one-sided completion (Cao, Liang & Valiant, 2023),
robust recovery by the sub-gradient method (Ma & Fattahi, 2022) and Swivel (Shazeer et al.,
2016): defining equations, hand-computed cases and each paper's claim on a small instance."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from refimpl.completion.model import Interactions
from refimpl.completion.onesided import (
    OneSided,
    observe_per_row,
    onesided_completion,
    onesided_gram,
    subspace_distance,
)
from refimpl.completion.robust import (
    _loss_subgradient,
    gaussian_sensing,
    l1_loss,
    recovery_error,
    robust_recovery,
)
from refimpl.completion.swivel import (
    CONFIDENCE,
    Swivel,
    _block_loss_grad,
    cooccurrence,
    nearest,
    pmi_matrix,
    similarity_score,
    svd_embeddings,
    swivel,
    text_vocabulary,
)
from refimpl.results import Info

# =========================================================================== one-sided


def low_rank_rows(m, n=50, r=3, seed=0):
    rng = np.random.default_rng(seed)
    V = np.linalg.qr(rng.standard_normal((n, r)))[0]
    return rng.standard_normal((m, r)) @ V.T


def top_right(X, r):
    return np.linalg.svd(X, full_matrices=False)[2][:r].T


def test_gram_hand_computed():
    # rows observe (0,1), (1,2), (0,1): c00=2, c11=3, c22=1, c01=2, c12=1, c02=0
    R = Interactions(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 1, 2, 0, 1]),
                     np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 3, 3)
    G, c = onesided_gram(R)
    np.testing.assert_array_equal(c, [[2, 2, 0], [2, 3, 1], [0, 1, 1]])
    # m · (sum of products) / count
    expected = np.array([[3 * 26 / 2, 3 * 32 / 2, 0], [3 * 32 / 2, 3 * 49 / 3, 3 * 12 / 1],
                         [0, 3 * 12 / 1, 3 * 16 / 1]])
    np.testing.assert_allclose(G, expected)
    Gp, _ = onesided_gram(R.csr(), p=0.5)  # S / p² off the diagonal, S / p on it
    np.testing.assert_allclose(Gp, [[52, 128, 0], [128, 98, 48], [0, 48, 32]])


def test_gram_estimates_are_unbiased():
    X = low_rank_rows(300, n=6, r=2, seed=1)
    G = X.T @ X
    rng = np.random.default_rng(2)
    mean_freq = np.zeros_like(G)
    mean_bern = np.zeros_like(G)
    trials = 300
    for _ in range(trials):
        mean_freq += onesided_gram(observe_per_row(X, 2, seed=rng))[0] / trials
        mask = rng.random(X.shape) < 0.4
        mean_bern += onesided_gram(sp.csr_matrix(X * mask), p=0.4)[0] / trials
    scale = np.abs(G).max()
    assert np.abs(mean_freq - G).max() < 0.04 * scale
    assert np.abs(mean_bern - G).max() < 0.04 * scale


def test_full_observation_recovers_exactly():
    X = low_rank_rows(200, n=12, r=3, seed=3)
    res, info = onesided_completion(observe_per_row(X, 12, seed=0), 3, return_info=True)
    assert isinstance(res, OneSided) and isinstance(info, Info)
    assert subspace_distance(res.V, top_right(X, 3)) < 1e-7
    np.testing.assert_allclose(res.gram, X.T @ X, atol=1e-8 * np.abs(X.T @ X).max())
    np.testing.assert_allclose(res.s, np.linalg.svd(X, compute_uv=False)[:3] ** 2, rtol=1e-8)
    np.testing.assert_allclose(res.V.T @ res.V, np.eye(3), atol=1e-12)


@pytest.mark.parametrize("weights", ["uniform", "counts"])
def test_two_per_row_subspace_error_falls_with_rows(weights):
    # the paper's claim: two observations per row suffice once there are enough rows
    errs, naive = [], []
    for m in (2000, 8000, 32000):
        X = low_rank_rows(m, seed=m)
        R = observe_per_row(X, 2, seed=1)
        res, info = onesided_completion(R, 3, weights=weights, return_info=True)
        assert all(b <= a + 1e-12 for a, b in zip(info.errors, info.errors[1:], strict=False))
        V_true = top_right(X, 3)
        errs.append(subspace_distance(res.V, V_true))
        naive.append(subspace_distance(top_right(R.csr().toarray(), 3), V_true))
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 0.2 and errs[2] < 0.4 * errs[0]
    # zero-filled SVD is dominated by its diagonal and does not improve
    assert min(naive) > 0.8 and all(e < z for e, z in zip(errs, naive, strict=True))


def test_subspace_distance_cases():
    e = np.eye(3)
    assert subspace_distance(e[:, :2], e[:, [1, 0]] @ [[0.6, 0.8], [-0.8, 0.6]]) < 1e-12
    assert subspace_distance(e[:, :1], e[:, 1:2]) == pytest.approx(1.0)
    assert subspace_distance(e[:, :1], np.array([[1.0], [1.0], [0.0]])) == pytest.approx(
        np.sqrt(0.5))
    with pytest.raises(ValueError, match="V_true"):
        subspace_distance(e, np.ones((4, 1)))


def test_onesided_validation():
    R = observe_per_row(low_rank_rows(20, n=5, r=2), 2, seed=0)
    with pytest.raises(ValueError, match="rank"):
        onesided_completion(R, 6)
    with pytest.raises(ValueError, match="weights"):
        onesided_completion(R, 2, weights="nope")
    with pytest.raises(ValueError, match="p"):
        onesided_gram(R, p=1.5)
    with pytest.raises(TypeError, match="R"):
        onesided_gram(np.ones((3, 3)))
    with pytest.raises(ValueError, match="per_row"):
        observe_per_row(np.ones((3, 3)), 4)


# =========================================================================== robust


def test_gaussian_sensing_problem():
    P = gaussian_sensing(8, 2, 50, outlier_fraction=0.2, noise=0.0, seed=0)
    assert P.A.shape == (50, 8, 8) and P.y.shape == (50,)
    np.testing.assert_allclose(P.A, P.A.transpose(0, 2, 1))
    np.testing.assert_allclose(P.M_star, P.U_star @ P.U_star.T)
    assert np.linalg.matrix_rank(P.M_star) == 2
    np.testing.assert_allclose(np.linalg.eigvalsh(P.M_star)[-2:], [0.5, 1.0])
    assert P.outliers.sum() == 10
    clean = np.einsum("kij,ij->k", P.A, P.M_star)
    np.testing.assert_allclose(P.y[~P.outliers], clean[~P.outliers])
    assert np.all(P.y[P.outliers] != clean[P.outliers])


def test_subgradient_is_the_gradient_where_smooth():
    P = gaussian_sensing(6, 2, 40, outlier_fraction=0.1, seed=1)
    rng = np.random.default_rng(0)
    U = rng.standard_normal((6, 3))
    S = P.A + P.A.transpose(0, 2, 1)
    loss, D = _loss_subgradient(P.A, S, P.y, U)
    assert loss == pytest.approx(l1_loss(P.A, P.y, U))
    for _ in range(3):
        dU = rng.standard_normal(U.shape)
        h = 1e-6
        fd = (l1_loss(P.A, P.y, U + h * dU) - l1_loss(P.A, P.y, U - h * dU)) / (2 * h)
        assert fd == pytest.approx(np.sum(D * dU), rel=1e-5)


def test_small_init_recovers_despite_outliers_and_overparameterization():
    P = gaussian_sensing(20, 2, 400, outlier_fraction=0.15, seed=0)
    U, info = robust_recovery(P.A, P.y, 5, init_scale=1e-3, step=0.1, decay=0.99,
                              n_iter=600, seed=1, return_info=True)
    assert U.shape == (20, 5)
    assert recovery_error(U, P.M_star) < 1e-2
    assert len(info.errors) == info.n_iter == 600
    # the loss ends at its value at the truth (the outliers' mean size), not below it
    assert info.errors[-1] == pytest.approx(l1_loss(P.A, P.y, P.U_star), rel=1e-2)
    # the ℓ1 loss is what resists the outliers: least squares (plain gradient descent on
    # the mean squared residual, same start) is far off
    V = 1e-3 * np.random.default_rng(1).standard_normal((20, 5)) / np.sqrt(20)
    S = P.A + P.A.transpose(0, 2, 1)
    for _ in range(600):
        res = np.einsum("kij,ij->k", P.A, V @ V.T) - P.y
        V = V - 0.02 * np.tensordot(res, S, axes=1) @ V / 400 / np.linalg.norm(P.M_star)
    assert recovery_error(V, P.M_star) > 20 * recovery_error(U, P.M_star)


def test_small_initialization_beats_large_when_overparameterized():
    # the paper's claim: small initialization makes over-parameterisation (r' = n) harmless
    P = gaussian_sensing(20, 2, 400, outlier_fraction=0.15, seed=0)
    errs = [recovery_error(robust_recovery(P.A, P.y, 20, init_scale=a, step=0.1, decay=0.99,
                                           n_iter=600, seed=1), P.M_star)
            for a in (1e-3, 1e-2, 1e-1, 1.0)]
    assert errs[0] < 1e-2
    assert errs[-1] > 10 * errs[0]
    assert errs[0] < errs[1] < errs[3]


def test_robust_validation():
    P = gaussian_sensing(5, 1, 20, seed=0)
    with pytest.raises(ValueError, match="y"):
        robust_recovery(P.A, P.y[:-1], 2)
    with pytest.raises(ValueError, match="decay"):
        robust_recovery(P.A, P.y, 2, decay=1.5)
    with pytest.raises(ValueError, match="rank"):
        robust_recovery(P.A, P.y, 6)
    with pytest.raises(ValueError, match="U0"):
        robust_recovery(P.A, P.y, 2, U0=np.ones((5, 3)))
    with pytest.raises(ValueError, match="outlier_fraction"):
        gaussian_sensing(5, 1, 20, outlier_fraction=1.0)
    U0 = np.ones((5, 2))
    np.testing.assert_array_equal(robust_recovery(P.A, P.y, 2, U0=U0, n_iter=0), U0)


# =========================================================================== Swivel


def planted_cooccurrence(V=300, d=4, N=2e5, scale=0.7, seed=0):
    """Poisson counts of a distribution whose PMI is rank d (plus marginal terms)."""
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((V, d)) * scale
    p = 1 / (np.arange(V) + 10.0)
    P = p[:, None] * p[None, :] * np.exp(U @ U.T)
    P /= P.sum()
    pmi = np.log(P) - np.log(P.sum(1))[:, None] - np.log(P.sum(0))[None, :]
    X = rng.poisson(N * P).astype(float)
    return np.triu(X) + np.triu(X, 1).T, pmi


def two_topics(V=200, N=1e5, seed=0):
    """Words of two topics co-occur only within their topic: the cross cells are all zero."""
    rng = np.random.default_rng(seed)
    p = 1 / (np.arange(V) + 5.0)
    g = np.arange(V) % 2
    P = p[:, None] * p[None, :] * (g[:, None] == g[None, :])
    X = rng.poisson(N * P / P.sum()).astype(float)
    return np.triu(X) + np.triu(X, 1).T, g


def test_block_loss_hand_computed():
    W = np.array([[1.0, 0.0]])
    Cc = np.array([[0.5, 0.0], [0.0, 2.0]])
    X = np.array([[4.0, 0.0]])
    log_r, log_c, log_total = np.log([4.0]), np.log([8.0, 2.0]), np.log(16.0)
    loss, gW, gC = _block_loss_grad(W, Cc, X, log_r, log_c, log_total, CONFIDENCE, True)
    f = 0.1 + 0.25 * 2.0
    pmi = np.log(4.0) + np.log(16.0) - np.log(4.0) - np.log(8.0)  # log 2
    pmi_star = np.log(16.0) - np.log(4.0) - np.log(2.0)  # log 2
    assert loss == pytest.approx(0.5 * f * (0.5 - pmi) ** 2 + np.log1p(np.exp(0.0 - pmi_star)))
    g0, g1 = f * (0.5 - pmi), 1 / 3  # f·(d − pmi) and σ(0 − log 2)
    np.testing.assert_allclose(gW, [[0.5 * g0, 2 * g1]])
    np.testing.assert_allclose(gC, [[g0, 0.0], [g1, 0.0]])
    loss0, _, _ = _block_loss_grad(W, Cc, X, log_r, log_c, log_total, CONFIDENCE, False)
    assert loss0 == pytest.approx(0.5 * f * (0.5 - pmi) ** 2)


@pytest.mark.parametrize("unobserved", [True, False])
def test_block_gradients_match_finite_differences(unobserved):
    rng = np.random.default_rng(4)
    X = rng.poisson(1.0, (5, 4)).astype(float)  # about a third zeros
    Wb, Cb = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    args = (X, np.log(rng.uniform(5, 50, 5)), np.log(rng.uniform(5, 50, 4)), np.log(500.0),
            CONFIDENCE, unobserved)
    _, gW, gC = _block_loss_grad(Wb, Cb, *args)
    h = 1e-6
    for P, g, which in ((Wb, gW, 0), (Cb, gC, 1)):
        fd = np.zeros_like(P)
        for idx in np.ndindex(P.shape):
            Pp, Pm = P.copy(), P.copy()
            Pp[idx] += h
            Pm[idx] -= h
            lp = _block_loss_grad(*((Pp, Cb) if which == 0 else (Wb, Pp)), *args)[0]
            lm = _block_loss_grad(*((Pm, Cb) if which == 0 else (Wb, Pm)), *args)[0]
            fd[idx] = (lp - lm) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-7)


def test_swivel_recovers_planted_pmi_and_beats_svd():
    X, pmi = planted_cooccurrence()
    res, info = swivel(sp.csr_matrix(X), 8, n_epochs=30, lr=0.1, shard_size=64, seed=0,
                       return_info=True)
    assert isinstance(res, Swivel) and res.W.shape == res.C_ctx.shape == (300, 8)
    assert info.n_iter == 30 and info.errors[-1] < info.errors[0]
    seen = X > 0
    corr = np.corrcoef(res.dots()[seen], pmi[seen])[0, 1]
    assert corr > 0.9
    E = svd_embeddings(sp.csr_matrix(X), 8)
    corr_svd = np.corrcoef((E @ E.T)[seen], pmi[seen])[0, 1]
    assert corr > corr_svd
    again = swivel(sp.csr_matrix(X), 8, n_epochs=30, lr=0.1, shard_size=64, seed=0)
    np.testing.assert_array_equal(again.W, res.W)
    np.testing.assert_allclose(res.embeddings, res.W + res.C_ctx)


def test_swivel_notices_what_is_missing():
    X, g = two_topics()
    freq = np.arange(20)
    cross = g[freq][:, None] != g[freq][None, :]
    out = {}
    for unobserved in (True, False):
        res = swivel(sp.csr_matrix(X), 8, n_epochs=30, lr=0.1, shard_size=64, seed=0,
                     unobserved_loss=unobserved)
        D = res.dots()
        out[unobserved] = (D[np.ix_(freq, freq)][cross].mean(), D[X > 0].mean())
    (miss, obs), (miss0, obs0) = out[True], out[False]
    # frequent words never seen together are pushed far below the observed cells ...
    assert miss < obs - 3
    # ... and without the unobserved-cell loss nothing separates them
    assert miss0 > obs0 - 1.5
    assert miss0 - miss > 3


def test_cooccurrence_hand_computed():
    C = cooccurrence([0, 1, 2, 0], window=2)
    expected = np.array([[0, 1.5, 1.5], [1.5, 0, 1.0], [1.5, 1.0, 0]])
    np.testing.assert_allclose(C.toarray(), expected)
    U = cooccurrence([0, 1, 2, 0], 4, window=2, weighting="uniform").toarray()
    np.testing.assert_allclose(U[:3, :3], [[0, 2, 2], [2, 0, 1], [2, 1, 0]])
    assert U.shape == (4, 4) and not U[3].any()
    with pytest.raises(ValueError, match="tokens"):
        cooccurrence([0, 5], 3)
    with pytest.raises(ValueError, match="weighting"):
        cooccurrence([0, 1], weighting="x")


def test_text_vocabulary():
    ids, vocab = text_vocabulary("The cat and the hat; the CAT's hat.", min_count=2)
    assert vocab == ["the", "hat"] and ids == [0, 0, 1, 0, 1]
    ids, vocab = text_vocabulary("b a b c a b", max_vocab=2)
    assert vocab == ["b", "a"] and ids == [0, 1, 0, 1, 0]
    with pytest.raises(ValueError, match="min_count"):
        text_vocabulary("a b", min_count=3)


def test_pmi_matrix_hand_computed():
    X = np.array([[2.0, 2.0], [0.0, 4.0]])  # total 8, rows 4 4, cols 2 6
    P = pmi_matrix(X)
    np.testing.assert_allclose(P, [[np.log(2 * 8 / 8), np.log(2 * 8 / 24)],
                                   [0.0, np.log(4 * 8 / 24)]])
    np.testing.assert_allclose(pmi_matrix(sp.csr_matrix(X), positive=True),
                               np.maximum(P, 0))
    Pa = pmi_matrix(X, alpha=0.5)  # context distribution sqrt(2), sqrt(6) normalised
    pc = np.sqrt([2.0, 6.0]) / np.sqrt([2.0, 6.0]).sum()
    assert Pa[0, 0] == pytest.approx(np.log((2 / 8) / (0.5 * pc[0])))
    with pytest.raises(ValueError, match="C"):
        pmi_matrix(-X)


def test_svd_embeddings_are_scaled_singular_vectors():
    X, _ = planted_cooccurrence(V=60, seed=2)
    E = svd_embeddings(X, 5, power=0.5)
    s = np.linalg.svd(pmi_matrix(X, positive=True), compute_uv=False)[:5]
    np.testing.assert_allclose(np.linalg.norm(E, axis=0), np.sqrt(s), rtol=1e-10)
    G = E.T @ E
    np.testing.assert_allclose(G - np.diag(np.diag(G)), 0, atol=1e-10)


def test_nearest_and_similarity_score():
    vocab = ["a", "b", "c", "d"]
    emb = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    near = nearest(emb, vocab, "a", 3)
    assert [w for w, _ in near] == ["b", "c", "d"]
    assert near[2][1] == pytest.approx(-1.0)
    pairs = [("a", "b", 9.0), ("a", "c", 5.0), ("a", "d", 1.0), ("a", "zzz", 3.0)]
    rho, used = similarity_score(emb, vocab, pairs)
    assert rho == pytest.approx(1.0) and used == 3
    with pytest.raises(ValueError, match="vocabulary"):
        nearest(emb, vocab, "zzz")


def test_swivel_validation():
    with pytest.raises(ValueError, match="all-zero row"):
        swivel(np.array([[1.0, 0.0], [0.0, 0.0]]), 2)
    with pytest.raises(ValueError, match="C"):
        swivel(np.array([[1.0, -1.0], [1.0, 1.0]]), 2)
    with pytest.raises(ValueError, match="confidence"):
        swivel(np.ones((3, 3)), 2, confidence=(0.1, 0.2))
    with pytest.raises(ValueError, match="embeddings"):
        _ = Swivel(np.ones((3, 2)), np.ones((4, 2))).embeddings

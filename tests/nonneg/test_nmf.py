"""Tests of refimpl.nonneg.nmf: NMF (MU and HALS, weighted), semi-NMF and NNDSVD."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from refimpl.nonneg import NMF, nmf, nndsvd, semi_nmf


def planted(seed, m=30, n=20, k=4):
    """An exact rank-k nonnegative X = W H with sparse factors holding an identity block
    (separable, so the factorization is essentially unique and HALS converges fast)."""
    rng = np.random.default_rng(seed)
    W = rng.random((m, k))
    W[rng.random(W.shape) < 0.4] = 0
    W[:k] = np.eye(k)
    H = rng.random((k, n))
    H[rng.random(H.shape) < 0.4] = 0
    H[:, :k] = np.eye(k)
    return W @ H


def positive(seed, m=12, n=10):
    return np.random.default_rng(seed).random((m, n)) + 0.01


shapes = st.tuples(st.integers(3, 9), st.integers(3, 9), st.integers(1, 3),
                   st.integers(0, 2**31 - 1))


def nonincreasing(errors, x2, rel=1e-10):
    e = np.asarray(errors)
    return np.all(np.diff(e) <= rel * x2), float(np.max(np.diff(e), initial=-np.inf))


# --------------------------------------------------------------------------- monotonicity


@given(shapes, st.sampled_from([("hals", "frobenius", "numpy"), ("hals", "frobenius", "numba"),
                                ("mu", "frobenius", "numpy"), ("mu", "kl", "numpy")]),
       st.booleans())
def test_objective_never_increases(shape, variant, weighted):
    m, n, k, seed = shape
    method, loss, backend = variant
    rng = np.random.default_rng(seed)
    X = rng.random((m, n))
    M = (rng.random((m, n)) > 0.3).astype(float) if weighted else None
    if M is not None:
        M[:, 0] = 1.0
        M[0, :] = 1.0  # every row and column observed
    _, info = nmf(X, k, method=method, loss=loss, weights=M, init="random", seed=seed,
                  max_iter=30, tol=0, backend=backend, return_info=True)
    ok, worst = nonincreasing(info.errors, float((X * X).sum()))
    assert ok, f"loss rose by {worst:.2e}"
    assert info.n_iter == len(info.errors)


@given(shapes, st.sampled_from(["numpy", "numba", "torch"]), st.integers(2, 6))
def test_accelerated_hals_never_increases(shape, backend, inner):
    m, n, k, seed = shape
    X = np.random.default_rng(seed).random((m, n))
    if backend == "torch":
        X = torch.from_numpy(X)
    _, info = nmf(X, k, init="random", seed=seed, max_iter=20, tol=0, inner=inner,
                  backend=backend, return_info=True)
    ok, worst = nonincreasing(info.errors, float((X * X).sum()))
    assert ok, f"loss rose by {worst:.2e}"


def test_accelerated_hals_gains_per_outer_iteration():
    # several passes per pair of Gram products: lower loss after the same outer iterations
    X = positive(3, 120, 80) @ positive(4, 80, 60)
    losses = {inner: nmf(X, 8, max_iter=10, tol=0, inner=inner).loss(X) for inner in (1, 4)}
    assert losses[4] < 0.999 * losses[1], losses


def test_accelerated_hals_numba_matches_numpy():
    X = positive(7, 40, 30)
    a = nmf(X, 5, max_iter=30, tol=0, inner=3, backend="numpy")
    b = nmf(X, 5, max_iter=30, tol=0, inner=3, backend="numba")
    np.testing.assert_allclose(b.W, a.W, rtol=0, atol=1e-10 * np.abs(a.W).max())
    np.testing.assert_allclose(b.H, a.H, rtol=0, atol=1e-10 * np.abs(a.H).max())


@given(shapes)
def test_semi_nmf_objective_never_increases(shape):
    m, n, k, seed = shape
    X = np.random.default_rng(seed).standard_normal((m, n))
    res, info = semi_nmf(X, k, max_iter=30, tol=0, return_info=True)
    ok, worst = nonincreasing(info.errors, float((X * X).sum()))
    assert ok, f"loss rose by {worst:.2e}"
    assert res.G.min() >= 0


# --------------------------------------------------------------------------- optimality


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_kkt_conditions_at_convergence(backend):
    X = positive(0)
    res = nmf(X, 3, max_iter=3000, tol=1e-13, backend=backend)
    W, H = np.asarray(res.W), np.asarray(res.H)
    gW = (W @ H - X) @ H.T
    gH = W.T @ (W @ H - X)
    scale = np.linalg.norm(X) * max(np.linalg.norm(W), np.linalg.norm(H))
    delta = 1e-5 * scale
    assert W.min() >= 0 and H.min() >= 0
    assert gW.min() >= -delta and gH.min() >= -delta, (gW.min(), gH.min(), delta)
    assert np.abs(W * gW).max() <= delta * W.max()
    assert np.abs(H * gH).max() <= delta * H.max()


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
@pytest.mark.parametrize("init", ["nndsvda", "nndsvd", "random"])
def test_exact_recovery_of_a_planted_factorization(backend, init):
    X = planted(1)
    res = nmf(X, 4, init=init, seed=0, max_iter=1000, tol=0, backend=backend)
    err = np.linalg.norm(X - np.asarray(res.reconstruct())) / np.linalg.norm(X)
    assert err < 1e-12
    assert res.loss(X) < 1e-20 * float((X * X).sum())


def test_mu_decreases_far_on_the_planted_matrix():
    # MU converges sublinearly: two orders of magnitude in the relative error, not exact.
    X = planted(2)
    for loss in ("frobenius", "kl"):
        res = nmf(X, 4, method="mu", loss=loss, max_iter=2000, tol=0)
        err = np.linalg.norm(X - res.reconstruct()) / np.linalg.norm(X)
        assert err < 1e-2, (loss, err)


def test_semi_nmf_least_squares_F_and_fit():
    rng = np.random.default_rng(3)
    F0 = rng.standard_normal((15, 3))
    G0 = rng.random((12, 3))
    X = F0 @ G0.T
    res = semi_nmf(X, 3, max_iter=3000, tol=0)
    R = X - res.reconstruct()
    # F is the least-squares solution for the final G: the gradient (X − FGᵀ)G vanishes.
    assert np.abs(R @ res.G).max() < 1e-10 * np.linalg.norm(X) * np.linalg.norm(res.G)
    assert np.linalg.norm(R) / np.linalg.norm(X) < 1e-3
    assert res.G.min() >= 0


# --------------------------------------------------------------------------- NNDSVD


def test_nndsvd_structure():
    X = positive(4, 15, 11)
    k = 4
    W, H = nndsvd(X, k)
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    assert W.min() >= 0 and H.min() >= 0
    assert (W[:, 0] > 0).all() and (H[0] > 0).all()  # Perron vectors of a positive X
    for j in range(1, k):
        # u_j ⟂ u_1 > 0, so u_j has both signs and the chosen part leaves zeros
        assert (W[:, j] == 0).any() and (H[j] == 0).any()
        sup_w, sup_h = W[:, j] > 0, H[j] > 0
        same = (sup_w <= (U[:, j] > 0)).all() and (sup_h <= (Vt[j] > 0)).all()
        flip = (sup_w <= (U[:, j] < 0)).all() and (sup_h <= (Vt[j] < 0)).all()
        assert same or flip, f"component {j} mixes the signs of u_j / v_j"
    np.testing.assert_allclose(W[:, 0], np.sqrt(s[0]) * np.abs(U[:, 0]), rtol=1e-12)


def test_nndsvd_variants_fill_zeros():
    X = positive(5, 15, 11)
    W, H = nndsvd(X, 4)
    Wa, Ha = nndsvd(X, 4, variant="nndsvda")
    np.testing.assert_array_equal(Wa, np.where(W == 0, X.mean(), W))
    np.testing.assert_array_equal(Ha, np.where(H == 0, X.mean(), H))
    Wr, Hr = nndsvd(X, 4, variant="nndsvdar", seed=0)
    assert (Wr > 0).all() and (Hr > 0).all()
    np.testing.assert_array_equal(Wr[W > 0], W[W > 0])
    assert Wr[W == 0].max() < X.mean()  # |mean · z| / 100 with |z| < 100
    Wr2, _ = nndsvd(X, 4, variant="nndsvdar", seed=0)
    np.testing.assert_array_equal(Wr, Wr2)


def test_nndsvd_randomized_close_to_exact():
    X = planted(6)
    W, H = nndsvd(X, 4)
    Wr, Hr = nndsvd(X, 4, svd="randomized", seed=0)
    # X has rank 4 exactly, so the randomized SVD is exact up to rounding
    np.testing.assert_allclose(Wr @ Hr, W @ H, atol=1e-8 * np.abs(X).max())


# --------------------------------------------------------------------------- paths agree


def test_numba_hals_matches_numpy():
    X = positive(7, 40, 30)
    a = nmf(X, 5, max_iter=50, tol=0, backend="numpy")
    b = nmf(X, 5, max_iter=50, tol=0, backend="numba")
    np.testing.assert_allclose(b.W, a.W, rtol=0, atol=1e-10 * np.abs(a.W).max())
    np.testing.assert_allclose(b.H, a.H, rtol=0, atol=1e-10 * np.abs(a.H).max())


def test_numba_weighted_hals_matches_numpy():
    X = positive(13, 40, 30)
    M = np.random.default_rng(13).random(X.shape) * (np.random.default_rng(14).random(X.shape)
                                                     > 0.3)  # weights, some entries missing
    M[:, 0] = M[0, :] = 1.0
    a, ia = nmf(X, 5, weights=M, max_iter=40, tol=0, backend="numpy", return_info=True)
    b, ib = nmf(X, 5, weights=M, max_iter=40, tol=0, backend="numba", return_info=True)
    np.testing.assert_allclose(b.W, a.W, rtol=0, atol=1e-10 * np.abs(a.W).max())
    np.testing.assert_allclose(b.H, a.H, rtol=0, atol=1e-10 * np.abs(a.H).max())
    np.testing.assert_allclose(ib.errors, ia.errors, rtol=1e-10)


@pytest.mark.parametrize("method,loss,weighted", [
    ("hals", "frobenius", False), ("hals", "frobenius", True), ("mu", "frobenius", False),
    ("mu", "frobenius", True), ("mu", "kl", False), ("mu", "kl", True)])
def test_torch_float64_matches_numpy(method, loss, weighted):
    X = positive(8, 20, 15)
    M = (np.random.default_rng(0).random(X.shape) > 0.2).astype(float) if weighted else None
    a = nmf(X, 4, method=method, loss=loss, weights=M, max_iter=30, tol=0, backend="numpy")
    Xt = torch.as_tensor(X)
    Mt = None if M is None else torch.as_tensor(M)
    b = nmf(Xt, 4, method=method, loss=loss, weights=Mt, max_iter=30, tol=0)
    assert isinstance(b.W, torch.Tensor) and b.W.dtype == torch.float64
    np.testing.assert_allclose(b.W.numpy(), a.W, rtol=0, atol=1e-10 * np.abs(a.W).max())
    np.testing.assert_allclose(b.H.numpy(), a.H, rtol=0, atol=1e-10 * np.abs(a.H).max())


def test_semi_nmf_torch_matches_numpy():
    X = np.random.default_rng(9).standard_normal((14, 10))
    a = semi_nmf(X, 3, max_iter=30, tol=0)
    b = semi_nmf(torch.as_tensor(X), 3, max_iter=30, tol=0)
    np.testing.assert_allclose(b.reconstruct().numpy(), a.reconstruct(), atol=1e-10)
    np.testing.assert_allclose(b.G.numpy(), a.G, atol=1e-10)


@pytest.mark.parametrize("method,loss", [("hals", "frobenius"), ("mu", "frobenius"),
                                         ("mu", "kl")])
def test_all_ones_weights_equal_unweighted(method, loss):
    X = positive(10, 20, 15)
    a = nmf(X, 4, method=method, loss=loss, max_iter=40, tol=0, backend="numpy")
    b = nmf(X, 4, method=method, loss=loss, weights=np.ones_like(X), max_iter=40, tol=0)
    np.testing.assert_allclose(b.W, a.W, rtol=0, atol=1e-10 * np.abs(a.W).max())
    np.testing.assert_allclose(b.H, a.H, rtol=0, atol=1e-10 * np.abs(a.H).max())


@pytest.mark.parametrize("method,loss", [("hals", "frobenius"), ("mu", "frobenius"),
                                         ("mu", "kl")])
@pytest.mark.parametrize("init", ["nndsvda", "random"])
def test_masked_entries_do_not_influence_the_fit(method, loss, init):
    rng = np.random.default_rng(11)
    X = positive(11, 20, 15)
    M = (rng.random(X.shape) > 0.3).astype(float)
    X2 = np.where(M == 0, 100 * rng.random(X.shape), X)
    a = nmf(X, 4, method=method, loss=loss, init=init, seed=0, weights=M, max_iter=40)
    b = nmf(X2, 4, method=method, loss=loss, init=init, seed=0, weights=M, max_iter=40)
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.H, b.H)


def test_masked_hals_recovers_missing_entries():
    X = planted(12)
    M = (np.random.default_rng(12).random(X.shape) > 0.2).astype(float)
    M[:, :4] = 1.0
    M[:4] = 1.0
    res = nmf(X, 4, weights=M, max_iter=3000, tol=0)
    err = np.abs(res.reconstruct() - X)[M == 0].max() / X.max()
    assert err < 1e-6


# --------------------------------------------------------------------------- peer parity


def _sk(X, W0, H0, **kw):
    from sklearn.decomposition import non_negative_factorization

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        W, H, _ = non_negative_factorization(X, W=W0.copy(), H=H0.copy(),
                                             n_components=W0.shape[1], init="custom", tol=0,
                                             alpha_W=0.0, alpha_H=0.0, **kw)
    return W, H


@pytest.mark.parametrize("loss,beta", [("frobenius", "frobenius"), ("kl", "kullback-leibler")])
def test_one_mu_step_matches_sklearn(loss, beta):
    pytest.importorskip("sklearn")
    X = positive(13, 25, 18)
    W0, H0 = nndsvd(X, 5, variant="nndsvda")
    Ws, Hs = _sk(X, W0, H0, solver="mu", beta_loss=beta, max_iter=1)
    ours = nmf(X, 5, method="mu", loss=loss, init="custom", W0=W0, H0=H0, max_iter=1, tol=0)
    np.testing.assert_allclose(ours.W, Ws, rtol=1e-12)
    np.testing.assert_allclose(ours.H, Hs, rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_hals_loss_matches_sklearn_cd(backend):
    pytest.importorskip("sklearn")
    X = positive(14, 40, 30)
    W0, H0 = nndsvd(X, 6, variant="nndsvda")
    Ws, Hs = _sk(X, W0, H0, solver="cd", max_iter=50, shuffle=False)
    ours = nmf(X, 6, init="custom", W0=W0, H0=H0, max_iter=50, tol=0, backend=backend)
    peer = NMF(Ws, Hs).loss(X)
    # the same coordinate updates in the same order (W then H, columns in order)
    assert ours.loss(X) <= peer * (1 + 1e-8), (ours.loss(X), peer)
    np.testing.assert_allclose(ours.W @ ours.H, Ws @ Hs, atol=1e-8)


# --------------------------------------------------------------------------- bad inputs


def test_negative_entry_names_the_minimum():
    X = positive(15)
    X[2, 3] = -0.5
    with pytest.raises(ValueError, match=r"X must be nonnegative.*-0\.5"):
        nmf(X, 2)
    with pytest.raises(ValueError, match=r"X must be nonnegative"):
        nndsvd(X, 2)


def test_nan_is_refused_even_with_weights():
    X = positive(15)
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN"):
        nmf(X, 2, weights=np.ones_like(X))


def test_empty_refused():
    with pytest.raises(ValueError, match=r"X must not be empty"):
        nmf(np.zeros((0, 3)), 1)


def test_rank_too_large():
    with pytest.raises(ValueError, match=r"rank=11 exceeds"):
        nmf(positive(0), 11)


@pytest.mark.parametrize("kw,pattern", [
    ({"method": "als"}, "method must be one of"),
    ({"loss": "itakura"}, "loss must be one of"),
    ({"init": "svd"}, "init must be one of"),
    ({"loss": "kl"}, "method='hals' minimises loss='frobenius' only"),
    ({"init": "custom"}, "init='custom' needs both W0 and H0"),
    ({"W0": np.ones((12, 2)), "H0": np.ones((2, 10))}, "used only with init='custom'"),
    ({"init": "custom", "W0": np.ones((12, 3)), "H0": np.ones((2, 10))},
     r"W0 must have shape \(12, 2\)"),
    ({"init": "custom", "W0": -np.ones((12, 2)), "H0": np.ones((2, 10))},
     "W0 must be nonnegative"),
    ({"weights": np.ones((12, 9))}, r"weights must have the shape of X"),
    ({"weights": -np.ones((12, 10))}, "weights must be nonnegative"),
    ({"max_iter": -1}, "max_iter must be at least 0"),
    ({"tol": -1.0}, "tol must be a finite number"),
    ({"inner": 0}, "inner must be"),
    ({"inner": 2, "method": "mu"}, r"inner > 1 \(accelerated HALS\) applies to unweighted"),
    ({"inner": 2, "weights": np.ones((12, 10))}, "and weights"),
])
def test_bad_options(kw, pattern):
    with pytest.raises(ValueError, match=pattern):
        nmf(positive(0), 2, **kw)


def test_all_missing_row_refused():
    M = np.ones((12, 10))
    M[4] = 0
    with pytest.raises(ValueError, match=r"weights: row 4 of X has no observed entry"):
        nmf(positive(0), 2, weights=M)


def test_mixed_kinds_refused():
    with pytest.raises(TypeError, match=r"weights"):
        nmf(torch.as_tensor(positive(0)), 2, weights=np.ones((12, 10)))


def test_nndsvd_bad_variant_and_svd():
    with pytest.raises(ValueError, match="variant must be one of"):
        nndsvd(positive(0), 2, variant="nnd")
    with pytest.raises(ValueError, match="svd must be one of"):
        nndsvd(positive(0), 2, svd="lanczos")


# --------------------------------------------------------------------------- info, dtypes


def test_info_and_stop_rule():
    X = positive(16)
    res, info = nmf(X, 3, tol=1e-3, return_info=True)
    assert info.converged and info.n_iter < 200
    e = info.errors
    assert e[-2] - e[-1] <= 1e-3 * e[-2]
    assert all(a - b > 1e-3 * a for a, b in itertools.pairwise(e[:-1]))
    assert info.errors[-1] == pytest.approx(res.loss(X), rel=1e-9)
    _, info0 = nmf(X, 3, max_iter=7, tol=0, return_info=True)
    assert info0.n_iter == 7 and not info0.converged


def test_float32_in_float32_out():
    X = positive(17).astype(np.float32)
    res = nmf(X, 3, max_iter=20)
    assert res.W.dtype == np.float32 and res.H.dtype == np.float32
    rt = nmf(torch.as_tensor(X), 3, max_iter=20)
    assert rt.W.dtype == torch.float32
    np.testing.assert_allclose(rt.W.numpy(), res.W, atol=1e-3)

"""Tests for refimpl.nonneg.unmixing: structured sparse NMF, synthetic scenes, SAD and RMSE."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from refimpl.nonneg.unmixing import (
    Unmixing,
    abundance_rmse,
    match_endmembers,
    normalize_abundances,
    pixel_graph,
    sad,
    structured_sparse_nmf,
    synthetic_unmixing,
)


def random_init(bands, r, n, seed, X):
    rng = np.random.default_rng(seed)
    s = np.sqrt(X.mean() / r)
    return s * rng.uniform(size=(bands, r)), s * rng.uniform(size=(r, n))


def sklearn_mu(X, r, E0, A0, max_iter):
    NMF = pytest.importorskip("sklearn.decomposition").NMF
    model = NMF(r, init="custom", solver="mu", beta_loss="frobenius", max_iter=max_iter,
                tol=0.0, alpha_W=0.0, alpha_H=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: tol=0 runs every iteration
        E = model.fit_transform(X, W=E0.copy(), H=A0.copy())
    return E, model.components_


@pytest.mark.parametrize("l1, lg, delta", [(0, 0, 0), (0.5, 0, 0), (0, 1.0, 0), (1.0, 0.2, 0),
                                           (0.1, 0.5, 2.0), (0, 0, 5.0)])
def test_objective_never_increases(l1, lg, delta):
    s = synthetic_unmixing(20, 3, 8, 9, snr_db=20, seed=1)
    res, info = structured_sparse_nmf(s.X, 3, image_shape=(8, 9), lambda_l1=l1,
                                      lambda_graph=lg, delta=delta, max_iter=300, tol=1e-15,
                                      seed=2, return_info=True)
    e = np.array(info.errors)
    assert info.n_iter > 10
    assert np.all(np.diff(e) <= 1e-12 * e[:-1])
    assert e[-1] < e[0]
    assert np.all(res.E >= 0) and np.all(res.A >= 0)


def test_lambda_zero_is_plain_nmf_mu_updates():
    s = synthetic_unmixing(15, 3, 6, 7, snr_db=25, seed=0)
    E0, A0 = random_init(15, 3, 42, 4, s.X)
    # one update by hand: Lee–Seung Frobenius, E then A
    E1 = E0 * (s.X @ A0.T) / (E0 @ A0 @ A0.T)
    A1 = A0 * (E1.T @ s.X) / (E1.T @ E1 @ A0)
    one = structured_sparse_nmf(s.X, 3, lambda_l1=0, lambda_graph=0, init=(E0, A0),
                                max_iter=1, tol=1e-15)
    np.testing.assert_allclose(one.E, E1, rtol=1e-13)
    np.testing.assert_allclose(one.A, A1, rtol=1e-13)
    # and 60 iterations agree with scikit-learn's multiplicative-update NMF
    ours = structured_sparse_nmf(s.X, 3, lambda_l1=0, lambda_graph=0, init=(E0, A0),
                                 max_iter=60, tol=1e-15)
    E_sk, A_sk = sklearn_mu(s.X, 3, E0, A0, 60)
    np.testing.assert_allclose(ours.E, E_sk, rtol=1e-9)
    np.testing.assert_allclose(ours.A, A_sk, rtol=1e-9)


def test_structured_beats_plain_nmf_on_synthetic_scene():
    # fixed scene: 50 bands, 4 endmembers, 30×30 pixels, 15 dB, fairly pure pixels
    s = synthetic_unmixing(50, 4, 30, 30, snr_db=15, purity=6.0, seed=0)
    E0, A0 = random_init(50, 4, 900, 1, s.X)
    ss = structured_sparse_nmf(s.X, 4, image_shape=(30, 30), lambda_l1=1.0,
                               lambda_graph=0.2, init=(E0, A0), max_iter=1000, tol=1e-15)
    E_sk, A_sk = sklearn_mu(s.X, 4, E0, A0, 1000)
    scores = {}
    for name, (E, A) in {"ss": ss, "nmf": (E_sk, A_sk)}.items():
        n = normalize_abundances(E, A)
        scores[name] = (sad(s.E, n.E), abundance_rmse(s.A, n.A, match_endmembers(s.E, n.E)))
    # measured: SAD 0.194 vs 0.266 rad, RMSE 0.197 vs 0.217
    assert scores["ss"][0] < 0.85 * scores["nmf"][0]
    assert scores["ss"][1] < 0.95 * scores["nmf"][1]


def test_sad_hand_cases():
    E = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    assert sad(E, E) == pytest.approx(0.0, abs=1e-7)
    assert sad(E, 3.0 * E[:, ::-1]) == pytest.approx(0.0, abs=1e-7)  # order and scale
    one = np.array([[1.0], [0.0]])
    assert sad(one, np.array([[0.0], [2.0]])) == pytest.approx(np.pi / 2, rel=1e-14)
    e45 = np.array([[1.0], [1.0]])
    assert sad(one, e45) == pytest.approx(np.pi / 4, rel=1e-12)
    rng = np.random.default_rng(0)
    Et, Ee = rng.uniform(0.1, 1, (10, 4)), rng.uniform(0.1, 1, (10, 4))
    perm = rng.permutation(4)
    assert sad(Et, Ee[:, perm]) == pytest.approx(sad(Et, Ee), rel=1e-14)
    p = match_endmembers(Et, Et[:, perm])
    np.testing.assert_array_equal(perm[p], np.arange(4))


def test_abundance_rmse_hand_cases():
    At = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]])
    assert abundance_rmse(At, At[::-1]) == 0.0  # matched by the assignment
    Ae = At + np.array([[0.1], [-0.1]])
    assert abundance_rmse(At, Ae) == pytest.approx(0.1, rel=1e-12)
    assert abundance_rmse(At, At[::-1], perm=np.array([1, 0])) == 0.0
    assert abundance_rmse(At, At[::-1], perm=np.array([0, 1])) == pytest.approx(
        np.sqrt(np.mean((At - At[::-1]) ** 2)), rel=1e-14)
    with pytest.raises(ValueError, match="permutation"):
        abundance_rmse(At, At, perm=np.array([0, 0]))


def test_normalize_abundances_keeps_product_and_fixes_scale():
    s = synthetic_unmixing(12, 3, 5, 5, snr_db=np.inf, seed=3)
    c = np.array([2.0, 0.5, 4.0])
    n = normalize_abundances(s.E * c, s.A / c[:, None])
    np.testing.assert_allclose(n.reconstruct(), s.E @ s.A, rtol=1e-12)
    np.testing.assert_allclose(n.A, s.A, rtol=1e-9, atol=1e-12)


def test_synthetic_scene():
    s = synthetic_unmixing(30, 4, 10, 12, snr_db=np.inf, seed=5)
    assert s.X.shape == (30, 120) and s.E.shape == (30, 4) and s.A.shape == (4, 120)
    assert (s.height, s.width) == (10, 12)
    assert np.all(s.E > 0) and np.all(s.A >= 0)
    np.testing.assert_allclose(s.A.sum(0), 1.0, rtol=1e-13)
    np.testing.assert_allclose(s.X, s.E @ s.A, rtol=1e-13)
    # smooth spectra: second differences small against the values
    assert np.abs(np.diff(s.E, 2, axis=0)).max() < 0.1 * s.E.max()
    # spatially smooth abundances: neighbours closer than random pixel pairs
    img = s.A.reshape(4, 10, 12)
    near = np.mean(np.abs(np.diff(img, axis=2)))
    far = np.mean(np.abs(s.A[:, :, None] - s.A[:, None, :]))
    assert near < 0.5 * far
    noisy = synthetic_unmixing(30, 4, 10, 12, snr_db=20, seed=5)
    snr = 10 * np.log10(np.sum(s.X ** 2) / np.sum((noisy.X - s.X) ** 2))
    assert 19 < snr < 21.5  # clipping at 0 only removes noise


def test_pixel_graph():
    X = np.random.default_rng(0).uniform(size=(5, 12))
    G = pixel_graph(X, 3, 4)
    D = G.toarray()
    np.testing.assert_array_equal(D, D.T)
    assert np.all(np.diag(D) == 0) and np.all(D >= 0) and np.all(D <= 1)
    counts = (D > 0).sum(1).reshape(3, 4)
    assert counts[1, 1] == 8 and counts[0, 0] == 3 and counts[0, 1] == 5
    assert (pixel_graph(X, 3, 4, radius=2).toarray() > 0).sum(1).reshape(3, 4)[1, 1] == 11
    i, j = 0, 5  # diagonal neighbours (0, 0) and (1, 1)
    sigma = 0.7
    G2 = pixel_graph(X, 3, 4, sigma=sigma).toarray()
    assert G2[i, j] == pytest.approx(np.exp(-np.sum((X[:, i] - X[:, j]) ** 2) / sigma))


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"X": -np.ones((4, 6))}, ValueError, "nonnegative"),
    ({"X": np.full((4, 6), np.inf)}, ValueError, "NaN or Inf"),
    ({"rank": 5}, ValueError, "rank"),
    ({"image_shape": (2, 2)}, ValueError, "height"),
    ({"image_shape": None}, ValueError, "image_shape"),
    ({"lambda_l1": -0.1}, ValueError, "lambda_l1"),
    ({"weights": np.ones((5, 5))}, ValueError, "weights"),
    ({"init": (np.ones((4, 2)), np.ones((3, 6)))}, ValueError, "init"),
])
def test_bad_inputs(kwargs, exc, match):
    args: dict[str, Any] = {"X": np.ones((4, 6)), "rank": 2, "image_shape": (2, 3)}
    args.update(kwargs)
    X, rank = args.pop("X"), args.pop("rank")
    with pytest.raises(exc, match=match):
        structured_sparse_nmf(X, rank, **args)


def test_metric_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        sad(np.ones((3, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="nonzero"):
        sad(np.ones((3, 1)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="n_endmembers"):
        synthetic_unmixing(4, 5, 3, 3, seed=0)


def test_result_type():
    s = synthetic_unmixing(10, 2, 4, 4, seed=0)
    res = structured_sparse_nmf(s.X, 2, image_shape=(4, 4), max_iter=5, seed=0)
    assert isinstance(res, Unmixing)
    np.testing.assert_allclose(res.reconstruct(), res.E @ res.A)


def test_tol_zero_runs_every_iteration():
    # nmf's stopping rule: with tol = 0 all max_iter iterations run
    s = synthetic_unmixing(20, 3, 8, 9, snr_db=20, seed=1)
    _, info = structured_sparse_nmf(s.X, 3, image_shape=(8, 9), max_iter=25, tol=0.0,
                                    seed=2, return_info=True)
    assert info.n_iter == 25 and len(info.errors) == 26


@pytest.mark.parametrize("l1, lg, delta", [(0.0, 0.0, 0.0), (0.5, 0.3, 1.0)])
def test_torch_path_matches_numpy(l1, lg, delta):
    torch = pytest.importorskip("torch")
    s = synthetic_unmixing(20, 3, 8, 9, snr_db=25, seed=4)
    kw = dict(image_shape=(8, 9), lambda_l1=l1, lambda_graph=lg, delta=delta, max_iter=60,
              tol=0.0, seed=5, return_info=True)
    a, ia = structured_sparse_nmf(s.X, 3, **kw)
    b, ib = structured_sparse_nmf(torch.as_tensor(s.X), 3, **kw)
    assert isinstance(b.E, torch.Tensor) and b.E.dtype == torch.float64
    np.testing.assert_allclose(b.E.numpy(), a.E, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.A.numpy(), a.A, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ib.errors, ia.errors, rtol=1e-10)
    # float32 stays float32 and follows the float64 fit to single-precision accuracy
    c = structured_sparse_nmf(torch.as_tensor(s.X, dtype=torch.float32), 3, **kw)[0]
    assert c.E.dtype == torch.float32
    rel = np.linalg.norm(c.E.numpy() @ c.A.numpy() - a.E @ a.A) / np.linalg.norm(a.E @ a.A)
    assert rel < 1e-4
    # backend="torch" on NumPy input gives NumPy back, computed on the torch path
    d = structured_sparse_nmf(s.X, 3, backend="torch", **kw)[0]
    assert isinstance(d.E, np.ndarray)
    np.testing.assert_allclose(d.E, a.E, rtol=1e-10, atol=1e-12)

"""Randomized range finder and randomized SVD: error bounds, reproducibility, paths, peers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from refimpl.linalg import TruncatedSVD
from refimpl.sketch import randomized_range_finder, randomized_svd


def _decaying(m, n, decay, rng):
    U = np.linalg.qr(rng.standard_normal((m, min(m, n))))[0]
    V = np.linalg.qr(rng.standard_normal((n, min(m, n))))[0]
    s = decay ** np.arange(min(m, n))
    return (U * s) @ V.T, s


def test_range_finder_meets_hmt_expected_frobenius_bound(rng):
    # HMT (2011), Thm 10.5 with q = 0, p >= 2:
    #   E ||A - Q Q^T A||_F <= (1 + k/(p-1))^{1/2} (sum_{j>k} sigma_j^2)^{1/2}.
    # The mean over 20 seeds must sit below the bound (the bound is on the expectation).
    A, s = _decaying(120, 80, 0.85, rng)
    k, p = 10, 4
    tail = np.sqrt(np.sum(s[k:] ** 2))
    bound = np.sqrt(1 + k / (p - 1)) * tail
    errs = []
    for seed in range(20):
        Q = randomized_range_finder(A, k + p, n_iter=0, seed=seed)
        errs.append(np.linalg.norm(A - Q @ (Q.T @ A)))
    assert np.mean(errs) <= bound
    # and no basis of k + p columns beats the optimal rank-(k+p) error (Eckart–Young)
    assert min(errs) >= np.sqrt(np.sum(s[k + p:] ** 2)) * (1 - 1e-12)


def test_range_finder_meets_hmt_spectral_bound(rng):
    # HMT (2011), Thm 10.6 (expected spectral error, q = 0):
    #   E||A - QQ^T A|| <= (1 + sqrt(k/(p-1))) sigma_{k+1} + e sqrt(k+p)/p (sum_{j>k} s_j^2)^{1/2}.
    A, s = _decaying(150, 100, 0.9, rng)
    k, p = 8, 5
    bound = (1 + np.sqrt(k / (p - 1))) * s[k] + np.e * np.sqrt(k + p) / p * np.sqrt(
        np.sum(s[k:] ** 2))
    errs = [np.linalg.norm(A - (Q := randomized_range_finder(A, k + p, n_iter=0, seed=sd))
                           @ (Q.T @ A), 2) for sd in range(20)]
    assert np.mean(errs) <= bound


def test_power_iterations_reduce_error_on_average(rng):
    # With a slowly decaying spectrum, q = 2 must beat q = 0 on average over seeds.
    A, s = _decaying(200, 150, 0.97, rng)
    def mean_err(q):
        return np.mean([np.linalg.norm(A - randomized_svd(A, 10, n_iter=q, seed=sd)
                                       .reconstruct()) for sd in range(8)])
    opt = np.sqrt(np.sum(s[10:] ** 2))
    e0, e2 = mean_err(0), mean_err(2)
    assert e2 < e0
    assert e2 <= 1.02 * opt


@pytest.mark.parametrize("normalizer", ["qr", "lu", "none"])
def test_exact_on_low_rank(rng, normalizer):
    A = rng.standard_normal((60, 7)) @ rng.standard_normal((7, 50))
    r = randomized_svd(A, 7, n_iter=2, normalizer=normalizer, seed=0)
    np.testing.assert_allclose(r.reconstruct(), A, atol=1e-10 * np.linalg.norm(A))
    np.testing.assert_allclose(r.s, np.linalg.svd(A, compute_uv=False)[:7], rtol=1e-10)


@given(m=st.integers(3, 40), n=st.integers(3, 40), q=st.integers(0, 3),
       seed=st.integers(0, 2**31 - 1))
def test_range_finder_returns_orthonormal_basis(m, n, q, seed):
    A = np.random.default_rng(seed).standard_normal((m, n))
    l = min(m, n)
    Q = randomized_range_finder(A, l, n_iter=q, seed=seed)
    assert Q.shape == (m, l)
    np.testing.assert_allclose(Q.T @ Q, np.eye(l), atol=1e-10)


def test_reproducible_given_seed(rng):
    A = rng.standard_normal((50, 40))
    r1, r2 = randomized_svd(A, 5, seed=3), randomized_svd(A, 5, seed=3)
    for a, b in zip(r1, r2, strict=True):
        np.testing.assert_array_equal(a, b)
    r3 = randomized_svd(A, 5, seed=4, n_iter=0)
    assert not np.allclose(randomized_svd(A, 5, seed=3, n_iter=0).U, r3.U)
    g = np.random.default_rng(9)
    assert randomized_svd(A, 5, seed=g).U.shape == (50, 5)


@pytest.mark.parametrize("shape", [(80, 50), (50, 80)])
def test_numpy_torch_parity(rng, shape):
    A = rng.standard_normal(shape) @ np.diag(0.9 ** np.arange(shape[1]))
    r_np = randomized_svd(A, 6, seed=11)
    r_t = randomized_svd(torch.tensor(A), 6, seed=11)
    assert isinstance(r_t.U, torch.Tensor)
    np.testing.assert_allclose(r_t.s.numpy(), r_np.s, rtol=1e-10)
    np.testing.assert_allclose(r_t.reconstruct().numpy(), r_np.reconstruct(), atol=1e-10)
    # torch asked for on NumPy input gives NumPy back
    r_b = randomized_svd(A, 6, seed=11, backend="torch")
    assert isinstance(r_b.s, np.ndarray)
    np.testing.assert_allclose(r_b.s, r_np.s, rtol=1e-10)


def test_torch_batched_float32(rng):
    A = torch.tensor(rng.standard_normal((3, 40, 6)) @ rng.standard_normal((3, 6, 30)),
                     dtype=torch.float32)
    r = randomized_svd(A, 6, seed=0)
    assert r.U.shape == (3, 40, 6) and r.s.shape == (3, 6) and r.U.dtype == torch.float32
    rel = torch.linalg.matrix_norm(A - r.reconstruct()) / torch.linalg.matrix_norm(A)
    assert float(rel.max()) < 1e-5
    for b in range(3):
        np.testing.assert_allclose(r.s[b].numpy(), randomized_svd(A[b], 6, seed=0).s.numpy(),
                                   rtol=1e-5)


@pytest.mark.gpu
def test_cuda_path(rng):
    A = torch.tensor(rng.standard_normal((64, 48)), device="cuda")
    r = randomized_svd(A, 5, seed=0)
    assert r.U.device.type == "cuda"
    np.testing.assert_allclose(r.s.cpu().numpy(), randomized_svd(A.cpu(), 5, seed=0).s.numpy(),
                               rtol=1e-8)


@pytest.mark.parametrize("normalizer,sk_norm", [("qr", "QR"), ("lu", "LU"), ("none", "none")])
def test_agrees_with_sklearn_given_the_same_test_matrix(rng, normalizer, sk_norm):
    from sklearn.utils.extmath import randomized_svd as sk_rsvd

    A, _ = _decaying(300, 120, 0.95, rng)
    k, p, q = 10, 10, 3
    # sklearn draws Q = RandomState(seed).normal(size=(n, k + p)); pass the same Ω to ours.
    Omega = np.random.RandomState(5).normal(size=(120, k + p))
    U, s, Vt = sk_rsvd(A, k, n_oversamples=p, n_iter=q, power_iteration_normalizer=sk_norm,
                       random_state=5, transpose=False)
    ours = randomized_svd(A, k, oversample=p, n_iter=q, normalizer=normalizer, Omega=Omega,
                          transpose=False)
    np.testing.assert_allclose(ours.s, s, rtol=1e-9)
    np.testing.assert_allclose(ours.reconstruct(), (U * s) @ Vt, atol=1e-9)


def test_float32_numpy(rng):
    A = (rng.standard_normal((50, 5)) @ rng.standard_normal((5, 40))).astype(np.float32)
    r = randomized_svd(A, 5, seed=0)
    assert r.U.dtype == np.float32
    assert np.linalg.norm(A - r.reconstruct()) <= 1e-5 * np.linalg.norm(A)


def test_single_precision_sketch_keeps_the_error_when_the_tail_is_large(rng):
    # Singular values 1/j: the discarded ones (>= 1/61) are far above float32's u * sigma_1,
    # so the float32 power iteration gives the float64 error; the factors stay float64.
    m, n, k = 300, 200, 20
    U = np.linalg.qr(rng.standard_normal((m, n)))[0]
    V = np.linalg.qr(rng.standard_normal((n, n)))[0]
    s = 1.0 / np.arange(1, n + 1)
    A = (U * s) @ V.T
    full = randomized_svd(A, k, n_iter=4, seed=0)
    mixed = randomized_svd(A, k, n_iter=4, seed=0, sketch_dtype=np.float32)
    assert mixed.U.dtype == mixed.s.dtype == np.float64
    np.testing.assert_allclose(mixed.U.T @ mixed.U, np.eye(k), atol=1e-13)
    err = [np.linalg.norm(A - r.reconstruct()) for r in (full, mixed)]
    assert abs(err[1] - err[0]) <= 1e-5 * err[0]
    t = randomized_svd(torch.tensor(A), k, n_iter=4, seed=0, sketch_dtype=torch.float32)
    assert t.U.dtype == torch.float64
    np.testing.assert_allclose(t.s.numpy(), mixed.s, rtol=1e-6)


def test_single_precision_sketch_spoils_a_tiny_tail(rng):
    # The documented limit: singular values 10^-j, so the tail after rank 12 (1e-12) is far
    # below float32's u * sigma_1 (6e-8); the float32 basis is then the error's floor.
    A, _ = _decaying(120, 80, 0.1, rng)
    full = randomized_svd(A, 12, n_iter=2, seed=0)
    mixed = randomized_svd(A, 12, n_iter=2, seed=0, sketch_dtype=np.float32)
    err = [np.linalg.norm(A - r.reconstruct()) for r in (full, mixed)]
    assert err[0] < 1e-11 and err[1] > 1e3 * err[0]


@pytest.mark.parametrize("sketch_dtype", [np.int32, np.float16, "word"])
def test_bad_sketch_dtype(sketch_dtype):
    A = np.random.default_rng(0).standard_normal((40, 30))
    with pytest.raises(ValueError, match="sketch_dtype"):
        randomized_svd(A, 3, sketch_dtype=sketch_dtype)
    with pytest.raises(ValueError, match="sketch_dtype"):
        randomized_range_finder(torch.tensor(A), 3, sketch_dtype=sketch_dtype)


@pytest.mark.parametrize("kwargs,err,match", [
    ({"rank": 0}, ValueError, "rank must be at least 1"),
    ({"rank": 31}, ValueError, "exceeds"),
    ({"rank": 2.0}, TypeError, "rank must be an integer"),
    ({"rank": 3, "n_iter": -1}, ValueError, "n_iter must be at least 0"),
    ({"rank": 3, "n_iter": 1.5}, TypeError, "n_iter must be an integer"),
    ({"rank": 3, "normalizer": "cholesky"}, ValueError, "normalizer must be one of"),
    ({"rank": 3, "oversample": -2}, ValueError, "oversample must be at least 0"),
    ({"rank": 3, "oversample": 0.5}, TypeError, "oversample must be an integer"),
    ({"rank": 3, "transpose": "yes"}, ValueError, "transpose must be one of"),
    ({"rank": 3, "Omega": np.ones((5, 5))}, ValueError, "Omega must have shape"),
    ({"rank": 3, "Omega": torch.ones((30, 13), dtype=torch.float64)}, TypeError,
     "A is a NumPy array but Omega is a torch tensor"),
    ({"rank": 3, "backend": "numba"}, ValueError, "not implemented"),
    ({"rank": 3, "seed": 1.5}, TypeError, "seed"),
])
def test_bad_inputs(kwargs, err, match):
    A = np.random.default_rng(0).standard_normal((40, 30))
    with pytest.raises(err, match=match):
        randomized_svd(A, **kwargs)


def test_bad_matrices():
    with pytest.raises(TypeError, match="floating-point"):
        randomized_svd(np.ones((5, 5), dtype=int), 2)
    with pytest.raises(ValueError, match="NaN"):
        randomized_svd(np.full((5, 5), np.nan), 2)
    with pytest.raises(ValueError, match="dimensions"):
        randomized_range_finder(np.ones(5), 2)
    with pytest.raises(ValueError, match="size=9 exceeds"):
        randomized_range_finder(np.ones((8, 8)), 9)
    with pytest.raises(ValueError, match="normalizer must be one of"):
        randomized_range_finder(np.ones((8, 8)), 2, normalizer="svd")


def test_returns_the_shared_truncated_svd(rng):
    A = rng.standard_normal((30, 20))
    r = randomized_svd(A, rank=4, seed=0)
    assert isinstance(r, TruncatedSVD) and r.tail is None
    with pytest.raises(ValueError, match="discarded singular values are not known"):
        r.error()


def test_given_omega_moves_to_the_torch_path(rng):
    # A NumPy Ω with NumPy A on backend="torch" gives the same SVD as on NumPy.
    A = rng.standard_normal((40, 25))
    Om = rng.standard_normal((25, 8))
    ref = randomized_svd(A, 5, oversample=3, Omega=Om, transpose=False)
    out = randomized_svd(A, 5, oversample=3, Omega=Om, transpose=False, backend="torch")
    assert isinstance(out.s, np.ndarray)
    np.testing.assert_allclose(out.s, ref.s, rtol=1e-10)

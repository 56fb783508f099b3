"""Polar decomposition and truncated SVD (Eckart–Young–Mirsky)."""

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given
from linalg_strategies import make_matrix, make_spd, matrices, tol

from refimpl.linalg import polar, truncated_svd


def _check_polar(A, U, H, atol):
    n = A.shape[1]
    np.testing.assert_allclose(U.T @ U, np.eye(n), atol=atol)
    np.testing.assert_allclose(H, H.T, atol=atol)
    assert np.linalg.eigvalsh(H.astype(np.float64)).min() >= -atol * max(1, np.abs(A).max())
    np.testing.assert_allclose(U @ H, A, atol=atol * max(1, np.abs(A).max()))


@given(matrices(shape="tall"))
def test_polar_svd_defining_equations(case):
    A, _, dtype = case
    U, H = polar(A)
    assert U.dtype == dtype
    _check_polar(A, U, H, tol(dtype, 100))


@pytest.mark.parametrize("method", ["svd", "newton", "newton_schulz"])
def test_polar_methods_match_scipy(method):
    A = make_matrix(8, 8, "random", 5)
    U, H = polar(A, method=method)
    Us, Hs = scipy.linalg.polar(A)
    np.testing.assert_allclose(U, Us, atol=1e-10)
    np.testing.assert_allclose(H, Hs, atol=1e-10)


def test_polar_iterations_converge_as_expected():
    A = make_matrix(10, 10, "random", 6)
    _, info_n = polar(A, method="newton", return_info=True)
    _, info_ns = polar(A, method="newton_schulz", return_info=True)
    assert info_n.converged and info_n.iterations <= 12
    assert info_ns.converged and info_ns.iterations < 100
    tall = make_matrix(12, 5, "ill_conditioned", 1)
    U, H = polar(tall, method="newton_schulz", max_iter=200)
    _check_polar(tall, U, H, 1e-9)


@pytest.mark.parametrize("method", ["svd", "newton", "newton_schulz"])
def test_polar_torch_batched(method):
    A = np.stack([make_matrix(6, 6, "random", s) for s in range(3)])
    U, H = polar(torch.as_tensor(A), method=method)
    assert U.shape == (3, 6, 6)
    for b in range(3):
        Us, Hs = scipy.linalg.polar(A[b])
        np.testing.assert_allclose(U[b].numpy(), Us, atol=1e-9)
        np.testing.assert_allclose(H[b].numpy(), Hs, atol=1e-9)


def test_polar_of_spd_is_identity_times_itself():
    A = make_spd(5, 100.0, 2)
    U, H = polar(A, method="newton")
    np.testing.assert_allclose(U, np.eye(5), atol=1e-12)
    np.testing.assert_allclose(H, A, atol=1e-12)


def test_polar_bad_input():
    with pytest.raises(ValueError, match="m >= n"):
        polar(np.ones((2, 3)))
    with pytest.raises(ValueError, match="square"):
        polar(np.ones((3, 2)), method="newton")
    with pytest.raises(ValueError, match="method"):
        polar(np.eye(2), method="qr")
    with pytest.raises(TypeError, match="A"):
        polar(np.eye(2, dtype=int))


@given(matrices(min_dim=2))
def test_truncated_svd_eckart_young_mirsky(case):
    A, _, dtype = case
    k = max(1, min(A.shape) // 2)
    t = truncated_svd(A, k)
    Ak = t.reconstruct()
    scale = max(1.0, float(np.abs(A).max()))
    assert np.linalg.matrix_rank(Ak.astype(np.float64), tol=1e-6 * scale) <= k
    np.testing.assert_allclose(np.linalg.norm(A - Ak), t.error("fro"), atol=tol(dtype, 100) * scale)
    np.testing.assert_allclose(np.linalg.norm((A - Ak).astype(np.float64), 2), t.error(2),
                               atol=tol(dtype, 100) * scale)
    # No other rank-k matrix does better: e.g. the rank-k pivoted-QR approximation.
    from refimpl.linalg import cpqr

    assert np.linalg.norm(A - cpqr(A, k).reconstruct()) >= t.error("fro") - tol(dtype, 100) * scale


def test_truncated_svd_paths_agree():
    A = make_matrix(15, 9, "random", 3)
    ref = truncated_svd(A, 4, backend="numpy")
    for backend in ("numba", "torch"):
        t = truncated_svd(A, 4, backend=backend)
        np.testing.assert_allclose(t.s, ref.s, atol=1e-12)
        np.testing.assert_allclose(t.reconstruct(), ref.reconstruct(), atol=1e-10)
    tb = truncated_svd(torch.as_tensor(np.stack([A, 2 * A])), 4)
    np.testing.assert_allclose(tb.error().numpy(), [ref.error(), 2 * ref.error()], rtol=1e-12)


def test_truncated_svd_bad_rank():
    with pytest.raises(ValueError, match="exceeds"):
        truncated_svd(np.eye(3), 4)
    with pytest.raises(TypeError, match="integer"):
        truncated_svd(np.eye(3), 1.5)


def _hippo_legs(N):
    r = np.sqrt(2 * np.arange(N) + 1)
    return -np.tril(np.outer(r, r), -1) - np.diag(np.arange(N) + 1.0)


def test_perturb_then_diagonalize_is_backward_stable_where_eig_is_not():
    from refimpl.linalg import perturb_then_diagonalize

    A = _hippo_legs(48)
    exact = perturb_then_diagonalize(A, 0.0)
    rel = lambda F: np.linalg.norm(A - F.reconstruct(), 2) / np.linalg.norm(A, 2)  # noqa: E731
    assert rel(exact) > 1.0  # the exact eigenbasis is useless in floating point
    for eps in (1e-8, 1e-4):
        ptd = perturb_then_diagonalize(A, eps, seed=0)
        assert rel(ptd) < 10 * eps
        assert np.linalg.cond(ptd.V) < 1e3 / eps
    with pytest.raises(ValueError, match="eps"):
        perturb_then_diagonalize(A, 1.5)
    with pytest.raises(ValueError, match="square"):
        perturb_then_diagonalize(np.ones((2, 3)))


@given(matrices(min_dim=2, kinds=("random", "ill_conditioned")))
def test_truncated_svd_projectors_are_idempotent(case):
    A, _, dtype = case
    k = max(1, min(A.shape) // 2)
    t = truncated_svd(A, k)
    for P in (t.U @ t.U.T, t.Vt.T @ t.Vt):
        np.testing.assert_allclose(P @ P, P, atol=tol(dtype, 100))
        np.testing.assert_allclose(P, P.T, atol=tol(dtype, 100))
    # A_k = P_U A: the truncation is the orthogonal projection onto the top-k left subspace.
    scale = max(1.0, float(np.abs(A).max()))
    np.testing.assert_allclose(t.U @ (t.U.T @ A), t.reconstruct(), atol=tol(dtype, 100) * scale)

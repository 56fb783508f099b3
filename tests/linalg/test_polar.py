"""Polar decomposition (refimpl.linalg.polar): SVD, Newton and Newton–Schulz."""

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given

from refimpl.linalg import polar
from refimpl.results import Info

from .linalg_strategies import make_matrix, make_spd, matrices, tol, torch_batch


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
    assert info_n.converged and info_n.n_iter <= 12
    assert info_ns.converged and info_ns.n_iter < 100
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
    with pytest.raises(ValueError, match="max_iter"):
        polar(np.eye(2), method="newton", max_iter=0)
    with pytest.raises(TypeError, match="max_iter"):
        polar(np.eye(2), method="newton", max_iter=1.5)
    with pytest.raises(ValueError, match="tol"):
        polar(np.eye(2), method="newton", tol=float("nan"))


@pytest.mark.parametrize("method", ["newton", "newton_schulz"])
@pytest.mark.parametrize("batched", [False, True])
def test_polar_info_is_the_step_size_trace(method, batched):
    A = np.stack([make_matrix(8, 8, "random", s) for s in range(3)])
    X = torch.as_tensor(A) if batched else A[0]
    (U, _), info = polar(X, method=method, return_info=True, tol=1e-12)
    assert isinstance(info, Info) and info.converged and type(info.converged) is bool
    assert len(info.errors) == info.n_iter >= 2
    # errors[k] = ‖X_{k+1} − X_k‖_F (largest over a batch); the loop stops at the first <= tol,
    # and the step sizes shrink (quadratically) towards the end.
    assert info.errors[-1] <= 1e-12 < min(info.errors[:-1])
    assert all(b < a for a, b in zip(info.errors[-4:], info.errors[-3:], strict=False))
    U0 = U[0].numpy() if batched else U
    np.testing.assert_allclose(U0, scipy.linalg.polar(A[0])[0], atol=1e-10)
    # Running out of iterations: not converged, one error per iteration done.
    _, short = polar(X, method=method, return_info=True, max_iter=2)
    assert short == Info(2, False, short.errors) and len(short.errors) == 2
    np.testing.assert_allclose(short.errors, info.errors[:2], rtol=1e-12)


def test_polar_svd_info_has_no_iterations():
    _, info = polar(np.eye(3), return_info=True)
    assert info == Info(0, True, ())


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["svd", "newton_schulz"])
def test_polar_cuda_matches_cpu(method):
    A = torch_batch()
    U, H = polar(A.cuda(), method=method)
    assert U.device.type == "cuda"
    Uc, Hc = polar(A, method=method)
    torch.testing.assert_close(U.cpu(), Uc, atol=1e-9, rtol=0)
    torch.testing.assert_close(H.cpu(), Hc, atol=1e-9, rtol=0)

"""One-sided Jacobi SVD and the symmetric Jacobi eigensolver."""

import numpy as np
import pytest
import torch
from hypothesis import given

from refimpl.linalg import TruncatedSVD, jacobi_eigh, jacobi_svd, truncated_svd
from refimpl.results import Info

from .linalg_strategies import make_matrix, make_spd, matrices, tol


def _check_svd(A, res, dtype):
    k = min(A.shape)
    assert isinstance(res, TruncatedSVD)
    U, s, Vt, tail = res
    assert tail.shape == (0,) and res.error() == 0 and res.error(2) == 0
    assert U.shape == (A.shape[0], k) and s.shape == (k,) and Vt.shape == (k, A.shape[1])
    assert U.dtype == dtype and s.dtype == dtype
    scale = max(1.0, float(np.abs(A).max()))
    np.testing.assert_allclose(U.T @ U, np.eye(k), atol=tol(dtype, 100))
    np.testing.assert_allclose(Vt @ Vt.T, np.eye(k), atol=tol(dtype, 100))
    assert np.all(s[:-1] >= s[1:]) and np.all(s >= 0)
    np.testing.assert_allclose(res.reconstruct(), A, atol=tol(dtype, 100) * scale)
    ref = np.linalg.svd(A.astype(np.float64), compute_uv=False)
    np.testing.assert_allclose(s, ref, atol=tol(dtype, 100) * scale)


@given(matrices(max_dim=9))
def test_jacobi_svd_numpy(case):
    A, _, dtype = case
    _check_svd(A, jacobi_svd(A, backend="numpy"), dtype)


@given(matrices(max_dim=12))
def test_jacobi_svd_numba(case):
    A, _, dtype = case
    _check_svd(A, jacobi_svd(A, backend="numba"), dtype)


def test_jacobi_svd_paths_agree_and_converge(rng):
    A = rng.standard_normal((20, 12))
    a, info_a = jacobi_svd(A, backend="numpy", return_info=True)
    b, info_b = jacobi_svd(A, backend="numba", return_info=True)
    assert info_a.converged and info_b.converged and info_a.n_iter == info_b.n_iter
    np.testing.assert_allclose(info_a.errors, info_b.errors, rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(a.s, b.s, atol=1e-12)
    np.testing.assert_allclose(np.abs(a.U), np.abs(b.U), atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_jacobi_svd_high_relative_accuracy(seed):
    # A = D1 B D2 with well-conditioned B (graded, singular values down to ~1e-20): one-sided
    # Jacobi finds even the smallest ones to high relative accuracy (Demmel & Veselic 1992).
    mpmath = pytest.importorskip("mpmath")
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((8, 8)) + 4 * np.eye(8)
    d = np.logspace(0, -10, 8)
    A = d[:, None] * B * d
    with mpmath.workdps(60):
        ref = np.array(sorted((float(x) for x in mpmath.svd_r(mpmath.matrix(A.tolist()),
                                                              compute_uv=False)), reverse=True))
    np.testing.assert_allclose(jacobi_svd(A).s, ref, rtol=1e-10)


def test_jacobi_svd_torch_in_torch_out():
    A = torch.as_tensor(make_matrix(6, 4, "random", 1), dtype=torch.float32)
    res = jacobi_svd(A)
    assert isinstance(res.U, torch.Tensor) and res.U.dtype == torch.float32


def _check_eigh(A, res, dtype):
    w, V = res
    n = A.shape[0]
    scale = max(1.0, float(np.abs(A).max()))
    np.testing.assert_allclose(V.T @ V, np.eye(n), atol=tol(dtype, 100))
    assert np.all(np.diff(w) >= 0)
    np.testing.assert_allclose(A @ V, V * w, atol=tol(dtype, 100) * scale)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(A.astype(np.float64)),
                               atol=tol(dtype, 100) * scale)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@given(case=matrices(max_dim=10, shape="square"))
def test_jacobi_eigh(backend, case):
    A, _, dtype = case
    S = (A + A.T) / 2
    _check_eigh(S, jacobi_eigh(S, backend=backend), dtype)


def test_jacobi_eigh_repeated_and_psd():
    A = make_spd(9, cond=1e8)
    A = A @ A.T  # PSD, spread spectrum
    Q = np.linalg.qr(np.random.default_rng(0).standard_normal((6, 6)))[0]
    R = (Q * np.array([2.0, 2.0, 2.0, 0.0, 0.0, -1.0])) @ Q.T  # repeated eigenvalues
    for M in (A, (R + R.T) / 2):
        _check_eigh(M, jacobi_eigh(M), np.float64)


@pytest.mark.parametrize("fn", [jacobi_svd, jacobi_eigh])
@pytest.mark.parametrize("bad, err", [
    (np.ones((3, 3), dtype=np.int64), TypeError),
    (np.zeros((2, 0)), ValueError),
    (np.array([[1.0, np.inf], [0.0, 1.0]]), ValueError),
    (np.ones((2, 2, 2)), ValueError),
])
def test_bad_input(fn, bad, err):
    with pytest.raises(err, match="A"):
        fn(bad)


def test_jacobi_eigh_needs_symmetric_square():
    with pytest.raises(ValueError, match="symmetric"):
        jacobi_eigh(np.array([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="square"):
        jacobi_eigh(np.ones((2, 3)))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("fn", ["svd", "eigh"])
def test_info_reports_the_sweeps_and_the_stopping_measure(backend, fn, rng):
    A = rng.standard_normal((14, 10))
    run = (lambda **kw: jacobi_svd(A, **kw)) if fn == "svd" else \
        (lambda **kw: jacobi_eigh(A.T @ A, **kw))
    _, info = run(backend=backend, return_info=True)
    assert isinstance(info, Info) and info.converged
    assert len(info.errors) == info.n_iter >= 2
    assert all(isinstance(e, float) for e in info.errors)
    tol = np.finfo(np.float64).eps * (14 if fn == "svd" else 10)
    # The stopping rule: the last sweep met no coupling above tol, every earlier one did;
    # convergence is ultimately quadratic, so the measure falls steeply at the end.
    assert info.errors[-1] <= tol < min(info.errors[:-1])
    assert info.errors[-2] < 1e-3 * info.errors[0]
    # Stopped by max_sweeps: not converged, and still one measure per sweep.
    _, short = run(backend=backend, return_info=True, max_sweeps=2)
    assert short == Info(2, False, info.errors[:2])


@pytest.mark.parametrize("fn", [jacobi_svd, jacobi_eigh])
def test_bad_options(fn):
    S = np.eye(3)
    with pytest.raises(ValueError, match="max_sweeps"):
        fn(S, max_sweeps=0)
    with pytest.raises(TypeError, match="max_sweeps"):
        fn(S, max_sweeps=2.5)
    with pytest.raises(ValueError, match="tol"):
        fn(S, tol=-1.0)
    with pytest.raises(ValueError, match="backend"):
        fn(S, backend="torch")


def test_jacobi_svd_result_feeds_truncated_svd_consumers(rng):
    # One SVD type: a full Jacobi SVD and a truncated one both reconstruct and know their error.
    A = rng.standard_normal((9, 6))
    full = jacobi_svd(A)
    cut = truncated_svd(A, 3, backend="numba")
    for t in (full, cut):
        assert isinstance(t, TruncatedSVD)
        np.testing.assert_allclose(np.linalg.norm(A - t.reconstruct()), t.error(), atol=1e-12)
    np.testing.assert_allclose(cut.s, full.s[:3], rtol=1e-12)
    np.testing.assert_allclose(cut.tail, full.s[3:], rtol=1e-12)

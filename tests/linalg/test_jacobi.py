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
    # The compiled path sweeps a preconditioned matrix (two QRs first), so it needs fewer
    # sweeps than the reference; the factors agree.
    A = rng.standard_normal((20, 12))
    a, info_a = jacobi_svd(A, backend="numpy", return_info=True)
    b, info_b = jacobi_svd(A, backend="numba", return_info=True)
    assert info_a.converged and info_b.converged and info_b.n_iter < info_a.n_iter
    np.testing.assert_allclose(a.s, b.s, atol=1e-12)
    np.testing.assert_allclose(np.abs(a.U), np.abs(b.U), atol=1e-10)
    np.testing.assert_allclose(np.abs(a.Vt), np.abs(b.Vt), atol=1e-10)


# Shapes that cross the compiled kernels' block size (BLOCK = 32) with a ragged last block.
@pytest.mark.parametrize("shape, rank, dtype", [
    ((70, 70), 70, np.float64), ((100, 70), 70, np.float64), ((70, 100), 70, np.float64),
    ((70, 70), 20, np.float64), ((90, 50), 50, np.float32),
])
def test_jacobi_svd_numba_across_blocks(shape, rank, dtype, rng):
    m, n = shape
    A = (rng.standard_normal((m, rank)) @ rng.standard_normal((rank, n))).astype(dtype)
    res = jacobi_svd(A, backend="numba")
    _check_svd(A, res, dtype)
    ref = jacobi_svd(A, backend="numpy")
    np.testing.assert_allclose(res.s, ref.s, atol=tol(dtype, 100) * float(np.abs(A).max()))


def _mp_singular_values(A):
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(60):
        values = mpmath.svd_r(mpmath.matrix(A.tolist()), compute_uv=False)
    return np.array(sorted((float(x) for x in values), reverse=True))


@pytest.mark.parametrize("grading", ["columns", "rows and columns"])
def test_jacobi_svd_high_relative_accuracy_where_gesdd_loses_it(grading):
    # A = D1 B D2 with B Gaussian and the grading shuffled (the scaled columns, and rows, out
    # of order), 40 x 40 so that the compiled sweeps run over two blocks. Only the column
    # scaling matters to one-sided Jacobi (Demmel & Veselic 1992); sorting the rows before
    # the pivoted QR keeps row scaling harmless too (Drmac & Veselic 2008). xGESDD's errors
    # are of the size eps * ||A||, so its small singular values have few or no correct digits.
    rng = np.random.default_rng(0)
    n = 40
    d = np.logspace(0, -12, n)
    A = rng.standard_normal((n, n)) * d
    if grading == "rows and columns":
        A = d[:, None] * A
    A = A[rng.permutation(n)][:, rng.permutation(n)]
    ref = _mp_singular_values(A)

    def worst(s):
        return float(np.max(np.abs(s - ref) / ref))

    assert worst(np.linalg.svd(A, compute_uv=False)) > 1e-8
    assert worst(jacobi_svd(A, backend="numba").s) < 1e-12
    assert worst(jacobi_svd(A, backend="numpy").s) < 1e-12


def test_jacobi_svd_numba_falls_back_to_accumulated_rotations(monkeypatch, rng):
    # Kahan's matrix, on which column pivoting reveals nothing (the scaling keeps the pivots
    # in their order): the preconditioned triangle stays ill-conditioned after its column
    # scaling, the triangular solve for the right factor is not accurate enough, and the
    # kernel runs again accumulating the rotations.
    import refimpl.linalg._jacobi_numba as kernels

    n, theta = 70, 1.2
    A = np.diag(np.sin(theta) ** np.arange(n)) @ (
        np.eye(n) - np.cos(theta) * np.triu(np.ones((n, n)), 1))
    A *= (1 - 1e-10) ** np.arange(n)
    calls = []
    kernel = kernels.one_sided_jacobi

    def spy(*args):
        calls.append(args[-1])
        return kernel(*args)

    monkeypatch.setattr(kernels, "one_sided_jacobi", spy)
    res = jacobi_svd(A, backend="numba")
    assert calls == [False, True]
    _check_svd(A, res, np.float64)
    calls.clear()
    jacobi_svd(rng.standard_normal((n, n)), backend="numba")
    assert calls == [False]


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


@pytest.mark.parametrize("n", [70, 100])
def test_jacobi_eigh_numba_across_blocks(n, rng):
    A = rng.standard_normal((n, n))
    S = (A + A.T) / 2
    res, info = jacobi_eigh(S, backend="numba", return_info=True)
    _check_eigh(S, res, np.float64)
    ref, info_ref = jacobi_eigh(S, backend="numpy", return_info=True)
    np.testing.assert_allclose(res.w, ref.w, atol=1e-12 * np.abs(ref.w).max())
    assert info.converged and abs(info.n_iter - info_ref.n_iter) <= 2
    # Repeated eigenvalues, each spread over several blocks.
    Q = np.linalg.qr(A)[0]
    R = (Q * np.repeat([3.0, -1.0, 0.5, 0.0, 2.0], n // 5)) @ Q.T
    _check_eigh((R + R.T) / 2, jacobi_eigh((R + R.T) / 2, backend="numba"), np.float64)


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

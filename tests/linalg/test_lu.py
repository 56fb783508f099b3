"""LU with partial pivoting and Cholesky (refimpl.linalg.lu)."""

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given

from refimpl.linalg import cholesky, lu

from .linalg_strategies import make_matrix, make_spd, matrices, tol, torch_batch


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@given(case=matrices())
def test_lu_defining_equations(backend, case):
    A, _, dtype = case
    perm, L, U = res = lu(A, backend=backend)
    m, n = A.shape
    k = min(m, n)
    assert L.shape == (m, k) and U.shape == (k, n) and L.dtype == dtype
    assert sorted(perm) == list(range(m))
    np.testing.assert_array_equal(np.diagonal(L), 1.0)
    assert np.all(np.triu(L, 1) == 0) and np.all(np.tril(U, -1) == 0)
    assert np.all(np.abs(L) <= 1 + 1e-6)  # partial pivoting bounds the multipliers
    scale = max(1.0, float(np.abs(A).max()))
    np.testing.assert_allclose(L @ U, A[perm], atol=tol(dtype, 10) * scale)
    np.testing.assert_allclose(res.reconstruct(), A, atol=tol(dtype, 10) * scale)
    np.testing.assert_allclose(res.permutation_matrix() @ A, L @ U, atol=tol(dtype, 10) * scale)


@given(matrices(kinds=("random",), dtypes=(np.float64,)))
def test_lu_matches_scipy(case):
    A, _, _ = case
    P, L, U = scipy.linalg.lu(A)
    for backend in ("numpy", "numba"):
        ours = lu(A, backend=backend)
        np.testing.assert_allclose(ours.L, L, atol=1e-9)
        np.testing.assert_allclose(ours.U, U, atol=1e-9)
        np.testing.assert_array_equal(ours.permutation_matrix().T, P)


def test_lu_singular_column_is_skipped():
    A = make_matrix(5, 5, "random", 2)
    A[:, 2] = 0.0
    res = lu(A)
    assert res.U[2, 2] == 0.0
    np.testing.assert_allclose(res.reconstruct(), A, atol=1e-12)


def test_lu_torch_in_torch_out():
    A = torch.as_tensor(make_matrix(4, 4, "random", 0))
    res = lu(A)
    assert isinstance(res.L, torch.Tensor) and res.perm.dtype == torch.int64
    assert torch.allclose(res.L @ res.U, A[res.perm])
    torch.testing.assert_close(res.reconstruct(), A)
    res32 = lu(A.float(), backend="numpy")
    assert res32.L.dtype == torch.float32 and res32.U.dtype == torch.float32


@pytest.mark.parametrize("dtype, cond", [(np.float64, 1.0), (np.float64, 1e3),
                                         (np.float64, 1e8), (np.float32, 1.0),
                                         (np.float32, 1e3)])
def test_cholesky_matches_numpy(dtype, cond):
    A = make_spd(12, cond=cond, seed=4, dtype=dtype)
    L = cholesky(A).L
    assert L.dtype == dtype
    assert np.all(np.triu(L, 1) == 0) and np.all(np.diagonal(L) > 0)
    np.testing.assert_allclose(L @ L.T, A, atol=tol(dtype, 10))
    np.testing.assert_allclose(L, np.linalg.cholesky(A.astype(np.float64)),
                               atol=tol(dtype, 10) * np.sqrt(cond))


def test_cholesky_torch_batched_parity():
    A = np.stack([make_spd(6, 10.0, s) for s in range(3)])
    L = cholesky(torch.as_tensor(A)).L
    assert L.shape == (3, 6, 6)
    np.testing.assert_allclose(L.numpy(), np.linalg.cholesky(A), atol=1e-12)
    np.testing.assert_allclose(cholesky(A[0], backend="torch").L, np.linalg.cholesky(A[0]),
                               atol=1e-12)


def test_cholesky_rejects_non_symmetric_and_indefinite():
    with pytest.raises(ValueError, match="symmetric"):
        cholesky(np.array([[2.0, 1.0], [0.0, 2.0]]))
    with pytest.raises(ValueError, match="positive definite"):
        cholesky(np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="square"):
        cholesky(np.ones((2, 3)))
    with pytest.raises(TypeError, match="A"):
        cholesky(np.eye(3, dtype=int))
    with pytest.raises(ValueError, match="NaN"):
        cholesky(np.array([[1.0, np.nan], [np.nan, 1.0]]))


@pytest.mark.parametrize("bad, err", [
    (np.ones((3, 3), dtype=int), TypeError), (np.zeros((0, 0)), ValueError),
    (np.array([[np.nan]]), ValueError), ([1.0, 2.0], ValueError)])
def test_lu_bad_input(bad, err):
    with pytest.raises(err, match="A"):
        lu(bad)


@pytest.mark.gpu
def test_cholesky_cuda():
    A = torch_batch()
    S = A.mT @ A + torch.eye(8, dtype=torch.float64)
    L = cholesky(S.cuda()).L
    assert L.device.type == "cuda"
    torch.testing.assert_close((L @ L.mT).cpu(), S, atol=1e-10, rtol=0)

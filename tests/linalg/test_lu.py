"""LU with partial pivoting and Cholesky (refimpl.linalg.lu)."""

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given

from refimpl.linalg import _lu_numba, cholesky, lu

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


def _perm_from_ipiv(ipiv, m):
    """LAPACK's interchange sequence (row i swapped with ipiv[i], in order) as a row order."""
    perm = np.arange(m)
    for i, p in enumerate(ipiv):
        perm[[i, p]] = perm[[p, i]]
    return perm


def _assert_blocked_matches_reference(A, **kernel):
    """The blocked Numba LU against the unblocked NumPy loop: the same pivots exactly and
    the same factors to rounding (relative to the size of U, which growth can inflate)."""
    ref = lu(A, backend="numpy")
    if kernel:
        W = np.array(A, order="C", copy=True)
        perm = np.arange(A.shape[0])
        L, U = _lu_numba.lu_factors(W, perm, **kernel)
    else:
        perm, L, U = lu(A, backend="numba")
    np.testing.assert_array_equal(perm, ref.perm)
    eps = np.finfo(A.dtype).eps
    n = max(A.shape)
    np.testing.assert_allclose(L, ref.L, rtol=0, atol=50 * n * eps)
    np.testing.assert_allclose(U, ref.U, rtol=0, atol=50 * n * eps * np.abs(ref.U).max())
    assert np.all(np.triu(L, 1) == 0) and np.all(np.diagonal(L) == 1)
    assert np.all(np.tril(U, -1) == 0)
    return perm, L, U


# Sizes that cross several panels (nb = 32 below min(m, n) = 512, 64 from there) and end
# on a partial one; wide and tall shapes, where the last panel leaves U12 only (m < n) or
# L21 only (m > n).
@pytest.mark.parametrize("shape, dtype", [
    *[(shape, dtype) for shape in [(97, 97), (200, 200), (129, 300), (300, 129), (5, 200),
                                   (200, 5)] for dtype in (np.float64, np.float32)],
    ((530, 530), np.float64)])
def test_blocked_lu_matches_unblocked_reference(shape, dtype):
    A = make_matrix(*shape, "random", seed=sum(shape), dtype=dtype)
    _assert_blocked_matches_reference(A)


@pytest.mark.parametrize("nb, leaf", [(1, 1), (7, 2), (16, 3), (24, 24), (200, 5)])
@pytest.mark.parametrize("shape", [(61, 61), (83, 40), (40, 83)])
def test_blocked_lu_any_panel_and_leaf_width(nb, leaf, shape):
    # Odd panel widths and leaves exercise every split of the recursive panel kernel.
    A = make_matrix(*shape, "random", seed=7)
    _assert_blocked_matches_reference(A, nb=nb, leaf=leaf)


@pytest.mark.parametrize("zero_cols", [[0], [31, 32], [40, 95], [63, 64, 65, 119]])
def test_blocked_lu_zero_columns_are_skipped(zero_cols):
    # Exactly zero columns at the first step, at a panel edge (32, 64) and inside a leaf:
    # the pivot is zero, nothing is eliminated, and U has a zero on the diagonal there.
    A = make_matrix(120, 120, "random", seed=3)
    A[:, zero_cols] = 0.0
    for kernel in ({}, {"nb": 16, "leaf": 4}):
        perm, L, U = _assert_blocked_matches_reference(A, **kernel)
        assert np.all(np.diagonal(U)[zero_cols] == 0.0)
        assert np.count_nonzero(np.diagonal(U) == 0.0) == len(zero_cols)
        np.testing.assert_allclose(L @ U, A[perm], atol=1e-12 * np.abs(A).max() * 120)


def test_blocked_lu_rank_deficient():
    A = make_matrix(150, 110, "rank_deficient", seed=5)
    perm, L, U = lu(A, backend="numba")
    np.testing.assert_allclose(L @ U, A[perm], atol=1e-12 * np.abs(A).max())
    assert np.all(np.abs(L) <= 1.0)


@pytest.mark.parametrize("shape", [(64, 64), (257, 257), (600, 600), (300, 170),
                                   (170, 300)])
def test_lu_pivots_equal_lapack(shape):
    # Partial pivoting picks the row of largest magnitude: on Gaussian matrices (no ties)
    # the blocked kernel's row order is exactly xGETRF's.
    A = make_matrix(*shape, "random", seed=shape[0])
    lu_packed, ipiv = scipy.linalg.lu_factor(A)
    res = lu(A, backend="numba")
    np.testing.assert_array_equal(res.perm, _perm_from_ipiv(ipiv, shape[0]))
    k = min(shape)
    scale = np.abs(lu_packed).max()
    np.testing.assert_allclose(res.U, np.triu(lu_packed[:k]), rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(np.tril(res.L, -1), np.tril(lu_packed[:, :k], -1), rtol=0,
                               atol=1e-12)


def test_lu_numba_float32_input_stays_float32():
    A = make_matrix(150, 150, "random", seed=11)
    res32 = lu(A.astype(np.float32), backend="numba")
    assert res32.L.dtype == np.float32 and res32.U.dtype == np.float32
    np.testing.assert_allclose(res32.L @ res32.U, A[res32.perm], atol=2e-4 * 150)


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

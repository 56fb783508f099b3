"""Householder QR and QR with column pivoting (refimpl.linalg.qr): defining properties, peer
parity with LAPACK (NumPy/SciPy), path parity, conversion of results, bad input."""

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given
from hypothesis import strategies as st

from refimpl.linalg import _qr_numba, cpqr, householder_qr
from refimpl.matrices import low_rank_matrix, matrix_with_spectrum

from .linalg_strategies import make_matrix, matrices, tol, torch_batch

PATHS = ["numpy", "numba", "torch"]


def _sign_fixed_scipy(A):
    Q, R, P = scipy.linalg.qr(A, pivoting=True, mode="economic")
    d = np.where(np.diagonal(R) < 0, -1.0, 1.0)
    return Q * d, R * d[:, None], P


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape", [(40, 25), (25, 40), (33, 33)])
def test_matches_lapack_float64(path, shape, rng):
    A = rng.standard_normal(shape)
    Qs, Rs, Ps = _sign_fixed_scipy(A)
    Q, R, perm = cpqr(A, backend=path)
    np.testing.assert_array_equal(perm, Ps)
    scale = np.abs(Rs).max()
    np.testing.assert_allclose(R, Rs, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(Q, Qs, rtol=0, atol=1e-12)


def _assert_pivoted_qr(A, Q, R, perm, k):
    """Q orthonormal, R upper trapezoidal with R = Qᵀ A P, and the residual orthogonal to Q."""
    m, n = A.shape
    eps = np.finfo(A.dtype).eps
    assert Q.shape == (m, k) and R.shape == (k, n) and sorted(perm) == list(range(n))
    np.testing.assert_allclose(Q.T @ Q, np.eye(k), rtol=0, atol=20 * np.sqrt(m) * eps)
    np.testing.assert_array_equal(np.tril(R, -1), 0)
    assert np.all(np.diagonal(R) >= 0)
    scale = np.linalg.norm(A)
    np.testing.assert_allclose(R, Q.T @ A[:, perm], rtol=0, atol=20 * np.sqrt(m) * eps * scale)
    if k == min(m, n):
        assert np.linalg.norm(A[:, perm] - Q @ R) <= 20 * np.sqrt(m) * eps * scale


# Sizes that cross the panel width (32) and the compact-WY block of Q (32; 64 from k = 768),
# ending on partial blocks; n = 512 and 1024 are the benchmark sizes.
@pytest.mark.parametrize("shape", [(100, 70), (70, 100), (130, 130), (300, 200), (512, 512),
                                   pytest.param((1024, 1024), marks=pytest.mark.slow)])
def test_numba_pivots_equal_lapack_across_blocks(shape, rng):
    A = rng.standard_normal(shape)
    Qs, Rs, Ps = _sign_fixed_scipy(A)
    Q, R, perm = cpqr(A, backend="numba")
    np.testing.assert_array_equal(perm, Ps)
    _assert_pivoted_qr(A, Q, R, perm, min(shape))
    np.testing.assert_allclose(R, Rs, rtol=0, atol=1e-13 * np.sqrt(shape[0]) * np.abs(Rs).max())
    np.testing.assert_allclose(Q, Qs, rtol=0, atol=1e-11)


@pytest.mark.parametrize("block", [1, 5, 16, 40])
@pytest.mark.parametrize("rank", [None, 23])
def test_numba_any_panel_width(block, rank, rng):
    # Narrow panels end (and recompute the stale norms) at other columns than LAPACK's
    # nb = 32; the pivots are still those of Businger–Golub, i.e. xGEQP3's.
    A = rng.standard_normal((90, 70))
    k = 70 if rank is None else rank
    Q, R, perm = _qr_numba.cpqr_kernel(A.T, k, block=block, q_block=7)
    _, _, Ps = _sign_fixed_scipy(A)
    np.testing.assert_array_equal(perm[:k], Ps[:k])
    _assert_pivoted_qr(A, Q, R, perm, k)


@pytest.mark.parametrize("rank", [1, 31, 32, 33, 64, 70, 119])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_stopped_early_crossing_blocks(rank, dtype, rng):
    A = rng.standard_normal((150, 120)).astype(dtype)
    Q, R, perm = cpqr(A, rank, backend="numba")
    assert Q.dtype == dtype and R.dtype == dtype
    _assert_pivoted_qr(A, Q, R, perm, rank)
    full = cpqr(A, backend="numba")
    np.testing.assert_array_equal(perm[:rank], full.perm[:rank])
    tol32 = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(Q, full.Q[:, :rank], rtol=0, atol=tol32)
    if dtype == np.float64:
        np.testing.assert_array_equal(perm[:rank], _sign_fixed_scipy(A)[2][:rank])


def test_numba_rank_deficient_across_blocks():
    A = low_rank_matrix(200, 150, 45, cond=1e6, seed=2)
    Q, R, perm = cpqr(A, backend="numba")
    d = np.diagonal(R)
    assert d[44] > 1e-8 * d[0] and np.all(d[45:] < 1e-13 * d[0])
    _assert_pivoted_qr(A, Q, R, perm, 150)
    res = cpqr(A, 45, backend="numba")
    assert np.linalg.norm(res.reconstruct() - A) < 1e-12 * np.linalg.norm(A)


@pytest.mark.parametrize("m, k, block", [(50, 50, 1), (50, 37, 8), (70, 40, 16),
                                         (40, 40, 64), (100, 100, 32), (120, 65, 32)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_form_q_blocked_equals_product_of_reflectors(m, k, block, dtype, rng):
    # Q = H_0 ... H_{k-1} I[:, :k] in compact WY blocks against one reflector at a time.
    V = np.triu(rng.standard_normal((k, m)), 1)
    V[np.arange(k), np.arange(k)] = 1.0
    taus = 2.0 / np.sum(V**2, axis=1)
    taus[k // 3] = 0.0  # a reflector that is the identity (nothing to annihilate)
    V, taus = V.astype(dtype), taus.astype(dtype)
    Q = _qr_numba._form_q(V, taus, m, k, block).T
    ref = np.eye(m, k)
    for j in range(k - 1, -1, -1):
        v = V[j].astype(np.float64)
        ref -= taus[j] * np.outer(v, v @ ref)
    assert Q.dtype == dtype
    np.testing.assert_allclose(Q, ref, rtol=0, atol=50 * np.sqrt(m) * np.finfo(dtype).eps)


@pytest.mark.parametrize("path", PATHS)
def test_float32_within_stated_tolerance(path, rng):
    A = rng.standard_normal((30, 20)).astype(np.float32)
    Q, R, perm = cpqr(A, backend=path)
    assert Q.dtype == np.float32 and R.dtype == np.float32
    # float32: orthogonality and reconstruction to 1e-5 relative.
    np.testing.assert_allclose(Q.T @ Q, np.eye(20), atol=1e-5)
    assert np.linalg.norm(A[:, perm] - Q @ R) <= 1e-5 * np.linalg.norm(A)


@given(m=st.integers(1, 30), n=st.integers(1, 30), frac=st.floats(0.05, 1.0),
       seed=st.integers(0, 2**32 - 1), path=st.sampled_from(PATHS))
def test_defining_properties(m, n, frac, seed, path):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n))
    k = max(1, int(frac * min(m, n)))
    Q, R, perm = cpqr(A, k, backend=path)
    assert Q.shape == (m, k) and R.shape == (k, n) and sorted(perm) == list(range(n))
    np.testing.assert_allclose(Q.T @ Q, np.eye(k), atol=1e-12)
    np.testing.assert_array_equal(np.tril(R, -1), 0)
    d = np.diagonal(R)
    assert np.all(d >= 0) and np.all(np.diff(d) <= 1e-12 * max(1.0, d[0]))
    # R is Qᵀ A P exactly; the residual is what the k steps left in the trailing block.
    np.testing.assert_allclose(R, Q.T @ A[:, perm], atol=1e-12 * max(1, np.abs(A).max()) * m)
    resid = A[:, perm] - Q @ R
    np.testing.assert_allclose(Q.T @ resid, 0, atol=1e-11 * np.linalg.norm(A))


@pytest.mark.parametrize("path", PATHS)
def test_rank_deficient_reveals_rank(path):
    A = low_rank_matrix(50, 40, 7, cond=1e6, seed=1)
    _, R, _ = cpqr(A, backend=path)
    d = np.diagonal(R)
    assert d[6] > 1e-8 and np.all(d[7:] < 1e-13)
    res = cpqr(A, 7, backend=path)
    assert np.linalg.norm(res.reconstruct() - A) < 1e-12 * np.linalg.norm(A)


@pytest.mark.parametrize("cond", [1e4, 1e8, 1e12])
def test_ill_conditioned_matches_lapack(cond):
    A = matrix_with_spectrum(60, 40, np.logspace(0, -np.log10(cond), 40), seed=3)
    _, Rs, _ = _sign_fixed_scipy(A)
    for path in PATHS:
        Q, R, perm = cpqr(A, backend=path)
        np.testing.assert_allclose(Q.T @ Q, np.eye(40), atol=1e-13)
        assert np.linalg.norm(A[:, perm] - Q @ R) < 1e-14 * 60
        # The rank-revealing diagonal agrees with LAPACK's down to eps·‖A‖.
        np.testing.assert_allclose(np.diagonal(R), np.abs(np.diagonal(Rs)), atol=1e-14 * 60)


def test_torch_batched_matches_per_matrix(rng):
    A = torch.tensor(rng.standard_normal((3, 2, 12, 9)))
    out = cpqr(A, 5)
    assert out.Q.shape == (3, 2, 12, 5) and out.R.shape == (3, 2, 5, 9)
    for i in range(3):
        for j in range(2):
            ref = cpqr(A[i, j].numpy(), 5, backend="numpy")
            np.testing.assert_array_equal(out.perm[i, j].numpy(), ref.perm)
            np.testing.assert_allclose(out.R[i, j].numpy(), ref.R, atol=1e-12)
    rec = out.reconstruct()
    assert rec.shape == A.shape


def test_kinds_round_trip(rng):
    A = rng.standard_normal((8, 6))
    assert isinstance(cpqr(A, backend="torch").Q, np.ndarray)
    t = cpqr(torch.tensor(A), backend="numba")
    assert isinstance(t.Q, torch.Tensor) and t.Q.dtype == torch.float64


@pytest.mark.parametrize("bad, err, match", [
    (np.ones((3, 3), dtype=int), TypeError, "A must have a floating-point dtype"),
    (np.ones((3, 3), dtype=complex), TypeError, "A must be real"),
    (np.full((3, 3), np.nan), ValueError, "A contains NaN or Inf"),
    (np.ones((0, 3)), ValueError, "A must not be empty"),
    (np.ones(3), ValueError, "A must have 2 dimensions"),
])
def test_cpqr_bad_input(bad, err, match):
    with pytest.raises(err, match=match):
        cpqr(bad)


def test_cpqr_bad_rank_and_backend(rng):
    A = rng.standard_normal((5, 4))
    with pytest.raises(ValueError, match="rank=5 exceeds min"):
        cpqr(A, 5)
    with pytest.raises(ValueError, match="rank must be at least 1"):
        cpqr(A, rank=0)
    with pytest.raises(TypeError, match="rank must be an integer"):
        cpqr(A, 2.0)
    with pytest.raises(ValueError, match="backend must be one of"):
        cpqr(A, backend="cuda")


@given(matrices())
def test_householder_qr_defining_equations(case):
    A, _, dtype = case
    Q, R = householder_qr(A, backend="numpy")
    k = min(A.shape)
    assert Q.dtype == dtype and R.dtype == dtype
    assert Q.shape == (A.shape[0], k) and R.shape == (k, A.shape[1])
    np.testing.assert_allclose(Q.T @ Q, np.eye(k), atol=tol(dtype, 10))
    assert np.all(np.tril(R, -1) == 0)
    assert np.all(np.diagonal(R) >= 0)
    np.testing.assert_allclose(Q @ R, A, atol=tol(dtype, 10) * max(1, np.abs(A).max()))


@given(matrices(kinds=("random",), dtypes=(np.float64,)))
def test_householder_qr_matches_numpy_after_sign_fix(case):
    A, _, _ = case
    Q, R = householder_qr(A)
    Qn, Rn = np.linalg.qr(A)
    d = np.where(np.diagonal(Rn) < 0, -1.0, 1.0)
    np.testing.assert_allclose(R, d[:, None] * Rn, atol=1e-9)
    np.testing.assert_allclose(Q, Qn * d, atol=1e-8)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_householder_qr_torch_batched_parity(dtype):
    A = np.stack([make_matrix(7, 5, "random", s) for s in range(3)])
    T = torch.as_tensor(A, dtype=dtype)
    Q, R = householder_qr(T)
    assert Q.dtype == dtype and Q.shape == (3, 7, 5) and R.shape == (3, 5, 5)
    for b in range(3):
        Qn, Rn = householder_qr(A[b], backend="numpy")
        atol = 1e-10 if dtype == torch.float64 else 1e-4
        np.testing.assert_allclose(Q[b].numpy(), Qn, atol=atol)
        np.testing.assert_allclose(R[b].numpy(), Rn, atol=atol)


@pytest.mark.parametrize("bad, err", [
    (np.ones((3, 3), dtype=int), TypeError),
    (np.zeros((0, 3)), ValueError),
    (np.array([[1.0, np.nan], [0.0, 1.0]]), ValueError),
    (np.ones(4), ValueError),
])
def test_householder_qr_bad_input(bad, err):
    with pytest.raises(err, match="A"):
        householder_qr(bad)


@given(matrices(kinds=("random", "ill_conditioned")))
def test_householder_projector_is_idempotent(case):
    A, _, dtype = case
    Q = householder_qr(A).Q
    P = Q @ Q.T
    np.testing.assert_allclose(P @ P, P, atol=tol(dtype, 10))
    if A.shape[0] <= A.shape[1]:  # square Q: P = I
        np.testing.assert_allclose(P, np.eye(A.shape[0]), atol=tol(dtype, 10))


@pytest.mark.parametrize("call", [
    lambda A, backend: cpqr(A, backend=backend),
    lambda A, backend: householder_qr(A, backend=backend),
], ids=["cpqr", "householder_qr"])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_both_qrs_convert_the_same_way(call, backend, dtype, rng):
    # One conversion for both functions: NumPy in -> NumPy out, torch in -> torch out, the
    # floating factors in the input's dtype whichever path computed them; perm stays integer.
    A = rng.standard_normal((7, 5)).astype(dtype)
    out = call(A, backend)
    assert all(isinstance(f, np.ndarray) for f in out)
    assert out.Q.dtype == dtype and out.R.dtype == dtype
    T = torch.as_tensor(A)
    out_t = call(T, backend)
    assert all(isinstance(f, torch.Tensor) for f in out_t)
    assert out_t.Q.dtype == T.dtype and out_t.R.dtype == T.dtype
    np.testing.assert_allclose(out_t.R.numpy(), out.R, atol=tol(dtype, 10))
    np.testing.assert_allclose(out_t.reconstruct().numpy(), A, atol=tol(dtype, 10) * 10)
    if hasattr(out, "perm"):
        assert out.perm.dtype.kind == "i" and out_t.perm.dtype == torch.int64


def test_reconstruct_puts_the_columns_back(rng):
    A = rng.standard_normal((6, 6))
    res = cpqr(A, backend="numpy")
    assert not np.array_equal(res.perm, np.arange(6))  # a real permutation is undone
    np.testing.assert_allclose(res.reconstruct(), A, atol=1e-12)
    B = torch.as_tensor(rng.standard_normal((2, 6, 6)))
    torch.testing.assert_close(cpqr(B).reconstruct(), B, atol=1e-12, rtol=0)


@pytest.mark.gpu
def test_householder_qr_cuda_matches_cpu():
    A = torch_batch()
    Q, R = householder_qr(A.cuda())
    assert Q.device.type == "cuda"
    Qc, Rc = householder_qr(A)
    torch.testing.assert_close(Q.cpu(), Qc, atol=1e-10, rtol=0)
    torch.testing.assert_close(R.cpu(), Rc, atol=1e-10, rtol=0)


@pytest.mark.gpu
def test_cpqr_cuda_matches_cpu():
    A = torch_batch()
    out = cpqr(A.cuda(), 4)
    assert out.Q.device.type == "cuda" and out.perm.device.type == "cuda"
    ref = cpqr(A, 4)
    torch.testing.assert_close(out.perm.cpu(), ref.perm)
    torch.testing.assert_close(out.R.cpu(), ref.R, atol=1e-10, rtol=0)

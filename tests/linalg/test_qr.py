"""Householder QR (pivoted QR: test_cpqr.py)."""

import numpy as np
import pytest
import torch
from hypothesis import given
from linalg_strategies import make_matrix, matrices, tol

from refimpl.linalg import householder_qr


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


@pytest.mark.parametrize("fn", [householder_qr])
@pytest.mark.parametrize("bad, err", [
    (np.ones((3, 3), dtype=int), TypeError),
    (np.zeros((0, 3)), ValueError),
    (np.array([[1.0, np.nan], [0.0, 1.0]]), ValueError),
    (np.ones(4), ValueError),
])
def test_bad_input(fn, bad, err):
    with pytest.raises(err, match="A"):
        fn(bad)


@given(matrices(kinds=("random", "ill_conditioned")))
def test_householder_projector_is_idempotent(case):
    A, _, dtype = case
    Q = householder_qr(A).Q
    P = Q @ Q.T
    np.testing.assert_allclose(P @ P, P, atol=tol(dtype, 10))
    if A.shape[0] <= A.shape[1]:  # square Q: P = I
        np.testing.assert_allclose(P, np.eye(A.shape[0]), atol=tol(dtype, 10))

"""The truncated SVD and its result type (refimpl.linalg.svd): Eckart–Young–Mirsky."""

import numpy as np
import pytest
import torch
from hypothesis import given

from refimpl.linalg import TruncatedSVD, cpqr, jacobi_svd, truncated_svd

from .linalg_strategies import make_matrix, matrices, tol, torch_batch


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


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_rank_is_the_keyword_and_kinds_round_trip(backend, rng):
    A = rng.standard_normal((8, 5)).astype(np.float32)
    t = truncated_svd(A, rank=2, backend=backend)
    assert isinstance(t, TruncatedSVD) and all(isinstance(f, np.ndarray) for f in t)
    assert t.U.shape == (8, 2) and t.s.shape == (2,) and t.Vt.shape == (2, 5)
    assert t.tail.shape == (3,) and t.U.dtype == np.float32 and t.tail.dtype == np.float32
    tt = truncated_svd(torch.as_tensor(A), 2, backend=backend)
    assert all(isinstance(f, torch.Tensor) and f.dtype == torch.float32 for f in tt)


def test_every_svd_producer_gives_one_type_with_error_and_reconstruct(rng):
    A = rng.standard_normal((10, 7))
    best2 = np.linalg.norm(A - truncated_svd(A, 2, backend="numpy").reconstruct())
    for t, k in ((truncated_svd(A, 7), 7), (jacobi_svd(A), 7), (truncated_svd(A, 2), 2)):
        assert type(t) is TruncatedSVD and t.s.shape == (k,)
        err = np.linalg.norm(A - t.reconstruct())
        np.testing.assert_allclose(err, t.error(), atol=1e-12)
        np.testing.assert_allclose(err, 0.0 if k == 7 else best2, atol=1e-12)


def test_error_needs_the_tail(rng):
    t = truncated_svd(rng.standard_normal((5, 4)), 2)
    with pytest.raises(ValueError, match="ord"):
        t.error("nuc")
    with pytest.raises(ValueError, match="not known"):
        TruncatedSVD(t.U, t.s, t.Vt).error()


@pytest.mark.gpu
def test_truncated_svd_cuda():
    A = torch_batch()
    t = truncated_svd(A.cuda(), 3)
    assert t.U.device.type == "cuda"
    torch.testing.assert_close(t.error().cpu(), truncated_svd(A, 3).error(), atol=1e-10, rtol=0)

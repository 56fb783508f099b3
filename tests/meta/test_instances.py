"""The instances with orthonormal factors (CPQR, SVD, UTV/ULV) rebuilt from meta_factorize,
checked against NumPy/SciPy."""

import numpy as np
import pytest
import scipy.linalg
import torch

from refimpl.linalg import TruncatedSVD
from refimpl.matrices import geometric_spectrum, low_rank_matrix, matrix_with_spectrum
from refimpl.meta import cpqr_meta, svd_meta, ulv, utv

PATHS = ["numpy", "numba", "torch"]


def rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("path", PATHS)
def test_cpqr_meta_is_pivoted_qr(path, rng):
    A = rng.standard_normal((30, 20))
    Q, _, P = scipy.linalg.qr(A, pivoting=True, mode="economic")
    out = cpqr_meta(A, backend=path)
    np.testing.assert_array_equal(out.perm, P)
    # F G Hᵀ = Q R Pᵀ = A, with G the identity.
    np.testing.assert_allclose(out.meta.G, np.eye(20), atol=1e-12)
    assert rel(out.meta.reconstruct(), A) < 1e-14
    # Truncated: the rank-k pivoted-QR approximation Q_k R_k Pᵀ = Q_k Q_kᵀ A.
    k = 8
    tr = cpqr_meta(A, k, backend=path)
    Qk = Q[:, :k]
    np.testing.assert_allclose(tr.meta.reconstruct(), Qk @ Qk.T @ A, atol=1e-12)


@pytest.mark.parametrize("path", PATHS)
def test_svd_meta_equals_lapack_svd(path):
    A = matrix_with_spectrum(40, 25, geometric_spectrum(25, 1e6), seed=2)
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    out = svd_meta(A, backend=path)
    np.testing.assert_allclose(out.s, s, rtol=0, atol=1e-13 * s[0])
    signs = np.sign(np.sum(out.U * U, axis=0))
    np.testing.assert_allclose(out.U * signs, U, atol=1e-8)  # gaps ≥ 1.7 between s_i
    np.testing.assert_allclose(out.Vt * signs[:, None], Vt, atol=1e-8)
    assert rel(out.reconstruct(), A) < 1e-13


def test_svd_meta_truncated_is_close_to_but_not_optimal():
    A = matrix_with_spectrum(60, 40, geometric_spectrum(40, 1e4), seed=3)
    s = np.linalg.svd(A, compute_uv=False)
    k = 10
    opt = np.sqrt(np.sum(s[k:] ** 2))
    err = np.linalg.norm(svd_meta(A, k).reconstruct() - A)
    assert opt <= err < 3 * opt


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fn, lower", [(utv, False), (ulv, True)])
def test_utv_ulv(fn, lower, path):
    A = low_rank_matrix(35, 28, 9, cond=1e3, seed=4)
    out = fn(A, 9, backend=path)
    T = out.T
    off = np.triu(T, 1) if lower else np.tril(T, -1)
    np.testing.assert_array_equal(off, 0)
    # The triangular factor was computed by the reconstruction equation, not assumed:
    # the discarded part of G = Fᵀ A H is rounding only.
    G = out.meta.G
    assert np.abs(np.triu(G, 1) if lower else np.tril(G, -1)).max() < 1e-13
    np.testing.assert_allclose(out.U.T @ out.U, np.eye(9), atol=1e-13)
    np.testing.assert_allclose(out.V.T @ out.V, np.eye(9), atol=1e-13)
    assert rel(out.reconstruct(), A) < 1e-13
    np.testing.assert_allclose(np.linalg.svd(T, compute_uv=False),
                               np.linalg.svd(A, compute_uv=False)[:9], rtol=1e-11)


def test_svd_meta_svd_part_is_a_truncated_svd(rng):
    A = rng.standard_normal((12, 9))
    out = svd_meta(A, 4)
    part = out.svd
    assert isinstance(part, TruncatedSVD) and part.tail is None
    np.testing.assert_array_equal(part.U, out.U)
    np.testing.assert_array_equal(part.reconstruct(), out.reconstruct())


def test_torch_batched_instances(rng):
    A = torch.tensor(np.stack([low_rank_matrix(20, 15, 5, seed=i) for i in range(3)]))
    for fn in (cpqr_meta, svd_meta, utv, ulv):
        out = fn(A, 5)
        assert out.meta.G.shape == (3, 5, 5)
        assert float((out.meta.reconstruct() - A).norm() / A.norm()) < 1e-12


def test_torch_float32(rng):
    A = torch.tensor(low_rank_matrix(20, 16, 4, seed=1), dtype=torch.float32)
    out = svd_meta(A, 4)
    assert out.U.dtype == torch.float32
    assert float((out.reconstruct() - A).norm() / A.norm()) < 1e-5


def test_bad_input(rng):
    A = rng.standard_normal((6, 5))
    with pytest.raises(ValueError, match="rank=6 exceeds"):
        svd_meta(A, 6)
    with pytest.raises(ValueError, match="rank=6 exceeds"):
        cpqr_meta(A, rank=6)
    with pytest.raises(ValueError, match="backend must be one of"):
        utv(A, 2, backend="jax")

"""The nearest-Kronecker-product SVD (refimpl.tensor.kronecker): exact recovery of a Kronecker
product, optimality of the truncation, both array kinds."""

import numpy as np
import pytest
import torch

from refimpl import tensor


def test_kron_svd_is_exact_at_full_rank_and_optimal_truncated():
    g = torch.Generator().manual_seed(0)
    A, B = torch.randn(3, 4, generator=g), torch.randn(5, 2, generator=g)
    W = torch.kron(A, B) + 0.01 * torch.randn(15, 8, generator=g)
    full = tensor.kron_svd(W, 3, 4)
    torch.testing.assert_close(full.reconstruct(), W, rtol=1e-5, atol=1e-5)
    one = tensor.kron_svd(W, 3, 4, 1)
    err = (W - one.reconstruct()).norm()
    assert err <= (W - torch.kron(A, B)).norm() + 1e-6  # nearest single Kronecker product
    torch.testing.assert_close(err.square(), full.s[1:].square().sum(), rtol=1e-4, atol=1e-6)
    assert tensor.kron_shape(20) == (4, 5) and tensor.kron_shape(13) == (1, 13)
    with pytest.raises(ValueError, match="divide"):
        tensor.kron_svd(W, 4, 4)


def test_an_exact_kronecker_product_is_recovered():
    rng = np.random.default_rng(1)
    A, B = rng.standard_normal((3, 2)), rng.standard_normal((4, 5))
    W = np.kron(A, B)
    k = tensor.kron_svd(W, 3, 2, rank=1)
    assert isinstance(k.A, np.ndarray) and k.A.shape == (1, 3, 2) and k.B.shape == (1, 4, 5)
    np.testing.assert_allclose(k.s[0], np.linalg.norm(A) * np.linalg.norm(B))
    np.testing.assert_allclose(k.reconstruct(), W, atol=1e-12)
    # the factors are A and B up to a scale and a common sign
    a = k.A[0] * np.sign(k.A[0, 0, 0] * A[0, 0])
    np.testing.assert_allclose(a, A / np.linalg.norm(A), atol=1e-12)
    full = tensor.kron_svd(W, 3, 2)
    np.testing.assert_allclose(full.s[1:], 0, atol=1e-12)
    np.testing.assert_allclose(tensor.kron_sum(full.s[:, None, None] * full.A, full.B), W,
                               atol=1e-12)


def test_kinds_dtypes_and_bad_input():
    W = np.random.default_rng(2).standard_normal((6, 8)).astype(np.float32)
    k = tensor.kron_svd(W, 2, 4)
    assert k.s.dtype == np.float32 and isinstance(k.s, np.ndarray)
    t = tensor.kron_svd(torch.from_numpy(W), 2, 4)
    assert t.s.dtype == torch.float32
    np.testing.assert_allclose(t.s.numpy(), k.s, rtol=1e-5)
    with pytest.raises(ValueError, match="rank=9 exceeds"):
        tensor.kron_svd(W, 2, 4, 9)
    with pytest.raises(ValueError, match="m1"):
        tensor.kron_svd(W, 0, 4)
    with pytest.raises(TypeError, match="floating"):
        tensor.kron_svd(np.ones((6, 8), dtype=int), 2, 4)
    with pytest.raises(ValueError, match="n must be at least 1"):
        tensor.kron_shape(0)

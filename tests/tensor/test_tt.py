"""The MPO / TT-SVD of a matrix (refimpl.tensor.tt): exact at full bond, the TT-SVD error
bound, the Kronecker special case, both array kinds."""

import numpy as np
import pytest
import torch

from refimpl import tensor


def test_mpo_decomposition_exact_truncated_and_kronecker():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(20, 12, generator=g, dtype=torch.float64)
    assert tensor.mpo_modes(20, 2) == (5, 4) and tensor.mpo_modes(12, 3) == (3, 2, 2)
    assert tensor.mpo_modes(7, 3) == (7, 1, 1)
    for n in (2, 3):
        mpo = tensor.mpo_decompose(W, tensor.mpo_modes(20, n), tensor.mpo_modes(12, n))
        torch.testing.assert_close(mpo.reconstruct(), W)
    # two cores with bond k: the nearest sum of k Kronecker products (Van Loan–Pitsianis)
    mpo = tensor.mpo_decompose(W, (5, 4), (4, 3), bond=2)
    torch.testing.assert_close(mpo.reconstruct(), tensor.kron_svd(W, 5, 4, 2).reconstruct())
    # three cores: the error obeys the TT-SVD bound
    mpo = tensor.mpo_decompose(W, (5, 2, 2), (3, 2, 2), bond=3)
    err = torch.dist(mpo.reconstruct(), W)
    T = W.reshape(5, 2, 2, 3, 2, 2).permute(0, 3, 1, 4, 2, 5)  # (o₁, i₁, o₂, i₂, o₃, i₃)
    bound = sum(torch.linalg.svdvals(T.reshape(rows, -1))[3:].square().sum() for rows in (15, 60))
    assert 0 < err <= bound.sqrt() + 1e-9
    with pytest.raises(ValueError, match="multiply"):
        tensor.mpo_decompose(W, (5, 4), (3, 3))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_in_numpy_out_and_cores_left_orthonormal(dtype):
    W = np.random.default_rng(0).standard_normal((24, 18)).astype(dtype)
    mpo = tensor.mpo_decompose(W, (4, 3, 2), (3, 3, 2))
    assert all(isinstance(c, np.ndarray) and c.dtype == dtype for c in mpo.cores)
    assert [c.shape[0] for c in mpo.cores] == [1, 12, 4]  # exact bonds: min(12, 36), min(108, 4)
    np.testing.assert_allclose(mpo.reconstruct(), W, atol=1e-4 if dtype == np.float32 else 1e-12)
    for c in mpo.cores[:-1]:  # left-orthonormal except the last
        M = c.reshape(-1, c.shape[-1])
        np.testing.assert_allclose(M.T @ M, np.eye(M.shape[1]), atol=1e-5)
    t = tensor.mpo_decompose(torch.from_numpy(W), (4, 3, 2), (3, 3, 2))
    for a, b in zip(mpo.cores, t.cores, strict=True):
        assert b.dtype == torch.from_numpy(W).dtype
        np.testing.assert_allclose(np.abs(a), np.abs(b.numpy()), atol=1e-4)


def test_low_precision_and_bad_input():
    W = torch.randn(8, 6, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    mpo = tensor.mpo_decompose(W, (4, 2), (3, 2))
    assert all(c.dtype == torch.bfloat16 for c in mpo.cores)
    torch.testing.assert_close(mpo.reconstruct().float(), W.float(), rtol=0.05, atol=0.05)
    with pytest.raises(ValueError, match="bond"):
        tensor.mpo_decompose(W, (4, 2), (3, 2), bond=0)
    with pytest.raises(TypeError, match="out_modes"):
        tensor.mpo_decompose(W, 8, (3, 2))
    with pytest.raises(ValueError, match="W must have 2 dimensions"):
        tensor.mpo_decompose(torch.ones(2, 4, 3), (4,), (3,))
    with pytest.raises(ValueError, match="NaN"):
        tensor.mpo_decompose(np.full((4, 3), np.nan), (4,), (3,))
    for bad in (0, 2.5):
        with pytest.raises((TypeError, ValueError), match="n"):
            tensor.mpo_modes(12, bad)
    assert tensor.mpo_modes(12, 100) == (3, 2, 2) + (1,) * 97  # no ad hoc limit on n

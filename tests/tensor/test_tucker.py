"""Tucker-2 of a stack of matrices (refimpl.tensor.tucker): exact at full ranks, the HOSVD error
bound, both array kinds."""

import numpy as np
import pytest
import torch

from refimpl import tensor


def _stack(L=4, m=6, n=5, seed=0):
    return np.random.default_rng(seed).standard_normal((L, m, n))


def test_full_ranks_are_exact_and_factors_orthonormal():
    X = _stack()
    t = tensor.tucker2(X, (6, 5))
    assert t.U.shape == (6, 6) and t.core.shape == (4, 6, 5) and t.V.shape == (5, 5)
    np.testing.assert_allclose(t.reconstruct(), X, atol=1e-12)
    np.testing.assert_allclose(t.U.T @ t.U, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(t.V.T @ t.V, np.eye(5), atol=1e-12)


def test_a_tucker2_stack_is_recovered_and_truncation_obeys_the_bound():
    rng = np.random.default_rng(1)
    U, V = rng.standard_normal((7, 2)), rng.standard_normal((6, 3))
    G = rng.standard_normal((5, 2, 3))
    X = tensor.Tucker2(U, G, V).reconstruct()
    np.testing.assert_allclose(tensor.tucker2(X, (2, 3)).reconstruct(), X, atol=1e-10)
    Y = _stack(5, 7, 6, seed=2)
    fit = tensor.tucker2(Y, 2)
    err2 = np.linalg.norm(Y - fit.reconstruct()) ** 2
    s1 = np.linalg.svd(Y.transpose(1, 0, 2).reshape(7, -1), compute_uv=False)
    s2 = np.linalg.svd(Y.transpose(2, 0, 1).reshape(6, -1), compute_uv=False)
    assert err2 <= (s1[2:] ** 2).sum() + (s2[2:] ** 2).sum() + 1e-9


def test_torch_path_and_bad_input():
    X = _stack()
    t = tensor.tucker2(torch.tensor(X, dtype=torch.float32), (3, 2))
    n = tensor.tucker2(X.astype(np.float32), (3, 2))
    assert t.core.dtype == torch.float32 and n.core.dtype == np.float32
    np.testing.assert_allclose(t.reconstruct().numpy(), n.reconstruct(), atol=1e-4)
    with pytest.raises(ValueError, match=r"rank\[0\]=7 exceeds"):
        tensor.tucker2(X, (7, 2))
    with pytest.raises(ValueError, match="rank=6 exceeds"):
        tensor.tucker2(X, 6)
    with pytest.raises(ValueError, match="X must have 3 dimensions"):
        tensor.tucker2(X[0], 2)
    with pytest.raises(TypeError, match="rank"):
        tensor.tucker2(X, 2.0)

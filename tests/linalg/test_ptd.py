"""Perturb-then-diagonalize (refimpl.linalg.ptd, Yu et al.)."""

import numpy as np
import pytest
import torch

from refimpl.linalg import perturb_then_diagonalize


def _hippo_legs(N):
    r = np.sqrt(2 * np.arange(N) + 1)
    return -np.tril(np.outer(r, r), -1) - np.diag(np.arange(N) + 1.0)


def test_perturb_then_diagonalize_is_backward_stable_where_eig_is_not():
    A = _hippo_legs(48)
    exact = perturb_then_diagonalize(A, 0.0)
    rel = lambda F: np.linalg.norm(A - F.reconstruct(), 2) / np.linalg.norm(A, 2)  # noqa: E731
    assert rel(exact) > 1.0  # the exact eigenbasis is useless in floating point
    for eps in (1e-8, 1e-4):
        ptd = perturb_then_diagonalize(A, eps, seed=0)
        assert rel(ptd) < 10 * eps
        assert np.linalg.cond(ptd.V) < 1e3 / eps
    with pytest.raises(ValueError, match="eps"):
        perturb_then_diagonalize(A, 1.5)
    with pytest.raises(ValueError, match="square"):
        perturb_then_diagonalize(np.ones((2, 3)))
    with pytest.raises(TypeError, match="eps"):
        perturb_then_diagonalize(A, "small")


def test_torch_in_torch_out():
    A = _hippo_legs(6)
    ref = perturb_then_diagonalize(A, 1e-8, seed=0)
    out = perturb_then_diagonalize(torch.as_tensor(A), 1e-8, seed=0)
    assert isinstance(out.w, torch.Tensor) and isinstance(out.V, torch.Tensor)
    np.testing.assert_allclose(out.w.numpy(), ref.w)
    np.testing.assert_allclose(out.reconstruct().numpy(), ref.reconstruct())

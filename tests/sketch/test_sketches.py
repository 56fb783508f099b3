"""Gaussian, SRHT and CountSketch: subspace embedding in expectation, paths, fast WHT."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from refimpl.sketch import countsketch, fwht, gaussian_sketch, srht

SKETCHES = [gaussian_sketch, srht, countsketch]


def _hadamard(m):
    H = np.array([[1.0]])
    while H.shape[0] < m:
        H = np.block([[H, H], [H, -H]])
    return H


@given(p=st.integers(0, 7), n=st.integers(1, 4), seed=st.integers(0, 1000))
def test_fwht_matches_dense_hadamard(p, n, seed):
    X = np.random.default_rng(seed).standard_normal((2**p, n))
    H = _hadamard(2**p)
    for backend in ("numpy", "numba", "torch"):
        np.testing.assert_allclose(fwht(X, backend=backend), H @ X, atol=1e-10)
    np.testing.assert_allclose(fwht(fwht(X)), 2**p * X, atol=1e-9)  # H H = m I


@pytest.mark.parametrize("sketch", SKETCHES)
def test_norms_preserved_in_expectation(rng, sketch):
    # E ||S A x||^2 = ||A x||^2 for all three: the mean over 200 seeds of ||S A||_F^2 must be
    # within 5 standard errors of ||A||_F^2.
    A = rng.standard_normal((100, 4))
    vals = np.array([np.linalg.norm(sketch(A, 16, seed=s)) ** 2 for s in range(200)])
    se = vals.std() / np.sqrt(vals.size)
    assert abs(vals.mean() - np.linalg.norm(A) ** 2) < 5 * se


@pytest.mark.parametrize("sketch", SKETCHES)
def test_subspace_embedding(rng, sketch):
    # With d = 40 k rows the singular values of S U (U an orthonormal m×k basis) lie in
    # [1 - 0.5, 1 + 0.5] for every one of 10 seeds (JL-type distortion ~ sqrt(k/d)).
    U = np.linalg.qr(rng.standard_normal((512, 5)))[0]
    for seed in range(10):
        sv = np.linalg.svd(sketch(U, 200, seed=seed), compute_uv=False)
        assert 0.5 < sv.min() and sv.max() < 1.5


@pytest.mark.parametrize("sketch", [srht, countsketch])
def test_paths_agree(rng, sketch):
    A = rng.standard_normal((37, 6))
    ref = sketch(A, 12, seed=2, backend="numpy")
    np.testing.assert_allclose(sketch(A, 12, seed=2, backend="numba"), ref, atol=1e-12)
    out_t = sketch(torch.tensor(A), 12, seed=2)
    assert isinstance(out_t, torch.Tensor)
    np.testing.assert_allclose(out_t.numpy(), ref, atol=1e-12)
    batch = sketch(torch.tensor(np.stack([A, 2 * A])), 12, seed=2)
    np.testing.assert_allclose(batch[1].numpy(), 2 * ref, atol=1e-12)


def test_gaussian_paths_agree(rng):
    A = rng.standard_normal((30, 4))
    np.testing.assert_allclose(gaussian_sketch(torch.tensor(A), 9, seed=1).numpy(),
                               gaussian_sketch(A, 9, seed=1), atol=1e-12)


def test_countsketch_structure(rng):
    # Each row of A lands, with sign ±1, in exactly one bucket: S A for A = I is S itself.
    S = countsketch(np.eye(50), 7, seed=0)
    assert S.shape == (7, 50)
    np.testing.assert_array_equal(np.abs(S).sum(axis=0), np.ones(50))
    assert set(np.unique(S)) <= {-1.0, 0.0, 1.0}


def test_srht_orthogonal_when_d_equals_padded_size(rng):
    # d = 2^p: S = H D / sqrt(d) is orthogonal, so ||S A||_F = ||A||_F exactly.
    A = rng.standard_normal((64, 3))
    np.testing.assert_allclose(np.linalg.norm(srht(A, 64, seed=0)), np.linalg.norm(A))


def test_reproducible(rng):
    A = rng.standard_normal((20, 3))
    for sk in SKETCHES:
        np.testing.assert_array_equal(sk(A, 5, seed=7), sk(A, 5, seed=7))
        assert not np.allclose(sk(A, 5, seed=7), sk(A, 5, seed=8))


def test_float32(rng):
    A = rng.standard_normal((33, 3)).astype(np.float32)
    for sk in SKETCHES:
        assert sk(A, 8, seed=0).dtype == np.float32


def test_bad_inputs():
    A = np.ones((10, 3))
    with pytest.raises(ValueError, match="d must be at least 1"):
        srht(A, 0)
    with pytest.raises(ValueError, match="exceeds the padded row count"):
        srht(A, 17)
    with pytest.raises(TypeError, match="d must be an integer"):
        countsketch(A, 2.5)
    with pytest.raises(ValueError, match="power-of-two"):
        fwht(np.ones((6, 2)))
    with pytest.raises(TypeError, match="floating-point"):
        gaussian_sketch(np.ones((4, 4), dtype=int), 2)
    with pytest.raises(ValueError, match="not implemented"):
        gaussian_sketch(A, 2, backend="numba")

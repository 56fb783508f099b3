"""The interpolatory and sketched instances (generalized Nyström, CUR) and the Moore–Penrose
pseudoinverse rebuilt from meta_factorize, checked against NumPy."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from refimpl.matrices import geometric_spectrum, low_rank_matrix, matrix_with_spectrum
from refimpl.meta import cur, generalized_nystrom, pinv_meta

PATHS = ["numpy", "numba", "torch"]


def rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def test_nystrom_equals_its_formula_and_is_exact_at_rank(rng):
    A = rng.standard_normal((30, 8)) @ rng.standard_normal((8, 25))
    out = generalized_nystrom(A, 8, seed=7)
    g = np.random.default_rng(7)
    Om, Ps = g.standard_normal((25, 8)), g.standard_normal((30, 12))
    direct = A @ Om @ np.linalg.pinv(Ps.T @ A @ Om) @ Ps.T @ A
    np.testing.assert_allclose(out.reconstruct(), direct, atol=1e-10)
    np.testing.assert_allclose(out.meta.reconstruct(), direct, atol=1e-10)
    np.testing.assert_allclose(out.meta.G, out.core, atol=1e-10 * np.abs(out.core).max())
    assert rel(out.reconstruct(), A) < 1e-12


@pytest.mark.parametrize("k", [1, 2, 5, 8, 9])
def test_nystrom_default_oversample_is_half_the_rank(rng, k):
    # The default oversample=ceil(k/2) reproduces the former ratio 1.5: l = ceil(1.5 k)
    # rows in the left sketch (clipped to m); an explicit oversample gives l = k + oversample.
    A = rng.standard_normal((30, 12))
    out = generalized_nystrom(A, k, seed=1)
    assert out.PsiA.shape[0] == min(30, int(np.ceil(1.5 * k)))
    same = generalized_nystrom(A, k, oversample=int(np.ceil(k / 2)), seed=1)
    np.testing.assert_array_equal(same.reconstruct(), out.reconstruct())
    assert generalized_nystrom(A, k, oversample=0, seed=1).PsiA.shape[0] == k
    assert generalized_nystrom(A, k, oversample=100, seed=1).PsiA.shape[0] == 30


def test_nystrom_error_is_near_optimal_on_average():
    # Statistical check over seeds: with the default oversampling (l = 1.5 k) the mean error is
    # within a small factor of the truncated SVD's (Nakatsukasa 2020, section 3).
    s = geometric_spectrum(60, 1e6)
    A = matrix_with_spectrum(120, 80, s, seed=8)
    k = 15
    opt = np.sqrt(np.sum(s[k:] ** 2))
    errs = [np.linalg.norm(generalized_nystrom(A, k, seed=i).reconstruct() - A)
            for i in range(10)]
    assert np.mean(errs) < 5 * opt


@pytest.mark.parametrize("path", PATHS)
def test_cur_optimal_and_skeleton(path):
    A = low_rank_matrix(40, 30, 6, cond=100, seed=9)
    opt = cur(A, 6, backend=path)
    np.testing.assert_allclose(opt.U, np.linalg.pinv(opt.C) @ A @ np.linalg.pinv(opt.R),
                               atol=1e-10 * np.abs(opt.U).max())
    assert rel(opt.reconstruct(), A) < 1e-11
    sk = cur(A, 6, u="skeleton", backend=path)
    core = A[np.ix_(sk.rows, sk.cols)]
    np.testing.assert_allclose(sk.U, np.linalg.inv(core), rtol=1e-9)
    # The skeleton interpolates A on the chosen rows and columns exactly.
    B = A + 1e-3 * np.random.default_rng(0).standard_normal(A.shape)
    sk2 = cur(B, 6, u="skeleton", backend=path)
    rec = sk2.reconstruct()
    np.testing.assert_allclose(rec[sk2.rows], B[sk2.rows], atol=1e-10)
    np.testing.assert_allclose(rec[:, sk2.cols], B[:, sk2.cols], atol=1e-10)


def test_cur_given_indices_and_optimality(rng):
    A = rng.standard_normal((20, 15))
    rows, cols = np.array([0, 3, 5, 9]), np.array([1, 2, 7, 11])
    out = cur(A, 4, rows=rows, cols=cols)
    np.testing.assert_array_equal(out.rows, rows)
    # U = C⁺AR⁺ minimises ‖A − C U R‖_F: any perturbation of U does worse.
    base = np.linalg.norm(out.reconstruct() - A)
    for _ in range(5):
        Up = out.U + 1e-3 * rng.standard_normal(out.U.shape)
        assert np.linalg.norm(out.C @ Up @ out.R - A) > base


@given(m=st.integers(2, 20), n=st.integers(2, 20), r=st.integers(1, 5),
       seed=st.integers(0, 2**32 - 1), path=st.sampled_from(PATHS))
def test_pinv_meta_matches_numpy(m, n, r, seed, path):
    r = min(r, m, n)
    A = low_rank_matrix(m, n, r, cond=100, seed=seed)
    out = pinv_meta(A, backend=path)
    assert out.rank == r
    np.testing.assert_allclose(out.pinv, np.linalg.pinv(A, rcond=1e-10), atol=1e-9 * 100)
    np.testing.assert_allclose(out.meta.G, np.eye(r), atol=1e-10)


def test_torch_batched_skeletons(rng):
    A = torch.tensor(np.stack([low_rank_matrix(20, 15, 5, seed=i) for i in range(3)]))
    for u in ("optimal", "skeleton"):
        out = cur(A, 5, u=u)
        assert out.rows.shape == (3, 5)
        assert float((out.reconstruct() - A).norm() / A.norm()) < 1e-10
        for i in range(3):
            ref = cur(A[i].numpy(), 5, u=u)
            np.testing.assert_allclose(out.U[i].numpy(), ref.U, atol=1e-8)
    ny = generalized_nystrom(A, 5, seed=0)
    assert float((ny.reconstruct() - A).norm() / A.norm()) < 1e-10
    pv = pinv_meta(A)
    np.testing.assert_allclose(pv.pinv.numpy(), np.linalg.pinv(A.numpy()), atol=1e-10)


def test_bad_input(rng):
    A = rng.standard_normal((6, 5))
    with pytest.raises(ValueError, match=r"u must be one of \('optimal', 'skeleton'\)"):
        cur(A, 2, u="best")
    with pytest.raises(ValueError, match="rows must hold 2 integer indices"):
        cur(A, 2, rows=[0, 1, 2])
    with pytest.raises(ValueError, match="cols must not repeat"):
        cur(A, 2, cols=[1, 1])
    with pytest.raises(ValueError, match=r"rows must index 0\.\.5"):
        cur(A, 2, rows=[0, 9])
    with pytest.raises(ValueError, match="oversample must be at least 0"):
        generalized_nystrom(A, 2, oversample=-1)
    with pytest.raises(TypeError, match="oversample must be an integer"):
        generalized_nystrom(A, 2, oversample=1.5)
    with pytest.raises(ValueError, match="rcond"):
        generalized_nystrom(A, 2, rcond=-1.0)
    with pytest.raises(ValueError, match="rtol"):
        pinv_meta(A, rtol=float("nan"))

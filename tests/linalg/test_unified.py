"""The unified pivoted loop: Jacobi, Gram–Schmidt and Cholesky with uniformly random pivots."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl.linalg import TruncatedSVD, potential, unified_pivoted
from refimpl.results import Info

from .linalg_strategies import make_matrix, make_spd


def test_potential_is_zero_exactly_for_diagonal():
    assert potential(np.diag([1.0, 5.0, 2.0])) == pytest.approx(0.0, abs=1e-14)
    B = make_spd(5, 10.0, 1)
    assert potential(B) > 0.01
    D = np.diag([1.0, 3.0, 0.5, 2.0, 7.0])
    assert potential(D @ B @ D) == pytest.approx(potential(B), rel=1e-10)


@settings(max_examples=10)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 8), block=st.integers(2, 4))
def test_each_kind_is_its_factorization(seed, n, block):
    block = min(block, n)
    A = make_matrix(n + 3, n, "random", seed)
    B = A.T @ A
    runs = [unified_pivoted(X, kind, block=block, seed=seed, return_info=True)
            for X, kind in ((A, "jacobi_svd"), (A, "gram_schmidt"), (B, "jacobi_eigh"),
                            (B, "cholesky"))]
    for _, info in runs:
        assert info.converged and info.errors == ()
    svd, qr, eig, chol = (res for res, _ in runs)
    assert isinstance(svd.factors, TruncatedSVD) and svd.factors.tail.shape == (0,)
    c = np.linalg.cond(A)
    np.testing.assert_allclose(svd.factors.s, np.linalg.svd(A, compute_uv=False), rtol=1e-10)
    np.testing.assert_allclose(svd.factors.reconstruct(), A, atol=1e-10)
    Q, R = qr.factors
    Rn = np.linalg.qr(A)[1]
    d = np.sign(np.diagonal(Rn))
    np.testing.assert_allclose(R, d[:, None] * Rn, atol=1e-9 * c)
    np.testing.assert_allclose(Q.T @ Q, np.eye(n), atol=1e-9 * c)
    assert np.all(np.tril(R, -1) == 0)
    np.testing.assert_allclose(eig.factors.w, np.linalg.eigvalsh(B), atol=1e-9 * c**2)
    np.testing.assert_allclose(chol.factors.L, np.linalg.cholesky(B), atol=1e-9 * c**2)


def test_same_pivots_give_the_same_potential_for_both_sides():
    # One-sided on A and two-sided on B = A^T A follow the same Gram matrix, step by step.
    A = make_matrix(9, 6, "random", 7)
    for one, two in (("jacobi_svd", "jacobi_eigh"), ("gram_schmidt", "cholesky")):
        _, a = unified_pivoted(A, one, seed=3, track=True, max_steps=40, return_info=True)
        _, b = unified_pivoted(A.T @ A, two, seed=3, track=True, max_steps=40,
                               return_info=True)
        np.testing.assert_allclose(a.errors, b.errors, rtol=1e-8, atol=1e-12)


def test_linear_convergence_of_the_potential():
    A = make_matrix(20, 10, "random", 0)
    _, info = unified_pivoted(A, "jacobi_svd", seed=1, track=True, max_steps=400,
                              return_info=True)
    g = np.asarray(info.errors[:300])
    g = g[g > 1e-12]
    rate = np.exp(np.polyfit(np.arange(len(g)), np.log(g), 1)[0])
    assert 0.5 < rate < 0.999  # geometric decrease, neither stalled nor superlinear-only


def test_bad_input():
    A = make_matrix(6, 4, "random", 0)
    with pytest.raises(ValueError, match="kind"):
        unified_pivoted(A, "lu")
    with pytest.raises(ValueError, match="m >= n"):
        unified_pivoted(A.T, "gram_schmidt")
    with pytest.raises(ValueError, match="full column rank"):
        unified_pivoted(make_matrix(6, 4, "rank_deficient", 0), "jacobi_svd")
    with pytest.raises(ValueError, match="symmetric"):
        unified_pivoted(make_matrix(4, 4, "random", 0), "jacobi_eigh")
    with pytest.raises(ValueError, match="positive definite"):
        unified_pivoted(np.diag([1.0, -1.0]), "cholesky")
    with pytest.raises(ValueError, match="block"):
        unified_pivoted(A, block=5)
    with pytest.raises(ValueError, match="block must be at least 2"):
        unified_pivoted(A, block=1)
    with pytest.raises(ValueError, match="max_steps"):
        unified_pivoted(A, max_steps=0)
    with pytest.raises(ValueError, match="return_info"):
        unified_pivoted(A, track=True)
    with pytest.raises(ValueError, match="square"):
        potential(np.ones((2, 3)))
    with pytest.raises(TypeError, match="seed"):
        unified_pivoted(A, seed=1.5)


def test_info_counts_the_steps_and_traces_the_potential():
    A = make_matrix(9, 5, "random", 2)
    res, info = unified_pivoted(A, "jacobi_svd", seed=0, track=True, return_info=True)
    assert isinstance(info, Info) and info.converged
    assert len(info.errors) == info.n_iter and info.n_iter % 10 == 0  # checked every n(n-1)/2
    # errors[k] = Γ(B) after step k, for B = (A T)ᵀ (A T) as the loop leaves it.
    X = res.factors.U * res.factors.s
    assert info.errors[-1] == pytest.approx(potential(X.T @ X), abs=1e-12)
    assert info.errors[-1] < 1e-20 < info.errors[0]
    # The same seed without tracking takes the same steps to the same factors.
    res2, info2 = unified_pivoted(A, "jacobi_svd", seed=0, return_info=True)
    assert info2 == Info(info.n_iter, True, ())
    np.testing.assert_array_equal(res2.T, res.T)
    _, short = unified_pivoted(A, "jacobi_svd", seed=0, max_steps=7, return_info=True)
    assert short == Info(7, False, ())


def test_torch_in_torch_out():
    import torch

    B = torch.as_tensor(make_spd(5, 10.0, 1))
    res = unified_pivoted(B, "cholesky", seed=0)
    assert isinstance(res.factors.L, torch.Tensor) and isinstance(res.T, torch.Tensor)
    torch.testing.assert_close(res.factors.reconstruct(), B)

"""Hidden projectors of LU, QR, SVD and CUR; linear matrix equations solved with them."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from refimpl.matrices import low_rank_matrix
from refimpl.meta import generalized_inverse, hidden_projectors, solve_matrix_equation

KINDS = ["svd", "qr", "lu", "cur"]


@given(m=st.integers(3, 18), n=st.integers(3, 18), r=st.integers(1, 4),
       seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["svd", "qr", "cur"]))
def test_projector_properties_low_rank(m, n, r, seed, kind):
    r = min(r, m, n)
    A = low_rank_matrix(m, n, r, cond=50, seed=seed)
    hp = hidden_projectors(A, kind)
    scale = max(1.0, np.linalg.norm(hp.col, 2), np.linalg.norm(hp.row, 2))
    np.testing.assert_allclose(hp.col @ hp.col, hp.col, atol=1e-9 * scale**2)
    np.testing.assert_allclose(hp.row @ hp.row, hp.row, atol=1e-9 * scale**2)
    np.testing.assert_allclose(hp.col @ hp.F, hp.F, atol=1e-9 * scale * np.abs(hp.F).max())
    np.testing.assert_allclose(hp.H.T @ hp.row, hp.H.T, atol=1e-9 * scale * np.abs(hp.H).max())
    # The projectors keep A (its ranges lie in theirs) and A⁻ is a generalized inverse.
    np.testing.assert_allclose(hp.apply(A), A, atol=1e-9 * scale**2)
    Ag = hp.ginv()
    np.testing.assert_allclose(A @ Ag @ A, A, atol=1e-8 * scale**2)
    np.testing.assert_allclose(A @ Ag, hp.col, atol=1e-8 * scale**2)
    np.testing.assert_allclose(Ag @ A, hp.row, atol=1e-8 * scale**2)


@pytest.mark.parametrize("kind", ["svd", "qr"])
def test_orthogonal_kinds_give_moore_penrose(kind, rng):
    A = low_rank_matrix(12, 9, 4, seed=1)
    hp = hidden_projectors(A, kind)
    np.testing.assert_allclose(hp.col, hp.col.T, atol=1e-12)
    np.testing.assert_allclose(generalized_inverse(A, kind), np.linalg.pinv(A, rcond=1e-10),
                               atol=1e-10)


def test_lu_projectors_of_square_matrix_give_inverse(rng):
    A = rng.standard_normal((7, 7))
    hp = hidden_projectors(A, "lu")
    np.testing.assert_allclose(hp.col, np.eye(7), atol=1e-12)
    np.testing.assert_allclose(hp.ginv(), np.linalg.inv(A), atol=1e-10)


def test_lu_and_cur_projectors_are_oblique(rng):
    A = rng.standard_normal((10, 3)) @ rng.standard_normal((3, 8))
    for kind in ("lu", "cur"):
        hp = hidden_projectors(A, kind, 3)
        assert np.abs(hp.col - hp.col.T).max() > 1e-3  # oblique, not orthogonal
        np.testing.assert_allclose(hp.apply(A), A, atol=1e-10)
        # Oblique generalized inverses only read the pivot rows: Bᵀ selects them.
        assert np.count_nonzero(np.abs(hp.ginv()).sum(axis=0) > 1e-14) == 3


def test_lu_singular_pivot_block_raises(rng):
    A = np.zeros((5, 5))
    A[:, 2:4] = rng.standard_normal((5, 2))
    A[:, 4] = A[:, 2] + A[:, 3]
    with pytest.raises(ValueError, match=r"pivot block is singular|A\[I, J\] is singular"):
        hidden_projectors(A, "lu", 2)


@pytest.mark.parametrize("kind", KINDS)
def test_solve_consistent_matrix_equation(kind, rng):
    A, B = rng.standard_normal((6, 6)), rng.standard_normal((5, 5))
    X_true = rng.standard_normal((6, 5))
    C = A @ X_true @ B
    sol = solve_matrix_equation(A, B, C, kind=kind)
    assert sol.consistent and sol.residual < 1e-12
    np.testing.assert_allclose(sol.X, X_true, atol=1e-9)


def test_general_solution_of_underdetermined_equation(rng):
    A = rng.standard_normal((4, 7))   # wide: many solutions
    B = rng.standard_normal((3, 6))
    C = A @ rng.standard_normal((7, 3)) @ B
    base = solve_matrix_equation(A, B, C)
    # The minimum-norm solution is A⁺ C B⁺ (vec form: (Bᵀ ⊗ A)⁺ vec C).
    np.testing.assert_allclose(base.X, np.linalg.pinv(A) @ C @ np.linalg.pinv(B), atol=1e-10)
    other = solve_matrix_equation(A, B, C, W=rng.standard_normal((7, 3)))
    assert other.consistent and np.linalg.norm(other.X - base.X) > 1e-3
    for kind in ("lu", "cur"):
        sol = solve_matrix_equation(A, B, C, kind=kind)
        assert sol.consistent, kind


def test_inconsistent_equation_is_reported(rng):
    A = low_rank_matrix(6, 6, 2, seed=2)
    B = np.eye(4)
    C = rng.standard_normal((6, 4))  # not in range(A)
    sol = solve_matrix_equation(A, B, C)
    assert not sol.consistent and sol.residual > 0.1
    # X solves the projected equation A X B = P_col C.
    P = hidden_projectors(A).col
    np.testing.assert_allclose(A @ sol.X @ B, P @ C, atol=1e-10)


def test_torch_batched_projectors(rng):
    A = torch.tensor(np.stack([low_rank_matrix(9, 7, 3, seed=i) for i in range(2)]))
    for kind in KINDS:
        hp = hidden_projectors(A, kind, 3)
        assert hp.col.shape == (2, 9, 9)
        assert float((hp.apply(A) - A).abs().max()) < 1e-9


def test_bad_input(rng):
    A = rng.standard_normal((4, 4))
    with pytest.raises(ValueError, match="kind must be one of"):
        hidden_projectors(A, "eig")
    with pytest.raises(ValueError, match="C must have 4 rows"):
        solve_matrix_equation(A, A, np.ones((3, 4)))
    with pytest.raises(ValueError, match="C must have 4 columns"):
        solve_matrix_equation(A, A, np.ones((4, 3)))
    with pytest.raises(ValueError, match="W must have shape"):
        solve_matrix_equation(A, A, A, W=np.ones((2, 2)))
    with pytest.raises(ValueError, match="kind must be one of"):
        solve_matrix_equation(A, A, A, kind="eig")
    with pytest.raises(ValueError, match="tol must be a finite number > 0"):
        solve_matrix_equation(A, A, A, tol=0.0)
    with pytest.raises(ValueError, match="rank=5 exceeds"):
        hidden_projectors(A, "qr", rank=5)
    with pytest.raises(TypeError, match="A is a NumPy array but B is a torch tensor"):
        solve_matrix_equation(A, torch.tensor(A), A)

"""The projector and reconstruction equations: properties, conditioning, paths, bad input."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from refimpl.matrices import low_rank_matrix, random_orthonormal
from refimpl.meta import dual_basis, meta_factorize, oblique_projector, projector_residual


@given(m=st.integers(3, 25), k=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_projector_equation(m, k, seed):
    rng = np.random.default_rng(seed)
    F, B = rng.standard_normal((m, k)), rng.standard_normal((m, k))
    Y = dual_basis(F, B)
    np.testing.assert_allclose(Y.T @ F, np.eye(k), atol=1e-9)
    P = oblique_projector(F, B)
    np.testing.assert_allclose(P @ P, P, atol=1e-8 * np.abs(P).max())
    np.testing.assert_allclose(P @ F, F, atol=1e-8 * np.abs(F).max() * np.abs(P).max())
    # Range of P is range F; P annihilates null(Bᵀ).
    assert np.linalg.matrix_rank(P, tol=1e-8 * np.linalg.norm(P, 2)) == k
    z = np.linalg.svd(B.T)[2][k:].T  # basis of null(Bᵀ)
    np.testing.assert_allclose(P @ z, 0, atol=1e-8 * np.linalg.norm(P, 2))
    assert projector_residual(F, Y) < 1e-9


def test_default_test_matrix_gives_orthogonal_projector(rng):
    F = rng.standard_normal((12, 4))
    P = oblique_projector(F)
    np.testing.assert_allclose(P, P.T, atol=1e-13)
    np.testing.assert_allclose(P, F @ np.linalg.pinv(F), atol=1e-13)


def test_oblique_norm_is_secant_of_largest_principal_angle(rng):
    # ‖F (BᵀF)⁻¹ Bᵀ‖₂ = 1 / cos θ_max(range F, range B): the amplification of an oblique
    # projector, exact for equal dimensions.
    for tilt in [0.0, 0.5, 0.9, 0.999]:
        Q = random_orthonormal(20, 6, seed=1)
        F = Q[:, :3]
        B = np.sqrt(1 - tilt**2) * Q[:, :3] + tilt * Q[:, 3:]
        cos_max = np.linalg.svd(np.linalg.qr(F)[0].T @ np.linalg.qr(B)[0],
                                compute_uv=False).min()
        np.testing.assert_allclose(np.linalg.norm(oblique_projector(F, B), 2), 1 / cos_max,
                                   rtol=1e-8)


@given(m=st.integers(4, 20), n=st.integers(4, 20), r=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1))
def test_exact_reconstruction_when_ranges_contain_A(m, n, r, seed):
    rng = np.random.default_rng(seed)
    A = low_rank_matrix(m, n, r, cond=10, seed=rng)
    U, _, Vt = np.linalg.svd(A)
    # Any bases of the ranges (mixed by random invertible matrices) and random test matrices.
    F = U[:, :r] @ rng.standard_normal((r, r))
    H = Vt[:r].T @ rng.standard_normal((r, r))
    B, D = rng.standard_normal((m, r)), rng.standard_normal((n, r))
    mf = meta_factorize(A, F, H, B, D)
    assert np.linalg.norm(mf.reconstruct() - A) < 1e-6 * np.linalg.norm(A)
    np.testing.assert_allclose(mf.G, mf.Y.T @ A @ mf.X, atol=1e-12 * np.abs(mf.G).max())


def test_free_term_is_inert_for_full_rank_factors(rng):
    A = rng.standard_normal((10, 8))
    F, H = rng.standard_normal((10, 3)), rng.standard_normal((8, 3))
    G0 = meta_factorize(A, F, H).G
    G1 = meta_factorize(A, F, H, W=rng.standard_normal((3, 3))).G
    np.testing.assert_allclose(G0, G1, atol=1e-12)


def test_free_term_spans_all_solutions_for_rank_deficient_factors(rng):
    # F and H have more columns than A's rank: the core is not unique. Every W gives a
    # solution of F G Hᵀ = A, and different W give different G.
    A = low_rank_matrix(12, 10, 2, seed=4)
    U, _, Vt = np.linalg.svd(A)
    F = U[:, :2] @ rng.standard_normal((2, 4))   # 12×4, rank 2
    H = Vt[:2].T @ rng.standard_normal((2, 3))   # 10×3, rank 2
    Gs = []
    for _ in range(3):
        mf = meta_factorize(A, F, H, W=rng.standard_normal((4, 3)), method="pinv")
        assert np.linalg.norm(F @ mf.G @ H.T - A) < 1e-12 * np.linalg.norm(A) * 100
        Gs.append(mf.G)
    assert np.linalg.norm(Gs[0] - Gs[1]) > 1e-3


@pytest.mark.parametrize("kappa", [1e2, 1e6, 1e10, 1e12])
def test_ill_conditioned_test_matrices(kappa, rng):
    # Documented behaviour: the reconstruction error grows like κ(BᵀF)·eps, and "auto"
    # moves to the pseudoinverse once κ exceeds 1/sqrt(eps) without failing.
    m, r = 30, 4
    A = low_rank_matrix(m, 20, r, seed=5)
    F = np.linalg.svd(A)[0][:, :r]
    Uo, _, Vo = np.linalg.svd(rng.standard_normal((r, r)))
    M = Uo @ np.diag(np.logspace(0, -np.log10(kappa), r)) @ Vo  # κ(M) = kappa
    B = F @ M + 1e-3 * (np.eye(m) - F @ F.T) @ rng.standard_normal((m, r)) / kappa
    assert np.isclose(np.linalg.cond(B.T @ F), kappa, rtol=1e-3)
    mf = meta_factorize(A, F, np.linalg.svd(A)[2][:r].T, B)
    err = np.linalg.norm(mf.reconstruct() - A) / np.linalg.norm(A)
    assert err < 100 * kappa * np.finfo(float).eps


def test_solve_refuses_singular_and_auto_falls_back(rng):
    F = rng.standard_normal((6, 2))
    B = np.column_stack([F[:, 0], F[:, 0]])  # BᵀF singular
    with pytest.raises(ValueError, match="FᵀB is singular"):
        dual_basis(F, B, method="solve")
    Y = dual_basis(F, B)  # auto -> pinv
    assert np.all(np.isfinite(Y))
    with pytest.raises(ValueError, match="needs a square FᵀB"):
        dual_basis(F, rng.standard_normal((6, 3)), method="solve")


def test_torch_batched_matches_numpy(rng):
    A = rng.standard_normal((4, 9, 7))
    F, H = rng.standard_normal((4, 9, 3)), rng.standard_normal((4, 7, 3))
    t = meta_factorize(*(torch.tensor(x) for x in (A, F, H)))
    assert isinstance(t.G, torch.Tensor) and t.G.shape == (4, 3, 3)
    for i in range(4):
        ref = meta_factorize(A[i], F[i], H[i])
        np.testing.assert_allclose(t.G[i].numpy(), ref.G, atol=1e-12)
        np.testing.assert_allclose(t.reconstruct()[i].numpy(), ref.reconstruct(), atol=1e-12)


def test_float32_tolerance(rng):
    A = low_rank_matrix(20, 15, 3, seed=6, dtype=np.float32)
    F, H = np.linalg.svd(A)[0][:, :3], np.linalg.svd(A)[2][:3].T
    mf = meta_factorize(A, F.astype(np.float32), H.astype(np.float32))
    assert mf.G.dtype == np.float32
    assert np.linalg.norm(mf.reconstruct() - A) <= 1e-5 * np.linalg.norm(A)


def test_bad_input(rng):
    A = rng.standard_normal((6, 5))
    F, H = rng.standard_normal((6, 2)), rng.standard_normal((5, 2))
    with pytest.raises(ValueError, match="F must have 6 rows"):
        meta_factorize(A, F[:5], H)
    with pytest.raises(ValueError, match="H must have 5 rows"):
        meta_factorize(A, F, H[:4])
    with pytest.raises(ValueError, match="W must have shape"):
        meta_factorize(A, F, H, W=np.ones((3, 3)))
    with pytest.raises(ValueError, match="B must have 6 rows"):
        dual_basis(F, np.ones((5, 2)))
    with pytest.raises(ValueError, match="method must be one of"):
        dual_basis(F, method="lu")
    with pytest.raises(TypeError, match="A is a NumPy array but F is a torch tensor"):
        meta_factorize(A, torch.tensor(F), H)
    A_bad = A.copy()
    A_bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="A contains NaN or Inf"):
        meta_factorize(A_bad, F, H)
    with pytest.raises(TypeError, match="F must have a floating-point dtype"):
        meta_factorize(A, F.astype(int), H)
    with pytest.raises(TypeError, match="F is a NumPy array but B is a torch tensor"):
        dual_basis(F, torch.tensor(F))
    with pytest.raises(ValueError, match="rcond must be a finite number >= 0"):
        meta_factorize(A, F, H, rcond=-1e-3)
    with pytest.raises(ValueError, match="method must be one of"):
        oblique_projector(F, method="qr")
    with pytest.raises(ValueError, match="Y must have 2 dimensions"):
        projector_residual(F, np.ones(6))


def test_torch_operands_take_the_inputs_dtype(rng):
    # Secondary inputs are moved beside A: a float64 factor with a float32 A computes in float32.
    A = torch.tensor(low_rank_matrix(9, 7, 2, seed=3), dtype=torch.float32)
    U, _, Vt = torch.linalg.svd(A.double())
    mf = meta_factorize(A, U[:, :2], Vt[:2].T)
    assert mf.G.dtype == torch.float32 and mf.F.dtype == torch.float32
    assert float((mf.reconstruct() - A).norm() / A.norm()) < 1e-5

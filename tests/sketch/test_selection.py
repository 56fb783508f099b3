"""Leverage scores, interpolative decomposition, DEIM, CUR and Nyström for PSD matrices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from refimpl.meta import CUR
from refimpl.sketch import (
    cur,
    deim,
    interpolative_decomposition,
    leverage_scores,
    nystrom_psd,
)


def _low_rank(m, n, r, seed):
    g = np.random.default_rng(seed)
    return g.standard_normal((m, r)) @ g.standard_normal((r, n))


# ---------------------------------------------------------------- leverage scores

def test_leverage_scores_sum_to_rank_and_match_hat_matrix(rng):
    A = rng.standard_normal((40, 6))
    lev = leverage_scores(A)
    H = A @ np.linalg.solve(A.T @ A, A.T)  # hat matrix: leverage = its diagonal
    np.testing.assert_allclose(lev, np.diag(H), atol=1e-12)
    assert np.isclose(lev.sum(), 6) and lev.max() <= 1 + 1e-12
    np.testing.assert_allclose(leverage_scores(A[:, :3] @ rng.standard_normal((3, 8))).sum(), 3)


def test_randomized_leverage_scores_close_to_exact(rng):
    A = _low_rank(200, 100, 8, 1) + 1e-6 * rng.standard_normal((200, 100))
    exact = leverage_scores(A, 8)
    approx = leverage_scores(A, 8, svd="randomized", seed=0)
    np.testing.assert_allclose(approx, exact, atol=1e-8)
    t = leverage_scores(torch.tensor(A), 8)
    np.testing.assert_allclose(t.numpy(), exact, atol=1e-10)


# ---------------------------------------------------------------- interpolative decomposition

@given(m=st.integers(2, 25), n=st.integers(2, 25), r=st.integers(1, 6), extra=st.integers(0, 3),
       seed=st.integers(0, 10**6))
def test_id_exact_when_rank_at_most_k(m, n, r, extra, seed):
    r = min(r, m, n)
    k = min(r + extra, m, n)
    A = _low_rank(m, n, r, seed)
    for svd in ("exact", "randomized"):
        d = interpolative_decomposition(A, k, svd=svd, seed=seed)
        assert len(set(d.cols.tolist())) == k
        np.testing.assert_allclose(d.X[:, d.cols], np.eye(k), atol=1e-12)
        np.testing.assert_allclose(d.reconstruct(), A, atol=1e-8 * max(1.0, np.abs(A).max()))


def test_id_error_equals_trailing_block_and_matches_scipy(rng):
    import scipy.linalg.interpolative as sli

    s = 0.7 ** np.arange(30)
    A = (np.linalg.qr(rng.standard_normal((60, 30)))[0] * s) @ \
        np.linalg.qr(rng.standard_normal((50, 30)))[0].T
    k = 8
    ours = interpolative_decomposition(A, k)
    idx, proj = sli.interp_decomp(A, k, rand=False)
    assert set(ours.cols.tolist()) == set(idx[:k].tolist())
    P = sli.reconstruct_interp_matrix(idx, proj)
    np.testing.assert_allclose(ours.reconstruct(), A[:, idx[:k]] @ P, atol=1e-10)
    # error is within the pivoted-QR factor of the optimal sigma_{k+1}
    err = np.linalg.norm(A - ours.reconstruct(), 2)
    assert s[k] <= err * (1 + 1e-10) and err <= np.sqrt(1 + k * (50 - k)) * 2**k * s[k]


def test_randomized_id_error_close_to_deterministic(rng):
    # The randomized ID (sketch with k + 10 rows) loses at most a modest factor (here 10)
    # against the deterministic ID, in every one of 5 seeds.
    A = (rng.standard_normal((300, 40)) * 0.8 ** np.arange(40)) @ rng.standard_normal((40, 200))
    k = 12
    det = np.linalg.norm(A - interpolative_decomposition(A, k).reconstruct())
    for seed in range(5):
        ran = interpolative_decomposition(A, k, svd="randomized", seed=seed)
        assert np.linalg.norm(A - ran.reconstruct()) <= 10 * det


def test_id_paths_agree(rng):
    A = rng.standard_normal((30, 20))
    ref = interpolative_decomposition(A, 6, backend="numpy")
    for b in ("numba", "torch"):
        out = interpolative_decomposition(A, 6, backend=b)
        np.testing.assert_array_equal(out.cols, ref.cols)
        np.testing.assert_allclose(out.X, ref.X, atol=1e-10)
    At = torch.tensor(np.stack([A, A[::-1].copy()]))
    bt = interpolative_decomposition(At, 6)
    assert isinstance(bt.X, torch.Tensor) and bt.X.shape == (2, 6, 20)
    np.testing.assert_allclose(bt.X[0].numpy(), ref.X, atol=1e-10)


# ---------------------------------------------------------------- DEIM

@given(n=st.integers(2, 40), k=st.integers(1, 10), seed=st.integers(0, 10**6))
def test_deim_indices_distinct_and_interpolation_well_posed(n, k, seed):
    k = min(k, n)
    V = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, k)))[0]
    p = deim(V)
    assert len(set(p.tolist())) == k
    assert np.linalg.matrix_rank(V[p]) == k


def test_deim_first_index_and_error_bound(rng):
    # Sorensen & Embree (2016): ||(V[p])^{-1}||_2 <= sqrt(n k / 3) 2^k for orthonormal V.
    V = np.linalg.qr(rng.standard_normal((100, 6)))[0]
    p = deim(V)
    assert p[0] == np.argmax(np.abs(V[:, 0]))
    assert np.linalg.norm(np.linalg.inv(V[p]), 2) <= np.sqrt(100 * 6 / 3) * 2**6
    np.testing.assert_array_equal(deim(torch.tensor(V)).numpy(), p)


def test_deim_rank_deficient_raises():
    V = np.ones((5, 2))
    with pytest.raises(ValueError, match="rank deficient"):
        deim(V)


# ---------------------------------------------------------------- CUR

@pytest.mark.parametrize("select", ["deim", "leverage", "qr"])
def test_cur_exact_on_low_rank_and_delegates_to_meta(select):
    A = _low_rank(40, 30, 5, 3)
    c = cur(A, 5, select=select, seed=0)
    assert isinstance(c, CUR)
    np.testing.assert_allclose(c.reconstruct(), A, atol=1e-9 * np.abs(A).max())
    np.testing.assert_allclose(c.C, A[:, c.cols])
    np.testing.assert_allclose(c.U, np.linalg.pinv(c.C) @ A @ np.linalg.pinv(c.R), atol=1e-8)


def test_cur_deim_error_bound(rng):
    # Sorensen & Embree (2016), Thm 4.1: ||A - C U R|| <= (eta_p + eta_q) sigma_{k+1} with
    # eta_p = ||(U_k[p])^{-1}||, eta_q = ||(V_k[q])^{-1}||, for U = C^+ A R^+.
    s = 0.6 ** np.arange(40)
    U0 = np.linalg.qr(rng.standard_normal((80, 40)))[0]
    V0 = np.linalg.qr(rng.standard_normal((60, 40)))[0]
    A = (U0 * s) @ V0.T
    k = 7
    c = cur(A, k, select="deim")
    eta_p = np.linalg.norm(np.linalg.inv(U0[c.rows, :k]), 2)
    eta_q = np.linalg.norm(np.linalg.inv(V0[c.cols, :k]), 2)
    assert np.linalg.norm(A - c.reconstruct(), 2) <= (eta_p + eta_q) * s[k]
    crand = cur(A, k, select="deim", svd="randomized", seed=0)
    np.testing.assert_array_equal(np.sort(crand.rows), np.sort(c.rows))


def test_cur_torch(rng):
    A = _low_rank(30, 20, 4, 2)
    c = cur(torch.tensor(A), 4, select="deim")
    assert isinstance(c.U, torch.Tensor)
    np.testing.assert_allclose(c.reconstruct().numpy(), A, atol=1e-9 * np.abs(A).max())


def test_cur_bad_inputs():
    A = np.ones((5, 4))
    with pytest.raises(ValueError, match="select must be one of"):
        cur(A, 2, select="random")
    with pytest.raises(ValueError, match="svd must be one of"):
        cur(A, 2, svd="full")
    with pytest.raises(ValueError, match="u must be one of"):
        cur(A, 2, select="qr", u="best")
    with pytest.raises(ValueError, match="rank=5 exceeds"):
        cur(A, 5)


def test_svd_option_and_counts_are_checked(rng):
    A = rng.standard_normal((8, 6))
    with pytest.raises(ValueError, match="svd must be one of"):
        leverage_scores(A, 2, svd="full")
    with pytest.raises(ValueError, match=r"rank=None \(numerical rank\) needs svd=.exact."):
        leverage_scores(A, svd="randomized")
    with pytest.raises(ValueError, match="svd must be one of"):
        interpolative_decomposition(A, 2, svd="qr")
    with pytest.raises(ValueError, match="oversample must be at least 0"):
        interpolative_decomposition(A, 2, oversample=-1)
    with pytest.raises(TypeError, match="n_iter must be an integer"):
        interpolative_decomposition(A, 2, svd="randomized", n_iter=None)
    with pytest.raises(ValueError, match="tol must be a finite number > 0"):
        deim(np.linalg.qr(A)[0], tol=-1.0)


# ---------------------------------------------------------------- Nyström

@given(n=st.integers(3, 30), r=st.integers(1, 10), extra=st.integers(0, 5),
       seed=st.integers(0, 10**6))
def test_nystrom_psd_is_psd_and_exact_for_low_rank(n, r, extra, seed):
    r = min(r, n)
    k = min(n, r + extra)
    G = np.random.default_rng(seed).standard_normal((n, r))
    A = G @ G.T
    ny = nystrom_psd(A, k, seed=seed)
    assert np.all(ny.lam >= 0)
    np.testing.assert_allclose(ny.U.T @ ny.U, np.eye(k), atol=1e-10)
    Ahat = ny.reconstruct()
    assert np.linalg.eigvalsh((Ahat + Ahat.T) / 2).min() >= -1e-10 * np.abs(A).max()
    np.testing.assert_allclose(Ahat, A, atol=1e-7 * np.abs(A).max())


def test_nystrom_stable_where_naive_fails(rng):
    # A rank-3 PSD matrix with k = 10: Ωᵀ A Ω is singular, so the unshifted formula
    # (AΩ)(ΩᵀAΩ)^{-1}(AΩ)ᵀ breaks down (Cholesky fails); the shifted one stays accurate.
    G = rng.standard_normal((60, 3))
    A = G @ G.T
    Om = np.linalg.qr(rng.standard_normal((60, 10)))[0]
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(Om.T @ A @ Om)
    ny = nystrom_psd(A, 10, Omega=Om)
    assert np.linalg.norm(A - ny.reconstruct()) <= 1e-10 * np.linalg.norm(A)


def test_nystrom_expected_error_bound(rng):
    # Tropp et al. (2017), Thm 4.1 (Gaussian Ω, k columns, rank r < k - 1):
    #   E ||A - Â||_* <= (1 + r/(k - r - 1)) ||A - [[A]]_r||_*   (trace norm).
    lam = 0.8 ** np.arange(80)
    Q = np.linalg.qr(rng.standard_normal((80, 80)))[0]
    A = (Q * lam) @ Q.T
    k, r = 20, 8
    bound = (1 + r / (k - r - 1)) * lam[r:].sum()
    errs = [np.abs(np.linalg.eigvalsh(A - nystrom_psd(A, k, seed=s).reconstruct())).sum()
            for s in range(15)]
    assert np.mean(errs) <= bound


def test_nystrom_torch_parity(rng):
    G = rng.standard_normal((40, 6))
    A = G @ G.T
    ref = nystrom_psd(A, 8, seed=1)
    out = nystrom_psd(torch.tensor(A), 8, seed=1)
    np.testing.assert_allclose(out.lam.numpy(), ref.lam, atol=1e-10)


def test_nystrom_bad_inputs(rng):
    with pytest.raises(ValueError, match="square"):
        nystrom_psd(np.ones((4, 5)), 2)
    with pytest.raises(ValueError, match="symmetric"):
        nystrom_psd(rng.standard_normal((5, 5)), 2)
    with pytest.raises(ValueError, match="positive semidefinite"):
        nystrom_psd(-np.eye(6), 3, seed=0)
    with pytest.raises(ValueError, match="rank=7 exceeds n=6"):
        nystrom_psd(np.eye(6), 7)
    with pytest.raises(TypeError, match="A is a NumPy array but Omega is a torch tensor"):
        nystrom_psd(np.eye(6), 2, Omega=torch.ones((6, 2), dtype=torch.float64))
    with pytest.raises(ValueError, match="Omega must have shape"):
        nystrom_psd(np.eye(6), 2, Omega=np.ones((6, 3)))

"""Tests for refimpl.nonneg.nbmf: NBMF with a mask, exhaustive and annealed binary steps."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl.nonneg.nbmf import (
    NBMF,
    _binary_step_anneal,
    _binary_step_exhaustive,
    _masked_objective,
    nbmf,
)


def planted(m, n, k, seed):
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.5, 1.5, (m, k))
    H = (rng.random((k, n)) < 0.5).astype(float)
    return W, H


@settings(max_examples=15, deadline=None)
@given(m=st.integers(3, 12), n=st.integers(3, 12), k=st.integers(1, 3),
       frac=st.floats(0.3, 1.0), seed=st.integers(0, 2**16),
       binary=st.sampled_from(["exhaustive", "anneal"]))
def test_factors_and_monotone_objective(m, n, k, frac, seed, binary):
    k = min(k, m, n)
    rng = np.random.default_rng(seed)
    V = rng.uniform(0, 5, (m, n))
    mask = rng.random((m, n)) < frac
    res, info = nbmf(V, k, mask=mask, alpha=0.01, binary=binary, max_iter=15,
                     anneal_sweeps=20, seed=seed, return_info=True)
    assert isinstance(res, NBMF)
    assert np.all(res.W >= 0)
    assert set(np.unique(res.H)) <= {0.0, 1.0}
    e = np.array(info.errors)
    # exact descent steps: increases only at rounding level of the objective
    assert np.all(np.diff(e) <= 1e-12 * e[:-1] + 1e-12)
    assert info.errors[-1] == pytest.approx(
        _masked_objective(V, mask.astype(float), res.W, res.H, 0.01), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_recovery_full_observation(seed):
    W, H = planted(20, 40, 3, seed)
    V = W @ H
    res, info = nbmf(V, 3, seed=seed, return_info=True)
    assert info.converged
    rel = np.linalg.norm(res.reconstruct() - V) / np.linalg.norm(V)
    assert rel < 1e-10
    # H recovered up to a permutation of its rows, W up to the same permutation
    rows = [int(np.argmin([np.abs(res.H[i] - H[j]).sum() for j in range(3)])) for i in range(3)]
    assert sorted(rows) == [0, 1, 2]
    np.testing.assert_array_equal(res.H, H[rows])
    np.testing.assert_allclose(res.W, W[:, rows], rtol=1e-8)


def test_masked_entries_do_not_influence_fit():
    rng = np.random.default_rng(3)
    V = rng.uniform(0, 5, (15, 25))
    mask = rng.random(V.shape) < 0.6
    V2 = V.copy()
    V2[~mask] = rng.uniform(0, 100, int((~mask).sum()))
    a = nbmf(V, 4, mask=mask, max_iter=30, seed=7)
    b = nbmf(V2, 4, mask=mask, max_iter=30, seed=7)
    np.testing.assert_array_equal(a.H, b.H)
    np.testing.assert_allclose(a.W, b.W, rtol=1e-12, atol=1e-14)
    # and without the mask the fit does change
    c = nbmf(V2, 4, max_iter=30, seed=7)
    assert not np.allclose(a.W, c.W)


def test_masked_recovery_predicts_unobserved():
    W, H = planted(30, 40, 3, 11)
    V = W @ H
    rng = np.random.default_rng(11)
    mask = rng.random(V.shape) < 0.7
    best = min((nbmf(np.where(mask, V, 0.0), 3, mask=mask, seed=s) for s in range(5)),
               key=lambda r: np.linalg.norm(mask * (r.reconstruct() - V)))
    rows, cols = np.nonzero(~mask)
    pred = best.predict(rows, cols)
    np.testing.assert_allclose(pred, best.reconstruct()[rows, cols], rtol=1e-13)
    # planted low-rank structure: unobserved entries predicted exactly too
    np.testing.assert_allclose(pred, V[rows, cols], rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("seed", range(4))
def test_anneal_agrees_with_exhaustive(seed):
    rng = np.random.default_rng(seed)
    m, n, k = 12, 30, 6
    W = rng.uniform(0, 1, (m, k))
    V = rng.uniform(0, 3, (m, n))
    M = (rng.random((m, n)) < 0.8).astype(float)
    H_ex = _binary_step_exhaustive(V, M, W)
    H0 = (rng.random((k, n)) < 0.5).astype(float)
    H_sa = _binary_step_anneal(V, M, W, H0, 400, (2.0, 1e-3), rng)
    # continuous random data: the optimum of every column is unique almost surely
    np.testing.assert_array_equal(H_sa, H_ex)


def test_exhaustive_is_optimal_against_brute_force():
    rng = np.random.default_rng(5)
    m, n, k = 6, 5, 3
    W, V = rng.uniform(0, 1, (m, k)), rng.uniform(0, 2, (m, n))
    M = (rng.random((m, n)) < 0.7).astype(float)
    H = _binary_step_exhaustive(V, M, W)
    for j in range(n):
        costs = [np.sum((M[:, j] * (V[:, j] - W @ np.array(b))) ** 2)
                 for b in np.ndindex(*(2,) * k)]
        got = np.sum((M[:, j] * (V[:, j] - W @ H[:, j])) ** 2)
        assert got == pytest.approx(min(costs), rel=1e-12, abs=1e-14)


def test_auto_uses_anneal_above_twelve():
    rng = np.random.default_rng(0)
    V = rng.uniform(0, 1, (14, 16))
    res, info = nbmf(V, 13, max_iter=3, anneal_sweeps=5, seed=0, return_info=True)
    assert res.H.shape == (13, 16) and set(np.unique(res.H)) <= {0.0, 1.0}
    assert info.n_iter <= 3


def test_float32_in_float32_out_and_no_input_modified():
    rng = np.random.default_rng(0)
    V = rng.uniform(0, 1, (8, 9)).astype(np.float32)
    V0 = V.copy()
    res = nbmf(V, 2, max_iter=5, seed=0)
    assert res.W.dtype == np.float32 and res.H.dtype == np.float32
    np.testing.assert_array_equal(V, V0)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"V": -np.ones((4, 4))}, ValueError, "nonnegative"),
    ({"V": np.full((4, 4), np.nan)}, ValueError, "NaN"),
    ({"mask": np.ones((3, 4), bool)}, ValueError, "shape"),
    ({"mask": np.full((4, 4), 2.0)}, ValueError, "0 and 1"),
    ({"rank": 5}, ValueError, "rank"),
    ({"rank": 0}, ValueError, "rank"),
    ({"rank": 2.0}, TypeError, "rank"),
    ({"binary": "greedy"}, ValueError, "binary"),
    ({"alpha": -1.0}, ValueError, "alpha"),
    ({"V": np.ones((4, 4), dtype=int)}, TypeError, "floating"),
])
def test_bad_inputs(kwargs, exc, match):
    args: dict[str, Any] = {"V": np.ones((4, 4)), "rank": 2}
    args.update(kwargs)
    V, rank = args.pop("V"), args.pop("rank")
    with pytest.raises(exc, match=match):
        nbmf(V, rank, **args)


def test_predict_shape_mismatch():
    res = NBMF(np.ones((3, 2)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="same shape"):
        res.predict(np.array([0, 1]), np.array([0]))


def test_tol_zero_runs_every_iteration():
    # nmf's stopping rule: tol = 0 never stops early, even once the objective stalls (an
    # exact fit of a planted matrix stalls after a few iterations)
    W, H = planted(12, 20, 2, 3)
    _, info = nbmf(W @ H + 0.01, 2, seed=0, max_iter=40, tol=0.0, return_info=True)
    assert info.n_iter == 40 and len(info.errors) == 41
    stalled = np.flatnonzero(np.diff(info.errors) >= 0)
    assert stalled.size > 0  # the old rule (stop once no decrease) would have stopped here
    _, early = nbmf(W @ H + 0.01, 2, seed=0, max_iter=40, tol=1e-9, return_info=True)
    assert early.n_iter < 40 and early.converged

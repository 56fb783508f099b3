"""Tests for three tier-B methods: DirectAU (Wang et al., 2022), bandit evaluation with
low-rank completion (Zhou et al., 2025) and LowFER (Amin et al., 2020): defining equations,
hand-computed cases, peer parity and each paper's claim on a small instance."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from refimpl.completion.directau import alignment, directau, directau_loss, uniformity
from refimpl.completion.evaluation import popularity, ranking_metrics
from refimpl.completion.explicit import als
from refimpl.completion.lm_eval import (
    _ensemble_als,
    synthetic_score_matrix,
    ucb_e,
    ucb_low_rank,
    uniform_baseline,
)
from refimpl.completion.lowfer import (
    DistMult,
    LowFER,
    fit_distmult,
    fit_lowfer,
    link_prediction_metrics,
    lowfer_factors_from_core,
    synthetic_kg,
)
from refimpl.completion.model import Interactions
from refimpl.results import Info

# =========================================================================== DirectAU


def _unit(rng, b, d):
    x = rng.standard_normal((b, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_alignment_and_uniformity_match_their_definitions():
    rng = np.random.default_rng(0)
    x, y = _unit(rng, 7, 4), _unit(rng, 7, 4)
    x[3] = x[1]  # a repeated row: its zero distance counts, as a pair of positions
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    sq = ((x - y) ** 2).sum(1)
    assert float(alignment(xt, yt)) == pytest.approx(sq.mean(), rel=1e-12)
    assert float(alignment(xt, yt, alpha=1.0)) == pytest.approx(np.sqrt(sq).mean(), rel=1e-12)
    pairs = [np.exp(-2 * ((x[j] - x[l]) ** 2).sum()) for j in range(7) for l in range(j + 1, 7)]
    assert float(uniformity(xt)) == pytest.approx(np.log(np.mean(pairs)), rel=1e-10)
    pairs3 = [np.exp(-3 * ((x[j] - x[l]) ** 2).sum()) for j in range(7) for l in range(j + 1, 7)]
    assert float(uniformity(xt, t=3.0)) == pytest.approx(np.log(np.mean(pairs3)), rel=1e-10)


def test_uniformity_hand_cases_and_smooth_gradient():
    e = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    assert float(uniformity(e)) == pytest.approx(-8.0)  # |x - y|^2 = 4, log e^{-2·4}
    collapsed = torch.ones(5, 3, dtype=torch.float64) / np.sqrt(3)
    assert float(uniformity(collapsed)) == pytest.approx(0.0, abs=1e-12)
    x = collapsed.clone().requires_grad_(True)
    uniformity(x).backward()
    assert torch.isfinite(x.grad).all()  # zero distances do not give NaN gradients


def test_directau_loss_normalises_and_combines():
    rng = np.random.default_rng(1)
    u, i = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    ut, it = torch.from_numpy(u), torch.from_numpy(i)
    un, inn = torch.from_numpy(_unit_rows(u)), torch.from_numpy(_unit_rows(i))
    want = alignment(un, inn) + 0.7 * (uniformity(un) + uniformity(inn)) / 2
    assert float(directau_loss(ut, it, 0.7)) == pytest.approx(float(want), rel=1e-12)
    assert float(directau_loss(5 * ut, 0.1 * it, 0.7)) == pytest.approx(float(want), rel=1e-12)


def _unit_rows(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _clustered(seed=0, n_users=200, n_items=100, n_clusters=5):
    """Users like the items of their cluster (p = 0.3) and rarely others (p = 0.01)."""
    rng = np.random.default_rng(seed)
    cu = rng.integers(n_clusters, size=n_users)
    ci = np.arange(n_items) % n_clusters
    A = rng.random((n_users, n_items)) < np.where(cu[:, None] == ci[None, :], 0.3, 0.01)
    u, i = np.nonzero(A)
    test = rng.random(u.size) < 0.2
    def make(mask):
        return sp.csr_matrix((np.ones(mask.sum()), (u[mask], i[mask])),
                             shape=(n_users, n_items))
    return make(~test), make(test)


def test_directau_recommends_far_better_than_popularity():
    train, test = _clustered()
    model, info = directau(train, 16, gamma=0.5, lr=1e-2, n_epochs=30, seed=0,
                           return_info=True)
    got = ranking_metrics(model, train, test, 10)["recall@10"]
    base = ranking_metrics(popularity(train), train, test, 10)["recall@10"]
    assert got > 0.25 and got > 3 * base, (got, base)
    assert isinstance(info, Info) and info.n_iter == 30 and len(info.errors) == 30
    assert info.errors[-1] < info.errors[0]
    np.testing.assert_allclose(np.linalg.norm(model.P, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(model.Q, axis=1), 1.0, rtol=1e-6)
    assert model.P.dtype == np.float64 and model.user_bias is None


def test_uniformity_term_prevents_collapse():
    train, _ = _clustered(seed=1, n_users=120, n_items=60)
    collapsed = directau(train, 8, gamma=0.0, lr=1e-2, n_epochs=100, seed=0)
    spread = directau(train, 8, gamma=0.5, lr=1e-2, n_epochs=100, seed=0)
    u0, u1 = (float(uniformity(torch.from_numpy(m.P))) for m in (collapsed, spread))
    assert u0 > -1.0, u0  # alignment alone drives the users towards one point
    assert u1 < -2.5, u1
    X = Interactions(*sp.find(train)[:2], np.ones(train.nnz), *train.shape)
    align = [float(alignment(torch.from_numpy(m.P[X.users]), torch.from_numpy(m.Q[X.items])))
             for m in (collapsed, spread)]
    assert align[0] < align[1]  # ...which aligns the pairs perfectly, uselessly


def test_directau_seeded_without_global_side_effects():
    train, _ = _clustered(seed=2, n_users=60, n_items=30)
    state = torch.get_rng_state()
    a = directau(train, 4, n_epochs=3, seed=5)
    b = directau(train, 4, n_epochs=3, seed=5)
    assert torch.equal(state, torch.get_rng_state())
    np.testing.assert_array_equal(a.P, b.P)
    raw = directau(train, 4, n_epochs=3, seed=5, normalize=False)
    np.testing.assert_allclose(_unit_rows(raw.P), a.P, rtol=1e-6)
    assert not np.allclose(np.linalg.norm(raw.P, axis=1), 1.0)


def test_directau_validation():
    train, _ = _clustered(seed=3, n_users=30, n_items=20)
    with pytest.raises(ValueError, match="batch_size"):
        directau(train, 4, batch_size=1)
    with pytest.raises(ValueError, match="gamma"):
        directau(train, 4, gamma=-1.0)
    with pytest.raises(TypeError, match="R must be"):
        directau(train.toarray(), 4)
    with pytest.raises(ValueError, match="positive entries"):
        directau(sp.csr_matrix(([0.0, 0.0], ([0, 1], [0, 1])), shape=(3, 3)), 2)
    with pytest.raises(ValueError, match="at least 2 rows"):
        uniformity(torch.zeros(1, 3))


# =========================================================================== LM evaluation


def test_synthetic_score_matrix_structure():
    S = synthetic_score_matrix(12, 40, 3, seed=0)
    assert S.scores.shape == (12, 40) and set(np.unique(S.scores)) <= {0.0, 1.0}
    assert np.linalg.matrix_rank(S.logits) == 3
    np.testing.assert_allclose(S.probabilities, 1 / (1 + np.exp(-S.logits)))
    np.testing.assert_allclose(S.means, S.scores.mean(1))
    assert S.best == int(np.argmax(S.means))
    P = synthetic_score_matrix(12, 40, 3, binary=False, seed=0)
    np.testing.assert_array_equal(P.scores, P.probabilities)
    np.testing.assert_array_equal(synthetic_score_matrix(12, 40, 3, seed=0).scores, S.scores)


def test_budgets_are_spent_exactly_and_never_twice():
    S = synthetic_score_matrix(10, 50, 2, seed=1)
    for out in (uniform_baseline(S.scores, 0.2, seed=0), ucb_e(S.scores, 100, seed=0),
                ucb_low_rank(S.scores, 100, rank=1, rounds=4, seed=0)):
        assert out.n_evaluations == 100 == int(out.observed.sum())
    calls = []

    def oracle(i, j):
        calls.append(len(i))
        return S.scores[i, j]

    a = ucb_e(oracle, 60, shape=(10, 50), seed=3)
    b = ucb_e(S.scores, 60, seed=3)
    assert sum(calls) == 60 and a.best == b.best
    np.testing.assert_array_equal(a.observed, b.observed)


def test_ucb_e_spends_on_the_clear_winner():
    S = np.zeros((5, 40))
    S[2] = 1.0
    out = ucb_e(S, 80, batch_size=4, seed=0)
    assert out.best == 2 and out.observed[2].sum() == 40  # all of it, then the others
    assert out.means[2] == 1.0 and np.all(out.means[[0, 1, 3, 4]] == 0.0)
    emp = uniform_baseline(S, 0.5, seed=0)
    np.testing.assert_allclose(emp.means, np.where(np.arange(5) == 2, 1.0, 0.0))


@pytest.mark.parametrize(("rank", "fraction"), [(1, 0.3), (2, 0.6)])
def test_ensemble_als_matches_the_shared_als(rank, fraction):
    # the same objective as explicit.als(biases=True); cases where its minimiser is unique
    S = synthetic_score_matrix(20, 60, 3, seed=0)
    seen = np.random.default_rng(0).random(S.scores.shape) < fraction
    i, j = np.nonzero(seen)
    X = Interactions(i.astype(np.int64), j.astype(np.int64), S.scores[i, j], 20, 60)
    peer = als(X, rank, reg=1.0, biases=True, max_iter=500, tol=1e-12)
    assert np.abs(peer.P @ peer.Q.T).max() > 0.1  # the factors take part
    mine, spread = _ensemble_als(S.scores, seen, rank, n_models=1, reg=1.0, n_iter=500,
                                 drop_probability=0.0, biases=True,
                                 rng=np.random.default_rng(1))
    np.testing.assert_allclose(mine, peer.reconstruct(), atol=1e-5)
    assert np.all(spread == 0.0)


def test_claim_bandit_with_low_rank_finds_the_best_more_often():
    # Zhou et al.: at a small budget, UCB-E-LRF finds the best method (here: within 0.02
    # of its mean) far more often than uniform sampling or UCB-E on empirical means.
    wins = {"lrf": 0, "ucbe": 0, "uniform": 0}
    for s in range(20):
        S = synthetic_score_matrix(50, 200, 3, difficulty=3.0, spread=0.5, seed=s)
        for key, out in (("lrf", ucb_low_rank(S.scores, 0.1, rank=1, seed=100 + s)),
                         ("ucbe", ucb_e(S.scores, 0.1, seed=100 + s)),
                         ("uniform", uniform_baseline(S.scores, 0.1, seed=100 + s))):
            wins[key] += bool(S.means[S.best] - S.means[out.best] <= 0.02)
    assert wins["lrf"] >= wins["ucbe"] + 4 and wins["lrf"] >= 2 * wins["uniform"], wins
    assert wins["lrf"] >= 12, wins


def test_lm_eval_validation():
    S = synthetic_score_matrix(6, 20, 2, seed=0).scores
    with pytest.raises(ValueError, match="budget"):
        uniform_baseline(S, 0)
    with pytest.raises(ValueError, match="budget"):
        ucb_e(S, 1.5)
    with pytest.raises(TypeError, match="budget"):
        ucb_e(S, "10")
    with pytest.raises(ValueError, match="shape"):
        ucb_e(lambda i, j: S[i, j], 10)
    with pytest.raises(ValueError, match="ensemble_size"):
        ucb_low_rank(S, 10, ensemble_size=1)
    with pytest.raises(ValueError, match="NaN"):
        ucb_e(np.full((3, 3), np.nan), 2)
    with pytest.raises(ValueError, match="rank"):
        synthetic_score_matrix(5, 20, 1)


# =========================================================================== LowFER


def test_lowfer_score_is_the_pooled_bilinear_form_and_a_tucker_core():
    m = LowFER(7, 3, d_e=5, d_r=4, k=2, reciprocal=False, input_dropout=0.0,
               hidden_dropout1=0.0, hidden_dropout2=0.0, batch_norm=False, normalize=False,
               seed=0).double()
    E, R = m.E.detach().numpy(), m.R.detach().numpy()
    U, V = m.U.detach().numpy(), m.V.detach().numpy()
    s, r = np.array([0, 3, 6]), np.array([2, 0, 1])
    got = m.score_objects(s, r)
    prod = (E[s] @ U) * (R[r] @ V)  # (b, k d_e)
    z = np.array([[prod[t, c * 2:(c + 1) * 2].sum() for c in range(5)] for t in range(3)])
    np.testing.assert_allclose(got, z @ E.T, rtol=1e-10)
    tucker = np.einsum("abc,ta,tb,oc->to", m.core(), E[s], R[r], E)
    np.testing.assert_allclose(got, tucker, rtol=1e-10)
    # subject queries without reciprocals score every entity as the subject
    o = np.array([1, 4, 2])
    subj = m.score_subjects(o, r)
    np.testing.assert_allclose(subj, np.einsum("abc,sa,tb,tc->ts", m.core(), E, R[r], E[o]),
                               rtol=1e-10)


def test_tucker_cores_are_reached_and_approximated():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((5, 3, 5))
    m = LowFER(4, 2, d_e=5, d_r=3, k=3, seed=0).double()
    U, V = lowfer_factors_from_core(W)  # k = min(d_e, d_r) = 3: exact
    with torch.no_grad():
        m.U.copy_(torch.from_numpy(U))
        m.V.copy_(torch.from_numpy(V))
    np.testing.assert_allclose(m.core(), W, atol=1e-12)
    errs = []
    for k in (1, 2, 3):
        U, V = lowfer_factors_from_core(W, k)
        core = np.einsum("acm,bcm->abc", U.reshape(5, 5, k), V.reshape(3, 5, k))
        errs.append(np.linalg.norm(core - W))
        for c in range(5):  # each slice is its best rank-k approximation (Eckart–Young)
            sv = np.linalg.svd(W[:, :, c], compute_uv=False)
            assert np.linalg.norm(core[:, :, c] - W[:, :, c]) == pytest.approx(
                np.sqrt((sv[k:] ** 2).sum()), abs=1e-10)
    assert errs[0] > errs[1] > errs[2] == pytest.approx(0.0, abs=1e-12)


def test_synthetic_kg_is_antisymmetric_and_split_cleanly():
    kg = synthetic_kg(60, 3, n_clusters=6, seed=1)
    allt = kg.all_triples()
    facts = set(map(tuple, allt.tolist()))
    assert not any((o, r, s) in facts for s, r, o in facts)
    assert np.all(kg.clusters[allt[:, 2]] == kg.maps[allt[:, 1], kg.clusters[allt[:, 0]]])
    assert len(facts) == len(allt)  # the splits are disjoint
    seen = set(kg.train[:, 0]) | set(kg.train[:, 2])
    held = np.concatenate([kg.valid, kg.test])
    assert set(held[:, 0]) <= seen and set(held[:, 2]) <= seen


class _Fixed:
    """A scorer with the same object scores for every query (for hand-computed ranks)."""

    def __init__(self, row):
        self.row = np.asarray(row, dtype=float)

    def score_objects(self, s, r):
        return np.tile(self.row, (len(s), 1))

    def score_subjects(self, o, r):
        return np.tile(self.row, (len(o), 1))


def test_filtered_ranks_by_hand():
    scorer = _Fixed([0.1, 0.9, 0.5, 0.5])
    test = np.array([[0, 0, 2]])
    known = np.array([[0, 0, 2], [0, 0, 1]])
    # entity 1 is a known answer and is filtered; entity 3 ties with the target: rank 1.5
    got = link_prediction_metrics(scorer, test, known, sides="object")
    assert got["mr"] == 1.5 and got["mrr"] == pytest.approx(1 / 1.5)
    assert got["hits@1"] == 0.0 and got["hits@3"] == 1.0
    raw = link_prediction_metrics(scorer, test, test, sides="object")  # nothing filtered
    assert raw["mr"] == 2.5
    # subject query of (0, 0, 2): the target 0 has the lowest score, nothing to filter
    assert link_prediction_metrics(scorer, test, known, sides="subject")["mr"] == 4.0
    assert link_prediction_metrics(_Fixed([1.0] * 4), test, test, sides="object")["mr"] == 2.5


def test_claim_lowfer_models_asymmetric_relations_distmult_cannot():
    kg = synthetic_kg(seed=0)
    allt = kg.all_triples()
    state = torch.get_rng_state()
    lowfer, info = fit_lowfer(kg.train, kg.n_entities, kg.n_relations, lr=1e-2, n_epochs=30,
                              input_dropout=0.0, hidden_dropout1=0.0, hidden_dropout2=0.0,
                              seed=0, return_info=True)
    assert torch.equal(state, torch.get_rng_state())
    assert info.n_iter == 30 and info.errors[-1] < info.errors[0]
    distmult = fit_distmult(kg.train, kg.n_entities, kg.n_relations, n_epochs=60, seed=0)
    rng = np.random.default_rng(0)

    class Random:
        def score_objects(self, s, r):
            return rng.random((len(s), kg.n_entities))

        score_subjects = score_objects

    m_l, m_d, m_r = (link_prediction_metrics(m, kg.test, allt)["mrr"]
                     for m in (lowfer, distmult, Random()))
    # a perfect cluster model ranks the target among ~5 unknown cluster mates: MRR ~ 0.45
    assert m_l > 0.35 and m_l > m_d + 0.1 and m_d > m_r, (m_l, m_d, m_r)
    assert m_r < 0.08
    # DistMult's own relation scores are symmetric in subject and object
    s, r, o = kg.test[:5].T
    fwd = distmult.score_objects(s, r)[np.arange(5), o]
    bwd = distmult.score_objects(o, r)[np.arange(5), s]
    np.testing.assert_allclose(fwd, bwd, rtol=1e-5)


def test_lowfer_training_is_reproducible():
    kg = synthetic_kg(40, 2, n_clusters=4, seed=2)
    a = fit_lowfer(kg.train, 40, 2, d_e=8, d_r=4, k=2, n_epochs=3, seed=7)
    b = fit_lowfer(kg.train, 40, 2, d_e=8, d_r=4, k=2, n_epochs=3, seed=7)
    assert not a.training
    np.testing.assert_array_equal(a.score_objects([0, 1], [0, 1]), b.score_objects([0, 1],
                                                                                  [0, 1]))
    assert isinstance(DistMult(5, 2, 3, seed=0).score_subjects([0], [1]), np.ndarray)


def test_lowfer_validation():
    with pytest.raises(ValueError, match="triples"):
        fit_lowfer(np.zeros((4, 2), dtype=int), 5, 2)
    with pytest.raises(ValueError, match="outside"):
        fit_lowfer(np.array([[0, 0, 9]]), 5, 2)
    with pytest.raises(ValueError, match="input_dropout"):
        LowFER(5, 2, input_dropout=1.0)
    with pytest.raises(ValueError, match="batch normalisation"):
        fit_lowfer(np.array([[0, 0, 1]]), 5, 2, reciprocal=False)
    with pytest.raises(ValueError, match="label_smoothing"):
        fit_lowfer(np.array([[0, 0, 1]]), 5, 2, label_smoothing=1.0)
    with pytest.raises(ValueError, match="sides"):
        link_prediction_metrics(_Fixed([0.0, 1.0]), np.array([[0, 0, 1]]),
                                np.array([[0, 0, 1]]), sides="head")
    with pytest.raises(ValueError, match="shape"):
        lowfer_factors_from_core(np.zeros((3, 2, 4)))
    with pytest.raises(ValueError, match="n_clusters"):
        synthetic_kg(10, 1, n_clusters=2)

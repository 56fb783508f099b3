"""Decom-Renorm-Merge: exact joint decomposition, renormalised coordinates, and the merge of
updates that live in separate directions."""

import pytest
import torch

from refimpl import lora


def _deltas(T=3, m=8, n=6, rank=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(m, rank, generator=g, dtype=torch.float64)
            @ torch.randn(rank, n, generator=g, dtype=torch.float64) for _ in range(T)]


@pytest.mark.parametrize("stack", ["horizontal", "vertical"])
def test_decomposition_is_exact_and_renormalised(stack):
    deltas = _deltas()
    dec = lora.drm_decompose(deltas, stack=stack, rank_tol=1e-9)
    k = dec.scales.shape[1]
    assert k == 6  # three rank-2 updates in general position
    for t, d in enumerate(deltas):
        S = torch.diag(dec.scales[t])
        rebuilt = dec.basis @ S @ dec.coords[t] if stack == "horizontal" \
            else dec.coords[t] @ S @ dec.basis
        torch.testing.assert_close(rebuilt, d)
        norms = torch.linalg.vector_norm(dec.coords[t], dim=-1 if stack == "horizontal" else 0)
        assert torch.all((norms - 1).abs() < 1e-12)
    eye = torch.eye(k, dtype=torch.float64)
    B = dec.basis
    torch.testing.assert_close(B.T @ B if stack == "horizontal" else B @ B.T, eye)


def test_single_task_and_identical_tasks_come_back_unchanged():
    (d,) = _deltas(T=1)
    torch.testing.assert_close(lora.drm_merge([d], rank_tol=0), d)
    torch.testing.assert_close(lora.drm_merge([d, d, d], rank_tol=0), d)
    torch.testing.assert_close(lora.drm_merge([d, d], rank_tol=0, coeffs=[0.5, 0.5]), d / 2)


@pytest.mark.parametrize("stack", ["horizontal", "vertical"])
def test_updates_in_orthogonal_directions_are_summed_not_averaged(stack):
    g = torch.Generator().manual_seed(1)
    Q1 = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))[0]
    Q2 = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))[0]
    d1 = 3 * torch.outer(Q1[:, 0], Q2[:, 0])
    d2 = 2 * torch.outer(Q1[:, 1], Q2[:, 1])
    merged = lora.drm_merge([d1, d2], stack=stack)
    torch.testing.assert_close(merged, d1 + d2)
    # entry-wise averaging (task arithmetic with 1/T) halves both
    assert torch.dist((d1 + d2) / 2, merged) > 1


def test_drop_prunes_normalised_coordinates_and_sign_election_removes_conflicts():
    (d,) = _deltas(T=1, rank=3, seed=4)
    dec = lora.drm_decompose([d], rank_tol=1e-9)
    C = dec.coords[0]
    keep = C.abs() >= C.abs().flatten().sort(descending=True).values[C.numel() // 2 - 1]
    assert keep.sum() == C.numel() // 2
    want = dec.basis @ torch.diag(dec.scales[0]) @ (C * keep)
    torch.testing.assert_close(lora.drm_merge([d], drop=0.5, rank_tol=1e-9), want)
    # opposite updates: each entry keeps the sign of the larger one, and the disjoint mean
    # over the survivors returns the larger one
    torch.testing.assert_close(lora.drm_merge([d, -0.5 * d]), d)
    deltas = _deltas(T=2)
    with pytest.raises(ValueError, match="drop"):
        lora.drm_merge(deltas, drop=1.0)
    with pytest.raises(ValueError, match="coeffs"):
        lora.drm_merge(deltas, coeffs=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="one shape"):
        lora.drm_merge([torch.ones(3, 3), torch.ones(3, 4)])
    with pytest.raises(ValueError, match="2 dimensions"):
        lora.drm_merge([torch.ones(3)])

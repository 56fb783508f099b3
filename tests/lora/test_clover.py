"""CLOVER: lossless per-head orthogonalisation of Q–K and V–O pairs, and training of the
singular values only."""

import copy

import pytest
import torch

from refimpl import lora

from .lora_models import TinyAttention

H, DH, D = 3, 4, 12


def _x(seed=1):
    return torch.randn(2, 5, D, generator=torch.Generator().manual_seed(seed))


def test_orthogonalize_preserves_per_head_products():
    g = torch.Generator().manual_seed(0)
    L = torch.randn(H * DH, 10, generator=g, dtype=torch.float64)
    R = torch.randn(H * DH, 7, generator=g, dtype=torch.float64)
    P, s, Q = lora.clover_orthogonalize(L, R, H)
    assert P.shape == L.shape and Q.shape == R.shape and s.shape == (H, DH)
    eye = torch.eye(DH, dtype=torch.float64)
    for h in range(H):
        rows = slice(h * DH, (h + 1) * DH)
        torch.testing.assert_close(P[rows].T @ torch.diag(s[h]) @ Q[rows], L[rows].T @ R[rows])
        torch.testing.assert_close(P[rows] @ P[rows].T, eye)
        torch.testing.assert_close(Q[rows] @ Q[rows].T, eye)
        torch.testing.assert_close(s[h], torch.linalg.svdvals(L[rows].T @ R[rows])[:DH])
    with pytest.raises(ValueError, match="divisible"):
        lora.clover_orthogonalize(L, R, 5)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("train", ["diagonal", "full"])
def test_clover_wrap_step0_count_merge_save(bias, train, tmp_path):
    base = TinyAttention(bias=bias)
    model = lora.clover_wrap(copy.deepcopy(base), H, qk=[("q", "k")], vo=[("v", "o")],
                             train=train)
    x = _x()
    torch.testing.assert_close(model(x), base(x), rtol=1e-5, atol=1e-5)
    layers = lora.adapter_layers(model)
    assert set(layers) == {"q", "v"} and all(isinstance(m, lora.CLOVERLinear)
                                            for m in layers.values())
    per_pair = H * DH * DH if train == "full" else H * DH
    assert lora.trainable_parameters(model) == 2 * per_pair
    # key rows and output columns are orthonormal per head, and frozen
    for h in range(H):
        rows = slice(h * DH, (h + 1) * DH)
        torch.testing.assert_close(model.k.weight[rows] @ model.k.weight[rows].T
                                   + (model.k.bias[rows, None] * model.k.bias[None, rows]
                                      if bias else 0), torch.eye(DH), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.o.weight[:, rows].T @ model.o.weight[:, rows],
                                   torch.eye(DH), rtol=1e-5, atol=1e-5)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for m in layers.values():
            m.clover_core.mul_(1 + 0.3 * torch.randn(m.clover_core.shape, generator=g))
            if train == "full":
                m.clover_core.add_(0.1 * torch.randn(m.clover_core.shape, generator=g))
    before = model(x).detach()
    assert not torch.allclose(before, base(x), atol=1e-3)
    model(x).square().sum().backward()
    for n, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, n
    weights = {n: (m.base.weight.clone(), m.base.bias) for n, m in layers.items()}
    lora.merge(model)
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-5)
    lora.unmerge(model)
    for n, m in layers.items():
        torch.testing.assert_close(m.base.weight, weights[n][0])
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-5)
    lora.save_adapter(model, tmp_path / "clover.safetensors")
    fresh = lora.clover_wrap(copy.deepcopy(base), H, qk=[("q", "k")], vo=[("v", "o")],
                             train=train)
    lora.load_adapter(fresh, tmp_path / "clover.safetensors")
    torch.testing.assert_close(fresh(x), before, rtol=0, atol=0)


def test_diagonal_training_updates_every_direction_of_the_query():
    """Per head the update T_h P_h − P_h has rank ≤ d_h; over all heads it is full rank."""
    model = lora.clover_wrap(TinyAttention(), H, qk=[("q", "k")])
    q = lora.adapter_layers(model)["q"]
    with torch.no_grad():
        q.clover_core.mul_(torch.linspace(0.5, 1.5, H * DH).reshape(H, DH))
    assert torch.linalg.matrix_rank(q.delta_weight()) == D


def test_clover_refusals():
    with pytest.raises(ValueError, match="train"):
        lora.clover_wrap(TinyAttention(), H, qk=[("q", "k")], train="lowrank")
    with pytest.raises(TypeError, match=r"torch\.nn\.Linear"):
        lora.clover_wrap(TinyAttention(), H, qk=[("q", "nothing")])
    with pytest.raises(ValueError, match="one pair only"):
        lora.clover_wrap(TinyAttention(), H, qk=[("q", "k")], vo=[("v", "k")])
    with pytest.raises(ValueError, match="at least one"):
        lora.clover_wrap(TinyAttention(), H)

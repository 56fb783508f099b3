"""Riemannian SGD (refimpl.optim.riemannian) on RiemannLoRA layers: monotone descent, and
refusals."""

import copy
import itertools

import pytest
import torch
from torch import nn

from refimpl import lora
from refimpl.optim import Retractable, RiemannianSGD


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 20), nn.Tanh(), nn.Linear(20, 5))


def _batch(n=7, seed=1):
    return torch.randn(n, 12, generator=torch.Generator().manual_seed(seed))


def test_riemannian_sgd_descends():
    base = _model()
    model = lora.wrap(copy.deepcopy(base), ["0"], lora.RiemannLoRAConfig(rank=3))
    x = _batch(64)
    teacher = copy.deepcopy(base)  # differs from the base by a rank-one change of layer 0
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        teacher[0].weight += torch.outer(torch.randn(20, generator=g), torch.randn(12, generator=g))
        target = teacher(x)
    opt = RiemannianSGD(model, lr=1.0)
    losses = []
    for _ in range(30):
        loss = (model(x) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    assert all(b <= a + 1e-6 for a, b in itertools.pairwise(losses))


def test_step_with_closure_and_refusals():
    model = lora.wrap(_model(), ["0"], lora.RiemannLoRAConfig(rank=2))
    opt = RiemannianSGD(model, lr=0.1)
    assert opt.layers == [model[0]] and isinstance(model[0], Retractable)
    x = _batch()

    def closure():
        opt.zero_grad()
        loss = model(x).square().mean()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss.detach()) > 0 and float(model[0].tangent_U.detach().abs().max()) == 0
    with pytest.raises(ValueError, match="no Retractable modules"):
        RiemannianSGD(lora.wrap(_model(), ["0"], lora.LoRAConfig(rank=2)))
    with pytest.raises(ValueError, match="lr"):
        RiemannianSGD(model, lr=0)
    assert not isinstance(nn.Linear(2, 2), Retractable)

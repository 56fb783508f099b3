"""RiemannLoRA (refimpl.lora.riemann): tangent gradients and the retraction (the optimizer is
tested in tests/optim/test_riemannian.py)."""

import torch
from torch import nn

from refimpl import lora
from refimpl.optim import Retractable


def _close(a, b):
    # the dense reference goes through delta_weight(), which is formed in fp32
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def _layer_and_grad(seed=0):
    torch.manual_seed(seed)
    base = nn.Linear(10, 8).double()
    model = lora.wrap(nn.Sequential(base), ["0"], lora.RiemannLoRAConfig(rank=3))
    layer = lora.adapter_layers(model)["0"]
    x = torch.randn(20, 10, dtype=torch.float64)
    target = torch.randn(20, 8, dtype=torch.float64)
    loss = (layer(x) - target).square().sum()
    loss.backward()
    # the Euclidean gradient with respect to ΔW, formed densely for the check
    W_full = (layer.base.weight + layer.delta_weight().double()).detach().requires_grad_(True)
    ((x @ W_full.T + layer.base.bias - target).square().sum()).backward()
    return layer, W_full.grad, x, target


def test_tangent_gradients_are_the_projected_gradient():
    layer, G, *_ = _layer_and_grad()
    U, V = layer.U, layer.V
    _close(layer.tangent_U.grad, G @ V)
    _close(layer.tangent_V.grad, G.T @ U)
    Sdot, Up, Vp = layer.riemannian_gradient()
    PG = U @ Sdot @ V.T + Up @ V.T + U @ Vp.T
    Pu, Pv = U @ U.T, V @ V.T
    want = Pu @ G + G @ Pv - Pu @ G @ Pv
    _close(PG, want)


def test_retraction_is_the_truncated_svd_of_the_step():
    layer, G, *_ = _layer_and_grad(1)
    U, S, V = layer.U.clone(), layer.S.clone(), layer.V.clone()
    Pu, Pv = U @ U.T, V @ V.T
    step = U @ S @ V.T - 0.05 * (Pu @ G + G @ Pv - Pu @ G @ Pv)
    Us, ss, Vts = torch.linalg.svd(step)
    want = Us[:, :3] @ torch.diag(ss[:3]) @ Vts[:3]
    layer.retract_(0.05)
    _close(layer.U @ layer.S @ layer.V.T, want)
    eye = torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(layer.U.T @ layer.U, eye)
    torch.testing.assert_close(layer.V.T @ layer.V, eye)
    assert all(float(p.detach().abs().max()) == 0 for p in (layer.tangent_S, layer.tangent_U,
                                                     layer.tangent_V))


def test_the_layer_is_retractable_and_starts_from_the_top_svd():
    layer, *_ = _layer_and_grad(2)
    assert isinstance(layer, Retractable)
    assert layer.tangent_parameters() == (layer.tangent_S, layer.tangent_U, layer.tangent_V)
    W = layer.base.weight + layer.U @ layer.S @ layer.V.T
    s = torch.linalg.svdvals(W)
    torch.testing.assert_close(torch.diagonal(layer.S), s[:3])

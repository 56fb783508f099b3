"""FLoRA (refimpl.lora.flora): the Tucker-format update of linear and Conv2d layers."""

import copy

import pytest
import torch
from torch import nn

from refimpl import lora

from .lora_models import (
    Tiny,
    TinyConv,
    assert_conv_update,
    assert_merge_round_trip,
    batch,
    images,
    perturb,
)

CONVS = ["c1", "c2"]
R = 3


@pytest.mark.parametrize(("dilation", "padding_mode"), [(1, "zeros"), (2, "reflect")])
@pytest.mark.parametrize("spatial_rank", [None, 2])
def test_flora_conv2d_tucker_update(dilation, padding_mode, spatial_rank, tmp_path):
    base = TinyConv(dilation, padding_mode)
    cfg = lora.FLoRAConfig(rank=R, spatial_rank=spatial_rank, alpha=2)
    model = lora.wrap(copy.deepcopy(base), CONVS, cfg)
    layers = lora.adapter_layers(model)
    assert all(isinstance(m, lora.FLoRAConv2d) for m in layers.values())
    x = images()
    torch.testing.assert_close(model(x), base(x), rtol=0, atol=0)
    k = 3 if spatial_rank is None else spatial_rank
    per = {n: R * (co + ci) + 2 * 3 * k + R * R * k * k for n, (co, ci) in
           {"c1": (8, 3), "c2": (6, 8)}.items()}
    assert lora.trainable_parameters(model) == sum(per.values())
    perturb(model, 1, scale=0.2)
    before = model(x).detach()
    assert not torch.allclose(before, base(x), atol=1e-3)
    c2 = layers["c2"]
    dW = c2.delta_weight()
    assert dW.shape == c2.base.weight.shape
    # multilinear rank of the update: (r, r, k, k) at most
    assert torch.linalg.matrix_rank(dW.flatten(1)) <= R
    assert torch.linalg.matrix_rank(dW.permute(2, 0, 1, 3).flatten(1)) <= k
    assert (c2.base.dilation, c2.base.padding_mode) == ((dilation,) * 2, padding_mode)
    assert_conv_update(c2, torch.relu(model.c1(x)).detach(), dW)
    assert_merge_round_trip(model, x, before)
    model(x).sum().backward()
    for n, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, n
    lora.save_adapter(model, tmp_path / "flora.safetensors")
    fresh = lora.wrap(copy.deepcopy(base), CONVS, cfg)
    lora.load_adapter(fresh, tmp_path / "flora.safetensors")
    torch.testing.assert_close(fresh(x), before, rtol=0, atol=0)
    with pytest.raises(ValueError, match="groups=2"):
        lora.wrap(nn.Sequential(nn.Conv2d(4, 6, 3, groups=2)), ["0"], cfg)


def test_flora_linear_update_is_a_two_mode_tucker_product():
    model = lora.wrap(Tiny(), ["fc"], lora.FLoRAConfig(rank=R, alpha=6))
    layer = lora.adapter_layers(model)["fc"]
    assert isinstance(layer, lora.FLoRALinear) and layer.scaling == 2.0
    perturb(model, 4)
    want = 2.0 * layer.flora_out @ layer.flora_core @ layer.flora_in.T
    torch.testing.assert_close(layer.delta_weight(), want)
    x = batch()
    torch.testing.assert_close(layer(x) - layer.base(x), x @ want.T, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="spatial_rank"):
        lora.FLoRAConfig(spatial_rank=0)
    with pytest.raises(ValueError, match="kernel size"):
        lora.wrap(TinyConv(), ["c1"], lora.FLoRAConfig(rank=2, spatial_rank=4))

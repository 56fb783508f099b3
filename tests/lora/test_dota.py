"""DoTA (refimpl.lora.dota): MPO cores of the weight, the residual frozen."""

import copy

import pytest
import torch

from refimpl import lora, tensor

from .lora_models import Tiny, batch


def test_dota_residual_and_full_bond():
    base = Tiny()
    model = lora.wrap(copy.deepcopy(base), ["fc"], lora.DoTAConfig(n_cores=2, bond=100))
    layer = lora.adapter_layers(model)["fc"]
    # at full bond the cores hold all of W and the frozen residual vanishes
    torch.testing.assert_close(layer.base.weight, torch.zeros(20, 12), rtol=0, atol=1e-5)
    torch.testing.assert_close(layer.delta_weight(), base.fc.weight, rtol=1e-5, atol=1e-5)
    x = batch()
    torch.testing.assert_close(model(x), base(x), rtol=1e-5, atol=1e-5)


def test_dota_cores_are_the_truncated_mpo_of_w():
    base = Tiny()
    model = lora.wrap(copy.deepcopy(base), ["fc"], lora.DoTAConfig(n_cores=3, bond=2))
    layer = lora.adapter_layers(model)["fc"]
    mpo = tensor.mpo_decompose(base.fc.weight.detach(), tensor.mpo_modes(20, 3),
                               tensor.mpo_modes(12, 3), bond=2)
    for ours, want in zip(layer.dota_cores, mpo.cores, strict=True):
        assert torch.equal(ours.detach(), want)
    torch.testing.assert_close(layer.base.weight, base.fc.weight - mpo.reconstruct())
    with pytest.raises(ValueError, match="bond"):
        lora.DoTAConfig(bond=0)
    with pytest.raises(ValueError, match="n_cores"):
        lora.DoTAConfig(n_cores=0)

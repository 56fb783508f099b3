"""SoKA (refimpl.lora.kronecker): Kronecker terms from the weight's Kronecker-product SVD, the
residual frozen."""

import copy

import pytest
import torch

from refimpl import lora, tensor

from .lora_models import Tiny, batch, perturb


def test_soka_terms_are_the_leading_kronecker_terms_of_w():
    base = Tiny()
    model = lora.wrap(copy.deepcopy(base), ["fc"], lora.SoKAConfig(rank=2))
    layer = lora.adapter_layers(model)["fc"]
    W = base.fc.weight.detach()
    want = tensor.kron_svd(W, 4, 3, 2).reconstruct()  # 20 = 4·5, 12 = 3·4
    torch.testing.assert_close(layer.delta_weight(), want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(layer.base.weight, W - want, rtol=1e-4, atol=1e-5)
    perturb(model, 2)
    x = batch()
    torch.testing.assert_close(layer(x) - layer.base(x), x @ layer.delta_weight().T, rtol=1e-5,
                               atol=1e-5)


def test_soka_energy_rank_is_capped():
    model = lora.wrap(Tiny(), ["fc"], lora.SoKAConfig(energy=1.0, max_rank=3))
    assert lora.adapter_layers(model)["fc"].kron_A.shape[0] == 3
    with pytest.raises(ValueError, match="max_rank"):
        lora.SoKAConfig(max_rank=0)
    with pytest.raises(ValueError, match="Kronecker rank of fc"):
        lora.wrap(Tiny(), ["fc"], lora.SoKAConfig(rank=13))

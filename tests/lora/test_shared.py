"""LoTR, NoRA and Block-LoRA (refimpl.lora.shared): shared factors, the Tucker-2 form of LoTR's
update, Block-LoRA as LoRA with a repeated down block."""

import copy

import pytest
import torch

from refimpl import lora, tensor

from .lora_models import R, Tiny, batch, perturb


def test_lotr_shares_factors_across_layers(tmp_path):
    base = Tiny()
    model = lora.wrap(copy.deepcopy(base), ["q", "v"], lora.LoTRConfig(rank=R))
    layers = lora.adapter_layers(model)
    assert layers["q"].lotr_A is layers["v"].lotr_A and layers["q"].lotr_B is layers["v"].lotr_B
    assert lora.trainable_parameters(model) == R * (12 + 12) + 2 * R * R
    x = batch()
    torch.testing.assert_close(model(x), base(x), rtol=0, atol=0)
    perturb(model)
    before = model(x).detach()
    lora.merge(model)
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-5)
    lora.unmerge(model)
    lora.save_adapter(model, tmp_path / "lotr.safetensors")
    fresh = lora.wrap(copy.deepcopy(base), ["q", "v"], lora.LoTRConfig(rank=R))
    lora.load_adapter(fresh, tmp_path / "lotr.safetensors")
    torch.testing.assert_close(fresh(x), before, rtol=0, atol=0)
    assert fresh.q.lotr_A is fresh.v.lotr_A  # loading keeps the sharing
    with pytest.raises(ValueError, match="one shape"):
        lora.wrap(Tiny(), ["q", "fc"], lora.LoTRConfig(rank=R))


def test_lotr_update_is_a_tucker2_tensor():
    model = lora.wrap(Tiny(), ["q", "v"], lora.LoTRConfig(rank=R, alpha=2))
    perturb(model, 3)
    layers = list(lora.adapter_layers(model).values())
    stack = torch.stack([layer.delta_weight() for layer in layers]).detach()
    A, B = layers[0].lotr_A.detach(), layers[0].lotr_B.detach()
    G = torch.stack([layer.scaling * layer.lotr_G.detach() for layer in layers])
    torch.testing.assert_close(tensor.Tucker2(B, G, A.T).reconstruct(), stack)
    # so its Tucker-2 fit at ranks (r, r) is exact
    fit = tensor.tucker2(stack, R)
    torch.testing.assert_close(fit.reconstruct(), stack, rtol=1e-4, atol=1e-5)


def test_nora_trains_an_inner_lora_between_frozen_svd_factors():
    base = Tiny()
    model = lora.wrap(copy.deepcopy(base), ["fc"], lora.NoRAConfig(rank=6, inner_rank=2))
    layer = lora.adapter_layers(model)["fc"]
    assert torch.equal(layer.base.weight, base.fc.weight)
    U, S, Vt = torch.linalg.svd(base.fc.weight.detach(), full_matrices=False)
    torch.testing.assert_close(layer.outer_B @ layer.outer_A, (U[:, :6] * S[:6]) @ Vt[:6],
                               rtol=1e-4, atol=1e-5)
    perturb(model, 1)
    assert torch.linalg.matrix_rank(layer.delta_weight()) == 2
    with pytest.raises(ValueError, match="inner_rank=7 exceeds rank=6"):
        lora.NoRAConfig(rank=6, inner_rank=7)


def test_block_lora_is_lora_with_a_repeated_down_block():
    base = Tiny()
    model = lora.wrap(copy.deepcopy(base), ["fc"], lora.BlockLoRAConfig(rank=2, n_blocks=4,
                                                                        alpha=3))
    layer = lora.adapter_layers(model)["fc"]
    assert layer.block_A.shape == (2, 3) and layer.block_B.shape == (20, 2)
    perturb(model, 6)
    ref = lora.wrap(copy.deepcopy(base), ["fc"], lora.LoRAConfig(rank=2, alpha=3))
    lora.adapter_layers(ref)["fc"].set_factors(layer.block_A.detach().repeat(1, 4),
                                               layer.block_B.detach())
    x = batch()
    torch.testing.assert_close(model(x), ref(x), rtol=1e-5, atol=1e-6)
    assert torch.linalg.matrix_rank(layer.delta_weight()) == 2
    with pytest.raises(ValueError, match="must divide"):
        lora.wrap(Tiny(), ["fc"], lora.BlockLoRAConfig(rank=2, n_blocks=5))
    with pytest.raises(ValueError, match="n_blocks"):
        lora.BlockLoRAConfig(n_blocks=0)

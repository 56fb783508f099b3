"""Adapters on a whole model (refimpl.lora.model) for every method of the registry: step-0
invariance, parameter counts, merge/unmerge (safe by default), save/load, where gradients flow;
wrap's and load's refusals."""

import pytest
import torch
from torch import nn

from refimpl import lora

from .lora_models import (
    METHODS,
    SHAPES,
    TARGETS,
    R,
    Tiny,
    assert_merge_round_trip,
    batch,
    perturb,
    wrapped,
)


@pytest.mark.parametrize("name", list(METHODS))
def test_step0_count_merge_save_grads(name, tmp_path):
    base, model = wrapped(name)
    x = batch()
    # step-0 invariance (LQ-LoRA: up to its quantization error)
    tol = 2e-5 if METHODS[name][2] else 0.2
    torch.testing.assert_close(model(x), base(x), rtol=tol, atol=tol)
    # parameter count = the method's formula
    per_layer = METHODS[name][1]
    assert lora.trainable_parameters(model) == sum(per_layer(*SHAPES[n]) for n in TARGETS)
    # the untouched layer and all base weights are frozen
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and not any(".base." in n or n.startswith("head") for n in trainable)
    # gradients only on the adapters
    perturb(model)
    model(x).sum().backward()
    for n, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, n
    # merge / unmerge round trip
    before = model(x).detach()
    assert_merge_round_trip(model, x, before)
    # save / load round trip into a freshly wrapped model
    path = tmp_path / "adapter.safetensors"
    lora.save_adapter(model, path)
    _, fresh = wrapped(name, base)
    assert not torch.allclose(fresh(x), before)
    lora.load_adapter(fresh, path)
    torch.testing.assert_close(fresh(x), before, rtol=0, atol=0)


def test_safe_merge_refuses_non_finite():
    _, model = wrapped("lora")
    layer = lora.adapter_layers(model)["fc"]
    with torch.no_grad():
        layer.lora_B.fill_(3e38)
        layer.lora_A.fill_(3e38)
    w = {n: m.base.weight.clone() for n, m in lora.adapter_layers(model).items()}
    with pytest.raises(ValueError, match="NaN or Inf"):
        lora.merge(model)
    for n, m in lora.adapter_layers(model).items():
        assert not m.merged
        assert torch.equal(m.base.weight, w[n])
    with pytest.raises(ValueError, match="NaN or Inf"):
        layer.merge(safe=True)
    with pytest.raises(ValueError, match="NaN or Inf"):
        layer.merge()  # safe is the default
    assert not hasattr(layer, "safe_merge")  # one way to merge safely
    layer.merge(safe=False)  # an explicit unsafe merge is allowed
    assert not torch.isfinite(layer.base.weight).all()


def test_wrap_refusals():
    with pytest.raises(ValueError, match="exceeds"):
        lora.wrap(Tiny(), ["q"], lora.LoRAConfig(rank=13))
    with pytest.raises(ValueError, match="matches no module"):
        lora.wrap(Tiny(), ["k_proj"], lora.LoRAConfig(rank=2))
    with pytest.raises(ValueError, match="matches no module"):
        lora.wrap(Tiny(), r"layers\.\d+", lora.LoRAConfig(rank=2))
    m = Tiny()
    m.q.weight = nn.Parameter(m.q.weight.data.to(torch.int32), requires_grad=False)
    with pytest.raises(TypeError, match="non-float"):
        lora.wrap(m, ["q"], lora.LoRAConfig(rank=2))
    seq = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    with pytest.raises(TypeError, match=r"nn\.Linear, nn\.Embedding and nn\.Conv2d"):
        lora.wrap(seq, ["1"], lora.LoRAConfig(rank=2))
    emb = nn.Sequential(nn.Embedding(10, 4))
    with pytest.raises(TypeError, match=r"only nn\.Linear"):
        lora.wrap(emb, ["0"], lora.DoRAConfig(rank=2))
    with pytest.raises(ValueError, match="matches no module"):
        lora.input_covariances(Tiny(), r"nothing\..*", [batch()])
    model = lora.wrap(Tiny(), ["q"], lora.LoRAConfig(rank=2))
    with pytest.raises(ValueError, match="already adapted"):
        lora.wrap(model, ["q"], lora.LoRAConfig(rank=2))
    with pytest.raises(ValueError, match="no adapter layers"):
        lora.merge(Tiny())


def test_load_refuses_mismatched_files(tmp_path):
    _, model = wrapped("lora")
    lora.save_adapter(model, tmp_path / "a.safetensors")
    other = lora.wrap(Tiny(), ["q", "v"], lora.LoRAConfig(rank=R))
    with pytest.raises(ValueError, match="holds layers"):
        lora.load_adapter(other, tmp_path / "a.safetensors")
    bigger = lora.wrap(Tiny(), TARGETS, lora.LoRAConfig(rank=R + 1))
    with pytest.raises(ValueError, match="shape"):
        lora.load_adapter(bigger, tmp_path / "a.safetensors")
    _, dora = wrapped("dora")
    with pytest.raises(ValueError, match="holds layers"):
        lora.load_adapter(dora, tmp_path / "a.safetensors")
    lora.merge(model)
    with pytest.raises(RuntimeError, match="unmerge"):
        lora.save_adapter(model, tmp_path / "b.safetensors")

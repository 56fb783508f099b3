"""VeRA (refimpl.lora.vera): shared frozen projections, and parity with Hugging Face PEFT."""

import copy

import pytest
import torch

from refimpl import lora

from .lora_models import TARGETS, Tiny, batch, close, run_backward, wrapped


def test_vera_shares_projections_across_layers():
    _, model = wrapped("vera")
    layers = lora.adapter_layers(model)
    assert torch.equal(layers["q"].vera_A, layers["fc"].vera_A)
    assert torch.equal(layers["fc"].vera_B[:12], layers["q"].vera_B)
    with pytest.raises(ValueError, match="exceeds"):
        lora.wrap(Tiny(), TARGETS, lora.VeRAConfig(rank=13))


def test_vera_matches_peft():
    peft = pytest.importorskip("peft")
    base = Tiny()
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.VeraConfig(
        r=4, target_modules=TARGETS, d_initial=0.1))
    ours = lora.wrap(copy.deepcopy(base), TARGETS, lora.VeRAConfig(rank=4, d_initial=0.1))
    x = batch()
    close(ours(x), base(x), 0)
    tl = {n.removeprefix("base_model.model."): m for n, m in theirs.named_modules()
          if hasattr(m, "vera_lambda_d") and len(m.vera_lambda_d)}
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for n, layer in lora.adapter_layers(ours).items():
            t = tl[n]
            layer.vera_A.copy_(t.vera_A["default"][:, :layer.in_features])
            layer.vera_B.copy_(t.vera_B["default"][:layer.out_features])
            d, b = torch.randn(4, generator=g), torch.randn(layer.out_features, generator=g)
            layer.vera_d.copy_(d)
            layer.vera_b.copy_(b)
            t.vera_lambda_d["default"].copy_(d)
            t.vera_lambda_b["default"].copy_(b)
    o1, g1 = run_backward(ours, x)
    o2, g2 = run_backward(theirs, x)
    close(o1, o2)
    close(g1, g2)
    for n, layer in lora.adapter_layers(ours).items():
        close(layer.vera_d.grad, tl[n].vera_lambda_d["default"].grad)
        close(layer.vera_b.grad, tl[n].vera_lambda_b["default"].grad)
    assert lora.trainable_parameters(ours) == sum(
        p.numel() for p in theirs.parameters() if p.requires_grad)

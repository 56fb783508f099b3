"""LoRA and FLoRA on torch.nn.Conv2d: step-0 invariance, parameter count, merge round trip,
save/load, refusals, and (LoRA) parity with Hugging Face PEFT for the same factors."""

import copy

import pytest
import torch
from lora_models import TinyConv, images
from torch import nn

from refimpl import lora

CONVS = ["c1", "c2"]
R = 3


def _perturb(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.2 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize(("dilation", "padding_mode"), [(1, "zeros"), (2, "reflect")])
@pytest.mark.parametrize("rslora", [False, True])
def test_conv2d_step0_count_merge_save(dilation, padding_mode, rslora, tmp_path):
    base = TinyConv(dilation, padding_mode)
    cfg = lora.LoRAConfig(rank=R, alpha=5, rslora=rslora)
    model = lora.wrap(copy.deepcopy(base), [*CONVS, "head"], cfg)
    layers = lora.adapter_layers(model)
    assert isinstance(layers["c1"], lora.LoRAConv2d) and isinstance(layers["head"], lora.LoRALinear)
    assert layers["c2"].scaling == (5 / R**0.5 if rslora else 5 / R)
    x = images()
    torch.testing.assert_close(model(x), base(x), rtol=0, atol=0)
    # r(c_in·kh·kw + c_out) per conv, r(d_in + d_out) for the head
    assert lora.trainable_parameters(model) == R * (3 * 9 + 8) + R * (8 * 9 + 6) + R * (6 + 4)
    _perturb(model)
    before = model(x).detach()
    assert not torch.allclose(before, base(x), atol=1e-3)
    # the update the forward adds is the convolution with delta_weight
    c2 = layers["c2"]
    h = torch.relu(model.c1(x)).detach()
    b = c2.base
    dense = nn.Conv2d(8, 6, 3, stride=2, padding=dilation, dilation=dilation,
                      padding_mode=padding_mode, bias=False)
    with torch.no_grad():
        dense.weight.copy_(c2.delta_weight())
    torch.testing.assert_close(c2(h) - b(h), dense(h), rtol=1e-5, atol=1e-5)
    # merge / unmerge round trip
    w = {n: m.base.weight.clone() for n, m in layers.items()}
    lora.merge(model)
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-5)
    lora.unmerge(model)
    for n, m in layers.items():
        torch.testing.assert_close(m.base.weight, w[n], rtol=1e-5, atol=1e-6)
    layers["c1"].safe_merge()
    layers["c1"].unmerge()
    # gradients reach the conv factors only
    model(x).sum().backward()
    for n, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, n
    # save / load
    lora.save_adapter(model, tmp_path / "conv.safetensors")
    fresh = lora.wrap(copy.deepcopy(base), [*CONVS, "head"], cfg)
    lora.load_adapter(fresh, tmp_path / "conv.safetensors")
    torch.testing.assert_close(fresh(x), before, rtol=0, atol=0)


def test_conv2d_refusals():
    grouped = nn.Sequential(nn.Conv2d(4, 6, 3, groups=2))
    with pytest.raises(ValueError, match="groups=2"):
        lora.wrap(grouped, ["0"], lora.LoRAConfig(rank=2))
    with pytest.raises(NotImplementedError, match=r"init='pissa'.*Conv2d"):
        lora.wrap(TinyConv(), ["c1"], lora.LoRAConfig(rank=2, init="pissa"))
    with pytest.raises(TypeError, match=r"DoRAConfig adapts only nn\.Linear"):
        lora.wrap(TinyConv(), ["c1"], lora.DoRAConfig(rank=2))
    with pytest.raises(ValueError, match="exceeds"):  # min(8, 3·3·3) = 8 for c1
        lora.wrap(TinyConv(), ["c1"], lora.LoRAConfig(rank=9))


@pytest.mark.parametrize("rslora", [False, True])
def test_conv2d_matches_peft(rslora):
    peft = pytest.importorskip("peft")
    base = TinyConv()
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(
        r=R, lora_alpha=5, target_modules=CONVS, use_rslora=rslora))
    ours = lora.wrap(copy.deepcopy(base), CONVS, lora.LoRAConfig(rank=R, alpha=5, rslora=rslora))
    x = images()
    tl = {n: getattr(theirs.base_model.model, n) for n in CONVS}
    ol = lora.adapter_layers(ours)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for n in CONVS:
            ta, tb = tl[n].lora_A["default"].weight, tl[n].lora_B["default"].weight
            assert ta.shape == ol[n].lora_A.shape and tb.shape == ol[n].lora_B.shape
            A = 0.3 * torch.randn(ta.shape, generator=g)
            B = 0.3 * torch.randn(tb.shape, generator=g)
            ol[n].set_factors(A, B)
            ta.copy_(A)
            tb.copy_(B)
    outs, grads = [], []
    for m in (ours, theirs):
        xi = x.clone().requires_grad_(True)
        out = m(xi)
        (out.square().sum() + out.sum()).backward()
        outs.append(out.detach())
        grads.append(xi.grad)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-5)
    for n in CONVS:
        torch.testing.assert_close(ol[n].lora_A.grad, tl[n].lora_A["default"].weight.grad,
                                   rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(ol[n].lora_B.grad, tl[n].lora_B["default"].weight.grad,
                                   rtol=1e-4, atol=1e-5)
        # merged kernels agree too
        torch.testing.assert_close(ol[n].delta_weight(), tl[n].get_delta_weight("default"),
                                   rtol=1e-4, atol=1e-6)
    assert lora.trainable_parameters(ours) == sum(
        p.numel() for p in theirs.parameters() if p.requires_grad)


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
    _perturb(model, 1)
    before = model(x).detach()
    assert not torch.allclose(before, base(x), atol=1e-3)
    c2 = layers["c2"]
    dW = c2.delta_weight()
    assert dW.shape == c2.base.weight.shape
    # multilinear rank of the update: (r, r, k, k) at most
    assert torch.linalg.matrix_rank(dW.flatten(1)) <= R
    assert torch.linalg.matrix_rank(dW.permute(2, 0, 1, 3).flatten(1)) <= k
    h = torch.relu(model.c1(x)).detach()
    dense = nn.Conv2d(8, 6, 3, stride=2, padding=dilation, dilation=dilation,
                      padding_mode=padding_mode, bias=False)
    with torch.no_grad():
        dense.weight.copy_(dW)
    torch.testing.assert_close(c2(h) - c2.base(h), dense(h), rtol=1e-5, atol=1e-5)
    w = {n: m.base.weight.clone() for n, m in layers.items()}
    lora.merge(model)
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-5)
    lora.unmerge(model)
    for n, m in layers.items():
        torch.testing.assert_close(m.base.weight, w[n], rtol=1e-5, atol=1e-6)
    model(x).sum().backward()
    for n, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, n
    lora.save_adapter(model, tmp_path / "flora.safetensors")
    fresh = lora.wrap(copy.deepcopy(base), CONVS, cfg)
    lora.load_adapter(fresh, tmp_path / "flora.safetensors")
    torch.testing.assert_close(fresh(x), before, rtol=0, atol=0)
    with pytest.raises(ValueError, match="groups=2"):
        lora.wrap(nn.Sequential(nn.Conv2d(4, 6, 3, groups=2)), ["0"], cfg)

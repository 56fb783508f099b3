"""DoRA and EDoRA (refimpl.lora.dora): the factored norm, the rescaling in low precision, the
detached norm in the backward pass, and parity with Hugging Face PEFT."""

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from refimpl import lora

from .lora_models import check_matches_peft

TOL = {torch.float64: 1e-10, torch.float32: 2e-5, torch.bfloat16: 2e-5}


@settings(max_examples=40, deadline=None)
@given(d_out=st.integers(1, 40), d_in=st.integers(1, 40), data=st.data(),
       dtype=st.sampled_from([torch.float64, torch.float32, torch.bfloat16]),
       s=st.floats(0.05, 4.0), seed=st.integers(0, 2**31 - 1))
def test_factored_norm_equals_dense(d_out, d_in, data, dtype, s, seed):
    r = data.draw(st.integers(1, min(d_out, d_in)))
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(d_out, d_in, generator=g).to(dtype)
    A = torch.randn(r, d_in, generator=g).to(dtype)
    B = torch.randn(d_out, r, generator=g).to(dtype)
    got = lora.dora_norm_factored(W, A, B, s)
    # reference: the dense norm of the same (rounded) inputs in fp64
    want = lora.dora_norm_dense(W.double(), A.double(), B.double(), s)
    assert got.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    scale = (W.double().norm(dim=1) + s * (B.double().abs() @ A.double().abs()).norm(dim=1))
    assert torch.all((got.double() - want).abs() <= TOL[dtype] * scale + 1e-12)


def test_factored_norm_cancellation_clamped():
    W = torch.tensor([[1.0, 2.0, 3.0]])
    A = -W.clone()
    B = torch.ones(1, 1)
    n = lora.dora_norm_factored(W, A, B, 1.0)  # W + BA = 0 exactly
    assert n.item() >= 0 and n.item() < 1e-3


def test_dora_bf16_step0_exact_and_rescaling_without_cancellation():
    torch.manual_seed(0)
    base = nn.Linear(64, 32).to(torch.bfloat16)
    model = lora.wrap(nn.Sequential(base), ["0"], lora.DoRAConfig(rank=4))
    layer = lora.adapter_layers(model)["0"]
    x = torch.randn(5, 64, dtype=torch.bfloat16)
    assert torch.equal(layer(x), layer.base(x))
    # m = n (1 + 1e-5): the correction (m − n)/n is kept, not rounded away as m/n − 1 in bf16
    with torch.no_grad():
        n = layer.weight_norm()
        layer.magnitude.copy_((n * (1 + 2**-12)).to(torch.bfloat16))
    m = layer.magnitude.double()
    corr = (m - layer.weight_norm().double()) / layer.weight_norm().double()
    assert corr.abs().min() > 0
    wx = (x.double() @ layer.base.weight.double().T)
    want = layer.base(x).double() + corr * wx
    got = layer(x).double()
    assert (got - want).abs().max() < 0.02 * want.abs().max()


def test_dora_gradient_does_not_flow_through_the_norm():
    torch.manual_seed(0)
    model = lora.wrap(nn.Sequential(nn.Linear(8, 6)), ["0"], lora.DoRAConfig(rank=2))
    layer = lora.adapter_layers(model)["0"]
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(4, 8)
    layer(x).sum().backward()
    gA = layer.lora_A.grad.clone()
    # the same loss with the norm as a constant: identical gradient for A
    n = layer.weight_norm()
    A = layer.lora_A.detach().requires_grad_(True)
    W = layer.base.weight
    y = (layer.magnitude.detach() / n) * (x @ W.T + layer.scaling * (x @ A.T) @ layer.lora_B.T)
    y.sum().backward()
    torch.testing.assert_close(gA, A.grad)


@pytest.mark.gpu
def test_dora_on_cuda_bf16_matches_cpu_fp32():
    torch.manual_seed(0)
    base = nn.Linear(256, 128)
    cpu = lora.wrap(nn.Sequential(base), ["0"], lora.DoRAConfig(rank=16))
    with torch.no_grad():
        lora.adapter_layers(cpu)["0"].lora_B.normal_(std=0.05)
    gpu = copy.deepcopy(cpu).to("cuda", torch.bfloat16)
    x = torch.randn(32, 256)
    want = cpu(x)
    got = gpu(x.to("cuda", torch.bfloat16)).float().cpu()
    assert torch.allclose(got, want, rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("rslora", [False, True])
def test_dora_matches_peft(rslora):
    peft = pytest.importorskip("peft")
    check_matches_peft(peft, lora.DoRAConfig(rank=4, alpha=6, rslora=rslora), rslora=rslora,
                       dora=True)


def test_dora_config_refusals():
    with pytest.raises(ValueError, match="norm must be one of"):
        lora.DoRAConfig(norm="spectral")

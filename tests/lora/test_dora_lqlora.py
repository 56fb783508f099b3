"""DoRA's factored norm, DoRA's rescaling in low precision, LQ-LoRA's pieces."""

import copy
import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from refimpl import lora

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


def test_nf_codebook_and_quantizers():
    code = lora.lqlora.nf_codebook(4)
    assert code.numel() == 16 and (code == 0).any() and code.min() == -1 and code.max() == 1
    assert torch.all(code[1:] > code[:-1])
    g = torch.Generator().manual_seed(0)
    W = torch.randn(16, 32, generator=g)
    errs = {}
    for q in (lora.uniform_quantize, lora.nf_quantize):
        for bits in (2, 3, 4, 8):
            Q = q(W, bits, block=32)
            for row in Q.view(-1, 32):
                assert row.unique().numel() <= 2**bits
            errs[q.__name__, bits] = float((W - Q).norm())
        assert errs[q.__name__, 2] > errs[q.__name__, 3] > errs[q.__name__, 4] > \
            errs[q.__name__, 8]
    # uniform: error at most half a step per block
    Q = lora.uniform_quantize(W, 3, block=32)
    Wb, Qb = W.view(-1, 32), Q.view(-1, 32)
    step = (Wb.max(1).values - Wb.min(1).values) / 7
    assert torch.all((Wb - Qb).abs().max(1).values <= step / 2 + 1e-6)
    # NF beats (asymmetric min–max) uniform on Gaussian weights at 4 bits in large blocks;
    # in blocks of 16–64 the uniform grid's extra offset makes it as good or better
    W = torch.randn(128, 256, generator=g)
    e = [float((W - q(W, 4, block=256)).norm()) for q in (lora.nf_quantize,
                                                           lora.uniform_quantize)]
    assert e[0] < 0.95 * e[1]
    # a block size that does not divide the size
    assert lora.nf_quantize(torch.randn(5, 7), 4, block=8).shape == (5, 7)


def test_lq_decompose_beats_quantization_alone():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(48, 6, generator=g) @ torch.randn(6, 40, generator=g) * 0.5 \
        + 0.05 * torch.randn(48, 40, generator=g)
    dec = lora.lq_decompose(W, 6, bits=3, block=16)
    plain = float((W - lora.nf_quantize(W, 3, block=16)).norm())
    best = float((W - dec.Q - dec.B @ dec.A).norm())
    assert best == min(dec.errors)
    assert best < 0.5 * plain
    # the weighted variant is better in the weighted norm it optimises
    F = torch.ones(48, 40)
    F[:8] = 100.0
    decF = lora.lq_decompose(W, 3, bits=2, block=16, fisher=F)
    dec0 = lora.lq_decompose(W, 3, bits=2, block=16)

    def werr(d):
        return float((F.sqrt() * (W - d.Q - d.B @ d.A)).norm())

    assert werr(decF) < werr(dec0)


def test_allocate_bits_is_the_exact_optimum():
    rng = np.random.default_rng(0)
    names = ["a", "b", "c", "d"]
    sizes = {n: int(s) for n, s in zip(names, rng.integers(100, 1000, 4), strict=True)}
    errors = {n: {b: float(rng.uniform(1, 2) * 2.0**-b) for b in (2, 3, 4, 8)} for n in names}
    total = sum(sizes.values())
    for budget in (2.5, 3.0, 4.2, 6.0):
        got = lora.allocate_bits(errors, sizes, budget)
        best = min((sum(errors[n][b] for n, b in zip(names, bs, strict=True)), bs)
                   for bs in itertools.product((2, 3, 4, 8), repeat=4)
                   if sum(b * sizes[n] for n, b in zip(names, bs, strict=True)) / total
                   <= budget + 1e-12)
        assert sum(errors[n][got[n]] for n in names) == pytest.approx(best[0])
    with pytest.raises(ValueError, match="budget"):
        lora.allocate_bits(errors, sizes, 1.5)


def test_lqlora_config_with_per_matrix_bits():
    from lora_models import Tiny, batch

    base = Tiny()
    bits = {"q": 2, "v": 8, "fc": 4}
    model = lora.wrap(Tiny(), ["q", "v", "fc"], lora.LQLoRAConfig(rank=2, bits=bits, block=16))
    layers = lora.adapter_layers(model)
    assert {n: m.bits for n, m in layers.items()} == bits
    err = {n: float((getattr(base, n).weight - m.base.weight - m.delta_weight()).norm().detach())
           for n, m in layers.items()}
    assert err["v"] < err["fc"] < err["q"]
    assert torch.allclose(model(batch()), base(batch()), atol=0.2)
    with pytest.raises(ValueError, match="no entry"):
        lora.wrap(Tiny(), ["q", "head"], lora.LQLoRAConfig(rank=2, bits=bits))


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

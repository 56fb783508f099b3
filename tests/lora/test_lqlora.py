"""LQ-LoRA (refimpl.lora.lqlora): the quantizers, the alternating decomposition and its
Fisher-weighted variant, the bit allocation, and the configuration."""

import itertools

import numpy as np
import pytest
import torch

from refimpl import lora

from .lora_models import Tiny, batch


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


def test_bits_and_options_are_checked():
    W = torch.randn(4, 8)
    for bad in (0, 17):
        with pytest.raises(ValueError, match="bits"):
            lora.uniform_quantize(W, bad)
        with pytest.raises(ValueError, match="bits"):
            lora.LQLoRAConfig(bits=bad)
    with pytest.raises(TypeError, match="bits must be an integer"):
        lora.nf_codebook(2.0)
    with pytest.raises(ValueError, match="block"):
        lora.nf_quantize(W, 4, block=0)
    with pytest.raises(ValueError, match="quantizer must be one of"):
        lora.lq_decompose(W, 2, quantizer="fp4")
    with pytest.raises(ValueError, match="quantizer"):
        lora.LQLoRAConfig(quantizer="fp4")
    with pytest.raises(ValueError, match="bits"):
        lora.LQLoRAConfig(bits={"q": 4, "v": 20})

"""Shared by the chapter-09 tests: tiny models, the registry of every method's configuration
(``METHODS``), and the helpers of the PEFT parity tests."""

import copy
import dataclasses
import math

import torch
from torch import nn

from refimpl import lora, tensor


class Tiny(nn.Module):
    """Two blocks with named linear layers of different shapes (as q/v/fc in a transformer)."""

    def __init__(self, d=12, h=20, out=5, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.q = nn.Linear(d, d)
        self.v = nn.Linear(d, d, bias=False)
        self.fc = nn.Linear(d, h)
        self.head = nn.Linear(h, out)

    def forward(self, x):
        z = torch.tanh(self.q(x)) + self.v(x)
        return self.head(torch.relu(self.fc(z)))


def batch(n=7, d=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g)


class TinyConv(nn.Module):
    """A small conv net: a 3×3 conv, a strided (optionally dilated / reflect-padded) 3×3 conv,
    a linear head."""

    def __init__(self, dilation=1, padding_mode="zeros", seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 6, 3, stride=2, padding=dilation, dilation=dilation,
                            padding_mode=padding_mode, bias=False)
        self.head = nn.Linear(6, 4)

    def forward(self, x):
        z = self.c2(torch.relu(self.c1(x)))
        return self.head(z.mean((2, 3)))


def images(n=2, size=9, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g)


def assert_conv_update(layer, h, dW):
    """``layer(h) − layer.base(h)`` is the convolution of ``h`` with the kernel ``dW`` (the
    base's stride, padding, dilation and padding mode)."""
    b = layer.base
    dense = nn.Conv2d(b.in_channels, b.out_channels, b.kernel_size, stride=b.stride,
                      padding=b.padding, dilation=b.dilation, padding_mode=b.padding_mode,
                      bias=False)
    with torch.no_grad():
        dense.weight.copy_(dW)
    torch.testing.assert_close(layer(h) - b(h), dense(h), rtol=1e-5, atol=1e-5)


class TinyAttention(nn.Module):
    """One multi-head self-attention block (no positional encoding) with q/k/v/o projections."""

    def __init__(self, d=12, heads=3, bias=True, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.heads = heads
        self.q, self.k = nn.Linear(d, d, bias=bias), nn.Linear(d, d, bias=bias)
        self.v, self.o = nn.Linear(d, d, bias=bias), nn.Linear(d, d, bias=bias)

    def forward(self, x):
        def split(t):
            return t.unflatten(-1, (self.heads, -1)).transpose(-2, -3)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        att = torch.softmax(q @ k.mT / q.shape[-1] ** 0.5, -1)
        return self.o((att @ v).transpose(-2, -3).flatten(-2))


# -- the registry of every method ----------------------------------------------------------------

TARGETS = ["q", "v", "fc"]
SHAPES = {"q": (12, 12), "v": (12, 12), "fc": (20, 12)}  # (d_out, d_in)
R = 3


def mpo_count(o, i, n, bond):
    """Σ_k χ_{k−1} o_k i_k χ_k for the TT-SVD bond dimensions of
    :func:`refimpl.tensor.mpo_decompose`."""
    om, im = tensor.mpo_modes(o, n), tensor.mpo_modes(i, n)
    dims = [a * b for a, b in zip(om, im, strict=True)]
    chis = [1] + [min(bond, math.prod(dims[:k + 1]), math.prod(dims[k + 1:]))
                  for k in range(n - 1)] + [1]
    return sum(chis[k] * dims[k] * chis[k + 1] for k in range(n))


def banded(n, w):
    return n * (2 * w + 1) - w * (w + 1)


def _soka_count(o, i, K=2):
    (a, b), (c, d) = tensor.kron_shape(o), tensor.kron_shape(i)
    return K * (a * c + b * d)


# (config, trainable parameters per layer as a function of (d_out, d_in), exact at step 0)
METHODS = {
    "lora": (lora.LoRAConfig(rank=R, alpha=4), lambda o, i: R * (i + o), True),
    "rslora": (lora.LoRAConfig(rank=R, rslora=True), lambda o, i: R * (i + o), True),
    "pissa": (lora.LoRAConfig(rank=R, init="pissa"), lambda o, i: R * (i + o), True),
    "pissa_rsvd": (lora.LoRAConfig(rank=R, init="pissa_rsvd"), lambda o, i: R * (i + o), True),
    "milora": (lora.LoRAConfig(rank=R, alpha=2, init="milora"), lambda o, i: R * (i + o), True),
    "olora": (lora.LoRAConfig(rank=R, alpha=5, init="olora"), lambda o, i: R * (i + o), True),
    "corda_ipm": (lora.LoRAConfig(rank=R, init="corda_ipm"), lambda o, i: R * (i + o), True),
    "corda_kpm": (lora.LoRAConfig(rank=R, init="corda_kpm"), lambda o, i: R * (i + o), True),
    "slora": (lora.NLoRAConfig(rank=R), lambda o, i: R * (i + o) + R * R, True),
    "nlora": (lora.NLoRAConfig(rank=R, init="nlora"), lambda o, i: R * (i + o) + R * R, True),
    "inttune": (lora.NLoRAConfig(rank=R, init="inttune"), lambda o, i: R * R, True),
    "dora": (lora.DoRAConfig(rank=R), lambda o, i: R * (i + o) + o, True),
    "dora_dense": (lora.DoRAConfig(rank=R, norm="dense"), lambda o, i: R * (i + o) + o, True),
    "edora": (lora.EDoRAConfig(rank=R), lambda o, i: R * R + o, True),
    "vera": (lora.VeRAConfig(rank=R), lambda o, i: R + o, True),
    "svfit": (lora.SVFitConfig(rank=R), lambda o, i: R, True),
    "svft_diag": (lora.SVFTConfig(pattern="diagonal"), lambda o, i: min(o, i), True),
    "svft_band": (lora.SVFTConfig(pattern="banded", width=2),
                  lambda o, i: banded(min(o, i), 2), True),
    "svft_random": (lora.SVFTConfig(pattern="random", k=7), lambda o, i: min(o, i) + 7, True),
    "qrlora": (lora.QRLoRAConfig(rank=R), lambda o, i: R, True),
    "curlora": (lora.CURLoRAConfig(rank=R), lambda o, i: R * R, True),
    "lqlora": (lora.LQLoRAConfig(rank=R, bits=4, block=16), lambda o, i: R * (i + o), False),
    "nora": (lora.NoRAConfig(rank=6, inner_rank=2), lambda o, i: 2 * 6 * 2, True),
    "dota": (lora.DoTAConfig(n_cores=2, bond=3), lambda o, i: mpo_count(o, i, 2, 3), True),
    "dota3": (lora.DoTAConfig(n_cores=3, bond=2), lambda o, i: mpo_count(o, i, 3, 2), True),
    "flora": (lora.FLoRAConfig(rank=R), lambda o, i: R * (i + o) + R * R, True),
    "blocklora": (lora.BlockLoRAConfig(rank=R, n_blocks=3), lambda o, i: R * (i // 3 + o), True),
    # q, v: 12 = 3·4 both ways; fc: 20 = 4·5 rows, 12 = 3·4 columns
    "riemann": (lora.RiemannLoRAConfig(rank=R), lambda o, i: R * R + R * (i + o), True),
    "soka": (lora.SoKAConfig(rank=2), _soka_count, True),
}


def config_for(name, base):
    """``METHODS[name]``'s configuration, with CorDA's covariances computed on ``base``."""
    cfg = METHODS[name][0]
    if name.startswith("corda"):
        cov = lora.input_covariances(base, TARGETS, [batch(40, seed=9)])
        cfg = dataclasses.replace(cfg, covariances=cov)
    return cfg


def wrapped(name, base=None):
    """``(base, wrapped copy)`` for the method ``name`` on :data:`TARGETS` of a :class:`Tiny`."""
    base = Tiny() if base is None else base
    return base, lora.wrap(copy.deepcopy(base), TARGETS, config_for(name, base))


def assert_merge_round_trip(model, x, before):
    """Merging keeps the output ``before`` of ``model(x)``; unmerging restores the base weights
    and the output."""
    layers = lora.adapter_layers(model)
    weights = {n: m.base.weight.clone() for n, m in layers.items()}
    lora.merge(model)
    assert all(m.merged for m in layers.values())
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-5)
    lora.unmerge(model)
    for n, m in layers.items():
        torch.testing.assert_close(m.base.weight, weights[n], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-5)


def perturb(model, seed=0, scale=0.1):
    """Move every trainable parameter by ``scale`` times Gaussian noise."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(scale * torch.randn(p.shape, generator=g))


# -- PEFT parity ---------------------------------------------------------------------------------

def peft_layers(model):
    """PEFT's LoRA layers of ``model`` by the name of the module they wrap."""
    return {n.removeprefix("base_model.model."): m for n, m in model.named_modules()
            if hasattr(m, "lora_A") and hasattr(m, "base_layer") and len(m.lora_A)}


def run_backward(model, x):
    """Output and input gradient of ``sum(out²) + sum(out)``."""
    x = x.clone().requires_grad_(True)
    out = model(x)
    (out.square().sum() + out.sum()).backward()
    return out.detach(), x.grad


def close(a, b, tol=1e-5):
    # fp32: the two implementations order the same sums differently
    torch.testing.assert_close(a, b, rtol=max(tol, 1e-4) if tol else 0, atol=tol)


def same_factors_as_peft(ours, theirs, seed=3):
    """Give both models the same non-trivial LoRA factors (B ≠ 0) and, for DoRA, magnitudes."""
    g = torch.Generator().manual_seed(seed)
    ol, tl = lora.adapter_layers(ours), peft_layers(theirs)
    assert set(ol) == set(tl) == set(TARGETS)
    with torch.no_grad():
        for n, layer in ol.items():
            A = torch.randn(layer.lora_A.shape, generator=g) * 0.3
            B = torch.randn(layer.lora_B.shape, generator=g) * 0.3
            layer.lora_A.copy_(A)
            layer.lora_B.copy_(B)
            tl[n].lora_A["default"].weight.copy_(A)
            tl[n].lora_B["default"].weight.copy_(B)
            if isinstance(layer, lora.DoRALinear):
                m = layer.weight_norm() * (1 + 0.2 * torch.randn(layer.out_features, generator=g))
                layer.magnitude.copy_(m)
                tl[n].lora_magnitude_vector["default"].weight.copy_(m)


def compare_grads_with_peft(ours, theirs, magnitude=False):
    ol, tl = lora.adapter_layers(ours), peft_layers(theirs)
    for n in TARGETS:
        close(ol[n].lora_A.grad, tl[n].lora_A["default"].weight.grad)
        close(ol[n].lora_B.grad, tl[n].lora_B["default"].weight.grad)
        if magnitude:
            close(ol[n].magnitude.grad, tl[n].lora_magnitude_vector["default"].weight.grad)


def check_matches_peft(peft, cfg, *, rslora, dora):
    """Our ``cfg`` and PEFT's LoraConfig(r=4, lora_alpha=6) on :class:`Tiny`: equal at step 0,
    then (same factors) equal outputs, input gradients and factor gradients."""
    base = Tiny()
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(
        r=4, lora_alpha=6, target_modules=TARGETS, use_rslora=rslora, use_dora=dora))
    ours = lora.wrap(copy.deepcopy(base), TARGETS, cfg)
    x = batch()
    # default initialisation: B = 0, outputs equal the base model's
    close(ours(x), base(x), 0)
    close(theirs(x), base(x), 1e-6)
    same_factors_as_peft(ours, theirs)
    o1, g1 = run_backward(ours, x)
    o2, g2 = run_backward(theirs, x)
    close(o1, o2)
    close(g1, g2)
    compare_grads_with_peft(ours, theirs, magnitude=dora)
    assert lora.trainable_parameters(ours) == sum(
        p.numel() for p in theirs.parameters() if p.requires_grad)

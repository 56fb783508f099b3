"""The adapter protocol (refimpl.lora._core): each layer's forward adds its delta_weight, the
residual method and which methods use it, one dispatch on the module kind, the scaled and
energy-rank configurations, leading batch dimensions."""

import copy
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from refimpl import lora
from refimpl.lora._core import ScaledConfig, scaling_factor

from .lora_models import Tiny, batch, perturb, wrapped


def test_delta_weight_is_what_the_forward_adds():
    for name in ("lora", "slora", "vera", "svfit", "svft_band", "qrlora", "curlora", "blocklora",
                 "flora", "dota3"):
        _, model = wrapped(name)
        perturb(model, 1)
        x = batch()
        for layer in lora.adapter_layers(model).values():
            got = layer(x) - layer.base(x)
            torch.testing.assert_close(got, x @ layer.delta_weight().T, rtol=1e-5, atol=1e-5)


def test_non_residual_methods_leave_base_weights_alone():
    for name in ("lora", "dora", "vera", "curlora", "edora", "slora", "qrlora", "svft_diag"):
        base, model = wrapped(name)
        for n, layer in lora.adapter_layers(model).items():
            assert torch.equal(layer.base.weight, getattr(base, n).weight), (name, n)


@pytest.mark.parametrize("name", ["pissa", "milora", "olora", "corda_ipm", "nlora", "svfit",
                                  "soka", "dota", "riemann"])
def test_residual_methods_take_their_initial_update_out_of_the_base(name):
    base, model = wrapped(name)
    for n, layer in lora.adapter_layers(model).items():
        W = getattr(base, n).weight
        assert not torch.equal(layer.base.weight, W), n
        torch.testing.assert_close(layer.base.weight + layer.delta_weight(), W, rtol=1e-5,
                                   atol=1e-5)


def test_subtract_from_base_is_the_residual_in_the_wider_precision():
    torch.manual_seed(0)
    base = nn.Linear(6, 4).to(torch.bfloat16)
    W = base.weight.detach().clone()
    layer = lora.LoRALinear(base, 2, 1.0)
    delta = torch.randn(4, 6, dtype=torch.float32)
    layer._subtract_from_base(delta)
    assert layer.base.weight.dtype == torch.bfloat16 and layer.base.weight.is_contiguous()
    assert torch.equal(layer.base.weight, (W.float() - delta).to(torch.bfloat16))
    layer64 = lora.LoRALinear(nn.Linear(6, 4).double(), 2, 1.0)
    W64 = layer64.base.weight.detach().clone()
    d32 = torch.randn(4, 6)
    layer64._subtract_from_base(d32)
    assert torch.equal(layer64.base.weight, W64 - d32.double())
    assert not layer64.base.weight.requires_grad


def test_one_dispatch_on_the_module_kind():
    conv = nn.Sequential(nn.Conv2d(3, 4, 3))
    emb = nn.Sequential(nn.Embedding(10, 4))
    # LoRA adapts all three kinds, FLoRA linear and conv layers, the others linear layers only
    for cfg, kinds in ((lora.LoRAConfig(rank=2), "nn.Linear, nn.Embedding and nn.Conv2d"),
                       (lora.FLoRAConfig(rank=2), "nn.Linear and nn.Conv2d"),
                       (lora.DoRAConfig(rank=2), "only nn.Linear"),
                       (lora.VeRAConfig(rank=2), "only nn.Linear"),
                       (lora.DoTAConfig(), "only nn.Linear")):
        said = {f"nn.{t.__name__}" for layer in cfg.builders() for t in layer.base_types}
        assert said == {k for k in ("nn.Linear", "nn.Embedding", "nn.Conv2d") if k in kinds}
        with pytest.raises(TypeError, match=rf"module '1' is a ReLU; {type(cfg).__name__} "
                                            rf"adapts {kinds}"):
            lora.wrap(nn.Sequential(nn.Linear(3, 3), nn.ReLU()), ["1"], cfg)
        for model, kind in ((conv, nn.Conv2d), (emb, nn.Embedding)):
            if f"nn.{kind.__name__}" not in kinds:
                with pytest.raises(TypeError, match=f"{type(cfg).__name__} adapts"):
                    lora.wrap(copy.deepcopy(model), ["0"], cfg)
    assert isinstance(lora.wrap(copy.deepcopy(emb), ["0"], lora.LoRAConfig(rank=2))[0],
                      lora.LoRAEmbedding)
    assert isinstance(lora.wrap(copy.deepcopy(conv), ["0"], lora.FLoRAConfig(rank=2))[0],
                      lora.FLoRAConv2d)
    # a refused kind is refused before anything is frozen or replaced
    mixed = nn.Sequential(nn.Linear(3, 3), nn.Embedding(5, 3))
    with pytest.raises(TypeError, match="DoRAConfig adapts only"):
        lora.wrap(mixed, ["0", "1"], lora.DoRAConfig(rank=2))
    assert isinstance(mixed[0], nn.Linear) and mixed[0].weight.requires_grad
    # a method written against the protocol: builders() is all wrap needs
    @dataclass(frozen=True)
    class Plain(ScaledConfig):
        rank: int = 2
        alpha: float | None = None

        def builders(self):
            return {lora.LoRALinear: self.build}

        def build(self, base, name, state):
            return lora.LoRALinear(base, self.rank, self.scaling)

    m = lora.wrap(Tiny(), ["q"], Plain())
    assert isinstance(m.q, lora.LoRALinear) and m.q.scaling == 1.0
    with pytest.raises(TypeError, match=r"Plain adapts only nn\.Linear"):
        lora.wrap(emb, ["0"], Plain())
    with pytest.raises(TypeError, match="config must be"):
        lora.wrap(Tiny(), ["q"], {"rank": 2})


def test_scaled_config_checks_and_scaling():
    assert scaling_factor(4, None) == 1.0 and scaling_factor(4, 8) == 2.0
    assert scaling_factor(4, 8, rslora=True) == 4.0
    assert lora.LoRAConfig(rank=4, alpha=8, rslora=True).scaling == 4.0
    assert lora.NoRAConfig(rank=8, inner_rank=2, alpha=4).scaling == 2.0
    for cfg in (lora.LoRAConfig, lora.DoRAConfig, lora.NLoRAConfig, lora.LoTRConfig,
                lora.FLoRAConfig, lora.BlockLoRAConfig, lora.EDoRAConfig):
        with pytest.raises(ValueError, match="alpha"):
            cfg(alpha=-1)
        with pytest.raises(ValueError, match="rank must be at least 1"):
            cfg(rank=0)
        with pytest.raises(TypeError, match="rank must be an integer"):
            cfg(rank=2.5)


def test_energy_rank():
    assert lora.energy_rank(torch.tensor([3.0, 2.0, 1.0, 0.1]), 0.9) == 2
    assert lora.energy_rank(torch.tensor([3.0, 2.0, 1.0, 0.1]), 1.0) == 4
    with pytest.raises(ValueError, match=r"tau must lie in \(0, 1\]"):
        lora.energy_rank(torch.ones(3), 1.5)
    for cfg in (lora.SVFitConfig, lora.QRLoRAConfig, lora.SoKAConfig):
        with pytest.raises(ValueError, match="energy"):
            cfg(energy=0)
        with pytest.raises(ValueError, match="rank"):
            cfg(rank=0)


@pytest.mark.parametrize("name", ["lora", "nlora", "dora", "edora", "vera", "svft_band",
                                  "qrlora", "curlora", "blocklora"])
def test_leading_batch_dimensions(name):
    _, model = wrapped(name)
    perturb(model, 2)
    x = torch.randn(2, 3, 12, generator=torch.Generator().manual_seed(4))
    layer = lora.adapter_layers(model)["fc"]
    torch.testing.assert_close(layer(x), layer(x.reshape(6, 12)).reshape(2, 3, 20))
    torch.testing.assert_close(layer(x.transpose(0, 1)), layer(x).transpose(0, 1))

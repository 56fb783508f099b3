"""SVFit, SVFT and QR-LoRA (refimpl.lora.singular): SVFT's patterns, the frozen factors, the
energy-chosen rank."""

import pytest
import torch

from refimpl import lora

from .lora_models import Tiny, banded, wrapped


def test_svft_pattern_counts():
    for n, w in ((7, 0), (7, 1), (7, 3), (12, 2)):
        rows, _ = lora.svft_pattern(n, "banded", width=w)
        assert len(rows) == banded(n, w)
    U = torch.linalg.qr(torch.randn(6, 6))[0]
    r, c = lora.svft_pattern(6, "topk", k=5, U=U, Vt=U.T)
    assert len(set(zip(r.tolist(), c.tolist(), strict=True))) == 11
    r, c = lora.svft_pattern(6, "random", k=4, seed=0)
    assert len(set(zip(r.tolist(), c.tolist(), strict=True))) == 10
    with pytest.raises(ValueError, match="square"):
        lora.svft_pattern(4, "topk", k=2, U=torch.eye(5)[:, :4], Vt=torch.eye(4))
    with pytest.raises(ValueError, match="k must be given"):
        lora.svft_pattern(4, "random", k=13)
    with pytest.raises(ValueError, match="pattern"):
        lora.svft_pattern(4, "zigzag")
    with pytest.raises(ValueError, match="pattern"):
        lora.SVFTConfig(pattern="zigzag")
    with pytest.raises(ValueError, match="width"):
        lora.SVFTConfig(width=-1)


@pytest.mark.parametrize("name", ["svfit", "svft_band"])
def test_singular_vectors_are_frozen_non_persistent_buffers(name):
    _, model = wrapped(name)
    layer = lora.adapter_layers(model)["fc"]
    assert {n for n, _ in layer.named_buffers()} >= {"U", "Vt"}
    state = layer.state_dict()
    assert "U" not in state and "Vt" not in state  # recomputed from the base weight
    W = Tiny().fc.weight.detach()  # the pretrained weight
    core = layer.U.T @ W @ layer.Vt.T  # the top singular values on the diagonal
    s = torch.linalg.svdvals(W)[:core.shape[0]]
    torch.testing.assert_close(core, torch.diag(s), rtol=1e-4, atol=1e-5)


def test_energy_chooses_the_rank_per_layer():
    base = Tiny()
    model = lora.wrap(base, ["fc"], lora.SVFitConfig(energy=0.5))
    layer = lora.adapter_layers(model)["fc"]
    s = torch.linalg.svdvals(layer.base.weight + layer.delta_weight())
    r = layer.sigma.numel()
    assert r == lora.energy_rank(s, 0.5) and 1 <= r < 12
    model = lora.wrap(Tiny(), ["fc"], lora.QRLoRAConfig(energy=0.5))
    assert 1 <= lora.adapter_layers(model)["fc"].lam.numel() < 12

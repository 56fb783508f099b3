"""Same weights, factors and configuration as Hugging Face PEFT: same outputs and gradients."""

import copy

import pytest
import torch
from lora_models import Tiny, batch

from refimpl import lora

peft = pytest.importorskip("peft")

TARGETS = ["q", "v", "fc"]


def _peft_layers(model):
    return {n.removeprefix("base_model.model."): m for n, m in model.named_modules()
            if hasattr(m, "lora_A") and hasattr(m, "base_layer") and len(m.lora_A)}


def _run(model, x):
    x = x.clone().requires_grad_(True)
    out = model(x)
    (out.square().sum() + out.sum()).backward()
    return out.detach(), x.grad


def _close(a, b, tol=1e-5):
    # fp32: the two implementations order the same sums differently
    torch.testing.assert_close(a, b, rtol=max(tol, 1e-4) if tol else 0, atol=tol)


def _randomize(ours, theirs, seed=3):
    """Give both models the same non-trivial LoRA factors (B ≠ 0)."""
    g = torch.Generator().manual_seed(seed)
    ol, tl = lora.adapter_layers(ours), _peft_layers(theirs)
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


def _compare_grads(ours, theirs, names):
    ol, tl = lora.adapter_layers(ours), _peft_layers(theirs)
    for n in TARGETS:
        _close(ol[n].lora_A.grad, tl[n].lora_A["default"].weight.grad)
        _close(ol[n].lora_B.grad, tl[n].lora_B["default"].weight.grad)
        if "magnitude" in names:
            _close(ol[n].magnitude.grad, tl[n].lora_magnitude_vector["default"].weight.grad)


@pytest.mark.parametrize("rslora", [False, True])
@pytest.mark.parametrize("dora", [False, True])
def test_lora_rslora_dora_match_peft(rslora, dora):
    base = Tiny()
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(
        r=4, lora_alpha=6, target_modules=TARGETS, use_rslora=rslora, use_dora=dora))
    cfg = (lora.DoRAConfig if dora else lora.LoRAConfig)(rank=4, alpha=6, rslora=rslora)
    ours = lora.wrap(copy.deepcopy(base), TARGETS, cfg)
    x = batch()
    # default initialisation: B = 0, outputs equal the base model's
    _close(ours(x), base(x), 0)
    _close(theirs(x), base(x), 1e-6)
    _randomize(ours, theirs)
    o1, g1 = _run(ours, x)
    o2, g2 = _run(theirs, x)
    _close(o1, o2)
    _close(g1, g2)
    _compare_grads(ours, theirs, {"magnitude"} if dora else set())
    assert lora.trainable_parameters(ours) == sum(
        p.numel() for p in theirs.parameters() if p.requires_grad)


@pytest.mark.parametrize("init", ["pissa", "olora"])
def test_pissa_olora_initialisation_matches_peft(init):
    base = Tiny()
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(
        r=3, lora_alpha=5, target_modules=TARGETS, init_lora_weights=init))
    ours = lora.wrap(copy.deepcopy(base), TARGETS, lora.LoRAConfig(rank=3, alpha=5, init=init))
    ol, tl = lora.adapter_layers(ours), _peft_layers(theirs)
    for n in TARGETS:
        _close(ol[n].lora_A, tl[n].lora_A["default"].weight)
        _close(ol[n].lora_B, tl[n].lora_B["default"].weight)
        _close(ol[n].base.weight, tl[n].base_layer.weight)
    x = batch()
    _close(ours(x), base(x), 1e-5)
    o1, g1 = _run(ours, x)
    o2, g2 = _run(theirs, x)
    _close(o1, o2)
    _close(g1, g2)
    _compare_grads(ours, theirs, set())


@pytest.mark.parametrize("mode", ["ipm", "kpm"])
def test_corda_matches_peft(mode, tmp_path):
    from peft.tuners.lora.config import CordaConfig
    from peft.tuners.lora.corda import preprocess_corda

    base = Tiny()
    calib = [batch(30, seed=s) for s in range(3)]
    cov = lora.input_covariances(base, TARGETS, calib)
    # our covariance, handed to PEFT through its covariance file (PEFT's own hook rescales
    # each batch by its maximum, which only changes C by positive factors)
    torch.save(dict(cov), tmp_path / "cov.pt")
    cfg = peft.LoraConfig(r=3, lora_alpha=5, target_modules=TARGETS, init_lora_weights="corda",
                          corda_config=CordaConfig(covariance_file=str(tmp_path / "cov.pt"),
                                                   corda_method=mode))
    theirs_base = copy.deepcopy(base)
    preprocess_corda(theirs_base, cfg)
    theirs = peft.get_peft_model(theirs_base, cfg)
    ours = lora.wrap(copy.deepcopy(base), TARGETS,
                     lora.LoRAConfig(rank=3, alpha=5, init=f"corda_{mode}"), covariances=cov)
    ol, tl = lora.adapter_layers(ours), _peft_layers(theirs)
    for n in TARGETS:
        _close(ol[n].lora_A, tl[n].lora_A["default"].weight, 1e-4)
        _close(ol[n].lora_B, tl[n].lora_B["default"].weight, 1e-4)
    x = batch()
    _close(ours(x), base(x), 1e-4)
    o1, g1 = _run(ours, x)
    o2, g2 = _run(theirs, x)
    _close(o1, o2, 1e-4)
    _close(g1, g2, 1e-4)


def test_vera_matches_peft():
    base = Tiny()
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.VeraConfig(
        r=4, target_modules=TARGETS, d_initial=0.1))
    ours = lora.wrap(copy.deepcopy(base), TARGETS, lora.VeRAConfig(rank=4, d_initial=0.1))
    x = batch()
    _close(ours(x), base(x), 0)
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
    o1, g1 = _run(ours, x)
    o2, g2 = _run(theirs, x)
    _close(o1, o2)
    _close(g1, g2)
    for n, layer in lora.adapter_layers(ours).items():
        _close(layer.vera_d.grad, tl[n].vera_lambda_d["default"].grad)
        _close(layer.vera_b.grad, tl[n].vera_lambda_b["default"].grad)
    assert lora.trainable_parameters(ours) == sum(
        p.numel() for p in theirs.parameters() if p.requires_grad)


def test_lora_embedding_matches_peft():
    class Emb(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.tok = torch.nn.Embedding(30, 12, padding_idx=0)
            self.fc = torch.nn.Linear(12, 4)

        def forward(self, ids):
            return self.fc(self.tok(ids)).sum(1)

    base = Emb()
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["tok", "fc"]))
    ours = lora.wrap(copy.deepcopy(base), ["tok", "fc"], lora.LoRAConfig(rank=4, alpha=8))
    ids = torch.randint(30, (5, 7), generator=torch.Generator().manual_seed(2))
    _close(ours(ids), base(ids), 0)
    layer = lora.adapter_layers(ours)["tok"]
    assert isinstance(layer, lora.LoRAEmbedding)
    t = theirs.base_model.model.tok
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        A, B = torch.randn(4, 30, generator=g), torch.randn(12, 4, generator=g)
        layer.lora_A.copy_(A)
        layer.lora_B.copy_(B)
        t.lora_embedding_A["default"].copy_(A)
        t.lora_embedding_B["default"].copy_(B)
        for name in ("lora_A", "lora_B"):
            getattr(lora.adapter_layers(ours)["fc"], name).copy_(
                getattr(theirs.base_model.model.fc, name)["default"].weight)
    o1, o2 = ours(ids), theirs(ids)
    _close(o1, o2)
    o1.square().sum().backward()
    o2.square().sum().backward()
    _close(layer.lora_A.grad, t.lora_embedding_A["default"].grad)
    _close(layer.lora_B.grad, t.lora_embedding_B["default"].grad)
    before = ours(ids).detach()
    lora.merge(ours)
    _close(ours(ids), before)
    theirs.merge_adapter()
    _close(layer.base.weight, t.base_layer.weight)
    assert lora.trainable_parameters(ours) == sum(
        p.numel() for p in theirs.parameters() if p.requires_grad)

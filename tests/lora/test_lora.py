"""LoRA and its initialisations (refimpl.lora.lora; the factor functions are tested in
test_factors): PiSSA/MiLoRA through the configuration, LoRA on Embedding and Conv2d, dropout,
the configurations' refusals, CorDA's covariances, and parity with Hugging Face PEFT for the
same weights, factors and configuration."""

import copy

import pytest
import torch
from torch import nn

from refimpl import lora

from .lora_models import (
    TARGETS,
    Tiny,
    TinyConv,
    assert_conv_update,
    assert_merge_round_trip,
    batch,
    check_matches_peft,
    close,
    compare_grads_with_peft,
    images,
    peft_layers,
    perturb,
    run_backward,
)

R = 3
CONVS = ["c1", "c2"]


def test_pissa_milora_use_opposite_ends_of_the_spectrum():
    base = Tiny()
    for init, end in (("pissa", 0), ("milora", -1)):
        model = lora.wrap(copy.deepcopy(base), ["fc"], lora.LoRAConfig(rank=2, init=init))
        layer = lora.adapter_layers(model)["fc"]
        s = torch.linalg.svdvals(base.fc.weight)
        got = torch.linalg.svdvals(layer.delta_weight())[:2]
        want = s[:2] if end == 0 else s[-2:]
        torch.testing.assert_close(got.sort(descending=True).values, want, rtol=1e-4, atol=1e-5)


def test_lora_dropout_acts_on_the_adapter_input_in_training_only():
    base = Tiny()
    model = lora.wrap(copy.deepcopy(base), ["fc"], lora.LoRAConfig(rank=R, dropout=0.5))
    plain = lora.wrap(copy.deepcopy(base), ["fc"], lora.LoRAConfig(rank=R))
    perturb(model, 5)
    perturb(plain, 5)
    x = batch()
    model.eval()
    torch.testing.assert_close(model(x), plain(x))
    model.train()
    torch.manual_seed(0)
    assert not torch.allclose(model(x), plain(x))
    with pytest.raises(ValueError, match="dropout"):
        lora.LoRAConfig(dropout=1.0)


def test_configuration_refusals():
    emb = nn.Sequential(nn.Embedding(10, 4))
    with pytest.raises(ValueError, match="embedding"):
        lora.wrap(emb, ["0"], lora.LoRAConfig(rank=2, init="pissa"))
    with pytest.raises(ValueError, match="init"):
        lora.LoRAConfig(init="gaussian")
    with pytest.raises(ValueError, match="init"):
        lora.NLoRAConfig(init="gaussian")
    with pytest.raises(ValueError, match="n_iter"):
        lora.LoRAConfig(init="pissa_rsvd", n_iter=-1)
    with pytest.raises(ValueError, match="CorDA needs covariances"):
        lora.wrap(Tiny(), ["q"], lora.LoRAConfig(rank=2, init="corda_ipm"))
    cov = lora.input_covariances(Tiny(), ["q"], [batch()])
    with pytest.raises(ValueError, match=r"CorDA needs covariances for \['v'\]"):
        lora.wrap(Tiny(), ["q", "v"], lora.LoRAConfig(rank=2, init="corda_ipm", covariances=cov))
    with pytest.raises(ValueError, match="covariances are used by"):
        lora.LoRAConfig(rank=2, init="pissa", covariances=cov)


def test_corda_covariances_live_in_the_config():
    base = Tiny()
    cov = lora.input_covariances(base, ["q"], [batch(30)])
    cfg = lora.LoRAConfig(rank=2, init="corda_kpm", covariances=cov)
    # the covariances are data, not identity: equal configs compare and hash alike
    assert cfg == lora.LoRAConfig(rank=2, init="corda_kpm") and hash(cfg)
    model = lora.wrap(copy.deepcopy(base), ["q"], cfg)
    A, B, Wr = lora.corda_factors(base.q.weight.detach(), cov["q"], 2, cfg.scaling, mode="kpm")
    layer = lora.adapter_layers(model)["q"]
    torch.testing.assert_close(layer.lora_A, A)
    torch.testing.assert_close(layer.lora_B, B)
    torch.testing.assert_close(layer.base.weight, Wr)


# -- Conv2d --------------------------------------------------------------------------------------

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
    perturb(model, scale=0.2)
    before = model(x).detach()
    assert not torch.allclose(before, base(x), atol=1e-3)
    # the update the forward adds is the convolution with delta_weight
    c2 = layers["c2"]
    assert (c2.base.dilation, c2.base.padding_mode) == ((dilation,) * 2, padding_mode)
    assert_conv_update(c2, torch.relu(model.c1(x)).detach(), c2.delta_weight())
    # merge / unmerge round trip
    assert_merge_round_trip(model, x, before)
    layers["c1"].merge(safe=True)
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


# -- parity with PEFT ----------------------------------------------------------------------------

@pytest.mark.parametrize("rslora", [False, True])
def test_lora_rslora_match_peft(rslora):
    peft = pytest.importorskip("peft")
    check_matches_peft(peft, lora.LoRAConfig(rank=4, alpha=6, rslora=rslora), rslora=rslora,
                       dora=False)


@pytest.mark.parametrize("init", ["pissa", "olora"])
def test_pissa_olora_initialisation_matches_peft(init):
    peft = pytest.importorskip("peft")
    base = Tiny()
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(
        r=3, lora_alpha=5, target_modules=TARGETS, init_lora_weights=init))
    ours = lora.wrap(copy.deepcopy(base), TARGETS, lora.LoRAConfig(rank=3, alpha=5, init=init))
    ol, tl = lora.adapter_layers(ours), peft_layers(theirs)
    for n in TARGETS:
        close(ol[n].lora_A, tl[n].lora_A["default"].weight)
        close(ol[n].lora_B, tl[n].lora_B["default"].weight)
        close(ol[n].base.weight, tl[n].base_layer.weight)
    x = batch()
    close(ours(x), base(x), 1e-5)
    o1, g1 = run_backward(ours, x)
    o2, g2 = run_backward(theirs, x)
    close(o1, o2)
    close(g1, g2)
    compare_grads_with_peft(ours, theirs)


@pytest.mark.parametrize("mode", ["ipm", "kpm"])
def test_corda_matches_peft(mode, tmp_path):
    peft = pytest.importorskip("peft")
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
                     lora.LoRAConfig(rank=3, alpha=5, init=f"corda_{mode}", covariances=cov))
    ol, tl = lora.adapter_layers(ours), peft_layers(theirs)
    for n in TARGETS:
        close(ol[n].lora_A, tl[n].lora_A["default"].weight, 1e-4)
        close(ol[n].lora_B, tl[n].lora_B["default"].weight, 1e-4)
    x = batch()
    close(ours(x), base(x), 1e-4)
    o1, g1 = run_backward(ours, x)
    o2, g2 = run_backward(theirs, x)
    close(o1, o2, 1e-4)
    close(g1, g2, 1e-4)


def test_lora_embedding_matches_peft():
    peft = pytest.importorskip("peft")

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
    close(ours(ids), base(ids), 0)
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
    close(o1, o2)
    o1.square().sum().backward()
    o2.square().sum().backward()
    close(layer.lora_A.grad, t.lora_embedding_A["default"].grad)
    close(layer.lora_B.grad, t.lora_embedding_B["default"].grad)
    before = ours(ids).detach()
    lora.merge(ours)
    close(ours(ids), before)
    theirs.merge_adapter()
    close(layer.base.weight, t.base_layer.weight)
    assert lora.trainable_parameters(ours) == sum(
        p.numel() for p in theirs.parameters() if p.requires_grad)


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

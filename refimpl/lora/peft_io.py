"""Adapters in Hugging Face PEFT's on-disk format: export to it and load from it.

A PEFT adapter directory (what ``PeftModel.save_pretrained(directory)`` writes and
``PeftModel.from_pretrained(base_model, directory)`` reads) holds ``adapter_config.json`` (the
method's configuration) and ``adapter_model.safetensors`` (the adapter tensors only).
:func:`save_peft_adapter` writes both from a model wrapped by :func:`refimpl.lora.wrap`, without
importing ``peft``; :func:`load_peft_adapter` reads them (again without ``peft``) into a wrapped
model, or wraps an unwrapped one from the directory's configuration. The methods that both
implement are mapped; every other adapter layer is refused by name.

**Tensors** (``<path>`` is the adapted module's dotted name in the unwrapped model, the name
:func:`refimpl.lora.adapter_layers` gives the layer; every PEFT key below starts with
``base_model.model.<path>``):

- ``LoRALinear.lora_A`` (r×d_in) and ``lora_B`` (d_out×r): ``.lora_A.weight`` and
  ``.lora_B.weight``, the same layout;
- ``LoRAConv2d.lora_A`` (r×c_in×kh×kw) and ``lora_B`` (c_out×r×1×1): ``.lora_A.weight`` and
  ``.lora_B.weight``, the same layout;
- ``LoRAEmbedding.lora_A`` (r×num_embeddings) and ``lora_B`` (embedding_dim×r):
  ``.lora_embedding_A`` and ``.lora_embedding_B`` (no ``.weight``);
- ``DoRALinear.lora_A``, ``lora_B`` as for LoRA, and ``magnitude`` (d_out):
  ``.lora_magnitude_vector`` (no ``.weight``);
- ``VeRALinear.vera_d`` (r) and ``vera_b`` (d_out): ``.vera_lambda_d`` and ``.vera_lambda_b``;
  the projections every VeRA layer shares, ``A`` (r×max d_in) and ``B`` (max d_out×r), of
  which a layer uses ``A[:, :d_in]`` and ``B[:d_out]``: ``base_model.vera_A`` and
  ``base_model.vera_B``, once per model.

Both libraries store ``nn.Linear`` weights as d_out×d_in and the factors as above, so no
tensor is transposed. PEFT's ``fan_in_fan_out`` concerns only base weights stored d_in×d_out
(transformers' ``Conv1D``), which refimpl does not adapt: the export writes ``false`` and the
loader ignores it (PEFT itself resets it to ``false`` for ``nn.Linear`` targets).

**Scaling.** A refimpl layer keeps its factor ``s`` only (``α/r``, or ``α/√r`` with rsLoRA),
not how it was formed. The export writes ``use_rslora: false`` and ``lora_alpha = s·r`` (an
integer when it is one to 1e-12), so that PEFT's ``lora_alpha / r`` is ``s``: an rsLoRA
adapter becomes a LoRA adapter with the same update. Loading computes ``s`` as PEFT does,
``lora_alpha/r`` or, with ``use_rslora``, ``lora_alpha/√r``, per module through
``rank_pattern`` / ``alpha_pattern`` (first key ``k`` with ``re.match(r"(.*\\.)?(k)$",
path)``, PEFT's rule); layers whose rank or scaling differ from the first layer's are
exported the same way, with ``re.escape(path)`` keys.

**Residual initialisations** (PiSSA, MiLoRA, OLoRA, CorDA). refimpl replaces the base weight
``W`` by ``W_res = W − s B₀A₀`` and keeps neither ``B₀, A₀`` nor ``W``; a PEFT directory applies
to the original ``W``. Given the original model (``base_model=``), the export computes
``ΔW₀ = W − W_res`` (in float64), checks that it has rank at most ``r`` up to rounding, splits
it as ``s B₀A₀`` by its SVD (``B₀ = U_r√(S_r/s)``, ``A₀ = √(S_r/s)V_rᵀ``) and writes the
rank-2r LoRA ``lora_A = [A; A₀]``, ``lora_B = [B, −B₀]`` with the same ``s``
(``lora_alpha = s·2r``): ``W + s(BA − B₀A₀) = W_res + sBA``, the update PEFT's own conversion
(``save_pretrained(..., path_initial_model_for_weight_conversion=...)``) writes. (The split
holds to float32 rounding even for float64 models, the precision in which the layers form
``ΔW₀``.) A DoRA layer over a changed base would be exported the same way (its norm is of the
same matrix). Without
``base_model`` the layers' base weights are taken to be the pretrained ones: exporting a
residual-initialised model without it gives an adapter for the wrong base, which cannot be
detected from the wrapped model alone. Loading such a rank-2r directory gives a plain rank-2r
LoRA on the pretrained weights.

A directory PEFT saved from a PiSSA or OLoRA model without that conversion has
``init_lora_weights: "pissa"`` or ``"olora"``: ``PeftModel.from_pretrained`` recomputes the
residual from the base it is given and then loads the trained factors. The loader does the
same (``LoRAConfig(init="pissa")`` or ``"olora"``, then the factors from the file), so it needs
the unwrapped pretrained model. Directories whose residual cannot be recomputed exactly
(``"corda"``: calibration data; ``"pissa_niter_*"``: a random sketch; ``"loftq"``:
quantization) are refused, with the conversion named.

**VeRA.** refimpl draws its shared projections from its own ``seed``; the export always writes
them (``save_projection: true``). A directory saved with ``save_projection: false`` is loaded
by regenerating PEFT's projections from ``projection_prng_key``: a CPU ``torch.Generator``
seeded with it draws ``A`` (r×max d_in) and then ``B`` (max d_out×r) uniformly in
``±√3·√2/√fan_in`` (fan-in ``max d_in`` for ``A``, ``r`` for ``B``), the dimensions taken over
the adapted modules. ``vera_dropout`` and ``d_initial`` only act in training or at
initialisation and are not represented.

**Not mapped.** Every other adapter layer (NLoRA, CURLoRA, FLoRA, SVFit, EDoRA, ...) is refused
by name; so are merged models (unmerge first), directories of another ``peft_type`` and
PEFT options that change what the tensors mean or add tensors (``bias`` other than
``"none"``, ``lora_bias``, ``modules_to_save``, ``layer_replication``, ...). Which modules are
adapted is read from the tensors' keys; ``target_modules`` is written for PEFT (the full names,
or a regular expression, which PEFT matches against whole names, when a full name is also the
suffix of another module's). ``lora_dropout`` is ``LoRAConfig.dropout`` (one value for all
layers; refimpl's DoRA and embeddings have none). PEFT applies a convolution's ``lora_A``
with dilation 1 and zero padding, refimpl with the base's: convolutions with another dilation
or padding mode are refused both ways.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from refimpl import _xp
from refimpl.lora._core import AdapterLayer
from refimpl.lora.dora import DoRAConfig, DoRALinear
from refimpl.lora.lora import LoRAConfig, LoRAConv2d, LoRAEmbedding, LoRALinear
from refimpl.lora.model import adapter_layers, wrap
from refimpl.lora.vera import VeRAConfig, VeRALinear

__all__ = ["load_peft_adapter", "save_peft_adapter"]

_CONFIG_NAME = "adapter_config.json"
_WEIGHTS_NAME = "adapter_model.safetensors"
_BIN_NAME = "adapter_model.bin"  # PEFT's safe_serialization=False
_PREFIX = "base_model.model."
_VERA_SHARED = ("base_model.vera_A", "base_model.vera_B")

# the layer classes PEFT has an equivalent of, and the PEFT method each maps to
_METHOD = {LoRALinear: "lora", LoRAEmbedding: "lora", LoRAConv2d: "lora", DoRALinear: "dora",
           VeRALinear: "vera"}

# key suffixes of one LoRA module in the tensor file, by refimpl attribute
_LORA_KEYS = {"lora_A": ".lora_A.weight", "lora_B": ".lora_B.weight",
              "magnitude": ".lora_magnitude_vector"}
_EMBEDDING_KEYS = {"lora_A": ".lora_embedding_A", "lora_B": ".lora_embedding_B"}
_VERA_KEYS = {"vera_d": ".vera_lambda_d", "vera_b": ".vera_lambda_b"}

# init_lora_weights that leave the base weights alone (only the starting factors differ)
_PLAIN_INITS = (True, False, "gaussian", "eva", "orthogonal")
# ... and those whose residual PeftModel.from_pretrained recomputes exactly, as refimpl does
_RESIDUAL_INITS = ("pissa", "olora")

# configuration keys read, or harmless to ignore (metadata; options that only select modules,
# which the tensors' keys decide; settings of the initialisations listed above)
_LORA_READ = {"r", "lora_alpha", "use_rslora", "use_dora", "init_lora_weights", "rank_pattern",
              "alpha_pattern", "lora_dropout", "bias"}
_VERA_READ = {"r", "projection_prng_key", "save_projection", "bias"}
_IGNORED = {"peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode",
            "auto_mapping", "peft_version", "target_modules", "exclude_modules",
            "layers_to_transform", "layers_pattern", "fan_in_fan_out", "megatron_core",
            "qalora_group_size", "eva_config", "loftq_config", "corda_config", "d_initial",
            "vera_dropout", "init_weights"}


# -- export --------------------------------------------------------------------------------------

def save_peft_adapter(model: nn.Module, directory: str | os.PathLike, *,
                      base_model: nn.Module | None = None,
                      name_or_path: str | None = None) -> None:
    """Write the adapters of a wrapped model as a PEFT adapter directory.

    ``peft.PeftModel.from_pretrained(original_model, directory)`` then computes what ``model``
    computes. Writes ``adapter_config.json`` and ``adapter_model.safetensors`` (replacing
    them if present; the mapping is in the module docstring); ``peft`` is not needed.

    Parameters
    ----------
    model : torch.nn.Module
        A model wrapped by :func:`refimpl.lora.wrap`, unmerged, whose adapters are all LoRA
        (``LoRALinear``, ``LoRAEmbedding``, ``LoRAConv2d``; any initialisation, rsLoRA
        included), all DoRA (``DoRALinear``) or all VeRA (``VeRALinear``).
    directory : str or os.PathLike
        Where to write (created if missing).
    base_model : torch.nn.Module, optional
        The original, unwrapped model (same architecture, the weights ``model`` was wrapped
        from). Needed when ``model`` was wrapped with a residual initialisation (PiSSA,
        MiLoRA, OLoRA, CorDA): each changed base weight is folded into a rank-2r adapter. When
        given, every other parameter of the two models must be equal. Without it the base
        weights of ``model`` are taken to be the pretrained ones.
    name_or_path : str, optional
        Written as ``base_model_name_or_path`` (default: ``model.name_or_path`` if the model
        has one, as a transformers model does).

    Raises
    ------
    TypeError
        If ``model`` or ``base_model`` is not a ``torch.nn.Module``.
    ValueError
        If ``model`` has no adapter layers; a layer is a method PEFT has no equivalent of
        (the error names it); the layers mix methods, or differ in dropout; a convolution
        uses dilation or a padding mode PEFT's LoRA does not; ``base_model`` is wrapped,
        differs outside the adapted weights, or differs from an adapted weight by more than
        a rank-r update; VeRA layers do not share one pair of projections; or the per-layer
        ranks cannot be written unambiguously.
    RuntimeError
        If an adapter is merged.
    """
    _check_module(model, "model")
    layers = _layers(model)
    methods = {n: _method(n, layer) for n, layer in layers.items()}
    if len(set(methods.values())) > 1:
        raise ValueError(f"a PEFT adapter holds one method; the model mixes "
                         f"{sorted(set(methods.values()))} ({methods})")
    method = next(iter(methods.values()))
    originals = _original_weights(model, layers, base_model)
    if method == "vera":
        config, tensors = _export_vera(layers, originals)
    else:
        config, tensors = _export_lora(layers, originals, dora=method == "dora")
    names = _unwrapped_module_names(model, layers)
    config["target_modules"] = _target_modules(list(layers), names)
    if name_or_path is None:
        name_or_path = getattr(model, "name_or_path", None)
    name_or_path = None if name_or_path is None else str(name_or_path)
    config.update({
        "task_type": None, "base_model_name_or_path": name_or_path, "revision": None,
        "inference_mode": True, "modules_to_save": None, "layers_to_transform": None,
        "layers_pattern": None, "fan_in_fan_out": False, "bias": "none",
        "auto_mapping": {"base_model_class": type(model).__name__,
                         "parent_library": type(model).__module__},
    })
    _write(Path(directory), config, tensors)


def _export_lora(layers, originals, *, dora):
    tensors, ranks, alphas, dropouts = {}, {}, {}, set()
    for n, layer in layers.items():
        A, B = layer.lora_A.detach(), layer.lora_B.detach()
        if isinstance(layer, LoRAConv2d):
            _check_conv(n, layer.base)
        if isinstance(layer, (LoRALinear, DoRALinear)) and not isinstance(layer, LoRAEmbedding):
            initial = _initial_factors(n, layer, originals[n])
            if initial is not None:  # W + s(BA − B₀A₀) = W_res + sBA
                A0, B0 = initial
                A, B = torch.cat([A, A0.to(A)]), torch.cat([B, -B0.to(B)], 1)
        elif originals[n] is not None and not _same(originals[n], layer.base.weight):
            raise ValueError(f"the base weight of {n!r} ({type(layer).__name__}) differs from "
                             f"base_model's; only LoRALinear and DoRALinear layers carry a "
                             f"residual initialisation")
        keys = _EMBEDDING_KEYS if isinstance(layer, LoRAEmbedding) else _LORA_KEYS
        tensors[_PREFIX + n + keys["lora_A"]] = A
        tensors[_PREFIX + n + keys["lora_B"]] = B
        if dora:
            tensors[_PREFIX + n + keys["magnitude"]] = layer.magnitude.detach()
        ranks[n] = A.shape[0]
        alphas[n] = _alpha(layer.scaling * A.shape[0])
        if not isinstance(layer, LoRAEmbedding):  # PEFT's embeddings get no dropout either
            dropouts.add(float(getattr(layer, "dropout", 0.0)))
    if len(dropouts) > 1:
        raise ValueError(f"PEFT holds one lora_dropout; the layers have {sorted(dropouts)}")
    first = next(iter(layers))
    r, alpha = ranks[first], alphas[first]
    rank_pattern = {re.escape(n): v for n, v in ranks.items() if v != r}
    alpha_pattern = {re.escape(n): v for n, v in alphas.items() if v != alpha}
    for n in layers:  # what PEFT will read back for each layer
        if (_pattern_value(rank_pattern, n, r), _pattern_value(alpha_pattern, n, alpha)) != \
                (ranks[n], alphas[n]):
            raise ValueError(f"the per-layer ranks and scalings cannot be written "
                             f"unambiguously as PEFT's rank_pattern/alpha_pattern ({n!r} is "
                             f"also the suffix of another adapted module)")
    config = {
        "peft_type": "LORA", "r": r, "lora_alpha": alpha, "use_rslora": False,
        "use_dora": dora, "lora_dropout": dropouts.pop() if dropouts else 0.0,
        "init_lora_weights": True, "rank_pattern": rank_pattern,
        "alpha_pattern": alpha_pattern,
    }
    return config, tensors


def _export_vera(layers, originals):
    for n, layer in layers.items():
        if originals[n] is not None and not _same(originals[n], layer.base.weight):
            raise ValueError(f"the base weight of {n!r} (VeRALinear) differs from base_model's; "
                             f"VeRA has no residual initialisation")
    ranks = {layer.rank for layer in layers.values()}
    if len(ranks) > 1:
        raise ValueError(f"PEFT's VeRA has one rank for all layers; the layers have "
                         f"{sorted(ranks)}")
    widest = max(layers.values(), key=lambda m: m.in_features)
    tallest = max(layers.values(), key=lambda m: m.out_features)
    A, B = widest.vera_A.detach(), tallest.vera_B.detach()
    for n, layer in layers.items():
        if not (torch.equal(layer.vera_A, A[:, :layer.in_features].to(layer.vera_A))
                and torch.equal(layer.vera_B, B[:layer.out_features].to(layer.vera_B))):
            raise ValueError(f"VeRA layer {n!r} does not use the projections the others share "
                             f"(PEFT stores one pair per model)")
    tensors = {_VERA_SHARED[0]: A, _VERA_SHARED[1]: B}
    for n, layer in layers.items():
        tensors[_PREFIX + n + _VERA_KEYS["vera_d"]] = layer.vera_d.detach()
        tensors[_PREFIX + n + _VERA_KEYS["vera_b"]] = layer.vera_b.detach()
    config = {"peft_type": "VERA", "r": ranks.pop(), "projection_prng_key": 0,
              "save_projection": True, "vera_dropout": 0.0, "d_initial": 0.1,
              "init_weights": True}
    return config, tensors


def _initial_factors(name, layer, W0):
    """``(A₀, B₀)`` with ``s B₀A₀ = W0 − W_res`` when the base weight was changed, else
    ``None``."""
    W = layer.base.weight.detach()
    if W0 is None or _same(W0, W):
        return None
    D = W0.to(device=W.device, dtype=torch.float64) - W.to(torch.float64)
    U, S, Vt = _xp.svd(D)
    r = layer.rank
    tail = float(torch.linalg.vector_norm(S[r:]))
    scale = float(torch.linalg.matrix_norm(W0.to(torch.float64)))
    # rounding leaves a tail of a few (r + 1)·ε·‖W‖, with ε at least float32's (the layers
    # form ΔW₀ in float32 or wider); a base_model other than the one wrapped leaves one of the
    # order of ‖W‖: √ε separates the two with wide margins both ways
    eps = max(torch.finfo(W.dtype).eps, torch.finfo(torch.float32).eps)
    if tail > math.sqrt(eps) * scale:
        raise ValueError(f"base_model's weight of {name!r} differs from the wrapped model's "
                         f"by more than a rank-{r} update (tail {tail:.3g}, ‖W‖_F "
                         f"{scale:.3g}); pass the model that was wrapped, as it was before")
    root = (S[:r] / layer.scaling).sqrt()
    return root[:, None] * Vt[:r], U[:, :r] * root


def _check_conv(name, conv):
    if any(d != 1 for d in conv.dilation) or conv.padding_mode != "zeros":
        raise ValueError(f"convolution {name!r} has dilation={conv.dilation}, padding_mode="
                         f"{conv.padding_mode!r}; PEFT's LoRA applies lora_A with dilation 1 "
                         f"and zero padding, so the two would compute different things")


def _original_weights(model, layers, base_model):
    """The original weight of every adapted module (``None`` without ``base_model``), after
    checking that ``base_model`` is ``model`` before wrapping everywhere else."""
    if base_model is None:
        return dict.fromkeys(layers)
    _check_module(base_model, "base_model")
    if adapter_layers(base_model):
        raise ValueError("base_model must be the original, unwrapped model; it has adapter "
                         "layers")
    theirs = dict(base_model.named_parameters(remove_duplicate=False))
    ours = {}
    for key, p in model.named_parameters(remove_duplicate=False):
        owner = next((n for n in layers if key.startswith(n + ".")), None)
        if owner is None:
            ours[key] = p
        elif key.startswith(owner + ".base."):
            ours[owner + key[len(owner) + len(".base"):]] = p
    if set(ours) != set(theirs):
        raise ValueError(f"base_model does not have the wrapped model's parameters: missing "
                         f"{sorted(set(ours) - set(theirs))}, unexpected "
                         f"{sorted(set(theirs) - set(ours))}")
    adapted = {n + ".weight" for n in layers}
    for key, p in ours.items():
        if key not in adapted and not _same(theirs[key], p):
            raise ValueError(f"base_model's {key} differs from the wrapped model's: pass the "
                             f"model that was wrapped, as it was before")
    return {n: theirs[n + ".weight"].detach() for n in layers}


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.equal(a.detach().to(b), b.detach())


def _alpha(value: float) -> float:
    nearest = round(value)
    return nearest if abs(value - nearest) <= 1e-12 * max(1.0, abs(value)) else value


def _target_modules(targets, names):
    """PEFT's ``target_modules`` selecting exactly ``targets`` among ``names``: the list of full
    names (PEFT matches a name or a ``.``-suffix), or an anchored alternation if a target is
    the suffix of a module that is not one."""
    chosen = set(targets)
    if all(not any(m.endswith("." + t) for t in targets) for m in names if m not in chosen):
        return list(targets)
    return "(?:" + "|".join(re.escape(t) for t in targets) + ")"


def _unwrapped_module_names(model, layers):
    return [n for n, _ in model.named_modules()
            if n and not any(n.startswith(t + ".") for t in layers)]


def _write(directory: Path, config: dict, tensors: dict) -> None:
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    # safetensors refuses shared storage: every tensor its own contiguous CPU copy
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    save_file(tensors, str(directory / _WEIGHTS_NAME), metadata={"format": "pt"})
    with open(directory / _CONFIG_NAME, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")


# -- loading -------------------------------------------------------------------------------------

def load_peft_adapter(model: nn.Module, directory: str | os.PathLike) -> nn.Module:
    """Load a PEFT adapter directory into a refimpl model (in place).

    The directory is one written by ``peft_model.save_pretrained(directory)`` (or by
    :func:`save_peft_adapter`) for LoRA (rsLoRA, ``rank_pattern``/``alpha_pattern`` and
    Embedding and Conv2d targets included), DoRA or VeRA; ``peft`` is not needed. The model
    then computes what ``peft.PeftModel.from_pretrained(model, directory)`` computes.

    Parameters
    ----------
    model : torch.nn.Module
        Either the unwrapped base model, which is then wrapped as the directory says
        (:func:`refimpl.lora.wrap`: every parameter frozen, each adapted module replaced by a
        ``LoRALinear``, ``LoRAEmbedding``, ``LoRAConv2d``, ``DoRALinear`` or ``VeRALinear``),
        or a model already wrapped with adapters of the same method, modules, ranks and
        scalings, whose tensors are then replaced. A directory with ``init_lora_weights``
        ``"pissa"`` or ``"olora"`` needs the unwrapped pretrained model (the residual is
        recomputed from its weights, as PEFT does).
    directory : str or os.PathLike
        The adapter directory (``adapter_config.json`` and ``adapter_model.safetensors``, or
        PEFT's ``adapter_model.bin``).

    Returns
    -------
    torch.nn.Module
        ``model``, wrapped and holding the directory's adapters. A directory PEFT converted
        from PiSSA/OLoRA/CorDA (rank 2r) gives plain rank-2r LoRA layers.

    Raises
    ------
    TypeError
        If ``model`` is not a ``torch.nn.Module``, or an adapted module is of a kind the
        method does not adapt in refimpl.
    FileNotFoundError
        If the directory lacks the configuration or the tensor file.
    ValueError
        If the configuration is not a LoRA or VeRA one (``peft_type``), uses an option refimpl
        cannot represent (named in the message), has an initialisation whose residual cannot be
        recomputed, or disagrees with the tensors; if a tensor is unexpected or of the wrong
        shape; if the model lacks an adapted module; or, for a wrapped model, if its adapter
        layers differ in modules, method, rank or scaling, or the directory needs the unwrapped
        model.
    RuntimeError
        If an adapter of ``model`` is merged.
    """
    _check_module(model, "model")
    directory = Path(directory)
    config = _read_config(directory)
    tensors = _read_tensors(directory)
    peft_type = config.get("peft_type")
    if peft_type == "LORA":
        entries = _lora_entries(config, tensors)
    elif peft_type == "VERA":
        entries = _vera_entries(config, tensors)
    else:
        raise ValueError(f"{directory / _CONFIG_NAME} has peft_type={peft_type!r}; "
                         f"refimpl.lora maps 'LORA' (LoRA, rsLoRA, DoRA) and 'VERA' only")
    modules = dict(model.named_modules())
    existing = adapter_layers(model)
    missing = sorted(n for n in entries if n not in modules)
    if missing:
        raise ValueError(f"the adapter holds tensors for modules {missing}, which the model "
                         f"does not have (modules are {[n for n in modules if n]})")
    for n in entries:
        conv = getattr(modules[n], "base", modules[n])
        if isinstance(conv, nn.Conv2d):
            _check_conv(n, conv)
    if existing:
        _check_wrapped(existing, entries, config)
    else:
        _wrap_for(model, entries, config)
    if peft_type == "VERA":
        _set_vera_projections(adapter_layers(model), entries, config, tensors)
    layers = adapter_layers(model)
    with torch.no_grad():
        for n, entry in entries.items():
            layer = layers[n]
            for attr, value in entry["tensors"].items():
                dst = getattr(layer, attr)
                if tuple(value.shape) != tuple(dst.shape):
                    raise ValueError(f"{n}: the adapter's {attr} has shape "
                                     f"{tuple(value.shape)}, the layer's is {tuple(dst.shape)}")
                dst.copy_(value)
    return model


def _lora_entries(config, tensors):
    _check_options(config, _LORA_READ)
    init = config.get("init_lora_weights", True)
    if init not in _PLAIN_INITS and init not in _RESIDUAL_INITS:
        raise ValueError(
            f"init_lora_weights={init!r}: PEFT rebuilds this adapter's base on loading from "
            f"data refimpl does not have (calibration, a random sketch or quantization); "
            f"convert it to LoRA in PEFT first, save_pretrained(directory, "
            f"path_initial_model_for_weight_conversion=...), and load that")
    dora = bool(config.get("use_dora", False))
    if dora and init in _RESIDUAL_INITS:
        raise ValueError(f"init_lora_weights={init!r} with use_dora: refimpl's DoRA has no "
                         f"residual initialisation")
    r, alpha = config.get("r", 8), config.get("lora_alpha", 8)
    rslora = bool(config.get("use_rslora", False))
    rank_pattern = config.get("rank_pattern") or {}
    alpha_pattern = config.get("alpha_pattern") or {}
    groups = _group_keys(tensors, _LORA_KEYS, _EMBEDDING_KEYS)
    entries = {}
    for n, found in groups.items():
        embedding = "lora_embedding_A" in found or "lora_embedding_B" in found
        keys = _EMBEDDING_KEYS if embedding else _LORA_KEYS
        want = {"lora_A", "lora_B"} | ({"magnitude"} if dora and not embedding else set())
        by_attr = {a: tensors[_PREFIX + n + k] for a, k in keys.items()
                   if _PREFIX + n + k in tensors}
        if set(by_attr) != want or len(by_attr) != len(found):
            raise ValueError(f"module {n!r}: the adapter holds {sorted(found)}; a "
                             f"{'DoRA' if dora else 'LoRA'} "
                             f"{'embedding ' if embedding else ''}module needs "
                             f"{sorted(keys[a] for a in want)}")
        rank = int(_pattern_value(rank_pattern, n, r))
        if by_attr["lora_A"].shape[0] != rank:
            raise ValueError(f"module {n!r}: lora_A has {by_attr['lora_A'].shape[0]} rows; the "
                             f"configuration's rank for it is {rank}")
        a = _pattern_value(alpha_pattern, n, alpha)
        entries[n] = {"method": "dora" if dora else "lora", "embedding": embedding,
                      "rank": rank, "alpha": a, "rslora": rslora, "init": init,
                      "scaling": a / math.sqrt(rank) if rslora else a / rank,
                      "tensors": by_attr}
    return entries


def _vera_entries(config, tensors):
    _check_options(config, _VERA_READ)
    save_projection = bool(config.get("save_projection", True))
    shared = [k for k in _VERA_SHARED if k in tensors]
    if save_projection and len(shared) != 2:
        raise ValueError("save_projection is true but the adapter lacks base_model.vera_A and "
                         "base_model.vera_B")
    if not save_projection and shared:
        raise ValueError("save_projection is false but the adapter holds the projections")
    rest = {k: v for k, v in tensors.items() if k not in _VERA_SHARED}
    entries = {}
    for n, found in _group_keys(rest, _VERA_KEYS).items():
        by_attr = {a: rest[_PREFIX + n + k] for a, k in _VERA_KEYS.items()
                   if _PREFIX + n + k in rest}
        if len(by_attr) != 2:
            raise ValueError(f"module {n!r}: the adapter holds {sorted(found)}; a VeRA module "
                             f"needs vera_lambda_b and vera_lambda_d")
        entries[n] = {"method": "vera", "embedding": False, "rank": int(config.get("r", 256)),
                      "tensors": by_attr}
    return entries


def _group_keys(tensors, *key_sets):
    """Module name → key suffixes found, refusing keys that are not adapter tensors."""
    suffixes = [k for keys in key_sets for k in keys.values()]
    groups: dict[str, list[str]] = {}
    for key in tensors:
        hit = next((s for s in suffixes if key.startswith(_PREFIX) and key.endswith(s)), None)
        if hit is None:
            raise ValueError(f"the adapter holds {key!r}, which is not a tensor refimpl.lora "
                             f"maps (expected base_model.model.<module> followed by one of "
                             f"{suffixes})")
        groups.setdefault(key[len(_PREFIX):-len(hit)], []).append(hit.lstrip("."))
    if not groups:
        raise ValueError("the adapter holds no adapter tensors")
    return groups


def _check_options(config, read):
    if config.get("bias", "none") != "none":
        raise ValueError(f"bias={config['bias']!r}: the directory holds trained biases of the "
                         f"base layers, which refimpl's adapters do not train")
    for key, value in config.items():
        if key in read or key in _IGNORED:
            continue
        if value not in (None, False, "none") and not (isinstance(value, dict | list)
                                                       and not value):
            raise ValueError(f"adapter_config.json sets {key}={value!r}, a PEFT option "
                             f"refimpl.lora cannot represent")


def _pattern_value(pattern, name, default):
    """PEFT's per-module value: the first key ``k`` with ``re.match(r"(.*\\.)?(k)$", name)``."""
    for key, value in pattern.items():
        if re.match(rf"(.*\.)?({key})$", name):
            return value
    return default


def _refimpl_config(entry, config):
    if entry["method"] == "vera":
        return VeRAConfig(rank=entry["rank"])
    if entry["method"] == "dora":
        return DoRAConfig(rank=entry["rank"], alpha=entry["alpha"], rslora=entry["rslora"])
    init = entry["init"] if entry["init"] in _RESIDUAL_INITS else "lora"
    return LoRAConfig(rank=entry["rank"], alpha=entry["alpha"], rslora=entry["rslora"],
                      init=init, dropout=float(config.get("lora_dropout", 0.0)))


def _wrap_for(model, entries, config):
    groups: dict[Any, list[str]] = {}
    for n, entry in entries.items():
        groups.setdefault(_refimpl_config(entry, config), []).append(n)
    for cfg, names in groups.items():
        wrap(model, "(?:" + "|".join(re.escape(n) for n in names) + ")", cfg)
    # wrap freezes the whole model each time: unfreeze the factors of earlier groups
    for layer in adapter_layers(model).values():
        for key, p in layer.named_parameters():
            if not key.startswith("base."):
                p.requires_grad_(True)


def _check_wrapped(layers, entries, config):
    if set(layers) != set(entries):
        raise ValueError(f"the model's adapter layers are {sorted(layers)}; the adapter's "
                         f"modules are {sorted(entries)}")
    for n, entry in entries.items():
        layer = layers[n]
        if layer.merged:
            raise RuntimeError("unmerge the adapters before loading")
        if entry.get("init") in _RESIDUAL_INITS:
            raise ValueError(f"init_lora_weights={entry['init']!r}: the residual is recomputed "
                             f"from the pretrained weights, so pass the unwrapped model")
        want = {"vera": (VeRALinear,), "dora": (DoRALinear,),
                "lora": (LoRAEmbedding,) if entry["embedding"] else (LoRALinear, LoRAConv2d)}
        if type(layer) not in want[entry["method"]]:
            raise ValueError(f"layer {n!r} is a {type(layer).__name__}; the adapter holds "
                             f"{entry['method']} for it")
        if layer.rank != entry["rank"]:
            raise ValueError(f"layer {n!r} has rank {layer.rank}; the adapter's is "
                             f"{entry['rank']}")
        if "scaling" in entry and not math.isclose(layer.scaling, entry["scaling"],
                                                   rel_tol=1e-12):
            raise ValueError(f"layer {n!r} has scaling {layer.scaling:.6g}; the adapter's "
                             f"lora_alpha and r give {entry['scaling']:.6g}")


def _set_vera_projections(layers, entries, config, tensors):
    r = entries[next(iter(entries))]["rank"]
    max_in = max(layers[n].in_features for n in entries)
    max_out = max(layers[n].out_features for n in entries)
    if _VERA_SHARED[0] in tensors:
        A, B = tensors[_VERA_SHARED[0]], tensors[_VERA_SHARED[1]]
    else:
        A, B = _peft_vera_projections(r, max_in, max_out, int(config.get("projection_prng_key",
                                                                          0)))
    if A.shape[0] != r or A.shape[1] < max_in or B.shape[1] != r or B.shape[0] < max_out:
        raise ValueError(f"VeRA projections of shapes {tuple(A.shape)} and {tuple(B.shape)} do "
                         f"not cover rank {r} and the modules' {max_in} inputs and {max_out} "
                         f"outputs")
    cast = {}
    for n in entries:
        layer = layers[n]
        f = layer._factory()
        key = (f["device"], f["dtype"])
        if key not in cast:  # one shared copy per device and dtype, sliced by every layer
            cast[key] = (A.to(**f), B.to(**f))
        layer.vera_A = cast[key][0][:, :layer.in_features]
        layer.vera_B = cast[key][1][:layer.out_features]


def _peft_vera_projections(r, max_in, max_out, key):
    """PEFT's VeRA projections when they were not saved: Kaiming-uniform with gain √2, ``A``
    then ``B`` from one CPU generator seeded with ``projection_prng_key``."""
    g = torch.Generator(device="cpu").manual_seed(key)
    out = []
    for shape in ((r, max_in), (max_out, r)):
        bound = math.sqrt(3.0) * (math.sqrt(2) / math.sqrt(shape[1]))
        out.append(torch.empty(shape).uniform_(-bound, bound, generator=g))
    return tuple(out)


def _read_config(directory: Path) -> dict:
    path = directory / _CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{directory} has no {_CONFIG_NAME}; expected a directory "
                                f"written by PeftModel.save_pretrained or save_peft_adapter")
    with open(path) as f:
        config = json.load(f)
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object; got {type(config).__name__}")
    return config


def _read_tensors(directory: Path) -> dict[str, torch.Tensor]:
    if (directory / _WEIGHTS_NAME).is_file():
        from safetensors.torch import load_file

        return load_file(str(directory / _WEIGHTS_NAME), device="cpu")
    if (directory / _BIN_NAME).is_file():
        return torch.load(directory / _BIN_NAME, map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"{directory} has neither {_WEIGHTS_NAME} nor {_BIN_NAME}")


# -- shared --------------------------------------------------------------------------------------

def _check_module(obj: object, name: str) -> None:
    if not isinstance(obj, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module; got {type(obj).__name__}")


def _layers(model: nn.Module) -> dict[str, AdapterLayer]:
    layers = adapter_layers(model)
    if not layers:
        raise ValueError("model has no adapter layers; wrap it with refimpl.lora.wrap first")
    if any(layer.merged for layer in layers.values()):
        raise RuntimeError("unmerge the adapters before exporting them (refimpl.lora.unmerge)")
    return layers


def _method(name: str, layer: AdapterLayer) -> str:
    method = _METHOD.get(type(layer))
    if method is None:
        cls = type(layer).__name__
        label = re.sub(r"(Linear|Conv2d|Embedding|Attention)$", "", cls) or cls
        raise ValueError(f"PEFT has no equivalent of {label} (layer {name!r} is a {cls}); "
                         f"save_peft_adapter exports LoRA (any initialisation, rsLoRA), DoRA "
                         f"and VeRA layers only")
    return method

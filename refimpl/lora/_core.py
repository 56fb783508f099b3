"""The adapter mechanism shared by every method of chapter 09.

An adapter layer owns the frozen ``torch.nn.Linear`` (or, for LoRA, ``torch.nn.Embedding`` or
``torch.nn.Conv2d``) it wraps (``layer.base``) and its own factors. Each method's layer
implements three things:

- ``adapter_forward(x, base_out)``: the output of the wrapped layer (``base_out`` is
  ``base(x)``, bias included);
- ``delta_merge(W)`` / ``delta_unmerge(W)``: the base weight after merging / before merging;
- ``extra_state_names``: frozen tensors that are not derived from the base weight and the
  configuration and therefore have to be saved with the trainable factors.

A method is described by a configuration dataclass with a ``build(base, name, ctx)`` method;
:func:`wrap` matches module names, freezes the whole model and swaps each target for
``config.build(...)``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

__all__ = [
    "AdapterLayer",
    "adapter_layers",
    "cpu_peak_memory",
    "input_covariances",
    "load_adapter",
    "merge",
    "save_adapter",
    "trainable_parameters",
    "unmerge",
    "wrap",
]


class AdapterLayer(nn.Module):
    """Base class of every adapter layer: a frozen ``nn.Linear`` plus trainable factors."""

    extra_state_names: tuple[str, ...] = ()
    base_types: tuple[type, ...] = (nn.Linear,)

    def __init__(self, base: nn.Module):
        super().__init__()
        if not isinstance(base, self.base_types):
            want = " or ".join(f"torch.nn.{t.__name__}" for t in self.base_types)
            raise TypeError(f"base must be a {want}; got {type(base).__name__}")
        if not base.weight.is_floating_point():
            raise TypeError(
                f"the wrapped layer's weight must be floating point; got {base.weight.dtype}"
            )
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.merged = False

    @property
    def in_features(self) -> int:
        """``d_in`` (the vocabulary size for an embedding, ``in_channels`` for a convolution)."""
        b = self.base
        if isinstance(b, nn.Embedding):
            return b.num_embeddings
        return b.in_channels if isinstance(b, nn.Conv2d) else b.in_features

    @property
    def out_features(self) -> int:
        """``d_out`` (the embedding dimension for an embedding, ``out_channels`` for a
        convolution)."""
        b = self.base
        if isinstance(b, nn.Embedding):
            return b.embedding_dim
        return b.out_channels if isinstance(b, nn.Conv2d) else b.out_features

    def _factory(self) -> dict[str, Any]:
        return {"device": self.base.weight.device, "dtype": self.base.weight.dtype}

    def forward(self, x):
        out = self.base(x)
        if self.merged:
            return out
        return self.adapter_forward(x, out)

    # -- to be provided by each method ---------------------------------------------------------
    def adapter_forward(self, x, base_out):  # pragma: no cover - abstract
        raise NotImplementedError

    def delta_weight(self):  # pragma: no cover - abstract
        """The dense update ``W' - W`` (only for merging and for tests; the forward never
        forms it)."""
        raise NotImplementedError

    def delta_merge(self, W):
        return W + self.delta_weight().to(W.dtype)

    def delta_unmerge(self, W):
        return W - self.delta_weight().to(W.dtype)

    # -- merging -------------------------------------------------------------------------------
    @torch.no_grad()
    def merge(self, *, safe: bool = True) -> None:
        """Fold the adapter into ``base.weight`` (the forward then uses the base only).

        With ``safe=True`` the merged weight is computed aside and refused (``ValueError``,
        base left untouched) if it contains NaN or Inf.
        """
        if self.merged:
            raise RuntimeError("adapter is already merged")
        new = self.delta_merge(self.base.weight)
        if safe and not bool(torch.isfinite(new).all()):
            raise ValueError("merging would produce NaN or Inf weights; base left unchanged")
        self.base.weight.data = new
        self.merged = True

    def safe_merge(self) -> None:
        """:meth:`merge` with the finiteness check (the default)."""
        self.merge(safe=True)

    @torch.no_grad()
    def unmerge(self) -> None:
        """Undo :meth:`merge` (exact up to floating-point rounding)."""
        if not self.merged:
            raise RuntimeError("adapter is not merged")
        self.base.weight.data = self.delta_unmerge(self.base.weight)
        self.merged = False

    # -- saving --------------------------------------------------------------------------------
    def adapter_state(self) -> dict[str, torch.Tensor]:
        """The tensors that :func:`save_adapter` writes for this layer."""
        state = {n: p for n, p in self.named_parameters() if p.requires_grad}
        for n in self.extra_state_names:
            state[n] = getattr(self, n)
        return state


def _match(names: list[str], target) -> list[str]:
    if isinstance(target, str):
        pattern = re.compile(target)
        return [n for n in names if pattern.fullmatch(n)]
    if isinstance(target, Iterable):
        target = list(target)
        if not target or not all(isinstance(t, str) for t in target):
            raise TypeError("target must be a regular expression or a non-empty list of names")
        picked = []
        for t in target:
            hits = [n for n in names if n == t or n.endswith("." + t)]
            if not hits:
                raise ValueError(f"target {t!r} matches no module; modules are {names}")
            picked += hits
        return sorted(set(picked), key=names.index)
    raise TypeError(f"target must be a str (regex) or a list of names; got {type(target).__name__}")


def wrap(model: nn.Module, target, config, *,
         covariances: Mapping[str, torch.Tensor] | None = None):
    """Replace the modules of ``model`` named by ``target`` by adapter layers (in place).

    Parameters
    ----------
    model : torch.nn.Module
    target : str or list of str
        A regular expression that must match a module's full dotted name, or a list of names
        each matching a full name or its last components (``"q_proj"`` matches
        ``"layers.0.attn.q_proj"``), as PEFT's ``target_modules``.
    config
        A method configuration (e.g. :class:`refimpl.lora.LoRAConfig`).
    covariances : mapping, optional
        Input covariances per target name (from :func:`input_covariances`), for CorDA.

    Returns
    -------
    model
        The same object, with every parameter frozen except the adapters' factors.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    modules = dict(model.named_modules())
    names = [n for n in modules if n]
    chosen = _match(names, target)
    if not chosen:
        raise ValueError(f"target {target!r} matches no module; modules are {names}")
    for n in chosen:
        m = modules[n]
        if isinstance(m, AdapterLayer) or any(n.startswith(o + ".") for o in chosen if o != n):
            raise ValueError(f"module {n!r} is already adapted or nested in a target")
        kinds = [nn.Linear]
        if getattr(config, "supports_embedding", False):
            kinds.append(nn.Embedding)
        if getattr(config, "supports_conv2d", False):
            kinds.append(nn.Conv2d)
        if not isinstance(m, tuple(kinds)):
            allowed = [f"nn.{k.__name__}" for k in kinds]
            said = f"only {allowed[0]}" if len(allowed) == 1 else \
                ", ".join(allowed[:-1]) + " and " + allowed[-1]
            raise TypeError(f"module {n!r} is a {type(m).__name__}; {type(config).__name__} "
                            f"adapts {said}")
        if not m.weight.is_floating_point():
            raise TypeError(f"module {n!r} has a non-float weight ({m.weight.dtype})")
    for p in model.parameters():
        p.requires_grad_(False)
    ctx = config.prepare({n: modules[n] for n in chosen}, covariances)
    for n in chosen:
        parent_name, _, child = n.rpartition(".")
        parent = modules[parent_name] if parent_name else model
        setattr(parent, child, config.build(modules[n], n, ctx))
    return model


def adapter_layers(model: nn.Module) -> dict[str, AdapterLayer]:
    """The adapter layers of ``model`` by name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, AdapterLayer)}


def _layers_or_raise(model):
    layers = adapter_layers(model)
    if not layers:
        raise ValueError("model has no adapter layers; call refimpl.lora.wrap first")
    return layers


def merge(model: nn.Module, *, safe: bool = True) -> nn.Module:
    """Merge every adapter of ``model`` (see :meth:`AdapterLayer.merge`). A refused merge
    leaves all layers unmerged."""
    done = []
    for layer in _layers_or_raise(model).values():
        try:
            layer.merge(safe=safe)
        except ValueError:
            for d in done:
                d.unmerge()
            raise
        done.append(layer)
    return model


def unmerge(model: nn.Module) -> nn.Module:
    """Undo :func:`merge`."""
    for layer in _layers_or_raise(model).values():
        layer.unmerge()
    return model


def trainable_parameters(model: nn.Module) -> int:
    """Number of scalars with ``requires_grad`` (shared tensors counted once)."""
    seen = {}
    for p in model.parameters():
        if p.requires_grad:
            seen[id(p)] = p.numel()
    return sum(seen.values())


def _adapter_tensors(model) -> dict[str, torch.Tensor]:
    out = {}
    for name, layer in _layers_or_raise(model).items():
        for k, v in layer.adapter_state().items():
            out[f"{name}.{k}"] = v
    return out


def save_adapter(model: nn.Module, path) -> None:
    """Write the adapters' trainable factors (and their non-derivable frozen tensors) to a
    safetensors file. Base weights are not written: load into a model wrapped with the same
    configuration from the same pretrained weights (residual initialisations are recomputed
    from them deterministically)."""
    from safetensors.torch import save_file

    layers = _layers_or_raise(model)
    if any(layer.merged for layer in layers.values()):
        raise RuntimeError("unmerge the adapters before saving them")
    tensors = {k: v.detach().contiguous().clone() for k, v in _adapter_tensors(model).items()}
    meta = {n: type(layer).__name__ for n, layer in layers.items()}
    save_file(tensors, str(path), metadata={"refimpl.lora": json.dumps(meta)})


def load_adapter(model: nn.Module, path) -> nn.Module:
    """Load what :func:`save_adapter` wrote into a model wrapped with the same configuration;
    names, layer classes and shapes must agree exactly."""
    from safetensors import safe_open

    layers = _layers_or_raise(model)
    if any(layer.merged for layer in layers.values()):
        raise RuntimeError("unmerge the adapters before loading")
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get("refimpl.lora", "null"))
        want = {n: type(layer).__name__ for n, layer in layers.items()}
        if meta != want:
            raise ValueError(f"adapter file holds layers {meta}; the model has {want}")
        ours = _adapter_tensors(model)
        keys = set(f.keys())
        if keys != set(ours):
            raise ValueError(f"adapter file keys differ: missing {sorted(set(ours) - keys)}, "
                             f"unexpected {sorted(keys - set(ours))}")
        with torch.no_grad():
            for k, dst in ours.items():
                src = f.get_tensor(k)
                if src.shape != dst.shape:
                    raise ValueError(f"{k}: file has shape {tuple(src.shape)}, model "
                                     f"{tuple(dst.shape)}")
                dst.copy_(src)
    return model


@torch.no_grad()
def input_covariances(model: nn.Module, target, batches: Iterable) -> dict[str, torch.Tensor]:
    """Input covariances ``C = XᵀX / N`` (fp32) of the targeted linear layers, over all rows
    ``N`` of the inputs they see while ``model(batch)`` runs for each batch (CorDA's
    calibration)."""
    modules = dict(model.named_modules())
    chosen = _match([n for n in modules if n], target)
    if not chosen:
        raise ValueError(f"target {target!r} matches no module")
    sums: dict[str, torch.Tensor] = {}
    counts = dict.fromkeys(chosen, 0)

    def hook_for(name):
        def hook(module, args, output):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).float()
            sums[name] = sums.get(name, 0) + x.T @ x
            counts[name] += x.shape[0]
        return hook

    handles = [modules[n].register_forward_hook(hook_for(n)) for n in chosen]
    try:
        for batch in batches:
            model(batch)
    finally:
        for h in handles:
            h.remove()
    missing = [n for n in chosen if counts[n] == 0]
    if missing:
        raise ValueError(f"modules {missing} saw no input during calibration")
    return {n: sums[n] / counts[n] for n in chosen}


def kaiming_uniform(shape, generator, *, device=None, dtype=None):
    """``nn.init.kaiming_uniform_(a=√5)`` (the default of ``nn.Linear`` and of PEFT's LoRA A)
    drawn from ``generator``."""
    fan_in = shape[1]
    bound = 1.0 / math.sqrt(fan_in)  # gain √(2/(1+5)) · √(3/fan_in)
    t = torch.empty(shape, dtype=torch.float32)
    t.uniform_(-bound, bound, generator=generator)
    return t.to(device=device, dtype=dtype)


def torch_generator(seed) -> torch.Generator:
    """A CPU ``torch.Generator`` from an int seed, a NumPy generator or ``None``."""
    from refimpl.seeding import as_generator

    if isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator()
    g.manual_seed(int(as_generator(seed).integers(2**62)))
    return g


def cpu_peak_memory(fn) -> int:
    """Peak bytes allocated by torch on the CPU while ``fn()`` runs, above what was allocated
    before it: the running sum of the bytes each operator allocates and frees, as recorded by
    torch's CPU memory profiler (``torch.profiler.profile(profile_memory=True)``); the result
    of ``fn`` is dropped inside the measurement. Output on file descriptor 2 (the profiler
    backend's log) is discarded while ``fn`` runs."""
    import os
    import sys

    from torch.profiler import ProfilerActivity, profile

    # the profiler's backend logs its start and stop on file descriptor 2: silence it
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            out = fn()
            del out
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage != 0),
                    key=lambda e: e.time_range.start)
    cur = peak = 0
    for e in events:
        cur += e.self_cpu_memory_usage
        peak = max(peak, cur)
    return peak

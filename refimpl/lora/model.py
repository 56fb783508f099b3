"""Applying, merging, counting, saving and loading adapters on a whole model.

:func:`wrap` matches module names, picks the build method for each target by its kind
(refusing kinds the configuration does not list), freezes the whole model, calls ``prepare``
and swaps each target for the layer built (the protocol of layers and configurations is in
:mod:`refimpl.lora._core`). :func:`merge` / :func:`unmerge` fold every adapter into its base
weight and back, :func:`trainable_parameters` counts what trains, :func:`save_adapter` /
:func:`load_adapter` write and read the adapters' tensors only, and :func:`input_covariances`
calibrates CorDA.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable

import torch
from torch import nn

from refimpl.lora._core import AdapterConfig, AdapterLayer

__all__ = [
    "adapter_layers",
    "input_covariances",
    "load_adapter",
    "merge",
    "save_adapter",
    "trainable_parameters",
    "unmerge",
    "wrap",
]


def _match(names: list[str], target: str | Iterable[str]) -> list[str]:
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


def wrap(model: nn.Module, target: str | Iterable[str], config: AdapterConfig) -> nn.Module:
    """Replace the modules of ``model`` named by ``target`` by adapter layers (in place).

    Parameters
    ----------
    model : torch.nn.Module
    target : str or list of str
        A regular expression that must match a module's full dotted name, or a list of names
        each matching a full name or its last components (``"q_proj"`` matches
        ``"layers.0.attn.q_proj"``), as PEFT's ``target_modules``.
    config : AdapterConfig
        A method configuration (e.g. :class:`refimpl.lora.LoRAConfig`).

    Returns
    -------
    model
        The same object, with every parameter frozen except the adapters' factors.

    Raises
    ------
    TypeError
        If ``model`` or ``config`` has the wrong type, a target is a kind of module the
        configuration does not adapt, or its weight is not floating point.
    ValueError
        If ``target`` matches no module, or a target is already adapted or nested in another.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if not isinstance(config, AdapterConfig):
        raise TypeError(f"config must be a method configuration (an AdapterConfig such as "
                        f"LoRAConfig); got {type(config).__name__}")
    modules = dict(model.named_modules())
    names = [n for n in modules if n]
    chosen = _match(names, target)
    if not chosen:
        raise ValueError(f"target {target!r} matches no module; modules are {names}")
    builds = {}
    for n in chosen:
        m = modules[n]
        if isinstance(m, AdapterLayer) or any(n.startswith(o + ".") for o in chosen if o != n):
            raise ValueError(f"module {n!r} is already adapted or nested in a target")
        builds[n] = config.builder_for(m, n)
        if not m.weight.is_floating_point():
            raise TypeError(f"module {n!r} has a non-float weight ({m.weight.dtype})")
    for p in model.parameters():
        p.requires_grad_(False)
    state = config.prepare({n: modules[n] for n in chosen})
    for n in chosen:
        parent_name, _, child = n.rpartition(".")
        parent = modules[parent_name] if parent_name else model
        setattr(parent, child, builds[n](modules[n], n, state))
    return model


def adapter_layers(model: nn.Module) -> dict[str, AdapterLayer]:
    """The adapter layers of ``model``.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    dict of str to AdapterLayer
        Every :class:`AdapterLayer` submodule by its full name, in module order.
    """
    return {n: m for n, m in model.named_modules() if isinstance(m, AdapterLayer)}


def _layers_or_raise(model):
    layers = adapter_layers(model)
    if not layers:
        raise ValueError("model has no adapter layers; call refimpl.lora.wrap first")
    return layers


def merge(model: nn.Module, *, safe: bool = True) -> nn.Module:
    """Merge every adapter of ``model`` into its base weight (see :meth:`AdapterLayer.merge`).

    Parameters
    ----------
    model : torch.nn.Module
        A wrapped model (:func:`wrap`).
    safe : bool
        Refuse merges that would produce NaN or Inf; a refused merge leaves all layers
        unmerged.

    Returns
    -------
    model
        The same object.

    Raises
    ------
    ValueError
        If ``model`` has no adapter layers, or a merge is refused.
    RuntimeError
        If a layer is already merged.
    """
    done: list[AdapterLayer] = []
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
    """Undo :func:`merge` for every adapter of ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        A merged model.

    Returns
    -------
    model
        The same object, every layer unmerged (``RuntimeError`` if one is not merged,
        ``ValueError`` if there is none).
    """
    for layer in _layers_or_raise(model).values():
        layer.unmerge()
    return model


def trainable_parameters(model: nn.Module) -> int:
    """The number of trainable scalars of ``model``.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    int
        The scalars of all parameters with ``requires_grad`` (a tensor shared by several
        layers counted once).
    """
    seen = {}
    for p in model.parameters():
        if p.requires_grad:
            seen[id(p)] = p.numel()
    return sum(seen.values())


def _adapter_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for name, layer in _layers_or_raise(model).items():
        for k, v in layer.adapter_state().items():
            out[f"{name}.{k}"] = v
    return out


def save_adapter(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Write the adapters' trainable factors (and their non-derivable frozen tensors) to a
    safetensors file.

    Base weights are not written: load into a model wrapped with the same configuration from
    the same pretrained weights (residual initialisations are recomputed from them
    deterministically).

    Parameters
    ----------
    model : torch.nn.Module
        A wrapped, unmerged model.
    path : str or os.PathLike
        The file to write.

    Raises
    ------
    ValueError
        If ``model`` has no adapter layers.
    RuntimeError
        If an adapter is merged.
    """
    from safetensors.torch import save_file

    layers = _layers_or_raise(model)
    if any(layer.merged for layer in layers.values()):
        raise RuntimeError("unmerge the adapters before saving them")
    tensors = {k: v.detach().contiguous().clone() for k, v in _adapter_tensors(model).items()}
    meta = {n: type(layer).__name__ for n, layer in layers.items()}
    save_file(tensors, str(path), metadata={"refimpl.lora": json.dumps(meta)})


def load_adapter(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load what :func:`save_adapter` wrote into a model wrapped with the same configuration.

    Parameters
    ----------
    model : torch.nn.Module
        A wrapped, unmerged model.
    path : str or os.PathLike
        A file written by :func:`save_adapter`.

    Returns
    -------
    model
        The same object, with the adapters' tensors copied from the file.

    Raises
    ------
    ValueError
        If the layer names, layer classes, tensor names or shapes differ from the file's.
    RuntimeError
        If an adapter is merged.
    """
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
def input_covariances(model: nn.Module, target: str | Iterable[str],
                      batches: Iterable) -> dict[str, torch.Tensor]:
    """Input covariances of the targeted linear layers: CorDA's calibration.

    Pass the result as ``LoRAConfig(init="corda_ipm" or "corda_kpm", covariances=...)``.

    Parameters
    ----------
    model : torch.nn.Module
    target : str or list of str
        The layers, as in :func:`wrap`.
    batches : iterable
        Inputs; ``model(batch)`` runs for each.

    Returns
    -------
    dict of str to torch.Tensor
        ``C = XᵀX / N`` (fp32, d_in×d_in) per layer, over all ``N`` rows of the inputs it saw.

    Raises
    ------
    ValueError
        If ``target`` matches no module or a layer saw no input.
    """
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

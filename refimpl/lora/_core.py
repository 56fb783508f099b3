"""The adapter mechanism shared by every method of chapter 09.

The protocol has two sides.

**Layers.** An adapter layer (a subclass of :class:`AdapterLayer`) owns the frozen module it
wraps (``layer.base``: a ``torch.nn.Linear``, or for some methods a ``torch.nn.Embedding`` or
``torch.nn.Conv2d``; the class attribute ``base_types`` says which) and its own factors. Each
layer implements

- ``adapter_forward(x, base_out)``: the output of the wrapped layer (``base_out`` is
  ``base(x)``, bias included);
- ``delta_weight()``: the dense update ``W' − W`` (for merging and tests only), and, where
  merging is not ``W + ΔW``, ``delta_merge(W)`` / ``delta_unmerge(W)``;
- ``extra_state_names``: frozen tensors that are not derived from the base weight and the
  configuration and therefore have to be saved with the trainable factors.

A layer whose initial update is taken out of the pretrained weight (PiSSA, MiLoRA, OLoRA,
CorDA, NLoRA/IntTune, SVFit, SoKA, DoTA, RiemannLoRA) calls
:meth:`AdapterLayer._subtract_from_base` with that update, so that the output is unchanged at
step 0. LQ-LoRA replaces the weight by its quantized part (:meth:`AdapterLayer._set_base_weight`,
which merging uses too); these are the only ways base weights change (CLOVER's
:func:`~refimpl.lora.clover_wrap` rewrites its pairs' weights exactly, by design).

**Configurations.** A method is a frozen dataclass deriving from :class:`AdapterConfig` (most
through :class:`ScaledConfig`, whose update is scaled by α/r, or :class:`EnergyRankConfig`,
whose rank may be chosen by an energy fraction). It implements

- ``builders()``: the one statement of which modules it adapts, a mapping from each adapter
  layer class it builds to the method that builds it, ``build(base, name, state) -> layer``;
  the module kinds are those classes' ``base_types``;
- ``prepare(targets)`` (optional): called once with all targets by name before any is built;
  it checks what concerns them together and returns the ``state`` handed to every build (a
  ``torch.Generator`` shared by the layers, VeRA's shared projections, LoTR's shared factors;
  ``None`` by default). Data a method needs beyond the weights is a field of its
  configuration (CorDA's covariances, LQ-LoRA's Fisher matrices and bit widths).

:func:`wrap` matches module names, picks the build method for each target by its kind
(refusing kinds the configuration does not list), freezes the whole model, calls ``prepare``
and swaps each target for the layer built.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from refimpl import _xp
from refimpl._validation import check_fraction, check_positive, check_positive_int

__all__ = [
    "AdapterConfig",
    "AdapterLayer",
    "adapter_layers",
    "energy_rank",
    "input_covariances",
    "load_adapter",
    "merge",
    "save_adapter",
    "trainable_parameters",
    "unmerge",
    "wrap",
]


class AdapterLayer(nn.Module):
    """Base class of every adapter layer: a frozen module plus trainable factors.

    Freezes every parameter of ``base``; subclasses add their factors and implement
    ``adapter_forward`` and ``delta_weight`` (see the module docstring).

    Parameters
    ----------
    base : torch.nn.Module
        The module to adapt, an instance of one of the class's ``base_types``
        (``torch.nn.Linear`` unless a subclass says otherwise) with a floating-point weight.

    Raises
    ------
    TypeError
        If ``base`` is not of the accepted types or its weight is not floating point.
    """

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
        """The layer's output given the input ``x`` and the base's output ``base_out``."""
        raise NotImplementedError

    def delta_weight(self):  # pragma: no cover - abstract
        """The dense update ``W' - W`` (only for merging and for tests; the forward never
        forms it)."""
        raise NotImplementedError

    def delta_merge(self, W):
        """The base weight after merging, from the weight ``W`` before it."""
        return W + self.delta_weight().to(W.dtype)

    def delta_unmerge(self, W):
        """The base weight before merging, from the merged weight ``W``."""
        return W - self.delta_weight().to(W.dtype)

    # -- the base weight -----------------------------------------------------------------------
    @torch.no_grad()
    def _set_base_weight(self, W) -> None:
        """Replace the frozen base weight by ``W`` (cast to its dtype and device)."""
        self.base.weight.data = W.to(**self._factory()).contiguous()

    @torch.no_grad()
    def _subtract_from_base(self, delta) -> None:
        """Replace the frozen base weight ``W`` by the residual ``W − delta``.

        The residual initialisations call this with their initial update (usually
        ``self.delta_weight()`` right after the factors are set), so that the output is
        unchanged at step 0. The difference is formed in the wider of the two dtypes (at least
        float32) and stored in the base's dtype.
        """
        W = self.base.weight
        dt = torch.promote_types(torch.promote_types(W.dtype, delta.dtype), torch.float32)
        self._set_base_weight(W.to(dt) - delta.to(device=W.device, dtype=dt))

    # -- merging -------------------------------------------------------------------------------
    @torch.no_grad()
    def merge(self, *, safe: bool = True) -> None:
        """Fold the adapter into ``base.weight`` (the forward then uses the base only).

        Parameters
        ----------
        safe : bool
            Compute the merged weight aside and refuse it (base left untouched) if it
            contains NaN or Inf.

        Raises
        ------
        RuntimeError
            If the adapter is already merged.
        ValueError
            With ``safe=True``, if the merged weight would not be finite.
        """
        if self.merged:
            raise RuntimeError("adapter is already merged")
        new = self.delta_merge(self.base.weight)
        if safe and not bool(torch.isfinite(new).all()):
            raise ValueError("merging would produce NaN or Inf weights; base left unchanged")
        self._set_base_weight(new)
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Undo :meth:`merge` (exact up to floating-point rounding).

        Raises
        ------
        RuntimeError
            If the adapter is not merged.
        """
        if not self.merged:
            raise RuntimeError("adapter is not merged")
        self._set_base_weight(self.delta_unmerge(self.base.weight))
        self.merged = False

    # -- saving --------------------------------------------------------------------------------
    def adapter_state(self) -> dict[str, torch.Tensor]:
        """The tensors that :func:`save_adapter` writes for this layer: the trainable
        parameters and the ``extra_state_names``."""
        state = {n: p for n, p in self.named_parameters() if p.requires_grad}
        for n in self.extra_state_names:
            state[n] = getattr(self, n)
        return state


Builder = Callable[[nn.Module, str, Any], AdapterLayer]


class AdapterConfig:
    """Base of every method's configuration (see the module docstring for the protocol).

    Subclasses are frozen dataclasses that implement :meth:`builders` and, if the targets
    need to be seen together, :meth:`prepare`.
    """

    def builders(self) -> dict[type[AdapterLayer], Builder]:  # pragma: no cover - abstract
        """The adapter layer classes this method builds, each with the method that builds
        one: ``build(base, name, state) -> layer``. The modules it adapts are the classes'
        ``base_types``."""
        raise NotImplementedError

    def prepare(self, targets: Mapping[str, nn.Module]) -> Any:
        """Check the targets together and return the state every build receives.

        Parameters
        ----------
        targets : mapping of str to torch.nn.Module
            The modules about to be adapted, by full name.

        Returns
        -------
        object
            Handed to every ``build`` as ``state``; ``None`` here.
        """
        return None

    def builder_for(self, module: nn.Module, name: str) -> Builder:
        """The build method for ``module`` (named ``name``) by its kind.

        Raises
        ------
        TypeError
            If this configuration adapts no module of that kind.
        """
        builders = self.builders()
        for layer, build in builders.items():
            if isinstance(module, layer.base_types):
                return build
        kinds = list(dict.fromkeys(f"nn.{t.__name__}" for layer in builders
                                   for t in layer.base_types))
        said = f"only {kinds[0]}" if len(kinds) == 1 else ", ".join(kinds[:-1]) + " and " + \
            kinds[-1]
        raise TypeError(f"module {name!r} is a {type(module).__name__}; "
                        f"{type(self).__name__} adapts {said}")


def scaling_factor(rank: int, alpha: float | None, rslora: bool = False) -> float:
    """``α/r``, or ``α/√r`` with rsLoRA; ``alpha=None`` means ``α = r``."""
    alpha = rank if alpha is None else alpha
    return alpha / math.sqrt(rank) if rslora else alpha / rank


class ScaledConfig(AdapterConfig):
    """Base of the configurations with ``rank``, ``alpha`` (``None``: α = rank) and,
    optionally, ``rslora``: the update is scaled by α/r, or by α/√r with rsLoRA. Checks both
    fields (a positive integer rank; a finite positive alpha)."""

    rslora = False

    def __post_init__(self):
        check_positive_int(self.rank, "rank")
        if self.alpha is not None:
            check_positive(self.alpha, "alpha")

    @property
    def scaling(self) -> float:
        """The factor ``s`` of the update ``s·ΔW``."""
        return scaling_factor(self.rank, self.alpha, self.rslora)


def energy_rank(values, tau: float) -> int:
    """The smallest rank that holds the fraction ``tau`` of the energy.

    Parameters
    ----------
    values : 1-D array or torch tensor
        Singular values (or the diagonal of a pivoted QR's ``R``), sorted decreasingly.
    tau : float
        Energy fraction in (0, 1].

    Returns
    -------
    int
        The smallest ``r`` with ``Σ_{i≤r} vᵢ² ≥ τ Σ vᵢ²``.

    Raises
    ------
    ValueError
        If ``tau`` is not in (0, 1].
    """
    tau = check_fraction(tau, "tau")
    e = np.cumsum(np.asarray(_xp.to_numpy(values), dtype=np.float64) ** 2)
    return int(min(np.searchsorted(e, tau * e[-1] * (1 - 1e-12)) + 1, e.size))


class EnergyRankConfig(AdapterConfig):
    """Base of the configurations whose rank is given (``rank``) or, when ``rank`` is
    ``None``, chosen by :func:`energy_rank` with the fraction ``energy``. Checks both fields."""

    def __post_init__(self):
        if self.rank is not None:
            check_positive_int(self.rank, "rank")
        check_fraction(self.energy, "energy")


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


def wrap(model: nn.Module, target, config: AdapterConfig) -> nn.Module:
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


def _adapter_tensors(model) -> dict[str, torch.Tensor]:
    out = {}
    for name, layer in _layers_or_raise(model).items():
        for k, v in layer.adapter_state().items():
            out[f"{name}.{k}"] = v
    return out


def save_adapter(model: nn.Module, path) -> None:
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


def load_adapter(model: nn.Module, path) -> nn.Module:
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
def input_covariances(model: nn.Module, target, batches: Iterable) -> dict[str, torch.Tensor]:
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


def kaiming_uniform(shape, generator, *, device=None, dtype=None):
    """``nn.init.kaiming_uniform_(a=√5)`` (the default of ``nn.Linear`` and of PEFT's LoRA A)
    drawn from ``generator``."""
    fan_in = shape[1]
    bound = 1.0 / math.sqrt(fan_in)  # gain √(2/(1+5)) · √(3/fan_in)
    t = torch.empty(shape, dtype=torch.float32)
    t.uniform_(-bound, bound, generator=generator)
    return t.to(device=device, dtype=dtype)

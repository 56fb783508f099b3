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

:mod:`refimpl.lora.model` applies the protocol to a whole model (:func:`~refimpl.lora.wrap`,
merging, counting, saving and loading).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from refimpl import _xp
from refimpl._typing import AdaptedModule, Array
from refimpl._validation import check_fraction, check_positive, check_positive_int

__all__ = [
    "AdapterConfig",
    "AdapterLayer",
    "energy_rank",
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

    def __init__(self, base: AdaptedModule) -> None:
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The base module's output plus the adapter's (:meth:`adapter_forward`), or the base
        output alone once the adapter is merged into the base weights."""
        out = self.base(x)
        if self.merged:
            return out
        return self.adapter_forward(x, out)

    # -- to be provided by each method ---------------------------------------------------------
    def adapter_forward(self, x: torch.Tensor,  # pragma: no cover - abstract
                        base_out: torch.Tensor) -> torch.Tensor:
        """The layer's output given the input ``x`` and the base's output ``base_out``."""
        raise NotImplementedError

    def delta_weight(self) -> torch.Tensor:  # pragma: no cover - abstract
        """The dense update ``W' - W`` (only for merging and for tests; the forward never
        forms it)."""
        raise NotImplementedError

    def delta_merge(self, W: torch.Tensor) -> torch.Tensor:
        """The base weight after merging, from the weight ``W`` before it."""
        return W + self.delta_weight().to(W.dtype)

    def delta_unmerge(self, W: torch.Tensor) -> torch.Tensor:
        """The base weight before merging, from the merged weight ``W``."""
        return W - self.delta_weight().to(W.dtype)

    # -- the base weight -----------------------------------------------------------------------
    @torch.no_grad()
    def _set_base_weight(self, W: torch.Tensor) -> None:
        """Replace the frozen base weight by ``W`` (cast to its dtype and device)."""
        self.base.weight.data = W.to(**self._factory()).contiguous()

    @torch.no_grad()
    def _subtract_from_base(self, delta: torch.Tensor) -> None:
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
        """The tensors that :func:`~refimpl.lora.save_adapter` writes for this layer: the trainable
        parameters and the ``extra_state_names``."""
        state: dict[str, torch.Tensor] = {n: p for n, p in self.named_parameters()
                                          if p.requires_grad}
        for n in self.extra_state_names:
            state[n] = getattr(self, n)
        return state


# build(base, name, state) -> layer; base is a module of the layer's base_types
Builder = Callable[[Any, str, Any], AdapterLayer]


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

    def build(self, base: Any, name: str, state: Any) -> AdapterLayer:  # pragma: no cover
        """Build the layer that replaces one target module: the builder that every method's
        :meth:`~refimpl.lora.AdapterConfig.builders` names for ``nn.Linear`` targets (other
        kinds have private builders).

        Parameters
        ----------
        base : torch.nn.Module
            The module being adapted; the layer keeps it as ``base``.
        name : str
            Its full dotted name in the model, for error messages.
        state : object
            What :meth:`~refimpl.lora.AdapterConfig.prepare` returned for all the targets (a
            seeded generator for the random initial factors, factors the layers share, or
            ``None``).

        Returns
        -------
        AdapterLayer
            The method's layer for ``base``.
        """
        raise NotImplementedError

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

    rank: int
    alpha: float | None
    rslora = False

    def __post_init__(self) -> None:
        check_positive_int(self.rank, "rank")
        if self.alpha is not None:
            check_positive(self.alpha, "alpha")

    @property
    def scaling(self) -> float:
        """The factor ``s`` of the update ``s·ΔW``."""
        return scaling_factor(self.rank, self.alpha, self.rslora)


def energy_rank(values: Array, tau: float) -> int:
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

    rank: int | None
    energy: float

    def __post_init__(self) -> None:
        if self.rank is not None:
            check_positive_int(self.rank, "rank")
        check_fraction(self.energy, "energy")


def kaiming_uniform(shape: tuple[int, int], generator: torch.Generator | None, *,
                    device: torch.device | str | None = None,
                    dtype: torch.dtype | None = None) -> torch.Tensor:
    """``nn.init.kaiming_uniform_(a=√5)`` (the default of ``nn.Linear`` and of PEFT's LoRA A)
    drawn from ``generator``."""
    fan_in = shape[1]
    bound = 1.0 / math.sqrt(fan_in)  # gain √(2/(1+5)) · √(3/fan_in)
    t = torch.empty(shape, dtype=torch.float32)
    t.uniform_(-bound, bound, generator=generator)
    return t.to(device=device, dtype=dtype)

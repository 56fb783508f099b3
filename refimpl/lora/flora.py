"""FLoRA (tier B): a Tucker-format update whose small core keeps the layout of the weight
(channels × channels × kernel height × kernel width for a convolution, out × in for a linear
layer) instead of flattening a convolution kernel into a matrix as LoRA does.

For ``nn.Conv2d`` (c_out×c_in×kh×kw) the update is

    ΔW = s · G ×₁ U_out ×₂ U_in ×₃ U_h ×₄ U_w,

with the core ``G`` (r×r×r_h×r_w) and the factor matrices ``U_out`` (c_out×r), ``U_in``
(c_in×r), ``U_h`` (kh×r_h), ``U_w`` (kw×r_w) all trained; for ``nn.Linear`` it is the
two-mode case ``ΔW = s·U_out G U_inᵀ`` (G r×r). The forward pass never forms ``ΔW``: because
the channel factors act per pixel, ``ΔW ⋆ x = U_out · (K ⋆ (U_inᵀ · x))`` with the small kernel
``K = G ×₃ U_h ×₄ U_w`` (r×r×kh×kw) run with the base's stride, padding, dilation and padding
mode. This is our reading of Si et al.'s abstract and figure (Tucker decomposition of the
change, a low-rank core space with the layout of the original space); the initialisation —
zero core (output unchanged at step 0), Kaiming-uniform factors — and the scale ``s = α/r``
are our choices, the paper's may differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from refimpl._validation import check_positive_int, check_rank
from refimpl.lora._core import AdapterLayer, Builder, ScaledConfig, kaiming_uniform
from refimpl.seeding import torch_generator

__all__ = ["FLoRAConfig", "FLoRAConv2d", "FLoRALinear"]


@dataclass(frozen=True)
class FLoRAConfig(ScaledConfig):
    """FLoRA on ``nn.Linear`` and ``nn.Conv2d`` (``groups=1``) targets.

    Trainable per layer: ``r(d_out + d_in) + r²`` (Linear),
    ``r(c_out + c_in) + r_h·kh + r_w·kw + r²·r_h·r_w`` (Conv2d).

    Attributes
    ----------
    rank : int
        The channel ranks ``r`` (both modes); at most ``min(d_out, d_in)`` of each target.
    spatial_rank : int, optional
        ``r_h = r_w`` for convolutions, at most the kernel size (``None``: the kernel size,
        i.e. no spatial compression).
    alpha : float, optional
        As in :class:`~refimpl.lora.LoRAConfig`.
    seed : int, numpy.random.Generator, torch.Generator or None
        Randomness of the factors' initialisation.
    """

    rank: int = 8
    spatial_rank: int | None = None
    alpha: float | None = None
    seed: Any = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.spatial_rank is not None:
            check_positive_int(self.spatial_rank, "spatial_rank")

    def builders(self) -> dict[type[AdapterLayer], Builder]:
        return {FLoRALinear: self.build, FLoRAConv2d: self._build_conv2d}

    def prepare(self, targets: Mapping[str, nn.Module]) -> torch.Generator:
        return torch_generator(self.seed)

    def build(self, base: nn.Linear, name: str, gen: torch.Generator) -> FLoRALinear:
        d_out, d_in = base.weight.shape
        r = check_rank(self.rank, "rank", min(d_out, d_in), what=f"min(d_out, d_in) of {name}")
        factors = [kaiming_uniform(shape, gen) for shape in ((d_out, r), (d_in, r))]
        return FLoRALinear(base, torch.zeros(r, r), factors, self.scaling)

    def _build_conv2d(self, base: nn.Conv2d, name: str, gen: torch.Generator) -> FLoRAConv2d:
        if base.groups != 1:
            raise ValueError(f"{name} is a grouped convolution (groups={base.groups}); "
                             "FLoRA adapts only groups=1 convolutions")
        c_out, c_in, kh, kw = base.weight.shape
        r = check_rank(self.rank, "rank", min(c_out, c_in),
                       what=f"min(out_channels, in_channels) of {name}")
        rh = kh if self.spatial_rank is None else check_rank(
            self.spatial_rank, "spatial_rank", min(kh, kw), what=f"kernel size of {name}")
        rw = kw if self.spatial_rank is None else rh
        factors = [kaiming_uniform(shape, gen) for shape in
                   ((c_out, r), (c_in, r), (kh, rh), (kw, rw))]
        return FLoRAConv2d(base, torch.zeros(r, r, rh, rw), factors, self.scaling)


class _Tucker(AdapterLayer):
    """The parameters shared by FLoRA's two layers: ``flora_core`` and named factors."""

    def _init_factors(self, core, factors, names, scaling):
        f = self._factory()
        self.scaling = float(scaling)
        self.flora_core = nn.Parameter(core.to(**f))
        for n, U in zip(names, factors, strict=True):
            setattr(self, n, nn.Parameter(U.to(**f)))


class FLoRALinear(_Tucker):
    """``y = base(x) + s·((x U_in) Gᵀ) U_outᵀ`` with trainable ``flora_core`` (r×r),
    ``flora_out`` (d_out×r) and ``flora_in`` (d_in×r).

    Parameters
    ----------
    base : torch.nn.Linear
        The frozen layer.
    core : torch.Tensor
        The initial core ``G`` (r×r).
    factors : sequence of torch.Tensor
        The initial ``U_out`` (d_out×r) and ``U_in`` (d_in×r).
    scaling : float
        ``s``.
    """

    flora_core: nn.Parameter
    flora_out: nn.Parameter
    flora_in: nn.Parameter

    def __init__(self, base: nn.Linear, core: torch.Tensor, factors: Sequence[torch.Tensor],
                 scaling: float) -> None:
        super().__init__(base)
        self._init_factors(core, factors, ("flora_out", "flora_in"), scaling)

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        h = (x @ self.flora_in) @ (self.scaling * self.flora_core).mT
        return base_out + h @ self.flora_out.mT

    def delta_weight(self) -> torch.Tensor:
        return self.scaling * (self.flora_out.float() @ self.flora_core.float()
                               @ self.flora_in.float().mT)


class FLoRAConv2d(_Tucker):
    """Tucker-4 update of a ``groups=1`` convolution: trainable ``flora_core``
    (r×r×r_h×r_w), ``flora_out`` (c_out×r), ``flora_in`` (c_in×r), ``flora_h`` (kh×r_h),
    ``flora_w`` (kw×r_w).

    Parameters
    ----------
    base : torch.nn.Conv2d
        The frozen convolution (``groups=1``).
    core : torch.Tensor
        The initial core ``G`` (r×r×r_h×r_w).
    factors : sequence of torch.Tensor
        The initial ``U_out`` (c_out×r), ``U_in`` (c_in×r), ``U_h`` (kh×r_h), ``U_w``
        (kw×r_w).
    scaling : float
        ``s``.
    """

    base: nn.Conv2d
    flora_core: nn.Parameter
    flora_out: nn.Parameter
    flora_in: nn.Parameter
    flora_h: nn.Parameter
    flora_w: nn.Parameter
    base_types = (nn.Conv2d,)

    def __init__(self, base: nn.Conv2d, core: torch.Tensor, factors: Sequence[torch.Tensor],
                 scaling: float) -> None:
        super().__init__(base)
        self._init_factors(core, factors, ("flora_out", "flora_in", "flora_h", "flora_w"),
                           scaling)

    def _kernel(self):
        """``K = G ×₃ U_h ×₄ U_w`` (r×r×kh×kw)."""
        return torch.einsum("pqcd,ac,bd->pqab", self.flora_core, self.flora_h, self.flora_w)

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        h = nn.functional.conv2d(x, self.flora_in.mT[..., None, None])  # U_inᵀ per pixel
        h = self.base._conv_forward(h, self._kernel() * self.scaling, None)
        return base_out + nn.functional.conv2d(h, self.flora_out[..., None, None])

    def delta_weight(self) -> torch.Tensor:
        K = self._kernel().float()
        return self.scaling * torch.einsum("pqab,op,iq->oiab", K, self.flora_out.float(),
                                           self.flora_in.float())

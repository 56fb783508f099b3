"""Tier-B adapters built from shared or frozen factors: LoTR (a Tucker-2 update shared across
layers), NoRA (an inner LoRA between frozen SVD factors) and Block-LoRA (one down-projection
block shared by every input block)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from refimpl._validation import check_divides, check_positive_int, check_rank
from refimpl.lora._core import (
    AdapterLayer,
    Builder,
    ScaledConfig,
    kaiming_uniform,
    scaling_factor,
)
from refimpl.lora.factors import pissa_factors
from refimpl.seeding import torch_generator

__all__ = [
    "BlockLoRAConfig",
    "BlockLoRALinear",
    "LoTRConfig",
    "LoTRLinear",
    "NoRAConfig",
    "NoRALinear",
]


@dataclass(frozen=True)
class LoTRConfig(ScaledConfig):
    """LoTR: the updates of all wrapped layers form a Tucker-2 tensor
    (:class:`refimpl.tensor.Tucker2`), ``ΔW_l = s·B G_l A`` with ``A`` (r×d_in) and ``B``
    (d_out×r) shared by every layer and a core ``G_l`` (r×r) per layer, all trained;
    ``s = α/r``. All targets must have the same shape. Initialisation: ``A`` Kaiming-uniform,
    ``G_l = I``, ``B = 0`` (output unchanged at step 0). Trainable: ``r(d_in + d_out) + L r²``
    for ``L`` layers.

    Attributes
    ----------
    rank : int
        ``r``; at most ``min(d_out, d_in)`` of the targets (they share one shape).
    alpha : float, optional
        As in :class:`~refimpl.lora.LoRAConfig`.
    seed : int, numpy.random.Generator, torch.Generator or None
        Randomness of ``A``'s initialisation.
    """

    rank: int = 8
    alpha: float | None = None
    seed: Any = 0

    def builders(self) -> dict[type[AdapterLayer], Builder]:
        return {LoTRLinear: self.build}

    def prepare(self, targets: Mapping[str, nn.Linear],  # type: ignore[override]  # Linear only
                ) -> tuple[nn.Parameter, nn.Parameter]:
        shapes = {tuple(m.weight.shape) for m in targets.values()}
        if len(shapes) != 1:
            raise ValueError(f"LoTR shares its factors, so all targets need one shape; got "
                             f"{sorted(shapes)}")
        (d_out, d_in), = shapes
        r = check_rank(self.rank, "rank", min(d_out, d_in), what="min(d_out, d_in)")
        ref = next(iter(targets.values())).weight
        A = kaiming_uniform((r, d_in), torch_generator(self.seed), device=ref.device,
                            dtype=ref.dtype)
        B = torch.zeros(d_out, r, device=ref.device, dtype=ref.dtype)
        return nn.Parameter(A), nn.Parameter(B)

    def build(self, base: nn.Linear, name: str,
              shared: tuple[nn.Parameter, nn.Parameter]) -> LoTRLinear:
        A, B = shared
        return LoTRLinear(base, A, B, self.scaling)


class LoTRLinear(AdapterLayer):
    """``y = base(x) + s·((x Aᵀ) Gᵀ) Bᵀ`` with ``lotr_A``, ``lotr_B`` shared parameters and
    ``lotr_G`` (r×r, identity at init) its own.

    Parameters
    ----------
    base : torch.nn.Linear
        The frozen layer.
    A, B : torch.nn.Parameter
        The shared factors, r×d_in and d_out×r (the same objects in every layer).
    scaling : float
        ``s``.
    """

    def __init__(self, base: nn.Linear, A: nn.Parameter, B: nn.Parameter,
                 scaling: float) -> None:
        super().__init__(base)
        self.scaling = float(scaling)
        self.lotr_A, self.lotr_B = A, B
        self.lotr_G = nn.Parameter(torch.eye(A.shape[0], **self._factory()))

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        return base_out + ((x @ self.lotr_A.mT) @ (self.scaling * self.lotr_G).mT) @ self.lotr_B.mT

    def delta_weight(self) -> torch.Tensor:
        return self.scaling * (self.lotr_B.float() @ self.lotr_G.float() @ self.lotr_A.float())


@dataclass(frozen=True)
class NoRAConfig(ScaledConfig):
    """NoRA (our reading of the abstract): the outer factors ``B₀ = U_r√S_r``,
    ``A₀ = √S_r V_rᵀ`` come from the top-``r`` SVD of ``W`` and stay frozen; an inner LoRA of
    rank ``inner_rank`` acts between them, ``ΔW = s·B₀ (b a) A₀`` with ``a`` Kaiming-uniform
    and ``b = 0``, ``s = α/r_inner``. The base weight is unchanged. Trainable:
    ``2 r r_inner`` per layer.

    Attributes
    ----------
    rank : int
        ``r`` of the outer factors; at most ``min(d_out, d_in)`` of each target.
    inner_rank : int
        ``r_inner``, at most ``rank``.
    alpha : float, optional
        ``α`` (``None``: ``α = r_inner``).
    seed : int, numpy.random.Generator, torch.Generator or None
        Randomness of ``a``'s initialisation.
    """

    rank: int = 16
    inner_rank: int = 4
    alpha: float | None = None
    seed: Any = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_rank(self.inner_rank, "inner_rank", self.rank, what="rank")

    @property
    def scaling(self) -> float:
        """``α/r_inner``."""
        return scaling_factor(self.inner_rank, self.alpha)

    def builders(self) -> dict[type[AdapterLayer], Builder]:
        return {NoRALinear: self.build}

    def prepare(self, targets: Mapping[str, nn.Module]) -> torch.Generator:
        return torch_generator(self.seed)

    def build(self, base: nn.Linear, name: str, gen: torch.Generator) -> NoRALinear:
        d_out, d_in = base.weight.shape
        r = check_rank(self.rank, "rank", min(d_in, d_out), what=f"min(d_out, d_in) of {name}")
        A0, B0, _ = pissa_factors(base.weight.detach().float(), r, 1.0)
        a = kaiming_uniform((self.inner_rank, r), gen)
        return NoRALinear(base, A0, B0, a, self.scaling)


class NoRALinear(AdapterLayer):
    """``y = base(x) + s·(((x A₀ᵀ) aᵀ) bᵀ) B₀ᵀ`` with trainable ``inner_a`` (r_inner×r) and
    ``inner_b`` (r×r_inner, zero at init).

    Parameters
    ----------
    base : torch.nn.Linear
        The frozen layer.
    A0, B0 : torch.Tensor
        The frozen outer factors, r×d_in and d_out×r.
    a : torch.Tensor
        The initial ``inner_a``.
    scaling : float
        ``s``.
    """

    outer_A: torch.Tensor
    outer_B: torch.Tensor

    def __init__(self, base: nn.Linear, A0: torch.Tensor, B0: torch.Tensor, a: torch.Tensor,
                 scaling: float) -> None:
        super().__init__(base)
        f = self._factory()
        self.scaling = float(scaling)
        self.register_buffer("outer_A", A0.to(**f).contiguous(), persistent=False)
        self.register_buffer("outer_B", B0.to(**f).contiguous(), persistent=False)
        self.inner_a = nn.Parameter(a.to(**f))
        self.inner_b = nn.Parameter(torch.zeros(A0.shape[0], a.shape[0], **f))

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        h = (x @ self.outer_A.mT) @ self.inner_a.mT
        return base_out + ((h * self.scaling) @ self.inner_b.mT) @ self.outer_B.mT

    def delta_weight(self) -> torch.Tensor:
        inner = self.inner_b.float() @ self.inner_a.float()
        return self.scaling * (self.outer_B.float() @ inner @ self.outer_A.float())


@dataclass(frozen=True)
class BlockLoRAConfig(ScaledConfig):
    """Block-LoRA (our reading of the abstract of Zhou et al., "One Head Eight Arms"): LoRA's
    down-projection ``A`` (r×d_in) is cut into ``n_blocks`` column blocks ``A = [A₁ … A_n]``
    and all of them are tied to one trainable block ``A₀`` (r×(d_in/n)), so

        ΔW = s·B [A₀ A₀ … A₀],   ΔW x = s·B A₀ (x₁ + x₂ + … + x_n)

    with ``x = (x₁, …, x_n)`` the input cut into the same blocks: the ``n`` products with the
    blocks of ``A`` become ``n − 1`` vector additions and one product with ``A₀``. ``B``
    (d_out×r) is zero at init (output unchanged at step 0), ``A₀`` Kaiming-uniform with fan-in
    ``d_in/n``; ``s = α/r``. Trainable: ``r(d_in/n + d_out)`` per layer; ``rank(ΔW) ≤ r`` as
    for LoRA. (The paper's own partition may differ in detail — its method section was not
    available to us; the abstract fixes only "partition LoRA's factors into sub-matrices and
    share all down-projection blocks".)

    Attributes
    ----------
    rank : int
        ``r``; at most ``min(d_out, d_in/n_blocks)`` of each target.
    n_blocks : int
        ``n``; must divide every target's ``d_in``.
    alpha : float, optional
        As in :class:`~refimpl.lora.LoRAConfig`.
    seed : int, numpy.random.Generator, torch.Generator or None
        Randomness of ``A₀``'s initialisation.
    """

    rank: int = 8
    n_blocks: int = 2
    alpha: float | None = None
    seed: Any = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int(self.n_blocks, "n_blocks")

    def builders(self) -> dict[type[AdapterLayer], Builder]:
        return {BlockLoRALinear: self.build}

    def prepare(self, targets: Mapping[str, nn.Linear],  # type: ignore[override]  # Linear only
                ) -> torch.Generator:
        for name, m in targets.items():
            check_divides(self.n_blocks, "n_blocks", m.in_features, f"d_in of {name}")
        return torch_generator(self.seed)

    def build(self, base: nn.Linear, name: str, gen: torch.Generator) -> BlockLoRALinear:
        d_out, d_in = base.weight.shape
        block = d_in // self.n_blocks
        r = check_rank(self.rank, "rank", min(block, d_out),
                       what=f"min(d_out, d_in/n_blocks) of {name}")
        A0 = kaiming_uniform((r, block), gen)
        return BlockLoRALinear(base, A0, self.n_blocks, self.scaling)


class BlockLoRALinear(AdapterLayer):
    """``y = base(x) + s·(A₀ Σᵢ xᵢ)ᵀ Bᵀ`` with trainable ``block_A`` (r×d_in/n) and ``block_B``
    (d_out×r, zero at init).

    Parameters
    ----------
    base : torch.nn.Linear
        The frozen layer.
    A0 : torch.Tensor
        The initial shared block, r×(d_in/n_blocks).
    n_blocks : int
        ``n``.
    scaling : float
        ``s``.
    """

    def __init__(self, base: nn.Linear, A0: torch.Tensor, n_blocks: int,
                 scaling: float) -> None:
        super().__init__(base)
        f = self._factory()
        self.n_blocks, self.scaling = int(n_blocks), float(scaling)
        self.block_A = nn.Parameter(A0.to(**f))
        self.block_B = nn.Parameter(torch.zeros(self.out_features, A0.shape[0], **f))

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        folded = x.unflatten(-1, (self.n_blocks, -1)).sum(-2)  # x₁ + … + x_n
        return base_out + ((folded @ self.block_A.mT) * self.scaling) @ self.block_B.mT

    def delta_weight(self) -> torch.Tensor:
        A = self.block_A.float().repeat(1, self.n_blocks)  # [A₀ A₀ … A₀]
        return self.scaling * (self.block_B.float() @ A)

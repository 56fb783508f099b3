"""VeRA: frozen random projections shared by all layers, trainable scaling vectors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from refimpl._validation import check_positive_int, check_rank
from refimpl.lora._core import AdapterConfig, AdapterLayer, Builder, kaiming_uniform
from refimpl.seeding import torch_generator

__all__ = ["VeRAConfig", "VeRALinear"]


@dataclass(frozen=True)
class VeRAConfig(AdapterConfig):
    """VeRA ``h = W₀x + Λ_b B Λ_d A x``.

    ``A`` (r×max d_in) and ``B`` (max d_out×r) are drawn once from ``seed`` (Kaiming-uniform)
    and shared by all wrapped layers, each taking the leading slice ``A[:, :d_in]``,
    ``B[:d_out]``; ``d`` (r, init ``d_initial``) and ``b`` (d_out, init 0) are trained:
    ``r + d_out`` per layer. The shared matrices are not saved by
    :func:`refimpl.lora.save_adapter`: they are regenerated from ``seed``.

    Attributes
    ----------
    rank : int
        ``r``; at most ``min(d_out, d_in)`` of each target.
    d_initial : float
        Initial value of every entry of ``d``.
    seed : int, numpy.random.Generator, torch.Generator or None
        Randomness of the shared ``A`` and ``B``.
    """

    rank: int = 256
    d_initial: float = 0.1
    seed: Any = 0

    def __post_init__(self) -> None:
        check_positive_int(self.rank, "rank")

    def builders(self) -> dict[type[AdapterLayer], Builder]:
        return {VeRALinear: self.build}

    def prepare(self, targets: Mapping[str, nn.Linear],  # type: ignore[override]  # Linear only
                ) -> tuple[torch.Tensor, torch.Tensor]:
        max_in = max(m.in_features for m in targets.values())
        max_out = max(m.out_features for m in targets.values())
        for name, m in targets.items():
            check_rank(self.rank, "rank", min(m.in_features, m.out_features),
                       what=f"min(d_out, d_in) of {name}")
        g = torch_generator(self.seed)
        A = kaiming_uniform((self.rank, max_in), g)
        B = kaiming_uniform((max_out, self.rank), g)
        return A, B

    def build(self, base: nn.Linear, name: str,
              shared: tuple[torch.Tensor, torch.Tensor]) -> VeRALinear:
        A, B = shared
        d_out, d_in = base.weight.shape
        return VeRALinear(base, A[:, :d_in], B[:d_out], self.d_initial)


class VeRALinear(AdapterLayer):
    """``y = base(x) + b ⊙ ((d ⊙ (x Aᵀ)) Bᵀ)`` with trainable ``vera_d`` (r) and ``vera_b``
    (d_out, zero at init).

    Parameters
    ----------
    base : torch.nn.Linear
        The frozen layer.
    A, B : torch.Tensor
        The frozen projections, r×d_in and d_out×r.
    d_initial : float
        Initial value of every entry of ``vera_d``.
    """

    vera_A: torch.Tensor
    vera_B: torch.Tensor

    def __init__(self, base: nn.Linear, A: torch.Tensor, B: torch.Tensor,
                 d_initial: float = 0.1) -> None:
        super().__init__(base)
        f = self._factory()
        self.rank = A.shape[0]
        self.register_buffer("vera_A", A.to(**f), persistent=False)
        self.register_buffer("vera_B", B.to(**f), persistent=False)
        self.vera_d = nn.Parameter(torch.full((self.rank,), float(d_initial), **f))
        self.vera_b = nn.Parameter(torch.zeros(self.out_features, **f))

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        return base_out + self.vera_b * ((self.vera_d * (x @ self.vera_A.mT)) @ self.vera_B.mT)

    def delta_weight(self) -> torch.Tensor:
        return (self.vera_b.float()[:, None] * self.vera_B.float()) @ \
            (self.vera_d.float()[:, None] * self.vera_A.float())

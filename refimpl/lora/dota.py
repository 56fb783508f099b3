"""DoTA (tier B): a matrix-product-operator (tensor-train) adapter initialised from the
pretrained weight.

The weight ``W`` (d_out×d_in with ``d_out = o₁⋯o_n``, ``d_in = i₁⋯i_n``) is written as a chain
of MPO cores by :func:`refimpl.tensor.mpo_decompose` (TT-SVD with bond dimension at most
``bond``). DoTA (Hu et al.) initialises trainable cores with the MPO of the pretrained weight
and freezes the residual ``W_res = W − MPO(W)``, so that the output is unchanged at step 0
(PiSSA's idea with a tensor-train adapter). The forward pass contracts the cores with the input
one mode at a time and never forms the dense update. The mode split
(:func:`refimpl.tensor.mpo_modes`, balanced prime factors) and the absence of a scale factor are
our choices; QDoTA (the 4-bit variant) is not implemented.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from refimpl._validation import check_positive_int
from refimpl.lora._core import AdapterConfig, AdapterLayer, Builder
from refimpl.tensor import MPO, mpo_decompose, mpo_modes

__all__ = ["DoTAConfig", "DoTALinear"]


def _mpo_apply(cores, x):
    """``x @ MPO(cores)ᵀ`` for ``x`` (N×d_in), one core at a time."""
    N = x.shape[0]
    t = x.reshape(N, 1, 1, -1)  # (N, O so far, χ, I remaining)
    for c in cores:
        chi, o, i, chi2 = c.shape
        t = t.reshape(N, t.shape[1], chi, i, -1)
        t = torch.einsum("nOaiR,aoib->nOobR", t, c)
        t = t.reshape(N, t.shape[1] * o, chi2, -1)
    return t.reshape(N, -1)


@dataclass(frozen=True)
class DoTAConfig(AdapterConfig):
    """DoTA: trainable MPO cores initialised from the MPO of the pretrained weight, residual
    ``W − MPO(W)`` frozen (output unchanged at step 0). Modes from
    :func:`refimpl.tensor.mpo_modes`. Trainable per layer: ``Σ_k χ_{k−1} o_k i_k χ_k``.

    Attributes
    ----------
    n_cores : int
        ``n``, the number of cores (modes of ``d_out`` and of ``d_in``).
    bond : int
        The largest bond dimension ``χ_k``.
    """

    n_cores: int = 3
    bond: int = 8

    def __post_init__(self) -> None:
        check_positive_int(self.n_cores, "n_cores")
        check_positive_int(self.bond, "bond")

    def builders(self) -> dict[type[AdapterLayer], Builder]:
        return {DoTALinear: self.build}

    def build(self, base: nn.Linear, name: str, state: None) -> DoTALinear:
        d_out, d_in = base.weight.shape
        mpo = mpo_decompose(base.weight.detach(), mpo_modes(d_out, self.n_cores),
                            mpo_modes(d_in, self.n_cores), self.bond)
        return DoTALinear(base, mpo.cores)


class DoTALinear(AdapterLayer):
    """``y = base(x) + MPO(cores) x`` with trainable ``dota_cores`` (a ParameterList), the base
    weight holding the residual ``W − MPO(cores)``.

    Parameters
    ----------
    base : torch.nn.Linear
        The frozen layer.
    cores : sequence of torch.Tensor
        The initial MPO cores (:attr:`refimpl.tensor.MPO.cores`) of a d_out×d_in matrix.
    """

    def __init__(self, base: nn.Linear, cores: Sequence[torch.Tensor]) -> None:
        super().__init__(base)
        f = self._factory()
        self.dota_cores = nn.ParameterList([nn.Parameter(c.to(**f).contiguous()) for c in cores])
        self._subtract_from_base(self.delta_weight())

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        y = _mpo_apply(list(self.dota_cores), x.reshape(-1, self.in_features))
        return base_out + y.view(base_out.shape)

    def delta_weight(self) -> torch.Tensor:
        # tensor cores reconstruct to a tensor
        return MPO(tuple(c.float() for c in self.dota_cores)).reconstruct()  # type: ignore[return-value]

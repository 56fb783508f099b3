"""SoKA (tier B): a sum of Kronecker products initialised from the Kronecker-product SVD of the
weight (:func:`refimpl.tensor.kron_svd`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from refimpl._validation import check_positive_int, check_rank
from refimpl.lora._core import AdapterLayer, Builder, EnergyRankConfig, energy_rank
from refimpl.tensor import kron_shape, kron_sum, kron_svd

__all__ = ["SoKAConfig", "SoKALinear"]


@dataclass(frozen=True)
class SoKAConfig(EnergyRankConfig):
    """SoKA (our reading of the abstract): ``W = W_res + Σ_{k≤K} A_k ⊗ B_k`` from the
    Kronecker-product SVD of ``W`` (:func:`refimpl.tensor.kron_svd`, factor shapes from
    :func:`refimpl.tensor.kron_shape`), the ``K`` terms trained (``A_k = √σ_k·U_k``,
    ``B_k = √σ_k·V_k``) and the residual frozen, so the output is unchanged at step 0.
    Trainable ``K(m1·n1 + m2·n2)`` per layer.

    Attributes
    ----------
    rank : int, optional
        ``K``; at most the Kronecker rank ``min(m1·n1, m2·n2)`` of each target. ``None``: the
        smallest number of terms holding ``energy`` of ``‖W‖_F²``, capped at ``max_rank``.
    energy : float
        The energy fraction in (0, 1] used when ``rank`` is ``None``.
    max_rank : int
        The cap on the energy-chosen ``K``.
    """

    rank: int | None = None
    energy: float = 0.5
    max_rank: int = 16

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int(self.max_rank, "max_rank")

    def builders(self) -> dict[type[AdapterLayer], Builder]:
        return {SoKALinear: self.build}

    def build(self, base: nn.Linear, name: str, state: None) -> SoKALinear:
        W = base.weight.detach().float()
        m1, _ = kron_shape(W.shape[0])
        n1, _ = kron_shape(W.shape[1])
        full = kron_svd(W, m1, n1)
        K = min(energy_rank(full.s, self.energy), self.max_rank, full.s.numel()) \
            if self.rank is None else check_rank(self.rank, "rank", full.s.numel(),
                                                 what=f"Kronecker rank of {name}")
        root = full.s[:K].sqrt()
        return SoKALinear(base, root[:, None, None] * full.A[:K], root[:, None, None] * full.B[:K])


class SoKALinear(AdapterLayer):
    """``y = base(x) + Σ_k vec(A_k X B_kᵀ)`` with ``X`` the input reshaped to n1×n2; the
    Kronecker products are never formed. Trainable ``kron_A`` (K, m1, n1), ``kron_B``
    (K, m2, n2); the base weight holds the residual ``W − Σ_k A_k ⊗ B_k``.

    Parameters
    ----------
    base : torch.nn.Linear
        The frozen layer, (m1·m2)×(n1·n2).
    A, B : torch.Tensor
        The initial terms, (K, m1, n1) and (K, m2, n2).
    """

    def __init__(self, base: nn.Linear, A: torch.Tensor, B: torch.Tensor) -> None:
        super().__init__(base)
        f = self._factory()
        self.kron_A = nn.Parameter(A.to(**f).contiguous())
        self.kron_B = nn.Parameter(B.to(**f).contiguous())
        self._subtract_from_base(self.delta_weight())

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        X = x.reshape(-1, self.kron_A.shape[2], self.kron_B.shape[2])
        Y = torch.einsum("kij,njb,kab->nia", self.kron_A, X, self.kron_B)
        return base_out + Y.reshape(base_out.shape)

    def delta_weight(self) -> torch.Tensor:
        return kron_sum(self.kron_A.float(), self.kron_B.float())

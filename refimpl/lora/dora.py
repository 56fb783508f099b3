"""DoRA (weight-decomposed LoRA) with the factored column norm of "Scaling DoRA", and EDoRA."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from refimpl._validation import check_choice, check_rank
from refimpl.lora._core import AdapterLayer, Builder, ScaledConfig, kaiming_uniform
from refimpl.lora.factors import pissa_factors
from refimpl.seeding import torch_generator

__all__ = [
    "DoRAConfig",
    "DoRALinear",
    "EDoRAConfig",
    "EDoRALinear",
    "dora_norm_dense",
    "dora_norm_factored",
]


def _acc(W):
    """Accumulation dtype of the norms: fp64 for fp64 weights, fp32 otherwise."""
    return torch.float64 if W.dtype == torch.float64 else torch.float32


def dora_norm_dense(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                    s: float) -> torch.Tensor:
    """Row norms ``‖W + s B A‖`` per output feature, forming ``BA`` (the reference).

    Parameters
    ----------
    W : torch.Tensor
        d_out×d_in.
    A, B : torch.Tensor
        r×d_in and d_out×r.
    s : float
        The scaling.

    Returns
    -------
    torch.Tensor
        d_out norms, in fp32 (fp64 for an fp64 ``W``).
    """
    acc = _acc(W)
    return torch.linalg.vector_norm(W.to(acc) + s * (B.to(acc) @ A.to(acc)), dim=1)


def dora_norm_factored(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, s: float, *,
                       w_sq: torch.Tensor | None = None) -> torch.Tensor:
    """Row norms of ``W + s B A`` without forming ``BA`` (d_out×d_in).

    ``‖wᵢ + s bᵢA‖² = ‖wᵢ‖² + 2s bᵢ·(A wᵢᵀ) + s² bᵢ (AAᵀ) bᵢᵀ``, vectorised as
    ``rowsum(W⊙W) + 2s·rowsum((W Aᵀ)⊙B) + s²·rowsum((B(AAᵀ))⊙B)``; the transients are
    d_out×r and r×r (plus, for a low-precision ``W``, an fp32 copy of at most 2²⁰ of its
    entries at a time). Accumulates in fp32 (fp64 for fp64 input) and clamps at 0 before the
    square root.

    Parameters
    ----------
    W, A, B, s
        As in :func:`dora_norm_dense`.
    w_sq : torch.Tensor, optional
        ``rowsum(W⊙W)`` in the accumulation precision, if cached (the base is frozen).

    Returns
    -------
    torch.Tensor
        d_out norms, in fp32 (fp64 for an fp64 ``W``).
    """
    acc = _acc(W)
    Af, Bf = A.to(acc), B.to(acc)
    if w_sq is None:
        w_sq = torch.linalg.vector_norm(W, dim=1, dtype=acc).square()
    if W.dtype == acc:
        WA = W @ Af.mT
    else:  # low-precision base: upcast a block of rows at a time, never all of W
        step = max(1, 2**20 // W.shape[1])
        WA = torch.cat([W[i:i + step].to(acc) @ Af.mT for i in range(0, W.shape[0], step)])
    cross = (WA * Bf).sum(1)
    quad = ((Bf @ (Af @ Af.mT)) * Bf).sum(1)
    return (w_sq + (2 * s) * cross + (s * s) * quad).clamp_min(0).sqrt()


@dataclass(frozen=True)
class DoRAConfig(ScaledConfig):
    """DoRA ``W' = m ⊙ (W₀ + sBA)/‖W₀ + sBA‖`` (norm per output feature, detached in the
    backward pass), ``m`` initialised to ``‖W₀‖``; A Kaiming-uniform, B = 0 as in LoRA.

    Attributes
    ----------
    rank, alpha, rslora
        As in :class:`~refimpl.lora.LoRAConfig`.
    norm : {"factored", "dense"}
        ``"factored"`` never forms ``BA`` (:func:`dora_norm_factored`); ``"dense"`` does
        (:func:`dora_norm_dense`, the reference).
    seed : int, numpy.random.Generator, torch.Generator or None
        Randomness of A's initialisation.
    """

    rank: int = 8
    alpha: float | None = None
    rslora: bool = False
    norm: str = "factored"
    seed: Any = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self.norm, "norm", ("factored", "dense"))

    def builders(self) -> dict[type[AdapterLayer], Builder]:
        return {DoRALinear: self.build}

    def prepare(self, targets: Mapping[str, nn.Module]) -> torch.Generator:
        return torch_generator(self.seed)

    def build(self, base: nn.Linear, name: str, gen: torch.Generator) -> DoRALinear:
        d_out, d_in = base.weight.shape
        r = check_rank(self.rank, "rank", min(d_in, d_out), what=f"min(d_out, d_in) of {name}")
        layer = DoRALinear(base, r, self.scaling, norm=self.norm)
        layer.set_factors(kaiming_uniform((r, d_in), gen), torch.zeros(d_out, r))
        return layer


class DoRALinear(AdapterLayer):
    """DoRA layer: ``y = (m/n)⊙(W x + s B(Ax)) + bias`` with ``n = ‖W + sBA‖`` detached.

    Computed as ``base(x) + ((m − n)/n)⊙(Wx) + (m/n)⊙s B(Ax)``, so that the correction is
    formed directly (no cancellation in ``m/n − 1`` when ``m ≈ n``). Trainable: ``lora_A``,
    ``lora_B``, ``magnitude`` (d_out; stored in fp32, fp64 for fp64 bases, so that the
    output is exactly unchanged at step 0 for low-precision bases too — wrap after casting the
    model, since ``module.to(dtype)`` casts the magnitude as well).

    Parameters
    ----------
    base, rank, scaling
        As in :class:`~refimpl.lora.LoRALinear`.
    norm : {"factored", "dense"}
        How the norm ``‖W + sBA‖`` is computed.
    """

    base: nn.Linear

    def __init__(self, base: nn.Linear, rank: int, scaling: float, *,
                 norm: str = "factored") -> None:
        super().__init__(base)
        f = self._factory()
        self.rank, self.scaling, self.norm = rank, float(scaling), norm
        self.lora_A = nn.Parameter(torch.zeros(rank, self.in_features, **f))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank, **f))
        # kept in the accumulation precision so that m = ‖W‖ holds exactly at step 0
        self.magnitude = nn.Parameter(torch.zeros(self.out_features, device=f["device"],
                                                  dtype=_acc(base.weight)))
        self._w_sq: torch.Tensor | None = None
        self._merged_norm: torch.Tensor | None = None

    @torch.no_grad()
    def set_factors(self, A: torch.Tensor, B: torch.Tensor, *,
                    magnitude: torch.Tensor | None = None) -> None:
        """Set ``lora_A``, ``lora_B`` and ``magnitude`` (default: the norm ``‖W + sBA‖`` of
        the new factors)."""
        self.lora_A.copy_(A)
        self.lora_B.copy_(B)
        self._w_sq = None
        self.magnitude.copy_(self.weight_norm() if magnitude is None else magnitude)

    def weight_norm(self) -> torch.Tensor:
        """``‖W + sBA‖`` per output feature (fp32, fp64 for an fp64 base), detached."""
        W = self.base.weight.detach()
        A, B = self.lora_A.detach(), self.lora_B.detach()
        if self.norm == "dense":
            return dora_norm_dense(W, A, B, self.scaling)
        if self._w_sq is None or self._w_sq.device != W.device:
            self._w_sq = torch.linalg.vector_norm(W, dim=1, dtype=_acc(W)).square()
        return dora_norm_factored(W, A, B, self.scaling, w_sq=self._w_sq)

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        n = self.weight_norm()
        m = self.magnitude.to(n.dtype)
        corr = ((m - n) / n).to(x.dtype)
        g = (m / n).to(x.dtype)
        bias = self.base.bias
        wx = base_out if bias is None else base_out - bias
        lora = (x @ self.lora_A.mT * self.scaling) @ self.lora_B.mT
        return base_out + corr * wx + g * lora

    def delta_weight(self) -> torch.Tensor:
        return self.delta_merge(self.base.weight.float()) - self.base.weight.float()

    def delta_merge(self, W: torch.Tensor) -> torch.Tensor:
        Wf = W.float() + self.scaling * (self.lora_B.float() @ self.lora_A.float())
        n = torch.linalg.vector_norm(Wf, dim=1)
        self._merged_norm = n
        return ((self.magnitude.float() / n)[:, None] * Wf).to(W.dtype)

    def delta_unmerge(self, W: torch.Tensor) -> torch.Tensor:
        # unmerge follows merge, whose delta_merge set the norm
        Wf = W.float() * (self._merged_norm / self.magnitude.float())[:, None]  # type: ignore[arg-type, operator]
        return (Wf - self.scaling * (self.lora_B.float() @ self.lora_A.float())).to(W.dtype)

    def merge(self, *, safe: bool = True) -> None:
        super().merge(safe=safe)
        self._w_sq = None

    def unmerge(self) -> None:
        super().unmerge()
        self._w_sq = None


@dataclass(frozen=True)
class EDoRAConfig(ScaledConfig):
    """EDoRA: DoRA whose direction update is ``s·B R A`` with ``B``, ``A`` frozen from the
    top-``r`` SVD of ``W`` (PiSSA-style, ``A = √(S_r/s) V_rᵀ``, ``B = U_r √(S_r/s)``) and only
    the r×r core ``R`` (zero at init, so nothing moves at step 0) and the magnitude ``m``
    trained: ``r² + d_out`` per layer. The base weight is not changed.

    Attributes
    ----------
    rank : int
        ``r``, the size of the frozen factors and of the core ``R``; at most
        ``min(d_out, d_in)`` of each target.
    alpha : float, optional
        ``α`` (``None``: ``α = r``); ``s = α/r``.
    """

    rank: int = 8
    alpha: float | None = None

    def builders(self) -> dict[type[AdapterLayer], Builder]:
        return {EDoRALinear: self.build}

    def build(self, base: nn.Linear, name: str, state: None) -> EDoRALinear:
        d_out, d_in = base.weight.shape
        r = check_rank(self.rank, "rank", min(d_in, d_out), what=f"min(d_out, d_in) of {name}")
        A, B, _ = pissa_factors(base.weight.detach().float(), r, self.scaling)
        return EDoRALinear(base, A, B, self.scaling)


class EDoRALinear(AdapterLayer):
    """``y = (m/n)⊙(W x + s B(R(Ax))) + bias``, ``n = ‖W + s B R A‖`` (factored, detached),
    with trainable ``core`` (R, r×r, zero at init) and ``magnitude`` (m, init ``‖W‖``).

    Parameters
    ----------
    base : torch.nn.Linear
        The frozen layer.
    A, B : torch.Tensor
        ``frozen_A`` (r×d_in) and ``frozen_B`` (d_out×r), e.g. from :func:`pissa_factors`.
    scaling : float
        ``s`` of the update ``s·B R A``.
    """

    base: nn.Linear
    frozen_A: torch.Tensor
    frozen_B: torch.Tensor

    def __init__(self, base: nn.Linear, A: torch.Tensor, B: torch.Tensor,
                 scaling: float) -> None:
        super().__init__(base)
        f = self._factory()
        self.scaling = float(scaling)
        self.rank = A.shape[0]
        self.register_buffer("frozen_A", A.to(**f).contiguous())
        self.register_buffer("frozen_B", B.to(**f).contiguous())
        self.core = nn.Parameter(torch.zeros(self.rank, self.rank, **f))
        W = base.weight.detach()
        self._w_sq = torch.linalg.vector_norm(W, dim=1, dtype=_acc(W)).square()
        self.magnitude = nn.Parameter(self._w_sq.sqrt())
        self._merged_norm: torch.Tensor | None = None

    def weight_norm(self) -> torch.Tensor:
        """``‖W + sBRA‖`` per output feature, detached."""
        W = self.base.weight.detach()
        RA = self.core.detach().float() @ self.frozen_A.float()
        return dora_norm_factored(W, RA, self.frozen_B, self.scaling, w_sq=self._w_sq)

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        n = self.weight_norm()
        m = self.magnitude.to(n.dtype)
        bias = self.base.bias
        wx = base_out if bias is None else base_out - bias
        lora = ((x @ self.frozen_A.mT) @ (self.scaling * self.core).mT) @ self.frozen_B.mT
        return base_out + ((m - n) / n).to(x.dtype) * wx + (m / n).to(x.dtype) * lora

    def _dense(self):
        return self.scaling * (self.frozen_B.float() @ self.core.float() @ self.frozen_A.float())

    def delta_weight(self) -> torch.Tensor:
        return self.delta_merge(self.base.weight.float()) - self.base.weight.float()

    def delta_merge(self, W: torch.Tensor) -> torch.Tensor:
        Wf = W.float() + self._dense()
        n = torch.linalg.vector_norm(Wf, dim=1)
        self._merged_norm = n
        return ((self.magnitude.float() / n)[:, None] * Wf).to(W.dtype)

    def delta_unmerge(self, W: torch.Tensor) -> torch.Tensor:
        # unmerge follows merge, whose delta_merge set the norm
        Wf = W.float() * (self._merged_norm / self.magnitude.float())[:, None]  # type: ignore[arg-type, operator]
        return (Wf - self._dense()).to(W.dtype)

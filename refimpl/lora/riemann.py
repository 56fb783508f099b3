"""RiemannLoRA (tier B): the update lives on the manifold of rank-r matrices and is trained
with Riemannian gradient steps, which removes the ``B → BG, A → G⁻¹A`` ambiguity of LoRA's
factored form. The optimizer is :class:`refimpl.optim.RiemannianSGD`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from refimpl import _xp
from refimpl._validation import check_positive_int, check_rank
from refimpl.lora._core import AdapterConfig, AdapterLayer, Builder

__all__ = ["RiemannLoRAConfig", "RiemannLoRALinear"]


@dataclass(frozen=True)
class RiemannLoRAConfig(AdapterConfig):
    """RiemannLoRA: ``ΔW = U S Vᵀ`` on the manifold of rank-``r`` matrices (``U``, ``V``
    orthonormal, ``S`` r×r), trained with :class:`refimpl.optim.RiemannianSGD`. The starting
    point is the top-``r`` SVD part of ``W`` with the residual frozen (so the output is
    unchanged at step 0; the paper's gradient-based starting point is not implemented). The
    trainable tensors are the tangent coordinates ``(Ṡ, U_p, V_p)``, ``r² + r(d_in + d_out)``
    numbers per layer, which are zero after every step.

    Attributes
    ----------
    rank : int
        ``r``; at most ``min(d_out, d_in)`` of each target.
    """

    rank: int = 8

    def __post_init__(self) -> None:
        check_positive_int(self.rank, "rank")

    def builders(self) -> dict[type[AdapterLayer], Builder]:
        return {RiemannLoRALinear: self.build}

    def build(self, base: nn.Linear, name: str, state: None) -> RiemannLoRALinear:
        d_out, d_in = base.weight.shape
        r = check_rank(self.rank, "rank", min(d_in, d_out), what=f"min(d_out, d_in) of {name}")
        W = base.weight.detach()
        U, S, Vt = _xp.svd(W.to(torch.promote_types(W.dtype, torch.float32)))
        return RiemannLoRALinear(base, U[:, :r], torch.diag(S[:r]), Vt[:r].mT)


class RiemannLoRALinear(AdapterLayer):
    """``y = base(x) + x[V(S + T_S)ᵀUᵀ + V T_Uᵀ + T_V Uᵀ]`` with the point ``(U, S, V)`` as
    buffers and the tangent coordinates ``tangent_S``, ``tangent_U``, ``tangent_V`` as
    parameters (zero between steps). At zero tangent coordinates their gradients are
    ``UᵀGV``, ``GV`` and ``GᵀU`` for the Euclidean gradient ``G = ∂L/∂ΔW``, which is all a
    Riemannian step needs (``G`` itself is never formed). The base weight holds the residual
    ``W − U S Vᵀ``. Implements :class:`refimpl.optim.Retractable`.

    Parameters
    ----------
    base : torch.nn.Linear
        The frozen layer.
    U, S, V : torch.Tensor
        The starting point: d_out×r and d_in×r with orthonormal columns, S r×r.
    """

    extra_state_names = ("U", "S", "V")

    U: torch.Tensor
    S: torch.Tensor
    V: torch.Tensor

    def __init__(self, base: nn.Linear, U: torch.Tensor, S: torch.Tensor,
                 V: torch.Tensor) -> None:
        super().__init__(base)
        f = self._factory()
        r = U.shape[1]
        self.register_buffer("U", U.to(**f).contiguous())
        self.register_buffer("S", S.to(**f).contiguous())
        self.register_buffer("V", V.to(**f).contiguous())
        self.tangent_S = nn.Parameter(torch.zeros(r, r, **f))
        self.tangent_U = nn.Parameter(torch.zeros(self.out_features, r, **f))
        self.tangent_V = nn.Parameter(torch.zeros(self.in_features, r, **f))
        self._subtract_from_base(self.delta_weight())

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        xV = x @ self.V
        y = xV @ (self.S + self.tangent_S).mT @ self.U.mT
        return base_out + y + xV @ self.tangent_U.mT + (x @ self.tangent_V) @ self.U.mT

    def delta_weight(self) -> torch.Tensor:
        U, V = self.U, self.V
        return U @ (self.S + self.tangent_S) @ V.mT + self.tangent_U @ V.mT + U @ self.tangent_V.mT

    def tangent_parameters(self) -> tuple[nn.Parameter, ...]:
        """``(tangent_S, tangent_U, tangent_V)``."""
        return self.tangent_S, self.tangent_U, self.tangent_V

    @torch.no_grad()
    def riemannian_gradient(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tangent representation ``(Ṡ, U_p, V_p)`` of the projected gradient
        ``P_T(G) = U Ṡ Vᵀ + U_p Vᵀ + U V_pᵀ`` with ``U_pᵀU = 0``, ``V_pᵀV = 0``.

        Returns
        -------
        (Sdot, U_p, V_p) : tuple of torch.Tensor
            ``Ṡ`` (r×r), ``U_p`` (d_out×r) and ``V_p`` (d_in×r).

        Raises
        ------
        RuntimeError
            If the tangent coordinates have no gradient yet.
        """
        GV, GtU = self.tangent_U.grad, self.tangent_V.grad
        if GV is None or GtU is None:
            raise RuntimeError("no gradient: run backward first")
        Sdot = self.U.mT @ GV
        return Sdot, GV - self.U @ Sdot, GtU - self.V @ (self.V.mT @ GtU)

    @torch.no_grad()
    def retract_(self, lr: float) -> None:
        """Move to the rank-``r`` truncated SVD of ``USVᵀ − lr·P_T(G)`` (computed through a
        2r×2r core) and reset the tangent coordinates."""
        Sdot, Up, Vp = self.riemannian_gradient()
        r = self.S.shape[0]
        Qu, Ru = _xp.qr(Up)
        Qv, Rv = _xp.qr(Vp)
        core = torch.zeros(2 * r, 2 * r, dtype=self.S.dtype, device=self.S.device)
        core[:r, :r] = self.S - lr * Sdot
        core[:r, r:] = -lr * Rv.mT
        core[r:, :r] = -lr * Ru
        Uc, sc, Vtc = _xp.svd(core)
        self.U.copy_(torch.cat([self.U, Qu], 1) @ Uc[:, :r])
        self.V.copy_(torch.cat([self.V, Qv], 1) @ Vtc[:r].mT)
        self.S.copy_(torch.diag(sc[:r]))
        for p in self.tangent_parameters():
            p.zero_()
            p.grad = None

"""Riemannian gradient descent for parameters that live on a manifold.

A module takes part by implementing :class:`Retractable`: it exposes the coordinates of a
tangent vector at its current point as parameters (so that backpropagation gives their
gradients, the Euclidean gradient projected on the tangent space) and a retraction that moves
the point along the negative projected gradient and resets those coordinates.
:class:`refimpl.lora.RiemannLoRALinear` (the manifold of rank-r matrices) is one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, overload, runtime_checkable

import torch
from torch import nn

from refimpl._validation import check_positive

__all__ = ["Retractable", "RiemannianSGD"]


@runtime_checkable
class Retractable(Protocol):
    """A module whose parameters are a point on a manifold, trained through tangent
    coordinates."""

    def tangent_parameters(self) -> tuple[nn.Parameter, ...]:
        """The tangent coordinates at the current point (zero between steps)."""

    def retract_(self, lr: float) -> None:
        """Move the point by ``−lr`` times the projected gradient and reset the tangent
        coordinates and their gradients."""


class RiemannianSGD(torch.optim.Optimizer):
    """Riemannian gradient descent: each ``step()`` retracts every :class:`Retractable`
    module of ``model`` along its projected gradient with step ``lr``.

    Other trainable parameters of the model are not touched (give them their own optimizer).

    Parameters
    ----------
    model : torch.nn.Module
        A model with at least one :class:`Retractable` submodule (e.g. wrapped with
        :class:`refimpl.lora.RiemannLoRAConfig`).
    lr : float
        Step size, ``> 0``.

    Raises
    ------
    ValueError
        If ``lr`` is not positive or ``model`` has no :class:`Retractable` module.
    """

    def __init__(self, model: nn.Module, lr: float = 1e-2) -> None:
        lr = check_positive(lr, "lr")
        self.layers = [m for m in model.modules() if isinstance(m, Retractable)]
        if not self.layers:
            raise ValueError("model has no Retractable modules (such as "
                             "refimpl.lora.RiemannLoRALinear layers)")
        params = [p for m in self.layers for p in m.tangent_parameters()]
        super().__init__(params, {"lr": lr})

    @overload
    def step(self, closure: None = None) -> None: ...
    @overload
    def step(self, closure: Callable[[], float]) -> float: ...
    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Retract every layer with the current ``lr``; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        lr = self.param_groups[0]["lr"]
        for layer in self.layers:
            layer.retract_(lr)
        return loss

"""CURLoRA: frozen CUR columns and rows of W with inverted sampling probabilities, a
zero-initialised trainable core."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from refimpl import _xp
from refimpl._typing import ArrayT, SeedLike
from refimpl._validation import check_positive, check_positive_int, check_rank
from refimpl.lora._core import AdapterConfig, AdapterLayer, Builder
from refimpl.seeding import as_generator

__all__ = ["CURLoRAConfig", "CURLoRALinear", "curlora_indices"]


def curlora_indices(W: ArrayT, rank: int, *, eps: float = 1e-12,
                    seed: SeedLike = None) -> tuple[ArrayT, ArrayT]:
    """Row and column indices for CURLoRA.

    Probabilities proportional to the squared row / column norms, inverted
    (``p̃ ∝ 1/(p + eps)``) so that low-energy directions are preferred, and ``rank`` distinct
    indices drawn from them (the authors' code samples with replacement and keeps duplicates,
    which wastes rank; here every index is distinct).

    Parameters
    ----------
    W : array or torch.Tensor
        The weight, d_out×d_in.
    rank : int
        ``c``, the number of rows and of columns, ``1 <= c <= min(d_out, d_in)``.
    eps : float
        Added to the probabilities before inverting them, ``> 0``.
    seed : int, numpy.random.Generator or None
        Randomness of the draw.

    Returns
    -------
    rows, cols : integer array or tensor
        ``rank`` sorted distinct indices each, as the caller's kind (torch: on ``W``'s
        device).

    Raises
    ------
    ValueError
        If ``rank`` is out of range.
    """
    W, _, back = _xp.prepare(W, "W", paths=("numpy",))
    rank = check_rank(rank, "rank", min(W.shape))
    eps = check_positive(eps, "eps")
    rng = as_generator(seed)
    W2 = W.astype(np.float64) ** 2
    picks = []
    for energy in (W2.sum(1), W2.sum(0)):
        p = energy / energy.sum()
        q = 1.0 / (p + eps)
        picks.append(np.sort(rng.choice(p.size, size=rank, replace=False, p=q / q.sum())))
    return back((picks[0], picks[1]))


@dataclass(frozen=True)
class CURLoRAConfig(AdapterConfig):
    """CURLoRA ``h = W x + α·C U R x`` computed as ``((x Rᵀ) Uᵀ) Cᵀ``: ``C = W[:, J]``,
    ``R = W[I, :]`` frozen (from :func:`curlora_indices`), ``U`` (c×c) zero at init and the
    only trainable part (``c²`` per layer). The base weight is not changed.

    Attributes
    ----------
    rank : int
        ``c``; at most ``min(d_out, d_in)`` of each target.
    alpha : float
        The scale ``α`` of the update, ``> 0``.
    seed : int, numpy.random.Generator or None
        Randomness of the index draws.
    """

    rank: int = 8
    alpha: float = 1.0
    seed: Any = 0

    def __post_init__(self) -> None:
        check_positive_int(self.rank, "rank")
        check_positive(self.alpha, "alpha")

    def builders(self) -> dict[type[AdapterLayer], Builder]:
        return {CURLoRALinear: self.build}

    def prepare(self, targets: Mapping[str, nn.Module]) -> np.random.Generator:
        return as_generator(self.seed)

    def build(self, base: nn.Linear, name: str, rng: np.random.Generator) -> CURLoRALinear:
        W = base.weight.detach()
        c = check_rank(self.rank, "rank", min(W.shape), what=f"min(d_out, d_in) of {name}")
        rows, cols = curlora_indices(W, c, seed=rng)
        return CURLoRALinear(base, W[:, cols], W[rows],
                             self.alpha)


class CURLoRALinear(AdapterLayer):
    """``y = base(x) + α((x Rᵀ) Uᵀ) Cᵀ`` with trainable ``cur_U`` (c×c, zero at init).

    Parameters
    ----------
    base : torch.nn.Linear
        The frozen layer.
    C, R : torch.Tensor
        The frozen columns (d_out×c) and rows (c×d_in) of the weight.
    alpha : float
        The scale ``α``.
    """

    extra_state_names = ("cur_C", "cur_R")

    cur_C: torch.Tensor
    cur_R: torch.Tensor

    def __init__(self, base: nn.Linear, C: torch.Tensor, R: torch.Tensor,
                 alpha: float = 1.0) -> None:
        super().__init__(base)
        f = self._factory()
        self.alpha = float(alpha)
        self.register_buffer("cur_C", C.to(**f).contiguous())
        self.register_buffer("cur_R", R.to(**f).contiguous())
        self.cur_U = nn.Parameter(torch.zeros(R.shape[0], C.shape[1], **f))

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        return base_out + self.alpha * (((x @ self.cur_R.mT) @ self.cur_U.mT) @ self.cur_C.mT)

    def delta_weight(self) -> torch.Tensor:
        return self.alpha * (self.cur_C.float() @ self.cur_U.float() @ self.cur_R.float())

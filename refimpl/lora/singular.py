"""Adapters that train singular values or a sparse core in a frozen factorization of W:
SVFit, SVFT and QR-LoRA."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from refimpl import _xp
from refimpl._validation import check_rank
from refimpl.lora._core import AdapterLayer
from refimpl.seeding import as_generator

__all__ = [
    "QRLoRAConfig",
    "QRLoRALinear",
    "SVFTConfig",
    "SVFTLinear",
    "SVFitConfig",
    "SVFitLinear",
    "energy_rank",
    "svft_pattern",
]


def energy_rank(values, tau: float) -> int:
    """Smallest ``r`` with ``Σ_{i≤r} vᵢ² ≥ τ Σ vᵢ²`` (``values`` sorted decreasingly)."""
    if not 0 < tau <= 1:
        raise ValueError(f"the energy threshold must lie in (0, 1]; got {tau!r}")
    e = np.cumsum(np.asarray(_xp.to_numpy(values), dtype=np.float64) ** 2)
    return int(min(np.searchsorted(e, tau * e[-1] * (1 - 1e-12)) + 1, e.size))


def _check_tau(tau):
    if not isinstance(tau, float | int) or not 0 < tau <= 1:
        raise ValueError(f"energy must lie in (0, 1]; got {tau!r}")


class _EnergyRankConfig:
    """Base of the configs whose rank is given (``rank``) or chosen by an ``energy`` fraction."""

    def __post_init__(self):
        if self.rank is not None:
            check_rank(self.rank, "rank", 2**31)
        _check_tau(self.energy)

    def prepare(self, targets, covariances):
        return None


@dataclass(frozen=True)
class SVFitConfig(_EnergyRankConfig):
    """SVFit: ``W = U S Vᵀ``; the top-``r`` singular values ``σ`` are trained, the singular
    vectors frozen: ``W' = W_res + U_r diag(σ) V_rᵀ`` with ``W_res = W − U_r S_r V_rᵀ`` and
    ``σ`` initialised to ``S_r`` (output unchanged). ``r`` is given, or the smallest rank
    holding ``energy`` of ``‖W‖_F²``. Trainable ``r`` per layer."""

    rank: int | None = None
    energy: float = 0.99

    def build(self, base, name, ctx) -> SVFitLinear:
        W = base.weight.detach().float()
        U, S, Vh = _xp.svd(W)
        r = energy_rank(S, self.energy) if self.rank is None else check_rank(
            self.rank, "rank", min(W.shape), what=f"min(d_out, d_in) of {name}")
        return SVFitLinear(base, U[:, :r], S[:r], Vh[:r])


class SVFitLinear(AdapterLayer):
    """``y = base(x) + ((x V_r) ⊙ σ) U_rᵀ`` on the residual base, ``sigma`` trainable."""

    def __init__(self, base: nn.Linear, U, S, Vh):
        super().__init__(base)
        f = self._factory()
        self.register_buffer("U", U.to(**f).contiguous(), persistent=False)
        self.register_buffer("Vh", Vh.to(**f).contiguous(), persistent=False)
        self.sigma = nn.Parameter(S.to(**f).clone())
        with torch.no_grad():
            base.weight.data = (base.weight.float() - (U * S) @ Vh).to(**f)

    def adapter_forward(self, x, base_out):
        return base_out + ((x @ self.Vh.mT) * self.sigma) @ self.U.mT

    def delta_weight(self):
        return (self.U.float() * self.sigma.float()) @ self.Vh.float()


def svft_pattern(n: int, pattern: str, *, width: int = 1, k: int | None = None, U=None, Vh=None,
                 seed=None):
    """Positions ``(rows, cols)`` of SVFT's trainable entries in the n×n core.

    ``"diagonal"``: the n diagonal entries; ``"banded"``: ``|i − j| ≤ width``,
    ``n(2w+1) − w(w+1)`` entries; ``"random"``: the diagonal plus ``k`` distinct off-diagonal
    positions drawn from ``seed``; ``"topk"``: the diagonal plus the ``k`` off-diagonal
    positions with the largest ``|⟨uᵢ, vⱼ⟩|`` (square weights only, where left and right
    singular vectors live in the same space).
    """
    if pattern == "diagonal":
        i = np.arange(n)
        return i, i
    if pattern == "banded":
        if not isinstance(width, int) or width < 0:
            raise ValueError(f"width must be a non-negative integer; got {width!r}")
        i, j = np.nonzero(np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= width)
        return i, j
    if pattern not in ("random", "topk"):
        raise ValueError(f"pattern must be 'diagonal', 'banded', 'random' or 'topk'; "
                         f"got {pattern!r}")
    if k is None or not 0 <= k <= n * (n - 1):
        raise ValueError(f"k must be given, between 0 and n(n-1) = {n * (n - 1)}; got {k!r}")
    off = np.flatnonzero(~np.eye(n, dtype=bool))
    if pattern == "random":
        pick = as_generator(seed).choice(off, size=k, replace=False)
    else:
        if U is None or Vh is None or U.shape[0] != Vh.shape[1]:
            raise ValueError("pattern 'topk' needs U and Vh of a square weight")
        score = np.abs(_xp.to_numpy((U.mT @ Vh.mT).float())).ravel()[off]
        pick = off[np.argsort(-score, kind="stable")[:k]]
    i = np.concatenate([np.arange(n), pick // n])
    j = np.concatenate([np.arange(n), pick % n])
    return i, j


@dataclass(frozen=True)
class SVFTConfig:
    """SVFT: ``W = U(Σ + M)Vᵀ`` with the thin SVD frozen and the sparse core ``M`` trained
    on a fixed pattern (see :func:`svft_pattern`). ``M`` starts at zero, so the output is
    unchanged at step 0 (the authors' code adds a gated nonzero update at init; this
    implementation does not)."""

    pattern: str = "banded"
    width: int = 1
    k: int | None = None
    seed: Any = 0

    def __post_init__(self):
        if self.pattern not in ("diagonal", "banded", "random", "topk"):
            raise ValueError(f"pattern must be 'diagonal', 'banded', 'random' or 'topk'; "
                             f"got {self.pattern!r}")
        if not isinstance(self.width, int) or self.width < 0:
            raise ValueError(f"width must be a non-negative integer; got {self.width!r}")

    def prepare(self, targets, covariances):
        return {"rng": as_generator(self.seed)}

    def build(self, base, name, ctx) -> SVFTLinear:
        W = base.weight.detach().float()
        U, _, Vh = _xp.svd(W)
        n = U.shape[1]
        k = self.k
        if self.pattern in ("random", "topk") and k is None:
            k = len(svft_pattern(n, "banded", width=self.width)[0]) - n
        rows, cols = svft_pattern(n, self.pattern, width=self.width, k=k, U=U, Vh=Vh,
                                  seed=ctx["rng"])
        return SVFTLinear(base, U, Vh, rows, cols)


class SVFTLinear(AdapterLayer):
    """``y = base(x) + ((x V) Mᵀ) Uᵀ`` with ``M`` scattered from the trainable ``values``."""

    def __init__(self, base: nn.Linear, U, Vh, rows, cols):
        super().__init__(base)
        f = self._factory()
        self.n = U.shape[1]
        self.register_buffer("U", U.to(**f).contiguous(), persistent=False)
        self.register_buffer("Vh", Vh.to(**f).contiguous(), persistent=False)
        flat = torch.as_tensor(np.asarray(rows) * self.n + np.asarray(cols), dtype=torch.long)
        self.register_buffer("index", flat.to(f["device"]))
        self.values = nn.Parameter(torch.zeros(flat.numel(), **f))

    extra_state_names = ("index",)

    def core(self):
        M = self.values.new_zeros(self.n * self.n)
        return M.index_put((self.index,), self.values, accumulate=True).view(self.n, self.n)

    def adapter_forward(self, x, base_out):
        return base_out + ((x @ self.Vh.mT) @ self.core().mT) @ self.U.mT

    def delta_weight(self):
        return self.U.float() @ self.core().float() @ self.Vh.float()


@dataclass(frozen=True)
class QRLoRAConfig(_EnergyRankConfig):
    """QR-LoRA: pivoted QR ``W P = Q R`` (:func:`refimpl.linalg.cpqr`);
    ``ΔW = Σᵢ λᵢ Qᵢ (R Pᵀ)ᵢ`` over the first ``r`` columns of ``Q`` and rows of ``R Pᵀ``, only
    ``λ`` (r scalars, zero at init) trained. ``r`` is given, or the smallest rank whose
    ``|diag R|²`` reaches the fraction ``energy``."""

    rank: int | None = None
    energy: float = 0.9

    def build(self, base, name, ctx) -> QRLoRALinear:
        from refimpl.linalg import cpqr

        # the decomposition runs once per layer: use the compiled (Numba) path in float64
        W = base.weight.detach().double().cpu().numpy()
        k = None if self.rank is None else check_rank(
            self.rank, "rank", min(W.shape), what=f"min(d_out, d_in) of {name}")
        qr = cpqr(W, k)
        r = energy_rank(np.diagonal(qr.R), self.energy) if k is None else k
        RPt = np.empty_like(qr.R[:r])
        RPt[:, qr.perm] = qr.R[:r]
        return QRLoRALinear(base, torch.from_numpy(qr.Q[:, :r]), torch.from_numpy(RPt))


class QRLoRALinear(AdapterLayer):
    """``y = base(x) + ((x (RPᵀ)_rᵀ) ⊙ λ) Q_rᵀ`` with trainable ``lam`` (r)."""

    def __init__(self, base: nn.Linear, Q, RPt):
        super().__init__(base)
        f = self._factory()
        self.register_buffer("Q", Q.to(**f).contiguous(), persistent=False)
        self.register_buffer("RPt", RPt.to(**f).contiguous(), persistent=False)
        self.lam = nn.Parameter(torch.zeros(Q.shape[1], **f))

    def adapter_forward(self, x, base_out):
        return base_out + ((x @ self.RPt.mT) * self.lam) @ self.Q.mT

    def delta_weight(self):
        return (self.Q.float() * self.lam.float()) @ self.RPt.float()

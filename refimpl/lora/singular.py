"""Adapters that train singular values or a sparse core in a frozen factorization of W:
SVFit, SVFT and QR-LoRA."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from refimpl import _xp
from refimpl._typing import ArrayLike
from refimpl._validation import check_choice, check_nonnegative_int, check_positive_int, check_rank
from refimpl.lora._core import AdapterConfig, AdapterLayer, Builder, EnergyRankConfig, energy_rank
from refimpl.seeding import SeedLike, as_generator

__all__ = [
    "QRLoRAConfig",
    "QRLoRALinear",
    "SVFTConfig",
    "SVFTLinear",
    "SVFitConfig",
    "SVFitLinear",
    "svft_pattern",
]

_PATTERNS = ("diagonal", "banded", "random", "topk")


@dataclass(frozen=True)
class SVFitConfig(EnergyRankConfig):
    """SVFit: ``W = U S Vᵀ``; the top-``r`` singular values ``σ`` are trained, the singular
    vectors frozen: ``W' = W_res + U_r diag(σ) V_rᵀ`` with ``W_res = W − U_r S_r V_rᵀ`` and
    ``σ`` initialised to ``S_r`` (output unchanged). Trainable ``r`` per layer.

    Attributes
    ----------
    rank : int, optional
        ``r``; at most ``min(d_out, d_in)`` of each target. ``None``: the smallest rank
        holding ``energy`` of ``‖W‖_F²`` (:func:`refimpl.lora.energy_rank`), per layer.
    energy : float
        The energy fraction in (0, 1] used when ``rank`` is ``None``.
    """

    rank: int | None = None
    energy: float = 0.99

    def builders(self) -> dict[type[AdapterLayer], Builder]:
        return {SVFitLinear: self.build}

    def build(self, base: nn.Linear, name: str, state: None) -> SVFitLinear:
        W = base.weight.detach().float()
        U, S, Vt = _xp.svd(W)
        r = energy_rank(S, self.energy) if self.rank is None else check_rank(
            self.rank, "rank", min(W.shape), what=f"min(d_out, d_in) of {name}")
        return SVFitLinear(base, U[:, :r], S[:r], Vt[:r])


class SVFitLinear(AdapterLayer):
    """``y = base(x) + ((x V_r) ⊙ σ) U_rᵀ`` on the residual base, ``sigma`` trainable.

    The base weight is replaced by ``W − U_r diag(S_r) V_rᵀ``.

    Parameters
    ----------
    base : torch.nn.Linear
        The frozen layer.
    U, S, Vt : torch.Tensor
        The top-``r`` singular triplets of its weight: d_out×r, (r,), r×d_in.
    """

    U: torch.Tensor
    Vt: torch.Tensor

    def __init__(self, base: nn.Linear, U: torch.Tensor, S: torch.Tensor,
                 Vt: torch.Tensor) -> None:
        super().__init__(base)
        f = self._factory()
        self.register_buffer("U", U.to(**f).contiguous(), persistent=False)
        self.register_buffer("Vt", Vt.to(**f).contiguous(), persistent=False)
        self.sigma = nn.Parameter(S.to(**f).clone())
        self._subtract_from_base(self.delta_weight())

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        return base_out + ((x @ self.Vt.mT) * self.sigma) @ self.U.mT

    def delta_weight(self) -> torch.Tensor:
        return (self.U.float() * self.sigma.float()) @ self.Vt.float()


def svft_pattern(n: int, pattern: str, *, width: int = 1, k: int | None = None,
                 U: torch.Tensor | None = None, Vt: torch.Tensor | None = None,
                 seed: SeedLike = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(rows, cols)`` of SVFT's trainable entries in the n×n core.

    Parameters
    ----------
    n : int
        The size of the core (the number of singular triplets).
    pattern : {"diagonal", "banded", "random", "topk"}
        ``"diagonal"``: the n diagonal entries; ``"banded"``: ``|i − j| ≤ width``,
        ``n(2w+1) − w(w+1)`` entries; ``"random"``: the diagonal plus ``k`` distinct
        off-diagonal positions drawn from ``seed``; ``"topk"``: the diagonal plus the ``k``
        off-diagonal positions with the largest ``|⟨uᵢ, vⱼ⟩|`` (square weights only, where
        left and right singular vectors live in the same space).
    width : int
        Half-width of ``"banded"``, ``>= 0``.
    k : int, optional
        Off-diagonal entries of ``"random"`` and ``"topk"`` (required there), at most
        ``n(n − 1)``. A count of entries, not a rank.
    U, Vt : torch.Tensor, optional
        The singular vectors (n columns of ``U``, n rows of ``Vt``) for ``"topk"``.
    seed : int, numpy.random.Generator or None
        Randomness of ``"random"``.

    Returns
    -------
    rows, cols : numpy.ndarray
        The positions, the diagonal first for ``"random"`` and ``"topk"``.

    Raises
    ------
    ValueError
        If an option is out of range, ``k`` missing, or ``U``/``Vt`` missing or not of a square
        weight for ``"topk"``.
    """
    n = check_positive_int(n, "n")
    check_choice(pattern, "pattern", _PATTERNS)
    width = check_nonnegative_int(width, "width")
    if pattern == "diagonal":
        i = np.arange(n)
        return i, i
    if pattern == "banded":
        i, j = np.nonzero(np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= width)
        return i, j
    if k is None or check_nonnegative_int(k, "k") > n * (n - 1):
        raise ValueError(f"k must be given, between 0 and n(n-1) = {n * (n - 1)}; got {k!r}")
    off = np.flatnonzero(~np.eye(n, dtype=bool))
    if pattern == "random":
        pick = as_generator(seed).choice(off, size=k, replace=False)
    else:
        if U is None or Vt is None or U.shape[0] != Vt.shape[1]:
            raise ValueError("pattern 'topk' needs U and Vt of a square weight")
        score = np.abs(_xp.to_numpy((U.mT @ Vt.mT).float())).ravel()[off]
        pick = off[np.argsort(-score, kind="stable")[:k]]
    i = np.concatenate([np.arange(n), pick // n])
    j = np.concatenate([np.arange(n), pick % n])
    return i, j


@dataclass(frozen=True)
class SVFTConfig(AdapterConfig):
    """SVFT: ``W = U(Σ + M)Vᵀ`` with the thin SVD frozen and the sparse core ``M`` trained
    on a fixed pattern (see :func:`svft_pattern`). ``M`` starts at zero, so the output is
    unchanged at step 0 (the authors' code adds a gated nonzero update at init; this
    implementation does not).

    Attributes
    ----------
    pattern : {"diagonal", "banded", "random", "topk"}
        The trainable positions of ``M``.
    width : int
        Half-width of ``"banded"`` (and, when ``k`` is ``None``, the band whose off-diagonal
        count ``"random"`` and ``"topk"`` match).
    k : int, optional
        Off-diagonal entries of ``"random"`` and ``"topk"``.
    seed : int, numpy.random.Generator or None
        Randomness of ``"random"``.
    """

    pattern: str = "banded"
    width: int = 1
    k: int | None = None
    seed: Any = 0

    def __post_init__(self) -> None:
        check_choice(self.pattern, "pattern", _PATTERNS)
        check_nonnegative_int(self.width, "width")
        if self.k is not None:
            check_nonnegative_int(self.k, "k")

    def builders(self) -> dict[type[AdapterLayer], Builder]:
        return {SVFTLinear: self.build}

    def prepare(self, targets: Mapping[str, nn.Module]) -> np.random.Generator:
        return as_generator(self.seed)

    def build(self, base: nn.Linear, name: str, rng: np.random.Generator) -> SVFTLinear:
        W = base.weight.detach().float()
        U, _, Vt = _xp.svd(W)
        n = U.shape[1]
        k = self.k
        if self.pattern in ("random", "topk") and k is None:
            k = len(svft_pattern(n, "banded", width=self.width)[0]) - n
        rows, cols = svft_pattern(n, self.pattern, width=self.width, k=k, U=U, Vt=Vt, seed=rng)
        return SVFTLinear(base, U, Vt, rows, cols)


class SVFTLinear(AdapterLayer):
    """``y = base(x) + ((x V) Mᵀ) Uᵀ`` with ``M`` scattered from the trainable ``values``.

    Parameters
    ----------
    base : torch.nn.Linear
        The frozen layer.
    U, Vt : torch.Tensor
        The thin SVD's singular vectors of its weight, d_out×n and n×d_in.
    rows, cols : array of int
        The positions of the trainable entries of the n×n core (:func:`svft_pattern`).
    """

    U: torch.Tensor
    Vt: torch.Tensor
    index: torch.Tensor

    def __init__(self, base: nn.Linear, U: torch.Tensor, Vt: torch.Tensor, rows: ArrayLike,
                 cols: ArrayLike) -> None:
        super().__init__(base)
        f = self._factory()
        self.n = U.shape[1]
        self.register_buffer("U", U.to(**f).contiguous(), persistent=False)
        self.register_buffer("Vt", Vt.to(**f).contiguous(), persistent=False)
        flat = torch.as_tensor(np.asarray(rows) * self.n + np.asarray(cols), dtype=torch.long)
        self.register_buffer("index", flat.to(f["device"]))
        self.values = nn.Parameter(torch.zeros(flat.numel(), **f))

    extra_state_names = ("index",)

    def core(self) -> torch.Tensor:
        """The n×n core ``M``."""
        M = self.values.new_zeros(self.n * self.n)
        return M.index_put((self.index,), self.values, accumulate=True).view(self.n, self.n)

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        return base_out + ((x @ self.Vt.mT) @ self.core().mT) @ self.U.mT

    def delta_weight(self) -> torch.Tensor:
        return self.U.float() @ self.core().float() @ self.Vt.float()


@dataclass(frozen=True)
class QRLoRAConfig(EnergyRankConfig):
    """QR-LoRA: pivoted QR ``W P = Q R`` (:func:`refimpl.linalg.cpqr`);
    ``ΔW = Σᵢ λᵢ Qᵢ (R Pᵀ)ᵢ`` over the first ``r`` columns of ``Q`` and rows of ``R Pᵀ``, only
    ``λ`` (r scalars, zero at init) trained.

    Attributes
    ----------
    rank : int, optional
        ``r``; at most ``min(d_out, d_in)`` of each target. ``None``: the smallest rank whose
        ``|diag R|²`` reaches the fraction ``energy`` (:func:`refimpl.lora.energy_rank`).
    energy : float
        The energy fraction in (0, 1] used when ``rank`` is ``None``.
    """

    rank: int | None = None
    energy: float = 0.9

    def builders(self) -> dict[type[AdapterLayer], Builder]:
        return {QRLoRALinear: self.build}

    def build(self, base: nn.Linear, name: str, state: None) -> QRLoRALinear:
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
    """``y = base(x) + ((x (RPᵀ)_rᵀ) ⊙ λ) Q_rᵀ`` with trainable ``lam`` (r, zero at init).

    Parameters
    ----------
    base : torch.nn.Linear
        The frozen layer.
    Q, RPt : torch.Tensor
        The first ``r`` columns of ``Q`` (d_out×r) and rows of ``R Pᵀ`` (r×d_in).
    """

    Q: torch.Tensor
    RPt: torch.Tensor

    def __init__(self, base: nn.Linear, Q: torch.Tensor, RPt: torch.Tensor) -> None:
        super().__init__(base)
        f = self._factory()
        self.register_buffer("Q", Q.to(**f).contiguous(), persistent=False)
        self.register_buffer("RPt", RPt.to(**f).contiguous(), persistent=False)
        self.lam = nn.Parameter(torch.zeros(Q.shape[1], **f))

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        return base_out + ((x @ self.RPt.mT) * self.lam) @ self.Q.mT

    def delta_weight(self) -> torch.Tensor:
        return (self.Q.float() * self.lam.float()) @ self.RPt.float()

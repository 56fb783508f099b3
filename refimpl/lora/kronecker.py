"""Kronecker adapters: the Kronecker-product SVD (Van Loan–Pitsianis rearrangement) and SoKA
(tier B)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from refimpl import _xp
from refimpl._validation import check_array, check_rank
from refimpl.lora._core import AdapterLayer
from refimpl.lora.singular import _check_tau, energy_rank

__all__ = ["KronSVD", "SoKAConfig", "SoKALinear", "kron_shape", "kron_svd"]


def kron_shape(n: int) -> tuple[int, int]:
    """``(a, b)`` with ``a·b = n`` and ``a`` the largest divisor of ``n`` not above ``√n``."""
    a = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    return a, n // a


def _kron_sum(A, B):
    """``Σ_k A_k ⊗ B_k`` for ``A`` (K, m1, n1), ``B`` (K, m2, n2)."""
    m1, n1 = A.shape[1:]
    m2, n2 = B.shape[1:]
    return torch.einsum("kij,kab->iajb", A, B).reshape(m1 * m2, n1 * n2)


class KronSVD(NamedTuple):
    """``W ≈ Σ_k σ_k A_k ⊗ B_k`` with ``‖A_k‖_F = ‖B_k‖_F = 1``: ``A`` (K, m1, n1),
    ``B`` (K, m2, n2), ``s`` (K,) decreasing."""

    A: torch.Tensor
    B: torch.Tensor
    s: torch.Tensor

    def reconstruct(self):
        return _kron_sum(self.s[:, None, None] * self.A, self.B)


def kron_svd(W, m1: int, n1: int, k: int | None = None) -> KronSVD:
    """Nearest sums of Kronecker products (Van Loan & Pitsianis): rearrange ``W``
    ((m1·m2)×(n1·n2)) so that each block ``W[i·m2:(i+1)·m2, j·n2:(j+1)·n2]`` becomes the row
    ``(i, j)`` of an (m1·n1)×(m2·n2) matrix; its SVD gives the Kronecker terms, and truncating it
    at ``k`` is optimal in the Frobenius norm."""
    W = check_array(W, "W")
    d_out, d_in = W.shape
    if d_out % m1 or d_in % n1:
        raise ValueError(f"m1={m1}, n1={n1} must divide the shape {tuple(W.shape)}")
    m2, n2 = d_out // m1, d_in // n1
    R = W.reshape(m1, m2, n1, n2).permute(0, 2, 1, 3).reshape(m1 * n1, m2 * n2)
    U, s, Vh = _xp.svd(R)
    k = s.numel() if k is None else check_rank(k, "k", s.numel())
    return KronSVD(U[:, :k].mT.reshape(k, m1, n1), Vh[:k].reshape(k, m2, n2), s[:k])


@dataclass(frozen=True)
class SoKAConfig:
    """SoKA (our reading of the abstract): ``W = W_res + Σ_{k≤K} A_k ⊗ B_k`` from the
    Kronecker-product SVD of ``W`` (:func:`kron_svd`, factor shapes from :func:`kron_shape`),
    the ``K`` terms trained (``A_k = √σ_k·U_k``, ``B_k = √σ_k·V_k``) and the residual frozen,
    so the output is unchanged at step 0. ``K`` is given, or the smallest number of terms
    holding ``energy`` of ``‖W‖_F²`` (capped at ``max_rank``). Trainable
    ``K(m1·n1 + m2·n2)`` per layer."""

    rank: int | None = None
    energy: float = 0.5
    max_rank: int = 16

    def __post_init__(self):
        if self.rank is not None:
            check_rank(self.rank, "rank", 2**31)
        check_rank(self.max_rank, "max_rank", 2**31)
        _check_tau(self.energy)

    def prepare(self, targets, covariances):
        return None

    def build(self, base, name, ctx) -> SoKALinear:
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
    (K, m2, n2)."""

    def __init__(self, base: nn.Linear, A, B):
        super().__init__(base)
        f = self._factory()
        self.kron_A = nn.Parameter(A.to(**f).contiguous())
        self.kron_B = nn.Parameter(B.to(**f).contiguous())
        with torch.no_grad():
            base.weight.data = (base.weight.float() - self._dense()).to(**f)

    def _dense(self):
        return _kron_sum(self.kron_A.float(), self.kron_B.float())

    def adapter_forward(self, x, base_out):
        X = x.reshape(-1, self.kron_A.shape[2], self.kron_B.shape[2])
        Y = torch.einsum("kij,njb,kab->nia", self.kron_A, X, self.kron_B)
        return base_out + Y.reshape(base_out.shape)

    def delta_weight(self):
        return self._dense()

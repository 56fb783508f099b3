"""DoTA (tier B): a matrix-product-operator (tensor-train) adapter initialised from the
pretrained weight.

With ``d_out = o₁⋯o_n`` and ``d_in = i₁⋯i_n``, the weight seen as the tensor
``W[(o₁…o_n), (i₁…i_n)]`` is written as a chain of cores ``C_k`` (χ_{k−1}×o_k×i_k×χ_k,
``χ₀ = χ_n = 1``):

    W[(o₁…o_n), (i₁…i_n)] = Σ_{a} C₁[1, o₁, i₁, a₁] C₂[a₁, o₂, i₂, a₂] ⋯ C_n[a_{n−1}, o_n, i_n, 1].

:func:`mpo_decompose` computes the cores by sequential truncated SVDs (TT-SVD of the tensor
with the paired indices ``(o_k, i_k)``), keeping at most ``bond`` singular values per cut.
DoTA (Hu et al.) initialises trainable cores with the MPO of the pretrained weight and freezes
the residual ``W_res = W − MPO(W)``, so that the output is unchanged at step 0 (PiSSA's idea
with a tensor-train adapter). The forward pass contracts the cores with the input one mode at a
time and never forms the dense update. The mode split (:func:`mpo_modes`, balanced prime
factors) and the absence of a scale factor are our choices; QDoTA (the 4-bit variant) is not
implemented.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from refimpl import _xp
from refimpl._validation import check_array, check_rank
from refimpl.lora._core import AdapterLayer

__all__ = ["DoTAConfig", "DoTALinear", "mpo_decompose", "mpo_modes", "mpo_to_matrix"]


def mpo_modes(d: int, n: int) -> tuple[int, ...]:
    """Split ``d`` into ``n`` factors by giving its prime factors, largest first, to the
    currently smallest factor (returned in decreasing order; 1s where ``d`` has fewer than
    ``n`` prime factors)."""
    check_rank(d, "d", 2**62)
    check_rank(n, "n", 64)
    primes, m, p = [], d, 2
    while p * p <= m:
        while m % p == 0:
            primes.append(p)
            m //= p
        p += 1
    if m > 1:
        primes.append(m)
    modes = [1] * n
    for q in sorted(primes, reverse=True):
        modes[modes.index(min(modes))] *= q
    return tuple(sorted(modes, reverse=True))


def mpo_decompose(W, out_modes, in_modes, bond: int | None = None) -> list[torch.Tensor]:
    """MPO cores of ``W`` (d_out×d_in) for ``d_out = Π out_modes``, ``d_in = Π in_modes``
    (same number of modes), with bond dimensions at most ``bond`` (``None``: exact). Each cut
    keeps the leading singular triplets, so the error is at most the root sum of squares of all
    discarded singular values (the TT-SVD bound). Returns the cores in fp32 (fp64 stays fp64),
    left-orthonormal except the last."""
    W = check_array(W, "W")
    out_modes, in_modes = tuple(out_modes), tuple(in_modes)
    n = len(out_modes)
    if n != len(in_modes) or n < 1 or math.prod(out_modes) != W.shape[0] \
            or math.prod(in_modes) != W.shape[1]:
        raise ValueError(f"out_modes {out_modes} and in_modes {in_modes} must have one length "
                         f"and multiply to the shape {tuple(W.shape)}")
    if bond is not None:
        check_rank(bond, "bond", 2**31)
    W = W if W.dtype == torch.float64 else W.float()
    # (o₁…o_n, i₁…i_n) → (o₁, i₁, o₂, i₂, …)
    T = W.reshape(*out_modes, *in_modes)
    T = T.permute(*[j for k in range(n) for j in (k, n + k)])
    cores, left, rest = [], 1, T.reshape(-1)
    for k in range(n - 1):
        M = rest.reshape(left * out_modes[k] * in_modes[k], -1)
        U, S, Vh = _xp.svd(M)
        chi = len(S) if bond is None else min(bond, len(S))
        cores.append(U[:, :chi].reshape(left, out_modes[k], in_modes[k], chi))
        rest = S[:chi, None] * Vh[:chi]
        left = chi
    cores.append(rest.reshape(left, out_modes[-1], in_modes[-1], 1))
    return cores


def mpo_to_matrix(cores) -> torch.Tensor:
    """The d_out×d_in matrix of MPO cores (inverse of :func:`mpo_decompose` at full bond)."""
    t = cores[0]  # (1, O, I, χ)
    for c in cores[1:]:
        a, O, I_, _ = t.shape
        t = torch.einsum("aOIx,xoib->aOoIib", t, c)
        t = t.reshape(a, O * c.shape[1], I_ * c.shape[2], c.shape[3])
    return t[0, :, :, 0]


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
class DoTAConfig:
    """DoTA: trainable MPO cores (``n_cores`` of them, bond dimension ≤ ``bond``) initialised
    from the MPO of the pretrained weight, residual ``W − MPO(W)`` frozen (output unchanged at
    step 0). Modes from :func:`mpo_modes`. Trainable per layer: ``Σ_k χ_{k−1} o_k i_k χ_k``."""

    n_cores: int = 3
    bond: int = 8

    def __post_init__(self):
        check_rank(self.n_cores, "n_cores", 64)
        check_rank(self.bond, "bond", 2**31)

    def prepare(self, targets, covariances):
        return {}

    def build(self, base, name, ctx) -> DoTALinear:
        d_out, d_in = base.weight.shape
        cores = mpo_decompose(base.weight.detach(), mpo_modes(d_out, self.n_cores),
                              mpo_modes(d_in, self.n_cores), self.bond)
        return DoTALinear(base, cores)


class DoTALinear(AdapterLayer):
    """``y = base(x) + MPO(cores) x`` with trainable ``dota_cores`` (a ParameterList), the base
    weight holding the residual."""

    def __init__(self, base: nn.Linear, cores):
        super().__init__(base)
        f = self._factory()
        self.dota_cores = nn.ParameterList([nn.Parameter(c.to(**f).contiguous()) for c in cores])
        with torch.no_grad():
            W = base.weight.detach()
            self.base.weight.data = (W.float() - mpo_to_matrix(cores).float()).to(**f)

    def adapter_forward(self, x, base_out):
        y = _mpo_apply(list(self.dota_cores), x.reshape(-1, self.in_features))
        return base_out + y.view(base_out.shape)

    def delta_weight(self):
        return mpo_to_matrix([c.float() for c in self.dota_cores])

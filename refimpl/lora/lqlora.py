"""LQ-LoRA: W ≈ Q + L with Q quantized (frozen) and L = BA low rank (trained); the
quantizers (uniform and NF-style), the alternating decomposition, its Fisher-weighted
variant, and the per-matrix bit allocation under a budget."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from refimpl import _xp
from refimpl._validation import check_array, check_rank
from refimpl.lora.lora import LoRALinear

__all__ = [
    "LQDecomposition",
    "LQLoRAConfig",
    "LQLoRALinear",
    "allocate_bits",
    "lq_decompose",
    "nf_codebook",
    "nf_quantize",
    "uniform_quantize",
]


def _check_bits(bits):
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 16:
        raise ValueError(f"bits must be an integer in 1..16; got {bits!r}")


def _blocks(W, block: int):
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise ValueError(f"block must be a positive integer; got {block!r}")
    flat = W.reshape(-1)
    pad = (-flat.numel()) % block
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    return flat.view(-1, block), pad


def _unblock(Xb, pad, shape):
    flat = Xb.reshape(-1)
    return (flat[:-pad] if pad else flat).view(shape)


def uniform_quantize(W, bits: int, *, block: int = 64):
    """Asymmetric uniform quantization in blocks of ``block`` consecutive weights:
    ``2^bits`` levels between each block's min and max; returns the dequantized tensor."""
    W = check_array(W, "W", ndim=(1, 2))
    _check_bits(bits)
    Wb, pad = _blocks(W.float(), block)
    lo, hi = Wb.min(1, keepdim=True).values, Wb.max(1, keepdim=True).values
    step = (hi - lo) / (2**bits - 1)
    step = torch.where(step > 0, step, torch.ones_like(step))
    Q = torch.round((Wb - lo) / step).clamp(0, 2**bits - 1) * step + lo
    return _unblock(Q, pad, W.shape).to(W.dtype)


def nf_codebook(bits: int):
    """NormalFloat-style codebook in [−1, 1]: quantiles of N(0, 1), ``2^(bits−1)`` positive
    and ``2^(bits−1) − 1`` negative levels plus an exact zero, normalised by the largest
    (the construction of QLoRA's NF4 for ``bits=4``)."""
    from scipy.stats import norm

    _check_bits(bits)
    if bits == 1:
        return torch.tensor([-1.0, 1.0])
    offset = 0.5 * (1 / 32 + 1 / 30)  # QLoRA's choice of the outermost quantile
    pos = norm.ppf(np.linspace(offset, 0.5, 2 ** (bits - 1) + 1)[:-1])
    neg = -norm.ppf(np.linspace(offset, 0.5, 2 ** (bits - 1))[:-1])
    v = np.sort(np.concatenate([-pos, [0.0], -neg]))
    return torch.tensor(v / np.abs(v).max(), dtype=torch.float32)


def nf_quantize(W, bits: int, *, block: int = 64):
    """NF-style quantization: each block scaled by its absolute maximum, each weight rounded
    to the nearest level of :func:`nf_codebook`; returns the dequantized tensor."""
    W = check_array(W, "W", ndim=(1, 2))
    code = nf_codebook(bits).to(W.device)
    Wb, pad = _blocks(W.float(), block)
    scale = Wb.abs().max(1, keepdim=True).values
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    idx = torch.bucketize(Wb / scale, (code[1:] + code[:-1]) / 2)
    return _unblock(code[idx] * scale, pad, W.shape).to(W.dtype)


_QUANTIZERS = {"nf": nf_quantize, "uniform": uniform_quantize}


class LQDecomposition(NamedTuple):
    """``W ≈ Q + B A`` with ``Q`` quantized; ``errors`` per iteration (weighted Frobenius)."""

    Q: torch.Tensor
    A: torch.Tensor
    B: torch.Tensor
    errors: list


def lq_decompose(W, rank: int, *, bits: int = 4, quantizer: str = "nf", block: int = 64,
                 n_iter: int = 20, fisher=None) -> LQDecomposition:
    """Alternate ``L = SVD_r(W − Q)``, ``Q = quantize(W − L)`` from ``Q = 0``; stop when the
    error ``‖D_r (W − Q − L) D_c‖_F`` stops decreasing (the best iterate is returned).

    ``fisher`` (d_out×d_in, non-negative, e.g. squared gradients) gives the weighted variant:
    the Fisher matrix is approximated by the rank-one ``d_r d_cᵀ`` of its row and column
    means (normalised), under which the weighted rank-r problem is solved exactly by the SVD
    of ``D_r (W − Q) D_c`` with ``D = diag(√d)``; unweighted when ``None``.
    ``A = √S Vᵀ``, ``B = U√S``.
    """
    W = check_array(W, "W").float()
    rank = check_rank(rank, "rank", min(W.shape))
    _check_bits(bits)
    if quantizer not in _QUANTIZERS:
        raise ValueError(f"quantizer must be 'nf' or 'uniform'; got {quantizer!r}")
    quant = _QUANTIZERS[quantizer]
    if fisher is None:
        dr, dc = torch.ones(W.shape[0]), torch.ones(W.shape[1])
    else:
        F = check_array(fisher, "fisher").float()
        if F.shape != W.shape or bool((F < 0).any()):
            raise ValueError("fisher must be non-negative with W's shape")
        dr, dc = F.mean(1), F.mean(0)
        dr = (dr / dr.mean().clamp_min(1e-30)).clamp_min(1e-8).sqrt()
        dc = (dc / dc.mean().clamp_min(1e-30)).clamp_min(1e-8).sqrt()
    Q = torch.zeros_like(W)
    best, errors = None, []
    for _ in range(n_iter):
        U, S, Vh = _xp.svd(dr[:, None] * (W - Q) * dc)
        root = S[:rank].sqrt()
        A = root[:, None] * Vh[:rank] / dc
        B = U[:, :rank] * root / dr[:, None]
        Q = quant(W - B @ A, bits, block=block)
        err = float(torch.linalg.norm(dr[:, None] * (W - Q - B @ A) * dc))
        errors.append(err)
        if best is not None and err >= best[0]:
            break
        best = (err, Q, A, B)
    return LQDecomposition(best[1], best[2], best[3], errors)


def allocate_bits(errors: Mapping[str, Mapping[int, float]], sizes: Mapping[str, int],
                  budget: float) -> dict[str, int]:
    """Choose one bit width per matrix minimising the total error under an average budget.

    ``errors[name][bits]`` is the error of matrix ``name`` at ``bits`` (e.g. from
    :func:`lq_decompose`), ``sizes[name]`` its number of weights, ``budget`` the allowed
    average bits per weight. Solved exactly as a 0–1 integer program (multiple-choice
    knapsack) with :func:`scipy.optimize.milp`. Raises ``ValueError`` if infeasible.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    names = list(errors)
    if not names or set(names) != set(sizes):
        raise ValueError("errors and sizes must name the same, non-empty set of matrices")
    var = [(n, b) for n in names for b in sorted(errors[n])]
    cost = np.array([float(errors[n][b]) for n, b in var])
    total = sum(sizes[n] for n in names)
    one = np.array([[1.0 if v[0] == n else 0.0 for v in var] for n in names])
    bits_row = np.array([[b * sizes[n] / total for n, b in var]])
    res = milp(cost, integrality=np.ones(len(var)), bounds=Bounds(0, 1),
               constraints=[LinearConstraint(one, 1, 1), LinearConstraint(bits_row, -np.inf,
                                                                          budget)])
    if not res.success:
        raise ValueError(f"no bit allocation meets the budget {budget}: {res.message}")
    x = np.round(res.x).astype(bool)
    return {n: b for (n, b), on in zip(var, x, strict=True) if on}


@dataclass(frozen=True)
class LQLoRAConfig:
    """LQ-LoRA: each target ``W`` is replaced by its quantized part ``Q`` (frozen, stored
    dequantized: the book measures error, not packed storage) and a LoRA path with scaling 1
    initialised to the low-rank part: ``Q + BA ≈ W`` at step 0 (not exactly: the
    quantization error remains, which is the point of the method). ``bits`` is an int or a
    mapping name → bits (e.g. from :func:`allocate_bits`); ``fisher`` maps names to Fisher
    matrices for the weighted variant."""

    rank: int = 8
    bits: int | Mapping[str, int] = 4
    quantizer: str = "nf"
    block: int = 64
    n_iter: int = 20
    fisher: Mapping[str, torch.Tensor] | None = field(default=None, compare=False)

    def __post_init__(self):
        check_rank(self.rank, "rank", 2**31)
        if self.quantizer not in _QUANTIZERS:
            raise ValueError(f"quantizer must be 'nf' or 'uniform'; got {self.quantizer!r}")

    def prepare(self, targets, covariances):
        if isinstance(self.bits, Mapping) and set(targets) - set(self.bits):
            raise ValueError(f"bits has no entry for {sorted(set(targets) - set(self.bits))}")
        return None

    def build(self, base, name, ctx) -> LQLoRALinear:
        d_out, d_in = base.weight.shape
        r = check_rank(self.rank, "rank", min(d_in, d_out), what=f"min(d_out, d_in) of {name}")
        bits = self.bits[name] if isinstance(self.bits, Mapping) else self.bits
        dec = lq_decompose(base.weight.detach(), r, bits=bits, quantizer=self.quantizer,
                           block=self.block, n_iter=self.n_iter,
                           fisher=None if self.fisher is None else self.fisher.get(name))
        layer = LQLoRALinear(base, r, bits)
        layer.set_factors(dec.A, dec.B, residual=dec.Q)
        return layer


class LQLoRALinear(LoRALinear):
    """A :class:`LoRALinear` (scaling 1) on a quantized base; ``bits`` records the width."""

    def __init__(self, base: nn.Linear, rank: int, bits: int):
        super().__init__(base, rank, 1.0)
        self.bits = bits

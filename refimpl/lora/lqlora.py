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
from refimpl._typing import Array
from refimpl._validation import (
    check_array,
    check_choice,
    check_positive_int,
    check_rank,
    check_same_kind,
)
from refimpl.lora._core import AdapterConfig, AdapterLayer, Builder
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


_MAX_BITS = 16


def _check_bits(bits: object) -> int:
    bits = check_positive_int(bits, "bits")
    if bits > _MAX_BITS:
        raise ValueError(f"bits must be at most {_MAX_BITS} (a codebook of 2**bits levels; "
                         f"wider weights are not quantized); got {bits}")
    return bits


def _blocks(W: torch.Tensor, block: int) -> tuple[torch.Tensor, int]:
    block = check_positive_int(block, "block")
    flat = W.reshape(-1)
    pad = (-flat.numel()) % block
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    return flat.view(-1, block), pad


def _unblock(Xb, pad, shape):
    flat = Xb.reshape(-1)
    return (flat[:-pad] if pad else flat).view(shape)


def uniform_quantize(W: torch.Tensor, bits: int, *, block: int = 64) -> torch.Tensor:
    """Asymmetric uniform quantization in blocks of ``block`` consecutive weights.

    ``2^bits`` levels between each block's min and max.

    Parameters
    ----------
    W : torch.Tensor
        A vector or matrix (blocks run over its flattening, the last one zero-padded).
    bits : int
        Bit width, 1 to 16.
    block : int
        Weights per block, ``>= 1``.

    Returns
    -------
    torch.Tensor
        The dequantized tensor, of ``W``'s shape and dtype.
    """
    W = check_array(W, "W", ndim=(1, 2))
    bits = _check_bits(bits)
    Wb, pad = _blocks(W.float(), block)
    lo, hi = Wb.min(1, keepdim=True).values, Wb.max(1, keepdim=True).values
    step = (hi - lo) / (2**bits - 1)
    step = torch.where(step > 0, step, torch.ones_like(step))
    Q = torch.round((Wb - lo) / step).clamp(0, 2**bits - 1) * step + lo
    return _unblock(Q, pad, W.shape).to(W.dtype)


def nf_codebook(bits: int) -> torch.Tensor:
    """NormalFloat-style codebook in [−1, 1].

    Quantiles of N(0, 1), ``2^(bits−1)`` positive and ``2^(bits−1) − 1`` negative levels plus
    an exact zero, normalised by the largest (the construction of QLoRA's NF4 for
    ``bits=4``).

    Parameters
    ----------
    bits : int
        Bit width, 1 to 16 (1: the levels ±1).

    Returns
    -------
    torch.Tensor
        The ``2^bits`` levels, increasing, fp32.
    """
    from scipy.stats import norm

    bits = _check_bits(bits)
    if bits == 1:
        return torch.tensor([-1.0, 1.0])
    offset = 0.5 * (1 / 32 + 1 / 30)  # QLoRA's choice of the outermost quantile
    pos = norm.ppf(np.linspace(offset, 0.5, 2 ** (bits - 1) + 1)[:-1])
    neg = -norm.ppf(np.linspace(offset, 0.5, 2 ** (bits - 1))[:-1])
    v = np.sort(np.concatenate([-pos, [0.0], -neg]))
    return torch.tensor(v / np.abs(v).max(), dtype=torch.float32)


def nf_quantize(W: torch.Tensor, bits: int, *, block: int = 64) -> torch.Tensor:
    """NF-style quantization: each block scaled by its absolute maximum, each weight rounded
    to the nearest level of :func:`nf_codebook`.

    Parameters
    ----------
    W, bits, block
        As in :func:`uniform_quantize`.

    Returns
    -------
    torch.Tensor
        The dequantized tensor, of ``W``'s shape and dtype.
    """
    W = check_array(W, "W", ndim=(1, 2))
    code = nf_codebook(bits).to(W.device)
    Wb, pad = _blocks(W.float(), block)
    scale = Wb.abs().max(1, keepdim=True).values
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    idx = torch.bucketize(Wb / scale, (code[1:] + code[:-1]) / 2)
    return _unblock(code[idx] * scale, pad, W.shape).to(W.dtype)


_QUANTIZERS = {"nf": nf_quantize, "uniform": uniform_quantize}


class LQDecomposition(NamedTuple):
    """``W ≈ Q + B A`` with ``Q`` quantized.

    Attributes
    ----------
    Q : torch.Tensor
        The dequantized quantized part, d_out×d_in.
    A, B : torch.Tensor
        The low-rank part, r×d_in and d_out×r.
    errors : list of float
        ``‖D_r (W − Q − BA) D_c‖_F`` per iteration.
    """

    Q: torch.Tensor
    A: torch.Tensor
    B: torch.Tensor
    errors: list


def lq_decompose(W: Array, rank: int, *, bits: int = 4, quantizer: str = "nf", block: int = 64,
                 n_iter: int = 20, fisher: Array | None = None) -> LQDecomposition:
    """Alternate ``L = SVD_r(W − Q)``, ``Q = quantize(W − L)`` from ``Q = 0``; stop when the
    error ``‖D_r (W − Q − L) D_c‖_F`` stops decreasing (the best iterate is returned).

    ``fisher`` (d_out×d_in, non-negative, e.g. squared gradients) gives the weighted variant:
    the Fisher matrix is approximated by the rank-one ``d_r d_cᵀ`` of its row and column
    means (normalised), under which the weighted rank-r problem is solved exactly by the SVD
    of ``D_r (W − Q) D_c`` with ``D = diag(√d)``; unweighted when ``None``.
    ``A = √S Vᵀ``, ``B = U√S``.

    Parameters
    ----------
    W : (d_out, d_in) torch.Tensor or array
        The matrix to decompose (float16/bfloat16 are computed in float32); the result comes
        back as the caller's kind and dtype.
    rank : int
        The rank ``r`` of ``BA``, at most ``min(d_out, d_in)``.
    bits : int
        Bit width of ``Q``, 1 to 16.
    quantizer : {"nf", "uniform"}
        :func:`nf_quantize` or :func:`uniform_quantize`.
    block : int
        The quantizer's block size.
    n_iter : int
        Most alternations, ``>= 1``.
    fisher : torch.Tensor, optional
        Non-negative d_out×d_in weights of the error (the weighted variant).

    Returns
    -------
    LQDecomposition
        The best iterate.

    Raises
    ------
    ValueError
        If an option is out of range or ``fisher`` is negative or of another shape.
    """
    if fisher is not None:
        check_same_kind("W", W, "fisher", fisher)
    W, _, back = _xp.prepare(W, "W", paths=("torch",))
    W = _xp.linalg_float(W)
    rank = check_rank(rank, "rank", min(W.shape))
    bits = _check_bits(bits)
    quant = _QUANTIZERS[check_choice(quantizer, "quantizer", tuple(_QUANTIZERS))]
    n_iter = check_positive_int(n_iter, "n_iter")
    if fisher is None:
        dr, dc = W.new_ones(W.shape[0]), W.new_ones(W.shape[1])
    else:
        F = _xp.to_path(check_array(fisher, "fisher"), "torch", like=W)
        if F.shape != W.shape or bool((F < 0).any()):
            raise ValueError("fisher must be non-negative with W's shape")
        dr, dc = F.mean(1), F.mean(0)
        dr = (dr / dr.mean().clamp_min(1e-30)).clamp_min(1e-8).sqrt()
        dc = (dc / dc.mean().clamp_min(1e-30)).clamp_min(1e-8).sqrt()
    Q = torch.zeros_like(W)
    best, errors = None, []
    for _ in range(n_iter):
        U, S, Vt = _xp.svd(dr[:, None] * (W - Q) * dc)
        root = S[:rank].sqrt()
        A = root[:, None] * Vt[:rank] / dc
        B = U[:, :rank] * root / dr[:, None]
        Q = quant(W - B @ A, bits, block=block)
        err = float(torch.linalg.norm(dr[:, None] * (W - Q - B @ A) * dc))
        errors.append(err)
        if best is not None and err >= best[0]:
            break
        best = (err, Q, A, B)
    # n_iter >= 1, so the first iteration set best
    return back(LQDecomposition(best[1], best[2], best[3], errors))  # type: ignore[index]


def allocate_bits(errors: Mapping[str, Mapping[int, float]], sizes: Mapping[str, int],
                  budget: float) -> dict[str, int]:
    """Choose one bit width per matrix minimising the total error under an average budget.

    ``errors[name][bits]`` is the error of matrix ``name`` at ``bits`` (e.g. from
    :func:`lq_decompose`), ``sizes[name]`` its number of weights, ``budget`` the allowed
    average bits per weight. Solved exactly as a 0–1 integer program (multiple-choice
    knapsack) with :func:`scipy.optimize.milp`.

    Parameters
    ----------
    errors : mapping of str to mapping of int to float
        ``errors[name][bits]``, the candidate widths and their errors per matrix.
    sizes : mapping of str to int
        Weights per matrix (the same names).
    budget : float
        Allowed average bits per weight.

    Returns
    -------
    dict of str to int
        The chosen width per matrix.

    Raises
    ------
    ValueError
        If the names differ or no allocation meets the budget.
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
class LQLoRAConfig(AdapterConfig):
    """LQ-LoRA: each target ``W`` is replaced by its quantized part ``Q`` (frozen, stored
    dequantized: the book measures error, not packed storage) and a LoRA path with scaling 1
    initialised to the low-rank part: ``Q + BA ≈ W`` at step 0 (not exactly: the
    quantization error remains, which is the point of the method); see :func:`lq_decompose`.

    Attributes
    ----------
    rank : int
        ``r``; at most ``min(d_out, d_in)`` of each target.
    bits : int or mapping of str to int
        Bit width, or one per target name (e.g. from :func:`allocate_bits`).
    quantizer : {"nf", "uniform"}
        The quantizer.
    block : int
        The quantizer's block size.
    n_iter : int
        Most alternations of :func:`lq_decompose`.
    fisher : mapping of str to torch.Tensor, optional
        Fisher matrices by target name, for the weighted variant. Not compared or hashed.
    """

    rank: int = 8
    bits: int | Mapping[str, int] = 4
    quantizer: str = "nf"
    block: int = 64
    n_iter: int = 20
    fisher: Mapping[str, torch.Tensor] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        check_positive_int(self.rank, "rank")
        for b in self.bits.values() if isinstance(self.bits, Mapping) else (self.bits,):
            _check_bits(b)
        check_choice(self.quantizer, "quantizer", tuple(_QUANTIZERS))
        check_positive_int(self.block, "block")
        check_positive_int(self.n_iter, "n_iter")

    def builders(self) -> dict[type[AdapterLayer], Builder]:
        return {LQLoRALinear: self.build}

    def prepare(self, targets: Mapping[str, nn.Module]) -> None:
        if isinstance(self.bits, Mapping) and set(targets) - set(self.bits):
            raise ValueError(f"bits has no entry for {sorted(set(targets) - set(self.bits))}")
        return None

    def build(self, base: nn.Linear, name: str, state: None) -> LQLoRALinear:
        d_out, d_in = base.weight.shape
        r = check_rank(self.rank, "rank", min(d_in, d_out), what=f"min(d_out, d_in) of {name}")
        bits = self.bits[name] if isinstance(self.bits, Mapping) else self.bits
        dec = lq_decompose(base.weight.detach().float(), r, bits=bits, quantizer=self.quantizer,
                           block=self.block, n_iter=self.n_iter,
                           fisher=None if self.fisher is None else self.fisher.get(name))
        layer = LQLoRALinear(base, r, bits)
        layer.set_decomposition(dec)
        return layer


class LQLoRALinear(LoRALinear):
    """A :class:`LoRALinear` (scaling 1) on a quantized base; ``bits`` records the width.

    Parameters
    ----------
    base : torch.nn.Linear
        The layer (its weight becomes the quantized part with :meth:`set_decomposition`).
    rank : int
        ``r``.
    bits : int
        The bit width of the quantized part.
    """

    def __init__(self, base: nn.Linear, rank: int, bits: int) -> None:
        super().__init__(base, rank, 1.0)
        self.bits = bits

    @torch.no_grad()
    def set_decomposition(self, dec: LQDecomposition) -> None:
        """Set ``lora_A``, ``lora_B`` to ``dec.A``, ``dec.B`` and replace the base weight by
        the quantized part ``dec.Q``."""
        self.set_factors(dec.A, dec.B)
        self._set_base_weight(dec.Q)

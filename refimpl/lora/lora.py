"""LoRA, rsLoRA and the initialisation family (PiSSA, MiLoRA, OLoRA, CorDA), LoRA on
``nn.Embedding`` and ``nn.Conv2d``, and the three-factor adapters ``ΔW = s B N A`` (SLoRA,
NLoRA, IntTune)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import nn

from refimpl import _xp
from refimpl._validation import (
    check_array,
    check_choice,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
    check_rank,
    check_rate,
    check_same_kind,
    check_square,
)
from refimpl.lora._core import AdapterLayer, ScaledConfig, kaiming_uniform
from refimpl.seeding import torch_generator

__all__ = [
    "LoRAConfig",
    "LoRAConv2d",
    "LoRAEmbedding",
    "LoRALinear",
    "NLoRAConfig",
    "NLoRALinear",
    "corda_damped_covariance",
    "corda_factors",
    "nystrom_factors",
    "olora_factors",
    "pissa_factors",
]

_INITS = ("lora", "pissa", "pissa_rsvd", "milora", "olora", "corda_ipm", "corda_kpm")


class LowRankFactors(NamedTuple):
    """An adapter's initial factors and the frozen residual: ``W = residual + s·B A``.

    Attributes
    ----------
    A : (r, d_in) array or tensor
        The down-projection.
    B : (d_out, r) array or tensor
        The up-projection.
    residual : (d_out, d_in) array or tensor
        ``W − s·B A``, which replaces the base weight so that the model is unchanged.
    """

    A: Any
    B: Any
    residual: Any


class NystromFactors(NamedTuple):
    """NLoRA's initial factors and the frozen residual: ``W = residual + s·B N A``.

    Attributes
    ----------
    A : (r, d_in) array or tensor
        The chosen rows ``W[I, :]``.
    N : (r, r) array or tensor
        The core ``W[I, J]⁻¹ / s``.
    B : (d_out, r) array or tensor
        The chosen columns ``W[:, J]``.
    residual : (d_out, d_in) array or tensor
        ``W − s·B N A``.
    """

    A: Any
    N: Any
    B: Any
    residual: Any


def _weight(W, rank):
    """``W`` on torch in a LAPACK dtype, the checked rank, and the way back to the caller's kind.

    The factor functions compute in the input's precision (float32 for float16/bfloat16);
    the adapters' builds pass float32 weights, as PEFT does.
    """
    W, _, back = _xp.prepare(W, "W", paths=("torch",))
    return _xp.linalg_float(W), check_rank(rank, "rank", min(W.shape)), back


def pissa_factors(W, rank: int, s: float, *, smallest: bool = False, svd: str = "exact",
                  n_iter: int = 4, seed=None):
    """PiSSA (and MiLoRA with ``smallest=True``) factors of ``W``.

    With ``W = U S Vᵀ`` and the ``rank`` largest (smallest) triplets,
    ``A = √(S_r/s) V_rᵀ``, ``B = U_r √(S_r/s)`` and the frozen residual
    ``W_res = W − s B A``, so ``W_res + s B A = W``.

    Parameters
    ----------
    W : (d_out, d_in) torch.Tensor or array
        The weight (float16/bfloat16 are computed in float32).
    rank : int
        ``r``, ``1 <= r <= min(d_out, d_in)``.
    s : float
        The adapter's scaling (α/r).
    smallest : bool
        Take the smallest triplets (MiLoRA) instead of the largest (PiSSA).
    svd : {"exact", "randomized"}
        ``"randomized"`` uses :func:`refimpl.sketch.randomized_svd` with ``n_iter`` power
        iterations (largest triplets only).
    n_iter : int
        Power iterations of the randomized SVD.
    seed : int, numpy.random.Generator or None
        Randomness of the randomized SVD.

    Returns
    -------
    LowRankFactors
        ``A`` (r×d_in), ``B`` (d_out×r) and the frozen residual ``W − s B A``, as the
        caller's kind and dtype.

    Raises
    ------
    ValueError
        If ``rank`` is out of range, ``svd`` unknown, or ``smallest`` asked of the randomized
        SVD.
    """
    W, rank, back = _weight(W, rank)
    check_choice(svd, "svd", ("exact", "randomized"))
    if svd == "exact":
        U, S, Vt = _xp.svd(W)
        sl = slice(-rank, None) if smallest else slice(0, rank)
        U, S, Vt = U[:, sl], S[sl], Vt[sl]
    else:
        if smallest:
            raise ValueError("the randomized SVD finds the largest triplets only")
        from refimpl.sketch import randomized_svd

        res = randomized_svd(W, rank, n_iter=n_iter, seed=seed, backend="torch")
        U, S, Vt = res.U, res.s, res.Vt
    root = (S / s).sqrt()
    A = root[:, None] * Vt
    B = U * root
    return back(LowRankFactors(A, B, W - s * (B @ A)))


def olora_factors(W, rank: int, s: float):
    """OLoRA factors of ``W``: unpivoted QR ``W = Q R``, ``B = Q[:, :r]``, ``A = R[:r]``.

    The factors are not divided by ``s``, so the residual ``W − s B A`` depends on ``α``, and
    on the column order of ``W``.

    Parameters
    ----------
    W, rank, s
        As in :func:`pissa_factors`.

    Returns
    -------
    LowRankFactors
        ``A = R[:r]``, ``B = Q[:, :r]`` and the frozen residual ``W − s B A``.
    """
    W, rank, back = _weight(W, rank)
    Q, R = _xp.qr(W)
    A, B = R[:rank].contiguous(), Q[:, :rank].contiguous()
    return back(LowRankFactors(A, B, W - s * (B @ A)))


def corda_damped_covariance(C, *, damp: float = 0.01, tol: float = 0.05, max_doublings: int = 60):
    """Damp a calibration covariance until it inverts accurately.

    ``C + δ·mean(diag C)·I`` with ``δ`` doubled from ``damp`` until
    ``‖(C+δ…)(C+δ…)⁻¹ − I‖_F < tol`` (the rule of the CorDA authors' code, also PEFT's).

    Parameters
    ----------
    C : torch.Tensor or array
        A square covariance (e.g. from :func:`refimpl.lora.input_covariances`).
    damp : float
        Initial relative damping ``δ``, ``> 0``.
    tol : float
        Accepted ``‖C_d C_d⁻¹ − I‖_F``, ``> 0``.
    max_doublings : int
        How many times ``δ`` may double.

    Returns
    -------
    C_damped, C_damped_inv : torch.Tensor or array
        As the caller's kind and dtype (computed in at least float32).

    Raises
    ------
    ValueError
        If ``C`` is not square, or no damping within ``max_doublings`` inverts it.
    """
    C, _, back = _xp.prepare(C, "C", paths=("torch",))
    C = _xp.linalg_float(C)
    check_square(C, "C")
    damp = check_positive(damp, "damp")
    tol = check_positive(tol, "tol")
    max_doublings = check_positive_int(max_doublings, "max_doublings")
    eye = torch.eye(C.shape[0], dtype=C.dtype, device=C.device)
    scale = torch.diagonal(C).mean()
    for _ in range(max_doublings):
        Cd = C + eye * (scale * damp)
        Ci = torch.linalg.inv(Cd)
        if torch.dist(Cd @ Ci, eye).item() < tol:
            return back((Cd, Ci))
        damp *= 2
    raise ValueError("the covariance could not be damped into an invertible matrix")


def corda_factors(W, C, rank: int, s: float, *, mode: str = "ipm"):
    """CorDA factors of ``W`` from the input covariance ``C``.

    The SVD of ``W C_d`` (``C_d`` the damped covariance, :func:`corda_damped_covariance`) is
    mapped back so that ``W = U S (C_d⁻¹V)ᵀ`` exactly; ``A = √(S/s) (C_d⁻¹V)ᵀ``,
    ``B = U √(S/s)`` over the chosen triplets and ``W_res = W − s B A``.

    Parameters
    ----------
    W, rank, s
        As in :func:`pissa_factors`.
    C : torch.Tensor or array
        The input covariance, d_in×d_in, of the same kind as ``W``.
    mode : {"ipm", "kpm"}
        IPM (instruction-previewed) adapts the ``r`` largest triplets, KPM
        (knowledge-preserving) the ``r`` smallest.

    Returns
    -------
    LowRankFactors
        As in :func:`pissa_factors`, from the chosen triplets.

    Raises
    ------
    ValueError
        If ``rank`` is out of range, ``C`` has the wrong shape or ``mode`` is unknown.
    """
    check_same_kind("W", W, "C", C)
    W, rank, back = _weight(W, rank)
    check_choice(mode, "mode", ("ipm", "kpm"))
    C = _xp.to_path(check_array(C, "C"), "torch", like=W)
    if C.shape != (W.shape[1], W.shape[1]):
        raise ValueError(f"C must be {W.shape[1]}×{W.shape[1]}; got {tuple(C.shape)}")
    Cd, Ci = corda_damped_covariance(C)
    U, S, Vt = _xp.svd(W @ Cd)
    Vt = Vt @ Ci
    sl = slice(0, rank) if mode == "ipm" else slice(-rank, None)
    root = (S[sl] / s).sqrt()
    A = root[:, None] * Vt[sl]
    B = U[:, sl] * root
    return back(LowRankFactors(A, B, W - s * (B @ A)))


@dataclass(frozen=True)
class LoRAConfig(ScaledConfig):
    """LoRA ``h = W₀x + s·B(Ax)`` with ``s = α/r`` (``α/√r`` with ``rslora=True``).

    All initialisations leave the model's output unchanged; the non-``"lora"`` ones do so by
    replacing the base weight with the residual ``W − s B A``. ``nn.Linear`` targets get a
    :class:`LoRALinear`, ``nn.Embedding`` targets a :class:`LoRAEmbedding` (``init="lora"``
    only), ``nn.Conv2d`` targets a :class:`LoRAConv2d` (``init="lora"`` only, ``groups=1``
    only).

    Attributes
    ----------
    rank : int
        ``r``; at most ``min(d_out, d_in)`` of each target.
    alpha : float, optional
        ``α`` (``None``: ``α = r``).
    init : str
        ``"lora"`` (A Kaiming-uniform from ``seed``, B = 0), ``"pissa"``, ``"pissa_rsvd"``
        (randomized SVD), ``"milora"``, ``"olora"``, ``"corda_ipm"``, ``"corda_kpm"`` (see
        :func:`pissa_factors`, :func:`olora_factors`, :func:`corda_factors`).
    rslora : bool
        Scale by ``α/√r`` (rsLoRA) instead of ``α/r``.
    dropout : float
        Dropout rate in [0, 1) on the adapter's input only, in training mode (PEFT's
        ``lora_dropout``; Linear and Conv2d targets).
    n_iter : int
        Power iterations of ``"pissa_rsvd"``.
    seed : int, numpy.random.Generator, torch.Generator or None
        Randomness of the initialisation.
    covariances : mapping of str to torch.Tensor, optional
        CorDA's input covariances by target name, from
        :func:`refimpl.lora.input_covariances`; required by (and only allowed with) the
        ``"corda_*"`` initialisations. Not compared or hashed.
    """

    rank: int = 8
    alpha: float | None = None
    init: str = "lora"
    rslora: bool = False
    dropout: float = 0.0
    n_iter: int = 4
    seed: Any = 0
    covariances: Mapping[str, torch.Tensor] | None = field(default=None, compare=False,
                                                           repr=False)

    def __post_init__(self):
        super().__post_init__()
        check_rate(self.dropout, "dropout")
        check_choice(self.init, "init", _INITS)
        check_nonnegative_int(self.n_iter, "n_iter")
        if self.covariances is not None and not self.init.startswith("corda"):
            raise ValueError(f"covariances are used by init='corda_ipm' or 'corda_kpm' only; "
                             f"got init={self.init!r}")

    def builders(self):
        return {LoRALinear: self.build, LoRAEmbedding: self._build_embedding,
                LoRAConv2d: self._build_conv2d}

    def prepare(self, targets):
        if self.init.startswith("corda"):
            missing = sorted(set(targets) - set(self.covariances or {}))
            if missing:
                raise ValueError(f"CorDA needs covariances for {missing}; compute them with "
                                 "refimpl.lora.input_covariances and pass them as "
                                 "LoRAConfig(covariances=...)")
        return torch_generator(self.seed)

    def build(self, base: nn.Linear, name: str, gen) -> LoRALinear:
        d_out, d_in = base.weight.shape
        r = check_rank(self.rank, "rank", min(d_in, d_out), what=f"min(d_out, d_in) of {name}")
        layer = LoRALinear(base, r, self.scaling, dropout=self.dropout)
        if self.init == "lora":
            layer.set_factors(kaiming_uniform((r, d_in), gen), torch.zeros(d_out, r))
            return layer
        W, s = base.weight.detach().float(), self.scaling
        if self.init.startswith("pissa") or self.init == "milora":
            seed = int(torch.randint(2**62, (1,), generator=gen))
            A, B, _ = pissa_factors(W, r, s, smallest=self.init == "milora",
                                    svd="randomized" if self.init == "pissa_rsvd" else "exact",
                                    n_iter=self.n_iter, seed=seed)
        elif self.init == "olora":
            A, B, _ = olora_factors(W, r, s)
        else:
            C = self.covariances[name].to(W.device)
            A, B, _ = corda_factors(W, C, r, s, mode=self.init[-3:])
        layer.set_factors(A, B, residual=True)
        return layer

    def _build_embedding(self, base: nn.Embedding, name: str, gen) -> LoRAEmbedding:
        if self.init != "lora":
            raise ValueError(f"{name} is an embedding: only init='lora' is defined for it")
        d_in, d_out = base.weight.shape
        r = check_rank(self.rank, "rank", min(d_in, d_out),
                       what=f"min(num_embeddings, embedding_dim) of {name}")
        layer = LoRAEmbedding(base, r, self.scaling)
        B = torch.empty(d_out, r).normal_(generator=gen)
        layer.set_factors(torch.zeros(r, d_in), B)
        return layer

    def _build_conv2d(self, base: nn.Conv2d, name: str, gen) -> LoRAConv2d:
        if self.init != "lora":
            raise NotImplementedError(
                f"LoRAConfig(init={self.init!r}) is not implemented for torch.nn.Conv2d "
                f"({name}); only init='lora' (with or without rslora) is")
        d_out, c_in, kh, kw = base.weight.shape
        d_in = c_in * kh * kw
        r = check_rank(self.rank, "rank", min(d_in, d_out),
                       what=f"min(out_channels, in_channels·kh·kw) of {name}")
        layer = LoRAConv2d(base, r, self.scaling, dropout=self.dropout)
        A = kaiming_uniform((r, d_in), gen).reshape(r, c_in, kh, kw)
        layer.set_factors(A, torch.zeros(d_out, r, 1, 1))
        return layer


class LoRALinear(AdapterLayer):
    """``y = base(x) + s·((x Aᵀ) Bᵀ)`` with trainable ``lora_A`` (r×d_in) and ``lora_B``
    (d_out×r); ``BA`` is never formed in the forward pass.

    Parameters
    ----------
    base : torch.nn.Linear
        The frozen layer.
    rank : int
        ``r``.
    scaling : float
        ``s``.
    dropout : float
        Dropout rate on the adapter's input in training mode.
    """

    def __init__(self, base: nn.Linear, rank: int, scaling: float, *, dropout: float = 0.0):
        super().__init__(base)
        f = self._factory()
        self.rank, self.scaling, self.dropout = rank, float(scaling), float(dropout)
        self.lora_A = nn.Parameter(torch.zeros(rank, self.in_features, **f))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank, **f))

    @torch.no_grad()
    def set_factors(self, A, B, *, residual: bool = False) -> None:
        """Set ``lora_A`` and ``lora_B``.

        Parameters
        ----------
        A, B : torch.Tensor
            Of the shapes of ``lora_A`` and ``lora_B``.
        residual : bool
            Also replace the base weight ``W`` by ``W − s B A`` (the residual initialisations:
            the output is then unchanged).
        """
        self.lora_A.copy_(A)
        self.lora_B.copy_(B)
        if residual:
            self._subtract_from_base(self.delta_weight())

    def adapter_forward(self, x, base_out):
        # one fused multiply-add for base + s·(xAᵀ)Bᵀ over the flattened leading dimensions
        if self.dropout and self.training:
            x = nn.functional.dropout(x, self.dropout)
        h = x.reshape(-1, self.in_features) @ self.lora_A.mT
        out = torch.addmm(base_out.reshape(-1, self.out_features), h, self.lora_B.mT,
                          alpha=self.scaling)
        return out.view(base_out.shape)

    def delta_weight(self):
        return self.scaling * (self.lora_B.float() @ self.lora_A.float())


class LoRAEmbedding(LoRALinear):
    """LoRA on ``nn.Embedding`` (tokens ``t``): ``y = E[t] + s·(Aᵀ[t]) Bᵀ`` with ``lora_A``
    (r×num_embeddings, zero at init) and ``lora_B`` (embedding_dim×r, standard normal), PEFT's
    convention; the merged table is ``E + s(BA)ᵀ``.

    Parameters
    ----------
    base : torch.nn.Embedding
        The frozen table.
    rank, scaling
        As in :class:`~refimpl.lora.LoRALinear` (``dropout`` is accepted and unused:
        embeddings get no adapter dropout).
    """

    base_types = (nn.Embedding,)

    def adapter_forward(self, x, base_out):
        b = self.base
        after_A = nn.functional.embedding(x, self.lora_A.mT, padding_idx=b.padding_idx,
                                          max_norm=b.max_norm, norm_type=b.norm_type,
                                          scale_grad_by_freq=b.scale_grad_by_freq,
                                          sparse=b.sparse)
        return base_out + (after_A @ self.lora_B.mT) * self.scaling

    def delta_weight(self):
        return super().delta_weight().mT


class LoRAConv2d(AdapterLayer):
    """LoRA on ``nn.Conv2d`` (``groups=1``): ``y = conv(x; W₀) + s·B ⋆ (A ⋆ x)``.

    ``A`` is a convolution ``in_channels → r`` with the base's kernel size, stride, padding,
    dilation and padding mode (``lora_A``, r×c_in×kh×kw, Kaiming-uniform) and ``B`` a 1×1
    convolution ``r → out_channels`` (``lora_B``, c_out×r×1×1, zero at init), PEFT's layout.
    The update of the kernel is ``ΔW = s·(B_mat A_mat)`` reshaped to c_out×c_in×kh×kw, with
    ``A_mat`` the r×(c_in·kh·kw) flattening of ``A``; trainable ``r(c_in·kh·kw + c_out)``.

    Parameters
    ----------
    base : torch.nn.Conv2d
        The frozen convolution, ``groups=1``.
    rank, scaling
        As in :class:`~refimpl.lora.LoRALinear`.
    dropout : float
        Dropout rate on the adapter's input in training mode.

    Raises
    ------
    ValueError
        If ``base.groups != 1``.
    """

    base_types = (nn.Conv2d,)

    def __init__(self, base: nn.Conv2d, rank: int, scaling: float, *, dropout: float = 0.0):
        super().__init__(base)
        if base.groups != 1:
            raise ValueError(f"LoRAConv2d adapts only groups=1 convolutions; got groups="
                             f"{base.groups}")
        f = self._factory()
        d_out, c_in, kh, kw = base.weight.shape
        self.rank, self.scaling, self.dropout = rank, float(scaling), float(dropout)
        self.lora_A = nn.Parameter(torch.zeros(rank, c_in, kh, kw, **f))
        self.lora_B = nn.Parameter(torch.zeros(d_out, rank, 1, 1, **f))

    @torch.no_grad()
    def set_factors(self, A, B) -> None:
        """Set ``lora_A`` (r×c_in×kh×kw) and ``lora_B`` (c_out×r×1×1)."""
        self.lora_A.copy_(A)
        self.lora_B.copy_(B)

    def adapter_forward(self, x, base_out):
        if self.dropout and self.training:
            x = nn.functional.dropout(x, self.dropout)
        # the base's own convolution routine (padding mode, stride, padding, dilation) with A
        h = self.base._conv_forward(x, self.lora_A, None)
        return base_out + nn.functional.conv2d(h, self.lora_B) * self.scaling

    def delta_weight(self):
        B = self.lora_B.float().flatten(1)
        A = self.lora_A.float().flatten(1)
        return (self.scaling * (B @ A)).reshape(self.base.weight.shape)


@dataclass(frozen=True)
class NLoRAConfig(ScaledConfig):
    """Three-factor adapters ``ΔW = s·B N A`` with ``N`` (r×r), ``s = α/r``.

    Attributes
    ----------
    rank, alpha
        As in :class:`LoRAConfig`.
    init : {"slora", "nlora", "inttune"}
        ``"slora"``: A and N Kaiming-uniform, B = 0, all three trained. ``"nlora"``: the
        Nyström (skeleton CUR) factors of ``W`` (:func:`nystrom_factors`) with the residual
        ``W − s B N A`` frozen so that the output is unchanged at step 0, all three trained.
        ``"inttune"``: the NLoRA initialisation with only ``N`` trained.
    seed : int, numpy.random.Generator, torch.Generator or None
        Randomness of the ``"slora"`` initialisation.
    """

    rank: int = 8
    alpha: float | None = None
    init: str = "slora"
    seed: Any = 0

    def __post_init__(self):
        super().__post_init__()
        check_choice(self.init, "init", ("slora", "nlora", "inttune"))

    def builders(self):
        return {NLoRALinear: self.build}

    def prepare(self, targets):
        return torch_generator(self.seed)

    def build(self, base: nn.Linear, name: str, gen) -> NLoRALinear:
        d_out, d_in = base.weight.shape
        r = check_rank(self.rank, "rank", min(d_in, d_out), what=f"min(d_out, d_in) of {name}")
        layer = NLoRALinear(base, r, self.scaling)
        if self.init == "slora":
            A = kaiming_uniform((r, d_in), gen)
            N = kaiming_uniform((r, r), gen)
            layer.set_factors(A, N, torch.zeros(d_out, r))
        else:
            A, N, B, _ = nystrom_factors(base.weight.detach().float(), r, self.scaling)
            layer.set_factors(A, N, B, residual=True)
            if self.init == "inttune":
                layer.lora_A.requires_grad_(False)
                layer.lora_B.requires_grad_(False)
        return layer


def nystrom_factors(W, rank: int, s: float):
    """NLoRA's Nyström factors of ``W``: the skeleton CUR
    ``W ≈ W[:, J] W[I, J]⁻¹ W[I, :]`` with ``I, J`` the pivots of pivoted QR
    (:func:`refimpl.meta.cur`).

    Parameters
    ----------
    W, rank, s
        As in :func:`pissa_factors`; ``rank`` rows and ``rank`` columns are picked.

    Returns
    -------
    NystromFactors
        ``A = W[I, :]``, ``N = W[I, J]⁻¹ / s``, ``B = W[:, J]`` and the frozen residual
        ``W_res = W − s B N A``.

    Raises
    ------
    ValueError
        If ``rank`` is out of range or the core ``W[I, J]`` is singular.
    """
    from refimpl.meta import cur

    W, rank, back = _weight(W, rank)
    c = cur(W, rank, u="skeleton")
    B, N, A = c.C, c.U / s, c.R
    if not bool(torch.isfinite(N).all()):
        raise ValueError("the Nyström core W[I, J] is singular; lower the rank")
    return back(NystromFactors(A, N, B, W - s * (B @ N @ A)))


class NLoRALinear(AdapterLayer):
    """``y = base(x) + s·(((x Aᵀ) Nᵀ) Bᵀ)`` with ``lora_A`` (r×d_in), ``lora_N`` (r×r),
    ``lora_B`` (d_out×r).

    Parameters
    ----------
    base : torch.nn.Linear
        The frozen layer.
    rank, scaling
        As in :class:`~refimpl.lora.LoRALinear`.
    """

    def __init__(self, base: nn.Linear, rank: int, scaling: float):
        super().__init__(base)
        f = self._factory()
        self.rank, self.scaling = rank, float(scaling)
        self.lora_A = nn.Parameter(torch.zeros(rank, self.in_features, **f))
        self.lora_N = nn.Parameter(torch.zeros(rank, rank, **f))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank, **f))

    @torch.no_grad()
    def set_factors(self, A, N, B, *, residual: bool = False) -> None:
        """Set ``lora_A``, ``lora_N`` and ``lora_B``.

        Parameters
        ----------
        A, N, B : torch.Tensor
            Of the shapes of ``lora_A``, ``lora_N`` and ``lora_B``.
        residual : bool
            Also replace the base weight ``W`` by ``W − s B N A``.
        """
        self.lora_A.copy_(A)
        self.lora_N.copy_(N)
        self.lora_B.copy_(B)
        if residual:
            self._subtract_from_base(self.delta_weight())

    @property
    def extra_state_names(self):
        return tuple(n for n in ("lora_A", "lora_B") if not getattr(self, n).requires_grad)

    def adapter_forward(self, x, base_out):
        return base_out + ((x @ self.lora_A.mT) @ (self.scaling * self.lora_N).mT) @ self.lora_B.mT

    def delta_weight(self):
        return self.scaling * (self.lora_B.float() @ self.lora_N.float() @ self.lora_A.float())

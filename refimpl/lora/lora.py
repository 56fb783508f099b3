"""LoRA, rsLoRA and the initialisation family (PiSSA, MiLoRA, OLoRA, CorDA), LoRA on
``nn.Embedding`` and ``nn.Conv2d``, and the three-factor adapters ``ΔW = s B N A`` (SLoRA,
NLoRA, IntTune)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from refimpl import _xp
from refimpl._validation import check_array, check_rank
from refimpl.lora._core import AdapterLayer, kaiming_uniform, torch_generator

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


def _scale(rank: int, alpha: float, rslora: bool) -> float:
    return alpha / math.sqrt(rank) if rslora else alpha / rank


class ScaledConfig:
    """Base of the configurations with ``rank``, ``alpha`` (``None``: α = rank) and, optionally,
    ``rslora``: the update is scaled by α/r, or by α/√r with rsLoRA."""

    @property
    def scaling(self) -> float:
        alpha = self.rank if self.alpha is None else self.alpha
        return _scale(self.rank, alpha, getattr(self, "rslora", False))


def _check_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not alpha > 0 \
            or not math.isfinite(alpha):
        raise ValueError(f"alpha must be a positive finite number; got {alpha!r}")


def pissa_factors(W, r: int, s: float, *, smallest: bool = False, svd: str = "full",
                  n_iter: int = 4, seed=None):
    """PiSSA (and MiLoRA with ``smallest=True``) factors of ``W`` (d_out×d_in).

    With ``W = U S Vᵀ`` and the ``r`` largest (smallest) triplets,
    ``A = √(S_r/s) V_rᵀ``, ``B = U_r √(S_r/s)`` and the frozen residual
    ``W_res = W − s B A``, so ``W_res + s B A = W``. ``svd="randomized"`` uses
    :func:`refimpl.sketch.randomized_svd` with ``n_iter`` power iterations (top triplets only).

    Returns ``(A, B, W_res)`` in fp32.
    """
    W = check_array(W, "W").float()
    r = check_rank(r, "r", min(W.shape))
    if svd == "full":
        U, S, Vh = _xp.svd(W)
        sl = slice(-r, None) if smallest else slice(0, r)
        U, S, Vh = U[:, sl], S[sl], Vh[sl]
    elif svd == "randomized":
        if smallest:
            raise ValueError("the randomized SVD finds the largest triplets only")
        from refimpl.sketch import randomized_svd

        U, S, Vh = randomized_svd(W, r, n_iter=n_iter, seed=seed, backend="torch")
    else:
        raise ValueError(f"svd must be 'full' or 'randomized'; got {svd!r}")
    root = (S / s).sqrt()
    A = root[:, None] * Vh
    B = U * root
    return A, B, W - s * (B @ A)


def olora_factors(W, r: int, s: float):
    """OLoRA: unpivoted QR ``W = Q R``, ``B = Q[:, :r]``, ``A = R[:r]``,
    ``W_res = W − s B A`` (the factors are not divided by ``s``, so the residual depends on
    ``α``, and on the column order of ``W``). Returns ``(A, B, W_res)`` in fp32."""
    W = check_array(W, "W").float()
    r = check_rank(r, "r", min(W.shape))
    Q, R = _xp.qr(W)
    A, B = R[:r].contiguous(), Q[:, :r].contiguous()
    return A, B, W - s * (B @ A)


def corda_damped_covariance(C, *, damp: float = 0.01, tol: float = 0.05, max_doublings: int = 60):
    """Damp a calibration covariance until it inverts accurately: ``C + δ·mean(diag C)·I``
    with ``δ`` doubled from ``damp`` until ``‖(C+δ…)(C+δ…)⁻¹ − I‖_F < tol`` (the rule of the
    CorDA authors' code, also PEFT's). Returns ``(C_damped, C_damped⁻¹)`` in fp32."""
    C = check_array(C, "C").float()
    if C.shape[0] != C.shape[1]:
        raise ValueError(f"C must be square; got shape {tuple(C.shape)}")
    eye = torch.eye(C.shape[0], dtype=C.dtype, device=C.device)
    scale = torch.diagonal(C).mean()
    for _ in range(max_doublings):
        Cd = C + eye * (scale * damp)
        Ci = torch.linalg.inv(Cd)
        if torch.dist(Cd @ Ci, eye).item() < tol:
            return Cd, Ci
        damp *= 2
    raise ValueError("the covariance could not be damped into an invertible matrix")


def corda_factors(W, C, r: int, s: float, *, mode: str = "ipm"):
    """CorDA: SVD of ``W C`` (``C`` the damped input covariance), mapped back so that
    ``W = U S (C⁻¹V)ᵀ`` exactly. IPM (instruction-previewed) adapts the ``r`` largest
    triplets, KPM (knowledge-preserving) the ``r`` smallest; ``A = √(S/s) (C⁻¹V)ᵀ``,
    ``B = U √(S/s)``, ``W_res = W − s B A``. Returns ``(A, B, W_res)`` in fp32."""
    W = check_array(W, "W").float()
    r = check_rank(r, "r", min(W.shape))
    if C.shape != (W.shape[1], W.shape[1]):
        raise ValueError(f"C must be {W.shape[1]}×{W.shape[1]}; got {tuple(C.shape)}")
    Cd, Ci = corda_damped_covariance(C)
    U, S, Vh = _xp.svd(W @ Cd)
    Vh = Vh @ Ci
    if mode == "ipm":
        sl = slice(0, r)
    elif mode == "kpm":
        sl = slice(-r, None)
    else:
        raise ValueError(f"mode must be 'ipm' or 'kpm'; got {mode!r}")
    root = (S[sl] / s).sqrt()
    A = root[:, None] * Vh[sl]
    B = U[:, sl] * root
    return A, B, W - s * (B @ A)


@dataclass(frozen=True)
class LoRAConfig(ScaledConfig):
    """LoRA ``h = W₀x + s·B(Ax)`` with ``s = α/r`` (``α/√r`` with ``rslora=True``).

    ``init``: ``"lora"`` (A Kaiming-uniform from ``seed``, B = 0), ``"pissa"``,
    ``"pissa_rsvd"`` (randomized SVD, ``n_iter`` power iterations), ``"milora"``, ``"olora"``,
    ``"corda_ipm"``, ``"corda_kpm"`` (these need ``covariances`` in :func:`wrap`). All
    initialisations leave the model's output unchanged; the non-``"lora"`` ones do so by
    replacing the base weight with the residual ``W − s B A``. ``alpha`` defaults to ``rank``.
    ``nn.Embedding`` targets get a :class:`LoRAEmbedding` (``init="lora"`` only), ``nn.Conv2d``
    targets a :class:`LoRAConv2d` (``init="lora"`` only, ``groups=1`` only).
    ``dropout`` is applied to the adapter's input only, in training mode (PEFT's
    ``lora_dropout``; Linear and Conv2d targets).
    """

    rank: int = 8
    alpha: float | None = None
    init: str = "lora"
    rslora: bool = False
    dropout: float = 0.0
    n_iter: int = 4
    seed: Any = 0

    def __post_init__(self):
        check_rank(self.rank, "rank", 2**31)
        if self.alpha is not None:
            _check_alpha(self.alpha)
        if not isinstance(self.dropout, int | float) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1); got {self.dropout!r}")
        if self.init not in _INITS:
            raise ValueError(f"init must be one of {_INITS}; got {self.init!r}")

    supports_embedding = True
    supports_conv2d = True

    def prepare(self, targets, covariances):
        if self.init.startswith("corda"):
            if covariances is None or set(targets) - set(covariances):
                missing = sorted(set(targets) - set(covariances or {}))
                raise ValueError(f"CorDA needs covariances for {missing}; "
                                 "compute them with refimpl.lora.input_covariances")
        return {"gen": torch_generator(self.seed), "cov": covariances}

    def build(self, base: nn.Module, name: str, ctx) -> LoRALinear | LoRAEmbedding | LoRAConv2d:
        if isinstance(base, nn.Conv2d):
            return self._build_conv2d(base, name, ctx)
        if isinstance(base, nn.Embedding):
            if self.init != "lora":
                raise ValueError(f"{name} is an embedding: only init='lora' is defined for it")
            d_in, d_out = base.weight.shape
            r = check_rank(self.rank, "rank", min(d_in, d_out),
                           what=f"min(num_embeddings, embedding_dim) of {name}")
            layer = LoRAEmbedding(base, r, self.scaling)
            B = torch.empty(d_out, r).normal_(generator=ctx["gen"])
            layer.set_factors(torch.zeros(r, d_in), B)
            return layer
        d_out, d_in = base.weight.shape
        r = check_rank(self.rank, "rank", min(d_in, d_out), what=f"min(d_out, d_in) of {name}")
        layer = LoRALinear(base, r, self.scaling, dropout=self.dropout)
        if self.init == "lora":
            A = kaiming_uniform((r, d_in), ctx["gen"])
            layer.set_factors(A, torch.zeros(d_out, r))
            return layer
        W, s = base.weight.detach(), self.scaling
        if self.init.startswith("pissa") or self.init == "milora":
            seed = int(torch.randint(2**62, (1,), generator=ctx["gen"]))
            A, B, Wr = pissa_factors(W, r, s, smallest=self.init == "milora",
                                     svd="randomized" if self.init == "pissa_rsvd" else "full",
                                     n_iter=self.n_iter, seed=seed)
        elif self.init == "olora":
            A, B, Wr = olora_factors(W, r, s)
        else:
            C = ctx["cov"][name].to(W.device)
            A, B, Wr = corda_factors(W, C, r, s, mode=self.init[-3:])
        layer.set_factors(A, B, residual=Wr)
        return layer

    def _build_conv2d(self, base: nn.Conv2d, name: str, ctx) -> LoRAConv2d:
        if self.init != "lora":
            raise NotImplementedError(
                f"LoRAConfig(init={self.init!r}) is not implemented for torch.nn.Conv2d "
                f"({name}); only init='lora' (with or without rslora) is")
        d_out, c_in, kh, kw = base.weight.shape
        d_in = c_in * kh * kw
        r = check_rank(self.rank, "rank", min(d_in, d_out),
                       what=f"min(out_channels, in_channels·kh·kw) of {name}")
        layer = LoRAConv2d(base, r, self.scaling, dropout=self.dropout)
        A = kaiming_uniform((r, d_in), ctx["gen"]).reshape(r, c_in, kh, kw)
        layer.set_factors(A, torch.zeros(d_out, r, 1, 1))
        return layer


class LoRALinear(AdapterLayer):
    """``y = base(x) + s·((x Aᵀ) Bᵀ)`` with trainable ``lora_A`` (r×d_in) and ``lora_B``
    (d_out×r); ``BA`` is never formed in the forward pass."""

    def __init__(self, base: nn.Linear, rank: int, scaling: float, *, dropout: float = 0.0):
        super().__init__(base)
        f = self._factory()
        self.rank, self.scaling, self.dropout = rank, float(scaling), float(dropout)
        self.lora_A = nn.Parameter(torch.zeros(rank, self.in_features, **f))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank, **f))

    @torch.no_grad()
    def set_factors(self, A, B, *, residual=None) -> None:
        """Set ``A``, ``B`` (and replace the base weight by ``residual``, if given)."""
        self.lora_A.copy_(A)
        self.lora_B.copy_(B)
        if residual is not None:
            self.base.weight.data = residual.to(**self._factory()).contiguous()

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
    convention; the merged table is ``E + s(BA)ᵀ``."""

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
    """LoRA on ``nn.Conv2d`` (``groups=1``): ``y = conv(x; W₀) + s·B ⋆ (A ⋆ x)`` where ``A`` is a
    convolution ``in_channels → r`` with the base's kernel size, stride, padding, dilation and
    padding mode (``lora_A``, r×c_in×kh×kw, Kaiming-uniform) and ``B`` a 1×1 convolution
    ``r → out_channels`` (``lora_B``, c_out×r×1×1, zero at init), PEFT's layout. The update of
    the kernel is ``ΔW = s·(B_mat A_mat)`` reshaped to c_out×c_in×kh×kw, with ``A_mat`` the
    r×(c_in·kh·kw) flattening of ``A``; trainable ``r(c_in·kh·kw + c_out)``."""

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
        """Set ``A`` (r×c_in×kh×kw) and ``B`` (c_out×r×1×1)."""
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

    ``init="slora"``: A and N Kaiming-uniform, B = 0, all three trained. ``"nlora"``: the
    Nyström (skeleton CUR) factors of ``W`` from :func:`refimpl.meta.cur` (rows and columns
    from pivoted QR): ``B = W[:, J]``, ``N = W[I, J]⁻¹ / s``, ``A = W[I, :]``, with the residual
    ``W − s B N A`` frozen so that the output is unchanged at step 0, all three trained.
    ``"inttune"``: the NLoRA initialisation with only ``N`` trained.
    """

    rank: int = 8
    alpha: float | None = None
    init: str = "slora"
    seed: Any = 0

    def __post_init__(self):
        check_rank(self.rank, "rank", 2**31)
        if self.alpha is not None:
            _check_alpha(self.alpha)
        if self.init not in ("slora", "nlora", "inttune"):
            raise ValueError(f"init must be 'slora', 'nlora' or 'inttune'; got {self.init!r}")

    def prepare(self, targets, covariances):
        return {"gen": torch_generator(self.seed)}

    def build(self, base: nn.Linear, name: str, ctx) -> NLoRALinear:
        d_out, d_in = base.weight.shape
        r = check_rank(self.rank, "rank", min(d_in, d_out), what=f"min(d_out, d_in) of {name}")
        layer = NLoRALinear(base, r, self.scaling)
        if self.init == "slora":
            A = kaiming_uniform((r, d_in), ctx["gen"])
            N = kaiming_uniform((r, r), ctx["gen"])
            layer.set_factors(A, N, torch.zeros(d_out, r))
        else:
            A, N, B, Wr = nystrom_factors(base.weight.detach(), r, self.scaling)
            layer.set_factors(A, N, B, residual=Wr)
            if self.init == "inttune":
                layer.lora_A.requires_grad_(False)
                layer.lora_B.requires_grad_(False)
        return layer


def nystrom_factors(W, r: int, s: float):
    """NLoRA's Nyström factors: skeleton CUR ``W ≈ W[:, J] W[I, J]⁻¹ W[I, :]`` with
    ``I, J`` the pivots of pivoted QR. Returns ``(A, N, B, W_res)`` (fp32) with
    ``A = W[I, :]``, ``N = W[I, J]⁻¹ / s``, ``B = W[:, J]``, ``W_res = W − s B N A``."""
    from refimpl.meta import cur

    W = check_array(W, "W").float()
    r = check_rank(r, "r", min(W.shape))
    c = cur(W, r, u="skeleton")
    B, N, A = c.C, c.U / s, c.R
    if not bool(torch.isfinite(N).all()):
        raise ValueError("the Nyström core W[I, J] is singular; lower the rank")
    return A, N, B, W - s * (B @ N @ A)


class NLoRALinear(AdapterLayer):
    """``y = base(x) + s·(((x Aᵀ) Nᵀ) Bᵀ)`` with ``lora_A`` (r×d_in), ``lora_N`` (r×r),
    ``lora_B`` (d_out×r)."""

    def __init__(self, base: nn.Linear, rank: int, scaling: float):
        super().__init__(base)
        f = self._factory()
        self.rank, self.scaling = rank, float(scaling)
        self.lora_A = nn.Parameter(torch.zeros(rank, self.in_features, **f))
        self.lora_N = nn.Parameter(torch.zeros(rank, rank, **f))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank, **f))

    @torch.no_grad()
    def set_factors(self, A, N, B, *, residual=None) -> None:
        self.lora_A.copy_(A)
        self.lora_N.copy_(N)
        self.lora_B.copy_(B)
        if residual is not None:
            self.base.weight.data = residual.to(**self._factory()).contiguous()

    @property
    def extra_state_names(self):
        return tuple(n for n in ("lora_A", "lora_B") if not getattr(self, n).requires_grad)

    def adapter_forward(self, x, base_out):
        return base_out + ((x @ self.lora_A.mT) @ (self.scaling * self.lora_N).mT) @ self.lora_B.mT

    def delta_weight(self):
        return self.scaling * (self.lora_B.float() @ self.lora_N.float() @ self.lora_A.float())

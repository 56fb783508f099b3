"""LoRA, rsLoRA and the initialisation family (PiSSA, MiLoRA, OLoRA, CorDA; their factors are
computed in :mod:`refimpl.lora.factors`), LoRA on ``nn.Embedding`` and ``nn.Conv2d``, and the
three-factor adapters ``ΔW = s B N A`` (SLoRA, NLoRA, IntTune)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from refimpl._validation import check_choice, check_nonnegative_int, check_rank, check_rate
from refimpl.lora._core import AdapterLayer, Builder, ScaledConfig, kaiming_uniform
from refimpl.lora.factors import corda_factors, nystrom_factors, olora_factors, pissa_factors
from refimpl.seeding import torch_generator

__all__ = [
    "LoRAConfig",
    "LoRAConv2d",
    "LoRAEmbedding",
    "LoRALinear",
    "NLoRAConfig",
    "NLoRALinear",
]

_INITS = ("lora", "pissa", "pissa_rsvd", "milora", "olora", "corda_ipm", "corda_kpm")


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

    def __post_init__(self) -> None:
        super().__post_init__()
        check_rate(self.dropout, "dropout")
        check_choice(self.init, "init", _INITS)
        check_nonnegative_int(self.n_iter, "n_iter")
        if self.covariances is not None and not self.init.startswith("corda"):
            raise ValueError(f"covariances are used by init='corda_ipm' or 'corda_kpm' only; "
                             f"got init={self.init!r}")

    def builders(self) -> dict[type[AdapterLayer], Builder]:
        return {LoRALinear: self.build, LoRAEmbedding: self._build_embedding,
                LoRAConv2d: self._build_conv2d}

    def prepare(self, targets: Mapping[str, nn.Module]) -> torch.Generator:
        if self.init.startswith("corda"):
            missing = sorted(set(targets) - set(self.covariances or {}))
            if missing:
                raise ValueError(f"CorDA needs covariances for {missing}; compute them with "
                                 "refimpl.lora.input_covariances and pass them as "
                                 "LoRAConfig(covariances=...)")
        return torch_generator(self.seed)

    def build(self, base: nn.Linear, name: str, gen: torch.Generator) -> LoRALinear:
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
            C = self.covariances[name].to(W.device)  # type: ignore[index]  # prepare checked it
            A, B, _ = corda_factors(W, C, r, s, mode=self.init[-3:])
        layer.set_factors(A, B, residual=True)
        return layer

    def _build_embedding(self, base: nn.Embedding, name: str,
                         gen: torch.Generator) -> LoRAEmbedding:
        if self.init != "lora":
            raise ValueError(f"{name} is an embedding: only init='lora' is defined for it")
        d_in, d_out = base.weight.shape
        r = check_rank(self.rank, "rank", min(d_in, d_out),
                       what=f"min(num_embeddings, embedding_dim) of {name}")
        # LoRAEmbedding keeps LoRALinear's constructor, with an embedding as its base
        layer = LoRAEmbedding(base, r, self.scaling)  # type: ignore[arg-type]
        B = torch.empty(d_out, r).normal_(generator=gen)
        layer.set_factors(torch.zeros(r, d_in), B)
        return layer

    def _build_conv2d(self, base: nn.Conv2d, name: str, gen: torch.Generator) -> LoRAConv2d:
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

    def __init__(self, base: nn.Linear, rank: int, scaling: float, *,
                 dropout: float = 0.0) -> None:
        super().__init__(base)
        f = self._factory()
        self.rank, self.scaling, self.dropout = rank, float(scaling), float(dropout)
        self.lora_A = nn.Parameter(torch.zeros(rank, self.in_features, **f))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank, **f))

    @torch.no_grad()
    def set_factors(self, A: torch.Tensor, B: torch.Tensor, *, residual: bool = False) -> None:
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

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        # one fused multiply-add for base + s·(xAᵀ)Bᵀ over the flattened leading dimensions
        if self.dropout and self.training:
            x = nn.functional.dropout(x, self.dropout)
        h = x.reshape(-1, self.in_features) @ self.lora_A.mT
        out = torch.addmm(base_out.reshape(-1, self.out_features), h, self.lora_B.mT,
                          alpha=self.scaling)
        return out.view(base_out.shape)

    def delta_weight(self) -> torch.Tensor:
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

    base: nn.Embedding
    base_types = (nn.Embedding,)

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        b = self.base
        after_A = nn.functional.embedding(x, self.lora_A.mT, padding_idx=b.padding_idx,
                                          max_norm=b.max_norm, norm_type=b.norm_type,
                                          scale_grad_by_freq=b.scale_grad_by_freq,
                                          sparse=b.sparse)
        return base_out + (after_A @ self.lora_B.mT) * self.scaling

    def delta_weight(self) -> torch.Tensor:
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

    base: nn.Conv2d
    base_types = (nn.Conv2d,)

    def __init__(self, base: nn.Conv2d, rank: int, scaling: float, *,
                 dropout: float = 0.0) -> None:
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
    def set_factors(self, A: torch.Tensor, B: torch.Tensor) -> None:
        """Set ``lora_A`` (r×c_in×kh×kw) and ``lora_B`` (c_out×r×1×1)."""
        self.lora_A.copy_(A)
        self.lora_B.copy_(B)

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        if self.dropout and self.training:
            x = nn.functional.dropout(x, self.dropout)
        # the base's own convolution routine (padding mode, stride, padding, dilation) with A
        h = self.base._conv_forward(x, self.lora_A, None)
        return base_out + nn.functional.conv2d(h, self.lora_B) * self.scaling

    def delta_weight(self) -> torch.Tensor:
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

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self.init, "init", ("slora", "nlora", "inttune"))

    def builders(self) -> dict[type[AdapterLayer], Builder]:
        return {NLoRALinear: self.build}

    def prepare(self, targets: Mapping[str, nn.Module]) -> torch.Generator:
        return torch_generator(self.seed)

    def build(self, base: nn.Linear, name: str, gen: torch.Generator) -> NLoRALinear:
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

    def __init__(self, base: nn.Linear, rank: int, scaling: float) -> None:
        super().__init__(base)
        f = self._factory()
        self.rank, self.scaling = rank, float(scaling)
        self.lora_A = nn.Parameter(torch.zeros(rank, self.in_features, **f))
        self.lora_N = nn.Parameter(torch.zeros(rank, rank, **f))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank, **f))

    @torch.no_grad()
    def set_factors(self, A: torch.Tensor, N: torch.Tensor, B: torch.Tensor, *,
                    residual: bool = False) -> None:
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
    def extra_state_names(self) -> tuple[str, ...]:  # type: ignore[override]  # computed here
        return tuple(n for n in ("lora_A", "lora_B") if not getattr(self, n).requires_grad)

    def adapter_forward(self, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        return base_out + ((x @ self.lora_A.mT) @ (self.scaling * self.lora_N).mT) @ self.lora_B.mT

    def delta_weight(self) -> torch.Tensor:
        return self.scaling * (self.lora_B.float() @ self.lora_N.float() @ self.lora_A.float())

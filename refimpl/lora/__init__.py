"""Chapter 09: LoRA and its variants, on one adapter mechanism.

Style (one for every method): a frozen configuration dataclass per method
(``LoRAConfig(rank, alpha, init=...)``, ``DoRAConfig``, ``VeRAConfig``, ...) and

    model = wrap(model, target, config)          # in place; returns the model

which freezes every parameter of ``model`` and replaces each ``torch.nn.Linear`` (for LoRA also
``torch.nn.Embedding`` and ``torch.nn.Conv2d``, for FLoRA ``torch.nn.Conv2d``) named by
``target`` (a regex on full names, or a list of names / name suffixes as PEFT's
``target_modules``) by the method's layer (``LoRALinear``, ``LoRAConv2d``, ``DoRALinear``,
``VeRALinear``, ..., all subclasses of :class:`AdapterLayer`, holding the original module as
``.base``). Every configuration derives from :class:`AdapterConfig`; its ``builders()`` is the
one statement of the module kinds it adapts (see ``refimpl.lora._core`` for the protocol).
Then

- ``merge(model)`` / ``unmerge(model)`` (and ``layer.merge()``, ``layer.unmerge()``): fold the
  adapters into the base weights and back; merging is safe by default (refuses NaN/Inf
  results; ``safe=False`` skips the check);
- ``save_adapter(model, path)`` / ``load_adapter(model, path)``: the adapters' tensors only,
  in safetensors;
- ``trainable_parameters(model)``: the count, equal to each method's formula;
- ``input_covariances(model, target, batches)``: calibration covariances for CorDA, passed as
  ``LoRAConfig(init="corda_ipm", covariances=...)``.
- ``save_peft_adapter(model, directory)`` / ``load_peft_adapter(model, directory)``
  (:mod:`refimpl.lora.peft_io`): LoRA, rsLoRA, DoRA, VeRA and the residual initialisations in
  Hugging Face PEFT's adapter-directory format, both ways.

Base weights change only through ``merge`` or a method's documented residual (PiSSA, MiLoRA,
OLoRA, CorDA, NLoRA/IntTune, SVFit, SoKA, DoTA, RiemannLoRA replace ``W`` by ``W − ΔW₀`` so
that the output is unchanged at step 0; LQ-LoRA replaces it by its quantized part).

Modules: ``refimpl.lora._core`` (the protocol), :mod:`~refimpl.lora.model` (``wrap``,
merging, counting, saving, loading, calibration), :mod:`~refimpl.lora.lora` (LoRA, rsLoRA,
PiSSA, MiLoRA, OLoRA, CorDA, SLoRA, NLoRA, IntTune), :mod:`~refimpl.lora.factors` (their
initial factors from the pretrained weight), :mod:`~refimpl.lora.dora` (DoRA with the
factored norm, EDoRA), :mod:`~refimpl.lora.vera` (VeRA), :mod:`~refimpl.lora.singular` (SVFit,
SVFT, QR-LoRA),
:mod:`~refimpl.lora.curlora` (CURLoRA), :mod:`~refimpl.lora.lqlora` (LQ-LoRA and its
quantizers), :mod:`~refimpl.lora.shared` (tier B: LoTR, NoRA, Block-LoRA),
:mod:`~refimpl.lora.kronecker` (tier B: SoKA, on :func:`refimpl.tensor.kron_svd`),
:mod:`~refimpl.lora.riemann` (tier B: RiemannLoRA, trained with
:class:`refimpl.optim.RiemannianSGD`),
:mod:`~refimpl.lora.clover` (tier B: CLOVER on attention pairs),
:mod:`~refimpl.lora.merging` (tier B: Decom-Renorm-Merge of task updates),
:mod:`~refimpl.lora.flora` (tier B: FLoRA, Tucker-format updates of linear and conv layers),
:mod:`~refimpl.lora.dota` (tier B: DoTA, MPO adapters initialised from the weight by
:func:`refimpl.tensor.mpo_decompose`).
Importing this subpackage imports torch.
"""

from refimpl.lora._core import AdapterConfig, AdapterLayer, energy_rank
from refimpl.lora.clover import CLOVERFactors, CLOVERLinear, clover_orthogonalize, clover_wrap
from refimpl.lora.curlora import CURLoRAConfig, CURLoRALinear, curlora_indices
from refimpl.lora.dora import (
    DoRAConfig,
    DoRALinear,
    EDoRAConfig,
    EDoRALinear,
    dora_norm_dense,
    dora_norm_factored,
)
from refimpl.lora.dota import DoTAConfig, DoTALinear
from refimpl.lora.factors import (
    LowRankFactors,
    NystromFactors,
    corda_damped_covariance,
    corda_factors,
    nystrom_factors,
    olora_factors,
    pissa_factors,
)
from refimpl.lora.flora import FLoRAConfig, FLoRAConv2d, FLoRALinear
from refimpl.lora.kronecker import SoKAConfig, SoKALinear
from refimpl.lora.lora import (
    LoRAConfig,
    LoRAConv2d,
    LoRAEmbedding,
    LoRALinear,
    NLoRAConfig,
    NLoRALinear,
)
from refimpl.lora.lqlora import (
    LQDecomposition,
    LQLoRAConfig,
    LQLoRALinear,
    allocate_bits,
    lq_decompose,
    nf_codebook,
    nf_quantize,
    uniform_quantize,
)
from refimpl.lora.merging import DRMDecomposition, drm_decompose, drm_merge
from refimpl.lora.model import (
    adapter_layers,
    input_covariances,
    load_adapter,
    merge,
    save_adapter,
    trainable_parameters,
    unmerge,
    wrap,
)
from refimpl.lora.peft_io import load_peft_adapter, save_peft_adapter
from refimpl.lora.riemann import RiemannLoRAConfig, RiemannLoRALinear
from refimpl.lora.shared import (
    BlockLoRAConfig,
    BlockLoRALinear,
    LoTRConfig,
    LoTRLinear,
    NoRAConfig,
    NoRALinear,
)
from refimpl.lora.singular import (
    QRLoRAConfig,
    QRLoRALinear,
    SVFitConfig,
    SVFitLinear,
    SVFTConfig,
    SVFTLinear,
    svft_pattern,
)
from refimpl.lora.vera import VeRAConfig, VeRALinear

__all__ = [
    "AdapterConfig",
    "AdapterLayer",
    "BlockLoRAConfig",
    "BlockLoRALinear",
    "CLOVERFactors",
    "CLOVERLinear",
    "CURLoRAConfig",
    "CURLoRALinear",
    "DRMDecomposition",
    "DoRAConfig",
    "DoRALinear",
    "DoTAConfig",
    "DoTALinear",
    "EDoRAConfig",
    "EDoRALinear",
    "FLoRAConfig",
    "FLoRAConv2d",
    "FLoRALinear",
    "LQDecomposition",
    "LQLoRAConfig",
    "LQLoRALinear",
    "LoRAConfig",
    "LoRAConv2d",
    "LoRAEmbedding",
    "LoRALinear",
    "LoTRConfig",
    "LoTRLinear",
    "LowRankFactors",
    "NLoRAConfig",
    "NLoRALinear",
    "NoRAConfig",
    "NoRALinear",
    "NystromFactors",
    "QRLoRAConfig",
    "QRLoRALinear",
    "RiemannLoRAConfig",
    "RiemannLoRALinear",
    "SVFTConfig",
    "SVFTLinear",
    "SVFitConfig",
    "SVFitLinear",
    "SoKAConfig",
    "SoKALinear",
    "VeRAConfig",
    "VeRALinear",
    "adapter_layers",
    "allocate_bits",
    "clover_orthogonalize",
    "clover_wrap",
    "corda_damped_covariance",
    "corda_factors",
    "curlora_indices",
    "dora_norm_dense",
    "dora_norm_factored",
    "drm_decompose",
    "drm_merge",
    "energy_rank",
    "input_covariances",
    "load_adapter",
    "load_peft_adapter",
    "lq_decompose",
    "merge",
    "nf_codebook",
    "nf_quantize",
    "nystrom_factors",
    "olora_factors",
    "pissa_factors",
    "save_adapter",
    "save_peft_adapter",
    "svft_pattern",
    "trainable_parameters",
    "uniform_quantize",
    "unmerge",
    "wrap",
]

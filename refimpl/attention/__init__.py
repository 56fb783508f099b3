"""Chapter 11: factored attention and the KV cache.

Every variant is a ``torch.nn.Module`` with a training forward over a sequence, a decoding
forward that appends to an explicit :class:`KVCache` (which reports its size) and
:meth:`~CausalSelfAttention.qkv` (its materialised per-head queries, keys and values, with
which SDPA and the output projection reproduce the training forward); all share one RoPE
(:func:`rope`) and one masked attention kernel (:func:`causal_attention`):

- :class:`MultiHeadAttention`, :class:`GroupedQueryAttention`, :class:`MultiQueryAttention`;
- :class:`MultiHeadLatentAttention` (MLA, with the absorbed-weights inference form);
- :class:`MultiMatrixFactorizationAttention` (MFA; ``key_reuse=True`` for MFA-KR);
- :class:`TensorProductAttention` (TPA);
- :class:`MatryoshkaKVAttention` (orthogonal, truncatable key/value coordinates for the cache
  of an MHA/GQA layer, PCA-initialised);
- :class:`AffinityPooling` (multi-head attention pooling whose heads share one low-rank
  factorization of the affinity, LAMA).

The kernel has two implementations (:data:`IMPLS`): ``"sdpa"``, the default, calls
``torch.nn.functional.scaled_dot_product_attention`` (fused: the scores are never stored);
``"reference"`` is the explicit masked softmax that mirrors the equations. They agree to
rounding. One process-wide default selects the kernel for every layer and model:

- ``with attention_impl("reference"): ...`` runs a block on the reference kernel and restores
  the previous default on exit (also on an error);
- :func:`set_attention_impl` sets the default and returns the previous one;
  :func:`get_attention_impl` reads it;
- ``causal_attention(..., impl="reference")`` chooses for one call.

:func:`kv_cache_elements` and :func:`attention_parameters` are the closed forms the tests
check the modules against. The models, corpora and training loop of the chapter's experiments
(``TinyLM``, ``SnippetClassifier``, ``train_lm``, ...) live in :mod:`refimpl.experiments`.
:mod:`refimpl.attention.linear` holds the linear-time models written as structured matrices
(SSD's semiseparable form; the delta rule of DeltaNet and DeltaProduct), each in quadratic,
recurrent and chunked forms that agree.
"""

from refimpl.attention._core import (
    IMPLS,
    QKV,
    CausalSelfAttention,
    RMSNorm,
    attention_impl,
    causal_attention,
    get_attention_impl,
    set_attention_impl,
)
from refimpl.attention.affinity import AffinityPooling, affinity_parameters
from refimpl.attention.cache import KVCache
from refimpl.attention.formulas import (
    KINDS,
    attention_parameters,
    decode_attention_flops,
    kv_cache_elements,
    make_attention,
)
from refimpl.attention.linear import (
    delta_product_chunked,
    delta_product_recurrent,
    delta_rule_chunked,
    delta_rule_recurrent,
    ssd_chunked,
    ssd_matrix,
    ssd_quadratic,
    ssd_recurrent,
)
from refimpl.attention.matryoshka import MatryoshkaKVAttention, pca_basis
from refimpl.attention.mfa import MultiMatrixFactorizationAttention
from refimpl.attention.mla import MultiHeadLatentAttention
from refimpl.attention.rope import RotaryEmbedding, rope
from refimpl.attention.standard import (
    GroupedQueryAttention,
    MultiHeadAttention,
    MultiQueryAttention,
)
from refimpl.attention.tpa import TensorProductAttention

__all__ = [
    "IMPLS",
    "KINDS",
    "QKV",
    "AffinityPooling",
    "CausalSelfAttention",
    "GroupedQueryAttention",
    "KVCache",
    "MatryoshkaKVAttention",
    "MultiHeadAttention",
    "MultiHeadLatentAttention",
    "MultiMatrixFactorizationAttention",
    "MultiQueryAttention",
    "RMSNorm",
    "RotaryEmbedding",
    "TensorProductAttention",
    "affinity_parameters",
    "attention_impl",
    "attention_parameters",
    "causal_attention",
    "decode_attention_flops",
    "delta_product_chunked",
    "delta_product_recurrent",
    "delta_rule_chunked",
    "delta_rule_recurrent",
    "get_attention_impl",
    "kv_cache_elements",
    "make_attention",
    "pca_basis",
    "rope",
    "set_attention_impl",
    "ssd_chunked",
    "ssd_matrix",
    "ssd_quadratic",
    "ssd_recurrent",
]

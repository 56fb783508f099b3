"""refimpl: reference implementations of matrix and tensor factorizations.

The package that the book imports. ``import refimpl`` is cheap: NumPy is the only
heavy import; torch and numba are imported by the modules that need them, when
they first need them.

Subpackages (imported on first attribute access, e.g. ``refimpl.meta``):

- ``refimpl.meta``      -- chapter 01, meta-factorization and hidden projectors
- ``refimpl.linalg``    -- chapter 02, classical decompositions
- ``refimpl.sketch``    -- chapter 03, randomized and sketching methods
- ``refimpl.nonneg``    -- chapter 04, nonnegative factorizations (NMF, semi-NMF, NNDSVD)
- ``refimpl.completion`` -- chapter 05, completion, recommenders and embeddings
- ``refimpl.tensor``    -- chapter 06, tensor decompositions (TT/MPO, Kronecker, Tucker-2)
- ``refimpl.lora``      -- chapter 09, LoRA and its variants
- ``refimpl.optim``     -- chapter 10, optimizers (Riemannian SGD)
- ``refimpl.attention`` -- chapter 11, factored attention and the KV cache
- ``refimpl.experiments`` -- the experiment harness: corpora, small models, training, probes
- ``refimpl.matrices``  -- test matrices with prescribed spectra
"""

from __future__ import annotations

import importlib
from types import ModuleType

from refimpl._version import __version__
from refimpl.backend import default_device, resolve_backend
from refimpl.seeding import as_generator, seed_everything

_SUBPACKAGES = ("attention", "completion", "experiments", "linalg", "lora", "matrices", "meta",
                "nonneg", "optim", "reporting", "sketch", "tensor")

__all__ = [
    "__version__",
    "as_generator",
    "default_device",
    "resolve_backend",
    "seed_everything",
    *_SUBPACKAGES,
]


def __getattr__(name: str) -> ModuleType:
    if name in _SUBPACKAGES:
        module = importlib.import_module(f"refimpl.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'refimpl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

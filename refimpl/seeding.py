"""Seeding: every random choice in refimpl goes through an explicit seed or generator."""

from __future__ import annotations

import random
import sys

import numpy as np

SeedLike = int | np.random.Generator | None


def as_generator(seed: SeedLike = None) -> np.random.Generator:
    """Return a NumPy ``Generator``: ``seed`` itself if it is one, else ``default_rng(seed)``."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise TypeError(
            f"seed must be an int, a numpy.random.Generator or None; got {type(seed).__name__}"
        )
    return np.random.default_rng(seed)


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's legacy global state and, if it is imported, torch.

    refimpl's own functions never read global random state (they take ``seed``);
    this is for notebooks and user code that do.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int; got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeding the legacy global state is the point
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)

"""Seeding: every random choice in refimpl goes through an explicit seed or generator."""

from __future__ import annotations

import random
import sys
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from refimpl._typing import TorchSeed

__all__ = ["SeedLike", "as_generator", "seed_everything", "torch_generator"]

#: What every ``seed=`` argument accepts: an int, a NumPy ``Generator`` or ``None``.
SeedLike = int | np.random.Generator | None


def as_generator(seed: SeedLike = None) -> np.random.Generator:
    """Return a NumPy ``Generator``: ``seed`` itself if it is one, else ``default_rng(seed)``.

    Parameters
    ----------
    seed : int, numpy.random.Generator or None
        ``None`` draws fresh entropy from the operating system.

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    TypeError
        If ``seed`` is of another type.
    """
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

    Parameters
    ----------
    seed : int
        The seed.

    Raises
    ------
    TypeError
        If ``seed`` is not an int.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int; got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeding the legacy global state is the point
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def torch_generator(seed: TorchSeed = None) -> torch.Generator:
    """A CPU ``torch.Generator`` for a seed, the way every torch path of refimpl draws.

    Parameters
    ----------
    seed : int, numpy.random.Generator, torch.Generator or None
        A ``torch.Generator`` is returned as it is; an int seeds a new one directly
        (``torch.Generator().manual_seed(seed)``, the stream torch users expect); a NumPy
        generator or ``None`` (fresh entropy) draws the seed from :func:`as_generator`.

    Returns
    -------
    torch.Generator

    Raises
    ------
    TypeError
        If ``seed`` is of another type.
    """
    import torch

    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool):
        return torch.Generator().manual_seed(int(seed))
    return torch.Generator().manual_seed(int(as_generator(seed).integers(2**62)))

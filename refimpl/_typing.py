"""Type aliases shared by refimpl's annotations (one place for them).

Importing this module imports NumPy only: torch and SciPy appear in the aliases as strings,
which only type checkers resolve (``import refimpl`` must not import torch or SciPy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from refimpl.seeding import SeedLike

if TYPE_CHECKING:
    import scipy.sparse
    import torch

__all__ = ["AdaptedModule", "Array", "ArrayLike", "ArrayT", "DTypeLike", "FloatArray",
           "NDArray", "SVDFactors", "SeedLike", "Shape", "SparseMatrix", "TorchSeed"]

#: A NumPy array or a torch tensor: what a function with a NumPy and a torch path takes.
Array: TypeAlias = Union[np.ndarray, "torch.Tensor"]

#: The kind of array a function was given, for one that returns that kind (NumPy in, NumPy
#: out; torch in, torch out): ``def f(A: ArrayT) -> ArrayT``.
ArrayT = TypeVar("ArrayT", bound=Array)

#: A NumPy array of floating dtype (float32 or float64).
FloatArray: TypeAlias = NDArray[np.floating]

#: A SciPy sparse matrix or array.
SparseMatrix: TypeAlias = Union["scipy.sparse.sparray", "scipy.sparse.spmatrix"]

#: A module that an adapter layer of :mod:`refimpl.lora` wraps (each layer class narrows it
#: to its ``base_types``).
AdaptedModule: TypeAlias = Union["torch.nn.Linear", "torch.nn.Embedding", "torch.nn.Conv2d"]

#: A shape: a sequence of non-negative ints.
Shape: TypeAlias = Sequence[int]

#: What a torch path draws from: a seed as for NumPy, or a ``torch.Generator``
#: (see :func:`refimpl.seeding.torch_generator`).
TorchSeed: TypeAlias = Union[SeedLike, "torch.Generator"]


class SVDFactors(Protocol):
    """Anything that holds thin SVD factors ``U``, ``s``, ``Vt`` (``A ≈ U diag(s) Vt``).

    :class:`refimpl.linalg.TruncatedSVD` is one; so is any result with those three fields.
    """

    @property
    def U(self) -> Any:
        """(m, r) left singular vectors."""

    @property
    def s(self) -> Any:
        """(r,) singular values."""

    @property
    def Vt(self) -> Any:
        """(r, n) right singular vectors, transposed."""

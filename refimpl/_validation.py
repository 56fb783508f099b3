"""Input validation shared across refimpl.

Every public function checks its inputs here, early, and raises an error that names
the argument, what was expected and what was given.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar, overload

import numpy as np

from refimpl._typing import Array
from refimpl.backend import is_torch_tensor

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


def _dtype_name(x: Any) -> str:
    return str(x.dtype).replace("torch.", "")


@overload
def check_array(x: torch.Tensor, name: str, *, ndim: int | tuple[int, ...] = ...,
                batch: bool = ..., allow_torch: bool = ..., finite: bool = ...) -> torch.Tensor: ...
@overload
def check_array(x: object, name: str, *, ndim: int | tuple[int, ...] = ..., batch: bool = ...,
                allow_torch: bool = ..., finite: bool = ...) -> Array: ...
def check_array(x: object, name: str, *, ndim: int | tuple[int, ...] = 2, batch: bool = False,
                allow_torch: bool = True, finite: bool = True) -> Array:
    """Validate a real floating-point matrix (or batch of matrices) and return it.

    NumPy inputs (and array-likes such as nested lists) come back as ``numpy.ndarray``
    without copying when possible; torch tensors come back unchanged.

    Parameters
    ----------
    x : array-like or torch.Tensor
    name : str
        The argument's name, used in error messages.
    ndim : int or tuple of int
        Accepted numbers of dimensions (ignored when ``batch`` is true).
    batch : bool
        Accept any number of leading batch dimensions before the last two.
    allow_torch : bool
        Whether a torch tensor is acceptable.
    finite : bool
        Reject NaN and Inf.
    """
    if is_torch_tensor(x):
        if not allow_torch:
            raise TypeError(f"{name} must be a NumPy array here; got a torch tensor")
        if x.is_complex():
            raise TypeError(f"{name} must be real; complex dtype {_dtype_name(x)} is not supported")
        if not x.is_floating_point():
            raise TypeError(
                f"{name} must have a floating-point dtype; got {_dtype_name(x)} "
                f"(convert with {name}.double() or {name}.float())"
            )
    else:
        if x is None:
            raise TypeError(f"{name} must be an array; got None")
        x = np.asarray(x)
        if x.dtype == object:
            raise TypeError(f"{name} must be a numeric array; got dtype object")
        if np.iscomplexobj(x):
            raise TypeError(f"{name} must be real; complex dtype {x.dtype} is not supported")
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(
                f"{name} must have a floating-point dtype; got {x.dtype} "
                f"(convert with {name}.astype(float))"
            )
    if batch:
        if x.ndim < 2:
            raise ValueError(
                f"{name} must be a matrix or a batch of matrices (ndim >= 2); got shape "
                f"{tuple(x.shape)}"
            )
    else:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{name} must have {want} dimensions; got shape {tuple(x.shape)}")
    if any(s == 0 for s in x.shape):
        raise ValueError(f"{name} must not be empty; got shape {tuple(x.shape)}")
    if finite:
        ok = bool(x.isfinite().all()) if is_torch_tensor(x) else bool(np.isfinite(x).all())
        if not ok:
            raise ValueError(f"{name} contains NaN or Inf")
    return x


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {type(value).__name__} {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}; got {value}")
    return value


def check_positive_int(value: object, name: str) -> int:
    """An integer ``>= 1`` (counts, dimensions, ranks with no natural upper bound)."""
    return _check_int(value, name, 1)


def check_nonnegative_int(value: object, name: str) -> int:
    """An integer ``>= 0`` (iteration counts, oversampling)."""
    return _check_int(value, name, 0)


def check_rank(k: object, name: str, upper: int, *, what: str = "min(m, n)") -> int:
    """Validate a target rank: an integer with ``1 <= k <= upper``.

    ``what`` names the bound in the error message (``"rank=9 exceeds min(m, n)=8"``). For a
    rank whose bound is only known later (a config's rank before it meets a layer) use
    :func:`check_positive_int` now and this function when the shape is known.
    """
    k = _check_int(k, name, 1)
    if k > upper:
        raise ValueError(f"{name}={k} exceeds {what}={upper}")
    return k


def check_choice(value: Any, name: str, choices: Iterable[T]) -> T:
    """One of a fixed set of options (usually strings); returns it."""
    choices = tuple(choices)
    try:
        ok = value in choices
    except TypeError:  # unhashable or incomparable value
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")
    return value


def check_float_dtype(dtype: Any, name: str = "dtype") -> np.dtype[Any]:
    """A NumPy real floating dtype the compiled kernels take (float32 or float64); returns it."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be a NumPy dtype; got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{name} must be float32 or float64; got {dt}")
    return dt


def check_nonnegative(x: Any, name: str) -> None:
    """Refuse an array (NumPy or torch) with a negative entry, naming its smallest entry."""
    low = float(x.min())
    if low < 0:
        raise ValueError(f"{name} must be nonnegative; its smallest entry is {low!r}")


def check_positive(value: object, name: str, *, allow_zero: bool = False) -> float:
    """A finite real number ``> 0`` (``>= 0`` with ``allow_zero``): tolerances, scales, rates."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}; got {value!r}")
    return value


def check_fraction(value: object, name: str) -> float:
    """A real number in ``(0, 1]`` (energy thresholds, sampling fractions, keep ratios)."""
    value = check_positive(value, name)
    if value > 1:
        raise ValueError(f"{name} must lie in (0, 1]; got {value!r}")
    return value


def check_square(A: Array, name: str) -> None:
    """Raise ``ValueError`` unless the last two axes of ``A`` have equal length."""
    if A.shape[-1] != A.shape[-2]:
        raise ValueError(f"{name} must be square; got shape {tuple(A.shape)}")


def check_symmetric(A: Array, name: str) -> None:
    """Raise ``ValueError`` unless ``A`` is square and ``‖A − Aᵀ‖_F ≤ 100 n ε ‖A‖_F``."""
    from refimpl import _xp

    check_square(A, name)
    gap = _xp.fro(A - _xp.mT(A))
    scale = 100 * A.shape[-1] * _xp.eps(A) * _xp.fro(A)
    bad = bool((gap > scale).any()) if is_torch_tensor(gap) else bool(np.any(gap > scale))
    if bad:
        rel = float((gap / _xp.fro(A)).max())
        raise ValueError(f"{name} must be symmetric; ‖{name} − {name}ᵀ‖_F / ‖{name}‖_F = "
                         f"{rel:.2e}")


def check_same_kind(name_a: str, a: object, name_b: str, b: object) -> None:
    """Refuse to mix NumPy arrays and torch tensors in one call."""
    if is_torch_tensor(a) != is_torch_tensor(b):
        kinds = {True: "a torch tensor", False: "a NumPy array"}
        raise TypeError(
            f"{name_a} is {kinds[is_torch_tensor(a)]} but {name_b} is "
            f"{kinds[is_torch_tensor(b)]}; pass both as the same kind"
        )


def check_rows(name_a: str, a: Array, name_b: str, b: Array, *, axis_a: int = -2,
               axis_b: int = -2) -> None:
    """Check that two arrays agree in the length of the given axes."""
    if a.shape[axis_a] != b.shape[axis_b]:
        raise ValueError(
            f"{name_b} must have {a.shape[axis_a]} rows to match {name_a} "
            f"(shape {tuple(a.shape)}); got shape {tuple(b.shape)}"
        )


def check_divides(small: int, small_name: str, big: int, big_name: str) -> None:
    """Raise ``ValueError`` unless ``small`` divides ``big`` (head counts, widths, groups).

    The message shows the remainder: ``"n_heads=4 must divide d_model=30 (30 = 7·4 + 2)"``.
    """
    if big % small:
        raise ValueError(
            f"{small_name}={small} must divide {big_name}={big} "
            f"({big} = {big // small}·{small} + {big % small})"
        )


def check_rate(value: object, name: str) -> float:
    """A real number in ``[0, 1)``: dropout and pruning rates, relative thresholds."""
    value = check_positive(value, name, allow_zero=True)
    if value >= 1:
        raise ValueError(f"{name} must lie in [0, 1); got {value!r}")
    return value


def check_tokens(tokens: object, name: str, *, ndim: int, vocab_size: int | None = None,
                 length: int | None = None) -> None:
    """Token ids: a non-empty int32/int64 torch tensor with ``ndim`` dimensions, its last axis
    of length ``length`` and its ids in ``[0, vocab_size)`` when those are given."""
    if not is_torch_tensor(tokens) or _dtype_name(tokens) not in ("int64", "int32"):
        raise TypeError(f"{name} must be an integer torch tensor with {ndim} dimension(s); got "
                        f"{type(tokens).__name__}")
    if tokens.ndim != ndim or tokens.numel() == 0:
        raise ValueError(f"{name} must be a non-empty tensor with {ndim} dimension(s); got "
                         f"shape {tuple(tokens.shape)}")
    if length is not None and tokens.shape[-1] != length:
        raise ValueError(f"{name} must have {length} columns (the context); got shape "
                         f"{tuple(tokens.shape)}")
    if vocab_size is not None and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size):
        raise ValueError(f"{name} must lie in [0, {vocab_size})")

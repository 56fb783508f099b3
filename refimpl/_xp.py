"""The few array operations refimpl needs, written once for NumPy arrays and torch tensors.

Functions take NumPy arrays or torch tensors (with any leading batch dimensions for the
torch path) and return the same kind. Torch is only touched when a tensor is passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, overload

import numpy as np

from refimpl._typing import Array, ArrayLike, ArrayT, Shape
from refimpl.backend import is_torch_tensor

if TYPE_CHECKING:
    import torch

# The helpers that return their input's kind are typed ``(a: ArrayT) -> ArrayT``. Each branch
# on is_torch_tensor returns that kind, which mypy cannot map back to ArrayT: those returns
# carry ``type: ignore[return-value]``.


def mT(a: ArrayT) -> ArrayT:
    """Transpose the last two axes."""
    return a.mT if is_torch_tensor(a) else np.swapaxes(a, -1, -2)  # type: ignore[return-value]


def linalg(a: Array) -> ModuleType:
    if is_torch_tensor(a):
        import torch

        return torch.linalg
    return np.linalg


def solve(a: ArrayT, b: ArrayT) -> ArrayT:
    return linalg(a).solve(a, b)


def pinv(a: ArrayT, rtol: float | None = None) -> ArrayT:
    if is_torch_tensor(a):
        import torch

        return torch.linalg.pinv(a, rtol=rtol) if rtol is not None else torch.linalg.pinv(a)
    return (np.linalg.pinv(a, rtol=rtol)  # type: ignore[return-value]
            if rtol is not None else np.linalg.pinv(a))


def qr(a: ArrayT) -> tuple[ArrayT, ArrayT]:
    """Reduced QR."""
    return linalg(a).qr(a)


def svd(a: ArrayT) -> tuple[ArrayT, ArrayT, ArrayT]:
    """Thin SVD: ``U, s, Vt`` (``A = U diag(s) Vt``)."""
    return linalg(a).svd(a, full_matrices=False)


def cond(a: ArrayT) -> ArrayT:
    """2-norm condition number of the last two axes (inf for singular matrices)."""
    s: Any = linalg(a).svdvals(a) if is_torch_tensor(a) else np.linalg.svd(a, compute_uv=False)
    smax = s[..., 0]
    smin = s[..., -1]
    if is_torch_tensor(a):
        import torch

        return torch.where(smin > 0, smax / smin,  # type: ignore[return-value]
                           torch.full_like(smax, float("inf")))
    with np.errstate(divide="ignore"):
        return np.where(smin > 0,  # type: ignore[return-value]
                        smax / np.where(smin > 0, smin, 1.0), np.inf)


def fro(a: ArrayT) -> ArrayT:
    """Frobenius norm over the last two axes."""
    return linalg(a).matrix_norm(a) if is_torch_tensor(a) else np.linalg.norm(a, axis=(-2, -1))


def eye_like(n: int, a: ArrayT) -> ArrayT:
    if is_torch_tensor(a):
        import torch

        return torch.eye(n, dtype=a.dtype, device=a.device)  # type: ignore[return-value]
    return np.eye(n, dtype=a.dtype)  # type: ignore[return-value]


def zeros_like_shape(shape: Shape, a: ArrayT) -> ArrayT:
    if is_torch_tensor(a):
        import torch

        return torch.zeros(shape, dtype=a.dtype, device=a.device)  # type: ignore[return-value]
    return np.zeros(shape, dtype=a.dtype)  # type: ignore[return-value]


def eps(a: Array) -> float:
    if is_torch_tensor(a):
        import torch

        return float(torch.finfo(a.dtype).eps)
    return float(np.finfo(a.dtype).eps)


def stack(arrays: Sequence[ArrayT], axis: int = 0) -> ArrayT:
    """Stack arrays of one kind (NumPy or torch) along a new axis."""
    if is_torch_tensor(arrays[0]):
        import torch

        # every item has the kind of the first
        return torch.stack(list(arrays), dim=axis)  # type: ignore[arg-type, return-value]
    return np.stack(arrays, axis=axis)  # type: ignore[return-value]


def to_numpy(a: ArrayLike | torch.Tensor) -> np.ndarray:
    return a.detach().cpu().numpy() if is_torch_tensor(a) else np.asarray(a)


def to_torch(a: ArrayLike, device: str | torch.device | None = None) -> torch.Tensor:
    import torch

    return torch.as_tensor(np.ascontiguousarray(a), device=device)


def take_cols(A: ArrayT, idx: Array) -> ArrayT:
    """``A[..., :, idx]`` with ``idx`` of shape (k,) or, for batches, (..., k)."""
    if is_torch_tensor(A) and idx.ndim > 1:
        import torch

        # idx is a tensor when A is one (mypy cannot tie their kinds)
        return torch.take_along_dim(  # type: ignore[return-value]
            A, idx.unsqueeze(-2), dim=-1)  # type: ignore[union-attr]
    return A[..., :, idx]  # type: ignore[return-value]


def take_rows(A: ArrayT, idx: Array) -> ArrayT:
    """``A[..., idx, :]`` with ``idx`` of shape (k,) or, for batches, (..., k)."""
    if is_torch_tensor(A) and idx.ndim > 1:
        import torch

        # idx is a tensor when A is one (mypy cannot tie their kinds)
        return torch.take_along_dim(  # type: ignore[return-value]
            A, idx.unsqueeze(-1), dim=-2)  # type: ignore[union-attr]
    return A[..., idx, :]  # type: ignore[return-value]


def selector(n: int, idx: Array, like: ArrayT) -> ArrayT:
    """The n×k matrix S with ``S[idx[j], j] = 1``, so that ``A @ S = A[:, idx]``."""
    if is_torch_tensor(like):
        import torch

        eye = torch.eye(n, dtype=like.dtype, device=like.device)
        if idx.ndim > 1:
            return torch.take_along_dim(  # type: ignore[return-value]
                eye.expand(*idx.shape[:-1], n, n),
                idx.unsqueeze(-2),  # type: ignore[union-attr]  # idx is a tensor, as like
                dim=-1)
        return eye[:, idx]  # type: ignore[return-value]
    return np.eye(n, dtype=like.dtype)[:, idx]  # type: ignore[return-value]


def as_path(A: Array, path: str) -> Array:
    """Move ``A`` to the array kind that ``path`` computes with (torch for "torch")."""
    if path == "torch" and not is_torch_tensor(A):
        from refimpl.backend import default_device

        return to_torch(A, device=default_device())
    if path != "torch" and is_torch_tensor(A):
        return to_numpy(A)
    return A


def float_dtype(a: Array) -> np.dtype:
    """The NumPy floating dtype that matches ``a``: float32 for float32 input, else float64."""
    name = str(a.dtype).replace("torch.", "")
    return np.dtype(np.float32) if name == "float32" else np.dtype(np.float64)


def astype(a: ArrayT, dtype: Any) -> ArrayT:
    """``a`` in ``dtype`` (a NumPy dtype for arrays, a torch dtype for tensors); no copy when
    it already has it."""
    if is_torch_tensor(a):
        return a.to(dtype)  # type: ignore[return-value]
    return a.astype(dtype, copy=False)  # type: ignore[return-value]


def triu(a: ArrayT, k: int = 0) -> ArrayT:
    """Upper triangle of the last two axes."""
    if is_torch_tensor(a):
        import torch

        return torch.triu(a, k)  # type: ignore[return-value]
    return np.triu(a, k)


def inverse_permutation(perm: ArrayT) -> ArrayT:
    """``inv`` with ``inv[perm[j]] = j`` (over the last axis, batched on torch)."""
    if is_torch_tensor(perm):
        import torch

        return torch.argsort(perm, dim=-1)  # type: ignore[return-value]
    return np.argsort(perm, axis=-1)  # type: ignore[return-value]


def unpermute_cols(X: ArrayT, perm: Array) -> ArrayT:
    """Undo a column permutation: ``Y`` with ``Y[..., :, perm] = X``."""
    return take_cols(X, inverse_permutation(perm))


@overload
def to_path(x: Array, path: Literal["torch"], like: Array | None = None) -> torch.Tensor: ...
@overload
def to_path(x: Array, path: str, like: Array | None = None) -> Array: ...
def to_path(x: Array, path: str, like: Array | None = None) -> Array:
    """Move ``x`` to the array kind of ``path``; on torch, onto ``like``'s device and dtype."""
    if path == "torch" and is_torch_tensor(like) and not is_torch_tensor(x):
        x = to_torch(x, device=like.device)  # straight onto like's device
    x = as_path(x, path)
    if like is not None and is_torch_tensor(x) and is_torch_tensor(like):
        x = x.to(device=like.device,
                  dtype=like.dtype if x.is_floating_point() else x.dtype)
    return x


def _returner(A: Array) -> Callable[[Any], Any]:
    """A function that gives back an array, tensor or (nested) result as ``A``'s kind.

    Floating fields take ``A``'s floating dtype (and, for torch, its device); integer
    fields (permutations, indices) keep their integer dtype; scalars, strings, ``None``
    and :class:`refimpl.results.Info` pass through unchanged.
    """
    torch_in = is_torch_tensor(A)
    want: Any = A.dtype  # a NumPy or a torch dtype, as torch_in says

    def convert(x: Any) -> Any:
        if x is None or isinstance(x, bool | int | float | str):
            return x
        if isinstance(x, tuple):
            if getattr(type(x), "_passthrough", False):
                return x
            items = (convert(v) for v in x)
            return type(x)(*items) if hasattr(x, "_fields") else tuple(items)
        if isinstance(x, list):
            return [convert(v) for v in x]
        if torch_in:
            import torch

            if not is_torch_tensor(x):
                x = torch.as_tensor(np.ascontiguousarray(x), device=A.device)
            elif x.device != A.device:
                x = x.to(A.device)
            return x.to(want) if x.is_floating_point() and x.dtype != want else x
        x = to_numpy(x)
        if np.issubdtype(x.dtype, np.floating) and x.dtype != want:
            return x.astype(want)
        return x

    return convert


class Prepared(NamedTuple):
    """What :func:`prepare` hands a decomposition: the input on its path and the way back."""

    A: Any
    """The validated input, moved to the array kind of ``path``."""
    path: str
    """The resolved backend: one of the function's ``paths``."""
    back: Callable[[Any], Any]
    """Returns a result (array, NamedTuple of arrays, nested) as the caller's kind and dtype."""


def prepare(A: object, name: str = "A", *, backend: str = "auto",
            paths: tuple[str, ...] = ("numpy", "torch"), prefer: str = "numpy",
            ndim: int | tuple[int, ...] = 2, batch: bool | None = None,
            finite: bool = True) -> Prepared:
    """Validate the main input, resolve the backend and move the input to that path.

    This is the first line of every decomposition (see CONTRIBUTING.md)::

        A, path, back = _xp.prepare(A, backend=backend, paths=("numpy", "numba", "torch"),
                                    prefer="numba")
        ...                                   # compute on A with the chosen path
        return back(Result(Q, R, perm))       # NumPy in -> NumPy out; torch in -> torch out

    Parameters
    ----------
    A : array-like or torch.Tensor
        The main input; checked with :func:`refimpl._validation.check_array`.
    name : str
        Its argument name, for error messages.
    backend : {"auto", "numpy", "numba", "torch"}
        What the caller asked for; resolved by :func:`refimpl.backend.resolve_backend`.
    paths : tuple of str
        The paths the function implements.
    prefer : str
        The path ``"auto"`` takes for NumPy input.
    ndim : int or tuple of int
        Accepted numbers of dimensions.
    batch : bool, optional
        Accept leading batch dimensions. Default: for torch tensors only, and only when the
        resolved path is ``"torch"`` (other paths then raise ``ValueError``).
    finite : bool
        Reject NaN and Inf.

    Returns
    -------
    Prepared
        ``(A, path, back)``: the input as the array kind of ``path`` (a torch path keeps a
        tensor's device and dtype and puts NumPy input on :func:`refimpl.default_device`),
        the path, and ``back``, which returns any result as the caller's kind, device and
        floating dtype.
    """
    from refimpl._validation import check_array
    from refimpl.backend import resolve_backend

    torch_in = is_torch_tensor(A)
    X = check_array(A, name, ndim=ndim, batch=torch_in if batch is None else batch,
                    finite=finite)
    path = resolve_backend(backend, X, available=paths, prefer=prefer)
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if path != "torch" and X.ndim not in allowed:
        raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions on the "
                         f"{path} path (batches run on backend='torch'); got shape "
                         f"{tuple(X.shape)}")
    return Prepared(as_path(X, path), path, _returner(X))


def operand(x: object, name: str, like: ArrayT, like_name: str = "A", *,
            ndim: int | tuple[int, ...] = 2) -> ArrayT:
    """Validate a secondary input (``B``, ``W``, ``Omega``, ...) and put it beside ``like``.

    ``x`` is checked with :func:`refimpl._validation.check_array` (a torch tensor may carry
    batch dimensions), must be the same kind of array as ``like`` (NumPy or torch; else
    ``TypeError``) and comes back on ``like``'s device and, if floating, in its dtype.
    ``like`` is the main input as the caller passed it, or as :func:`prepare` returned it
    for a function whose path always keeps the caller's kind (no ``backend`` argument).
    """
    from refimpl._validation import check_array, check_same_kind

    x = check_array(x, name, ndim=ndim, batch=is_torch_tensor(x))
    check_same_kind(like_name, like, name, x)
    # to_path returns like's kind (mypy cannot tie the two)
    return to_path(x, "torch" if is_torch_tensor(like) else "numpy",  # type: ignore[return-value]
                   like=like)


def permute(a: ArrayT, axes: Sequence[int]) -> ArrayT:
    """Reorder all axes: ``a.transpose(axes)`` for NumPy, ``a.permute(axes)`` for torch."""
    return (a.permute(*axes) if is_torch_tensor(a)  # type: ignore[return-value]
            else np.transpose(a, axes))


def einsum(spec: str, *operands: ArrayT) -> ArrayT:
    """:func:`numpy.einsum` or :func:`torch.einsum`, by the kind of the first operand."""
    if is_torch_tensor(operands[0]):
        import torch

        return torch.einsum(spec, *operands)  # type: ignore[return-value]
    return np.einsum(spec, *operands)


def linalg_float(a: ArrayT) -> ArrayT:
    """``a`` in a dtype that LAPACK and ``torch.linalg`` accept: float32 and float64 as they
    are, lower precisions (float16, bfloat16) as float32."""
    if str(a.dtype).replace("torch.", "") in ("float32", "float64"):
        return a
    return a.float() if is_torch_tensor(a) else a.astype(np.float32)  # type: ignore[return-value]

"""The few array operations refimpl needs, written once for NumPy arrays and torch tensors.

Functions take NumPy arrays or torch tensors (with any leading batch dimensions for the
torch path) and return the same kind. Torch is only touched when a tensor is passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from refimpl.backend import is_torch_tensor


def mT(a):
    """Transpose the last two axes."""
    return a.mT if is_torch_tensor(a) else np.swapaxes(a, -1, -2)


def linalg(a):
    if is_torch_tensor(a):
        import torch

        return torch.linalg
    return np.linalg


def solve(a, b):
    return linalg(a).solve(a, b)


def pinv(a, rtol=None):
    if is_torch_tensor(a):
        import torch

        return torch.linalg.pinv(a, rtol=rtol) if rtol is not None else torch.linalg.pinv(a)
    return np.linalg.pinv(a, rtol=rtol) if rtol is not None else np.linalg.pinv(a)


def qr(a):
    """Reduced QR."""
    return linalg(a).qr(a)


def svd(a):
    """Thin SVD: ``U, s, Vt`` (``A = U diag(s) Vt``)."""
    return linalg(a).svd(a, full_matrices=False)


def cond(a):
    """2-norm condition number of the last two axes (inf for singular matrices)."""
    s = linalg(a).svdvals(a) if is_torch_tensor(a) else np.linalg.svd(a, compute_uv=False)
    smax = s[..., 0]
    smin = s[..., -1]
    if is_torch_tensor(a):
        import torch

        return torch.where(smin > 0, smax / smin, torch.full_like(smax, float("inf")))
    with np.errstate(divide="ignore"):
        return np.where(smin > 0, smax / np.where(smin > 0, smin, 1.0), np.inf)


def fro(a):
    """Frobenius norm over the last two axes."""
    return linalg(a).matrix_norm(a) if is_torch_tensor(a) else np.linalg.norm(a, axis=(-2, -1))


def eye_like(n: int, a):
    if is_torch_tensor(a):
        import torch

        return torch.eye(n, dtype=a.dtype, device=a.device)
    return np.eye(n, dtype=a.dtype)


def zeros_like_shape(shape, a):
    if is_torch_tensor(a):
        import torch

        return torch.zeros(shape, dtype=a.dtype, device=a.device)
    return np.zeros(shape, dtype=a.dtype)


def eps(a) -> float:
    if is_torch_tensor(a):
        import torch

        return float(torch.finfo(a.dtype).eps)
    return float(np.finfo(a.dtype).eps)


def stack(arrays, axis: int = 0):
    """Stack arrays of one kind (NumPy or torch) along a new axis."""
    if is_torch_tensor(arrays[0]):
        import torch

        return torch.stack(list(arrays), dim=axis)
    return np.stack(arrays, axis=axis)


def to_numpy(a):
    return a.detach().cpu().numpy() if is_torch_tensor(a) else np.asarray(a)


def to_torch(a, device=None):
    import torch

    return torch.as_tensor(np.ascontiguousarray(a), device=device)


def take_cols(A, idx):
    """``A[..., :, idx]`` with ``idx`` of shape (k,) or, for batches, (..., k)."""
    if is_torch_tensor(A) and idx.ndim > 1:
        import torch

        return torch.take_along_dim(A, idx.unsqueeze(-2), dim=-1)
    return A[..., :, idx]


def take_rows(A, idx):
    """``A[..., idx, :]`` with ``idx`` of shape (k,) or, for batches, (..., k)."""
    if is_torch_tensor(A) and idx.ndim > 1:
        import torch

        return torch.take_along_dim(A, idx.unsqueeze(-1), dim=-2)
    return A[..., idx, :]


def selector(n: int, idx, like):
    """The n×k matrix S with ``S[idx[j], j] = 1``, so that ``A @ S = A[:, idx]``."""
    if is_torch_tensor(like):
        import torch

        eye = torch.eye(n, dtype=like.dtype, device=like.device)
        if idx.ndim > 1:
            return torch.take_along_dim(eye.expand(*idx.shape[:-1], n, n),
                                        idx.unsqueeze(-2), dim=-1)
        return eye[:, idx]
    return np.eye(n, dtype=like.dtype)[:, idx]


def as_path(A, path: str):
    """Move ``A`` to the array kind that ``path`` computes with (torch for "torch")."""
    if path == "torch" and not is_torch_tensor(A):
        from refimpl.backend import default_device

        return to_torch(A, device=default_device())
    if path != "torch" and is_torch_tensor(A):
        return to_numpy(A)
    return A


def float_dtype(a):
    """The NumPy floating dtype that matches ``a``: float32 for float32 input, else float64."""
    name = str(a.dtype).replace("torch.", "")
    return np.dtype(np.float32) if name == "float32" else np.dtype(np.float64)


def astype(a, dtype):
    """``a`` in ``dtype`` (a NumPy dtype for arrays, a torch dtype for tensors); no copy when
    it already has it."""
    if is_torch_tensor(a):
        return a.to(dtype)
    return a.astype(dtype, copy=False)


def triu(a, k: int = 0):
    """Upper triangle of the last two axes."""
    if is_torch_tensor(a):
        import torch

        return torch.triu(a, k)
    return np.triu(a, k)


def inverse_permutation(perm):
    """``inv`` with ``inv[perm[j]] = j`` (over the last axis, batched on torch)."""
    if is_torch_tensor(perm):
        import torch

        return torch.argsort(perm, dim=-1)
    return np.argsort(perm, axis=-1)


def unpermute_cols(X, perm):
    """Undo a column permutation: ``Y`` with ``Y[..., :, perm] = X``."""
    return take_cols(X, inverse_permutation(perm))


def to_path(x, path: str, like=None):
    """Move ``x`` to the array kind of ``path``; on torch, onto ``like``'s device and dtype."""
    if path == "torch" and is_torch_tensor(like) and not is_torch_tensor(x):
        x = to_torch(x, device=like.device)  # straight onto like's device
    x = as_path(x, path)
    if like is not None and is_torch_tensor(x) and is_torch_tensor(like):
        x = x.to(device=like.device,
                  dtype=like.dtype if x.is_floating_point() else x.dtype)
    return x


def _returner(A):
    """A function that gives back an array, tensor or (nested) result as ``A``'s kind.

    Floating fields take ``A``'s floating dtype (and, for torch, its device); integer
    fields (permutations, indices) keep their integer dtype; scalars, strings, ``None``
    and :class:`refimpl.results.Info` pass through unchanged.
    """
    torch_in = is_torch_tensor(A)
    want = A.dtype

    def convert(x):
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


def prepare(A, name: str = "A", *, backend: str = "auto",
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


def operand(x, name: str, like, like_name: str = "A", *, ndim: int | tuple[int, ...] = 2):
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
    return to_path(x, "torch" if is_torch_tensor(like) else "numpy", like=like)


def permute(a, axes):
    """Reorder all axes: ``a.transpose(axes)`` for NumPy, ``a.permute(axes)`` for torch."""
    return a.permute(*axes) if is_torch_tensor(a) else np.transpose(a, axes)


def einsum(spec: str, *operands):
    """:func:`numpy.einsum` or :func:`torch.einsum`, by the kind of the first operand."""
    if is_torch_tensor(operands[0]):
        import torch

        return torch.einsum(spec, *operands)
    return np.einsum(spec, *operands)


def linalg_float(a):
    """``a`` in a dtype that LAPACK and ``torch.linalg`` accept: float32 and float64 as they
    are, lower precisions (float16, bfloat16) as float32."""
    if str(a.dtype).replace("torch.", "") in ("float32", "float64"):
        return a
    return a.float() if is_torch_tensor(a) else a.astype(np.float32)

"""The few array operations refimpl needs, written once for NumPy arrays and torch tensors.

Functions take NumPy arrays or torch tensors (with any leading batch dimensions for the
torch path) and return the same kind. Torch is only touched when a tensor is passed in.
"""

from __future__ import annotations

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
    """Thin SVD: ``U, s, Vh``."""
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


def like_input(x, A):
    """Return ``x`` (array, tensor, or None) as the same kind (and device) as the input ``A``."""
    if x is None or isinstance(x, int | float | str):
        return x
    if is_torch_tensor(A) and not is_torch_tensor(x):
        import torch

        return torch.as_tensor(np.asarray(x), device=A.device)
    if not is_torch_tensor(A) and is_torch_tensor(x):
        return to_numpy(x)
    return x

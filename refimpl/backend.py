"""Backend resolution and device choice, shared by every module with several paths.

Three paths sit behind one entry point:

- ``"numpy"``: the reference, float64 by default, written to mirror the book's equations;
- ``"numba"``: compiled CPU kernels for loop-bound work;
- ``"torch"``: runs on any device (CUDA when present) and accepts batches.

``"auto"`` picks ``"torch"`` for torch tensors and, for NumPy arrays, the fastest CPU path
the function has. NumPy in gives NumPy out; torch in gives torch out on the same device.
"""

from __future__ import annotations

import sys

BACKENDS = ("auto", "numpy", "numba", "torch")


def is_torch_tensor(x) -> bool:
    """True if ``x`` is a torch tensor. Never imports torch.

    Parameters
    ----------
    x : object
        Anything.

    Returns
    -------
    bool
        False whenever torch has not been imported (then ``x`` cannot be a tensor).
    """
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def resolve_backend(backend: str, x=None, *, available: tuple[str, ...] = ("numpy", "torch"),
                    prefer: str = "numpy") -> str:
    """Turn ``backend`` into the concrete path a function will run.

    Parameters
    ----------
    backend : {"auto", "numpy", "numba", "torch"}
        What the caller asked for.
    x : array or tensor, optional
        The main input; with ``"auto"``, a torch tensor selects ``"torch"``.
    available : tuple of str
        The paths the calling function implements.
    prefer : str
        The path ``"auto"`` takes for NumPy input.
    """
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
    if backend == "auto":
        if x is not None and is_torch_tensor(x) and "torch" in available:
            return "torch"
        return prefer if prefer in available else available[0]
    if backend not in available:
        raise ValueError(
            f"backend={backend!r} is not implemented here; choose one of "
            f"{('auto', *available)}"
        )
    return backend


def default_device() -> str:
    """``"cuda"`` when torch sees a CUDA device, otherwise ``"cpu"`` (imports torch)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"

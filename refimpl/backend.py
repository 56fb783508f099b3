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
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from typing_extensions import TypeIs

__all__ = ["BACKENDS", "KERNEL_ENV_VARS", "cpu_model", "default_device", "is_torch_tensor",
           "kernel_env", "resolve_backend"]

#: The values every ``backend=`` argument accepts (``"auto"`` chooses by the input).
BACKENDS = ("auto", "numpy", "numba", "torch")


def is_torch_tensor(x: object) -> TypeIs[torch.Tensor]:
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


def resolve_backend(backend: str, x: object = None, *,
                    available: tuple[str, ...] = ("numpy", "torch"),
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


# --- the CPU kernel configuration ---------------------------------------------------------

#: The environment variables that choose the CPU's BLAS kernels and thread counts (the
#: Makefile's ``NOTEBOOK_ENV`` sets them for the book's committed outputs).
KERNEL_ENV_VARS = ("MKL_ENABLE_INSTRUCTIONS", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS",
                   "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def kernel_env(environ: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """The kernel configuration a process runs (or was started) under.

    Parameters
    ----------
    environ : mapping, optional
        The environment to read; default ``os.environ``.

    Returns
    -------
    dict
        Each of ``KERNEL_ENV_VARS`` and its value, ``None`` where unset (the library's
        default).
    """
    import os

    environ = os.environ if environ is None else environ
    return {k: environ.get(k) for k in KERNEL_ENV_VARS}


def cpu_model() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` on Linux; else the platform's word).

    Returns
    -------
    str
        E.g. ``"Intel(R) Xeon(R) Processor"``, or ``platform.processor()`` /
        ``platform.machine()`` where the model is not known.
    """
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

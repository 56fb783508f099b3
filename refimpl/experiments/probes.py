"""Measuring a call: its median wall time, its transient CPU memory, a ready decoding step."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from refimpl._validation import check_nonnegative_int, check_positive_int

if TYPE_CHECKING:
    import torch

    from refimpl.attention import CausalSelfAttention, KVCache


def median_time(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1,
                sync: Callable[[], None] | None = None) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs.

    Parameters
    ----------
    fn : callable
        Called without arguments; its result is dropped.
    repeats : int
        Timed runs (≥ 1).
    warmup : int
        Untimed runs first (≥ 0).
    sync : callable, optional
        Called after each run (e.g. ``torch.cuda.synchronize``) so that asynchronous devices
        are timed to completion.

    Returns
    -------
    float
    """
    repeats = check_positive_int(repeats, "repeats")
    for _ in range(check_nonnegative_int(warmup, "warmup")):
        fn()
        if sync:
            sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu_peak_memory(fn: Callable[[], object]) -> int:
    """Peak bytes allocated by torch on the CPU while ``fn()`` runs, above what was allocated
    before it.

    The running sum of the bytes each operator allocates and frees, as recorded by torch's
    CPU memory profiler (``torch.profiler.profile(profile_memory=True)``); the result of
    ``fn`` is dropped inside the measurement. Output on file descriptor 2 (the profiler
    backend's log) is discarded while ``fn`` runs.

    Parameters
    ----------
    fn : callable
        Called once without arguments.

    Returns
    -------
    int
        Bytes (0 if ``fn`` allocates nothing through torch).
    """
    import os
    import sys

    from torch.profiler import ProfilerActivity, profile

    # the profiler's backend logs its start and stop on file descriptor 2: silence it
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            out = fn()
            del out
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage != 0),
                    key=lambda e: e.time_range.start)
    cur = peak = 0
    for e in events:
        cur += e.self_cpu_memory_usage
        peak = max(peak, cur)
    return peak


def prefilled_decode_step(layer: CausalSelfAttention, context: int, *,
                          seed: int = 0) -> tuple[Callable[[], torch.Tensor], KVCache]:
    """A zero-argument function running one decoding step of ``layer`` after ``context`` tokens.

    The cache is filled with random entries (their values do not change the cost), so long
    contexts can be timed without running the quadratic prefill. The first call grows the
    cache's storage once; later calls only append.

    Parameters
    ----------
    layer : refimpl.attention.CausalSelfAttention
        Any attention layer of :mod:`refimpl.attention` (its parameters give the device and
        dtype).
    context : int
        Tokens already in the cache.
    seed : int
        Seeds the cache's entries and the new token.

    Returns
    -------
    tuple
        ``(step, cache)``: ``step()`` appends one token and returns the layer's output
        ``(1, 1, d_model)``; ``cache`` is the layer's :class:`~refimpl.attention.KVCache`.
    """
    import torch

    context = check_positive_int(context, "context")
    p = next(layer.parameters())
    gen = torch.Generator().manual_seed(seed)
    cache = layer.new_cache()
    cache.append(**{f: torch.randn(1, context, *shape, generator=gen).to(p.device, p.dtype)
                    for f, shape in cache.fields.items()})
    x = torch.randn(1, 1, layer.d_model, generator=gen).to(p.device, p.dtype)

    def step() -> torch.Tensor:
        with torch.no_grad():
            return layer(x, cache)

    return step, cache


def machine() -> dict:
    """What a measurement ran on: platform, CPU count, library versions and BLAS threads.

    Benchmarks, the longer runs under ``runs/`` and the notebook executor record it beside
    their numbers.

    Returns
    -------
    dict
        ``platform``, ``processor``, ``cpu_model``, ``cpu_count``, ``python``, ``numpy``,
        ``scipy``, ``kernel_env`` (:func:`refimpl.backend.kernel_env`) and,
        where they are installed, ``torch`` (with its thread count) and ``blas`` (each BLAS
        and OpenMP library threadpoolctl finds, with its thread count).
    """
    import os
    import platform
    import sys

    import numpy as np
    import scipy

    from refimpl.backend import cpu_model, kernel_env

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "kernel_env": kernel_env(),
    }
    if "torch" in sys.modules:
        import torch

        info["torch"] = f"{torch.__version__} ({torch.get_num_threads()} threads)"
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return info
    info["blas"] = sorted({f"{p.get('internal_api')} {p.get('version')} "
                           f"({p.get('num_threads')} threads)" for p in threadpool_info()})
    return info

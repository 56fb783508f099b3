"""The probes: median time, transient CPU memory, a prefilled decoding step."""

import time

import pytest
import torch

from refimpl.attention import make_attention
from refimpl.experiments import cpu_peak_memory, median_time, prefilled_decode_step


def test_median_time_is_the_median_of_the_runs():
    calls = []
    t = median_time(lambda: (calls.append(1), time.sleep(0.002)), repeats=3, warmup=2,
                    sync=lambda: calls.append(0))
    assert len(calls) == 10  # 5 runs, each followed by sync
    assert 0.002 <= t < 0.5
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        median_time(lambda: None, repeats=0)


def test_cpu_peak_memory_sees_a_temporary():
    n = 1 << 20
    peak = cpu_peak_memory(lambda: torch.ones(n, dtype=torch.float64).sum())
    assert 8 * n <= peak < 4 * 8 * n
    assert cpu_peak_memory(lambda: None) == 0


def test_prefilled_decode_step_appends_one_token():
    layer = make_attention("gqa", 32, n_heads=4, n_kv_heads=2)
    step, cache = prefilled_decode_step(layer, 10, seed=1)
    assert cache.length == 10
    out = step()
    assert out.shape == (1, 1, 32) and cache.length == 11 and not out.requires_grad
    step2, _ = prefilled_decode_step(layer, 10, seed=1)
    torch.testing.assert_close(step2(), out, rtol=0, atol=0)
    with pytest.raises(ValueError, match="context must be at least 1"):
        prefilled_decode_step(layer, 0)


def test_machine_names_what_a_measurement_ran_on():
    import numpy as np

    from refimpl.experiments import machine

    info = machine()
    assert info["numpy"] == np.__version__ and info["cpu_count"] >= 1
    assert "torch" in info and "threads" in info["torch"]  # torch is imported by the harness
    assert all(isinstance(v, str | int | list | dict) for v in info.values())
    from refimpl.backend import KERNEL_ENV_VARS

    assert list(info["kernel_env"]) == list(KERNEL_ENV_VARS) and info["cpu_model"]

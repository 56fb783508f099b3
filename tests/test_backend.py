"""refimpl.backend: the CPU kernel configuration a measurement records."""

import platform

from refimpl.backend import KERNEL_ENV_VARS, cpu_model, kernel_env


def test_kernel_env_reads_every_kernel_variable_and_only_those():
    env = {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "OMP_NUM_THREADS": "1", "PATH": "/bin"}
    got = kernel_env(env)
    assert list(got) == list(KERNEL_ENV_VARS)
    assert got["MKL_ENABLE_INSTRUCTIONS"] == "AVX2" and got["OMP_NUM_THREADS"] == "1"
    assert got["OPENBLAS_CORETYPE"] is None and "PATH" not in got


def test_kernel_env_defaults_to_this_process(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert kernel_env()["OPENBLAS_CORETYPE"] == "Haswell"


def test_cpu_model_names_the_cpu():
    model = cpu_model()
    assert isinstance(model, str) and model.strip()
    try:
        text = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        assert model in (platform.processor(), platform.machine())
    else:
        assert model in text or "model name" not in text

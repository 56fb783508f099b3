"""Fresh virtual environments for the installation tests, set up the way the Makefile does.

Torch is installed first, as ``TORCH_SPEC`` (the Makefile's default unless the environment
sets it) from ``TORCH_INDEX`` when that is set, so that refimpl's ``torch>=2.1`` is already met
and pip does not pull a multi-GB CUDA build; then refimpl. pip's cache is used. Every step is
timed (:data:`TIMINGS`; ``tests/install/conftest.py`` prints them at the end of the run).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .dependencies import ROOT

#: (step, seconds) in the order the steps ran, for the summary at the end of the session.
TIMINGS: list[tuple[str, float]] = []

# Variables that would let the repository or the calling environment leak into a fresh one.
_DROPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV",
            "CONDA_PREFIX", "FULL", "REFIMPL_RECORD_DIR", "PIP_USER", "PIP_TARGET",
            "PIP_PREFIX", "PIP_REQUIRE_VIRTUALENV", "JUPYTER_PATH", "JUPYTER_DATA_DIR",
            "JUPYTER_CONFIG_DIR", "IPYTHONDIR", "MPLCONFIGDIR")


def makefile_default(name: str) -> str:
    """The default a Makefile variable gets with ``NAME ?= value``.

    Parameters
    ----------
    name : str
        The variable, e.g. ``"TORCH_SPEC"``.

    Returns
    -------
    str
        Its value ('' when the Makefile leaves it empty).

    Raises
    ------
    LookupError
        If the Makefile does not set it with ``?=``.
    """
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(name)}\s*\?=[ \t]*(.*)$", text, flags=re.MULTILINE)
    if match is None:
        raise LookupError(f"the Makefile does not set {name} with ?=")
    return match.group(1).strip()


def torch_requirement() -> list[str]:
    """pip arguments that install torch as ``make setup`` does.

    Returns
    -------
    list of str
        ``[TORCH_SPEC]``, plus ``--index-url TORCH_INDEX`` when that is set; each read from
        the environment, else from the Makefile's defaults.
    """
    spec = os.environ.get("TORCH_SPEC") or makefile_default("TORCH_SPEC")
    index = os.environ.get("TORCH_INDEX", makefile_default("TORCH_INDEX"))
    return [spec, *(["--index-url", index] if index else [])]


def clean_env(home: Path) -> dict[str, str]:
    """The environment for commands in a fresh venv: the caller's, without what would point
    into the repository or another environment, with Jupyter, IPython and Matplotlib state
    kept under ``home`` (so that a user-level kernel or configuration cannot interfere).

    Parameters
    ----------
    home : pathlib.Path
        A scratch folder (created).

    Returns
    -------
    dict
    """
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    for var, sub in {"JUPYTER_DATA_DIR": "jupyter-data", "JUPYTER_CONFIG_DIR": "jupyter-config",
                     "IPYTHONDIR": "ipython", "MPLCONFIGDIR": "matplotlib"}.items():
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def run(cmd: Sequence[str], *, step: str, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    """Run a command, time it as ``step`` and fail with its output's tail if it fails.

    Parameters
    ----------
    cmd : sequence of str
        The command.
    step : str
        Its name in :data:`TIMINGS` and in failure messages.
    cwd : pathlib.Path
        Working directory (never the repository, for commands in a fresh venv).
    env : dict, optional
        Environment (default: the caller's).
    timeout : float
        Seconds.

    Returns
    -------
    subprocess.CompletedProcess

    Raises
    ------
    AssertionError
        If the command exits with a non-zero status.
    """
    start = time.perf_counter()
    proc = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    TIMINGS.append((step, time.perf_counter() - start))
    if proc.returncode != 0:
        raise AssertionError(
            f"{step}: `{' '.join(map(str, cmd))}` exited with {proc.returncode}\n"
            f"--- stdout (tail) ---\n{proc.stdout[-4000:]}\n"
            f"--- stderr (tail) ---\n{proc.stderr[-6000:]}")
    return proc


class Venv:
    """A fresh virtual environment (``python -m venv``, from the interpreter running the tests)
    with torch installed as ``make setup`` installs it.

    Parameters
    ----------
    path : pathlib.Path
        Where to create it (must not exist).
    name : str
        Its name in :data:`TIMINGS`.
    scratch : pathlib.Path
        A folder for the working directory and the Jupyter/IPython state of its commands.
    """

    def __init__(self, path: Path, name: str, scratch: Path):
        self.path, self.name = path, name
        self.cwd = scratch / f"{name}-cwd"
        self.cwd.mkdir(parents=True)
        self.env = clean_env(scratch / f"{name}-home")
        run([sys.executable, "-m", "venv", str(path)], step=f"{name}: python -m venv",
            cwd=self.cwd, env=self.env)
        self.python = path / "bin" / "python"
        self.pip_install(torch_requirement(), step="torch")

    def pip_install(self, args: Sequence[str], *, step: str,
                    cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """``python -m pip install ARGS`` in this venv (pip's cache on).

        Parameters
        ----------
        args : sequence of str
            pip arguments after ``install``.
        step : str
            Its name in :data:`TIMINGS`.
        cwd : pathlib.Path, optional
            Working directory (default: the venv's scratch folder).

        Returns
        -------
        subprocess.CompletedProcess
        """
        return run([str(self.python), "-m", "pip", "install", *args],
                   step=f"{self.name}: pip install {step}", cwd=cwd or self.cwd, env=self.env)

    def python_isolated(self, code: str, *args: str, step: str, cwd: Path | None = None,
                        timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run ``python -I -c CODE ARGS`` in this venv: isolated mode (no script folder or
        working directory on ``sys.path``, no ``PYTHON*`` variables, no user site).

        Parameters
        ----------
        code : str
            Python source.
        *args : str
            Its ``sys.argv[1:]``.
        step : str
            Its name in :data:`TIMINGS`.
        cwd : pathlib.Path, optional
            Working directory (default: the venv's scratch folder, outside the repository).
        timeout : float
            Seconds.

        Returns
        -------
        subprocess.CompletedProcess
        """
        return run([str(self.python), "-I", "-c", code, *args], step=f"{self.name}: {step}",
                   cwd=cwd or self.cwd, env=self.env, timeout=timeout)

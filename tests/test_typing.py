"""Typing checks: every public callable is annotated, ``py.typed`` ships, mypy is clean.

``refimpl`` is a typed package (PEP 561): its public API carries annotations, the
``refimpl/py.typed`` marker is package data of the wheel, and mypy, run with the committed
``[tool.mypy]`` configuration of ``pyproject.toml``, reports no error.
"""

from __future__ import annotations

import importlib
import inspect
import shutil
import subprocess
import sys
import types
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent

#: The modules whose public names (``__all__``) make up refimpl's API.
PUBLIC_MODULES = (
    "refimpl", "refimpl.meta", "refimpl.linalg", "refimpl.sketch", "refimpl.tensor",
    "refimpl.lora", "refimpl.optim", "refimpl.attention", "refimpl.experiments",
    "refimpl.matrices", "refimpl.reporting", "refimpl.backend", "refimpl.seeding",
    "refimpl.results",
)


def _public_names(module: types.ModuleType) -> list[str]:
    """``__all__``, or else the public names the module itself defines."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [n for n, v in vars(module).items()
            if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__]


def _defined_in_refimpl(obj: object) -> bool:
    return (getattr(obj, "__module__", None) or "").split(".")[0] == "refimpl"


def missing_annotations(fn: Callable[..., object], *, bound: bool = False) -> list[str]:
    """The parameters of ``fn`` without an annotation, and ``"return"`` if it has none.

    ``bound``: ``fn`` is a method whose first parameter (``self``/``cls``) needs none.
    """
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())[1 if bound else 0:]
    missing = [p.name for p in params if p.annotation is inspect.Parameter.empty]
    if sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def _class_members(cls: type) -> Iterator[tuple[str, Callable[..., object], bool]]:
    """``(name, function, bound)`` for ``__init__``, ``__call__`` and the public methods,
    properties, class and static methods that refimpl defines on ``cls`` or its bases."""
    for owner in cls.__mro__:
        if not _defined_in_refimpl(owner):
            continue
        for name, member in vars(owner).items():
            if name.startswith("_") and name not in ("__init__", "__call__"):
                continue
            if isinstance(member, property):
                fn, bound = member.fget, True
            elif isinstance(member, staticmethod):
                fn, bound = member.__func__, False
            elif isinstance(member, classmethod):
                fn, bound = member.__func__, True
            elif inspect.isfunction(member):
                fn, bound = member, True
            else:
                continue
            if fn is not None and _defined_in_refimpl(fn):
                yield f"{owner.__module__}.{owner.__qualname__}.{name}", fn, bound


def public_callables() -> dict[str, tuple[Callable[..., object], bool]]:
    """Every public function, and every constructor and public method of a public class,
    that refimpl defines, by qualified name (each once)."""
    found: dict[str, tuple[Callable[..., object], bool]] = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in _public_names(module):
            obj = getattr(module, name)
            if isinstance(obj, types.ModuleType) or not _defined_in_refimpl(obj):
                continue
            if inspect.isclass(obj):
                for qualname, fn, bound in _class_members(obj):
                    found.setdefault(qualname, (fn, bound))
            elif callable(obj):
                found.setdefault(f"{obj.__module__}.{obj.__qualname__}", (obj, False))
    return found


# --- annotations of the public API ----------------------------------------------------------

def test_public_api_is_large_enough_to_mean_something():
    # A guard on the collector itself: an empty or truncated walk would pass vacuously.
    found = public_callables()
    assert len(found) > 300, f"only {len(found)} public callables found"
    for expected in ("refimpl.linalg.qr.cpqr", "refimpl.lora.lora.LoRALinear.__init__",
                     "refimpl.lora._core.AdapterLayer.merge",
                     "refimpl.attention._core.CausalSelfAttention.forward",
                     "refimpl.reporting.table", "refimpl.seeding.torch_generator"):
        assert expected in found, f"{expected} is missing from the public callables"


def test_every_public_callable_is_annotated():
    gaps = {}
    for qualname, (fn, bound) in sorted(public_callables().items()):
        missing = missing_annotations(fn, bound=bound)
        if missing:
            gaps[qualname] = missing
    assert not gaps, "public callables without annotations:\n" + "\n".join(
        f"  {name}: {', '.join(m)}" for name, m in gaps.items())


def test_missing_annotations_finds_gaps():
    # The check above can fail: an unannotated parameter, *args, **kwargs and return are found.
    def f(a, b: int, *args, c: str = "", **kwargs) -> None: ...

    def g(x: int): ...

    class C:
        def method(self, y) -> int:
            return 0

    assert missing_annotations(f) == ["a", "args", "kwargs"]
    assert missing_annotations(g) == ["return"]
    assert missing_annotations(C.method, bound=True) == ["y"]


# --- the PEP 561 marker ---------------------------------------------------------------------

def test_py_typed_is_package_data():
    assert (ROOT / "refimpl" / "py.typed").is_file(), "refimpl/py.typed is missing"
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = config["tool"]["setuptools"].get("package-data", {})
    assert "py.typed" in package_data.get("refimpl", []), (
        "list py.typed under [tool.setuptools.package-data] refimpl = [...] in pyproject.toml")


def test_py_typed_ships_in_the_wheel(tmp_path):
    pytest.importorskip("build", reason="the wheel check needs `build` (pip install build)")
    src = tmp_path / "src"  # a copy, so that the build leaves no build/ or egg-info behind
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "refimpl", src / "refimpl",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                           "--outdir", str(tmp_path / "dist"), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"building the wheel failed:\n{proc.stdout}\n{proc.stderr}"
    (wheel,) = (tmp_path / "dist").glob("refimpl-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert "refimpl/py.typed" in names, f"{wheel.name} does not contain refimpl/py.typed"
    assert "refimpl/_typing.py" in names


# --- mypy -----------------------------------------------------------------------------------

def test_mypy_is_clean():
    pytest.importorskip("mypy", reason="mypy is not installed (pip install 'refimpl[test]')")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["tool"]["mypy"]["files"] == ["refimpl"], "[tool.mypy] should check refimpl"
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "pyproject.toml"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Success: no issues found" in out, (
        f"mypy (with pyproject.toml's [tool.mypy]) is not clean:\n{out}")
    assert "note:" not in out, f"mypy printed notes (a stale or too narrow ignore?):\n{out}"

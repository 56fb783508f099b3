"""The extras make sense: every import needs only what its code's environment installs.

- ``refimpl/``: imports run at import time (module level, class bodies, ``try`` blocks) use the
  standard library, refimpl and the declared core dependencies only; imports for the type
  checker only (``if TYPE_CHECKING:``, never run) use what some group declares; imports inside a
  function (lazy) may use the **book** extra, where the function says so: its docstring names
  the module or its distribution, or the import sits in ``try ... except ImportError`` with a
  fallback (then the function works without it).
- notebooks (the code cells of ``notebooks/**/*.md``): core and book.
- ``book/_ext`` (the book's Sphinx extensions): core and book.
- ``tests/``, ``tools/``, ``benchmarks/``, ``runs/``: core, book and test.

An import name is mapped to its distribution with ``importlib.metadata.packages_distributions()``
in the running environment (``make test``'s, where refimpl is installed with both extras);
names that a declared distribution brings in without being declared themselves are listed in
:data:`tests.install.dependencies.INDIRECT`, each entry checked against the metadata. Besides
the static scan, importing every refimpl module in this environment, where every extra *is*
installed, must import none of the extras' packages (in the fresh core-only environment of
``test_clean_install.py`` they are absent, so an unguarded import would fail there anyway).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .dependencies import (
    IMPORT_EVERY_MODULE,
    INDIRECT,
    ROOT,
    Import,
    allowed,
    closure,
    core_import_names,
    declared,
    distributions_of,
    extras,
    forbidden_import_names,
    is_stdlib,
    refimpl_modules,
    requirement_texts,
    scan_files,
    scan_source,
)

# Undeclared imports that are allowed because they are optional where they occur, with why.
# Each is a gap in pyproject.toml, kept visible here until it is declared.
UNDECLARED_OPTIONAL = {
    "tomli": "Python 3.10's TOML reader; only imported there (importorskip), where the tests "
             "that need it skip. Declaring `tomli; python_version < '3.11'` in the test extra "
             "would make them run on 3.10.",
}

# Top-level names of this repository's own code: packages at the root, and the folders that
# pytest, the notebooks or the book put on sys.path (tests/, book/_ext).
LOCAL = frozenset(
    {p.parent.name for p in ROOT.glob("*/__init__.py")} | {"tests"}
    | {p.stem for p in (ROOT / "tests").glob("*.py")}
    | {p.stem for p in (ROOT / "book" / "_ext").glob("*.py")})

# Which environment each part of the repository runs in (the groups installed there).
FOLDERS = {
    "book/_ext": ("core", "book"),
    "tests": ("core", "book", "test"),
    "tools": ("core", "book", "test"),
    "benchmarks": ("core", "book", "test"),
    "runs": ("core", "book", "test"),
}


def _own(imp: Import, local: frozenset[str] = LOCAL) -> bool:
    return is_stdlib(imp.top) or imp.top in local


def _outside(imports: list[Import], groups: tuple[str, ...],
             local: frozenset[str] = LOCAL) -> list[str]:
    """The imports of a distribution outside ``groups``, as messages (empty when all fit)."""
    ok = allowed(groups)
    bad = []
    for imp in imports:
        if _own(imp, local) or (imp.guarded and imp.top in UNDECLARED_OPTIONAL):
            continue
        dists = distributions_of(imp.top)
        if not dists:
            bad.append(f"{imp.where}: {imp.module} (no installed distribution provides "
                       f"{imp.top!r}; declare it or add it to the small tables of this test)")
        elif not dists & ok:
            where = [g for g in ("core", *extras()) if dists & allowed((g,))] or ["nothing"]
            bad.append(f"{imp.where}: {imp.module} (distribution {', '.join(sorted(dists))}; "
                       f"declared by {'/'.join(where)}, but this code runs with "
                       f"{' + '.join(groups)})")
    return bad


REFIMPL = list(scan_files("refimpl"))
REFIMPL_LOCAL = frozenset({"refimpl"})


def test_scan_finds_the_imports():
    """The scanner sees every kind of import (a broken scanner would pass everything)."""
    found = scan_source(
        "import a.b\nfrom c import d\nfrom . import e\nfrom typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import f\n"
        "try:\n    import g\nexcept ImportError:\n    g = None\n"
        "class K:\n    import h\n"
        "def fn():\n    '''Needs i.'''\n    import i\n"
        "    importlib.util.find_spec('j')\n    pytest.importorskip('k')\n", "x.py")
    got = {(i.module, i.scope, i.guarded, i.function) for i in found}
    assert got == {("a.b", "module", False, None), ("c", "module", False, None),
                   ("typing", "module", False, None), ("f", "type-only", False, None),
                   ("g", "module", True, None), ("h", "module", False, None),
                   ("i", "function", False, "fn"), ("j", "function", False, "fn"),
                   ("k", "function", True, "fn")}
    assert next(i for i in found if i.module == "i").docstring == "Needs i."
    assert len([i for i in REFIMPL if i.top == "numpy"]) > 10, "the scan of refimpl/ is empty"


def test_refimpl_imports_only_core_dependencies_at_import_time():
    imports = [i for i in REFIMPL if i.scope == "module"]
    bad = _outside(imports, ("core",), REFIMPL_LOCAL)
    # Stricter than allowed(("core",)): a module-level import must be a *declared* core
    # dependency, not one that torch happens to bring.
    bad += [f"{i.where}: {i.module} (not a declared core dependency)" for i in imports
            if not _own(i, REFIMPL_LOCAL) and not distributions_of(i.top) & declared("core")]
    assert not bad, "refimpl imports more than its core dependencies when imported:\n" + \
        "\n".join(sorted(set(bad)))


def test_refimpl_type_only_imports_are_declared():
    """``if TYPE_CHECKING:`` imports never run; the type checker (mypy, in the test
    environment) needs them installed: any declared group will do."""
    imports = [i for i in REFIMPL if i.scope == "type-only"]
    assert imports, "no TYPE_CHECKING imports found (the scan is broken?)"
    bad = _outside(imports, ("core", *extras()), REFIMPL_LOCAL)
    assert not bad, "imports for the type checker that no group installs:\n" + "\n".join(bad)


LAZY_EXTRAS = [i for i in REFIMPL if i.scope == "function" and not _own(i, REFIMPL_LOCAL)
               and not distributions_of(i.top) & allowed(("core",))]


def test_lazy_imports_of_extras_were_found():
    """The list below is not empty: refimpl does use the book extra lazily (the MiniLM loader,
    the machine probe, the source highlighter)."""
    assert {i.top for i in LAZY_EXTRAS} >= {"transformers", "threadpoolctl"}, LAZY_EXTRAS


@pytest.mark.parametrize("imp", LAZY_EXTRAS,
                         ids=[f"{i.where}:{i.function}:{i.module}" for i in LAZY_EXTRAS])
def test_lazy_import_of_an_extra_is_in_the_book_extra_and_documented(imp):
    dists = distributions_of(imp.top)
    assert dists & allowed(("book",)), (
        f"{imp.where}: {imp.function}() imports {imp.module} ({', '.join(sorted(dists)) or '?'}), "
        "which the book extra does not install")
    names = {imp.top.lower(), *(d.lower() for d in dists)}
    names |= {n.replace("-", "_") for n in names} | {n.replace("_", "-") for n in names}
    documented = any(n in imp.docstring.lower() for n in names)
    assert documented or imp.guarded, (
        f"{imp.where}: {imp.function}() needs {imp.module} (refimpl[book]) without saying so: "
        "name it in the docstring (e.g. in Raises: ModuleNotFoundError) or fall back when it "
        "is missing (try/except ImportError)")


def _notebook_imports(md: Path) -> list[Import]:
    found = []
    for index, cell in enumerate(jupytext.read(md).cells):
        if cell.cell_type != "code":
            continue
        # IPython syntax (!shell, %magic, %%cell magic) is not Python: blank it out, keeping
        # the indentation so that the block around it still parses.
        lines = [line[:len(line) - len(line.lstrip())] + "pass"
                 if line.lstrip().startswith(("!", "%")) else line
                 for line in cell.source.splitlines()]
        where = f"{md.relative_to(ROOT).as_posix()} (code cell {index})"
        found += scan_source("\n".join(lines), where)
    return found


NOTEBOOK_MDS = sorted((ROOT / "notebooks").rglob("*.md"))


@pytest.mark.parametrize("md", NOTEBOOK_MDS, ids=[m.stem for m in NOTEBOOK_MDS])
def test_notebook_imports_are_core_or_book(md):
    imports = _notebook_imports(md)
    assert any(i.top == "refimpl" for i in imports), f"{md}: no refimpl import found"
    bad = _outside(imports, ("core", "book"))
    assert not bad, "a notebook imports what refimpl[book] does not install:\n" + "\n".join(bad)


@pytest.mark.parametrize("folder", sorted(FOLDERS))
def test_repository_code_imports_fit_its_environment(folder):
    imports = list(scan_files(folder))
    assert imports, f"nothing found under {folder}/"
    bad = _outside(imports, FOLDERS[folder])
    assert not bad, f"{folder}/ imports what its environment does not install:\n" + \
        "\n".join(bad)


@functools.cache
def _every_import() -> list[Import]:
    found = list(REFIMPL)
    for folder in FOLDERS:
        found += scan_files(folder)
    for md in NOTEBOOK_MDS:
        found += _notebook_imports(md)
    return found


@pytest.mark.parametrize("name", sorted(INDIRECT))
def test_indirect_table_is_true_and_used(name):
    provider = canonicalize_name(INDIRECT[name])
    groups = [g for g in ("core", *extras()) if provider in declared(g)]
    assert groups, f"INDIRECT[{name!r}] = {provider}, which pyproject.toml does not declare"
    dists = distributions_of(name)
    assert dists, f"no installed distribution provides {name!r}"
    assert not any(dists & declared(g) for g in ("core", *extras())), (
        f"{name} is declared directly; drop it from INDIRECT")
    provider_req = next(t for g in groups for t in requirement_texts(g)
                        if canonicalize_name(Requirement(t).name) == provider)
    assert dists & closure([provider_req]), (
        f"{provider} does not require {', '.join(sorted(dists))} (directly or further down) "
        f"in this environment: INDIRECT[{name!r}] is wrong; declare {name}'s distribution")
    assert any(i.top == name for i in _every_import()), (
        f"nothing imports {name!r} any more: drop it from INDIRECT")


def test_undeclared_optional_table_is_still_needed():
    for name in UNDECLARED_OPTIONAL:
        uses = [i for i in _every_import() if i.top == name]
        assert uses, f"nothing imports {name!r}: drop it from UNDECLARED_OPTIONAL"
        assert all(i.guarded for i in uses), (
            f"{name} is imported without a fallback at {[i.where for i in uses if not i.guarded]}")
        assert not any(distributions_of(name) & declared(g) for g in ("core", *extras())), (
            f"{name} is declared now: drop it from UNDECLARED_OPTIONAL")


# --- the same rule, checked by importing: in this environment every extra is installed, so a
# guarded or lazy import that runs at import time would succeed silently here ---------------


def test_importing_refimpl_imports_no_extra_here(tmp_path):
    forbidden = forbidden_import_names()
    assert {"matplotlib", "sklearn", "transformers", "peft", "pytest", "hypothesis",
            "yaml"} <= forbidden, sorted(forbidden)
    proc = subprocess.run([sys.executable, "-I", "-c", IMPORT_EVERY_MODULE,
                           *core_import_names()],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    probe = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(probe["file"]).resolve() == ROOT / "refimpl" / "__init__.py", probe["file"]
    expected = refimpl_modules()
    assert set(probe["modules"]) == expected, (
        f"walked {sorted(set(probe['modules']) ^ expected)} differently from the source tree")
    imported = sorted(set(probe["new"]) & forbidden)
    assert not imported, (
        f"importing every refimpl module imported {imported} (book/test extras' packages)")

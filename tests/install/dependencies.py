"""What pyproject.toml declares, what the installed metadata says about it, and where a
source file imports what.

Shared by ``test_extras.py`` (the static scan) and ``test_clean_install.py`` (the names that
must not be imported by ``import refimpl.<anything>``). Distributions are compared by their
canonical names (``canonicalize_name``); import names are mapped to distributions with
``importlib.metadata.packages_distributions()``, which reads the metadata of the environment
running the tests (``make test``'s ``.venv``, where refimpl is installed with both extras).
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (as tests/test_packaging.py)
    tomllib = pytest.importorskip("tomli", reason="Python 3.10 reads TOML with tomli")

ROOT = Path(__file__).resolve().parents[2]

# Import names that no distribution declared in pyproject.toml installs itself but that a
# declared one brings in (a dependency of a dependency): the import name and the declared
# distribution that requires it. tests/install/test_extras.py checks every entry against the
# installed metadata (the provider really requires it, directly or further down) and that
# every entry is still used. Prefer declaring a dependency that is imported directly.
INDIRECT = {
    "docutils": "jupyter-book",     # Sphinx's markup (book/_ext, tests of the extension)
    "nbclient": "jupyter-book",     # tools/execute_notebooks.py runs notebooks with it
    "nbformat": "jupytext",         # reading and writing .ipynb (tools, tests)
    "pybtex": "sphinxcontrib-bibtex",  # book/_ext: author-year labels
    "pygments": "jupyter-book",     # refimpl.reporting highlights source (falls back without)
    "sphinx": "jupyter-book",       # book/_ext and its tests
    "typing_extensions": "torch",   # refimpl.backend: TypeIs, for the type checker only
}


def pyproject() -> dict:
    """pyproject.toml, parsed.

    Returns
    -------
    dict
        The whole file.
    """
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def requirement_texts(group: str) -> list[str]:
    """The requirement strings of one group: ``"core"`` (``project.dependencies``) or an extra.

    Parameters
    ----------
    group : str
        ``"core"`` or the name of an optional-dependencies table.

    Returns
    -------
    list of str

    Raises
    ------
    KeyError
        If pyproject.toml has no such extra.
    """
    project = pyproject()["project"]
    if group == "core":
        return list(project["dependencies"])
    return list(project["optional-dependencies"][group])


@functools.cache
def declared(group: str) -> frozenset[str]:
    """Canonical names of the distributions one group declares (see :func:`requirement_texts`).

    Parameters
    ----------
    group : str
        ``"core"`` or an extra.

    Returns
    -------
    frozenset of str
    """
    return frozenset(canonicalize_name(Requirement(t).name) for t in requirement_texts(group))


def extras() -> list[str]:
    """The names of pyproject.toml's extras.

    Returns
    -------
    list of str
    """
    return sorted(pyproject()["project"].get("optional-dependencies", {}))


@functools.cache
def _dists_by_import_name() -> dict[str, frozenset[str]]:
    return {name: frozenset(canonicalize_name(d) for d in dists)
            for name, dists in importlib.metadata.packages_distributions().items()}


@functools.cache
def _import_names_by_dist() -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for name, dists in _dists_by_import_name().items():
        for dist in dists:
            out[dist].add(name)
    return {dist: frozenset(names) for dist, names in out.items()}


def distributions_of(import_name: str) -> frozenset[str]:
    """The installed distributions that provide a top-level import name (empty if none).

    Parameters
    ----------
    import_name : str
        A top-level module or package name, e.g. ``"sklearn"``.

    Returns
    -------
    frozenset of str
        Canonical distribution names, e.g. ``{"scikit-learn"}``.
    """
    return _dists_by_import_name().get(import_name, frozenset())


def import_names(dists: Iterable[str]) -> frozenset[str]:
    """The top-level import names the given (installed) distributions provide.

    Parameters
    ----------
    dists : iterable of str
        Distribution names (any spelling).

    Returns
    -------
    frozenset of str
        Names such as ``"yaml"`` for PyYAML; private helpers (``_yaml``) included.
    """
    table = _import_names_by_dist()
    return frozenset(n for d in dists for n in table.get(canonicalize_name(d), ()))


def closure(requirements: Iterable[str]) -> frozenset[str]:
    """Every distribution that installing ``requirements`` brings, from the installed metadata.

    Follows ``Requires-Dist`` (markers evaluated for this interpreter, requested extras
    honoured). A distribution that is not installed here is listed, its own requirements are
    not (they are unknown).

    Parameters
    ----------
    requirements : iterable of str
        Requirement strings, e.g. ``"torch>=2.1"`` or ``"jupyter-book[sphinx]"``.

    Returns
    -------
    frozenset of str
        Canonical distribution names, the requirements' own included.
    """
    todo = [Requirement(r) for r in requirements]
    seen: set[tuple[str, frozenset[str]]] = set()
    out: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        out.add(name)
        try:
            texts = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        wanted = [{"extra": e} for e in ("", *sorted(req.extras))]
        for text in texts:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate(env) for env in wanted):
                todo.append(sub)
    return frozenset(out)


def allowed(groups: Iterable[str]) -> frozenset[str]:
    """The distributions code may import when it runs with ``groups`` installed: their
    declared distributions and the :data:`INDIRECT` ones whose provider is among them.

    Parameters
    ----------
    groups : iterable of str
        ``"core"`` and extras.

    Returns
    -------
    frozenset of str
    """
    direct = frozenset().union(*(declared(g) for g in groups))
    indirect = {d for name, provider in INDIRECT.items() if canonicalize_name(provider) in direct
                for d in distributions_of(name)}
    return direct | indirect


def forbidden_import_names() -> frozenset[str]:
    """Top-level names that ``import refimpl.<anything>`` must not import: those of the
    extras' distributions, and of everything they bring that the core dependencies do not.

    Returns
    -------
    frozenset of str
        From the installed metadata (run it where both extras are installed).
    """
    core = closure(requirement_texts("core"))
    extra_reqs = [t for g in extras() for t in requirement_texts(g)]
    direct = {d for g in extras() for d in declared(g)}
    return import_names(direct | (closure(extra_reqs) - core)) - {"refimpl"}


def core_import_names() -> list[str]:
    """The public top-level modules of the core dependencies (the import probe's baseline).

    Returns
    -------
    list of str
    """
    return sorted(n for n in import_names(declared("core")) if not n.startswith("_"))


def refimpl_modules() -> set[str]:
    """The dotted names of every module and package in the source tree's ``refimpl/``.

    Returns
    -------
    set of str
    """
    out = set()
    for path in (ROOT / "refimpl").rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        out.add(".".join(parts[:-1] if path.name == "__init__.py" else parts))
    return out


#: Run as ``python -I -c IMPORT_EVERY_MODULE <baseline modules...>``: imports the baseline
#: (the core dependencies), then refimpl and every module under it (``pkgutil.walk_packages``),
#: and prints JSON with the modules walked, refimpl's file and the top-level names the walk
#: added to ``sys.modules``.
IMPORT_EVERY_MODULE = """
import importlib, json, pkgutil, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
before = set(sys.modules)
import refimpl
names = ["refimpl"] + [m.name for m in pkgutil.walk_packages(refimpl.__path__, "refimpl.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "file": refimpl.__file__,
                  "version": refimpl.__version__,
                  "new": sorted({m.partition(".")[0] for m in set(sys.modules) - before})}))
"""


# --- where a file imports what ---------------------------------------------------------------

#: How a module is imported: at import time of the file, only for the type checker, or when a
#: function runs.
SCOPES = ("module", "type-only", "function")
_DYNAMIC = {"import_module", "find_spec", "importorskip", "__import__"}
_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


@dataclass(frozen=True)
class Import:
    """One import found in a source file.

    Attributes
    ----------
    where : str
        ``path:line`` (path relative to the repository root; for a notebook, its cell).
    module : str
        The dotted module name as written.
    scope : str
        One of :data:`SCOPES`.
    guarded : bool
        Inside a ``try`` whose handlers catch ``ImportError`` (a fallback exists), or a
        ``pytest.importorskip``.
    function : str or None
        Qualified name of the enclosing function (``function`` scope only).
    docstring : str
        The enclosing function's docstring (empty if none or at module scope).
    """

    where: str
    module: str
    scope: str
    guarded: bool
    function: str | None
    docstring: str

    @property
    def top(self) -> str:
        """The top-level name (``"sklearn"`` for ``sklearn.linear_model``)."""
        return self.module.partition(".")[0]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _catches_import_error(handler: ast.excepthandler) -> bool:
    kind = getattr(handler, "type", None)
    if kind is None:
        return True
    names = kind.elts if isinstance(kind, ast.Tuple) else [kind]
    return any(isinstance(n, ast.Name) and n.id in _IMPORT_ERRORS for n in names)


class _Scanner(ast.NodeVisitor):
    def __init__(self, where: str, line_offset: int = 0):
        self.where, self.offset = where, line_offset
        self.functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        self.qualname: list[str] = []
        self.type_only = False
        self.guarded = False
        self.found: list[Import] = []

    def _add(self, module: str, line: int, *, guarded: bool = False) -> None:
        func = self.functions[-1] if self.functions else None
        scope = "function" if func else ("type-only" if self.type_only else "module")
        self.found.append(Import(
            where=f"{self.where}:{line + self.offset}", module=module, scope=scope,
            guarded=self.guarded or guarded, function=".".join(self.qualname) if func else None,
            docstring=(ast.get_docstring(func) or "") if func else ""))

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node)
        self.qualname.append(node.name)
        self.generic_visit(node)
        self.qualname.pop()
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.qualname.append(node.name)
        self.generic_visit(node)
        self.qualname.pop()

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        previous, self.type_only = self.type_only, True
        for stmt in node.body:
            self.visit(stmt)
        self.type_only = previous
        for stmt in node.orelse:
            self.visit(stmt)

    def visit_Try(self, node: ast.Try) -> None:
        previous = self.guarded
        self.guarded = previous or any(_catches_import_error(h) for h in node.handlers)
        for stmt in node.body:
            self.visit(stmt)
        self.guarded = previous
        for stmt in [*node.handlers, *node.orelse, *node.finalbody]:
            self.visit(stmt)

    visit_TryStar = visit_Try

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self._add(node.module, node.lineno)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if (name in _DYNAMIC and node.args and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)):
            self._add(node.args[0].value, node.lineno, guarded=name == "importorskip")
        self.generic_visit(node)


def scan_source(source: str, where: str, line_offset: int = 0) -> list[Import]:
    """Every import in a piece of Python source (``import``, ``from ... import`` with an
    absolute module, and ``import_module`` / ``find_spec`` / ``importorskip`` / ``__import__``
    called with a string literal).

    Parameters
    ----------
    source : str
        Python source.
    where : str
        Its name in messages (a path relative to the repository root).
    line_offset : int
        Added to line numbers (for code that starts inside a larger file).

    Returns
    -------
    list of Import

    Raises
    ------
    SyntaxError
        If ``source`` does not parse.
    """
    scanner = _Scanner(where, line_offset)
    scanner.visit(ast.parse(source))
    return scanner.found


def scan_files(folder: str) -> Iterator[Import]:
    """:func:`scan_source` over every ``*.py`` file under a folder of the repository.

    Parameters
    ----------
    folder : str
        Relative to the repository root, e.g. ``"refimpl"``.

    Yields
    ------
    Import
    """
    for path in sorted((ROOT / folder).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(ROOT).as_posix()
        yield from scan_source(path.read_text(encoding="utf-8"), rel)


def is_stdlib(import_name: str) -> bool:
    """True for a module of Python's standard library (``sys.stdlib_module_names``).

    Parameters
    ----------
    import_name : str
        A top-level name.

    Returns
    -------
    bool
    """
    return import_name in sys.stdlib_module_names

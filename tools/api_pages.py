"""The API reference part of the book: one page per subpackage of ``refimpl``, generated from
the package's ``__all__`` lists and docstrings, and the map between its entries and the
chapter pages that use them.

Called by ``tools/build_pages.py`` (``make pages``, ``make book``, ``make test``); writes, under
``book/generated/``:

    api/index.md       the reference's first page: every subpackage with its summary line
    api/<name>.md      one page per subpackage: a summary table, then every public name
                       (Sphinx autodoc; numpydoc renders the docstrings)
    api/usage.json     {"pages": {chapter page: [entry, ...]},
                        "taught": {entry: [chapter page, ...]},
                        "home": {entry: chapter page}, "entries": {entry: kind}}

The book's Sphinx extension (``book/_ext/refimpl_book.py``) reads ``usage.json``: it adds to
every chapter page the links to the reference entries of the refimpl names that page's code
uses, puts "In the book" links into each entry, links each entry to its source, and fails the
strict build on a public name without a docstring or with one that does not parse.

A page *uses* a name when one of its code cells imports it (``from refimpl.linalg import
cpqr``) or reaches it as an attribute of an imported refimpl module (``meta.pinv_meta``,
``refimpl.default_device``); names are resolved to the objects they denote, so a name imported
from a private module counts for the entry under which it is documented.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path

API = "api"

# (page, modules documented on it, title, the chapter that teaches it or None). The top level
# and the package's core helpers share one page.
SUBPACKAGES = (
    ("core", ("refimpl", "refimpl.backend", "refimpl.seeding", "refimpl.results"),
     "Core: backends, seeding, results", None),
    ("meta", ("refimpl.meta",), "Meta-factorization", "01"),
    ("linalg", ("refimpl.linalg",), "Classical decompositions", "02"),
    ("sketch", ("refimpl.sketch",), "Randomized and sketching methods", "03"),
    ("nonneg", ("refimpl.nonneg",), "Nonnegative factorizations", "04"),
    ("completion", ("refimpl.completion",), "Completion, recommenders and embeddings", "05"),
    ("tensor", ("refimpl.tensor",), "Tensor decompositions", "06"),
    ("lora", ("refimpl.lora",), "LoRA and its variants", "09"),
    ("optim", ("refimpl.optim",), "Optimizers", "10"),
    ("attention", ("refimpl.attention",), "Factored attention and the KV cache", "11"),
    ("experiments", ("refimpl.experiments",), "The experiment harness", None),
    ("matrices", ("refimpl.matrices",), "Test matrices", None),
    ("reporting", ("refimpl.reporting",), "Reporting in notebooks", None),
)

_CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)


@dataclass(frozen=True)
class Entry:
    """A documented public name: ``qualname`` (``refimpl.linalg.cpqr``) and its kind."""

    qualname: str
    kind: str  # "function", "class" or "data"
    page: str


def _kind(obj) -> str:
    if inspect.isclass(obj):
        return "class"
    if callable(obj):
        return "function"
    return "data"


def _public(module) -> list[str]:
    """The module's ``__all__`` without subpackages and dunder names."""
    names = getattr(module, "__all__", None)
    if names is None:
        raise ValueError(f"{module.__name__} has no __all__: the reference documents __all__")
    return [n for n in names if not n.startswith("__")
            and not inspect.ismodule(getattr(module, n))]


def _depth(qualname: str, home: str) -> int:
    """How closely the module listing ``qualname`` contains ``home``, the module that defines
    the object (0: it does not); the innermost wins, the first of equals."""
    module = qualname.rsplit(".", 1)[0]
    inside = home == module or home.startswith(module + ".")
    return module.count(".") + 1 if inside else 0


def entries() -> tuple[dict[str, Entry], dict[int, str]]:
    """Every documented name by qualname, and the qualname of every documented object by id.

    An object exported by several modules is documented once: under the innermost module
    listing it that (itself or through its submodules) defines it, the first of
    :data:`SUBPACKAGES` among equals, and under the first that lists it when none defines
    it (``refimpl.default_device`` is documented as ``refimpl.backend.default_device``).
    """
    found: dict[int, list[tuple[str, str, object]]] = {}
    order: list[int] = []
    for page, modules, _, _ in SUBPACKAGES:
        for name in modules:
            module = importlib.import_module(name)
            for attr in _public(module):
                obj = getattr(module, attr)
                key = id(obj)
                if key not in found:
                    found[key] = []
                    order.append(key)
                found[key].append((page, f"{name}.{attr}", obj))
    out: dict[str, Entry] = {}
    by_id: dict[int, str] = {}
    for key in order:
        candidates = found[key]
        obj = candidates[0][2]
        home = getattr(obj, "__module__", "") or ""
        page, qual, _ = max(candidates, key=lambda c, home=home: _depth(c[1], home))
        out[qual] = Entry(qual, _kind(obj), page)
        by_id[key] = qual
    return out, by_id


def code_cells(text: str) -> list[str]:
    """The code of a MyST notebook's code cells, without cell options and shell magics."""
    cells = []
    for body in _CODE_CELL.findall(text):
        lines = [ln for ln in body.splitlines()
                 if not ln.lstrip().startswith(("!", "%")) and not re.match(r"^:\w+:", ln)]
        cells.append("\n".join(lines))
    return cells


def _resolve(path: str):
    """The object a dotted refimpl path denotes (importing modules as needed), or None."""
    parts = path.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        if hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        try:
            obj = importlib.import_module(".".join(parts[:i + 1]))
        except ImportError:
            return None
    return obj


def uses(cells: list[str]) -> set[str]:
    """The dotted refimpl paths that a notebook's cells, run in order, import or reach
    through imported modules (an import in one cell holds in the later ones)."""
    alias: dict[str, str] = {}
    found: set[str] = set()

    def dotted(node) -> str | None:
        if isinstance(node, ast.Name):
            return alias.get(node.id)
        if isinstance(node, ast.Attribute):
            base = dotted(node.value)
            return None if base is None else f"{base}.{node.attr}"
        return None

    for code in cells:
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == "refimpl":
                        alias[a.asname or "refimpl"] = a.name if a.asname else "refimpl"
            elif (isinstance(node, ast.ImportFrom)
                  and (node.module or "").split(".")[0] == "refimpl"):
                for a in node.names:
                    path = f"{node.module}.{a.name}"
                    alias[a.asname or a.name] = path
                    found.add(path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                path = dotted(node)
                if path is not None:
                    found.add(path)
    return found


def usage(root: Path, docs: list[str], by_id: dict[int, str]) -> dict[str, list[str]]:
    """{chapter page: sorted documented qualnames its code uses}, for the notebook pages."""
    pages: dict[str, list[str]] = {}
    for doc in docs:
        source = root / f"{doc}.md"
        if not doc.startswith("notebooks/") or not source.exists():
            continue
        used: set[str] = set()
        for path in uses(code_cells(source.read_text(encoding="utf-8"))):
            obj = _resolve(path)
            if obj is not None and id(obj) in by_id:
                used.add(by_id[id(obj)])
        if used:
            pages[doc] = sorted(used)
    return pages


def _summary(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    first = doc.strip().split("\n\n", 1)[0]
    return " ".join(first.split())


def _directive(entry: Entry) -> str:
    return {"function": "autofunction", "class": "autoclass", "data": "autodata"}[entry.kind]


def render_page(page: str, modules: tuple[str, ...], title: str, chapter: str | None,
                items: list[Entry], chapter_pages: dict[str, str]) -> str:
    """The MyST source of one subpackage's reference page."""
    lines = [f"(api-{page})=", f"# {title}", "",
             "<!-- Generated by tools/api_pages.py from refimpl's __all__ and docstrings. -->",
             ""]
    if chapter is not None and chapter in chapter_pages:
        lines += [f"Taught in {{doc}}`chapter {int(chapter)} </{chapter_pages[chapter]}>`; "
                  "each entry links to the pages that use it and to its source.", ""]
    elif chapter is not None:
        lines += [f"Chapter {int(chapter)}, which teaches these, is not written yet; each "
                  "entry links to the pages that already use it and to its source.", ""]
    else:
        lines += ["Each entry links to the pages that use it and to its source.", ""]
    for name in modules:
        mine = [e for e in items if e.qualname.rsplit(".", 1)[0] == name]
        if not mine:
            continue
        lines += ["```{eval-rst}", f".. automodule:: {name}", "   :no-members:", "",
                  f".. currentmodule:: {name}", "", ".. autosummary::", "   :nosignatures:", ""]
        lines += [f"   {e.qualname.rsplit('.', 1)[1]}" for e in mine]
        lines += [""]
        for e in mine:
            lines += [f".. {_directive(e)}:: {e.qualname}"]
            if e.kind == "class":
                lines += ["   :members:"]
            lines += [""]
        lines += ["```", ""]
    subs = [m for name in modules for m in submodules(name)]
    if subs:
        lines += ["## Modules", "",
                  "Where the names above are defined (the subpackage re-exports them):", "",
                  "```{eval-rst}"]
        for name in subs:
            lines += [f".. py:module:: {name}", "   :no-typesetting:", "",
                      f"- ``{name}``: {_summary(importlib.import_module(name))}", ""]
        lines += ["```", ""]
    return "\n".join(lines).rstrip() + "\n"


def submodules(name: str) -> list[str]:
    """The public modules of a subpackage (none for a plain module or the top level, whose
    subpackages have pages of their own)."""
    module = importlib.import_module(name)
    if name == "refimpl" or not hasattr(module, "__path__"):
        return []
    out = []
    for info in pkgutil.iter_modules(module.__path__, name + "."):
        short = info.name.rsplit(".", 1)[1]
        # skip private modules, and those a function of the same name shadows
        # (refimpl.linalg.lu is the function; its module is refimpl.linalg.lu's __module__)
        if not short.startswith("_") and inspect.ismodule(getattr(module, short, None)):
            out.append(info.name)
    return out


def render_index(first_lines: dict[str, str]) -> str:
    """The reference's first page: a table of the subpackage pages."""
    lines = ["(api-index)=", "# API reference", "",
             "<!-- Generated by tools/api_pages.py. -->", "",
             "Every public name of `refimpl`, one page per subpackage, generated from the "
             "package's docstrings. Each entry shows its signature and numpydoc sections "
             "(parameters, returns, raises), links to the chapter pages that use it and to "
             "its source; each chapter page ends with links to the entries it uses. "
             "`import refimpl` is light: torch and Numba load with the subpackages that need "
             "them.", "",
             "| Page | Modules | What it holds |", "|---|---|---|"]
    for page, modules, title, _ in SUBPACKAGES:
        mods = ", ".join(f"`{m}`" for m in modules)
        lines.append(f"| {{doc}}`{title} <{page}>` | {mods} | {first_lines[page]} |")
    return "\n".join(lines) + "\n"


def build(root: Path, docs: list[str], chapter_pages: dict[str, str]) -> dict[str, str]:
    """{path under book/generated: text} of the reference pages and ``api/usage.json``.

    ``docs`` are the book's pages in reading order; ``chapter_pages`` maps a chapter number
    (``"02"``) to its first page, for written chapters.
    """
    found, by_id = entries()
    by_page: dict[str, list[Entry]] = {}
    for e in found.values():
        by_page.setdefault(e.page, []).append(e)
    out: dict[str, str] = {}
    first_lines: dict[str, str] = {}
    for page, modules, title, chapter in SUBPACKAGES:
        out[f"{API}/{page}.md"] = render_page(page, modules, title, chapter,
                                              by_page.get(page, []), chapter_pages)
        head = importlib.import_module(modules[0])
        first_lines[page] = _summary(head).replace("|", "\\|")
    out[f"{API}/index.md"] = render_index(first_lines)
    pages = usage(root, docs, by_id)
    taught: dict[str, list[str]] = {}
    for doc, names in pages.items():
        for name in names:
            taught.setdefault(name, []).append(doc)
    home = {e.qualname: chapter_pages[ch] for e in found.values()
            for p, _, _, ch in SUBPACKAGES if p == e.page and ch in chapter_pages}
    out[f"{API}/usage.json"] = json.dumps(
        {"pages": pages, "taught": dict(sorted(taught.items())), "home": dict(sorted(home.items())),
         "entries": {q: e.kind for q, e in sorted(found.items())}},
        indent=1, ensure_ascii=False) + "\n"
    return out

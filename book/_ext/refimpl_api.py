"""Sphinx extension of the book's API reference (loaded through ``_config.yml``'s
``local_extensions``; the pages come from ``tools/api_pages.py``).

It reads ``book/generated/api/usage.json`` and

- **fails the strict build on an undocumented public name.** Every name the reference
  documents, and every public method and property its classes define, must have a docstring
  (data: a ``#:`` comment) that numpydoc parses without a warning; each failure is a Sphinx
  warning, which ``-W`` turns into an error;
- **links chapter pages to the reference.** Each chapter page ends with a section listing the
  reference entries of the refimpl names its code uses (cross-references: an entry that does
  not exist is a warning, too);
- **links the reference to the chapters.** Each entry ends with "In the book:" and the pages
  that use it (or, when none does yet, the first page of the chapter that teaches its
  subpackage);
- **links each entry to its source** (``sphinx.ext.linkcode``) in the repository that
  ``_config.yml``'s ``repository.url`` names, at the lines that define it;
- drops the ``Alias for field number N`` entries that named tuples' fields would add.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import warnings
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.util import logging

USAGE = Path("book") / "generated" / "api" / "usage.json"
SECTION_ID = "refimpl-on-this-page"
SECTION_TITLE = "refimpl on this page"

logger = logging.getLogger(__name__)


def resolve(qualname: str) -> Any:
    """The object a dotted name denotes: the longest importable module, then attributes."""
    parts = qualname.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(f"cannot import {qualname}")


def _data_documented(qualname: str) -> bool:
    """Whether a module-level constant has a ``#:`` doc comment where it is assigned: in the
    module named, or in one of its package's modules (for re-exported names)."""
    import pkgutil

    from sphinx.pycode import ModuleAnalyzer

    module_name, attr = qualname.rsplit(".", 1)
    module = importlib.import_module(module_name)
    names = [module_name]
    if hasattr(module, "__path__"):
        names += [m.name for m in pkgutil.iter_modules(module.__path__, module_name + ".")]
    for name in names:
        try:
            docs = ModuleAnalyzer.for_module(name).find_attr_docs()
        except Exception:  # a module without readable source documents nothing
            continue
        if ("", attr) in docs and any(line.strip() for line in docs[("", attr)]):
            return True
    return False


def docstring_problems(qualname: str, obj: Any) -> list[str]:
    """What is wrong with one object's docstring: missing, or numpydoc cannot parse it."""
    from numpydoc.docscrape import NumpyDocString

    doc = inspect.getdoc(obj)
    if not doc or not doc.strip():
        return [f"{qualname} has no docstring"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            NumpyDocString(doc)
        except Exception as exc:  # numpydoc raises ValueError and others
            return [f"the docstring of {qualname} does not parse: {exc}"]
    return [f"the docstring of {qualname} does not parse: {w.message}" for w in caught]


# Hooks of torch's classes that refimpl's modules override but that are not part of the API.
HOOKS = ("extra_repr",)


def _own_members(cls: type) -> list[tuple[str, Any]]:
    """The public methods and properties a refimpl class defines itself, but for ``HOOKS``."""
    out = []
    for name, raw in vars(cls).items():
        if name.startswith("_") or name in HOOKS:
            continue
        if isinstance(raw, (staticmethod, classmethod)):
            raw = raw.__func__
        if inspect.isfunction(raw) or isinstance(raw, property):
            out.append((name, getattr(cls, name)))
    return out


def _doc_owner(cls: type, name: str) -> type | None:
    """The class whose definition of ``name`` gives the docstring autodoc shows."""
    for klass in cls.__mro__:
        raw = vars(klass).get(name)
        if isinstance(raw, (staticmethod, classmethod)):
            raw = raw.__func__
        if raw is not None and (getattr(raw, "__doc__", None) or "").strip():
            return klass
    return None


def member_problems(qualname: str, cls: type) -> list[str]:
    """The problems of a class's own members: a docstring of their own or one inherited from
    a refimpl class (one inherited from torch's ``Module.forward`` says nothing of ours)."""
    problems = []
    for name, member in _own_members(cls):
        owner = _doc_owner(cls, name)
        if owner is not None and not owner.__module__.startswith("refimpl"):
            problems.append(f"{qualname}.{name} has no docstring of its own (it would show "
                            f"{owner.__module__}.{owner.__qualname__}.{name}'s)")
            continue
        problems += docstring_problems(f"{qualname}.{name}", member)
    return problems


def entry_problems(entries: dict[str, str]) -> list[str]:
    """Every docstring problem of the documented entries ({qualname: kind})."""
    problems: list[str] = []
    for qualname, kind in entries.items():
        obj = resolve(qualname)
        if kind == "data":
            if not _data_documented(qualname):
                problems.append(f"{qualname} has no '#:' doc comment")
            continue
        problems += docstring_problems(qualname, obj)
        if kind == "class":
            problems += member_problems(qualname, obj)
    return problems


def _usage(app) -> dict | None:
    path = Path(app.srcdir) / USAGE
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def load_and_check(app) -> None:
    app.refimpl_usage = _usage(app)
    if app.refimpl_usage is None:
        return
    for problem in entry_problems(app.refimpl_usage["entries"]):
        logger.warning(problem, type="refimpl", subtype="docstring")


def in_the_book(app, what, name, obj, options, lines) -> None:
    """Append "In the book:" and the pages that use the entry (``autodoc-process-docstring``,
    after numpydoc has turned the docstring into reST)."""
    usage = getattr(app, "refimpl_usage", None)
    if not usage or name not in usage["entries"]:
        return
    docs = usage["taught"].get(name)
    if docs:
        links = ", ".join(f":doc:`/{d}`" for d in docs)
        lines += ["", f"**In the book:** {links}."]
    elif name in usage["home"]:
        lines += ["", f"**In the book:** the chapter of :doc:`/{usage['home'][name]}` "
                      "(no page calls it directly yet)."]


def skip_field_aliases(app, what, name, obj, skip, options):
    """Skip the ``Alias for field number N`` properties of named tuples."""
    if isinstance(obj, property) and (obj.__doc__ or "").startswith("Alias for field number"):
        return True
    return None


def add_page_links(app, doctree) -> None:
    """End a chapter page with links to the reference entries its code uses."""
    usage = getattr(app, "refimpl_usage", None)
    docname = app.env.docname
    if not usage or docname not in usage["pages"]:
        return
    top = doctree.next_node(nodes.section)
    if top is None:
        return
    section = nodes.section(ids=[SECTION_ID], names=[SECTION_ID])
    section += nodes.title(text=SECTION_TITLE)
    para = nodes.paragraph(text="The reference entries of the refimpl names this page's code "
                                "uses: ")
    names = usage["pages"][docname]
    for i, qualname in enumerate(names):
        short = qualname.removeprefix("refimpl.")
        ref = addnodes.pending_xref("", refdomain="py", reftype="obj", reftarget=qualname,
                                    refexplicit=True, refwarn=True, refdoc=docname)
        ref += nodes.literal(short, short, classes=["xref", "py", "py-obj"])
        para += ref
        para += nodes.Text(", " if i < len(names) - 1 else ".")
    section += para
    top += section


def make_linkcode_resolve(root: Path, url: str, branch: str):
    """``linkcode_resolve`` for the packages kept in the repository at ``url``, whose working
    copy is ``root`` (a package ``p`` lives in ``root/p``)."""

    def linkcode_resolve(domain: str, info: dict) -> str | None:
        if domain != "py" or not info.get("module"):
            return None
        try:
            obj = resolve(f"{info['module']}.{info['fullname']}")
            obj = inspect.unwrap(obj)
            if isinstance(obj, property):
                obj = obj.fget
            path = Path(inspect.getsourcefile(obj)).resolve()
            lines, start = inspect.getsourcelines(obj)
        except (ImportError, AttributeError, TypeError, OSError):
            return None
        try:
            rel = path.relative_to(root)
        except ValueError:
            return None  # defined outside the repository
        if rel.parts[0] != info["module"].split(".")[0]:
            return None  # not the package's own source (e.g. a library in root/.venv)
        end = start + len(lines) - 1
        return f"{url}/blob/{branch}/{rel.as_posix()}#L{start}-L{end}"

    return linkcode_resolve


def set_linkcode(app, config) -> None:
    options = config.html_theme_options or {}
    url = str(options.get("repository_url", "")).rstrip("/")
    branch = options.get("repository_branch") or "main"
    root = Path(os.path.abspath(app.srcdir))
    if url:
        config.linkcode_resolve = make_linkcode_resolve(root, url, branch)
    else:
        config.linkcode_resolve = lambda domain, info: None


def setup(app):
    app.setup_extension("sphinx.ext.autodoc")
    app.setup_extension("sphinx.ext.linkcode")
    app.connect("config-inited", set_linkcode)
    app.connect("builder-inited", load_and_check)
    app.connect("autodoc-process-docstring", in_the_book, priority=600)
    app.connect("autodoc-skip-member", skip_field_aliases)
    app.connect("doctree-read", add_page_links, priority=400)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

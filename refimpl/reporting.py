"""What the book's notebooks show and record: claims, library source, tables.

A notebook that tries a paper's claim calls :func:`record_claim`. When the notebook is
executed by ``make notebooks`` (``tools/execute_notebooks.py`` sets ``REFIMPL_RECORD_DIR``)
the measurement is written as JSON beside the book's data and the reproductions page is
generated from it. Run anywhere else (Colab, nbval, a student's machine) it only returns
the record.

:func:`show_source` shows a refimpl function's algorithmic core, with the full source folded
below it; :func:`table` shows rows of results as a table that fits the book's column.
"""

from __future__ import annotations

import ast
import html
import inspect
import json
import os
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

__all__ = ["STATUSES", "Claim", "Source", "Table", "algorithmic_core", "record_claim",
           "show_source", "table"]

#: The outcomes :func:`record_claim` accepts for a paper's claim.
STATUSES = ("reproduced", "partly", "not reproduced")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class Claim:
    """The outcome of trying one paper's claim, as :func:`record_claim` recorded it.

    Attributes
    ----------
    id : str
        The claim's key in ``book/data/reproductions.yaml``.
    status : str
        One of ``STATUSES``.
    measured : str
        One line saying what was measured, with the numbers.
    values : dict
        The numbers behind ``measured``, as plain JSON values.
    """

    id: str
    status: str
    measured: str
    values: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The record as the JSON object written under ``book/data/measured/``."""
        return {"id": self.id, "status": self.status, "measured": self.measured,
                "values": self.values}

    def __repr__(self) -> str:
        return f"claim {self.id}: {self.status}"


def record_claim(claim_id: str, *, status: str, measured: str, **values: Any) -> Claim:
    """Record the outcome of trying a paper's claim.

    Parameters
    ----------
    claim_id : str
        The claim's key in ``book/data/reproductions.yaml``.
    status : {"reproduced", "partly", "not reproduced"}
        The verdict.
    measured : str
        One line saying what was measured, with the numbers.
    **values
        Numbers behind ``measured`` (JSON-serialisable), kept for the record.

    Returns
    -------
    Claim
        The record; a notebook shows it as one line, ``claim <id>: <status>``.

    Raises
    ------
    ValueError
        If ``claim_id`` is not a lowercase slug, ``status`` is not one of ``STATUSES`` or
        ``measured`` is empty.
    """
    if not isinstance(claim_id, str) or not _ID.match(claim_id):
        raise ValueError(f"claim_id must be a lowercase slug; got {claim_id!r}")
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}; got {status!r}")
    if not isinstance(measured, str) or not measured.strip():
        raise ValueError("measured must be a non-empty string")
    claim = Claim(claim_id, status, measured, {k: _plain(v) for k, v in values.items()})
    out = os.environ.get("REFIMPL_RECORD_DIR")
    if out:
        path = Path(out) / f"{claim_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(claim.as_dict(), indent=2, sort_keys=True) + "\n")
    return claim


def _plain(v: Any) -> Any:
    """Turn NumPy scalars and arrays into plain JSON values."""
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


# --- library source -----------------------------------------------------------------------

def _is_check_call(node: ast.AST) -> TypeGuard[ast.Call]:
    """A call of an argument check: ``check_*(...)``, ``_check_*(...)``, ``_validation.*``."""
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    if isinstance(f, ast.Attribute):
        owner = f.value.id if isinstance(f.value, ast.Name) else ""
        return owner == "_validation" or f.attr.startswith(("check_", "_check_"))
    return isinstance(f, ast.Name) and f.id.startswith(("check_", "_check_"))


def _is_check(stmt: ast.stmt) -> bool:
    """An argument check that the algorithm does not need to be read.

    ``check_x(x, ...)``; ``x = check_x(x, ...)`` (the value is validated in place); and an
    ``if`` whose only job is to raise or to check. An assignment of a checked value to a new name
    (``k = check_rank(rank, ...)``) is kept: the algorithm reads ``k``.
    """
    if isinstance(stmt, ast.Expr):
        return _is_check_call(stmt.value)
    if isinstance(stmt, ast.Assign) and _is_check_call(stmt.value):
        args = stmt.value.args
        names = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
        return (len(names) == len(stmt.targets) == 1 and bool(args)
                and isinstance(args[0], ast.Name) and args[0].id == names[0])
    if isinstance(stmt, ast.If) and not stmt.orelse:  # raises, or checks only under a flag
        return all(isinstance(s, ast.Raise) or _is_check(s) for s in stmt.body)
    return False


def _hidden_lines(tree: ast.AST) -> set[int]:
    """1-based line numbers of docstrings and argument checks in ``tree``."""
    hidden: set[int] = set()
    for node in ast.walk(tree):
        blocks = [getattr(node, key, None) for key in ("body", "orelse", "finalbody")]
        for block in (b for b in blocks if isinstance(b, list)):
            for i, stmt in enumerate(block):
                is_doc = (i == 0 and block is blocks[0]
                          and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef
                                         | ast.ClassDef)
                          and isinstance(stmt, ast.Expr)
                          and isinstance(stmt.value, ast.Constant)
                          and isinstance(stmt.value.value, str))
                if is_doc or _is_check(stmt):
                    hidden.update(range(stmt.lineno, stmt.end_lineno + 1))
    # A name assigned only for a check (``want = ...`` read by a hidden ``if ...: raise``).
    loads: dict[str, set[int]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            loads.setdefault(node.id, set()).add(node.lineno)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and loads.get(node.targets[0].id) and loads[node.targets[0].id] <= hidden):
            hidden.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return hidden


def algorithmic_core(source: str) -> str:
    """The source of a function or class without its docstrings and argument checks.

    Parameters
    ----------
    source : str
        Python source of one function or class (as ``inspect.getsource`` gives it).

    Returns
    -------
    str
        The same source with docstrings, ``check_*`` calls and raise-only ``if`` blocks
        removed, comments and layout otherwise kept, runs of blank lines collapsed.
    """
    source = textwrap.dedent(source)
    hidden = _hidden_lines(ast.parse(source))
    kept = [line for i, line in enumerate(source.splitlines(), 1) if i not in hidden]
    out: list[str] = []
    for line in kept:
        if line.strip() or (out and out[-1].strip()):
            out.append(line)
    return "\n".join(out).rstrip() + "\n"


def _highlight(code: str) -> str:
    """Code as HTML with inline colours (no stylesheet needed), wrapped to the column."""
    pre = "white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; padding: 0.6em;"
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:  # pragma: no cover - pygments comes with IPython
        return f'<pre style="{pre}">{html.escape(code)}</pre>'
    return highlight(code, PythonLexer(), HtmlFormatter(noclasses=True, prestyles=pre))


@dataclass(frozen=True)
class Source:
    """A refimpl object's source, as :func:`show_source` shows it.

    Attributes
    ----------
    name : str
        The object's qualified name, e.g. ``refimpl.sketch.rsvd.randomized_svd``.
    file : str
        Its file, relative to the package's parent folder.
    core : str
        The algorithmic core (:func:`algorithmic_core`).
    full : str
        The whole source, docstring and checks included.
    """

    name: str
    file: str
    core: str
    full: str

    def __repr__(self) -> str:
        return self.core

    def _repr_html_(self) -> str:
        n_hidden = len(self.full.splitlines()) - len(self.core.splitlines())
        summary = (f"Full source of <code>{html.escape(self.name)}</code> "
                   f"({html.escape(self.file)}; {n_hidden} more lines: docstring and "
                   f"argument checks)")
        return (f'<div class="refimpl-source">{_highlight(self.core)}'
                f"<details><summary>{summary}</summary>{_highlight(self.full)}</details>"
                f"</div>")


def show_source(obj: Callable[..., Any]) -> Source:
    """Show a refimpl function's or class's algorithmic core, and its full source folded.

    The book's notebooks never define algorithms; they show refimpl's code with this. The
    core leaves out the docstring and the argument checks (:func:`algorithmic_core`); the
    full source sits in a dropdown below it.

    Parameters
    ----------
    obj : function, class, method or Numba dispatcher
        What to show (a Numba kernel shows its Python source, ``py_func``).

    Returns
    -------
    Source
        Rendered by the notebook as highlighted HTML; its plain-text form is the core.
    """
    obj = getattr(obj, "py_func", obj)  # a Numba dispatcher: its Python source
    full = textwrap.dedent(inspect.getsource(obj))
    module = inspect.getmodule(obj)
    name = f"{getattr(module, '__name__', '?')}.{getattr(obj, '__qualname__', obj)}"
    path = Path(inspect.getsourcefile(obj) or "?")
    parts = path.parts
    file = "/".join(parts[parts.index("refimpl"):]) if "refimpl" in parts else path.name
    return Source(name, file, algorithmic_core(full), full)


# --- tables -------------------------------------------------------------------------------

def _cell(value: Any, fmt: str | None) -> str:
    if isinstance(value, str):
        return value
    if fmt is not None:
        return format(value, fmt)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3g}"
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return _cell(value.item(), fmt)
    return str(value)


@dataclass(frozen=True)
class Table:
    """Rows of results with named columns, as :func:`table` makes them.

    Attributes
    ----------
    columns : tuple of str
        Column headers.
    rows : tuple of tuple of str
        The formatted cells, one tuple per row.
    caption : str or None
        A caption shown above the table.
    """

    columns: tuple
    rows: tuple
    caption: str | None = None

    def __repr__(self) -> str:
        widths = [max(len(c), *(len(r[j]) for r in self.rows)) if self.rows else len(c)
                  for j, c in enumerate(self.columns)]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.rjust(w) if j else c.ljust(w)
                             for j, (c, w) in enumerate(zip(cells, widths, strict=True)))

        out = [self.caption] if self.caption else []
        out += [line(self.columns), line(["-" * w for w in widths])]
        out += [line(r) for r in self.rows]
        return "\n".join(s.rstrip() for s in out)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f'<td style="text-align: {"left" if j == 0 else "right"}">'
                             f"{html.escape(c)}</td>" for j, c in enumerate(r)) + "</tr>"
            for r in self.rows)
        cap = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return (f'<table class="table refimpl-table">{cap}<thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>")


def table(rows: Iterable[Mapping[str, Any] | Sequence[Any]], columns: Sequence[str] | None = None,
          *, formats: Mapping[str, str] | None = None, caption: str | None = None) -> Table:
    """Show rows of results as a table (HTML in a notebook, aligned text elsewhere).

    Printing a wide result line by line overflows the book's column; a table wraps its
    cells instead.

    Parameters
    ----------
    rows : iterable of dict or of sequences
        One entry per row. Dicts are read by column name (``columns`` defaults to the first
        row's keys); sequences by position.
    columns : sequence of str, optional
        Column headers. Required when the rows are sequences.
    formats : dict, optional
        Format specs by column name, e.g. ``{"error": ".2e"}``. Without one, strings are
        shown as given, integers with thousands separators, floats with 3 significant
        digits and booleans as yes/no.
    caption : str, optional
        A line shown above the table.

    Returns
    -------
    Table
        Rendered by the notebook; ``repr`` gives the aligned text.

    Raises
    ------
    ValueError
        If there are no columns, or a row has a different number of cells than columns.
    """
    rows = list(rows)
    if columns is None:
        if not rows or not isinstance(rows[0], dict):
            raise ValueError("columns is required unless rows are dicts")
        columns = list(rows[0])
    columns = [str(c) for c in columns]
    if not columns:
        raise ValueError("a table needs at least one column")
    formats = dict(formats or {})
    unknown = set(formats) - set(columns)
    if unknown:
        raise ValueError(f"formats names unknown columns: {sorted(unknown)}")
    cells = []
    for i, row in enumerate(rows):
        values = [row[c] for c in columns] if isinstance(row, dict) else list(row)
        if len(values) != len(columns):
            raise ValueError(f"row {i} has {len(values)} cells; expected {len(columns)}")
        cells.append(tuple(_cell(v, formats.get(c)) for v, c in zip(values, columns,
                                                                     strict=True)))
    return Table(tuple(columns), tuple(cells), caption)

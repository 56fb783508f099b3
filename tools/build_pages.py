"""Generate the book's data-driven pages from book/data/, benchmarks/results/ and notebooks/.

    python tools/build_pages.py              # writes book/generated/*.md and figures/*.svg
    python tools/build_pages.py --out DIR    # writes elsewhere (tests use a temporary folder)

Inputs
    book/data/papers.tsv          every paper of the source collection (id, class, chapter, title)
    book/data/chapters.yaml       the plan of the book: parts and chapters
    book/data/coverage.yaml       how the book treats each paper (default: planned)
    book/data/reproductions.yaml  the papers' claims that notebooks try
    book/data/measured/*.json     outcomes written by refimpl.reporting.record_claim
    benchmarks/results/*.json     peer comparisons written by `make bench`
    notebooks/**/*.ipynb          the executed notebooks: nbclient's per-cell timestamps and the
                                  kernel configuration tools/execute_notebooks.py records

Outputs (MyST Markdown and SVG, git-ignored, rebuilt by `make pages`, `make book`, `make test`)
    coverage.md  reproductions.md  benchmarks.md  status.md  map.md (included by book/intro.md)
    figures/bench-<name>.svg      one ratio chart per benchmark table (matplotlib, Agg)

The output depends only on the inputs (sorted; the only times shown are those recorded in the
inputs; the SVGs carry no date and fixed ids), and a file is rewritten only when its content
changes. Malformed data stops the script with exit status 1 and a list of every problem found.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout without installing refimpl
    sys.path.insert(0, str(ROOT))

from refimpl.backend import KERNEL_ENV_VARS  # noqa: E402
from refimpl.reporting import STATUSES as CLAIM_STATUSES  # noqa: E402
from tools import api_pages  # noqa: E402

GENERATED = Path("book") / "generated"

PAPER_CLASSES = ("core", "context", "off")
COVERAGE_STATUSES = ("implemented", "discussed", "planned")
CHAPTER_STATUSES = ("written", "planned")
# A measured claim has one of refimpl.reporting.STATUSES (imported above as CLAIM_STATUSES);
# a claim without a measured file is shown as NOT_TRIED.
NOT_TRIED = "not yet tried"

# The key of the notebook metadata where tools/execute_notebooks.py records the kernel
# configuration of a run (tools.execute_notebooks.RUN_METADATA; tests check they agree).
RUN_METADATA = "refimpl"

BENCHMARK_KEYS = ("benchmark", "title", "description", "ours", "peer", "device", "machine",
                  "created", "rows")
BENCHMARK_ROW_KEYS = ("case", "ours_s", "peer_s", "ratio")

_PAPER_ID = re.compile(r"^p\d{3}$")
_CHAPTER = re.compile(r"^\d{2}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
_DOC = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")

BADGES = {
    "implemented": "bdg-success", "discussed": "bdg-info", "planned": "bdg-secondary",
    "reproduced": "bdg-success", "partly": "bdg-warning", "not reproduced": "bdg-danger",
    NOT_TRIED: "bdg-secondary",
}


class DataError(Exception):
    """The book's data is malformed; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Paper:
    id: str
    cls: str
    chapter: str
    title: str


@dataclass(frozen=True)
class Chapter:
    number: str
    part: str
    title: str
    description: str
    status: str
    pages: tuple[str, ...]


@dataclass(frozen=True)
class Coverage:
    status: str
    refimpl: tuple[str, ...] = ()
    notebook: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    chapter: str
    claim: str
    section: str


@dataclass(frozen=True)
class NotebookRun:
    """What a committed .ipynb records of its execution (None where it records nothing)."""
    doc: str
    in_toc: bool
    seconds: float | None = None
    last_run: datetime | None = None
    run: dict | None = None  # tools/execute_notebooks.py's RUN_METADATA entry


@dataclass
class BookData:
    root: Path
    parts: dict[str, str]
    chapters: dict[str, Chapter]
    papers: dict[str, Paper]
    coverage: dict[str, Coverage]
    claims: list[Claim]
    measured: dict[str, dict]
    benchmarks: list[tuple[str, dict]] = field(default_factory=list)
    notebooks: list[NotebookRun] = field(default_factory=list)


# --------------------------------------------------------------------------- loading


def _read_yaml(path: Path, problems: list[str]):
    if not path.exists():
        problems.append(f"{_rel(path)}: file is missing")
        return None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        problems.append(f"{_rel(path)}: not valid YAML ({exc})")
        return None


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _text(value) -> str:
    """A YAML scalar as one line of text."""
    return " ".join(str(value).split()) if value is not None else ""


def toc_order(root: Path) -> list[str]:
    """Every doc path listed in _toc.yml (root, chapters, sections), in reading order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8")) or {}
    docs: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str) and _strip_suffix(node[key]) not in docs:
                    docs.append(_strip_suffix(node[key]))
            for key, value in node.items():
                if key not in ("root", "file"):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return docs


def toc_docs(root: Path) -> set[str]:
    """Every doc path listed in _toc.yml (root, chapters, sections), without suffix."""
    return set(toc_order(root))


def _strip_suffix(doc: str) -> str:
    for suffix in (".md", ".ipynb"):
        if doc.endswith(suffix):
            return doc[: -len(suffix)]
    return doc


def _doc_problem(root: Path, doc, where: str, toc: set[str]) -> str | None:
    """Why ``doc`` cannot be linked from the book, or None if it can."""
    if not isinstance(doc, str) or not _DOC.match(doc) or ".." in doc.split("/"):
        return f"{where}: {doc!r} is not a doc path such as notebooks/01_meta/meta_factorization"
    if doc.endswith((".md", ".ipynb")):
        return f"{where}: write the doc path {doc!r} without its suffix"
    # The book renders a notebook's executed .ipynb (its .md source is excluded in _config.yml).
    wanted = [".ipynb"] if doc.startswith("notebooks/") else [".md", ".ipynb"]
    if not any((root / (doc + s)).exists() for s in wanted):
        return f"{where}: missing notebook file {doc}{wanted[0]} for {doc!r}"
    if doc not in toc:
        return f"{where}: {doc!r} is not in _toc.yml, so the book cannot link to it"
    return None


def load_papers(root: Path, chapters: dict[str, Chapter], problems: list[str]) -> dict:
    path = root / "book" / "data" / "papers.tsv"
    papers: dict[str, Paper] = {}
    if not path.exists():
        problems.append(f"{_rel(path)}: file is missing")
        return papers
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or rows[0] != ["id", "class", "chapter", "title"]:
        problems.append(f"{_rel(path)}: the header must be id, class, chapter, title "
                        f"(tab-separated); got {rows[0] if rows else 'an empty file'}")
        return papers
    for line, row in enumerate(rows[1:], start=2):
        where = f"{_rel(path)}:{line}"
        if len(row) != 4:
            problems.append(f"{where}: expected 4 tab-separated fields, got {len(row)}")
            continue
        pid, cls, chapter, title = (x.strip() for x in row)
        if not _PAPER_ID.match(pid):
            problems.append(f"{where}: paper id {pid!r} is not of the form p001")
        elif pid in papers:
            problems.append(f"{where}: duplicate paper id {pid}")
        if cls not in PAPER_CLASSES:
            problems.append(f"{where}: unknown class {cls!r} (one of {', '.join(PAPER_CLASSES)})")
        if cls == "off" and chapter != "--":
            problems.append(f"{where}: an off paper has chapter '--', got {chapter!r}")
        if cls in ("core", "context") and chapter not in chapters:
            problems.append(f"{where}: chapter {chapter!r} is not in chapters.yaml")
        if not title:
            problems.append(f"{where}: empty title")
        papers.setdefault(pid, Paper(pid, cls, chapter, title))
    return papers


def load_chapters(root: Path, toc: set[str], problems: list[str]):
    path = root / "book" / "data" / "chapters.yaml"
    data = _read_yaml(path, problems)
    parts: dict[str, str] = {}
    chapters: dict[str, Chapter] = {}
    if not isinstance(data, dict):
        if data is not None:
            problems.append(f"{_rel(path)}: expected a mapping with 'parts' and 'chapters'")
        return parts, chapters
    for i, part in enumerate(data.get("parts") or []):
        if not isinstance(part, dict) or not part.get("id") or not part.get("title"):
            problems.append(f"{_rel(path)}: parts[{i}] needs an id and a title")
            continue
        if str(part["id"]) in parts:
            problems.append(f"{_rel(path)}: duplicate part id {part['id']!r}")
        parts[str(part["id"])] = _text(part["title"])
    for i, ch in enumerate(data.get("chapters") or []):
        where = f"{_rel(path)}: chapters[{i}]"
        if not isinstance(ch, dict):
            problems.append(f"{where}: expected a mapping")
            continue
        unknown = set(ch) - {"number", "part", "title", "description", "status", "pages"}
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
        number = str(ch.get("number", ""))
        if not _CHAPTER.match(number):
            problems.append(f"{where}: number must be two digits in quotes, e.g. \"01\"; "
                            f"got {ch.get('number')!r}")
            continue
        where = f"{_rel(path)}: chapter {number}"
        if number in chapters:
            problems.append(f"{where}: duplicate chapter number")
        if str(ch.get("part")) not in parts:
            problems.append(f"{where}: unknown part {ch.get('part')!r}")
        for key in ("title", "description"):
            if not _text(ch.get(key)):
                problems.append(f"{where}: missing {key}")
        status = ch.get("status")
        if status not in CHAPTER_STATUSES:
            problems.append(f"{where}: unknown status {status!r} "
                            f"(one of {', '.join(CHAPTER_STATUSES)})")
        pages = ch.get("pages") or []
        if not isinstance(pages, list):
            problems.append(f"{where}: pages must be a list of doc paths")
            pages = []
        if status == "written" and not pages:
            problems.append(f"{where}: a written chapter lists its pages")
        if status == "planned" and pages:
            problems.append(f"{where}: a planned chapter lists no pages (mark it written)")
        for doc in pages:
            problem = _doc_problem(root, doc, f"{where}: pages", toc)
            if problem:
                problems.append(problem)
        chapters[number] = Chapter(number, str(ch.get("part")), _text(ch.get("title")),
                                   _text(ch.get("description")), str(status),
                                   tuple(str(p) for p in pages))
    return parts, chapters


def load_coverage(root: Path, papers: dict[str, Paper], toc: set[str],
                  problems: list[str]) -> dict[str, Coverage]:
    path = root / "book" / "data" / "coverage.yaml"
    data = _read_yaml(path, problems)
    coverage: dict[str, Coverage] = {}
    if data is None:
        return coverage
    if not isinstance(data, dict):
        problems.append(f"{_rel(path)}: expected a mapping from paper id to entry")
        return coverage
    for pid, entry in data.items():
        where = f"{_rel(path)}: {pid}"
        if pid not in papers:
            problems.append(f"{where}: unknown paper id (not in papers.tsv)")
            continue
        if papers[pid].cls == "off":
            problems.append(f"{where}: {papers[pid].title!r} is an off paper; off papers "
                            "are not covered")
            continue
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected a mapping with at least 'status'")
            continue
        unknown = set(entry) - {"status", "refimpl", "notebook", "note"}
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
        status = entry.get("status")
        if status not in COVERAGE_STATUSES:
            problems.append(f"{where}: unknown status {status!r} "
                            f"(one of {', '.join(COVERAGE_STATUSES)})")
        names = entry.get("refimpl") or []
        if not isinstance(names, list):
            problems.append(f"{where}: refimpl must be a list of dotted names")
            names = []
        for name in names:
            if not isinstance(name, str) or not _DOTTED.match(name) \
                    or not name.startswith("refimpl."):
                problems.append(f"{where}: {name!r} is not a dotted name inside refimpl")
        notebook = entry.get("notebook")
        if notebook is not None:
            problem = _doc_problem(root, notebook, f"{where}: notebook", toc)
            if problem:
                problems.append(problem)
        coverage[pid] = Coverage(str(status), tuple(str(n) for n in names),
                                 notebook, _text(entry.get("note")))
    return coverage


def _split_section(section: str) -> tuple[str, str | None]:
    doc, _, label = section.partition("#")
    return doc, (label or None)


def load_claims(root: Path, papers: dict[str, Paper], chapters: dict[str, Chapter],
                toc: set[str], problems: list[str]) -> list[Claim]:
    path = root / "book" / "data" / "reproductions.yaml"
    data = _read_yaml(path, problems)
    claims: list[Claim] = []
    if data is None:
        return claims
    items = data.get("claims") if isinstance(data, dict) else None
    if not isinstance(items, list):
        problems.append(f"{_rel(path)}: expected a mapping with a list under 'claims'")
        return claims
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"{_rel(path)}: claims[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected a mapping")
            continue
        cid = item.get("id")
        if not isinstance(cid, str) or not _SLUG.match(cid):
            problems.append(f"{where}: id must be a lowercase slug; got {cid!r}")
            continue
        where = f"{_rel(path)}: {cid}"
        if cid in seen:
            problems.append(f"{where}: duplicate claim id")
        seen.add(cid)
        unknown = set(item) - {"id", "paper", "chapter", "claim", "section"}
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
        paper = item.get("paper")
        if paper not in papers:
            problems.append(f"{where}: unknown paper id {paper!r}")
        elif papers[paper].cls == "off":
            problems.append(f"{where}: paper {paper} is an off paper")
        chapter = str(item.get("chapter", ""))
        if chapter not in chapters:
            problems.append(f"{where}: unknown chapter {item.get('chapter')!r}")
        if not _text(item.get("claim")):
            problems.append(f"{where}: missing claim")
        section = item.get("section")
        if not isinstance(section, str):
            problems.append(f"{where}: missing section")
            continue
        doc, label = _split_section(section)
        problem = _doc_problem(root, doc, f"{where}: section", toc)
        if problem:
            problems.append(problem)
        elif label is not None and not _has_label(root, doc, label):
            problems.append(f"{where}: section label {label!r} is not a MyST target "
                            f"'({label})=' in {doc}")
        claims.append(Claim(cid, str(paper), chapter, _text(item.get("claim")), section))
    return claims


def _has_label(root: Path, doc: str, label: str) -> bool:
    target = f"({label})="
    for suffix in (".ipynb", ".md"):
        path = root / (doc + suffix)
        if path.exists() and target in path.read_text(encoding="utf-8"):
            return True
    return False


def load_measured(root: Path, claims: list[Claim], problems: list[str]) -> dict[str, dict]:
    folder = root / "book" / "data" / "measured"
    ids = {c.id for c in claims}
    measured: dict[str, dict] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        where = _rel(path)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not valid JSON ({exc})")
            continue
        if not isinstance(record, dict):
            problems.append(f"{where}: expected a JSON object")
            continue
        cid = record.get("id")
        if cid != path.stem:
            problems.append(f"{where}: id {cid!r} does not match the file name")
        if cid not in ids:
            problems.append(f"{where}: no claim {cid!r} in reproductions.yaml")
        if record.get("status") not in CLAIM_STATUSES:
            problems.append(f"{where}: unknown status {record.get('status')!r} "
                            f"(one of {', '.join(CLAIM_STATUSES)})")
        if not isinstance(record.get("measured"), str) or not record["measured"].strip():
            problems.append(f"{where}: 'measured' must be a non-empty string")
        measured[str(cid)] = record
    return measured


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def load_benchmarks(root: Path, problems: list[str]) -> list[tuple[str, dict]]:
    folder = root / "benchmarks" / "results"
    results: list[tuple[str, dict]] = []
    names: dict[str, str] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        where = _rel(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not valid JSON ({exc})")
            continue
        bad = benchmark_problems(data)
        problems.extend(f"{where}: {p}" for p in bad)
        if bad:
            continue
        if data["benchmark"] in names:
            problems.append(f"{where}: benchmark {data['benchmark']!r} is also in "
                            f"{names[data['benchmark']]}")
        names[data["benchmark"]] = where
        results.append((path.name, data))
    return results


# The measured quantities a benchmark table may compare: the suffix of its ours_<x> / peer_<x>
# keys -> (what it is, the unit shown, the factor from the recorded unit to seconds or bytes).
QUANTITIES = {
    "s": ("time", "s", 1.0),
    "ms": ("time", "ms", 1e-3),
    "bytes": ("memory", "B", 1.0),
    "kib": ("memory", "KiB", 2.0**10),
    "mib": ("memory", "MiB", 2.0**20),
    "gib": ("memory", "GiB", 2.0**30),
}


def _quantity(rows: list) -> str | None:
    """The suffix x for which every row has numeric ours_x and peer_x (None if there is none)."""
    for suffix in QUANTITIES:
        if rows and all(isinstance(r, dict) and _is_number(r.get(f"ours_{suffix}"))
                        and _is_number(r.get(f"peer_{suffix}")) for r in rows):
            return suffix
    return None


def _extra_tables(data: dict) -> list[str]:
    """The top-level keys of a benchmark result that hold a further table ({"rows": [...]})."""
    return [k for k in data if k not in BENCHMARK_KEYS and isinstance(data[k], dict)
            and "rows" in data[k]]


def _rows_problems(rows, where: str, suffix: str | None) -> list[str]:
    out = []
    if not isinstance(rows, list) or not rows:
        return [f"{where} must be a non-empty list"]
    required = ("case", f"ours_{suffix}", f"peer_{suffix}", "ratio") if suffix else \
        ("case", "ratio")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            out.append(f"{where}[{i}] must be an object")
            continue
        out += [f"{where}[{i}] is missing {k!r}" for k in required if k not in row]
        if "case" in row and not isinstance(row["case"], str):
            out.append(f"{where}[{i}].case must be a string")
        for key in required[1:]:
            if key in row and not _is_number(row[key]):
                out.append(f"{where}[{i}].{key} must be a finite number")
        ours, peer = row.get(f"ours_{suffix}"), row.get(f"peer_{suffix}")
        if suffix and all(_is_number(x) for x in (ours, peer, row.get("ratio"))) and peer > 0:
            expected = ours / peer
            if not math.isclose(row["ratio"], expected, rel_tol=0.05, abs_tol=1e-3):
                out.append(f"{where}[{i}].ratio is {row['ratio']}, but ours_{suffix} / "
                           f"peer_{suffix} is {expected:.4g} (the ratio is ours / peer)")
        if _is_number(row.get("ratio")) and row["ratio"] <= 0:
            out.append(f"{where}[{i}].ratio must be positive")
        out += _target_problems(row, f"{where}[{i}].")
    return out


def _target_problems(holder: dict, where: str) -> list[str]:
    if "target_ratio" in holder and not (_is_number(holder["target_ratio"])
                                         and holder["target_ratio"] > 0):
        return [f"{where}target_ratio must be a positive number (ours / peer)"]
    return []


def benchmark_problems(data) -> list[str]:
    """What is wrong with one benchmark JSON object (empty if nothing).

    Besides the keys of ``BENCHMARK_KEYS`` (``rows``: the time table), a result may hold
    ``target_ratio`` (the ours / peer ratio the benchmark aims at, drawn on its figure) and
    further tables: a top-level object with ``rows`` whose rows compare ``ours_<x>`` with
    ``peer_<x>`` for an x of ``QUANTITIES`` (e.g. ``ours_mib``), and optionally its own
    ``target_ratio``.
    """
    if not isinstance(data, dict):
        return ["expected a JSON object"]
    out = [f"missing key {k!r}" for k in BENCHMARK_KEYS if k not in data]
    for key in ("benchmark", "title", "description", "ours", "peer", "device", "created"):
        if key in data and not isinstance(data[key], str):
            out.append(f"{key!r} must be a string")
    if "machine" in data and not isinstance(data["machine"], dict):
        out.append("'machine' must be an object")
    if "rows" in data:
        out += _rows_problems(data["rows"], "rows", "s")
        if out and out[-1] == "rows must be a non-empty list":
            out[-1] = "'rows' must be a non-empty list"
    out += _target_problems(data, "")
    for key in _extra_tables(data):
        rows = data[key]["rows"]
        suffix = _quantity(rows) if isinstance(rows, list) else None
        problems = _rows_problems(rows, f"{key}.rows", suffix)
        if suffix is None and not problems:
            problems = [f"{key}.rows: every row needs numeric ours_<x> and peer_<x> for one x "
                        f"of {', '.join(QUANTITIES)}"]
        out += problems + _target_problems(data[key], f"{key}.")
    return out


def _timestamp(value) -> datetime | None:
    """An ISO 8601 timestamp as nbclient writes it ("2026-12-01T23:09:03.041988Z"), in UTC."""
    if not isinstance(value, str):
        return None
    m = re.match(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?$",
                 value.strip())
    if not m:
        return None
    fraction = (m.group(2) or ".0")[:7]
    zone = m.group(3) or "Z"
    stamp = datetime.fromisoformat(m.group(1) + fraction + ("+00:00" if zone == "Z" else zone))
    return stamp.astimezone(timezone.utc)


def execution_times(nb: dict) -> tuple[float | None, datetime | None]:
    """(seconds from the first cell's input to the last cell's reply, that last reply).

    Read from the ``metadata.execution`` timestamps nbclient records in each code cell
    (``iopub.execute_input``, ``shell.execute_reply``); (None, None) when there are none.
    """
    starts, ends = [], []
    for c in nb.get("cells") or []:
        if not isinstance(c, dict) or c.get("cell_type") != "code":
            continue
        execution = (c.get("metadata") or {}).get("execution") or {}
        start = _timestamp(execution.get("iopub.execute_input"))
        end = _timestamp(execution.get("shell.execute_reply"))
        starts += [start] if start else []
        ends += [end] if end else []
    if not starts or not ends or max(ends) < min(starts):
        return None, None
    return (max(ends) - min(starts)).total_seconds(), max(ends)


def load_notebooks(root: Path, toc: list[str], problems: list[str]) -> list[NotebookRun]:
    """Every committed notebook under notebooks/, in the order of _toc.yml."""
    folder = root / "notebooks"
    order = {doc: i for i, doc in enumerate(toc)}
    runs = []
    for path in sorted(folder.rglob("*.ipynb")) if folder.is_dir() else []:
        if ".ipynb_checkpoints" in path.parts:
            continue
        doc = path.relative_to(root).with_suffix("").as_posix()
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            problems.append(f"{_rel(path)}: not valid JSON ({exc})")
            continue
        if not isinstance(nb, dict):
            problems.append(f"{_rel(path)}: expected a notebook (a JSON object)")
            continue
        run = (nb.get("metadata") or {}).get(RUN_METADATA)
        if run is not None and not isinstance(run, dict):
            problems.append(f"{_rel(path)}: metadata.{RUN_METADATA} must be an object")
            run = None
        seconds, last = execution_times(nb)
        runs.append(NotebookRun(doc, doc in order, seconds, last, run))
    return sorted(runs, key=lambda r: (order.get(r.doc, len(order)), r.doc))


def load(root: Path = ROOT) -> BookData:
    """Read and check every input; raise DataError listing all problems."""
    root = Path(root)
    problems: list[str] = []
    try:
        toc_list = toc_order(root)
    except (OSError, yaml.YAMLError) as exc:
        raise DataError([f"_toc.yml: cannot be read ({exc})"]) from exc
    toc = set(toc_list)
    parts, chapters = load_chapters(root, toc, problems)
    papers = load_papers(root, chapters, problems)
    coverage = load_coverage(root, papers, toc, problems)
    claims = load_claims(root, papers, chapters, toc, problems)
    measured = load_measured(root, claims, problems)
    benchmarks = load_benchmarks(root, problems)
    notebooks = load_notebooks(root, toc_list, problems)
    if problems:
        raise DataError(problems)
    return BookData(root, parts, chapters, papers, coverage, claims, measured, benchmarks,
                    notebooks)


# --------------------------------------------------------------------------- rendering

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>$|{}#~])")


def escape(text: str) -> str:
    """Plain text (titles, measured strings) made safe for a MyST table cell."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def cell(markup: str) -> str:
    """Author-written MyST (notes, claims) made safe for a table cell: one line, no bare |."""
    return " ".join(markup.split()).replace("|", r"\|")


def badge(status: str) -> str:
    return f"{{{BADGES[status]}}}`{status}`"


def doc_link(doc: str, page: str) -> str:
    """A {doc} link to ``doc`` from the generated page ``page`` (both root-relative)."""
    target = os.path.relpath(doc, os.path.dirname(page)).replace(os.sep, "/")
    return f"{{doc}}`{target}`"


def ref_link(section: str, page: str) -> str:
    doc, label = _split_section(section)
    return f"{{ref}}`{label}`" if label else doc_link(doc, page)


def table(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    """A Markdown table; ``align`` has one letter per column, "r" for right-aligned."""
    rules = [" ---: " if a == "r" else " --- " for a in align.ljust(len(header), "l")]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rules) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _chapter_heading(ch: Chapter) -> str:
    return f"## Chapter {ch.number}: {escape(ch.title)}"


def _generated_note() -> list[str]:
    return ["% Generated by tools/build_pages.py from book/data/ and benchmarks/results/.",
            "% Do not edit: change the data and run `make pages`.", ""]


def _covered(data: BookData) -> list[Paper]:
    order = {c: i for i, c in enumerate(PAPER_CLASSES)}
    return sorted((p for p in data.papers.values() if p.cls != "off"),
                  key=lambda p: (p.chapter, order[p.cls], p.id))


def _count_badges(counts: dict[str, int], bold: bool = False) -> str:
    """Badges such as "2 implemented" for the statuses with a non-zero count."""
    parts = [f"{{{BADGES[s]}}}`{counts[s]} {s}`" for s in COVERAGE_STATUSES if counts.get(s)]
    return " ".join(parts) or "—"


def _coverage_label(ch: Chapter) -> str:
    return f"coverage-ch{ch.number}"


def _paper_entry(p: Paper, cov: Coverage, page: str) -> list[str]:
    """One paper as a definition-list item: its title, then its facts and the note."""
    facts = [f"{badge(cov.status)}", f"{p.cls} paper {p.id}"]
    if cov.notebook:
        facts.append(f"section {doc_link(cov.notebook, page)}")
    out = [escape(p.title), ": " + " · ".join(facts)]
    if cov.refimpl:
        out += ["", "  In `refimpl`: " + ", ".join(f"`{n}`" for n in cov.refimpl) + "."]
    if cov.note:
        out += ["", f"  {' '.join(cov.note.split())}"]
    return [*out, ""]


def render_coverage(data: BookData, page: str = "book/generated/coverage.md") -> str:
    papers = _covered(data)
    n_off = sum(p.cls == "off" for p in data.papers.values())

    def cov_of(p: Paper) -> Coverage:
        return data.coverage.get(p.id, Coverage("planned"))

    out = _generated_note()
    out += ["# Coverage of the source papers", ""]
    out += [
        f"The book grew out of a collection of {len(data.papers)} papers. Each one is classed "
        "*core* (a method the book implements in `refimpl`), *context* (cited and discussed "
        "where it meets a method of the book) or *off* (not about factorization). This page "
        "accounts for every core and context paper, chapter by chapter: "
        f"{badge('implemented')} means code in `refimpl` with tests and a notebook section, "
        f"{badge('discussed')} means the paper is related to the book's material in the note "
        f"under its title, and {badge('planned')} means the chapter that will treat it is not "
        "written yet. Under each chapter the implemented papers are listed in full; the "
        "discussed and the planned ones are in fold-outs (click to open).",
        "",
        f"The remaining {n_off} papers of the collection are classed *off*; they are counted "
        "here but not listed.",
        "",
        "## Summary",
        "",
    ]
    rows = []
    totals = dict.fromkeys(("core", "context", *COVERAGE_STATUSES), 0)
    for number, ch in sorted(data.chapters.items()):
        counts = dict.fromkeys(totals, 0)
        for p in papers:
            if p.chapter == number:
                counts[p.cls] += 1
                counts[cov_of(p).status] += 1
        for k in totals:
            totals[k] += counts[k]
        rows.append([f"{{ref}}`{_coverage_label(ch)}`", str(counts["core"]),
                     str(counts["context"]), _count_badges(counts)])
    rows.append(["**All chapters**", f"**{totals['core']}**", f"**{totals['context']}**",
                 _count_badges(totals)])
    out += table(["Chapter", "Core", "Context", "Treatment"], rows)
    out.append("")

    for number, ch in sorted(data.chapters.items()):
        mine = [p for p in papers if p.chapter == number]
        out += [f"({_coverage_label(ch)})=", _chapter_heading(ch), ""]
        n_core = sum(p.cls == "core" for p in mine)
        count = (f"{len(mine)} paper{'s' if len(mine) != 1 else ''} ({n_core} core, "
                 f"{len(mine) - n_core} context)")
        if ch.status == "written":
            out += [f"Chapter pages: {', '.join(doc_link(d, page) for d in ch.pages)}. "
                    f"{count}.", ""]
        else:
            out += [f"This chapter is planned. {count}.", ""]
        if not mine:
            out += ["No paper of the collection belongs to this chapter.", ""]
            continue
        for status in COVERAGE_STATUSES:
            group = [p for p in mine if cov_of(p).status == status]
            if not group:
                continue
            heading = (f"{status.capitalize()}: {len(group)} paper{'s' if len(group) > 1 else ''}"
                       f" ({', '.join(f'{n} {c}' for c, n in _class_counts(group))})")
            if status == "implemented":
                out += [f"```{{rubric}} {heading}", "```", ""]
                for p in group:
                    out += _paper_entry(p, cov_of(p), page)
            elif any(cov_of(p).note or cov_of(p).refimpl or cov_of(p).notebook for p in group):
                out += [f"::::{{dropdown}} {heading}", ""]
                for p in group:
                    out += _paper_entry(p, cov_of(p), page)
                out += ["::::", ""]
            else:  # planned papers without an entry: one line each
                out += [f"::::{{dropdown}} {heading}", ""]
                out += [f"- {escape(p.title)} ({p.cls} paper {p.id})" for p in group]
                out += ["", "::::", ""]
    return "\n".join(out).rstrip() + "\n"


def _class_counts(group: list[Paper]) -> list[tuple[str, int]]:
    return [(c, n) for c in PAPER_CLASSES if (n := sum(p.cls == c for p in group))]


def render_reproductions(data: BookData,
                         page: str = "book/generated/reproductions.md") -> str:
    statuses = (*CLAIM_STATUSES, NOT_TRIED)

    def status_of(c: Claim) -> str:
        return data.measured[c.id]["status"] if c.id in data.measured else NOT_TRIED

    out = _generated_note()
    out += ["# Reproductions", ""]
    out += [
        "Where a paper makes a claim that can be checked at small scale, a notebook tries it. "
        "The claims are listed in `book/data/reproductions.yaml`; the outcome is never typed "
        "by hand. The notebook calls `refimpl.reporting.record_claim`, and when the notebooks "
        "are executed with `make notebooks` the measurement is saved under "
        "`book/data/measured/` and shown here.",
        "",
        f"{badge('reproduced')} the claim held at our scale; {badge('partly')} some of it "
        f"held, or it held under conditions the paper does not state; "
        f"{badge('not reproduced')} we measured something else; {badge(NOT_TRIED)} no "
        "measurement has been recorded yet. A small-scale result is evidence about the "
        "claim, not a verdict on the paper.",
        "",
        "## Summary",
        "",
    ]
    counts = {s: sum(status_of(c) == s for c in data.claims) for s in statuses}
    rows = [[badge(s), str(counts[s])] for s in statuses]
    rows.append(["**All claims**", f"**{len(data.claims)}**"])
    out += table(["Status", "Claims"], rows)
    out.append("")

    by_chapter: dict[str, list[Claim]] = {}
    for c in data.claims:
        by_chapter.setdefault(c.chapter, []).append(c)
    if not data.claims:
        out += ["No claims are listed yet.", ""]
    for number in sorted(by_chapter):
        out += [_chapter_heading(data.chapters[number]), ""]
        rows = []
        # By paper; a paper's claims keep the order of reproductions.yaml (reading order).
        for c in sorted(by_chapter[number], key=lambda c: c.paper):
            status = status_of(c)
            measured = f" {escape(data.measured[c.id]['measured'])}" if c.id in data.measured \
                else ""
            # three columns, so that the table fits the text column: the longest words of
            # five columns (claims, measurements, section titles) add up to more than it
            rows.append([f"*{escape(data.papers[c.paper].title)}* ({c.paper}): {cell(c.claim)}",
                         f"{badge(status)}{measured}", ref_link(c.section, page)])
        out += table(["Paper and claim", "Outcome", "Where"], rows)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------- benchmarks

# The values a benchmark row records beside the two measurements, as the Notes cell shows them:
# key -> (label, what it is). The label goes before the value ("residual 1e-14"), or holds
# "{}" where the value goes ("11 sweeps"). A pair ours_<key> / peer_<key> shows both values
# ("error 1.3e-15 vs 1.2e-15"). Keys not listed are shown in words ("max_gap" -> "max gap");
# each table's legend explains the labels it uses.
ROW_VALUES = {
    "rel_residual": ("residual", "relative residual ‖A − product of the factors‖ / ‖A‖ "
                                 "(Frobenius norms)"),
    "max_rel_sv_diff": ("σ Δ", "largest relative difference of the singular values from the "
                               "peer's"),
    "max_abs_eig_diff_over_norm": ("λ Δ", "largest difference of the eigenvalues from the "
                                          "peer's, over ‖A‖"),
    "sweeps": ("{} sweeps", "Jacobi sweeps until convergence"),
    "same_pivots": ("pivots", "whether the (column or row) pivots are the peer's"),
    "max_abs_diff": ("max |Δ|", "largest absolute difference of the outputs from the peer's"),
    "max_rel_diff": ("max rel. Δ", "largest relative difference of the outputs from the "
                                   "peer's"),
    "rel_error": ("error", "relative error (ours vs peer)"),
    "err_over_optimal": ("error/optimal", "error over the optimal rank-k error (ours vs peer)"),
    "cosine": ("cosine", "cosine similarity of the two results"),
    "cache_bytes_per_token": ("KV {} B/token", "bytes of KV cache per token (the variant vs "
                                               "MHA)"),
    "flops_per_cached_token": ("{} FLOP/token", "FLOPs of one decoding step per cached token "
                                                "(the variant vs MHA)"),
    "flops_per_cache_byte": ("{} FLOP/B", "arithmetic intensity of the step: FLOPs per byte "
                                          "of cache read (the variant vs MHA)"),
    "reference_s": ("reference", "time on the reference kernel (explicit masked softmax)"),
    "mha_reference_s": ("MHA reference", "MHA's time on the reference kernel"),
    "peer_unpadded_s": ("unpadded", "SDPA on the layer's Q, K, V without padding V to the "
                                    "key width (its unfused CPU kernel)"),
    "gesdd_s": ("xGESDD", "time of LAPACK's divide-and-conquer SVD (xGESDD, "
                          "numpy.linalg.svd), shown with the peer's time"),
    "ratio_vs_gesdd": ("vs xGESDD {}×", "our time over xGESDD's"),
    "peer_call": ("peer call", "what the peer computes"),
}
# Keys whose value is shown with another one: key -> the key it pairs with (its partner's
# value comes second, after "vs").
ROW_PAIRS = {"cache_bytes_per_token": "mha_cache_bytes_per_token",
             "flops_per_cached_token": "mha_flops_per_cached_token",
             "flops_per_cache_byte": "mha_flops_per_cache_byte"}
# Keys that repeat what the case name says.
HIDDEN_ROW_KEYS = frozenset({"method", "n", "target_ratio"})
# Top-level keys of a result shown in its list of facts: key -> label.
RESULT_FACTS = {"blas_threads": "BLAS threads", "target_ratio": "Target ratio"}
NOTE_WIDTH = 40  # characters of the Notes cell; what does not fit is listed under the table
FIGURE_WIDTH_IN = 6.8  # at 100 dpi this is the book's 688-px text column, less a margin
FIGURE_FONT_PT = 9
FIGURES = "figures"  # inside the output folder
SVG_SALT = "refimpl-book"
FASTER, SLOWER = "#0072B2", "#D55E00"  # Okabe–Ito blue and vermilion


def _words(key: str) -> str:
    return key.replace("_", " ").strip()


def _sig(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits, in plain notation with thousands separators."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:,.{decimals}f}"


def _float(x: float, digits: int) -> str:
    """A float to ``digits`` significant digits: scientific ("2e-14") when tiny or huge."""
    if x == 0:
        return "0"
    if abs(x) < 1e-3 or abs(x) >= 1e5:
        mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return _sig(x, digits)


def _num(x) -> str:
    """A recorded value for a Notes cell: small and large floats in short scientific form."""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if not isinstance(x, float):
        return escape(str(x))
    if 0.999 < x < 1:  # a cosine or a correlation: the fewest decimals that do not round to 1
        return f"{x:.{max(3, math.floor(-math.log10(2 * (1 - x))) + 1)}f}"
    return _float(x, 1 if x and (abs(x) < 1e-3 or abs(x) >= 1e5) else 3)


def _num_pair(a, b) -> tuple[str, str]:
    """Two values with as many digits (2 to 6) as it takes to tell them apart."""
    if not (isinstance(a, float) and isinstance(b, float)):
        return _num(a), _num(b)
    if a == b:
        return _float(a, 2), _float(b, 2)
    for digits in range(2, 7):
        fa, fb = _float(a, digits), _float(b, digits)
        if fa != fb:
            return fa, fb
    return _float(a, 3), _float(b, 3)


def _nobreak(text: str) -> str:
    """Scientific notation with a non-breaking hyphen, so that "1.2e-15" never wraps at "-"."""
    return re.sub(r"(\de)-(\d)", "\\1\u2011\\2", text)


def _label(key: str) -> tuple[str, str]:
    return ROW_VALUES.get(key, (_words(key), ""))


def _labelled(label: str, value: str) -> str:
    return label.replace("{}", value) if "{}" in label else f"{label} {value}"


@dataclass
class BenchTable:
    """One comparison table of a benchmark: its rows, what they measure, how to show it."""
    key: str                    # "rows" or the top-level key of a further table
    title: str                  # "" for the main table
    suffix: str                 # the ours_<suffix> / peer_<suffix> keys
    rows: list[dict]
    target: float | None
    facts: list[tuple[str, str]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return QUANTITIES[self.suffix][0]

    @property
    def row_targets(self) -> list[float | None]:
        """Each row's target ratio: its own ``target_ratio``, else the table's (or None)."""
        return [row.get("target_ratio", self.target) for row in self.rows]

    @property
    def per_row(self) -> bool:
        """Whether some row sets its own target (then each row is drawn with its own)."""
        return any("target_ratio" in row for row in self.rows)


def bench_tables(b: dict) -> list[BenchTable]:
    tables = [BenchTable("rows", "", "s", b["rows"], b.get("target_ratio"))]
    for key in _extra_tables(b):
        sub = b[key]
        facts = [(RESULT_FACTS.get(k, _words(k).capitalize()), _fmt_fact(v))
                 for k, v in sub.items() if k not in ("rows", "target_ratio")]
        tables.append(BenchTable(key, _words(key).capitalize(), _quantity(sub["rows"]),
                                 sub["rows"], sub.get("target_ratio"), facts))
    return tables


def _fmt_fact(value) -> str:
    if isinstance(value, dict | list):
        return escape(json.dumps(value, sort_keys=True, ensure_ascii=False))
    return _num(value)


def _unit(t: BenchTable) -> tuple[str, float]:
    """The unit of a table's measurements and the factor from the recorded values to it."""
    kind, _, to_base = QUANTITIES[t.suffix]
    values = sorted(float(r[f"{side}_{t.suffix}"]) * to_base for r in t.rows
                    for side in ("ours", "peer"))
    median = values[len(values) // 2]
    if kind == "time":
        units = [("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)]
    else:
        units = [("GiB", 2.0**30), ("MiB", 2.0**20), ("KiB", 2.0**10), ("B", 1.0)]
    for name, size in units:
        if median >= size:
            return name, to_base / size
    return units[-1][0], to_base / units[-1][1]


def _ratio(r: float) -> str:
    return f"{r:.1f}" if r >= 10 else f"{r:.2f}" if r >= 0.1 else f"{r:.3f}"


def _meets(ratio: float, target: float) -> bool:
    """Whether a ratio meets its target, compared as the page prints it."""
    return float(_ratio(ratio)) <= target


def _target_cell(ratio: float, target: float) -> str:
    """``target ≤ 1.2, met`` / ``…, missed``."""
    return f"target ≤\u00a0{target:g}, {'met' if _meets(ratio, target) else 'missed'}"


def _target_summary(t: BenchTable) -> str:
    pairs = [(float(r["ratio"]), g) for r, g in zip(t.rows, t.row_targets, strict=True)
             if g is not None]
    met = sum(_meets(r, g) for r, g in pairs)
    return (f"Targets: {met} of {len(pairs)} met (each ratio that has a target is followed "
            f"by it; a ratio at or below its target meets it).")


def _row_notes(row: dict, t: BenchTable, unit: tuple[str, float]) -> tuple[list[str], str,
                                                                          list[str]]:
    """(notes for the Notes cell, extra for the measurement of the peer, labels used)."""
    skip = {"case", "ratio", f"ours_{t.suffix}", f"peer_{t.suffix}", *HIDDEN_ROW_KEYS,
            *ROW_PAIRS.values()}
    notes, peer_extra, used = [], [], []
    for key, value in row.items():
        if key in skip or isinstance(value, str):
            continue
        if key.startswith("peer_") and f"ours_{key[5:]}" in row:
            continue
        if key.startswith("ours_") and f"peer_{key[5:]}" in row:
            base = key[5:]
            a, b = _num_pair(row[key], row[f"peer_{base}"])
            label = _label(base)[0]
            notes.append(_labelled(label, f"{a} vs {b}"))
            used.append(base)
        elif key in ROW_PAIRS and ROW_PAIRS[key] in row:
            label = _label(key)[0]
            pair = f"{_num(value)} vs {_num(row[ROW_PAIRS[key]])}"
            notes.append(_labelled(label, pair) if "{}" in label else f"{label} {pair}")
            used.append(key)
        elif key.endswith(f"_{t.suffix}") and _is_number(value):
            # another measurement of the same kind (a second peer): beside the peer's
            label = _label(key)[0]
            peer_extra.append(_labelled(label, _sig(float(value) * unit[1])))
            used.append(key)
        elif key == "same_pivots" and isinstance(value, bool):
            notes.append("same pivots" if value else "pivots differ")
            used.append(key)
        else:
            notes.append(_labelled(_label(key)[0], _num(value)))
            used.append(key)
    return notes, "; ".join(peer_extra), used


def _string_values(t: BenchTable) -> dict[str, list[tuple[str, str]]]:
    """Per key, the (case, text) of the rows' string values (listed under the table)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for row in t.rows:
        for key, value in row.items():
            if key not in ("case", *HIDDEN_ROW_KEYS) and isinstance(value, str):
                out.setdefault(key, []).append((row["case"], value))
    return out


def _fit(notes: list[str]) -> tuple[str, list[str]]:
    """The notes that fit in the Notes cell, and the rest."""
    kept: list[str] = []
    for i, note in enumerate(notes):
        if len(", ".join([*kept, note])) > NOTE_WIDTH and kept:
            return ", ".join(kept), notes[i:]
        kept.append(note)
    return ", ".join(kept), []


def _benchmark_table(t: BenchTable, who: str) -> list[str]:
    """The Markdown of one comparison table, with its legend and what did not fit."""
    unit = _unit(t)
    cells, legend, overflow = [], [], []
    for row in t.rows:
        notes, peer_extra, used = _row_notes(row, t, unit)
        note, rest = _fit(notes)
        if rest:
            overflow.append(f"- {escape(row['case'])}: {_nobreak(escape(', '.join(rest)))}")
        legend += [k for k in used if k not in legend]
        peer = _sig(float(row[f"peer_{t.suffix}"]) * unit[1])
        cells.append([escape(row["case"]), _sig(float(row[f"ours_{t.suffix}"]) * unit[1]),
                      f"{peer}; {peer_extra}" if peer_extra else peer,
                      _ratio(float(row["ratio"])), _nobreak(escape(note))])
    header = ["Case", f"refimpl ({unit[0]})", f"{who} ({unit[0]})", "Ratio", "Notes"]
    if t.per_row:  # the target beside the ratio it judges (the table keeps five columns)
        for cell, row, target in zip(cells, t.rows, t.row_targets, strict=True):
            if target is not None:
                cell[3] += f" ({_target_cell(float(row['ratio']), target)})"
    if not any(c[-1] for c in cells):
        header, cells = header[:-1], [c[:-1] for c in cells]
    out = [*table(header, cells, align="lrrr"), ""]
    if t.per_row:
        out += [_target_summary(t), ""]
    explained = [(" ".join(_label(k)[0].replace("{}", " ").split()), _label(k)[1])
                 for k in legend]
    explained = [f"*{escape(label)}*: {escape(what)}" for label, what in explained if what]
    if explained:
        out += ["Notes: " + "; ".join(explained) + ".", ""]
    for key, values in _string_values(t).items():
        label = _label(key)[0].capitalize()
        out += [f"{escape(label)} per case:", ""]
        out += [f"- {escape(case)}: {escape(text)}" for case, text in values] + [""]
    if overflow:
        out += ["Further values:", "", *overflow, ""]
    return out


def short_machine(machine: dict) -> str:
    """The machine of a benchmark result in one readable line."""
    parts = []
    if isinstance(machine.get("cpu_count"), int):
        n = machine["cpu_count"]
        parts.append(f"{n} CPU{'s' if n != 1 else ''}")
    blas: dict[str, list[tuple[str, str]]] = {}
    for entry in machine.get("blas") or []:
        m = re.match(r"^(\S+) (\S+) \((\d+) threads?\)$", str(entry))
        if not m or m.group(1).lower() == "openmp" or m.group(2) == "None":
            continue
        name = {"openblas": "OpenBLAS", "mkl": "MKL", "blis": "BLIS"}.get(m.group(1).lower(),
                                                                          m.group(1))
        version = ".".join(m.group(2).split(".")[:3])
        blas.setdefault(name, []).append((version, m.group(3)))
    for name, found in blas.items():
        versions = "/".join(sorted({v for v, _ in found}))
        threads = sorted({t for _, t in found}, key=int)
        parts.append(f"{name} {versions} ({'/'.join(threads)} "
                     f"thread{'s' if threads != ['1'] else ''})")
    for key, label in (("numpy", "NumPy"), ("scipy", "SciPy"), ("python", "Python")):
        if machine.get(key):
            parts.append(f"{label} {machine[key]}")
    system = str(machine.get("platform", "")).split("-")[0]
    arch = str(machine.get("processor") or "")
    if system or arch:
        parts.append(" ".join(x for x in (system, arch) if x))
    return ", ".join(parts)


def _figure_name(b: dict, t: BenchTable) -> str:
    stem = f"bench-{b['benchmark']}" + ("" if t.key == "rows" else f"-{t.key}")
    return re.sub(r"[^a-z0-9-]+", "-", stem.lower()).strip("-")


def ratio_figure(cases: list[str], ratios: list[float], *, kind: str,
                 target: float | None = None,
                 targets: list[float | None] | None = None) -> str:
    """An SVG chart of ``ratios`` (ours / peer) per case: bars from parity (1) to the ratio.

    ``target`` draws one dashed line across the chart; ``targets`` (one per case, ``None``
    for none) a short dashed mark across each case's bar instead.

    The figure is FIGURE_WIDTH_IN wide, grows with the number of cases, uses a log axis when
    the ratios span more than a factor of 10, and is byte-for-byte reproducible (fixed SVG
    ids, no date).
    """
    import io
    import textwrap

    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    better = {"time": "faster", "memory": "smaller"}.get(kind, "lower")
    labels = [textwrap.fill(c, 44, break_on_hyphens=False) for c in cases]
    heights = [0.17 * (label.count("\n") + 1) + 0.1 for label in labels]
    centers, y = [], 0.0
    for h in heights:
        centers.append(y + h / 2)
        y += h
    goals = _goals(targets, target)
    marks = [*ratios, 1.0, *goals]
    lo, hi = min(marks), max(marks)
    log = _is_log([*ratios, *goals], None)
    rc = {"svg.hashsalt": SVG_SALT, "svg.fonttype": "path", "font.family": "DejaVu Sans",
          "font.size": FIGURE_FONT_PT, "axes.labelsize": FIGURE_FONT_PT,
          "xtick.labelsize": FIGURE_FONT_PT, "ytick.labelsize": FIGURE_FONT_PT,
          "legend.fontsize": FIGURE_FONT_PT, "axes.spines.top": False,
          "axes.spines.right": False, "path.simplify": False}
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(FIGURE_WIDTH_IN, y + 0.95), dpi=100, layout="constrained")
        FigureCanvasSVG(fig)
        ax = fig.add_subplot()
        colors = [FASTER if r < 1 else SLOWER for r in ratios]
        ax.barh(centers, [r - 1 for r in ratios], left=1, height=0.2, color=colors)
        ax.set_yticks(centers, labels)
        ax.set_ylim(y, 0)
        ax.tick_params(axis="y", length=0)
        ax.axvline(1.0, color="black", linewidth=1)
        dashed = {"color": "black", "linewidth": 1, "linestyle": (0, (2, 1.5))}
        if targets:
            for g, c in zip(targets, centers, strict=True):
                if g is not None:
                    ax.plot([g, g], [c - 0.16, c + 0.16], **dashed)
        elif target:
            ax.axvline(target, color="black", linewidth=1, linestyle=(0, (4, 3)))
        if log:
            ax.set_xscale("log")
            ax.set_xlim(lo / 2.2, hi * 2.2)
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:
            pad = 0.2 * (hi - lo) + 0.05
            ax.set_xlim(max(0.0, lo - pad), hi + pad)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        for r, c in zip(ratios, centers, strict=True):
            nudge = (1.04 if r >= 1 else 1 / 1.04) if log else None
            x = r * nudge if log else r + (0.012 if r >= 1 else -0.012) * (hi - lo + 0.1)
            ax.text(x, c, f"{_ratio(r)}×", va="center", ha="left" if r >= 1 else "right")
        scale = " (log scale)" if log else ""
        ax.set_xlabel(f"{kind} of refimpl / {kind} of the peer{scale}")
        handles = [Patch(color=FASTER, label=f"refimpl {better}"),
                   Patch(color=SLOWER, label=f"peer {better}"),
                   Line2D([], [], color="black", linewidth=1, label="parity (1×)")]
        if targets and goals:
            handles.append(Line2D([], [], label="target", **dashed))
        elif target:
            handles.append(Line2D([], [], color="black", linewidth=1, linestyle=(0, (4, 3)),
                                  label=f"target ({target:g}×)"))
        ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0),
                  ncol=len(handles), frameon=False, borderaxespad=0.3, handlelength=1.5,
                  columnspacing=1.2)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def _goals(targets: list[float | None] | None, target: float | None) -> list[float]:
    """The target ratios a chart marks: each case's own, else the table's one (if any)."""
    return [g for g in (targets or []) if g is not None] or ([target] if target else [])


def _figure_is_log(t: BenchTable) -> bool:
    goals = _goals(t.row_targets if t.per_row else None, t.target)
    return _is_log([*(float(r["ratio"]) for r in t.rows), *goals], None)


def _is_log(ratios: list[float], target: float | None) -> bool:
    marks = [*ratios, 1.0, *([target] if target else [])]
    return max(marks) / min(marks) > 10


def _figure_block(b: dict, t: BenchTable, machine: str) -> list[str]:
    """The MyST {figure} directive that shows the chart of one table."""
    cases = [r["case"] for r in t.rows]
    ratios = [float(r["ratio"]) for r in t.rows]
    name = _figure_name(b, t)
    better, worse = {"time": ("faster", "slower"), "memory": ("smaller", "larger")}[t.kind]
    what = "Time" if t.kind == "time" else "Memory"
    if t.per_row:
        target = "; the short dashed mark across each bar is that case's target ratio"
    else:
        target = (f"; the dashed line marks the target ratio of {t.target:g}×" if t.target
                  else "")
    caption = (f"{what} of `refimpl` ({escape(b['ours'])}) divided by that of the peer "
               f"({escape(b['peer'])}), per case; measured on {escape(b['device'])}, "
               f"{escape(machine)}. A bar to the left of the solid line at 1× (parity) means "
               f"`refimpl` was {better} by that factor, to the right {worse}{target}"
               f"{'; the axis is logarithmic' if _figure_is_log(t) else ''}.")
    lo = min(range(len(ratios)), key=ratios.__getitem__)
    hi = max(range(len(ratios)), key=ratios.__getitem__)
    alt = (f"Horizontal bar chart of the {t.kind} ratio refimpl / peer for {len(ratios)} "
           f"cases: {sum(r < 1 for r in ratios)} below 1 (refimpl {better}); the lowest is "
           f"{_ratio(ratios[lo])} ({cases[lo]}), the highest {_ratio(ratios[hi])} "
           f"({cases[hi]}).")
    return [f"```{{figure}} {FIGURES}/{name}.svg", f":name: fig-{name}",
            f":alt: {' '.join(alt.split())}", "", caption, "```", ""]


def benchmark_figures(data: BookData) -> dict[str, str]:
    """Every benchmark figure: {path inside the output folder: SVG text}."""
    figures = {}
    for _, b in data.benchmarks:
        for t in bench_tables(b):
            figures[f"{FIGURES}/{_figure_name(b, t)}.svg"] = ratio_figure(
                [r["case"] for r in t.rows], [float(r["ratio"]) for r in t.rows],
                kind=t.kind, target=t.target, targets=t.row_targets if t.per_row else None)
    return figures


def render_benchmarks(data: BookData, page: str = "book/generated/benchmarks.md") -> str:
    """The benchmarks page (its figures are drawn by benchmark_figures)."""
    out = _generated_note()
    out += ["# Benchmarks", ""]
    out += [
        "Each benchmark runs `refimpl` and a peer library that implements the same method in "
        "one process, on the same inputs, and records the median of repeated runs together "
        "with the quality each reached. The *ratio* is our time (or memory) divided by the "
        "peer's, so a ratio below 1 means `refimpl` was faster (or smaller); each section's "
        "figure draws these ratios, and its table gives the measurements, in the unit named "
        "in the column heading, and the quality reached in the *Notes* column. Results come "
        "from JSON files in `benchmarks/results/`, written by `make bench` on the machine "
        "named in each section; timings from different machines are not comparable.",
        "",
    ]
    if not data.benchmarks:
        out += ["No benchmark results have been recorded yet: `benchmarks/results/` holds no "
                "JSON file. Run `make bench` and then `make pages` to fill this page.", ""]
        return "\n".join(out).rstrip() + "\n"
    for name, b in data.benchmarks:
        machine = short_machine(b["machine"])
        out += [f"## {escape(b['title'])}", "", b["description"].strip(), ""]
        out += [f"- **Ours:** {escape(b['ours'])}",
                f"- **Peer:** {escape(b['peer'])}",
                f"- **Device:** {escape(b['device'])}",
                f"- **Machine:** {escape(machine) or '—'}"]
        for key, value in b.items():
            if key not in BENCHMARK_KEYS and key not in _extra_tables(b):
                label = RESULT_FACTS.get(key, _words(key).capitalize())
                out.append(f"- **{escape(label)}:** {_fmt_fact(value)}")
        out += [f"- **Recorded:** {escape(b['created'])} (`benchmarks/results/{name}`)", ""]
        for t in bench_tables(b):
            if t.title:
                out += [f"### {escape(t.title)}", ""]
                out += [f"- **{escape(label)}:** {value}" for label, value in t.facts]
                out += [""] if t.facts else []
            out += _figure_block(b, t, machine)
            out += _benchmark_table(t, "Peer")
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------- status


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


def _utc(stamp: datetime) -> str:
    """To the minute, with a non-breaking hyphen and space so that a table keeps it on a line."""
    text = stamp.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")
    return text.replace("-", "\u2011").replace(" ", "\u00a0")


def kernel_summary(run: dict | None) -> str:
    """A run's kernel configuration in a few words ("AVX2/Haswell, 1 thread, torch 1")."""
    if not run:
        return "not recorded"
    env = run.get("kernel_env") if isinstance(run.get("kernel_env"), dict) else {}
    kernels = "/".join(str(env[k]) for k in KERNEL_ENV_VARS[:2] if env.get(k)) \
        or "default kernels"
    threads = [env.get(k) for k in KERNEL_ENV_VARS[2:]]
    if all(t is None for t in threads):
        thread_text = "default threads"
    elif len(set(threads)) == 1:
        thread_text = f"{threads[0]} thread{'s' if str(threads[0]) != '1' else ''}"
    else:
        names = ("OMP", "MKL", "OpenBLAS")
        thread_text = ", ".join(f"{n} {t if t is not None else '–'}"
                                for n, t in zip(names, threads, strict=True))
    parts = [kernels, thread_text]
    if run.get("torch_threads") is not None:
        parts.append(f"torch {run['torch_threads']}")
    return ", ".join(parts)


def _run_details(run: dict) -> str:
    env = run.get("kernel_env") if isinstance(run.get("kernel_env"), dict) else {}
    values = ", ".join(f"`{k}={env[k]}`" if env.get(k) is not None else f"`{k}` unset"
                       for k in KERNEL_ENV_VARS)
    details = [values]
    if run.get("torch_threads") is not None:
        details.append(f"`torch.get_num_threads()` {escape(run['torch_threads'])} after the "
                       "last cell")
    if run.get("machine"):
        details.append(f"machine: {escape(run['machine'])}")
    if run.get("refimpl"):
        details.append(f"refimpl {escape(run['refimpl'])}")
    return "; ".join(details)


def render_status(data: BookData, page: str = "book/generated/status.md") -> str:
    out = _generated_note()
    out[:2] = ["% Generated by tools/build_pages.py from the committed notebooks/**/*.ipynb.",
               "% Do not edit: re-execute notebooks with `make notebooks`, then `make pages`."]
    out += ["# Execution status", ""]
    out += [
        "The book shows the outputs committed with each notebook's `.ipynb`; nothing is run "
        "when the book is built. `make notebooks` (`tools/execute_notebooks.py`) writes those "
        "outputs under a fixed kernel configuration (`NOTEBOOK_ENV` in the Makefile), and this "
        "page is read from the committed files. *Run time* runs from the first cell's start "
        "to the last cell's reply, and *last run* is that reply, in UTC, both as nbclient "
        "recorded them in the cells' metadata. *Kernel configuration* is the environment the "
        "kernel was started with (BLAS kernels, BLAS and OpenMP threads) and torch's thread "
        "count after the last cell; it reads *not recorded* for a notebook executed before "
        "`tools/execute_notebooks.py` recorded it. `make test` re-executes every notebook "
        "with nbval under the machine's default configuration; those runs are not recorded "
        "here.",
        "",
    ]
    if not data.notebooks:
        out += ["No executed notebook is committed yet.", ""]
        return "\n".join(out).rstrip() + "\n"
    rows = []
    for nb in data.notebooks:
        link = doc_link(nb.doc, page) if nb.in_toc else f"`{nb.doc}` (not in the book)"
        rows.append([link, _duration(nb.seconds) if nb.seconds is not None else "—",
                     escape(kernel_summary(nb.run)),
                     _utc(nb.last_run) if nb.last_run else "not recorded"])
    timed = [nb for nb in data.notebooks if nb.seconds is not None]
    total = sum(nb.seconds for nb in timed)
    label = f"**Total, {len(timed)} notebooks**" if len(timed) == len(data.notebooks) else \
        f"**Total, {len(timed)} of {len(data.notebooks)} notebooks**"
    latest = max((nb.last_run for nb in timed if nb.last_run), default=None)
    rows.append([label, f"**{_duration(total)}**", "",
                 f"**{_utc(latest)}**" if latest else ""])
    out += table(["Notebook", "Run time", "Kernel configuration", "Last run (UTC)"], rows)
    out.append("")
    configs: dict[str, list[str]] = {}
    for nb in data.notebooks:
        if nb.run:
            configs.setdefault(json.dumps(nb.run, sort_keys=True), []).append(nb.doc)
    if configs:
        out += ["Recorded configurations:", ""]
        for key, docs in configs.items():
            run = json.loads(key)
            n = len(docs)
            out.append(f"- **{escape(kernel_summary(run))}** ({n} notebook{'s' if n != 1 else ''})"
                       f": {_run_details(run)}.")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def render_map(data: BookData) -> str:
    # The map is included into book/intro.md, so relative doc paths would be resolved from
    # the including page; absolute doc paths (from the book root) work from anywhere.
    out = _generated_note()
    for part_id, part_title in data.parts.items():
        chapters = [ch for _, ch in sorted(data.chapters.items()) if ch.part == part_id]
        if not chapters:
            continue
        out += [f"### Part {part_id}: {escape(part_title)}", ""]
        for ch in chapters:
            if ch.status == "written":
                links = ", ".join(f"{{doc}}`/{d}`" for d in ch.pages)
                where = f"Read: {links}."
            else:
                where = "*Planned.*"
            out.append(f"- **{ch.number} {escape(ch.title)}.** {cell(ch.description)} {where}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


PAGES = {
    "coverage.md": render_coverage,
    "reproductions.md": render_reproductions,
    "benchmarks.md": render_benchmarks,
    "status.md": render_status,
    "map.md": render_map,
}


def build(root: Path = ROOT, out_dir: Path | None = None) -> dict[str, str]:
    """Render every generated page and figure; write them to ``out_dir`` when given.

    Returns {path inside the output folder: text}: the pages (``coverage.md``, ...) and the
    figures (``figures/bench-linalg.svg``, ...). Figures left from an earlier build that are
    no longer drawn are removed. Raises DataError on malformed data.
    """
    data = load(root)
    pages = {name: render(data) for name, render in PAGES.items()}
    pages.update(benchmark_figures(data))
    first = {n: ch.pages[0] for n, ch in data.chapters.items() if ch.status == "written"}
    pages.update(api_pages.build(root, toc_order(root), first))
    if out_dir is not None:
        out_dir = Path(out_dir)
        (out_dir / FIGURES).mkdir(parents=True, exist_ok=True)
        for name, text in pages.items():
            path = out_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8", newline="\n")
        for old in sorted((out_dir / FIGURES).glob("*.svg")):
            if f"{FIGURES}/{old.name}" not in pages:
                old.unlink()
    return pages


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository root")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <root>/book/generated)")
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else args.root / GENERATED
    try:
        pages = build(args.root, out)
    except DataError as exc:
        print(f"build_pages: the book's data has {len(exc.problems)} problem(s):",
              file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    figures = sum(name.startswith(f"{FIGURES}/") for name in pages)
    names = ", ".join(sorted(n for n in pages if not n.startswith(f"{FIGURES}/")))
    print(f"build_pages: wrote {names} and {figures} figure(s) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Generate the book's data-driven pages from book/data/ and benchmarks/results/.

    python tools/build_pages.py              # writes book/generated/*.md
    python tools/build_pages.py --out DIR    # writes elsewhere (tests use a temporary folder)

Inputs
    book/data/papers.tsv          every paper of the source collection (id, class, chapter, title)
    book/data/chapters.yaml       the plan of the book: parts and chapters
    book/data/coverage.yaml       how the book treats each paper (default: planned)
    book/data/reproductions.yaml  the papers' claims that notebooks try
    book/data/measured/*.json     outcomes written by refimpl.reporting.record_claim
    benchmarks/results/*.json     peer comparisons written by `make bench`

Outputs (MyST Markdown, git-ignored, rebuilt by `make pages`, `make book` and `make test`)
    coverage.md  reproductions.md  benchmarks.md  map.md (included by book/intro.md)

The output depends only on the inputs (sorted, no timestamps), and a file is rewritten only
when its text changes. Malformed data stops the script with exit status 1 and a list of
every problem found.
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
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout without installing refimpl
    sys.path.insert(0, str(ROOT))

from refimpl.reporting import STATUSES as CLAIM_STATUSES  # noqa: E402

GENERATED = Path("book") / "generated"

PAPER_CLASSES = ("core", "context", "off")
COVERAGE_STATUSES = ("implemented", "discussed", "planned")
CHAPTER_STATUSES = ("written", "planned")
# A measured claim has one of refimpl.reporting.STATUSES (imported above as CLAIM_STATUSES);
# a claim without a measured file is shown as NOT_TRIED.
NOT_TRIED = "not yet tried"

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


def toc_docs(root: Path) -> set[str]:
    """Every doc path listed in _toc.yml (root, chapters, sections), without suffix."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8")) or {}
    docs: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    docs.add(_strip_suffix(node[key]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return docs


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


def benchmark_problems(data) -> list[str]:
    """What is wrong with one benchmark JSON object (empty if nothing)."""
    if not isinstance(data, dict):
        return ["expected a JSON object"]
    out = [f"missing key {k!r}" for k in BENCHMARK_KEYS if k not in data]
    for key in ("benchmark", "title", "description", "ours", "peer", "device", "created"):
        if key in data and not isinstance(data[key], str):
            out.append(f"{key!r} must be a string")
    if "machine" in data and not isinstance(data["machine"], dict):
        out.append("'machine' must be an object")
    rows = data.get("rows")
    if "rows" in data and (not isinstance(rows, list) or not rows):
        out.append("'rows' must be a non-empty list")
        rows = []
    for i, row in enumerate(rows or []):
        if not isinstance(row, dict):
            out.append(f"rows[{i}] must be an object")
            continue
        out += [f"rows[{i}] is missing {k!r}" for k in BENCHMARK_ROW_KEYS if k not in row]
        for key in ("ours_s", "peer_s", "ratio"):
            if key in row and not _is_number(row[key]):
                out.append(f"rows[{i}].{key} must be a finite number")
        if all(_is_number(row.get(k)) for k in ("ours_s", "peer_s", "ratio")) \
                and row["peer_s"] > 0:
            expected = row["ours_s"] / row["peer_s"]
            if not math.isclose(row["ratio"], expected, rel_tol=0.05, abs_tol=1e-3):
                out.append(f"rows[{i}].ratio is {row['ratio']}, but ours_s / peer_s is "
                           f"{expected:.4g} (the ratio is ours / peer)")
    return out


def load(root: Path = ROOT) -> BookData:
    """Read and check every input; raise DataError listing all problems."""
    root = Path(root)
    problems: list[str] = []
    try:
        toc = toc_docs(root)
    except (OSError, yaml.YAMLError) as exc:
        raise DataError([f"_toc.yml: cannot be read ({exc})"]) from exc
    parts, chapters = load_chapters(root, toc, problems)
    papers = load_papers(root, chapters, problems)
    coverage = load_coverage(root, papers, toc, problems)
    claims = load_claims(root, papers, chapters, toc, problems)
    measured = load_measured(root, claims, problems)
    benchmarks = load_benchmarks(root, problems)
    if problems:
        raise DataError(problems)
    return BookData(root, parts, chapters, papers, coverage, claims, measured, benchmarks)


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


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
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


def render_coverage(data: BookData, page: str = "book/generated/coverage.md") -> str:
    papers = _covered(data)
    n_off = sum(p.cls == "off" for p in data.papers.values())

    def status_of(p: Paper) -> str:
        return data.coverage[p.id].status if p.id in data.coverage else "planned"

    out = _generated_note()
    out += ["# Coverage of the source papers", ""]
    out += [
        f"The book grew out of a collection of {len(data.papers)} papers. Each one is classed "
        "*core* (a method the book implements in `refimpl`), *context* (cited and discussed "
        "where it meets a method of the book) or *off* (not about factorization). This page "
        "accounts for every core and context paper, chapter by chapter: "
        f"{badge('implemented')} means code in `refimpl` with tests and a notebook section, "
        f"{badge('discussed')} means the paper is related to the book's material in the note "
        f"beside it, and {badge('planned')} means the chapter that will treat it is not "
        "written yet.",
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
        mine = [p for p in papers if p.chapter == number]
        counts = {k: 0 for k in totals}
        for p in mine:
            counts[p.cls] += 1
            counts[status_of(p)] += 1
        for k in totals:
            totals[k] += counts[k]
        rows.append([number, escape(ch.title), *(str(counts[k]) for k in totals)])
    rows.append(["", "**All chapters**", *(f"**{totals[k]}**" for k in totals)])
    out += table(["Chapter", "Title", "Core", "Context", *COVERAGE_STATUSES], rows)
    out.append("")

    for number, ch in sorted(data.chapters.items()):
        mine = [p for p in papers if p.chapter == number]
        out += [_chapter_heading(ch), ""]
        if ch.status == "written":
            out += [f"Chapter pages: {', '.join(doc_link(d, page) for d in ch.pages)}.", ""]
        else:
            out += ["This chapter is planned.", ""]
        if not mine:
            out += ["No paper of the collection belongs to this chapter.", ""]
            continue
        rows = []
        for p in mine:
            cov = data.coverage.get(p.id, Coverage("planned"))
            names = ", ".join(f"`{n}`" for n in cov.refimpl)
            link = doc_link(cov.notebook, page) if cov.notebook else ""
            rows.append([p.id, escape(p.title), p.cls, badge(cov.status), names, link,
                         cell(cov.note)])
        out += table(["ID", "Paper", "Class", "Status", "refimpl", "Notebook", "Note"], rows)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


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
            measured = escape(data.measured[c.id]["measured"]) if c.id in data.measured \
                else "—"
            rows.append([f"{escape(data.papers[c.paper].title)} ({c.paper})", cell(c.claim),
                         badge(status), measured, ref_link(c.section, page)])
        out += table(["Paper", "Claim", "Status", "Measured", "Where"], rows)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3g}"
    if value is None:
        return "—"
    if isinstance(value, dict | list):
        return escape(json.dumps(value, sort_keys=True))
    return escape(str(value))


def render_benchmarks(data: BookData, page: str = "book/generated/benchmarks.md") -> str:
    out = _generated_note()
    out += ["# Benchmarks", ""]
    out += [
        "Each benchmark runs `refimpl` and a peer library that implements the same method in "
        "one process, on the same inputs, and records the median of repeated runs together "
        "with the quality each reached. Times are in seconds; the *ratio* is our time divided "
        "by the peer's, so a ratio below 1 means `refimpl` was faster. Results come from JSON "
        "files in `benchmarks/results/`, written by `make bench` on the machine named in each "
        "section; timings from different machines are not comparable.",
        "",
    ]
    if not data.benchmarks:
        out += ["No benchmark results have been recorded yet: `benchmarks/results/` holds no "
                "JSON file. Run `make bench` and then `make pages` to fill this page.", ""]
        return "\n".join(out).rstrip() + "\n"
    for name, b in data.benchmarks:
        out += [f"## {escape(b['title'])}", "", cell(b["description"]), ""]
        out += [f"- **Ours:** {escape(b['ours'])}",
                f"- **Peer:** {escape(b['peer'])}",
                f"- **Device:** {escape(b['device'])}"]
        machine = "; ".join(f"{escape(k)}: {_fmt(v)}" for k, v in sorted(b["machine"].items()))
        out += [f"- **Machine:** {machine or '—'}",
                f"- **Recorded:** {escape(b['created'])} (`benchmarks/results/{name}`)", ""]
        extra: list[str] = []
        for row in b["rows"]:
            extra += [k for k in row if k not in BENCHMARK_ROW_KEYS and k not in extra]
        header = ["Case", "Ours (s)", "Peer (s)", "Ratio", *(escape(k) for k in extra)]
        rows = [[escape(r["case"]), _fmt(float(r["ours_s"])), _fmt(float(r["peer_s"])),
                 f"{float(r['ratio']):.2f}", *(_fmt(r.get(k)) for k in extra)]
                for r in b["rows"]]
        out += table(header, rows)
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
    "map.md": render_map,
}


def build(root: Path = ROOT, out_dir: Path | None = None) -> dict[str, str]:
    """Render every generated page; write them to ``out_dir`` when given.

    Returns the pages as {file name: text}. Raises DataError on malformed data.
    """
    data = load(root)
    pages = {name: render(data) for name, render in PAGES.items()}
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, text in pages.items():
            path = out_dir / name
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
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
    print(f"build_pages: wrote {', '.join(sorted(pages))} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

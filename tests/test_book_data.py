"""The data behind the book's generated pages (book/data/, benchmarks/results/): papers,
chapters, coverage, claims, measured outcomes, benchmark results and citations."""

from __future__ import annotations

import importlib
import json
import re

import pytest
from book_files import (
    CHAPTERS,
    CLAIMS,
    COVERAGE,
    DATA,
    NOTEBOOK_DOCS,
    PAPERS,
    REFIMPL_NAMES,
    ROOT,
    read_papers,
)

from refimpl.reporting import STATUSES as CLAIM_STATUSES
from tools import build_pages as bp

N_PAPERS = 515


def test_papers_tsv_has_every_paper_once():
    text = (DATA / "papers.tsv").read_text(encoding="utf-8")
    assert text.splitlines()[0].split("\t") == ["id", "class", "chapter", "title"]
    rows = read_papers()
    assert len(rows) == N_PAPERS
    ids = [r["id"] for r in rows]
    assert ids == [f"p{i:03d}" for i in range(1, N_PAPERS + 1)], "ids are p001, p002, ... in order"
    assert all(r["title"].strip() for r in rows)


def test_papers_tsv_classes_and_chapters():
    chapters = {ch["number"] for ch in CHAPTERS}
    for r in read_papers():
        assert r["class"] in bp.PAPER_CLASSES, r
        if r["class"] == "off":
            assert r["chapter"] == "--", r
        else:
            assert r["chapter"] in chapters, r


# --------------------------------------------------------------------------- chapters.yaml


def test_chapters_yaml_is_the_plan_of_the_book():
    numbers = [ch["number"] for ch in CHAPTERS]
    assert numbers == [f"{i:02d}" for i in range(1, 14)]
    parts = {ch["number"]: ch["part"] for ch in CHAPTERS}
    assert all(parts[f"{i:02d}"] == "I" for i in range(1, 4))
    assert all(parts[f"{i:02d}"] == "II" for i in range(4, 7))
    assert all(parts[f"{i:02d}"] == "III" for i in range(7, 14))
    for ch in CHAPTERS:
        assert ch["status"] in bp.CHAPTER_STATUSES
        assert ch["title"].strip() and ch["description"].strip()
        assert bool(ch.get("pages")) == (ch["status"] == "written")


# --------------------------------------------------------------------------- coverage.yaml


def test_coverage_keys_are_core_or_context_papers():
    for pid, entry in COVERAGE.items():
        assert pid in PAPERS, f"coverage.yaml: {pid} is not a paper id"
        assert PAPERS[pid]["class"] != "off", f"coverage.yaml: {pid} is an off paper"
        assert entry["status"] in bp.COVERAGE_STATUSES, f"{pid}: {entry['status']!r}"
        assert set(entry) <= {"status", "refimpl", "notebook", "note"}, pid


@pytest.mark.parametrize("name", REFIMPL_NAMES)
def test_coverage_refimpl_names_import(name):
    module_name, _, attr = name.rpartition(".")
    module = importlib.import_module(module_name)
    assert hasattr(module, attr), f"{module_name} has no attribute {attr!r}"


@pytest.mark.parametrize("doc", NOTEBOOK_DOCS)
def test_linked_notebooks_exist(doc):
    for suffix in (".md", ".ipynb"):
        assert (ROOT / (doc + suffix)).exists(), f"{doc}{suffix} is missing"


# --------------------------------------------------------------------------- reproductions


def test_reproductions_ids_and_papers():
    ids = [c["id"] for c in CLAIMS]
    assert len(ids) == len(set(ids)), "duplicate claim ids"
    chapters = {ch["number"] for ch in CHAPTERS}
    for c in CLAIMS:
        assert re.match(r"^[a-z0-9][a-z0-9_-]*$", c["id"]), c["id"]
        assert c["paper"] in PAPERS and PAPERS[c["paper"]]["class"] != "off", c["id"]
        assert str(c["chapter"]) in chapters, c["id"]
        assert c["claim"].strip() and c["section"].strip(), c["id"]


def test_measured_records_match_claims():
    ids = {c["id"] for c in CLAIMS}
    for path in sorted((DATA / "measured").glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        assert record["id"] == path.stem, path.name
        assert record["id"] in ids, f"{path.name}: no such claim in reproductions.yaml"
        assert record["status"] in CLAIM_STATUSES, path.name
        assert isinstance(record["measured"], str) and record["measured"].strip(), path.name


def test_benchmark_results_follow_the_schema():
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        missing = [k for k in bp.BENCHMARK_KEYS if k not in data]
        assert not missing, f"{path.name}: missing {missing}"
        assert bp.benchmark_problems(data) == [], path.name


def test_cited_keys_are_in_the_bibliography():
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    keys = set(re.findall(r"@\w+\{([^,\s]+),", bib))
    sources = [p.read_text(encoding="utf-8") for p in (ROOT / "book").glob("*.md")]
    sources.append((DATA / "coverage.yaml").read_text(encoding="utf-8"))
    cited = set()
    for text in sources:
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text):
            cited |= {k.strip() for k in group.split(",")}
    assert cited <= keys, f"cited but not in references.bib: {sorted(cited - keys)}"



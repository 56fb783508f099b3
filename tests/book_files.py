"""What the tests of the book's data and of its page generator read: the data files, parsed
independently of the generator (tools/build_pages.py), so that the two can be compared."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "book" / "data"


def read_papers(root: Path = ROOT) -> list[dict]:
    with (root / "book" / "data" / "papers.tsv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def read_yaml(name: str, root: Path = ROOT):
    return yaml.safe_load((root / "book" / "data" / name).read_text(encoding="utf-8"))


PAPERS = {row["id"]: row for row in read_papers()}
COVERAGE = read_yaml("coverage.yaml") or {}
CLAIMS = (read_yaml("reproductions.yaml") or {}).get("claims") or []
CHAPTERS = read_yaml("chapters.yaml")["chapters"]
REFIMPL_NAMES = sorted({n for e in COVERAGE.values() for n in (e.get("refimpl") or [])})
NOTEBOOK_DOCS = sorted({e["notebook"] for e in COVERAGE.values() if e.get("notebook")}
                       | {c["section"].partition("#")[0] for c in CLAIMS}
                       | {p for ch in CHAPTERS for p in ch.get("pages") or []})

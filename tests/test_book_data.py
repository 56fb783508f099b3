"""The data behind the book's generated pages (book/data/, benchmarks/results/) and the
generator itself (tools/build_pages.py)."""

from __future__ import annotations

import csv
import importlib
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from refimpl.reporting import STATUSES as CLAIM_STATUSES

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "book" / "data"
sys.path.insert(0, str(ROOT / "tools"))

import build_pages as bp  # noqa: E402

N_PAPERS = 515


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


# --------------------------------------------------------------------------- papers.tsv


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


# --------------------------------------------------------------------------- the generator


def test_generated_coverage_lists_every_core_and_context_paper_once(tmp_path):
    pages = bp.build(ROOT, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(bp.PAGES)
    coverage = pages["coverage.md"]
    for pid, row in PAPERS.items():
        count = len(re.findall(rf"^\| {pid} \|", coverage, flags=re.MULTILINE))
        expected = 0 if row["class"] == "off" else 1
        assert count == expected, f"{pid} ({row['class']}) appears {count} times"


def test_generated_reproductions_show_every_claim(tmp_path):
    page = bp.build(ROOT, tmp_path)["reproductions.md"]
    rows = [line for line in page.splitlines()
            if line.startswith("| ") and "(p" in line.split("|")[1]]
    assert len(rows) == len(CLAIMS)
    assert f"| **All claims** | **{len(CLAIMS)}** |" in page


def test_generator_is_deterministic(tmp_path):
    assert bp.build(ROOT, tmp_path / "a") == bp.build(ROOT, tmp_path / "b")


# The generator's checks, on a copy of the data in a temporary repository whose notebooks
# are stand-ins (the real MyST sources, for their section labels, and empty .ipynb files).


@pytest.fixture
def fake_root(tmp_path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(DATA, root / "book" / "data",
                    ignore=shutil.ignore_patterns("measured"))
    shutil.copy(ROOT / "_toc.yml", root / "_toc.yml")
    for doc in NOTEBOOK_DOCS:
        path = root / doc
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / (doc + ".md"), path.with_suffix(".md"))
        path.with_suffix(".ipynb").write_text("{}\n", encoding="utf-8")
    (root / "benchmarks" / "results").mkdir(parents=True)
    return root


def _edit_yaml(root: Path, name: str, edit) -> None:
    path = root / "book" / "data" / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _problems(root: Path) -> str:
    with pytest.raises(bp.DataError) as info:
        bp.build(root)
    return "\n".join(info.value.problems)


def test_generator_accepts_the_data(fake_root):
    pages = bp.build(fake_root, fake_root / "out")
    assert "No benchmark results have been recorded yet" in pages["benchmarks.md"]
    assert "{doc}`/notebooks/01_meta/meta_factorization`" in pages["map.md"]
    assert "{doc}`../../notebooks/01_meta/meta_factorization`" in pages["coverage.md"]
    assert pages["reproductions.md"].count(bp.badge(bp.NOT_TRIED)) == len(CLAIMS) + 2


def test_generator_rejects_unknown_paper_id(fake_root):
    _edit_yaml(fake_root, "coverage.yaml", lambda d: d.update({"p999": {"status": "planned"}}))
    assert "p999: unknown paper id" in _problems(fake_root)


def test_generator_rejects_off_paper_in_coverage(fake_root):
    off = next(pid for pid, row in PAPERS.items() if row["class"] == "off")
    _edit_yaml(fake_root, "coverage.yaml", lambda d: d.update({off: {"status": "planned"}}))
    assert "is an off paper" in _problems(fake_root)


def test_generator_rejects_unknown_status(fake_root):
    _edit_yaml(fake_root, "coverage.yaml", lambda d: d["p001"].update(status="done"))
    assert "unknown status 'done'" in _problems(fake_root)


def test_generator_rejects_duplicate_claim_ids(fake_root):
    _edit_yaml(fake_root, "reproductions.yaml",
               lambda d: d["claims"].append(dict(d["claims"][0])))
    assert "duplicate claim id" in _problems(fake_root)


def test_generator_rejects_missing_notebook(fake_root):
    (fake_root / "notebooks" / "01_meta" / "hidden_projectors.ipynb").unlink()
    assert "missing notebook file notebooks/01_meta/hidden_projectors.ipynb" \
        in _problems(fake_root)


def test_generator_rejects_duplicate_paper_ids(fake_root):
    path = fake_root / "book" / "data" / "papers.tsv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace("p002", "p001", 1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert "duplicate paper id p001" in _problems(fake_root)


def test_generator_rejects_bad_measured_status(fake_root):
    cid = CLAIMS[0]["id"]
    folder = fake_root / "book" / "data" / "measured"
    folder.mkdir()
    (folder / f"{cid}.json").write_text(json.dumps(
        {"id": cid, "status": "confirmed", "measured": "x", "values": {}}))
    assert "unknown status 'confirmed'" in _problems(fake_root)


def test_generator_renders_measured_outcomes(fake_root):
    cid = CLAIMS[0]["id"]
    folder = fake_root / "book" / "data" / "measured"
    folder.mkdir()
    (folder / f"{cid}.json").write_text(json.dumps(
        {"id": cid, "status": "partly", "measured": "error_F = 3e-16 | 2x", "values": {}}))
    page = bp.build(fake_root)["reproductions.md"]
    assert r"error\_F = 3e-16 \| 2x" in page
    assert f"| {bp.badge('partly')} | 1 |" in page


def test_generator_renders_and_checks_benchmarks(fake_root):
    result = {"benchmark": "cpqr", "title": "Pivoted QR", "description": "CPQR against LAPACK",
              "ours": "refimpl.linalg.cpqr", "peer": "scipy.linalg.qr(pivoting=True)",
              "device": "cpu", "machine": {"cpu": "test", "cores": 2},
              "created": "2026-01-01",
              "rows": [{"case": "500x300", "ours_s": 0.02, "peer_s": 0.01, "ratio": 2.0,
                        "rel_error": 1e-15}]}
    path = fake_root / "benchmarks" / "results" / "cpqr.json"
    path.write_text(json.dumps(result))
    page = bp.build(fake_root)["benchmarks.md"]
    assert "## Pivoted QR" in page and "| 500x300 | 0.02 | 0.01 | 2.00 | 1e-15 |" in page
    del result["rows"][0]["peer_s"]
    path.write_text(json.dumps(result))
    assert "rows[0] is missing 'peer_s'" in _problems(fake_root)


def test_main_reports_problems_and_fails(fake_root, capsys):
    _edit_yaml(fake_root, "coverage.yaml", lambda d: d["p001"].update(status="done"))
    assert bp.main(["--root", str(fake_root)]) == 1
    assert "unknown status 'done'" in capsys.readouterr().err


def test_generator_links_and_checks_section_labels(fake_root):
    doc = CLAIMS[0]["section"].partition("#")[0]
    _edit_yaml(fake_root, "reproductions.yaml",
               lambda d: d["claims"][0].update(section=f"{doc}#no-such-label"))
    assert "section label 'no-such-label' is not a MyST target" in _problems(fake_root)
    with open(fake_root / (doc + ".md"), "a", encoding="utf-8") as f:
        f.write("\n(no-such-label)=\n## A section\n")
    assert "{ref}`no-such-label`" in bp.build(fake_root)["reproductions.md"]

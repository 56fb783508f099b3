"""The page generator (tools/build_pages.py): the pages it writes from the real data, and its
checks, on a copy of the data in a temporary repository."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from book_files import CLAIMS, DATA, NOTEBOOK_DOCS, PAPERS, ROOT

from tools import build_pages as bp


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


def _write_measured(root: Path, status: str, measured: str) -> None:
    """A measured record for the first claim, as executing its notebook would write it."""
    cid = CLAIMS[0]["id"]
    folder = root / "book" / "data" / "measured"
    folder.mkdir()
    (folder / f"{cid}.json").write_text(json.dumps(
        {"id": cid, "status": status, "measured": measured, "values": {}}))


def test_generator_rejects_bad_measured_status(fake_root):
    _write_measured(fake_root, "confirmed", "x")
    assert "unknown status 'confirmed'" in _problems(fake_root)


def test_generator_renders_measured_outcomes(fake_root):
    _write_measured(fake_root, "partly", "error_F = 3e-16 | 2x")
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

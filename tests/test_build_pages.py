"""The page generator (tools/build_pages.py): the pages it writes from the real data, and its
checks, on a copy of the data in a temporary repository."""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from book_files import CHAPTERS, CLAIMS, COVERAGE, DATA, NOTEBOOK_DOCS, PAPERS, ROOT

from tools import build_pages as bp


def test_generated_coverage_lists_every_core_and_context_paper_once(tmp_path):
    pages = bp.build(ROOT, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*bp.PAGES, bp.FIGURES,
                                                                 bp.api_pages.API])
    coverage = pages["coverage.md"]
    for pid, row in PAPERS.items():
        count = len(re.findall(rf"\b(core|context) paper {pid}\b", coverage))
        expected = 0 if row["class"] == "off" else 1
        assert count == expected, f"{pid} ({row['class']}) appears {count} times"
        if expected:
            assert f"{row['class']} paper {pid}" in coverage


def test_generated_coverage_keeps_every_fact_of_each_paper(tmp_path):
    coverage = bp.build(ROOT, tmp_path)["coverage.md"]
    for pid, entry in COVERAGE.items():
        # an entry's lines after the first are indented: it ends at the next unindented one
        block = re.search(rf"paper {pid}\b.*?(?=\n\n(?! )|\Z)", coverage, re.DOTALL).group()
        assert bp.badge(entry["status"]) in coverage.split(f"paper {pid}")[0].rsplit("\n")[-1]
        for name in entry.get("refimpl") or []:
            assert f"`{name}`" in block, f"{pid}: {name}"
        if entry.get("notebook"):
            assert entry["notebook"] in coverage.split(f"paper {pid}")[1].split("\n")[0]
        if entry.get("note"):
            assert " ".join(entry["note"].split()) in block, pid
    # one heading (with a label for the summary's links) per chapter, and a short summary
    for ch in CHAPTERS:
        assert f"(coverage-ch{ch['number']})=\n## Chapter {ch['number']}:" in coverage
    summary = coverage[coverage.index("## Summary"):coverage.index("(coverage-ch")]
    assert summary.count("\n| ") == len(CHAPTERS) + 3  # header, rule, chapters, total
    assert all(line.count(" | ") <= 3 for line in summary.splitlines() if line.startswith("|"))


def test_generated_reproductions_show_every_claim(tmp_path):
    page = bp.build(ROOT, tmp_path)["reproductions.md"]
    rows = [line for line in page.splitlines()
            if line.startswith("| ") and "(p" in line.split("|")[1]]
    assert len(rows) == len(CLAIMS)
    assert f"| **All claims** | **{len(CLAIMS)}** |" in page


def test_generator_is_deterministic(tmp_path):
    a, b = bp.build(ROOT, tmp_path / "a"), bp.build(ROOT, tmp_path / "b")
    assert a == b
    for name in a:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    figures = [n for n in a if n.startswith(f"{bp.FIGURES}/")]
    assert len(figures) >= len(list((ROOT / "benchmarks" / "results").glob("*.json")))
    for name in figures:
        assert "<dc:date>" not in a[name], f"{name} carries a date"


def test_build_rewrites_only_what_changed_and_drops_old_figures(tmp_path):
    bp.build(ROOT, tmp_path)
    page, stale = tmp_path / "benchmarks.md", tmp_path / bp.FIGURES / "bench-gone.svg"
    before = page.stat().st_mtime_ns
    stale.write_text("<svg/>", encoding="utf-8")
    bp.build(ROOT, tmp_path)
    assert page.stat().st_mtime_ns == before
    assert not stale.exists()


def _tables(page: str) -> list[list[list[str]]]:
    """Every Markdown table of a page: its rows (header first), each a list of cells."""
    tables, current = [], []
    for line in [*page.splitlines(), ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(re.fullmatch(r"-+:?", c) for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def _shown(cell: str) -> str:
    """Roughly the text a cell shows: without Markdown escapes, roles and emphasis."""
    cell = re.sub(r"\{[\w:-]+\}`([^`]*)`", r"\1", cell)
    return re.sub(r"\\(.)", r"\1", cell).replace("**", "")


def test_benchmark_tables_are_narrow_with_human_headers(tmp_path):
    page = bp.build(ROOT, tmp_path)["benchmarks.md"]
    tables = _tables(page)
    assert len(tables) == sum(len(bp.bench_tables(b)) for _, b in bp.load(ROOT).benchmarks)
    for rows in tables:
        header = rows[0]
        assert len(header) <= 5, header
        assert header[0] == "Case" and header[3] == "Ratio", header
        assert re.fullmatch(r"refimpl \((s|ms|µs|ns|B|KiB|MiB|GiB)\)", header[1]), header
        assert not any("_" in h for h in header), header
        for row in rows[1:]:
            assert len(row) == len(header), row
            for text in map(_shown, row[1:]):  # the case names are the data's own
                assert len(text) <= bp.NOTE_WIDTH, text
                assert "_" not in text, text


def test_benchmark_sections_show_their_figure_and_a_short_machine(tmp_path):
    pages = bp.build(ROOT, tmp_path)
    page = pages["benchmarks.md"]
    for _, b in bp.load(ROOT).benchmarks:
        for t in bp.bench_tables(b):
            name = bp._figure_name(b, t)
            block = page[page.index(f"```{{figure}} figures/{name}.svg"):]
            block = block[:block.index("\n```\n")]
            assert f":name: fig-{name}" in block and ":alt: Horizontal bar chart" in block
            assert "1× (parity)" in block and bp.short_machine(b["machine"]) in \
                block.replace("\\_", "_")
            svg = pages[f"{bp.FIGURES}/{name}.svg"]
            width = float(re.search(r'<svg[^>]* width="([\d.]+)pt"', svg).group(1))
            assert width <= 6.8 * 72 + 0.01
        assert f"- **Machine:** {bp.escape(bp.short_machine(b['machine']))}" in page
    assert bp.FIGURE_FONT_PT >= 9


def test_short_machine_line():
    machine = {"platform": "Linux-6.18.44-fc-v595-x86_64-with-glibc2.36", "processor": "x86_64",
               "cpu_count": 2, "python": "3.11.7", "numpy": "2.4.6", "scipy": "1.17.1",
               "blas": ["openblas 0.3.31.188.0 (2 threads)", "openmp None (1 threads)"]}
    assert bp.short_machine(machine) == ("2 CPUs, OpenBLAS 0.3.31 (2 threads), NumPy 2.4.6, "
                                         "SciPy 1.17.1, Python 3.11.7, Linux x86_64")
    machine["blas"] = ["openblas 0.3.30 (1 threads)", "openblas 0.3.31.188.0 (1 threads)"]
    assert "OpenBLAS 0.3.30/0.3.31 (1 thread)," in bp.short_machine(machine)
    assert bp.short_machine({}) == ""


def test_number_formats():
    assert [bp._sig(x) for x in (0.0363, 9744.7, 1.0, 0.5)] == ["0.0363", "9,745", "1.00",
                                                                  "0.500"]
    assert [bp._num(x) for x in (1.7e-14, 0.0, 11, True, 0.99999988, 2.5)] == [
        "2e-14", "0", "11", "yes", "0.9999999", "2.50"]
    assert bp._num_pair(1.0000379, 1.0000465) == ("1.00004", "1.00005")
    assert bp._num_pair(1.27e-15, 1.17e-15) == ("1.3e-15", "1.2e-15")
    assert bp._num_pair(2.2e-13, 2.2e-13) == ("2.2e-13", "2.2e-13")
    assert [bp._ratio(r) for r in (0.0994, 0.59, 74.41)] == ["0.099", "0.59", "74.4"]
    assert [bp._duration(s) for s in (3.04, 42.4, 265.0, 3599.6, 7300.0)] == [
        "3.0 s", "42 s", "4 min 25 s", "60 min 00 s", "2 h 02 min"]


def test_ratio_figure_scale_target_and_size():
    assert not bp._is_log([0.5, 1.6], None) and bp._is_log([0.5, 6.0], None)
    assert bp._is_log([1.5, 2.0], 0.05)  # the target counts in the span
    few = bp.ratio_figure(["a", "b"], [0.5, 2.0], kind="time", target=0.8)
    many = bp.ratio_figure([f"case {i}" for i in range(20)], [1.5] * 20, kind="memory")
    height = [float(re.search(r'<svg[^>]* height="([\d.]+)pt"', svg).group(1))
              for svg in (few, many)]
    assert height[0] < height[1]
    assert few == bp.ratio_figure(["a", "b"], [0.5, 2.0], kind="time", target=0.8)


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
    assert not [n for n in pages if n.startswith(bp.FIGURES)]
    # the stand-in notebooks record no run: listed, with nothing recorded
    status = pages["status.md"]
    assert status.count("| — | not recorded | not recorded |") == len(NOTEBOOK_DOCS)
    assert f"**Total, 0 of {len(NOTEBOOK_DOCS)} notebooks**" in status
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
    pages = bp.build(fake_root)
    page = pages["benchmarks.md"]
    assert "## Pivoted QR" in page and "| 500x300 | 20.0 | 10.0 | 2.00 | error 1e\u201115 |" in page
    assert "| Case | refimpl (ms) | Peer (ms) | Ratio | Notes |" in page
    assert "```{figure} figures/bench-cpqr.svg\n:name: fig-bench-cpqr\n" in page
    assert "the dashed line" not in page
    assert pages["figures/bench-cpqr.svg"].startswith("<?xml")
    del result["rows"][0]["peer_s"]
    path.write_text(json.dumps(result))
    assert "rows[0] is missing 'peer_s'" in _problems(fake_root)


def _benchmark(root: Path, **extra) -> Path:
    result = {"benchmark": "demo", "title": "Demo", "description": "A demo.", "ours": "ours",
              "peer": "peer", "device": "cpu", "machine": {"cpu_count": 2},
              "created": "2026-01-01",
              "rows": [{"case": "small", "ours_s": 2e-6, "peer_s": 4e-6, "ratio": 0.5,
                        "max_gap_value": 0.25, "ours_rel_error": 1e-15,
                        "peer_rel_error": 2e-15, "rel_residual": 3e-16, "sweeps": 12,
                        "same_pivots": False, "peer_call": "scipy.linalg.qr(A)"},
                       {"case": "large", "ours_s": 8e-6, "peer_s": 4e-6, "ratio": 2.0}],
              **extra}
    path = root / "benchmarks" / "results" / "demo.json"
    path.write_text(json.dumps(result))
    return path


def test_benchmark_notes_units_targets_and_further_tables(fake_root):
    memory = {"method": "a profiler",
              "rows": [{"case": "norm", "ours_mib": 18.0, "peer_mib": 128.0, "ratio": 0.140625,
                        "cosine": 0.9999999}]}
    _benchmark(fake_root, target_ratio=0.5, blas_threads=1, transient_memory=memory)
    pages = bp.build(fake_root)
    page = pages["benchmarks.md"]
    assert "| Case | refimpl (µs) | Peer (µs) | Ratio | Notes |" in page
    # unknown keys in words, known ones with their labels; what does not fit is listed below
    row = next(line for line in page.splitlines() if line.startswith("| small |"))
    assert row == "| small | 2.00 | 4.00 | 0.50 | max gap value 0.250 |"
    assert ("Further values:\n\n- small: error 1.0e‑15 vs 2.0e‑15, residual 3e‑16, 12 sweeps, "
            "pivots differ\n") in page  # with non-breaking hyphens
    assert "Peer call per case:" in page and "- small: scipy.linalg.qr(A)" in page
    assert "*residual*: relative residual" in page
    assert "the dashed line marks the target ratio of 0.5×" in page
    assert "- **BLAS threads:** 1" in page and "- **Target ratio:** 0.500" in page
    assert "### Transient memory" in page and "- **Method:** a profiler" in page
    assert "| Case | refimpl (MiB) | Peer (MiB) | Ratio | Notes |" in page
    assert "| norm | 18.0 | 128 | 0.14 | cosine 0.9999999 |" in page
    assert bp._nobreak("3e-7 vs 1.0e-15, e-mail") == "3e\u20117 vs 1.0e\u201115, e-mail"
    assert {"figures/bench-demo.svg", "figures/bench-demo-transient-memory.svg"} <= set(pages)
    assert "refimpl smaller" in _figure_text(pages["figures/bench-demo-transient-memory.svg"])


def test_benchmark_per_row_targets(fake_root):
    path = _benchmark(fake_root)
    result = json.loads(path.read_text())
    result["rows"][0]["target_ratio"] = 1.0           # 0.50: met
    result["rows"][1]["target_ratio"] = 1.5           # 2.00: missed
    result["rows"].append({"case": "edge", "ours_s": 4.4e-6, "peer_s": 4e-6, "ratio": 1.1,
                           "target_ratio": 1.1})      # met exactly, as printed
    result["rows"].append({"case": "free", "ours_s": 4e-6, "peer_s": 4e-6, "ratio": 1.0})
    path.write_text(json.dumps(result))
    pages = bp.build(fake_root)
    page = pages["benchmarks.md"]
    assert "| Case | refimpl (µs) | Peer (µs) | Ratio | Notes |" in page
    assert "| large | 8.00 | 4.00 | 2.00 (target ≤\u00a01.5, missed) |  |" in page
    assert "| edge | 4.40 | 4.00 | 1.10 (target ≤\u00a01.1, met) |  |" in page
    assert "| free | 4.00 | 4.00 | 1.00 |  |" in page
    assert "Targets: 2 of 3 met" in page
    assert "the short dashed mark across each bar is that case's target ratio" in page
    assert "target" in _figure_text(pages["figures/bench-demo.svg"])
    result["rows"][0]["target_ratio"] = 0
    path.write_text(json.dumps(result))
    assert "rows[0].target_ratio must be a positive number" in _problems(fake_root)


def _figure_text(svg: str) -> str:
    """The legend's words, which matplotlib writes as comments beside the glyph paths."""
    return " ".join(re.findall(r"<!-- (.*?) -->", svg))


def test_benchmark_checks_targets_and_further_tables(fake_root):
    _benchmark(fake_root, target_ratio=-1, memory={"rows": [{"case": "x", "ratio": 1.0}]})
    problems = _problems(fake_root)
    assert "target_ratio must be a positive number" in problems
    assert "memory.rows: every row needs numeric ours_<x> and peer_<x>" in problems



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


# The execution-status page, from the committed notebooks (nbclient's per-cell timestamps and
# the run record of tools/execute_notebooks.py).


def _cell(start: str | None, reply: str | None, cell_type: str = "code") -> dict:
    execution = {k: v for k, v in (("iopub.execute_input", start),
                                   ("shell.execute_reply", reply)) if v}
    return {"cell_type": cell_type, "metadata": {"execution": execution} if execution else {},
            "source": "", **({"outputs": []} if cell_type == "code" else {})}


RUN = {"kernel_env": {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "OPENBLAS_CORETYPE": "Haswell",
                      "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                      "OPENBLAS_NUM_THREADS": "1"},
       "torch_threads": 1, "machine": "Test CPU, 2 CPUs, Linux x86_64", "refimpl": "0.1.0"}


def _notebook(run: dict | None = None) -> dict:
    cells = [_cell("2026-12-01T23:09:03.041988Z", "2026-12-01T23:09:03.050550Z"),
             _cell(None, None, "markdown"),
             _cell("2026-12-01T23:09:04.5Z", "2026-12-01T23:09:14.229501Z"),
             _cell(None, None)]  # a cell without timestamps (not executed by nbclient)
    return {"cells": cells, "metadata": {"refimpl": run} if run else {}, "nbformat": 4,
            "nbformat_minor": 5}


def test_timestamps_and_execution_times():
    assert bp._timestamp("2026-12-01T23:09:03.041988Z") == datetime(
        2026, 12, 1, 23, 9, 3, 41988, tzinfo=timezone.utc)
    assert bp._timestamp("2026-12-01T23:09:03.041988123Z").microsecond == 41988
    assert bp._timestamp("2026-12-02T00:09:03+01:00").hour == 23
    assert bp._timestamp("2026-12-01T23:09:03") == datetime(2026, 12, 1, 23, 9, 3,
                                                            tzinfo=timezone.utc)
    assert bp._timestamp("yesterday") is None and bp._timestamp(None) is None
    seconds, last = bp.execution_times(_notebook())
    assert seconds == pytest.approx(11.187513)
    assert last == datetime(2026, 12, 1, 23, 9, 14, 229501, tzinfo=timezone.utc)
    assert bp.execution_times({"cells": [_cell(None, None)]}) == (None, None)
    assert bp.execution_times({}) == (None, None)


def test_kernel_summary():
    assert bp.kernel_summary(RUN) == "AVX2/Haswell, 1 thread, torch 1"
    assert bp.kernel_summary(None) == "not recorded"
    assert bp.kernel_summary({"kernel_env": {}, "torch_threads": 2}) == \
        "default kernels, default threads, torch 2"
    mixed = {"kernel_env": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "2"}}
    assert bp.kernel_summary(mixed) == "default kernels, OMP 1, MKL 2, OpenBLAS –"


def test_status_page_from_committed_notebooks(fake_root):
    recorded, older = NOTEBOOK_DOCS[0], NOTEBOOK_DOCS[1]
    (fake_root / f"{recorded}.ipynb").write_text(json.dumps(_notebook(RUN)))
    (fake_root / f"{older}.ipynb").write_text(json.dumps(_notebook()))
    stray = fake_root / "notebooks" / "scratch.ipynb"
    stray.write_text(json.dumps(_notebook()))
    page = bp.build(fake_root)["status.md"]
    row = next(line for line in page.splitlines() if f"`../../{recorded}`" in line)
    when = "2026\u201112\u201101\u00a023:09"
    assert row == f"| {{doc}}`../../{recorded}` | 11 s | AVX2/Haswell, 1 thread, torch 1 | {when} |"
    row = next(line for line in page.splitlines() if f"`../../{older}`" in line)
    assert row == f"| {{doc}}`../../{older}` | 11 s | not recorded | {when} |"
    assert "| `notebooks/scratch` (not in the book) | 11 s |" in page
    n = len(NOTEBOOK_DOCS) + 1
    assert f"| **Total, 3 of {n} notebooks** | **34 s** |  | **{when}** |" in page
    assert ("- **AVX2/Haswell, 1 thread, torch 1** (1 notebook): `MKL_ENABLE_INSTRUCTIONS=AVX2`, "
            "`OPENBLAS_CORETYPE=Haswell`, `OMP_NUM_THREADS=1`") in page
    assert "machine: Test CPU, 2 CPUs, Linux x86\\_64; refimpl 0.1.0." in page
    # the notebooks in the order of the table of contents
    docs = re.findall(r"\{doc\}`\.\./\.\./([^`]+)`", page)
    order = bp.toc_order(fake_root)
    assert docs == sorted(docs, key=order.index)
    stray.write_text("{not json")
    assert "notebooks/scratch.ipynb: not valid JSON" in _problems(fake_root)


def test_status_page_lists_every_committed_notebook(tmp_path):
    page = bp.build(ROOT, tmp_path)["status.md"]
    committed = sorted(p.relative_to(ROOT).with_suffix("").as_posix()
                       for p in (ROOT / "notebooks").rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts)
    assert sorted(re.findall(r"^\| \{doc\}`\.\./\.\./([^`]+)`", page, re.MULTILINE)) == committed
    assert "notebooks** |" in page

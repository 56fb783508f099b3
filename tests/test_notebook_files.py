"""The notebooks' files: each MyST .md source is paired with an executed .ipynb that has the
same cells, no .ipynb is left without its source, and every notebook is in the book's table
of contents. (nbval, run by `make test`, re-executes the notebooks themselves.)"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from tools.build_pages import toc_docs
from tools.execute_notebooks import NOTEBOOKS, all_notebook_mds, cell_inputs

ROOT = Path(__file__).resolve().parent.parent

MDS = all_notebook_mds()
IDS = [str(md.relative_to(ROOT)) for md in MDS]


def _doc(path: Path) -> str:
    return path.relative_to(ROOT).with_suffix("").as_posix()


def _ipynb(md: Path):
    ipynb = md.with_suffix(".ipynb")
    assert ipynb.exists(), f"{_doc(md)}.ipynb is missing: run `make notebooks`"
    return nbformat.read(ipynb, as_version=4)


@pytest.mark.parametrize("md", MDS, ids=IDS)
def test_ipynb_has_the_same_cells_as_its_source(md):
    source, executed = cell_inputs(jupytext.read(md)), cell_inputs(_ipynb(md))
    assert [t for t, _ in source] == [t for t, _ in executed], (
        f"{_doc(md)}: cell types differ between .md and .ipynb; run `make notebooks`"
    )
    for i, (a, b) in enumerate(zip(source, executed, strict=True)):
        assert a == b, f"{_doc(md)}: cell {i} differs between .md and .ipynb; run `make notebooks`"


@pytest.mark.parametrize("md", MDS, ids=IDS)
def test_ipynb_is_executed(md):
    code = [c for c in _ipynb(md).cells if c.cell_type == "code"]
    assert any(c.get("outputs") for c in code), (
        f"{_doc(md)}.ipynb has no outputs; run `make notebooks`"
    )


@pytest.mark.parametrize("md", MDS, ids=IDS)
def test_ipynb_kernel_is_python3(md):
    kernelspec = _ipynb(md).metadata.get("kernelspec", {})
    assert kernelspec.get("name") == "python3", f"{_doc(md)}: kernelspec {kernelspec}"


def test_no_ipynb_without_its_source():
    sources = {md.with_suffix(".ipynb") for md in MDS}
    orphans = sorted(str(p.relative_to(ROOT)) for p in NOTEBOOKS.rglob("*.ipynb")
                     if ".ipynb_checkpoints" not in p.parts and p not in sources)
    assert not orphans, f"notebooks without a MyST .md source: {orphans}"


def test_every_notebook_is_in_the_toc():
    docs = toc_docs(ROOT)
    missing = [_doc(md) for md in MDS if _doc(md) not in docs]
    assert not missing, f"notebooks missing from _toc.yml: {missing}"


def test_every_toc_notebook_exists():
    sources = {_doc(md) for md in MDS}
    missing = sorted(d for d in toc_docs(ROOT) if d.startswith("notebooks/") and d not in sources)
    assert not missing, f"_toc.yml lists notebooks that have no MyST .md source: {missing}"


REPOSITORY = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]
INSTALL = f'%pip install -q "refimpl[book] @ git+{REPOSITORY}"'
# On Colab a notebook clones the repository (its pages read results committed under runs/),
# installs refimpl from the clone and works in its own folder there.
CLONE = (f'REPO = "{REPOSITORY}"', "!git clone -q --depth 1 $REPO /content/book")


@pytest.mark.parametrize("md", MDS, ids=IDS)
def test_first_cell_installs_refimpl_on_colab(md):
    nb = jupytext.read(md)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert 'if "google.colab" in sys.modules:' in first.source, (
        f"{_doc(md)}: the first code cell must install refimpl when run on Colab")
    lines = [line.strip() for line in first.source.splitlines()]
    assert all(line in lines for line in CLONE), (
        f"{_doc(md)}: the Colab cell must clone _config.yml's repository.url ({REPOSITORY})")
    assert '%pip install -q "/content/book[book]"' in lines
    assert f"%cd /content/book/{md.parent.relative_to(ROOT).as_posix()}" in lines, (
        f"{_doc(md)}: on Colab the notebook must work in its own folder of the clone")
    assert "remove-cell" in first.metadata.get("tags", []), "the book hides the install cell"


@pytest.mark.parametrize("page", ["README.md", "book/running.md"])
def test_readme_installs_from_the_configured_repository(page):
    readme = (ROOT / page).read_text(encoding="utf-8")
    assert INSTALL.removeprefix("%pip install -q ") in readme
    assert all(url == REPOSITORY for url in re.findall(r"https://github\.com/[\w.-]+/[\w.-]+",
                                                        readme))


# --- pages that read well (CONTRIBUTING.md): what can be checked from the committed files ---

COLUMN = 79          # characters of code or printed text that fit the book's code column
MAX_FIGURE_PX = 700  # the text column is about 688 px wide: a figure shows at natural size


def _code_cells(md: Path):
    return [c for c in _ipynb(md).cells if c.cell_type == "code"]


def _text_lines(output) -> list[str]:
    if output.get("output_type") == "stream":
        text = output.get("text", "")
    else:
        text = output.get("data", {}).get("text/plain", "")
        if "text/html" in output.get("data", {}):  # shown as HTML (a table, library source)
            return []
    text = "".join(text) if isinstance(text, list) else text
    return [line for chunk in text.split("\n") for line in chunk.split("\r")]


def _is_progress(line: str) -> bool:
    return bool(re.search(r"\d+%\|", line))


@pytest.mark.parametrize("md", MDS, ids=IDS)
def test_checked_cells_use_the_nbval_tag_not_a_comment(md):
    text = md.read_text(encoding="utf-8")
    assert "NBVAL_CHECK_OUTPUT" not in text, (
        f"{_doc(md)}: mark checked cells with the tag nbval-check-output")


@pytest.mark.parametrize("md", MDS, ids=IDS)
def test_printed_lines_fit_the_column(md):
    wide = [(i, line) for i, c in enumerate(_code_cells(md)) for o in c.get("outputs", [])
            for line in _text_lines(o) if len(line) > COLUMN and not _is_progress(line)]
    assert not wide, f"{_doc(md)}: {len(wide)} printed lines wider than {COLUMN}: " + "; ".join(
        f"code cell {i}: {line[:60]!r}... ({len(line)})" for i, line in wide[:5])


def _png_width(b64: str) -> int:
    import base64
    import struct

    head = base64.b64decode(b64[:64])
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">I", head[16:20])[0]


@pytest.mark.parametrize("md", MDS, ids=IDS)
def test_figures_fit_the_column_and_have_caption_name_and_alt_text(md):
    problems = []
    for i, c in enumerate(_code_cells(md)):
        images = [o["data"]["image/png"] for o in c.get("outputs", [])
                  if "image/png" in o.get("data", {})]
        if not images:
            continue
        meta = c.metadata.get("mystnb", {})
        figure, image = meta.get("figure", {}), meta.get("image", {})
        if not (figure.get("caption") and figure.get("name")):
            problems.append(f"code cell {i}: no mystnb.figure caption and name")
        if not image.get("alt"):
            problems.append(f"code cell {i}: no mystnb.image alt text")
        if len(images) > 1:
            problems.append(f"code cell {i}: {len(images)} figures in one cell")
        problems += [f"code cell {i}: figure {w} px wide (at most {MAX_FIGURE_PX})"
                     for w in map(_png_width, images) if w > MAX_FIGURE_PX]
    assert not problems, f"{_doc(md)}: " + "; ".join(problems)


def test_figure_names_are_unique_across_the_book():
    names = [c.metadata["mystnb"]["figure"]["name"] for md in MDS for c in _code_cells(md)
             if c.metadata.get("mystnb", {}).get("figure", {}).get("name")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)

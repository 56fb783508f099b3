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


@pytest.mark.parametrize("md", MDS, ids=IDS)
def test_first_cell_installs_refimpl_on_colab(md):
    nb = jupytext.read(md)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert 'if "google.colab" in sys.modules:' in first.source, (
        f"{_doc(md)}: the first code cell must install refimpl when run on Colab")
    assert INSTALL in first.source, (
        f"{_doc(md)}: the Colab install must use _config.yml's repository.url ({REPOSITORY})")
    assert "remove-cell" in first.metadata.get("tags", []), "the book hides the install cell"


def test_readme_installs_from_the_configured_repository():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert INSTALL.removeprefix("%pip install -q ") in readme
    assert all(url == REPOSITORY for url in re.findall(r"https://github\.com/[\w.-]+/[\w.-]+",
                                                        readme))

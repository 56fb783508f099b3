"""The API reference: the page generator (tools/api_pages.py) and the book extension's checks
and links (book/_ext/refimpl_api.py), on the real package and on a tiny package built with
Sphinx in a temporary folder."""

from __future__ import annotations

import importlib
import inspect
import io
import json
import sys
import textwrap
from pathlib import Path

import pytest

from tools import api_pages

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book" / "_ext"))
refimpl_api = pytest.importorskip("refimpl_api", reason="the book extra (sphinx) is needed")


def test_uses_follows_imports_across_cells():
    cells = ["import refimpl\nfrom refimpl import linalg, meta as mt\n"
             "from refimpl.sketch import randomized_svd as rsvd",
             "x = linalg.jacobi_svd(A).s\ny = mt.pinv_meta(A)\nd = refimpl.default_device()",
             "np.linalg.svd(A)\nlinalg = None"]
    found = api_pages.uses(cells)
    assert {"refimpl.linalg.jacobi_svd", "refimpl.meta.pinv_meta", "refimpl.default_device",
            "refimpl.sketch.randomized_svd"} <= found
    assert not any(p.startswith("np") for p in found)


def test_code_cells_drop_options_and_magics():
    text = ("```{code-cell} ipython3\n:tags: [hide-input]\n\n!pip install x\n%cd y\n"
            "from refimpl import lora\n```\n\nprose `from refimpl import meta`\n")
    assert api_pages.code_cells(text) == ["\nfrom refimpl import lora"]


def test_every_public_name_is_documented_once_under_its_innermost_module():
    found, by_id = api_pages.entries()
    for _, modules, _, _ in api_pages.SUBPACKAGES:
        for name in modules:
            module = importlib.import_module(name)
            for attr in api_pages._public(module):
                qual = by_id[id(getattr(module, attr))]
                assert qual in found and qual.endswith(f".{attr}")
    assert len(set(by_id.values())) == len(found)
    # re-exported at the top level, documented where it is defined
    assert by_id[id(importlib.import_module("refimpl").default_device)] == \
        "refimpl.backend.default_device"
    assert found["refimpl.linalg.jacobi_svd"].page == "linalg"


def test_pages_hold_an_autodoc_entry_per_name_and_the_usage_map(tmp_path):
    nb = tmp_path / "notebooks" / "02_x"
    nb.mkdir(parents=True)
    (nb / "page.md").write_text("```{code-cell} ipython3\nfrom refimpl import linalg\n```\n\n"
                                "```{code-cell} ipython3\nlinalg.cpqr(A)\n```\n")
    out = api_pages.build(tmp_path, ["notebooks/02_x/page", "book/intro"],
                          {"02": "notebooks/02_x/page"})
    found, _ = api_pages.entries()
    for qual, entry in found.items():
        page = out[f"{api_pages.API}/{entry.page}.md"]
        assert f":: {qual}\n" in page, f"{qual} has no entry on its page"
    usage = json.loads(out[f"{api_pages.API}/usage.json"])
    assert usage["pages"] == {"notebooks/02_x/page": ["refimpl.linalg.cpqr"]}
    assert usage["taught"] == {"refimpl.linalg.cpqr": ["notebooks/02_x/page"]}
    assert usage["home"]["refimpl.linalg.lu"] == "notebooks/02_x/page"
    assert "{doc}`chapter 2 </notebooks/02_x/page>`" in out[f"{api_pages.API}/linalg.md"]
    assert "is not written yet" in out[f"{api_pages.API}/tensor.md"]


def test_the_real_package_has_no_docstring_problems():
    found, _ = api_pages.entries()
    assert refimpl_api.entry_problems({q: e.kind for q, e in found.items()}) == []


FAKE = '''
"""A tiny package for the extension's tests."""

__all__ = ["documented", "undocumented", "misparsed", "Thing", "LIMIT"]

#: The largest value.
LIMIT = 3


def documented(x):
    """Twice ``x``.

    Parameters
    ----------
    x : float

    Returns
    -------
    float
    """
    return 2 * x


def undocumented(x):
    return x


def misparsed(x):
    """Half ``x``.

    Paramters
    ---------
    x : float
    """
    return x / 2


class Thing:
    """A thing."""

    def method(self):
        return 1
'''


def test_entry_problems_name_missing_and_unparsable_docstrings(tmp_path, monkeypatch):
    (tmp_path / "fakepkg.py").write_text(FAKE)
    monkeypatch.syspath_prepend(str(tmp_path))
    entries = {"fakepkg.documented": "function", "fakepkg.undocumented": "function",
               "fakepkg.misparsed": "function", "fakepkg.Thing": "class",
               "fakepkg.LIMIT": "data"}
    problems = refimpl_api.entry_problems(entries)
    assert "fakepkg.undocumented has no docstring" in problems
    assert "fakepkg.Thing.method has no docstring" in problems
    assert any(p.startswith("the docstring of fakepkg.misparsed does not parse") and
               "Paramters" in p for p in problems)
    assert len(problems) == 3, problems


def test_members_inheriting_a_torch_docstring_are_undocumented():
    torch = pytest.importorskip("torch")

    class Layer(torch.nn.Module):
        """A layer."""

        def forward(self, x):
            return x

    Layer.__module__ = "refimpl.fake"
    (problem,) = refimpl_api.member_problems("refimpl.fake.Layer", Layer)
    assert "has no docstring of its own" in problem and "Module.forward" in problem


def _build(src: Path, usage: dict, pages: dict[str, str]) -> tuple[str, Path]:
    from sphinx.testing.util import SphinxTestApp

    api = src / refimpl_api.USAGE
    api.parent.mkdir(parents=True)
    api.write_text(json.dumps(usage))
    (src / "conf.py").write_text(
        f"import sys\nsys.path[:0] = [{str(ROOT / 'book' / '_ext')!r}, {str(src)!r}]\n"
        "extensions = ['numpydoc', 'refimpl_api']\nroot_doc = 'index'\n"
        "html_theme_options = {'repository_url': 'https://example.org/repo', "
        "'repository_branch': 'dev'}\nnumpydoc_show_class_members = False\n")
    for name, text in pages.items():
        (src / f"{name}.rst").write_text(textwrap.dedent(text))
    warnings = io.StringIO()
    # SphinxTestApp undoes what the build registers in docutils, which a later Sphinx build
    # in this process (tests/test_book_extension.py) would otherwise warn about
    app = SphinxTestApp("html", srcdir=src, status=None, warning=warnings, freshenv=True)
    try:
        app.build()
    finally:
        app.cleanup()
    return warnings.getvalue(), Path(app.outdir)


def test_the_build_links_pages_and_entries_and_warns_on_undocumented(tmp_path):
    (tmp_path / "fakepkg.py").write_text(FAKE)
    usage = {"pages": {"chapter": ["fakepkg.documented"]},
             "taught": {"fakepkg.documented": ["chapter"]}, "home": {},
             "entries": {"fakepkg.documented": "function", "fakepkg.undocumented": "function"}}
    pages = {"index": ".. toctree::\n\n   chapter\n   api\n\nIndex\n=====\n",
             "chapter": "Chapter\n=======\n\nSome text.\n",
             "api": "API\n===\n\n.. autofunction:: fakepkg.documented\n"}
    try:
        warnings, out = _build(tmp_path, usage, pages)
    finally:
        sys.modules.pop("fakepkg", None)
    assert "fakepkg.undocumented has no docstring" in warnings
    chapter = (out / "chapter.html").read_text()
    assert refimpl_api.SECTION_TITLE in chapter and 'href="api.html#fakepkg.documented"' in chapter
    api = (out / "api.html").read_text()
    assert "In the book:" in api and 'href="chapter.html"' in api
    line = inspect.getsourcelines(
        importlib.import_module("refimpl.backend").default_device)  # the resolver on refimpl
    resolve = refimpl_api.make_linkcode_resolve(ROOT, "https://x.org/r", "main")
    url = resolve("py", {"module": "refimpl.backend", "fullname": "default_device"})
    assert url == (f"https://x.org/r/blob/main/refimpl/backend.py#L{line[1]}-"
                   f"L{line[1] + len(line[0]) - 1}")
    assert resolve("py", {"module": "numpy", "fullname": "linalg.svd"}) is None

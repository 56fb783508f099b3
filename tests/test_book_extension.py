"""book/_ext/refimpl_book.py: numbering per chapter, author-year labels, folded search.

A tiny Sphinx project with two chapters is built with the extension, and the HTML is read.
"""

import io
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book" / "_ext"))
refimpl_book = pytest.importorskip("refimpl_book", reason="the book extra (sphinx) is needed")

PAGE = """{title}
{bar}

.. math:: {tex}
   :label: eq-{name}

.. figure:: pic.png

   The caption of {name}.

{body}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from sphinx.application import Sphinx

    src = tmp_path_factory.mktemp("book")
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'book' / '_ext')!r})\n"
        "extensions = ['sphinxcontrib.bibtex', 'refimpl_book']\n"
        "numfig = True\nmath_numfig = True\nroot_doc = 'index'\n"
        "bibtex_bibfiles = ['refs.bib']\nbibtex_reference_style = 'author_year'\n"
        "bibtex_default_style = 'authoryear'\n")
    (src / "refs.bib").write_text(
        "@article{smith2020, author={Smith, Ann}, title={One}, journal={J}, year={2020}}\n"
        "@article{jones2021, author={Jones, Bo and Kim, Cy and Lee, Di}, title={Two},"
        " journal={J}, year={2021}}\n"
        "@article{golub1965, author={Businger, P. and Golub, Gene H.}, title={Three},"
        " journal={J}, year={1965}}\n")
    (src / "pic.png").write_bytes(
        bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                      "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44"
                      "ae426082"))
    pages = {"notebooks/09_lora/a": ("A", "x = 1", "Nyström :cite:p:`smith2020,jones2021`."),
             "notebooks/09_lora/b": ("B", "y = 2", "See :eq:`eq-a` :cite:p:`golub1965`."),
             "notebooks/11_attention/c": ("C", "z = 3", "Text."),
             "book/intro": ("Intro", "w = 4", "No chapter.")}
    for doc, (title, tex, body) in pages.items():
        path = src / f"{doc}.rst"
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "pic.png").write_bytes((src / "pic.png").read_bytes())
        path.write_text(PAGE.format(title=title, bar="=" * len(title), tex=tex,
                                    name=doc.rsplit("/", 1)[1], body=body))
    (src / "refs.rst").write_text("Refs\n====\n\n.. bibliography::\n")
    (src / "index.rst").write_text("Book\n====\n\n.. toctree::\n\n   book/intro\n"
                                   + "".join(f"   {d}\n" for d in list(pages)[:3])
                                   + "   refs\n")
    warnings = io.StringIO()
    out = src / "_build"
    Sphinx(str(src), str(src), str(out), str(out / ".doctrees"), "html", status=None,
           warning=warnings, freshenv=True).build()
    assert warnings.getvalue() == ""
    return out


def _html(out, doc):
    return (out / f"{doc}.html").read_text(encoding="utf-8")


def test_equations_and_figures_are_numbered_per_chapter(built):
    a, b = _html(built, "notebooks/09_lora/a"), _html(built, "notebooks/09_lora/b")
    c, intro = _html(built, "notebooks/11_attention/c"), _html(built, "book/intro")
    assert "(9.1)" in a and "Fig. 9.1" in a
    assert "(9.2)" in b and "Fig. 9.2" in b
    assert "(11.1)" in c and "Fig. 11.1" in c
    assert "(1)" in intro and "Fig. 1 " in intro  # a page outside a chapter counts its own
    assert re.search(r"\(9\.1\)</a>|>9\.1<", b)  # the reference to eq-a in B


def test_bibliography_labels_match_the_author_year_citations(built):
    refs = _html(built, "refs")
    labels = re.findall(r'<span class="label"><span class="fn-bracket">\[</span>(.*?)<span',
                        refs)
    assert labels == ["Businger and Golub, 1965", "Jones et al., 2021", "Smith, 2020"]
    assert "Smith, 2020" in _html(built, "notebooks/09_lora/a")


def test_search_folds_diacritics_in_the_index_and_the_query(built):
    index = (built / "searchindex.js").read_text(encoding="utf-8")
    assert '"nystrom"' in index and "nyström" not in index
    js = (built / "_static" / "language_data.js").read_text(encoding="utf-8")
    assert 'normalize("NFKD")' in js and "RefimplPorterStemmer" in js


def test_helpers():
    assert refimpl_book.fold("Nyström, Lebrón") == "Nystrom, Lebron"
    assert refimpl_book.chapter_of("notebooks/09_lora/x") == 9
    assert refimpl_book.chapter_of("book/intro") is None


def test_an_inline_script_registered_late_is_kept_once():
    js = pytest.importorskip("sphinx.builders.html._assets")._JavaScript
    # What Sphinx 7.4 hands the template for sphinx-thebe's inline script: once as None, once
    # as '' (see the module's docstring); a file and the same file loaded async stay apart.
    body = 'const THEBE_JS_URL = "x"'
    scripts = [js("_static/doctools.js", priority=200), js(None, body=body), js("", body=body),
               js("_static/a.js"), js("_static/a.js", **{"async": "async"})]
    context = {"script_files": scripts}
    refimpl_book.scripts_once(None, "page", "page.html", context, None)
    assert context["script_files"] == [scripts[0], scripts[1], scripts[3], scripts[4]]
    assert len(scripts) == 5  # the builder's own list is left alone
    empty = {}
    refimpl_book.scripts_once(None, "page", "page.html", empty, None)
    assert empty == {}

"""The offline-rendering check of the built book (tools/check_offline.py), on small sites."""

from __future__ import annotations

from pathlib import Path

from tools import check_offline

LOCAL = '<script defer src="_static/mathjax/tex-chtml.js"></script>'
MATH = '<span class="math notranslate nohighlight">\\(x\\)</span>'


def site(tmp_path: Path, page: str, *, mathjax: bool = True, css: str = "") -> Path:
    (tmp_path / "_static" / "mathjax").mkdir(parents=True)
    if mathjax:
        (tmp_path / "_static" / "mathjax" / "tex-chtml.js").write_text("// MathJax\n")
    (tmp_path / "_static" / "theme.css").write_text(css)
    (tmp_path / "index.html").write_text(page)
    return tmp_path


def test_a_self_contained_site_passes(tmp_path):
    page = f"<html><head>{LOCAL}<link rel='stylesheet' href='_static/theme.css'></head>" \
           f"<body>{MATH}<a href='https://example.org'>a link is not a fetch</a>" \
           "<script>const THEBE_JS_URL = 'https://unpkg.com/thebe@0.8.2/lib/index.js'</script>" \
           "</body></html>"
    assert check_offline.check(site(tmp_path, page)) == []


def test_a_cdn_mathjax_fails(tmp_path):
    page = ('<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>'
            + MATH)
    problems = check_offline.check(site(tmp_path, page))
    assert any("fetched from the network" in p for p in problems)
    assert any("does not load the book's own MathJax" in p for p in problems)


def test_remote_fonts_and_stylesheets_fail(tmp_path):
    page = f"{LOCAL}{MATH}<link rel='stylesheet' href='//fonts.example.org/a.css'>"
    problems = check_offline.check(site(tmp_path, page, css="@font-face{src:url(https://f.x/a.woff)}"))
    assert len(problems) == 2


def test_missing_mathjax_copy_and_empty_site_fail(tmp_path):
    assert check_offline.check(tmp_path) == [f"{tmp_path}: no HTML pages (build the book first)"]
    problems = check_offline.check(site(tmp_path / "s", LOCAL + MATH, mathjax=False))
    assert any("is missing" in p for p in problems)


def test_main_reports_and_fails(tmp_path, capsys):
    assert check_offline.main([str(site(tmp_path, "<p>no math at all</p>"))]) == 1
    assert "no page has math" in capsys.readouterr().out

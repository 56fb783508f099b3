"""The browser checker can fail: a small page with one of each defect is reported for each one,
and a clean page of the same shape is not reported at all.

The pages load the MathJax the book serves (the built book's ``_static/mathjax`` when $BOOK_HTML
is set, else the copy in the sphinx-mathjax-offline package, which the build copies), with the
configuration Sphinx writes into every page.
"""

from __future__ import annotations

import importlib.metadata
import os
import struct
import zlib
from pathlib import Path

import pytest

from . import checker

pytestmark = pytest.mark.browser

HEAD = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title>
<script>window.MathJax = {"options": {"processHtmlClass":
  "tex2jax_process|mathjax_process|math|output_area"}}</script>
<script defer="defer" src="../_static/mathjax/tex-chtml.js"></script>
<style>body { margin: 0; font: 16px sans-serif; }
  .sidebar { position: absolute; left: 0; top: 0; width: 250px; }
  main { margin-left: 250px; width: 650px; }
  pre { overflow: auto; } .wrap { overflow-x: auto; }</style></head><body>
<div class="sidebar"><button class="search-button__button">Search</button></div>
<main><article class="bd-article">"""
TAIL = "</article></main></body></html>"

FIGURE = ('<div class="cell_output"><figure><img src="../_images/plot.png" alt="A line plot">'
          '<figcaption><p><span class="caption-number">Fig. 1 </span>'
          '<span class="caption-text">A plot.</span></p></figcaption></figure></div>')

CLEAN = f"""{HEAD}
<section id="top"><h1>Clean</h1>
<p>Math <span class="math notranslate nohighlight">\\(\\frac{{1}}{{2}} x^2\\)</span> and a
<a href="#top">link</a> to <a href="defects.html#defects">another page</a>.</p>
<div class="math notranslate nohighlight">\\[ A = U \\Sigma V^\\top \\]</div>
<div class="cell_input"><div class="highlight"><pre>x = 1
print(x)</pre></div></div>
<div class="cell_output"><pre>1</pre></div>
<div class="wrap"><table><tr><td>a</td><td>b</td></tr></table></div>
{FIGURE}
</section>{TAIL}"""

LONG_SUM = " + ".join(f"x_{{{i}}}" for i in range(90))
DEFECTS = f"""{HEAD}
<section id="defects"><h1>Defects</h1>
<p>Undefined: <span class="math notranslate nohighlight">\\(\\undefinedmacro x\\)</span>.</p>
<p>Error: <span class="math notranslate nohighlight">\\(x^1^2\\)</span>.</p>
<p>A lone $$ E = mc^2 with no closing delimiter, and $\\alpha + 1$ in dollars.</p>
<div class="math notranslate nohighlight">\\[ {LONG_SUM} \\]</div>
<p><a href="#no-such-section">an anchor</a>, <a href="clean.html#nowhere">a far anchor</a>,
<a href="missing.html">a missing page</a>, <a href="clean.html#top">a good link</a>.</p>
<img src="../_images/missing.png" alt="gone">
<div class="cell_input"><div class="highlight"><pre>first_line = 1
second_line = "{'y' * 200}"</pre></div></div>
<div class="wrap"><table><tr><td><div style="width: 1000px">wide table cell</div></td></tr>
</table></div>
<img src="../_images/plot.png" alt="half" style="width: 100px">
<div class="cell_output"><img src="../_images/plot.png" alt="../_images/plot.png"></div>
<script>console.error("deliberate console error");</script>
<script>throw new Error("deliberate uncaught error");</script>
<script src="https://unpkg.com/remote-script@1/index.js"></script>
<div><button class="search-button__button">Search again</button></div>
</section>{TAIL}"""

NOFIG = f"""{HEAD}<section id="nofig"><h1>No figure</h1><p>Only text.</p></section>{TAIL}"""


def _png(width: int, height: int) -> bytes:
    """A grey PNG of the given size (no imaging library needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _mathjax() -> Path:
    built = os.environ.get("BOOK_HTML")
    if built and (Path(built) / "_static" / "mathjax" / "tex-chtml.js").is_file():
        return (Path(built) / "_static" / "mathjax").resolve()
    dist = importlib.metadata.distribution("sphinx-mathjax-offline")
    return Path(dist.locate_file("sphinx-mathjax-offline/static/mathjax")).resolve()


@pytest.fixture(scope="module")
def tiny_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    (root / "_static").mkdir()
    (root / "_static" / "mathjax").symlink_to(_mathjax(), target_is_directory=True)
    (root / "_images").mkdir()
    (root / "_images" / "plot.png").write_bytes(_png(200, 100))
    (root / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=notebooks/'
                                     'clean.html" />', encoding="utf-8")
    pages = root / "notebooks"
    pages.mkdir()
    for name, html in (("clean", CLEAN), ("defects", DEFECTS), ("nofig", NOFIG)):
        (pages / f"{name}.html").write_text(html, encoding="utf-8")
    with checker.serve(root) as base_url:
        yield checker.Site(root, base_url)


def _problems(browser, site, rel, **kw):
    page = checker.new_page(browser)
    try:
        return checker.page_problems(page, site.url(rel), site=site, **kw)
    finally:
        page.context.close()


def test_a_clean_page_has_no_problems(browser, tiny_site, tmp_path):
    shot = tmp_path / "clean.png"
    assert _problems(browser, tiny_site, "notebooks/clean.html", figureless={},
                     screenshot=shot) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_defect_is_reported(browser, tiny_site):
    problems = _problems(browser, tiny_site, "notebooks/defects.html", figureless={})
    text = "\n".join(problems)
    expected = {
        "undefined macro": r"undefined TeX macro \undefinedmacro in $\undefinedmacro x$",
        "MathJax error": "MathJax error \u201cDouble exponent",
        "unrendered $$": "TeX left unrendered (\u201c$$\u201d)",
        "unrendered $\\alpha$": "TeX left unrendered (\u201c$\\alpha + 1$\u201d)",
        "wide equation": "display equation wider than its column",
        "broken anchor": "no id \u201cno-such-section\u201d on notebooks/defects.html",
        "broken far anchor": "no id \u201cnowhere\u201d on notebooks/clean.html",
        "broken link": "broken link \u201ca missing page\u201d \u2192 missing.html",
        "missing image": "image did not load: ../_images/missing.png",
        "console.error": "console error: deliberate console error",
        "uncaught error": "JavaScript error: deliberate uncaught error",
        "remote request": "requested from another host at page load (script): https://unpkg.com",
        "overlong pre": "code cell wider than its column",
        "code's first line": "\u201cfirst_line = 1\u201d",
        "wide table": "table wider than its column",
        "figure at 50%": "figure shown at 50% of its width (100 of 200 px)",
        "no caption": "output image without caption (not in a captioned figure)",
        "alt is a path": "output image without alt text (alt is only its file name)",
        "two search boxes": "2 search entry points visible, expected 1",
    }
    missing = [name for name, needle in expected.items() if needle not in text]
    assert not missing, f"not reported: {missing}\nreported:\n" + text
    assert "a good link" not in text


def test_a_figureless_notebook_page_needs_a_reason(browser, tiny_site):
    problems = _problems(browser, tiny_site, "notebooks/nofig.html", figureless={})
    assert problems == ["notebook page without a figure: add one, or record the reason in "
                        "book/data/figureless.yaml under 'notebooks/nofig'"]
    reason = {"notebooks/nofig": "The page is only text."}
    assert _problems(browser, tiny_site, "notebooks/nofig.html", figureless=reason) == []
    listed = {"notebooks/clean": "A stale reason."}
    assert any("listed in book/data/figureless.yaml" in p
               for p in _problems(browser, tiny_site, "notebooks/clean.html", figureless=listed))


def test_a_redirect_stub_is_checked_for_its_target(tiny_site):
    assert tiny_site.redirect_target("index.html") == "notebooks/clean.html"
    assert checker.redirect_problems(tiny_site, "index.html") == []
    (tiny_site.root / "stale.html").write_text('<meta http-equiv="Refresh" '
                                               'content="0; url=gone.html" />')
    assert checker.redirect_problems(tiny_site, "stale.html") == [
        "redirect to 'gone.html': no such page"]

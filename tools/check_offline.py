"""Check that the built book renders without a network: no page loads a script, stylesheet,
font or image from another host, and MathJax comes from the book's own ``_static``.

    python tools/check_offline.py _build/html      # exit 1 and a list of problems if not

The one remote address allowed is thebe's loader, which the pages fetch only when a reader
clicks "live code" (it needs a kernel on the network anyway).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# Attributes through which a page makes the browser fetch something as it loads.
_FETCH = re.compile(
    r"""<(script|link|img|source|iframe)\b[^>]*?\b(src|href)\s*=\s*["']([^"']+)["']""",
    re.IGNORECASE)
_CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)""", re.IGNORECASE)
_REMOTE = re.compile(r"^(https?:)?//", re.IGNORECASE)
# Loaded on demand only, by the "live code" button.
ALLOWED = ("https://unpkg.com/thebe@",)
MATHJAX = "_static/mathjax/tex-chtml.js"
# Sphinx marks every formula with this class (inline and display).
_MATH = re.compile(r"""class=["']math\b""")


def _is_fetch(tag: str, html_tag: str) -> bool:
    """Whether the tag makes the browser load its URL (a ``<link>`` only for these rels)."""
    if tag.lower() != "link":
        return True
    rel = re.search(r"""\brel\s*=\s*["']([^"']+)""", html_tag, re.IGNORECASE)
    return bool(rel) and any(r in rel.group(1).lower()
                             for r in ("stylesheet", "preload", "icon", "modulepreload"))


def page_problems(html: str, where: str) -> list[str]:
    """The remote fetches of one page (a list of messages, empty when there are none)."""
    problems = []
    for m in _FETCH.finditer(html):
        tag, attr, url = m.groups()
        if _REMOTE.match(url) and not url.startswith(ALLOWED) and _is_fetch(tag, m.group(0)):
            problems.append(f"{where}: <{tag} {attr}={url}> is fetched from the network")
    for style in re.findall(r"<style\b[^>]*>(.*?)</style>", html, re.IGNORECASE | re.DOTALL):
        problems += [f"{where}: CSS url({u}) is fetched from the network"
                     for u in _CSS_URL.findall(style) if _REMOTE.match(u)]
    return problems


def check(site: Path) -> list[str]:
    """Every problem in the built site ``site`` (the folder holding ``index.html``)."""
    site = Path(site)
    pages = sorted(site.rglob("*.html"))
    if not pages:
        return [f"{site}: no HTML pages (build the book first)"]
    problems = []
    if not (site / MATHJAX).is_file():
        problems.append(f"{site / MATHJAX} is missing: MathJax is not served by the book")
    for css in sorted((site / "_static").rglob("*.css")):
        text = css.read_text(encoding="utf-8", errors="replace")
        problems += [f"{css.relative_to(site)}: url({u}) is fetched from the network"
                     for u in _CSS_URL.findall(text) if _REMOTE.match(u)]
    math_pages = 0
    for page in pages:
        html = page.read_text(encoding="utf-8", errors="replace")
        rel = page.relative_to(site)
        problems += page_problems(html, str(rel))
        if _MATH.search(html):
            math_pages += 1
            if not re.search(r"<script[^>]*src=[\"'][^\"']*_static/mathjax/tex-chtml\.js", html):
                problems.append(f"{rel}: has math but does not load the book's own MathJax")
    if math_pages == 0:
        problems.append(f"{site}: no page has math (was the math extension dropped?)")
    return problems


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    site = Path(args[0] if args else "_build/html")
    problems = check(site)
    if problems:
        print(f"check_offline: {len(problems)} problem(s) in {site}:", *problems, sep="\n  ")
        return 1
    print(f"check_offline: {site} renders without a network (MathJax from {MATHJAX})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

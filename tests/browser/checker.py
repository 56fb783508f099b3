"""Reading defects of a built HTML book page, as a headless Chromium shows it.

``page_problems(page, url, site=...)`` loads one page in a fresh Playwright page and returns a
list of messages (empty when the page reads well). The book's tests (``test_book_pages.py``) run
it over every page of the build; ``test_checker.py`` runs it over a small page with one of each
defect, so that every check is seen to fail.

What a page must satisfy: MathJax finishes without error nodes or undefined macros; no TeX is left
as text; internal links and their ``#anchors`` resolve; every image loads; no JavaScript error
and no request to another host; display equations, tables and code fit their column; figures
are shown at 80% of their width or more; a notebook output's image sits in a captioned figure and
has alt text; a notebook page shows a figure (or says why not in ``book/data/figureless.yaml``);
and the page chrome offers exactly one search entry point.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import posixpath
import re
import shutil
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

CHROMIUM_DEFAULT = "/usr/bin/chromium"
# The machine's network is closed: no QUIC, no background fetches, and every host name other
# than the local server's fails at once instead of waiting for a time-out.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]
VIEWPORT = {"width": 1280, "height": 1000}  # the desktop layout (both sidebars shown)
TOLERANCE_PX = 2
MIN_FIGURE_SCALE = 0.8
MATHJAX_TIMEOUT_S = 30.0
# Not pages of the book: the index and search pages Sphinx generates, and its asset folders.
NOT_PAGES = {"genindex.html", "search.html"}
NOT_PAGE_DIRS = {"_static", "_sources", "_images"}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


# ----------------------------------------------------------------------------- the browser


def chromium_path() -> str:
    """The Chromium to drive: $CHROMIUM, else ``chromium`` on PATH, else Debian's path."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or CHROMIUM_DEFAULT


def launch_browser(playwright):
    """Debian's Chromium, headless, with a fresh profile (nothing is downloaded)."""
    path = chromium_path()
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"Chromium not found at {path}: install it (Debian: apt-get install chromium; "
            "`make test` does this) or set CHROMIUM=/path/to/chromium")
    return playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_FLAGS)


def new_page(browser):
    """A page in a context of its own (no state carried over from the previous page)."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    return context.new_page()


# ----------------------------------------------------------------------------- the server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # the signature of the base class
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port, in a thread); yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ----------------------------------------------------------------------------- the site


def book_pages(root: Path) -> list[str]:
    """Every page of the built book, as paths relative to ``root`` (``notebooks/x/y.html``)."""
    pages = []
    for path in sorted(Path(root).rglob("*.html")):
        rel = path.relative_to(root)
        if rel.parts[0] in NOT_PAGE_DIRS or rel.as_posix() in NOT_PAGES:
            continue
        pages.append(rel.as_posix())
    return pages


def page_id(rel: str) -> str:
    """A page's name in test ids and in figureless.yaml: its path without ``.html``."""
    return rel[: -len(".html")] if rel.endswith(".html") else rel


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and (name == "id" or (name == "name" and tag == "a")):
                self.ids.add(value)


_REFRESH = re.compile(
    r"""<meta\s+http-equiv=["']refresh["']\s+content=["']\d+;\s*url=([^"']+)["']""", re.I)


class Site:
    """A built site served at ``base_url``: where its files are and which ids they hold."""

    def __init__(self, root: Path, base_url: str):
        self.root = Path(root).resolve()
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._base = urlsplit(self.base_url)
        self._ids: dict[Path, set[str]] = {}

    def url(self, rel: str) -> str:
        return self.base_url + rel

    def is_local(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and parts.netloc == self._base.netloc

    def rel(self, url: str) -> str:
        """The path of a local URL relative to the site root (no query, no fragment)."""
        path = unquote(urlsplit(url).path)
        base = self._base.path
        return path[len(base):] if path.startswith(base) else path.lstrip("/")

    def file(self, url: str) -> Path:
        path = self.root / self.rel(url)
        return path / "index.html" if path.is_dir() else path

    def ids(self, path: Path) -> set[str]:
        """The ids (and ``<a name>``s) of a built file, parsed once."""
        if path not in self._ids:
            parser = _Anchors()
            parser.feed(path.read_text(encoding="utf-8", errors="replace"))
            self._ids[path] = parser.ids
        return self._ids[path]

    def redirect_target(self, rel: str) -> str | None:
        """Where a redirect stub (a page that is only a meta refresh) sends the reader."""
        html = (self.root / rel).read_text(encoding="utf-8", errors="replace")
        m = _REFRESH.search(html)
        if m and "<body" not in html.lower():
            return m.group(1)
        return None


def redirect_problems(site: Site, rel: str) -> list[str]:
    """A redirect stub is not rendered: its target must exist."""
    target = site.redirect_target(rel) or ""
    dest = posixpath.normpath(posixpath.join(posixpath.dirname(rel), urlsplit(target).path))
    if not target or not site.file(site.url(dest)).is_file():
        return [f"redirect to {target!r}: no such page"]
    return []


# ----------------------------------------------------------------------------- in the page

_WAIT_MATHJAX = """
async (timeoutMs) => {
  if (!document.querySelector('script[src*="mathjax" i]')) return 'absent';
  const t0 = performance.now();
  const left = () => Math.max(0, timeoutMs - (performance.now() - t0));
  while (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) {
    if (left() === 0) return 'MathJax did not start';
    await new Promise(r => setTimeout(r, 25));
  }
  const timeout = new Promise(r => setTimeout(() => r('timeout'), left()));
  // Typesetting chains onto startup.promise: wait until it no longer changes.
  for (;;) {
    const p = MathJax.startup.promise;
    const r = await Promise.race([p.then(() => 'done', e => 'MathJax failed: ' + e), timeout]);
    if (r !== 'done') return r === 'timeout' ? 'MathJax did not finish typesetting' : r;
    if (p === MathJax.startup.promise) return 'done';
  }
}
"""

_LOAD_IMAGES = """
async (timeoutMs) => {
  const imgs = [...document.images];
  for (const img of imgs) img.loading = 'eager';
  const settle = imgs.map(img => img.complete ? null : new Promise(r => {
    img.addEventListener('load', r, {once: true});
    img.addEventListener('error', r, {once: true});
  }));
  await Promise.race([Promise.all(settle), new Promise(r => setTimeout(r, timeoutMs))]);
}
"""

_COLLECT = r"""
(opts) => {
  const short = (s, n = 100) => {
    s = (s || '').replace(/\s+/g, ' ').trim();
    return s.length > n ? s.slice(0, n - 1) + '\u2026' : s;
  };
  const firstLine = (s) => short((s || '').split('\n').find(l => l.trim()) || '', 90);
  const visible = (el) => el.getClientRects().length > 0 &&
    getComputedStyle(el).visibility !== 'hidden';
  const root = document.querySelector('article.bd-article') || document.querySelector('main')
    || document.body;
  const out = {mathErrors: [], undefinedMacros: [], rawTex: [], overflow: [], smallFigures: [],
               captions: [], brokenImages: [], links: [], ids: [], search: [], figures: 0};

  // TeX source of every typeset formula, by its container.
  const texOf = new Map();
  try {
    for (const item of MathJax.startup.document.math) texOf.set(item.typesetRoot, item.math);
  } catch (e) { /* no MathJax on this page */ }
  const tex = (el) => {
    const c = el.closest('mjx-container') || el;
    return short(texOf.get(c) ?? c.querySelector('mjx-assistive-mml')?.textContent ?? '', 120);
  };

  // MathJax error nodes (once per formula; the assistive MathML repeats them).
  const errorSeen = new Set();
  for (const el of document.querySelectorAll('mjx-merror, [data-mjx-error]')) {
    const c = el.closest('mjx-container');
    if (!c || errorSeen.has(c)) continue;
    errorSeen.add(c);
    out.mathErrors.push({tex: tex(c), error: el.getAttribute('data-mjx-error')
                         || short(el.textContent, 80)});
  }
  // Undefined macros: MathJax 3 (noundefined) shows \name as red text, <mtext mathcolor="red">.
  for (const c of document.querySelectorAll('mjx-container')) {
    if (errorSeen.has(c)) continue;
    const names = [...c.querySelectorAll('mtext[mathcolor="red"]')]
      .map(t => t.textContent.trim()).filter(t => t.startsWith('\\'));
    const red = c.querySelector('mjx-mtext[style*="color: red"], mjx-mtext[style*="color:red"]');
    if (names.length || (red && !c.querySelector('mjx-assistive-mml'))) {
      out.undefinedMacros.push({tex: tex(c), names: names.length ? names : ['?']});
    }
  }

  // TeX left as text in the article (outside code and typeset math).
  const SKIP = 'pre, code, kbd, samp, script, style, textarea, mjx-container, .MathJax';
  const BLOCK = 'p, li, td, th, dt, dd, h1, h2, h3, h4, h5, h6, figcaption, caption, ' +
                'blockquote, div, section, article';
  const blocks = new Map();
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, parent = node.parentElement;
    if (!parent || parent.closest(SKIP)) continue;
    const block = parent.closest(BLOCK) || root;
    blocks.set(block, (blocks.get(block) || '') + node.data);
  }
  const RAW = /\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{|\\end\{|\$[^$\n]*\\[A-Za-z]+[^$\n]*\$/g;
  for (const [block, text] of blocks) {
    let shown = 0;
    for (const m of text.matchAll(RAW)) {
      if (++shown > 5) break;  // enough to find the block
      const at = Math.max(0, m.index - 40);
      out.rawTex.push({found: m[0].length > 40 ? m[0].slice(0, 40) + '\u2026' : m[0],
                       context: short(text.slice(at, m.index + m[0].length + 40), 140),
                       tag: block.tagName.toLowerCase()});
    }
  }

  // Display equations, tables and code wider than their column.
  const scroller = (el) => {
    for (let a = el.parentElement; a && a !== document.documentElement; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== 'visible') return a;
      if (a === root) return a;
    }
    return root;
  };
  const WIDE = 'mjx-container[display="true"], table, div.cell_input pre, ' +
               'div.highlight pre, div.cell_output pre';
  const wideSeen = new Set();
  for (const el of root.querySelectorAll(WIDE)) {
    if (wideSeen.has(el) || !visible(el) || el.closest('mjx-assistive-mml')) continue;
    wideSeen.add(el);
    const own = el.scrollWidth - el.clientWidth;
    const box = scroller(el);
    const outer = el.getBoundingClientRect().width - box.clientWidth;
    const excess = Math.max(own, outer);
    if (excess <= opts.tolerance) continue;
    let what;
    if (el.matches('mjx-container')) what = {kind: 'display equation', text: tex(el)};
    else if (el.matches('table')) what = {kind: 'table', text: short(
      (el.querySelector('caption') || el.querySelector('tr') || el).textContent, 90)};
    else what = {kind: el.closest('div.cell_output') ? 'cell output'
                 : el.closest('div.cell_input') ? 'code cell' : 'code block',
                 text: firstLine(el.textContent),
                 longest: short(el.textContent.split('\n')
                   .reduce((a, b) => b.length > a.length ? b : a, ''), 90)};
    const needed = own >= outer ? el.scrollWidth : Math.round(el.getBoundingClientRect().width);
    const column = own >= outer ? el.clientWidth : box.clientWidth;
    out.overflow.push({...what, needed: Math.round(needed), column: Math.round(column),
                       excess: Math.round(excess)});
  }

  // Images: broken (anywhere on the page); figures of the article scaled down or uncaptioned.
  for (const img of document.images) {
    if (img.complete && img.naturalWidth === 0) {
      out.brokenImages.push({src: img.getAttribute('src') || '', url: img.currentSrc || img.src});
    }
  }
  for (const img of root.querySelectorAll('img')) {
    out.figures += 1;
    if (img.naturalWidth > 0 && visible(img) &&
        img.clientWidth / img.naturalWidth < opts.minScale) {
      out.smallFigures.push({src: img.getAttribute('src') || '', natural: img.naturalWidth,
                             shown: img.clientWidth});
    }
  }
  for (const img of root.querySelectorAll('div.cell_output img')) {
    const src = img.getAttribute('src') || '';
    const fig = img.closest('figure');
    const cap = fig && fig.querySelector('figcaption');
    const capText = cap ? (cap.querySelector('.caption-text') || cap).textContent.trim() : '';
    const alt = (img.getAttribute('alt') || '').trim();
    const base = src.split('/').pop();
    out.captions.push({src, caption: capText.length > 0, inFigure: !!fig,
                       alt: alt.length > 0 && alt !== src && alt !== base, altText: short(alt)});
  }

  // Links and the ids this page holds.
  for (const a of document.querySelectorAll('a[href]')) {
    out.links.push({href: a.getAttribute('href'), url: a.href, text: short(a.textContent, 60)});
  }
  for (const el of document.querySelectorAll('[id]')) out.ids.push(el.id);
  for (const el of document.querySelectorAll('a[name]')) out.ids.push(el.getAttribute('name'));

  // Search entry points a reader sees (fields, buttons, forms), outside the search dialog.
  const SEARCH = '.search-button__button, .search-button-field, form.bd-search, ' +
                 'input[type="search"], [role="search"]';
  const points = [...document.querySelectorAll(SEARCH)]
    .filter(el => visible(el) && !el.closest('dialog'));
  for (const el of points) {
    if (points.some(o => o !== el && o.contains(el))) continue;  // a field inside its form
    const r = el.getBoundingClientRect();
    out.search.push({where: short(el.parentElement?.className || el.tagName, 60),
                     x: Math.round(r.x), y: Math.round(r.y)});
  }
  return out;
}
"""


class _Log:
    """What the browser reports while the page loads: errors and requests."""

    def __init__(self, site: Site):
        self.site = site
        self.console: list[tuple[str, str]] = []   # (text, url of the source)
        self.page_errors: list[str] = []
        self.bad_responses: list[tuple[int, str, str]] = []   # (status, url, resource type)
        self.remote: list[tuple[str, str]] = []               # (url, resource type)

    def attach(self, page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("request", self._on_request)
        page.on("response", self._on_response)

    def _on_console(self, msg) -> None:
        if msg.type == "error":
            location = msg.location or {}
            self.console.append((msg.text, location.get("url", "")))

    def _on_request(self, request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in LOCAL_HOSTS:
            self.remote.append((request.url, request.resource_type))

    def _on_response(self, response) -> None:
        if response.status >= 400 and self.site.is_local(response.url):
            self.bad_responses.append(
                (response.status, response.url, response.request.resource_type))


def _ignored_console(text: str, url: str) -> bool:
    # The browser asks for /favicon.ico by itself when a page declares no icon: not the page's
    # doing, and not a reading defect.
    return text.startswith("Failed to load resource") and urlsplit(url).path == "/favicon.ico"


def page_problems(page, url: str, *, site: Site, figureless: dict[str, str] | None = None,
                  screenshot: Path | None = None,
                  mathjax_timeout_s: float = MATHJAX_TIMEOUT_S) -> list[str]:
    """Load ``url`` in ``page`` (a fresh Playwright page) and list its reading defects.

    ``site`` resolves internal links; ``figureless`` maps a notebook page's id
    (``notebooks/11_attention/matryoshka_kv``) to the reason it has no figure; ``screenshot``,
    when given, is where the first screen (the viewport) is saved as PNG.
    """
    log = _Log(site)
    log.attach(page)
    rel = site.rel(url)
    here = site.file(url)
    problems: list[str] = []

    page.goto(url, wait_until="load", timeout=60_000)
    state = page.evaluate(_WAIT_MATHJAX, mathjax_timeout_s * 1000)
    if state not in ("done", "absent"):
        problems.append(f"MathJax: {state} within {mathjax_timeout_s:.0f} s")
    page.evaluate(_LOAD_IMAGES, 10_000)
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=False)
    # Collapsed cells ("Show code cell source") are measured as a reader who opens them sees them.
    page.evaluate("() => { for (const d of document.querySelectorAll('article details')) "
                  "d.open = true; }")
    data = page.evaluate(_COLLECT, {"tolerance": TOLERANCE_PX, "minScale": MIN_FIGURE_SCALE})

    for e in data["mathErrors"]:
        problems.append(f"MathJax error \u201c{e['error']}\u201d in ${e['tex']}$")
    for e in data["undefinedMacros"]:
        problems.append(f"undefined TeX macro {', '.join(e['names'])} in ${e['tex']}$")
    for e in data["rawTex"]:
        problems.append(f"TeX left unrendered (\u201c{e['found']}\u201d) in <{e['tag']}>: "
                        f"\u201c{e['context']}\u201d")

    # Internal links and anchors.
    page_ids = set(data["ids"])
    seen: set[str] = set()
    for link in data["links"]:
        target = link["url"]
        if target in seen or not site.is_local(target):
            continue
        seen.add(target)
        path = site.file(target)
        fragment = unquote(urlsplit(target).fragment)
        label = f"link \u201c{link['text']}\u201d \u2192 {link['href']}"
        if not path.is_file():
            problems.append(f"broken {label}: no file {site.rel(target) or '/'}")
        elif fragment:
            ids = page_ids if path == here else site.ids(path)
            if fragment not in ids:
                problems.append(f"broken anchor in {label}: no id \u201c{fragment}\u201d on "
                                f"{path.relative_to(site.root).as_posix()}")

    # Images and other resources that did not load.
    broken = set()
    for img in data["brokenImages"]:
        broken.add(img["url"])
        problems.append(f"image did not load: {img['src']}")
    failed = set()
    for status, res_url, kind in log.bad_responses:
        failed.add(res_url)
        if res_url in broken or urlsplit(res_url).path == "/favicon.ico":
            continue
        problems.append(f"{kind} not found ({status}): {site.rel(res_url)}")
    for res_url, kind in log.remote:
        problems.append(f"requested from another host at page load ({kind}): {res_url}")
    remote = {u for u, _ in log.remote}

    # JavaScript errors.
    for error in log.page_errors:
        problems.append(f"JavaScript error: {error}")
    for text, src in log.console:
        if _ignored_console(text, src):
            continue
        if text.startswith("Failed to load resource") and (src in failed or src in broken
                                                           or src in remote):
            continue  # reported above, with its URL
        where = f" ({site.rel(src) if site.is_local(src) else src})" if src else ""
        problems.append(f"console error: {text}{where}")

    # Layout.
    for e in data["overflow"]:
        longest = e.get("longest")
        longest = (f" (longest line: \u201c{longest}\u201d)"
                   if longest and longest != e["text"] else "")
        problems.append(f"{e['kind']} wider than its column by {e['excess']} px "
                        f"({e['needed']} px in {e['column']} px): \u201c{e['text']}\u201d"
                        + longest)
    for e in data["smallFigures"]:
        problems.append(f"figure shown at {e['shown'] / e['natural']:.0%} of its width "
                        f"({e['shown']} of {e['natural']} px): {e['src']}")
    for e in data["captions"]:
        if not e["caption"]:
            where = "its figure has no caption" if e["inFigure"] else "not in a captioned figure"
            problems.append(f"output image without caption ({where}): {e['src']}")
        if not e["alt"]:
            what = "alt is only its file name" if e["altText"] else "no alt text"
            problems.append(f"output image without alt text ({what}): {e['src']}")

    # A notebook page shows a figure, or figureless.yaml says why not.
    if rel.startswith("notebooks/") and figureless is not None:
        name = page_id(rel)
        if data["figures"] == 0 and name not in figureless:
            problems.append("notebook page without a figure: add one, or record the reason "
                            f"in book/data/figureless.yaml under {name!r}")
        elif data["figures"] and name in figureless:
            problems.append(f"listed in book/data/figureless.yaml but shows {data['figures']} "
                            "figure(s): remove the entry")

    # One search entry point.
    if len(data["search"]) != 1:
        where = "; ".join(f"{s['where']} at ({s['x']}, {s['y']})" for s in data["search"])
        problems.append(f"{len(data['search'])} search entry points visible, expected 1"
                        + (f": {where}" if where else ""))
    return problems

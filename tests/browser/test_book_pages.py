"""Every page of the built book, opened in headless Chromium: no reading defects.

The checks are ``checker.page_problems``; each page's first screen is saved under
``_build/screenshots/``. Run after a build, e.g. ``make test`` or

    BOOK_HTML=_build/check/_build/html .venv/bin/python -m pytest tests/browser -m browser
"""

from __future__ import annotations

import pytest

from . import checker
from .conftest import SCREENSHOTS, book_html, require_book_html

pytestmark = pytest.mark.browser

_ROOT = book_html()
# Without a book the one test below fails and says why (the page list cannot be known).
PAGES = checker.book_pages(_ROOT) if _ROOT is not None else ["<no built book in BOOK_HTML>"]


@pytest.mark.parametrize("rel", PAGES, ids=[checker.page_id(p) for p in PAGES])
def test_page_reads_well(rel, request):
    require_book_html()
    site = request.getfixturevalue("book_site")
    if site.redirect_target(rel) is not None:
        problems = checker.redirect_problems(site, rel)
    else:
        browser = request.getfixturevalue("browser")
        figureless = request.getfixturevalue("figureless")
        page = checker.new_page(browser)
        try:
            shot = SCREENSHOTS / (checker.page_id(rel).replace("/", "__") + ".png")
            problems = checker.page_problems(page, site.url(rel), site=site,
                                             figureless=figureless, screenshot=shot)
        finally:
            page.context.close()
    if problems:
        pytest.fail(f"{rel}: {len(problems)} problem(s)\n  - " + "\n  - ".join(problems),
                    pytrace=False)


def test_figureless_entries_are_notebook_pages(figureless):
    """Every page named in book/data/figureless.yaml exists and has a reason."""
    root = require_book_html()
    pages = {checker.page_id(p) for p in checker.book_pages(root)}
    bad = [f"{name}: no such page" for name in figureless if name not in pages]
    bad += [f"{name}: give a one-sentence reason" for name, why in figureless.items()
            if not isinstance(why, str) or not why.strip()]
    assert not bad, "book/data/figureless.yaml:\n  - " + "\n  - ".join(bad)

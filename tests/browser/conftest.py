"""Fixtures of the browser tests: the built book ($BOOK_HTML), its local server and Chromium.

    BOOK_HTML=_build/check/_build/html .venv/bin/python -m pytest tests/browser -m browser

`make test` runs them after its strict build. Without a built book they fail (never skip).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from . import checker

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "_build" / "screenshots"
FIGURELESS = ROOT / "book" / "data" / "figureless.yaml"


def book_html() -> Path | None:
    """The built book named by $BOOK_HTML, when it holds an index.html."""
    value = os.environ.get("BOOK_HTML")
    if value and (Path(value) / "index.html").is_file():
        return Path(value).resolve()
    return None


def require_book_html() -> Path:
    root = book_html()
    if root is None:
        value = os.environ.get("BOOK_HTML")
        why = ("BOOK_HTML is not set" if not value
               else f"BOOK_HTML={value} holds no index.html")
        pytest.fail(f"{why}: build the book (`jupyter-book build . --path-output _build/check`) "
                    "and run with BOOK_HTML=_build/check/_build/html, or deselect these tests "
                    "with -m 'not browser'", pytrace=False)
    return root


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = checker.launch_browser(playwright)
    except FileNotFoundError as error:
        playwright.stop()
        pytest.fail(str(error), pytrace=False)
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture(scope="session")
def book_site():
    root = require_book_html()
    with checker.serve(root) as base_url:
        yield checker.Site(root, base_url)


@pytest.fixture(scope="session")
def figureless() -> dict[str, str]:
    data = yaml.safe_load(FIGURELESS.read_text(encoding="utf-8")) or {}
    assert isinstance(data, dict), f"{FIGURELESS} must be a mapping of page -> reason"
    return data

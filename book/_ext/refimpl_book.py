"""Sphinx extension of the book (loaded through ``_config.yml``'s ``local_extensions``).

- **Numbering per chapter.** Figures, tables and display equations are numbered within their
  chapter, with the chapter's own number (Fig. 9.3, equation (11.4)): a page
  ``notebooks/09_lora/...`` belongs to chapter 9. Sphinx alone numbers them across the whole
  book when the table of contents is not numbered, and a numbered one would renumber the
  chapters 1, 2, 3, ... in reading order, which is not the book's plan. Pages outside a chapter
  number their own objects from 1.
- **One citation style.** The text cites author–year (``bibtex_reference_style: author_year``);
  the bibliography style ``authoryear`` labels its entries the same way ("Karpowicz, 2021")
  instead of with numbers.
- **Search that folds diacritics.** "nystrom" finds Nyström: the index stores words with their
  accents removed, and the search page removes them from the query the same way.
- **Each script once.** Sphinx 7.4 (the newest Jupyter Book 1.x accepts, ``sphinx~=7.0``)
  writes an inline script twice when an extension registers it after the HTML builder is set
  up: ``app.add_js_file(None, body=...)`` reaches the builder as ``filename=None`` and again,
  from the registry in ``prepare_writing``, as ``filename=''``, and its duplicate test tells the
  two apart. sphinx-thebe's ``const THEBE_JS_URL = ...`` then ran twice and every page failed
  with "Identifier 'THEBE_JS_URL' has already been declared". Each page's list of scripts keeps
  the first of every (file, priority, attributes) triple, an empty name counting as no name.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle
from sphinx.search.en import SearchEnglish

_CHAPTER = re.compile(r"^notebooks/(\d\d)_[^/]+/")


def chapter_of(docname: str) -> int | None:
    """The chapter a page belongs to (``notebooks/09_lora/x`` -> 9), or None."""
    m = _CHAPTER.match(docname)
    return int(m.group(1)) if m else None


def toc_order(env) -> list[str]:
    """Every page reachable from the root document, in reading order."""
    seen: list[str] = []

    def walk(doc: str) -> None:
        if doc in seen:
            return
        seen.append(doc)
        for child in env.toctree_includes.get(doc, []):
            walk(child)

    walk(env.config.root_doc)
    return seen + sorted(set(env.toc_fignumbers) - set(seen))


def renumber(env) -> list[str]:
    """Rewrite ``env.toc_fignumbers`` so that numbers run per chapter; return the pages."""
    counters: dict[tuple, int] = {}
    pages = []
    for doc in toc_order(env):
        numbers = env.toc_fignumbers.get(doc)
        if not numbers:
            continue
        pages.append(doc)
        chapter = chapter_of(doc)
        for figtype, ids in numbers.items():
            key = (chapter if chapter is not None else doc, figtype)
            for node_id in sorted(ids, key=ids.get):  # the order Sphinx found them in
                counters[key] = counters.get(key, 0) + 1
                ids[node_id] = ((chapter, counters[key]) if chapter is not None
                                else (counters[key],))
    return pages


def _renumber_after_sphinx(app, env):
    return renumber(env) if app.config.numfig else []


# --- citations ----------------------------------------------------------------------------

def _last_names(person) -> str:
    return " ".join(str(n) for n in person.rich_prelast_names + person.rich_last_names)


class AuthorYearLabels(BaseLabelStyle):
    """Labels such as "Karpowicz, 2021", "Businger and Golub, 1965", "Ainslie et al., 2023".

    Two entries that would share a label get "2023a", "2023b".
    """

    def format_labels(self, sorted_entries):
        labels = [self._label(e) for e in sorted_entries]
        counts: dict[str, int] = {}
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
        seen: dict[str, int] = {}
        for label in labels:
            if counts[label] == 1:
                yield label
            else:
                seen[label] = seen.get(label, 0) + 1
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]

    @staticmethod
    def _label(entry) -> str:
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        year = entry.fields.get("year", "n.d.")
        if not people:
            key = entry.fields.get("key") or entry.fields.get("title", "Anon.")
            return f"{str(key).split()[0]}, {year}"
        names = [_last_names(p) for p in people]
        if len(names) == 1:
            who = names[0]
        elif len(names) == 2:
            who = f"{names[0]} and {names[1]}"
        else:
            who = f"{names[0]} et al."
        return f"{who}, {year}"


class AuthorYearStyle(PlainStyle):
    """pybtex's plain style (sorted by author, year, title) with author–year labels."""

    default_label_style = "authoryear"


register_plugin("pybtex.style.labels", "authoryear", AuthorYearLabels)
register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle)


# --- search -------------------------------------------------------------------------------

def fold(word: str) -> str:
    """``word`` without diacritics ("Nyström" -> "Nystrom", "Lebrón" -> "Lebron")."""
    return "".join(c for c in unicodedata.normalize("NFKD", word)
                   if not unicodedata.combining(c))


_FOLD_JS = """
/* refimpl_book: fold diacritics before stemming, as the index does ("nystrom" finds Nyström). */
var RefimplPorterStemmer = Stemmer;
Stemmer = function() {
  var porter = new RefimplPorterStemmer();
  this.stemWord = function(w) {
    return porter.stemWord(w.normalize("NFKD").replace(/[\\u0300-\\u036f]/g, ""));
  };
};
"""


class SearchEnglishFolded(SearchEnglish):
    """English search whose index and queries have their diacritics removed."""

    js_stemmer_code = SearchEnglish.js_stemmer_code + _FOLD_JS

    def stem(self, word: str) -> str:
        return super().stem(fold(word).lower())


# --- scripts ------------------------------------------------------------------------------

def _script_key(script: Any) -> tuple:
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {}) or {}
    return (str(filename), getattr(script, "priority", 500),
            tuple(sorted((k, str(v)) for k, v in attributes.items())))


def scripts_once(app, pagename, templatename, context, doctree) -> None:
    """Keep the first of each script in the page's ``script_files`` (a new list)."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique  # the builder restores its own list after every page


def setup(app):
    app.connect("env-get-updated", _renumber_after_sphinx, priority=900)
    app.add_search_language(SearchEnglishFolded)
    # After the other extensions' html-page-context handlers, which may add page scripts.
    app.connect("html-page-context", scripts_once, priority=900)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

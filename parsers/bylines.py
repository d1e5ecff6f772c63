"""An article page's byline: trafilatura's author search, in one pass over the page.

`trafilatura.metadata.extract_author` copies the whole tree, prunes comment sections, dates and
figures from the copy, then runs three XPath searches, each a walk of every element with up
to a dozen attribute tests. That cost about 6 ms per page, a quarter of the text extraction
itself, on every page whose feed names no author. `find_byline` gives the same answer from
one walk of the original tree: it notes the pruned sections and the candidates of all three
searches as it goes, then checks the candidates in the searches' order, copying and pruning
only a candidate that holds a pruned section.

A page holding a `<rel>` element, which the first search tests by its text, goes to
trafilatura's own function: no real page was seen with one.
"""

from __future__ import annotations

import re
from copy import deepcopy

from lxml import etree
from lxml.html import HtmlElement
from trafilatura.metadata import extract_author, normalize_authors
from trafilatura.utils import trim
from trafilatura.xml import delete_element

__all__ = ["find_byline"]

# What trafilatura.xpaths.AUTHOR_XPATHS and AUTHOR_DISCARD_XPATHS test, attribute by attribute.
# tests/test_bylines.py checks the answers against trafilatura's own on every corpus page and
# on pages built to hit each test, so a trafilatura upgrade that changes them fails there.
_FIRST_TAGS = frozenset({"a", "address", "div", "link", "p", "span", "strong"})
_FIRST_CLASS = re.compile("author-?name|AuthorName|authorName")
_SECOND_TAGS = frozenset({"a", "div", "h3", "h4", "p", "span"})
_SECOND_CLASS_EXACT = frozenset({"byline", "username", "byl", "BBL"})
_SECOND_ID = re.compile("author|zuozhe|bianji|xiaobian")
_SECOND_CLASS = re.compile("author|channel-name|zuozhe|bianji|xiaobian|submitted-by|posted-by|journalist-name")
_THIRD_ID = re.compile("[Aa]uthor")
_THIRD_CLASS = re.compile("[Aa]uthor|screenname|writer|[Bb]yline")
_PRUNED_TAGS = frozenset({"a", "div", "section", "span"})
_PRUNED_CLASS_EXACT = frozenset({"comments", "title", "date"})
_PRUNED_ID = re.compile("^comments|comment-?list|ProductReviews")
_PRUNED_CLASS = re.compile("^[Cc]omments|commentlist|comments-list|sidebar|is-hidden|quote|embedly-instagram"
                           "|article-(?:share|support)|print|category|meta-date|meta-reviewer")
_PRUNED_ALWAYS = frozenset({"time", "figure"})
_MAX_LENGTH = 120  # trafilatura's length limit for an author


class _UnsureError(Exception):
    """The one-pass search cannot tell what trafilatura's search would answer."""


def find_byline(tree: HtmlElement) -> str | None:
    """Return the page's author as trafilatura's `extract_author` finds it, or None."""
    try:
        return _search(tree)
    except _UnsureError:
        return extract_author(tree)


def _search(root: HtmlElement) -> str | None:
    searches: tuple[list[HtmlElement], list[HtmlElement], list[HtmlElement]] = ([], [], [])
    pruned: list[HtmlElement] = []
    for element in root.iter(etree.Element):
        tag = element.tag
        if tag == "rel":
            raise _UnsureError
        get = element.get
        css = get("class") or ""
        ident = get("id") or ""
        itemprop = get("itemprop") or ""
        component = get("data-component") or ""
        # The root is never pruned: trafilatura's delete_element leaves an element without a parent.
        if element is not root and (tag in _PRUNED_ALWAYS or (tag in _PRUNED_TAGS and (
                ident == "comments" or css in _PRUNED_CLASS_EXACT or "Figure" in component
                or (css and _PRUNED_CLASS.search(css)) or (ident and _PRUNED_ID.search(ident))))):
            pruned.append(element)
        if not (css or ident or itemprop or component) and tag not in _FIRST_TAGS and tag != "author":
            continue  # every remaining test needs one of these attributes or tags
        if tag == "author" or (tag in _FIRST_TAGS and (
                get("rel") == "author" or ident == "author" or css == "author" or itemprop == "author name"
                or get("data-testid") in ("AuthorCard", "AuthorURL") or (css and _FIRST_CLASS.search(css)))):
            searches[0].append(element)
        if tag in _SECOND_TAGS and (
                css in _SECOND_CLASS_EXACT or "author" in itemprop
                or (ident and _SECOND_ID.search(ident)) or (css and _SECOND_CLASS.search(css))):
            searches[1].append(element)
        if ("Byline" in component or "author" in itemprop or (ident and _THIRD_ID.search(ident))
                or (css and _THIRD_CLASS.search(css))):
            searches[2].append(element)
    gone = set(pruned)
    holds_pruned = {ancestor for element in pruned for ancestor in element.iterancestors()}
    for candidates in searches:
        for element in candidates:
            if element in gone or any(ancestor in gone for ancestor in element.iterancestors()):
                continue
            text = _pruned_text(element, gone) if element in holds_pruned else element.itertext()
            content = trim(" ".join(text))
            if content and 2 < len(content) < _MAX_LENGTH:
                return normalize_authors(None, content)
    return None


def _pruned_text(element: HtmlElement, gone: set[HtmlElement]) -> list[str]:
    """Return the element's text pieces as trafilatura's pruned copy of the page holds them."""
    # Pruning drops a section but keeps its tail, joined to the text before it: done on a copy
    # of this element alone, the pieces come out as they would from the pruned page.
    duplicate = deepcopy(element)
    doomed = [twin for original, twin in zip(element.iter(), duplicate.iter()) if original in gone]
    for twin in doomed:
        delete_element(twin)
    return list(duplicate.itertext())

"""Tests for parsers.bylines: the same author as trafilatura's own search, on real and built pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml.html import HtmlElement
from trafilatura.metadata import extract_author
from trafilatura.utils import load_html

from parsers.articles import decode_html
from parsers.bylines import find_byline

PAGES = Path(__file__).resolve().parent.parent / "sample" / "pages"


def tree_of(body: str) -> HtmlElement:
    tree = load_html(f"<!DOCTYPE html><html><head><title>t</title></head><body>{body}"
                     "<p>Some text of the story itself, long enough to be a paragraph.</p></body></html>")
    assert tree is not None
    return tree


def test_same_author_as_trafilatura_on_every_corpus_page() -> None:
    pages = sorted(PAGES.glob("*.html"))
    assert len(pages) > 100
    found = 0
    for page in pages:
        tree = load_html(decode_html(page.read_bytes()))
        if tree is None:
            continue
        expected = extract_author(tree)
        assert find_byline(tree) == expected, page.name
        found += expected is not None
    # The comparison means something only if many pages have a byline to find.
    assert found > 50


@pytest.mark.parametrize("body", [
    # each search of trafilatura's, by each of its attribute tests
    '<a rel="author" href="/jane">Jane Doe</a>',
    '<div id="author">Jane Doe</div>',
    '<span class="author">Jane Doe</span>',
    '<span itemprop="author name">Jane Doe</span>',
    '<strong data-testid="AuthorCard">Jane Doe</strong>',
    '<p class="post-author-name">Jane Doe</p>',
    '<address class="AuthorName">Jane Doe</address>',
    "<author>Jane Doe</author>",
    '<h3 class="byline">By Jane Doe</h3>',
    '<h4 class="BBL">Jane Doe</h4>',
    '<span itemprop="creator author">Jane Doe</span>',
    '<div id="xiaobian-box">Jane Doe</div>',
    '<p class="posted-by">Jane Doe</p>',
    '<section data-component="Byline">Jane Doe</section>',
    '<section id="Author-box">Jane Doe</section>',
    '<section class="writer">Jane Doe</section>',
    '<section class="screenname">@janedoe</section>',
    # the searches' order, not the page's, decides
    '<p class="byline">By Someone Else</p><a rel="author">Jane Doe</a>',
    # too long or too short a text is skipped for the next candidate
    '<span class="author">J</span><span class="author">Jane Doe</span>',
    '<span class="author">' + "word " * 40 + '</span><div class="byline">Jane Doe</div>',
    # pruned sections: comments, dates, figures, sidebars, exact class names
    '<div id="comments"><span class="author">Commenter</span></div><p class="byline">Jane Doe</p>',
    '<div class="comments-list"><a class="author">Commenter</a></div>',
    '<section class="sidebar"><span class="author">Sidebar Person</span></section>',
    '<figure><span class="author">Photo Credit</span></figure><span class="author">Jane Doe</span>',
    '<time><span class="author">Not Me</span></time>',
    '<div class="date"><span class="author">Not Me</span></div><span class="author">Jane Doe</span>',
    '<div data-component="FigureBlock"><span class="author">Not Me</span></div>',
    '<span class="Comments"><span class="author">Not Me</span></span>',
    # a candidate that holds a pruned section: its text is the pruned one, tails joined
    '<div class="byline">By <time>May 1</time>Jane <span class="print">Print</span>Doe</div>',
    '<div class="byline"><figure>x</figure>Jane Doe<figure>y</figure> and John Roe</div>',
    # no byline at all
    "<p>Nothing to see.</p>",
    # a <rel> element, which trafilatura's first search tests by its text
    '<div><rel>me</rel>Jane Doe</div><span class="author">Jane Doe</span>',
])
def test_same_author_as_trafilatura_on_built_pages(body: str) -> None:
    tree = tree_of(body)
    assert find_byline(tree) == extract_author(tree)


def test_a_byline_inside_a_pruned_section_is_not_taken() -> None:
    tree = tree_of('<div id="comments"><span class="author">Commenter Name</span></div>')
    assert find_byline(tree) is None


def test_a_pruned_section_inside_the_byline_is_left_out() -> None:
    tree = tree_of('<div class="byline">By <time>May 1, 2026</time>Jane Doe</div>')
    assert find_byline(tree) == "Jane Doe"

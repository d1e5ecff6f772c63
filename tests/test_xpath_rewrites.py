"""The rewritten XPath expressions select what trafilatura's own do, and extraction is unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lxml.html
import pytest
from lxml.etree import XPath
from trafilatura import settings as trafilatura_settings
from trafilatura import xpaths as trafilatura_xpaths
from trafilatura.utils import load_html

from parsers import xpath_rewrites
from parsers.articles import extract_article
from parsers.xpath_rewrites import rewritten, rewritten_source

PAGES = Path(__file__).resolve().parent.parent / "sample" / "pages"
REGEXP_NS = {"re": "http://exslt.org/regular-expressions"}

# Every way an element can carry (or lack) the attributes the expressions test: none, empty,
# id before class and class before id (re:test on @id|@class reads the first in source order),
# style, and values that match only part of a pattern.
EDGE_CASES = """<html><body>
<div>no attributes</div>
<div class="">empty class</div>
<div id="">empty id</div>
<div class="sidebar" id="main">class first</div>
<div id="main" class="sidebar">id first</div>
<section id="comments-1">comments by id</section>
<div class="comment-list"><p>a comment</p></div>
<span style="visibility: hidden">hidden by style</span>
<div id="hidden-box">hidden by id</div>
<p class="Byline">byline</p><p class="AUTHOR">upper case</p>
<div class="cookie-banner">cookie</div><div id="CookieBanner">cookie id</div>
<aside class="infinite-scroll"><h1>kept with h1</h1></aside>
<div class="mvp-post-add-box">appended</div>
<article class="post"><p>body</p></article>
<div class="share-box"><section class="related"><div class="widget"><p class="meta">nested</p></div></section>
<ul class="comment-list"><li>one</li></ul><ol id="comments"><li>two</li></ol></div>
<div class="caption"><span class="teaser">teaser in a caption</span></div>
</body></html>"""


def swapped_expressions() -> Iterator[tuple[str, XPath, XPath]]:
    # Every expression trafilatura defines: lists in xpaths, single ones in settings.
    for module in (trafilatura_xpaths, trafilatura_settings):
        for name, value in vars(module).items():
            if isinstance(value, XPath):
                yield name, value, rewritten(value)
            elif isinstance(value, list) and value and all(isinstance(v, XPath) for v in value):
                for index, original in enumerate(value):
                    yield f"{name}[{index}]", original, rewritten(original)


@pytest.fixture()
def originals() -> Iterator[None]:
    """Run the test with trafilatura's own expressions, then put the rewritten ones back."""
    xpath_rewrites.uninstall()
    try:
        yield
    finally:
        xpath_rewrites.install()


@pytest.mark.parametrize(("source", "expected"), [
    ("re:test(@id, 'nav')", "((@id) and re:test(@id, 'nav'))"),
    ("re:test(@id|@class, '^share')", "((@id|@class) and re:test(@id|@class, '^share'))"),
    ("re:test(@class, 'cookie', 'i')", "((@class) and re:test(@class, 'cookie', 'i'))"),
    # A pattern that matches the empty string matches an element without the attribute too.
    ("re:test(@id, '^$|nav')", "re:test(@id, '^$|nav')"),
    ("re:test(@class, 'x*')", "re:test(@class, 'x*')"),
    # Not an attribute, or not a pattern Python can compile: left as it is.
    ("re:test(., 'nav')", "re:test(., 'nav')"),
    ("re:test(text(), 'nav')", "re:test(text(), 'nav')"),
    ("re:test(@id, '(unclosed')", "re:test(@id, '(unclosed')"),
])
def test_regex_tests_guarded(source: str, expected: str) -> None:
    assert rewritten_source(source) == expected


@pytest.mark.parametrize(("source", "expected"), [
    (".//*[self::div or self::p][@class='x']", "(.//div|.//p)[@class='x']"),
    (".//*[self::div][not(.//h1) or contains(@class, 'col-2')]",
     "(.//div)[not(.//h1) or contains(@class, 'col-2')]"),
    (".//*[self::div or self::section]", "(.//div|.//section)"),
    # Anything that could make a predicate positional keeps the expression as it is.
    (".//*[self::div or self::p][@class='x'][1]", ".//*[self::div or self::p][@class='x'][1]"),
    (".//*[self::div][position() < 3]", ".//*[self::div][position() < 3]"),
    (".//*[self::div][last()]", ".//*[self::div][last()]"),
    (".//*[self::div][number(@n)]", ".//*[self::div][number(@n)]"),
    (".//*[self::div][@a - @b]", ".//*[self::div][@a - @b]"),
    (".//*[self::div][$n]", ".//*[self::div][$n]"),
    # Not at the start of the expression, or not only tag tests: left alone.
    ("(.//*[self::div or self::p][@id])[1]", "(.//*[self::div or self::p][@id])[1]"),
    (".//*[self::div or @id]", ".//*[self::div or @id]"),
])
def test_tag_tests_become_steps(source: str, expected: str) -> None:
    assert rewritten_source(source) == expected


def test_rewritten_expressions_select_the_same_elements(originals: None) -> None:
    trees = [lxml.html.fromstring(EDGE_CASES)]
    trees += [load_html(page.read_bytes()) for page in sorted(PAGES.glob("*.html"))]
    trees = [tree for tree in trees if tree is not None]
    assert len(trees) > 100
    compared = 0
    for name, original, cheaper in swapped_expressions():
        if cheaper is original:
            continue
        compared += 1
        for tree in trees:
            assert cheaper(tree) == original(tree), name
    assert compared >= 15, "trafilatura's expressions are no longer written as they were"


def test_edge_cases_are_selected_at_all(originals: None) -> None:
    # The comparison above means something only if the edge cases are selected by some of the
    # expressions: class-first and id-first elements, empty attributes, flags.
    tree = lxml.html.fromstring(EDGE_CASES)
    selected = {element.text_content() for _, original, _ in swapped_expressions()
                for element in original(tree) if isinstance(element, lxml.html.HtmlElement)}
    assert {"class first", "id first", "hidden by id", "byline", "comments by id", "nested", "one", "two",
            "teaser in a caption", "cookie", "cookie id"} <= selected


def test_install_swaps_and_uninstall_restores() -> None:
    assert xpath_rewrites.installed()  # parsers.articles installs them on import
    cheaper = trafilatura_xpaths.OVERALL_DISCARD_XPATH[1]
    assert "and re:test" in cheaper.path
    xpath_rewrites.uninstall()
    try:
        assert not xpath_rewrites.installed()
        original = trafilatura_xpaths.OVERALL_DISCARD_XPATH[1]
        assert "and re:test" not in original.path
        xpath_rewrites.install()
        xpath_rewrites.install()  # once per process: a second call changes nothing
        assert trafilatura_xpaths.OVERALL_DISCARD_XPATH[1].path.count("and re:test") \
            == cheaper.path.count("and re:test")
    finally:
        xpath_rewrites.install()


def test_extraction_is_the_same_with_either_expressions(originals: None) -> None:
    pages = sorted(PAGES.glob("*.html"))
    theirs = [extract_article(page.read_bytes(), f"https://example.org/{page.name}") for page in pages]
    xpath_rewrites.install()
    ours = [extract_article(page.read_bytes(), f"https://example.org/{page.name}") for page in pages]
    assert sum(bool(article.text) for article in ours) > 100
    for page, mine, original in zip(pages, ours, theirs, strict=True):
        assert mine == original, page.name


def test_an_expression_neither_rewrite_applies_to_is_kept_as_it_is() -> None:
    expression = XPath("//*[re:test(@id, 'nav')]", namespaces=REGEXP_NS)
    assert rewritten(expression) is not expression
    plain = XPath("//*[@id='nav']")
    assert rewritten(plain) is plain

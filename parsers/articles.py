"""Main text and metadata of article pages: charset handling and trafilatura extraction."""

from __future__ import annotations

import codecs
import contextlib
import re
from dataclasses import dataclass
from datetime import datetime

import charset_normalizer
import ftfy
import trafilatura
from htmldate import find_date
from lxml.etree import ElementDefaultClassLookup
from lxml.html import (
    HtmlComment,
    HtmlElement,
    HtmlEntity,
    HTMLParser,
    HtmlProcessingInstruction,
    fromstring,
)
from trafilatura.metadata import (
    examine_meta,
    extract_meta_json,
    extract_sitename,
    extract_title,
)
from trafilatura.settings import Document, set_date_params
from trafilatura.utils import is_dubious_html, repair_faulty_html

from parsers import xpath_rewrites
from parsers.bylines import find_byline
from parsers.dates import parse_date
from parsers.text import normalise_text

__all__ = ["ExtractedArticle", "decode_html", "extract_article", "parse_html", "warm_up"]

# trafilatura's XPath expressions, rewritten to select the same elements in fewer
# instructions (parsers.xpath_rewrites).
xpath_rewrites.install()

_HEAD_BYTES = 8192
_META_CHARSET_RE = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE
)
_HEADER_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
_HTML_LANG_RE = re.compile(r"<html[^>]*?\slang\s*=\s*[\"']?([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]+)?",
                           re.IGNORECASE)
# Byte sequences a UTF-8 text shows when it was decoded as Latin-1/cp1252 (Ã©, â€™, Â ...).
_MOJIBAKE_RE = re.compile("[\u00c2\u00c3][\u0080-\u00bf]|\u00e2\u20ac[\u0080-\u00bf\u2018-\u201e\u2122\u0153\u0161]")
_SINGLE_BYTE = frozenset(
    {"latin-1", "iso8859-1", "cp1252", "ascii", "iso8859-15", "iso8859-2", "cp1250"}
)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
# Browsers decode these labels as their supersets (WHATWG encoding standard).
_SUPERSETS = {"latin-1": "cp1252", "iso8859-1": "cp1252", "ascii": "cp1252", "gb2312": "gb18030",
              "gbk": "gb18030", "shift_jis": "cp932", "euc_kr": "cp949"}


@dataclass(frozen=True)
class ExtractedArticle:
    """Main text and metadata extracted from one article page."""

    title: str | None
    author: str | None
    published_at: datetime | None
    site_name: str | None
    language: str | None
    description: str | None
    text: str


def _codec(label: str | bytes | None) -> str | None:
    """Return the Python codec for a charset label, preferring the superset browsers use."""
    if not label:
        return None
    name = label.decode("ascii", "ignore") if isinstance(label, bytes) else label
    try:
        codec = codecs.lookup(name.strip().lower()).name
    except LookupError:
        return None
    return _SUPERSETS.get(codec, codec)


def _try_decode(body: bytes, codec: str) -> str | None:
    """Decode strictly, None on any error."""
    try:
        return body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _mojibake_score(text: str) -> int:
    """Count sequences that look like UTF-8 read as a single-byte charset."""
    return len(_MOJIBAKE_RE.findall(text))


def _repair(text: str) -> str:
    """Undo double encoding when the text shows it; leave clean text untouched."""
    # Every mojibake pattern starts with one of these; most pages have none, and a plain
    # search for them is far cheaper than the regex over a whole page.
    if "\u00c2" not in text and "\u00c3" not in text and "\u00e2\u20ac" not in text:
        return text
    if _mojibake_score(text) < 3:
        return text
    return ftfy.fix_encoding(text)


def decode_html(body: bytes, content_type: str | None = None) -> str:
    """Decode page bytes using BOM, header charset, meta charset, then detection; repair mojibake."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return _repair(body.decode(codec, errors="replace"))
    header_match = _HEADER_CHARSET_RE.search(content_type or "")
    meta_match = _META_CHARSET_RE.search(body[:_HEAD_BYTES])
    labels = (
        _codec(header_match.group(1) if header_match else None),
        _codec(meta_match.group(1) if meta_match else None),
    )
    utf8_text = _try_decode(body, "utf-8")
    for label in labels:
        if label is None:
            continue
        if label in _SINGLE_BYTE and utf8_text is not None and not body.isascii():
            # Valid multi-byte UTF-8 labelled Latin-1 is a wrong label, not Latin-1 text.
            return _repair(utf8_text)
        text = utf8_text if label == "utf-8" else _try_decode(body, label)
        if text is not None:
            return _repair(text)
    if utf8_text is not None:
        return _repair(utf8_text)
    best = charset_normalizer.from_bytes(body[:200_000]).best()
    detected = _codec(best.encoding) if best is not None else None
    return _repair(body.decode(detected or "cp1252", errors="replace"))


def _clean(value: object) -> str | None:
    """Return normalised single-line text or None."""
    if not isinstance(value, str):
        return None
    text = " ".join(normalise_text(value).split())
    return text or None


def _language(html: str, detected: object) -> str | None:
    """Return the page language: trafilatura's value, else the <html lang> attribute."""
    if isinstance(detected, str) and detected.strip():
        return detected.strip().lower()
    match = _HTML_LANG_RE.search(html[:_HEAD_BYTES * 4])
    return match.group(1).lower() if match else None


def _empty() -> ExtractedArticle:
    """Return the article for a page with nothing extractable."""
    return ExtractedArticle(None, None, None, None, None, None, "")


def _page_metadata(tree: HtmlElement, want_date: bool, want_author: bool) -> Document:
    """Read title, author, description, site name and (when wanted) date, as trafilatura does.

    This is trafilatura's own metadata path less what newsmon does not store (categories,
    tags, licence). The two costliest searches are optional: the date search, which a feed's
    date makes moot, and the byline search over the page's markup, which a feed's author
    makes moot. The page's declared author (meta tags, JSON-LD) is read either way.
    """
    metadata = examine_meta(tree)
    if metadata.author and " " not in metadata.author:
        metadata.author = None  # one word is a handle or a site, not a byline
    with contextlib.suppress(Exception):  # broken JSON-LD must not cost the page its text
        metadata = extract_meta_json(tree, metadata)
    metadata.title = metadata.title or extract_title(tree)
    if not metadata.author and want_author:
        metadata.author = find_byline(tree)
    metadata.sitename = metadata.sitename or extract_sitename(tree)
    if metadata.sitename:
        metadata.sitename = metadata.sitename.lstrip("@")  # a Twitter handle names the site
    if want_date:
        metadata.date = find_date(tree, **set_date_params(True))
    return metadata


def _html_parser() -> HTMLParser:
    """Return trafilatura's HTML parser settings with lxml's C-level element class lookup."""
    # lxml.html's own parser picks each element's class in a Python callback, called for every
    # element Python touches: about 4,300 times per page through trafilatura, 7 % of its time.
    # The default lookup gives the same classes, save lxml.html's form-field mixins, which
    # neither trafilatura nor newsmon use (tests/test_articles.py compares the outputs).
    parser = HTMLParser(collect_ids=False, default_doctype=False, encoding="utf-8",
                        remove_comments=True, remove_pis=True)
    parser.set_element_class_lookup(ElementDefaultClassLookup(
        element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction, entity=HtmlEntity))
    return parser


_HTML_PARSER = _html_parser()


def parse_html(html: str) -> HtmlElement | None:
    """Parse a decoded page as trafilatura's `load_html` does; None when it is not HTML."""
    beginning = html[:50].lower()
    dubious = is_dubious_html(beginning)
    html = repair_faulty_html(html, beginning)
    tree = _parsed(html)
    if tree is None or len(tree) < 1:  # e.g. a string with an encoding declaration: lxml wants bytes
        tree = _parsed(html.encode("utf8", "surrogatepass"))
    if tree is not None and dubious and len(tree) < 2:
        return None
    return tree


def _parsed(html: str | bytes) -> HtmlElement | None:
    try:
        return fromstring(html, parser=_HTML_PARSER)
    except Exception:  # noqa: BLE001 - any lxml failure means "not HTML", as in load_html
        return None


def _run(html: str, url: str, fast: bool, want_date: bool,
         want_author: bool) -> tuple[Document, Document | None]:
    """Run trafilatura once with our settings; return the page's metadata and its text."""
    tree = parse_html(html)
    if tree is None:
        return Document(), None
    metadata = _page_metadata(tree, want_date, want_author)
    result = trafilatura.bare_extraction(
        tree,
        url=url or None,
        fast=fast,
        include_comments=False,
        include_tables=True,
        include_formatting=False,
        with_metadata=False,
    )
    return metadata, result if isinstance(result, Document) else None


def extract_article(
    html: bytes | str,
    url: str,
    *,
    content_type: str | None = None,
    fast: bool = False,
    want_date: bool = True,
    want_author: bool = True,
) -> ExtractedArticle:
    """Extract main text and metadata from an article page; return empty text on failure.

    `want_date=False` skips the page's date search, and `want_author=False` its byline
    search, for articles whose feed already gave a date or an author.
    """
    try:
        text_html = decode_html(html, content_type) if isinstance(html, bytes) else _repair(html)
        if not text_html.strip():
            return _empty()
        metadata, document = _run(text_html, url, fast, want_date, want_author)
    except Exception:  # noqa: BLE001 - bad markup must never stop a batch; record empty text
        return _empty()
    if document is None:
        return ExtractedArticle(None, None, None, None, _language(text_html, None), None, "")
    return ExtractedArticle(
        title=_clean(metadata.title),
        author=_clean(metadata.author),
        published_at=parse_date(metadata.date) if isinstance(metadata.date, str) else None,
        site_name=_clean(metadata.sitename),
        language=_language(text_html, document.language),
        description=_clean(metadata.description),
        text=normalise_text(document.text or ""),
    )


def warm_up() -> None:
    """Load the date parser's locales now, so the first dated page does not pay for it."""
    # htmldate falls back to dateparser, whose first use tries every locale: about 3 s of CPU.
    from htmldate.extractors import external_date_parser

    external_date_parser("xyzzy 2022", "%Y-%m-%d")

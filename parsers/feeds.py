"""Parse RSS/Atom bytes into frozen entries with canonical URLs, plain text and UTC dates."""

from __future__ import annotations

import calendar
import codecs
import hashlib
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import charset_normalizer
import feedparser

from parsers.dates import parse_date
from parsers.text import html_to_text, normalise_text
from parsers.urls import canonicalize_url, host_of, unwrap_redirect

__all__ = [
    "FeedEntry",
    "FeedParseError",
    "ParsedFeed",
    "body_hash",
    "parse_feed",
]

# Hosts that only redirect to the publisher; a link on them is the last choice for an entry.
_AGGREGATOR_HOSTS = frozenset(
    {
        "news.google.com", "feedproxy.google.com", "feeds.feedburner.com", "feeds2.feedburner.com",
        "rss.feedsportal.com", "www.bing.com", "t.co", "l.facebook.com", "lm.facebook.com",
        "www.google.com", "google.com",
    }
)
_SINGLE_BYTE_ENCODINGS = frozenset(
    {"latin-1", "iso8859-1", "cp1252", "ascii", "iso8859-15", "iso8859-2", "cp1250"}
)
_HEAD_BYTES = 2048
_XML_DECL_RE = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")
_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
# An internal DTD subset is where entity bombs live; real feeds do not need one.
_INTERNAL_SUBSET_RE = re.compile(rb"<!DOCTYPE[^\[>]*\[.*?\]\s*>", re.DOTALL | re.IGNORECASE)
_HTML_START_RE = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])", re.IGNORECASE | re.DOTALL)
_FEED_ROOT_RE = re.compile(rb"<(?:[A-Za-z0-9_]+:)?(?:rss|feed|RDF|channel)[\s>]")
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE,
         codecs.BOM_UTF16_BE)


@dataclass(frozen=True)
class FeedEntry:
    """One feed entry, its URLs canonical and its text plain."""

    guid: str
    url: str
    link: str
    title: str | None
    summary: str | None
    content_html: str | None
    content_text: str | None
    published_at: datetime | None
    author: str | None
    summary_html: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ParsedFeed:
    """A parsed feed: channel metadata plus its usable entries."""

    title: str | None
    site_url: str | None
    version: str
    encoding: str | None
    bozo: bool
    bozo_reason: str | None
    entries: tuple[FeedEntry, ...]
    skipped: int = 0  # entries dropped because they carry no http(s) link


class FeedParseError(ValueError):
    """The body is not a usable feed."""


def body_hash(body: bytes) -> str:
    """Return the sha256 hex digest of a response body."""
    return hashlib.sha256(body).hexdigest()


def _codec(name: str | None) -> str | None:
    """Return Python's canonical codec name for a charset label, None when unknown."""
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().lower()).name
    except LookupError:
        return None


def _decodes(body: bytes, codec: str) -> bool:
    """Tell whether the whole body decodes with the codec."""
    try:
        body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def _choose_encoding(body: bytes, header_charset: str | None) -> tuple[str | None, str | None]:
    """Pick the charset to parse with; also say why when it overrides what the body declares."""
    if body.startswith(_BOMS):
        return None, None  # feedparser honours the byte order mark itself
    declared_match = _XML_DECL_RE.match(body[:_HEAD_BYTES])
    declared = header_charset or (declared_match.group(1).decode("ascii") if declared_match else None)
    codec = _codec(declared)
    utf8_ok = _decodes(body, "utf-8")
    if codec:
        if codec in _SINGLE_BYTE_ENCODINGS and utf8_ok and not body.isascii():
            # Valid multi-byte UTF-8 is almost never intended Latin-1 text: the label lies.
            return "utf-8", f"declared charset {declared!r} overridden: body is UTF-8"
        if _decodes(body, codec):
            return codec, None
    problem = (
        f"declared charset {declared!r} {'is unknown' if codec is None else 'does not decode'}"
        if declared else "no charset declared"
    )
    if utf8_ok:
        return "utf-8", None if declared is None else f"{problem}; parsed as utf-8"
    best = charset_normalizer.from_bytes(body[:65536]).best()
    detected = (_codec(best.encoding) if best is not None else None) or "cp1252"
    return detected, f"{problem} and body is not UTF-8; detected {detected}"


def _struct_to_datetime(value: Any) -> datetime | None:
    """Convert feedparser's UTC struct_time to an aware datetime."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _entry_date(entry: Mapping[str, Any], key: str) -> datetime | None:
    """Return an entry date, our parser first because it knows more layouts and zones."""
    raw = entry.get(key)
    parsed = parse_date(raw) if isinstance(raw, str) else None
    return parsed or _struct_to_datetime(entry.get(f"{key}_parsed"))


def _text(value: Any) -> str | None:
    """Return plain text for a feed field that may hold HTML, None when empty."""
    if not isinstance(value, str):
        return None
    text = html_to_text(value)
    return text or None


def _absolute(link: str, base: str) -> str | None:
    """Return link made absolute against base when it is an http(s) URL."""
    try:
        joined = urljoin(base, link.strip())
        canonicalize_url(joined)  # validates scheme and host
    except ValueError:
        return None
    return joined


def _candidate_links(entry: Mapping[str, Any]) -> Iterable[str]:
    """Yield the links an entry gives, the publisher's own first."""
    for key in ("feedburner_origlink", "pheedo_origlink", "origlink"):
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            yield value
    link = entry.get("link")
    if isinstance(link, str) and link.strip():
        yield link
    for item in entry.get("links") or ():
        if isinstance(item, Mapping) and item.get("rel", "alternate") in ("alternate", "related", "via"):
            href = item.get("href")
            if isinstance(href, str) and href.strip():
                yield href
    guid = entry.get("id")
    if isinstance(guid, str) and guid.strip().lower().startswith(("http://", "https://")):
        yield guid


def _pick_url(entry: Mapping[str, Any], base: str) -> tuple[str, str] | None:
    """Return (canonical article URL, link as given made absolute) for an entry."""
    given: str | None = None
    fallback: str | None = None
    link = entry.get("link")
    if isinstance(link, str):
        given = _absolute(link, base)
    for candidate in _candidate_links(entry):
        absolute = _absolute(candidate, base)
        if absolute is None:
            continue
        target = unwrap_redirect(absolute)
        try:
            canonical = canonicalize_url(target)
        except ValueError:
            continue
        if host_of(canonical) in _AGGREGATOR_HOSTS:
            fallback = fallback or canonical
            continue
        return canonical, given or absolute
    if fallback is not None:
        return fallback, given or fallback
    return None


def _content_html(entry: Mapping[str, Any]) -> str | None:
    """Return the richest HTML content an entry carries."""
    best: str | None = None
    for item in entry.get("content") or ():
        if not isinstance(item, Mapping):
            continue
        value = item.get("value")
        if isinstance(value, str) and value.strip() and (best is None or len(value) > len(best)):
            best = value
    return best


def _guid(entry: Mapping[str, Any], link: str | None) -> str:
    """Return the entry's id, else its link, else a hash of title and summary."""
    guid = entry.get("id")
    if isinstance(guid, str) and guid.strip():
        return guid.strip()
    if link:
        return link
    seed = f"{entry.get('title') or ''}\n{entry.get('summary') or ''}"
    return "sha256:" + hashlib.sha256(seed.encode("utf-8", "replace")).hexdigest()


def _author(entry: Mapping[str, Any], feed_author: str | None) -> str | None:
    """Return the entry author, else the feed author."""
    author = entry.get("author")
    if not isinstance(author, str) or not author.strip():
        detail = entry.get("author_detail")
        author = detail.get("name") if isinstance(detail, Mapping) else None
    text = normalise_text(author) if isinstance(author, str) else ""
    return text or feed_author


def _build_entry(entry: Mapping[str, Any], base: str, feed_author: str | None) -> FeedEntry | None:
    """Turn one feedparser entry into a FeedEntry, None when it has no usable link."""
    urls = _pick_url(entry, base)
    if urls is None:
        return None
    url, link = urls
    summary_html = entry.get("summary") if isinstance(entry.get("summary"), str) else None
    content_html = _content_html(entry)
    summary = _text(summary_html)
    if content_html is not None and summary_html is not None and content_html == summary_html:
        # feedparser copies content into summary when the feed has no separate summary.
        summary = _text(content_html)
    published = _entry_date(entry, "published")
    updated = _entry_date(entry, "updated")
    return FeedEntry(
        guid=_guid(entry, link),
        url=url,
        link=link,
        title=_text(entry.get("title")),
        summary=summary,
        content_html=content_html,
        content_text=_text(content_html) if content_html is not None else summary,
        published_at=published or updated,
        author=_author(entry, feed_author),
        summary_html=summary_html or None,
        updated_at=updated,
    )


def _describe_failure(body: bytes, result: Mapping[str, Any], stripped_subset: bool) -> str:
    """Explain in one sentence why a body with no entries is not a usable feed."""
    head = body[:_HEAD_BYTES]
    exc = result.get("bozo_exception")
    reason = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
    if _HTML_START_RE.match(head) or (b"<html" in head.lower() and not _FEED_ROOT_RE.search(head)):
        return "body is an HTML page, not a feed" + reason
    if stripped_subset:
        return "body declares XML entities (possible entity-expansion bomb) and has no entries" + reason
    message = str(exc or "").lower()
    if "undefined entity" in message or "amplification" in message:
        return "body uses undefined or refused XML entities and has no entries" + reason
    if not result.get("version"):
        return "body is XML but not an RSS, Atom or RDF feed" + reason
    return "feed is malformed or truncated and has no entries" + reason


def _order(entries: list[FeedEntry], max_entries: int | None) -> list[FeedEntry]:
    """Keep the newest max_entries entries, newest first; undated ones keep feed order last."""
    if max_entries is None:
        return entries
    floor = datetime.min.replace(tzinfo=UTC)
    ranked = sorted(entries, key=lambda e: e.published_at or floor, reverse=True)
    return ranked[: max(max_entries, 0)]


def parse_feed(
    body: bytes,
    url: str,
    headers: Mapping[str, str] | None = None,
    *,
    max_entries: int | None = None,
) -> ParsedFeed:
    """Parse feed bytes into a ParsedFeed, raising FeedParseError when it is not a usable feed."""
    if not body or not body.strip():
        raise FeedParseError("body is empty")
    if _HTML_START_RE.match(body[:_HEAD_BYTES]):
        raise FeedParseError("body is an HTML page, not a feed")
    lowered = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    base = url
    if lowered.get("content-location"):
        try:
            base = urljoin(url, lowered["content-location"].strip())
        except ValueError:
            base = url
    charset_match = _CHARSET_RE.search(lowered.get("content-type", ""))
    stripped_subset = False
    if b"<!ENTITY" in body[:65536].upper():
        body, count = _INTERNAL_SUBSET_RE.subn(b"", body, count=1)
        stripped_subset = count > 0
    encoding, encoding_note = _choose_encoding(
        body, charset_match.group(1) if charset_match else None
    )
    # We decide the charset; application/xml makes feedparser obey it over the declaration.
    content_type = "application/xml" + (f"; charset={encoding}" if encoding else "")
    try:
        result = feedparser.parse(
            body,
            response_headers={"content-location": base, "content-type": content_type},
            resolve_relative_uris=True,
            sanitize_html=True,
        )
    except Exception as exc:  # feedparser's loose parser can fail in many ways on garbage
        raise FeedParseError(f"feed parser failed: {type(exc).__name__}: {exc}") from exc
    # Plain dicts: FeedParserDict.get("updated") emits a DeprecationWarning and falls back to
    # "published", which would blur the two dates.
    feed: dict[str, Any] = dict(result.get("feed") or {})
    feed_author = _author(feed, None)
    entries: list[FeedEntry] = []
    seen: set[str] = set()
    skipped = 0
    for raw in result.get("entries") or ():
        entry = _build_entry(dict(raw), base, feed_author)
        if entry is None:
            skipped += 1
            continue
        if entry.guid in seen:
            continue
        seen.add(entry.guid)
        entries.append(entry)
    bozo_exc = result.get("bozo_exception")
    if not entries and result.get("bozo") and not isinstance(
        bozo_exc, feedparser.CharacterEncodingOverride
    ):
        raise FeedParseError(_describe_failure(body, result, stripped_subset))
    if not result.get("entries") and (not result.get("version") or stripped_subset):
        raise FeedParseError(_describe_failure(body, result, stripped_subset))
    reasons = [f"{type(bozo_exc).__name__}: {bozo_exc}"] if bozo_exc is not None else []
    if stripped_subset:
        reasons.append("internal DTD subset with entity declarations removed")
    if encoding_note:
        reasons.append(encoding_note)
    site_link = feed.get("link")
    return ParsedFeed(
        title=_text(feed.get("title")),
        site_url=_absolute(site_link, base) if isinstance(site_link, str) else None,
        version=str(result.get("version") or ""),
        encoding=result.get("encoding") or None,
        bozo=bool(reasons),
        bozo_reason="; ".join(reasons) or None,
        entries=tuple(_order(entries, max_entries)),
        skipped=skipped,
    )

"""Read sitemaps and robots.txt that were fetched elsewhere: links, nested sitemaps, lastmod.

trafilatura's sitemap module does the link work (plausibility, same-domain filter, URL
cleaning, nested sitemap detection); its `sitemap_search` would also download, through its
own client, so we drive `SitemapObject` over bytes we fetched ourselves and keep the
network (address guard, robots, politeness) in newsmon's Fetcher. The `<lastmod>` dates,
which trafilatura drops, are read here so a backfill can skip old pages without fetching them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from courlan import clean_url, extract_domain
from lxml import etree
from trafilatura.sitemaps import (
    DETECT_LINKS,
    DETECT_SITEMAP_LINK,
    GUESSES,
    SitemapObject,
    extract_robots_sitemaps,
    is_plausible_sitemap,
)
from trafilatura.utils import safe_relative_url

from parsers.dates import parse_date

__all__ = [
    "SitemapEntry",
    "SitemapError",
    "SitemapPage",
    "guessed_sitemaps",
    "parse_sitemap",
    "robots_sitemaps",
    "site_root",
]

_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


class SitemapError(ValueError):
    """A document that is not a usable sitemap."""


@dataclass(frozen=True)
class SitemapEntry:
    url: str
    lastmod: datetime | None = None


@dataclass(frozen=True)
class SitemapPage:
    """What one sitemap document lists: pages and further sitemaps."""

    urls: tuple[SitemapEntry, ...]
    sitemaps: tuple[str, ...]


def site_root(url: str) -> str:
    """Return scheme://host[:port] of a URL."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1].lower()}"


def robots_sitemaps(robots_txt: str, site: str) -> list[str]:
    """Return the sitemap URLs a robots.txt declares."""
    return list(extract_robots_sitemaps(robots_txt, site))


def guessed_sitemaps(site: str) -> list[str]:
    """Return the usual sitemap locations of a site, most likely first."""
    return [f"{site}/{guess}" for guess in GUESSES]


def _decompress(body: bytes, limit: int) -> bytes:
    if not body.startswith(b"\x1f\x8b"):
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    # A bounded inflate, so a small gzip bomb cannot become gigabytes in memory.
    data = inflater.decompress(body, limit)
    if inflater.unconsumed_tail:
        raise SitemapError(f"compressed sitemap expands beyond {limit} bytes")
    return data


def _lastmods(content: bytes) -> dict[str, datetime | None]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=True, huge_tree=False)
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError:
        return {}
    if root is None:
        return {}
    found: dict[str, datetime | None] = {}
    for node in root.iter(f"{_NS}url", "url", f"{_NS}sitemap", "sitemap"):
        loc = node.find(f"{_NS}loc")
        if loc is None:
            loc = node.find("loc")
        if loc is None or not loc.text:
            continue
        mod = node.find(f"{_NS}lastmod")
        if mod is None:
            mod = node.find("lastmod")
        found[loc.text.strip()] = parse_date(mod.text) if mod is not None and mod.text else None
    return found


def parse_sitemap(body: bytes, url: str, *, max_bytes: int = 50_000_000) -> SitemapPage:
    """Return the page URLs (with lastmod) and nested sitemaps listed by a fetched sitemap."""
    content = _decompress(body, max_bytes)
    text = content.decode("utf-8", errors="replace")
    if not is_plausible_sitemap(url, text):
        raise SitemapError(f"{url}: not a sitemap")
    root = site_root(url)
    host = urlsplit(root).hostname or ""
    named = extract_domain(root, fast=True) is not None
    walker = SitemapObject(root, host, [])
    walker.current_url = url
    walker.content = text
    lastmods = _lastmods(content)
    if not lastmods:
        # Plain-text sitemaps, and XML without <url>/<sitemap> blocks: every http(s) link.
        lastmods = {link: None for link in DETECT_LINKS.findall(text)}
    entries: list[SitemapEntry] = []
    for loc, lastmod in lastmods.items():
        # One link at a time, so each cleaned URL keeps the lastmod of its <loc>.
        before = len(walker.urls)
        _take(walker, loc, host, named)
        entries.extend(SitemapEntry(link, lastmod) for link in walker.urls[before:])
    unique: dict[str, SitemapEntry] = {}
    for entry in entries:
        unique.setdefault(entry.url, entry)
    nested = tuple(dict.fromkeys(s for s in walker.sitemap_urls if s != url))
    return SitemapPage(urls=tuple(unique.values()), sitemaps=nested)


def _take(walker: SitemapObject, link: str, site_host: str, named: bool) -> None:
    if named:
        walker.handle_link(link)
        return
    # courlan names no domain for an address or a name without a public suffix (an intranet
    # host, localhost), and trafilatura would drop every link of such a site; keep the links
    # on that very host, cleaned the same way.
    absolute = safe_relative_url(walker.base_url, link)
    if urlsplit(absolute).hostname != site_host or absolute == walker.current_url:
        return
    cleaned = clean_url(absolute) or ""
    if cleaned:
        (walker.sitemap_urls if DETECT_SITEMAP_LINK.search(cleaned) else walker.urls).append(cleaned)

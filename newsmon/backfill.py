"""Backfill a new installation: find earlier articles in the sites' sitemaps.

Discovery reads robots.txt `Sitemap:` lines (else the usual sitemap locations) and walks
nested sitemaps through newsmon's `Fetcher`, so the address guard, retries and per-host
limits apply as they do at night. Candidates are filtered twice by date: before any fetch
(the sitemap's `<lastmod>`, a date in the URL path), and after extraction (the page's own
publication date; an undated page is not stored). Only relevant articles are stored: a
site's sitemap lists everything it ever published, and the warehouse should hold what the
themes are about. The extract, tag and store path is the nightly one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from urllib.parse import urlsplit

from newsmon.config import FetchSettings, Settings
from newsmon.errors import UserError
from newsmon.fetch import Fetcher, FetchError
from newsmon.processing import PageJob, Processed, TaggingConfig
from parsers.dates import date_from_url
from parsers.sitemaps import (
    SitemapEntry,
    SitemapError,
    guessed_sitemaps,
    parse_sitemap,
    robots_sitemaps,
    site_root,
)
from parsers.urls import article_id, canonicalize_url
from warehouse.backfill import Candidate, Outcome
from warehouse.store import ArticleRecord, StoreResult

__all__ = [
    "Discovery",
    "backfill_sites",
    "discover_site",
    "judge_processed",
    "parse_since",
    "plan_candidates",
    "polite_fetch_settings",
    "stored_outcomes",
    "tagging_config",
]

# Aggregators list other people's articles; their sitemaps are not the sites we follow.
_AGGREGATORS = ("news.google.com", "hnrss.org", "news.ycombinator.com")


@dataclass(frozen=True)
class Discovery:
    """What a site's sitemaps list."""

    site: str
    sitemaps_read: int
    urls: tuple[SitemapEntry, ...]
    errors: tuple[str, ...] = ()


def parse_since(value: str, today: date | None = None) -> datetime:
    """Parse `--since` (YYYY-MM-DD) into the UTC midnight it starts at."""
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise UserError(f"--since must be a date like 2026-01-31, not {value!r}") from None
    if day > (today or datetime.now(UTC).date()):
        raise UserError(f"--since {day} is in the future")
    return datetime.combine(day, time(0), tzinfo=UTC)


def backfill_sites(settings: Settings, explicit: Sequence[str] = ()) -> list[str]:
    """Return the sites to backfill: the given ones, else the hosts of the configured feeds."""
    urls = list(explicit) or [feed.url for feed in settings.feeds]
    sites: dict[str, None] = {}
    for url in urls:
        try:
            root = site_root(url)
        except ValueError:
            raise UserError(f"not a site URL: {url!r}") from None
        host = urlsplit(root).hostname or ""
        if not explicit and host in _AGGREGATORS:
            continue
        sites[root] = None
    return list(sites)


def polite_fetch_settings(settings: FetchSettings) -> FetchSettings:
    """Return fetch settings for a backfill: one request at a time per host."""
    return replace(settings, per_host_concurrency=1)


def tagging_config(settings: Settings) -> TaggingConfig:
    """Return the tagging configuration the nightly flow uses."""
    return TaggingConfig(
        themes_file=settings.themes.file or None,
        entities_file=settings.themes.entities_file or None,
        kind=settings.themes.tagger,
        fast_extraction=settings.extract.fast,
        keep_raw_html=settings.storage.keep_raw_html,
    )


async def discover_site(fetcher: Fetcher, site: str, *, max_sitemaps: int = 50,
                        max_urls: int = 50_000) -> Discovery:
    """Read a site's sitemaps (from robots.txt, else the usual places) and list its pages."""
    errors: list[str] = []
    queue: list[str] = []
    try:
        robots = await fetcher.fetch_feed(f"{site}/robots.txt", unconditional=True)
        queue = robots_sitemaps(robots.body.decode("utf-8", "replace"), site)
    except FetchError as exc:
        errors.append(f"{site}/robots.txt: {exc.reason}")
    guessing = not queue
    if guessing:
        queue = guessed_sitemaps(site)
    seen: set[str] = set()
    found: dict[str, SitemapEntry] = {}
    read = 0
    while queue and read < max_sitemaps and len(found) < max_urls:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        try:
            response = await fetcher.fetch_feed(url, unconditional=True)
            page = parse_sitemap(response.body, response.final_url)
        except FetchError as exc:
            if not guessing:
                errors.append(f"{url}: {exc.reason}")
            continue
        except (SitemapError, ValueError) as exc:
            errors.append(str(exc))
            continue
        read += 1
        if guessing:
            # The first guess that answers is the site's sitemap; stop guessing the others.
            queue, guessing = [], False
        queue.extend(s for s in page.sitemaps if s not in seen)
        for entry in page.urls:
            found.setdefault(entry.url, entry)
    if read == 0 and not errors:
        errors.append(f"{site}: no sitemap found")
    return Discovery(site=site, sitemaps_read=read, urls=tuple(list(found.values())[:max_urls]),
                     errors=tuple(errors))


def plan_candidates(candidates: Iterable[Candidate], since: datetime,
                    now: datetime) -> tuple[list[PageJob], list[Outcome]]:
    """Turn pending URLs into page jobs, settling those known or dated before `since` at once."""
    jobs: list[PageJob] = []
    settled: list[Outcome] = []
    for candidate in candidates:
        if candidate.known:
            settled.append(Outcome(candidate.url, "known", "already stored"))
            continue
        in_url = date_from_url(candidate.url)
        if in_url is not None and in_url < since:
            settled.append(Outcome(candidate.url, "old", f"URL dated {in_url:%Y-%m-%d}"))
            continue
        try:
            canonical = canonicalize_url(candidate.url)
        except ValueError as exc:
            settled.append(Outcome(candidate.url, "failed", str(exc)))
            continue
        jobs.append(PageJob(
            article_id=article_id(canonical), url=canonical, feed_url=candidate.site,
            feed_name=urlsplit(candidate.site).hostname or candidate.site, guid=None,
            entry_title=None, entry_summary=None, entry_text=None, entry_author=None,
            entry_published=None, first_seen=now,
            aliases=(candidate.url,) if canonical != candidate.url else (),
        ))
    return jobs, settled


def judge_processed(processed: Sequence[Processed], since: datetime,
                    sources: dict[str, str] | None = None) -> tuple[list[ArticleRecord], list[Outcome]]:
    """Keep the dated, relevant articles published since `since`; settle the rest."""
    kept: list[ArticleRecord] = []
    settled: list[Outcome] = []
    sources = sources or {}
    for item in processed:
        url = sources.get(item.job_url, item.job_url)
        record = item.record
        if record is None or record.text_source != "page":
            settled.append(Outcome(url, "failed", item.error or item.fallback_reason or "no text"))
        elif record.date_source == "first_seen":
            settled.append(Outcome(url, "old", "no publication date found", record.id))
        elif record.published_at < since:
            settled.append(Outcome(url, "old", f"published {record.published_at:%Y-%m-%d}", record.id))
        elif not record.relevant:
            settled.append(Outcome(url, "irrelevant", f"relevance {record.relevance:.2f}", record.id))
        else:
            kept.append(record)
    return kept, settled


def stored_outcomes(kept: Sequence[ArticleRecord], result: StoreResult,
                    sources: dict[str, str] | None = None) -> list[Outcome]:
    """Return each kept article's outcome: stored, or a duplicate of one already stored."""
    new = set(result.new_ids)
    sources = sources or {}
    return [Outcome(sources.get(r.url, r.url), "stored" if r.id in new else "duplicate", None, r.id)
            for r in kept]

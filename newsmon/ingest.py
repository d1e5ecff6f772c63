"""The network steps of the nightly ingest: poll one feed, fetch one batch of pages.

These are async functions over a `Fetcher`; the Prefect tasks in `flows/nightly.py` wrap them.
Deciding what a feed answer means (304, unchanged body, a week without a full fetch) is
kept here so it reads in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from newsmon.config import FeedConfig, FetchSettings
from newsmon.fetch import Fetcher, FetchError, PageResponse
from newsmon.processing import PageJob
from parsers.feeds import FeedEntry, FeedParseError, body_hash, parse_feed
from parsers.urls import article_id
from warehouse.store import ErrorRecord, FeedState

__all__ = ["FeedPoll", "fetch_jobs", "needs_unconditional_fetch", "plan_jobs", "poll_feed"]


@dataclass(frozen=True)
class FeedPoll:
    """What one feed gave tonight."""

    feed: FeedConfig
    outcome: str  # ok | not_modified | unchanged | failed
    entries: tuple[FeedEntry, ...]
    state: FeedState
    error: ErrorRecord | None = None
    bozo_reason: str | None = None


def needs_unconditional_fetch(state: FeedState | None, now: datetime, after_days: int) -> bool:
    """Tell whether a feed has gone long enough without a full answer to skip its validators."""
    if state is None or state.last_full_fetch_at is None:
        return True
    return now - state.last_full_fetch_at >= timedelta(days=after_days)


async def poll_feed(fetcher: Fetcher, feed: FeedConfig, state: FeedState | None, now: datetime,
                    settings: FetchSettings) -> FeedPoll:
    """Fetch a feed conditionally and parse it when its body changed."""
    previous = state or FeedState(url=feed.url, name=feed.name)
    unconditional = needs_unconditional_fetch(state, now, settings.unconditional_after_days)
    try:
        response = await fetcher.fetch_feed(
            feed.url, etag=previous.etag, last_modified=previous.last_modified,
            unconditional=unconditional,
        )
    except FetchError as exc:
        return _failed(feed, previous, now, "feed", str(exc.reason))
    if response.status == 304:
        return FeedPoll(feed, "not_modified", (), replace(
            previous, name=feed.name, last_polled_at=now, last_status=304,
            consecutive_failures=0, last_error=None))
    digest = body_hash(response.body)
    polled = replace(
        previous, name=feed.name, etag=response.etag, last_modified=response.last_modified,
        last_polled_at=now, last_status=response.status, last_full_fetch_at=now,
        consecutive_failures=0, last_error=None,
    )
    if digest == previous.body_sha256:
        # Servers often ignore validators; an identical body costs no parse.
        return FeedPoll(feed, "unchanged", (), polled)
    try:
        parsed = parse_feed(response.body, response.final_url, response.headers,
                            max_entries=settings.max_entries_per_feed)
    except FeedParseError as exc:
        return _failed(feed, previous, now, "parse", str(exc))
    bozo_reason = parsed.bozo_reason if parsed.bozo else None
    # A damaged feed that still yields entries is used, and the damage recorded.
    damage = None if bozo_reason is None else ErrorRecord(
        url=feed.url, stage="parse", at=now, feed_url=feed.url,
        error=f"feed is malformed, {len(parsed.entries)} entries kept: {bozo_reason}")
    return FeedPoll(feed, "ok", parsed.entries, replace(polled, body_sha256=digest),
                    error=damage, bozo_reason=bozo_reason)


def _failed(feed: FeedConfig, previous: FeedState, now: datetime, stage: str, reason: str) -> FeedPoll:
    state = replace(previous, name=feed.name, last_polled_at=now,
                    consecutive_failures=previous.consecutive_failures + 1, last_error=reason)
    return FeedPoll(feed, "failed", (), state,
                    ErrorRecord(url=feed.url, stage=stage, error=reason, at=now, feed_url=feed.url))


def plan_jobs(polls: Iterable[FeedPoll], known: set[str], now: datetime) -> tuple[list[PageJob], int]:
    """Return the entries to fetch tonight (unseen, one per URL) and how many were already stored."""
    jobs: dict[str, PageJob] = {}
    already = 0
    for poll in polls:
        for entry in poll.entries:
            urls = {entry.url, entry.link}
            if urls & known:
                already += 1
                continue
            if entry.url in jobs:
                continue
            jobs[entry.url] = PageJob(
                article_id=article_id(entry.url),
                url=entry.url,
                feed_url=poll.feed.url,
                feed_name=poll.feed.name,
                guid=entry.guid,
                entry_title=entry.title,
                entry_summary=entry.summary,
                entry_text=entry.content_text or entry.summary,
                entry_author=entry.author,
                entry_published=entry.published_at,
                first_seen=now,
                aliases=tuple(sorted(u for u in urls if u != entry.url)),
            )
    return list(jobs.values()), already


async def fetch_jobs(fetcher: Fetcher, jobs: Sequence[PageJob]) -> list[PageJob]:
    """Fetch the pages of a batch concurrently and attach each body or its error."""
    responses = await fetcher.fetch_pages([job.url for job in jobs])
    fetched: list[PageJob] = []
    for job, response in zip(jobs, responses):
        if isinstance(response, PageResponse):
            # A body cut at the size cap is still extracted; the note makes the cut visible.
            note = (f"body larger than {len(response.body)} bytes, cut there"
                    if response.truncated else None)
            fetched.append(replace(job, body=response.body, final_url=response.final_url,
                                   status=response.status, content_type=response.content_type,
                                   fetch_error=note))
        else:
            fetched.append(replace(job, fetch_error=str(response.reason)))
    return fetched

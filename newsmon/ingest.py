"""The network steps of the nightly ingest: poll one feed, fetch one batch of pages.

These are async functions over a `Fetcher`; the Prefect tasks in `flows/nightly.py` wrap them.
Deciding what a feed answer means (304, unchanged body, a week without a full fetch) is
kept here so it reads in one place.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

from newsmon.config import FeedConfig, FetchSettings
from newsmon.fetch import Fetcher, FetchError, PageResponse
from newsmon.processing import PageJob
from parsers.feeds import FeedEntry, FeedParseError, body_hash, parse_feed
from parsers.urls import article_id
from warehouse.store import ErrorRecord, FeedState

__all__ = ["FeedPoll", "PageFetchLoop", "fetch_jobs", "needs_unconditional_fetch", "plan_jobs", "poll_feed"]

_T = TypeVar("_T")


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


class PageFetchLoop:
    """Fetch a night's batches of pages over one Fetcher, on an event loop in its own thread.

    One Fetcher for the whole night rather than one per batch: robots.txt, DNS answers and
    open connections carry over from batch to batch, so a site is asked for its robots.txt
    once a night and its pages reuse the connections already open. The caller stays
    synchronous: `fetch` returns a future, so the next batch downloads while this one is
    extracted.
    """

    def __init__(self, settings: FetchSettings) -> None:
        self._settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._fetcher: Fetcher | None = None

    def __enter__(self) -> Self:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fetch-pages", daemon=True)
        self._thread.start()
        fetcher = Fetcher(self._settings)
        try:
            self._run(fetcher.__aenter__()).result()
        except BaseException:
            self._stop()
            raise
        self._fetcher = fetcher
        return self

    def fetch(self, jobs: Sequence[PageJob]) -> Future[list[PageJob]]:
        """Start fetching a batch; the future gives each job with its page or its error."""
        if self._fetcher is None:
            raise RuntimeError("use PageFetchLoop inside 'with'")
        return self._run(fetch_jobs(self._fetcher, jobs))

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if self._fetcher is not None:
                self._run(self._close(self._fetcher)).result()
        finally:
            self._fetcher = None
            self._stop()

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> Future[_T]:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    @staticmethod
    async def _close(fetcher: Fetcher) -> None:
        # A night that stops early (an error, Ctrl-C) may leave a batch downloading.
        unfinished = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        await fetcher.__aexit__(None, None, None)

    def _stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
        self._loop = self._thread = None

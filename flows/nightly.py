"""The nightly ingest: poll feeds, fetch new articles, extract, tag, store, record the run.

Tasks are per feed and per batch of articles, never per article: a Prefect task costs
milliseconds and a background API record each, which would dominate a night of thousands of
articles. The extraction processes start while the feeds are still polled, and the batch
loop fetches batch k+1 while batch k is extracted on the process pool.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE as NO_CACHE
from prefect.context import get_run_context
from prefect.utilities.annotations import quote

from newsmon.config import FeedConfig, FetchSettings, Settings, load_settings
from newsmon.fetch import Fetcher
from newsmon.ingest import FeedPoll, PageFetchLoop, fetch_jobs, plan_jobs, poll_feed
from newsmon.processing import (
    PageJob,
    Processed,
    TaggingConfig,
    extraction_pool,
    process_batch,
    start_fork_server,
    start_workers,
)
from newsmon.progress import progress_bar
from newsmon.runners import extraction_runner, run_chunked
from newsmon.writer_lock import nightly_writer
from parsers.themes import load_themes
from warehouse import store
from warehouse.store import ErrorRecord, FeedState, RunCounts

__all__ = ["RunSummary", "nightly_ingest"]


@dataclass
class RunSummary:
    run_id: str
    database: str
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"
    counts: RunCounts = field(default_factory=RunCounts)
    feed_lines: list[str] = field(default_factory=list)
    errors: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"run_id": self.run_id, "status": self.status, "database": self.database,
                **asdict(self.counts), "errors": self.errors}


def _now() -> datetime:
    return datetime.now(UTC)


@task(name="poll-feed", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)
def poll_feed_task(feed: FeedConfig, state: FeedState | None, settings: FetchSettings,
                   now: datetime) -> FeedPoll:
    """Poll one feed (conditional GET, body hash, parse)."""
    # A sync task running its own event loop: Prefect gives every async task run a client
    # of its own, certificate store included, which cost more CPU than the poll itself.
    return asyncio.run(_poll(feed, state, settings, now))


async def _poll(feed: FeedConfig, state: FeedState | None, settings: FetchSettings,
                now: datetime) -> FeedPoll:
    async with Fetcher(settings) as fetcher:
        return await poll_feed(fetcher, feed, state, now, settings)


@task(name="fetch-articles", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)
async def fetch_batch_task(jobs: list[PageJob], settings: FetchSettings) -> list[PageJob]:
    """Fetch one batch of article pages concurrently."""
    return await _fetch_batch(jobs, settings)


async def _fetch_batch(jobs: list[PageJob], settings: FetchSettings) -> list[PageJob]:
    async with Fetcher(settings) as fetcher:
        return await fetch_jobs(fetcher, jobs)


@task(name="extract-and-tag", cache_policy=NO_CACHE)
def extract_and_tag_task(jobs: list[PageJob], tagging: TaggingConfig, workers: int,
                         pool: ProcessPoolExecutor | None = None) -> list[Processed]:
    """Extract, date and tag one batch on the process pool."""
    # The night's pool is passed in (not hashed: no cache) so workers stay warm across batches.
    return process_batch(jobs, tagging, workers, pool)


@task(name="store-batch", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def store_batch_task(database: str, run_id: str, processed: list[Processed],
                     lock_wait: float) -> tuple[store.StoreResult, int, int, int]:
    """Store one batch in one transaction and record its failures."""
    now = _now()
    records = [p.record for p in processed if p.record is not None]
    errors = [ErrorRecord(url=p.job_url, stage="page", error=p.fallback_reason, at=now)
              for p in processed if p.record is not None and p.fallback_reason]
    errors += [ErrorRecord(url=p.job_url, stage="extract", error=p.error or "unknown", at=now)
               for p in processed if p.record is None]
    errors += [ErrorRecord(url=p.job_url, stage="page", error=p.note, at=now)
               for p in processed if p.record is not None and p.note]
    result = store.store_articles(Path(database), records, run_id, errors=errors, lock_wait=lock_wait)
    fallback = sum(1 for p in processed if p.record is not None and p.fallback_reason)
    failed = sum(1 for p in processed if p.record is None)
    return result, fallback, failed, len(errors)


@flow(name="nightly-ingest", log_prints=False)
def nightly_ingest(config_path: str | None = None) -> dict[str, object]:
    """Poll every feed, store tonight's new articles, and record the run."""
    settings = load_settings(config_path)
    warm_up_extraction(settings)
    # Two nights must never write at once; a second run waits, then stops with WriterBusy.
    with nightly_writer(settings.database_path, settings.storage.lock_wait_seconds):
        summary = begin_run(settings)
        tagging = tagging_config(settings)
        workers = pool_workers(settings)
        try:
            with extraction_pool(tagging, workers) as pool:
                # The pool's processes start once a feed lists entries, while the others are
                # still polled: a night with nothing new never starts them.
                polls = poll_all_feeds(settings, summary, on_entries=lambda: start_workers(pool, workers))
                jobs = plan_new_articles(settings, polls, summary)
                ingest_articles(settings, jobs, summary, tagging, pool)
            # Only now may the feeds' new validators be kept: see poll_all_feeds.
            store.save_feed_states(settings.database_path, [p.state for p in polls],
                                   lock_wait=settings.storage.lock_wait_seconds)
            summary.status = "completed"
        except BaseException as exc:
            summary.status = "failed"
            end_run(settings, summary, error=f"{type(exc).__name__}: {exc}")
            raise
        end_run(settings, summary)
    publish_summary(summary)
    return summary.as_dict()


def pool_workers(settings: Settings) -> int:
    """Return how many extraction processes the night keeps (1: it extracts in-process)."""
    return settings.extract.workers if settings.runner.kind == "default" else 1


def warm_up_extraction(settings: Settings) -> None:
    """Start the extraction pool's fork server, whose imports need no one to wait for them."""
    if pool_workers(settings) > 1:
        start_fork_server()


def begin_run(settings: Settings) -> RunSummary:
    """Record the start of a run in `runs`."""
    context = get_run_context()
    flow_run = getattr(context, "flow_run", None)
    summary = RunSummary(run_id=uuid.uuid4().hex[:12], database=str(settings.database_path),
                         started_at=_now())
    store.start_run(settings.database_path, summary.run_id,
                    str(flow_run.id) if flow_run else None, summary.started_at,
                    lock_wait=settings.storage.lock_wait_seconds)
    # Emerging terms skip what the themes already cover, so the stored phrases follow the file.
    themes = load_themes(settings.themes.file or None)
    store.save_theme_phrases(settings.database_path, {t.id: list(t.phrases) for t in themes.themes},
                             lock_wait=settings.storage.lock_wait_seconds)
    return summary


def poll_all_feeds(settings: Settings, summary: RunSummary,
                   on_entries: Callable[[], None] | None = None) -> list[FeedPoll]:
    """Poll each configured feed in its own task and save what they answered.

    `on_entries` is called once, as soon as a feed comes back with entries.
    """
    logger = get_run_logger()
    now = _now()
    states = store.load_feed_states(settings.database_path, [f.url for f in settings.feeds],
                                    lock_wait=settings.storage.lock_wait_seconds)
    futures = [poll_feed_task.submit(feed, states.get(feed.url), settings.fetch, now)
               for feed in settings.feeds]
    polls: list[FeedPoll] = []
    for feed, future in zip(settings.feeds, futures):
        try:
            poll = future.result()
        except Exception as exc:  # noqa: BLE001 - any failure of one feed must not stop the night
            poll = FeedPoll(feed, "failed", (), FeedState(url=feed.url, name=feed.name),
                            ErrorRecord(url=feed.url, stage="feed", error=f"{type(exc).__name__}: {exc}",
                                        at=now, feed_url=feed.url))
        polls.append(poll)
        if on_entries is not None and poll.entries:
            on_entries()
            on_entries = None
        line = f"{feed.name}: {poll.outcome}"
        if poll.outcome == "ok":
            line += f", {len(poll.entries)} entries" + (f" (feed is malformed: {poll.bozo_reason})"
                                                        if poll.bozo_reason else "")
        if poll.error:
            line += f": {poll.error.error}"
        logger.info(line)
        summary.feed_lines.append(line)
    # A run that dies before tonight's articles are stored must see the same entries again,
    # not a 304 or an unchanged body: until the night is done the old validators are kept.
    store.save_feed_states(settings.database_path,
                           [_old_validators(p.state, states.get(p.feed.url)) for p in polls],
                           lock_wait=settings.storage.lock_wait_seconds)
    errors = [p.error for p in polls if p.error]
    store.record_errors(settings.database_path, summary.run_id, errors,
                        lock_wait=settings.storage.lock_wait_seconds)
    summary.errors += len(errors)
    summary.counts = RunCounts(
        feeds_ok=sum(p.outcome == "ok" for p in polls),
        feeds_not_modified=sum(p.outcome in ("not_modified", "unchanged") for p in polls),
        feeds_failed=sum(p.outcome == "failed" for p in polls),
    )
    return polls


def _old_validators(state: FeedState, before: FeedState | None) -> FeedState:
    return replace(state, etag=before.etag if before else None,
                   last_modified=before.last_modified if before else None,
                   body_sha256=before.body_sha256 if before else None,
                   last_full_fetch_at=before.last_full_fetch_at if before else None)


def plan_new_articles(settings: Settings, polls: Sequence[FeedPoll], summary: RunSummary) -> list[PageJob]:
    """Drop entries whose article is already stored, before any fetch."""
    candidates = {url for p in polls for e in p.entries for url in (e.url, e.link)}
    known = store.known_urls(settings.database_path, candidates,
                             lock_wait=settings.storage.lock_wait_seconds)
    jobs, already = plan_jobs(polls, known, _now())
    summary.counts = _add(summary.counts, articles_duplicate=already)
    get_run_logger().info(f"{len(jobs)} new articles to fetch, {already} already stored")
    return jobs


def tagging_config(settings: Settings) -> TaggingConfig:
    """Return what the extraction workers need to know: themes, entities, extraction options."""
    return TaggingConfig(
        themes_file=settings.themes.file or None,
        entities_file=settings.themes.entities_file or None,
        kind=settings.themes.tagger,
        fast_extraction=settings.extract.fast,
        keep_raw_html=settings.storage.keep_raw_html,
    )


def ingest_articles(settings: Settings, jobs: Sequence[PageJob], summary: RunSummary,
                    tagging: TaggingConfig, pool: ProcessPoolExecutor | None) -> None:
    """Fetch, extract, tag and store the new articles batch by batch."""
    size = max(1, settings.extract.batch_size)
    batches = [list(jobs[i:i + size]) for i in range(0, len(jobs), size)]
    if not batches:
        return
    storing = None  # batch k is stored while batch k+1 is extracted; stores stay in order
    # Pages are fetched and extracted outside Prefect tasks: Prefect keeps each task's return
    # value until the flow ends (its run_results map results to states, for dependency
    # tracking), so every batch of page bodies would stay in memory all night. Each page has
    # its own retries (newsmon.fetch) and every failure is recorded per article, so a task's
    # retry would add nothing.
    with (PageFetchLoop(settings.fetch) as pages,
          extraction_runner(settings.runner) as runner,
          progress_bar("articles", len(jobs)) as advance):
        pending = pages.fetch(batches[0])
        for index in range(len(batches)):
            fetched = pending.result()
            if index + 1 < len(batches):
                pending = pages.fetch(batches[index + 1])
            if runner is None:
                processed = process_batch(fetched, tagging, settings.extract.workers, pool)
            else:  # [runner] kind = "dask": the batch is shared out over the cluster's workers
                processed = run_chunked(runner, extract_and_tag_task, fetched, "jobs",
                                        2 * settings.runner.dask_workers, tagging=tagging, workers=1)
            if storing is not None:
                _count_stored(summary, storing.result())
            # quote: Prefect would otherwise walk every record of the batch looking for futures.
            storing = store_batch_task.submit(
                str(settings.database_path), summary.run_id, cast(list[Processed], quote(processed)),
                settings.storage.lock_wait_seconds)
            advance(len(fetched))
        if storing is not None:
            _count_stored(summary, storing.result())


def _count_stored(summary: RunSummary, stored: tuple[store.StoreResult, int, int, int]) -> None:
    result, fallback, failed, errors = stored
    summary.counts = _add(summary.counts, articles_new=result.new, articles_duplicate=result.duplicate,
                          articles_failed=failed, articles_fallback=fallback)
    summary.errors += errors


def _add(counts: RunCounts, **more: int) -> RunCounts:
    values = asdict(counts)
    for key, value in more.items():
        values[key] += value
    return RunCounts(**values)


def end_run(settings: Settings, summary: RunSummary, error: str | None = None) -> None:
    """Record the run's counts and final status."""
    summary.finished_at = _now()
    store.finish_run(settings.database_path, summary.run_id, summary.counts, summary.finished_at,
                     summary.status, error, lock_wait=settings.storage.lock_wait_seconds)


def publish_summary(summary: RunSummary) -> None:
    """Publish the run's summary as a Prefect markdown artifact."""
    c = summary.counts
    lines = [
        f"# Nightly ingest {summary.run_id}: {summary.status}",
        "",
        "| feeds ok | not modified | failed | articles new | duplicate | failed | from feed content |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        (f"| {c.feeds_ok} | {c.feeds_not_modified} | {c.feeds_failed} | {c.articles_new} "
         f"| {c.articles_duplicate} | {c.articles_failed} | {c.articles_fallback} |"),
        "",
        f"{summary.errors} failures recorded in `fetch_errors`. Database: `{summary.database}`.",
        "",
        "## Feeds",
        "",
        *[f"- {line}" for line in summary.feed_lines],
    ]
    create_markdown_artifact(key="nightly-ingest-summary", markdown="\n".join(lines),
                             description=f"Nightly ingest run {summary.run_id}")

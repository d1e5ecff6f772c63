"""Backfill: discover earlier articles in the sites' sitemaps and run them through the night's path.

Bounded (`max_urls` per call, `max_sitemaps` per site), polite (one request at a time per
host, a pause between batches, robots.txt honoured for pages) and resumable: progress lives
in `backfill_sites` / `backfill_urls`, so a second call continues with the URLs still pending.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE as NO_CACHE

from flows.nightly import extract_and_tag_task, fetch_batch_task
from newsmon.backfill import (
    Discovery,
    backfill_sites,
    discover_site,
    judge_processed,
    parse_since,
    plan_candidates,
    polite_fetch_settings,
    stored_outcomes,
    tagging_config,
)
from newsmon.config import FetchSettings, load_settings
from newsmon.fetch import Fetcher
from newsmon.processing import PageJob
from newsmon.writer_lock import nightly_writer
from warehouse import backfill as progress
from warehouse import store
from warehouse.store import ErrorRecord, RunCounts

__all__ = ["backfill", "discover_site_task"]


@dataclass
class _Tally:
    discovered: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    errors: int = 0

    def add(self, outcomes: list[progress.Outcome]) -> None:
        for outcome in outcomes:
            self.outcomes[outcome.status] = self.outcomes.get(outcome.status, 0) + 1


@task(name="discover-site", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)
async def discover_site_task(site: str, settings: FetchSettings, max_sitemaps: int) -> Discovery:
    """Read one site's sitemaps and list its pages."""
    async with Fetcher(settings) as fetcher:
        return await discover_site(fetcher, site, max_sitemaps=max_sitemaps)


@flow(name="backfill", log_prints=False)
def backfill(since: str, config_path: str | None = None, sites: list[str] | None = None,
             max_urls: int = 500, max_sitemaps: int = 50, rediscover: bool = False,
             pause_seconds: float = 1.0) -> dict[str, object]:
    """Store the relevant articles the sites published since a date, from their sitemaps."""
    settings = load_settings(config_path)
    start = parse_since(since)
    database = settings.database_path
    wait = settings.storage.lock_wait_seconds
    fetch_settings = polite_fetch_settings(settings.fetch)
    roots = backfill_sites(settings, sites or ())
    logger = get_run_logger()
    tally = _Tally()
    run_id = "backfill-" + uuid.uuid4().hex[:8]
    with nightly_writer(database, wait):
        store.start_run(database, run_id, None, datetime.now(UTC), lock_wait=wait)
        read = progress.discovered_sites(database, lock_wait=wait)
        for site in roots:
            if site in read and not rediscover:
                logger.info(f"{site}: sitemaps already read, resuming its pending URLs")
                continue
            # Prefect types an async task's result as its coroutine; it is the awaited value.
            found = cast(Discovery, discover_site_task.submit(site, fetch_settings, max_sitemaps).result())
            added = progress.record_discovery(
                database, site, start.date(), found.sitemaps_read,
                [(e.url, e.lastmod) for e in found.urls], datetime.now(UTC), lock_wait=wait)
            tally.discovered += added
            line = f"{site}: {found.sitemaps_read} sitemaps, {len(found.urls)} pages, {added} new"
            logger.info(line + "".join(f"; {error}" for error in found.errors))
        candidates = progress.pending_urls(database, roots, start, max_urls, lock_wait=wait)
        logger.info(f"{len(candidates)} pending URLs to consider (at most {max_urls})")
        size = max(1, settings.extract.batch_size)
        tagging = tagging_config(settings)
        for index in range(0, len(candidates), size):
            if index:
                time.sleep(pause_seconds)
            now = datetime.now(UTC)
            jobs, settled = plan_candidates(candidates[index:index + size], start, now)
            sources = {job.url: (job.aliases[0] if job.aliases else job.url) for job in jobs}
            if jobs:
                fetched = cast(list[PageJob], fetch_batch_task.submit(jobs, fetch_settings).result())
                processed = extract_and_tag_task(fetched, tagging, settings.extract.workers)
                kept, judged = judge_processed(processed, start, sources)
                errors = [ErrorRecord(url=o.url, stage="page", error=o.detail or "failed", at=now)
                          for o in judged if o.status == "failed"]
                result = store.store_articles(database, kept, run_id, errors=errors, lock_wait=wait)
                settled += judged + stored_outcomes(kept, result, sources)
                tally.errors += len(errors)
            progress.record_outcomes(database, settled, now, lock_wait=wait)
            tally.add(settled)
        counts = RunCounts(articles_new=tally.outcomes.get("stored", 0),
                           articles_duplicate=tally.outcomes.get("duplicate", 0)
                           + tally.outcomes.get("known", 0),
                           articles_failed=tally.outcomes.get("failed", 0))
        store.finish_run(database, run_id, counts, datetime.now(UTC), "completed",
                         lock_wait=wait)
        remaining = progress.pending_urls(database, roots, start, 1, lock_wait=wait)
    summary: dict[str, object] = {
        "run_id": run_id, "since": start.date().isoformat(), "sites": roots,
        "discovered": tally.discovered, "considered": len(candidates), "errors": tally.errors,
        "more_pending": bool(remaining), **{k: tally.outcomes.get(k, 0) for k in
                                            ("stored", "duplicate", "known", "old", "irrelevant", "failed")},
    }
    _publish(summary, Path(database))
    return summary


def _publish(summary: dict[str, object], database: Path) -> None:
    rows = ["stored", "duplicate", "known", "old", "irrelevant", "failed"]
    lines = [
        f"# Backfill {summary['run_id']} since {summary['since']}",
        "",
        f"{summary['discovered']} URLs discovered, {summary['considered']} considered.",
        "",
        "| " + " | ".join(rows) + " |",
        "|" + "---:|" * len(rows),
        "| " + " | ".join(str(summary[r]) for r in rows) + " |",
        "",
        ("More URLs are pending: run the backfill again to continue." if summary["more_pending"]
         else "Nothing left pending."),
        f"Database: `{database}`.",
    ]
    create_markdown_artifact(key="backfill-summary", markdown="\n".join(lines),
                             description=f"Backfill {summary['run_id']}")

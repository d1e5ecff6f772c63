"""What `newsmon status` reports: the last runs, failing feeds, stale feeds, the database's size.

Everything is read through one short read-only connection, so `status` works while the
nightly run holds the file between batches (it waits at most one batch).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from warehouse.db import connect

__all__ = [
    "DatabaseSize",
    "FailingFeed",
    "RunRow",
    "StaleFeed",
    "StatusReport",
    "database_size",
    "failing_feeds",
    "last_runs",
    "stale_feeds",
    "status_report",
]


@dataclass(frozen=True)
class RunRow:
    run_id: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    feeds_ok: int
    feeds_not_modified: int
    feeds_failed: int
    articles_new: int
    articles_duplicate: int
    articles_failed: int
    articles_fallback: int
    errors: int  # rows in fetch_errors for this run
    error: str | None


@dataclass(frozen=True)
class FailingFeed:
    url: str
    name: str | None
    consecutive_failures: int
    last_error: str | None
    last_polled_at: datetime | None


@dataclass(frozen=True)
class StaleFeed:
    url: str
    name: str | None
    last_new_at: datetime | None  # None: the feed has never brought an article
    days: float | None  # days since last_new_at


@dataclass(frozen=True)
class DatabaseSize:
    file_bytes: int  # the database file plus its write-ahead log on disk
    used_bytes: int  # blocks in use inside the file
    articles: int
    pages: int


@dataclass(frozen=True)
class StatusReport:
    database: str
    runs: tuple[RunRow, ...]
    failing: tuple[FailingFeed, ...]
    stale: tuple[StaleFeed, ...]
    size: DatabaseSize
    failing_after: int
    stale_days: int


_RUNS_SQL = """
SELECT r.run_id, r.started_at, r.finished_at, r.status, r.feeds_ok, r.feeds_not_modified,
       r.feeds_failed, r.articles_new, r.articles_duplicate, r.articles_failed,
       r.articles_fallback,
       (SELECT count(*) FROM fetch_errors e WHERE e.run_id = r.run_id) AS errors,
       r.error
FROM runs r
ORDER BY r.started_at DESC
LIMIT ?
"""

_FAILING_SQL = """
SELECT url, name, consecutive_failures, last_error, last_polled_at
FROM feeds
WHERE consecutive_failures >= ?
ORDER BY consecutive_failures DESC, url
"""

# A feed's last new article is the later of what the poll recorded and what the articles
# table shows: older databases never set last_new_entry_at.
_STALE_SQL = """
WITH latest AS (
    SELECT feed_url, max(fetched_at) AS last_article_at FROM articles GROUP BY feed_url
)
SELECT f.url, f.name, greatest(f.last_new_entry_at, l.last_article_at) AS last_new_at
FROM feeds f LEFT JOIN latest l ON l.feed_url = f.url
WHERE f.last_polled_at IS NOT NULL
  AND (greatest(f.last_new_entry_at, l.last_article_at) IS NULL
       OR greatest(f.last_new_entry_at, l.last_article_at) < ?)
ORDER BY last_new_at NULLS FIRST, f.url
"""


def _runs(con: duckdb.DuckDBPyConnection, limit: int) -> list[RunRow]:
    return [RunRow(*row) for row in con.execute(_RUNS_SQL, [limit]).fetchall()]


def _failing(con: duckdb.DuckDBPyConnection, nights: int) -> list[FailingFeed]:
    return [FailingFeed(*row) for row in con.execute(_FAILING_SQL, [max(1, nights)]).fetchall()]


def _stale(con: duckdb.DuckDBPyConnection, days: int, now: datetime) -> list[StaleFeed]:
    rows = con.execute(_STALE_SQL, [now - timedelta(days=days)]).fetchall()
    return [StaleFeed(url, name, last, (now - last).total_seconds() / 86400 if last else None)
            for url, name, last in rows]


def _size(con: duckdb.DuckDBPyConnection, path: Path) -> DatabaseSize:
    block_size, used_blocks = con.execute(
        "SELECT block_size, used_blocks FROM pragma_database_size()"
    ).fetchone() or (0, 0)
    articles, pages = con.execute(
        "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM pages)"
    ).fetchone() or (0, 0)
    wal = path.with_name(path.name + ".wal")
    on_disk = os.stat(path).st_size + (os.stat(wal).st_size if wal.exists() else 0)
    return DatabaseSize(file_bytes=on_disk, used_bytes=int(block_size) * int(used_blocks),
                        articles=int(articles), pages=int(pages))


def last_runs(path: Path, limit: int = 10, *, lock_wait: float = 30.0) -> list[RunRow]:
    """Return the latest runs, newest first, with their counts and error rows."""
    with connect(path, read_only=True, lock_wait_seconds=lock_wait, timezone="UTC") as con:
        return _runs(con, limit)


def failing_feeds(path: Path, nights: int = 3, *, lock_wait: float = 30.0) -> list[FailingFeed]:
    """Return feeds that failed at least `nights` polls in a row, worst first."""
    with connect(path, read_only=True, lock_wait_seconds=lock_wait, timezone="UTC") as con:
        return _failing(con, nights)


def stale_feeds(path: Path, days: int = 14, *, now: datetime | None = None,
                lock_wait: float = 30.0) -> list[StaleFeed]:
    """Return polled feeds with no new article in the last `days` days (never first)."""
    with connect(path, read_only=True, lock_wait_seconds=lock_wait, timezone="UTC") as con:
        return _stale(con, days, now or datetime.now(UTC))


def database_size(path: Path, *, lock_wait: float = 30.0) -> DatabaseSize:
    """Return the database's size on disk and in use, and its article and page counts."""
    with connect(path, read_only=True, lock_wait_seconds=lock_wait) as con:
        return _size(con, Path(path))


def status_report(path: Path, *, runs: int = 10, failing_after: int = 3, stale_days: int = 14,
                  now: datetime | None = None, lock_wait: float = 30.0) -> StatusReport:
    """Gather everything `newsmon status` prints."""
    path = Path(path)
    with connect(path, read_only=True, lock_wait_seconds=lock_wait, timezone="UTC") as con:
        return StatusReport(
            database=str(path),
            runs=tuple(_runs(con, runs)),
            failing=tuple(_failing(con, failing_after)),
            stale=tuple(_stale(con, stale_days, now or datetime.now(UTC))),
            size=_size(con, path),
            failing_after=failing_after,
            stale_days=stale_days,
        )

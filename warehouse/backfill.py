"""The backfill's progress: sites whose sitemaps were read, and each candidate URL's fate.

A backfill that stops (Ctrl-C, a crash, `--max-urls` reached) resumes from these tables:
sites already read are not read again, and only `pending` URLs are fetched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse.db import connect_during_run

__all__ = [
    "Candidate",
    "Outcome",
    "discovered_sites",
    "pending_urls",
    "progress_counts",
    "record_discovery",
    "record_outcomes",
]

_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Candidate:
    url: str
    site: str
    lastmod: datetime | None
    known: bool  # already leads to a stored article


@dataclass(frozen=True)
class Outcome:
    url: str
    status: str  # stored | duplicate | known | old | irrelevant | failed
    detail: str | None = None
    article_id: str | None = None


def discovered_sites(path: Path, *, lock_wait: float = 30.0) -> dict[str, date]:
    """Return the sites whose sitemaps were already read, with the `since` they were read for."""
    with connect_during_run(path, lock_wait_seconds=lock_wait) as con:
        return {site: since for site, since in con.execute("SELECT site, since FROM backfill_sites").fetchall()}


def record_discovery(path: Path, site: str, since: date, sitemaps: int,
                     urls: Sequence[tuple[str, datetime | None]], at: datetime,
                     *, lock_wait: float = 30.0) -> int:
    """Record a site's sitemap reading and queue its URLs; return how many were new."""
    staged = pa.table({
        "url": pa.array([u for u, _ in urls], pa.string()),
        "lastmod": pa.array([m for _, m in urls], _TS),
    })
    with connect_during_run(path, lock_wait_seconds=lock_wait) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            con.register("staged_urls", staged)
            before = _count(con)
            con.execute(
                """INSERT INTO backfill_urls (url, site, lastmod, status, discovered_at)
                   SELECT DISTINCT ON (url) url, ?, lastmod, 'pending', ? FROM staged_urls
                   ON CONFLICT DO NOTHING""",
                [site, at],
            )
            added = _count(con) - before
            con.execute(
                """INSERT INTO backfill_sites (site, since, discovered_at, sitemaps, urls)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (site) DO UPDATE SET since = least(backfill_sites.since, excluded.since),
                       discovered_at = excluded.discovered_at, sitemaps = excluded.sitemaps,
                       urls = excluded.urls""",
                [site, since, at, sitemaps, len(urls)],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return added


def _count(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT count(*) FROM backfill_urls").fetchone()
    return int(row[0]) if row else 0


def pending_urls(path: Path, sites: Sequence[str], since: datetime, limit: int,
                 *, lock_wait: float = 30.0) -> list[Candidate]:
    """Return up to `limit` pending URLs of the sites not known to be older than `since`, newest first."""
    with connect_during_run(path, lock_wait_seconds=lock_wait) as con:
        rows = con.execute(
            """SELECT b.url, b.site, b.lastmod,
                      EXISTS (SELECT 1 FROM article_urls u WHERE u.url = b.url) AS known
               FROM backfill_urls b
               WHERE b.status = 'pending' AND list_contains(?, b.site)
                 AND (b.lastmod IS NULL OR b.lastmod >= ?)
               ORDER BY b.lastmod DESC NULLS LAST, b.url
               LIMIT ?""",
            [list(sites), since, limit],
        ).fetchall()
    return [Candidate(*row) for row in rows]


def record_outcomes(path: Path, outcomes: Sequence[Outcome], at: datetime,
                    *, lock_wait: float = 30.0) -> None:
    """Record what became of a batch of URLs."""
    if not outcomes:
        return
    staged = pa.table({
        "url": pa.array([o.url for o in outcomes], pa.string()),
        "status": pa.array([o.status for o in outcomes], pa.string()),
        "detail": pa.array([o.detail for o in outcomes], pa.string()),
        "article_id": pa.array([o.article_id for o in outcomes], pa.string()),
    })
    with connect_during_run(path, lock_wait_seconds=lock_wait) as con:
        con.register("staged_outcomes", staged)
        con.execute(
            """UPDATE backfill_urls AS b SET status = s.status, detail = s.detail,
                   article_id = s.article_id, done_at = ?
               FROM staged_outcomes s WHERE b.url = s.url""",
            [at],
        )


def progress_counts(path: Path, *, lock_wait: float = 30.0) -> dict[str, int]:
    """Return how many candidate URLs are in each status."""
    with connect_during_run(path, lock_wait_seconds=lock_wait) as con:
        rows = con.execute("SELECT status, count(*) FROM backfill_urls GROUP BY status").fetchall()
    return {status: int(count) for status, count in rows}

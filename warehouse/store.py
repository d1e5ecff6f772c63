"""The nightly ingest's writes: runs, feed state, articles in batches, fetch errors.

Every write opens the database for one short transaction and closes it again, so a reader
(`newsmon query`) waits at most one batch. Articles are staged as an Arrow table and inserted
with set-based SQL; a batch is all-or-nothing, so a crash loses at most the batch in flight.
The night's writes leave their rows in DuckDB's write-ahead log (committed and durable) until
it reaches the checkpoint threshold, and `finish_run` checkpoints: rows then reach the file in
a few large row groups per night rather than one small one per batch (see warehouse.db).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse.db import connect, connect_during_run, single_threaded
from warehouse.keys import require_unique
from warehouse.records import (
    ArticleRecord,
    EntityRow,
    ErrorRecord,
    FeedState,
    RunCounts,
    StoreResult,
    ThemeRow,
)

__all__ = [
    "ArticleRecord",
    "EntityRow",
    "ErrorRecord",
    "FeedState",
    "RunCounts",
    "StoreResult",
    "ThemeRow",
    "finish_run",
    "known_urls",
    "load_feed_states",
    "record_errors",
    "save_feed_states",
    "save_theme_phrases",
    "start_run",
    "store_articles",
    "stored_pages",
    "update_extractions",
]


def start_run(path: Path, run_id: str, flow_run_id: str | None, started_at: datetime,
              *, lock_wait: float = 30.0) -> None:
    """Record a run as started; it stays 'running' with no finish time if the process dies."""
    with connect_during_run(path, lock_wait_seconds=lock_wait) as con:
        con.execute(
            "INSERT INTO runs (run_id, flow_run_id, started_at, status) VALUES (?, ?, ?, 'running')"
            " ON CONFLICT DO NOTHING",
            [run_id, flow_run_id, started_at],
        )


def finish_run(path: Path, run_id: str, counts: RunCounts, finished_at: datetime, status: str,
               error: str | None = None, *, lock_wait: float = 30.0) -> None:
    """Record a run's counts, end time and final status, and checkpoint the run's writes."""
    # The one write of a run that checkpoints as it closes: the file alone then holds the run.
    with connect(path, lock_wait_seconds=lock_wait) as con:
        con.execute(
            """UPDATE runs SET finished_at = ?, status = ?, error = ?,
                   feeds_ok = ?, feeds_not_modified = ?, feeds_failed = ?,
                   articles_new = ?, articles_duplicate = ?, articles_failed = ?,
                   articles_fallback = ?
               WHERE run_id = ?""",
            [finished_at, status, error, counts.feeds_ok, counts.feeds_not_modified,
             counts.feeds_failed, counts.articles_new, counts.articles_duplicate,
             counts.articles_failed, counts.articles_fallback, run_id],
        )


_FEED_COLUMNS = [
    "url", "name", "etag", "last_modified", "body_sha256", "last_polled_at", "last_status",
    "last_full_fetch_at", "last_new_entry_at", "consecutive_failures", "last_error",
]


def load_feed_states(path: Path, urls: Sequence[str], *, lock_wait: float = 30.0) -> dict[str, FeedState]:
    """Return the stored state of the given feeds (feeds never polled are absent)."""
    if not urls:
        return {}
    with connect_during_run(path, lock_wait_seconds=lock_wait) as con:
        rows = con.execute(
            f"SELECT {', '.join(_FEED_COLUMNS)} FROM feeds WHERE list_contains(?, url)", [list(urls)]
        ).fetchall()
    return {row[0]: FeedState(*row) for row in rows}


def save_feed_states(path: Path, states: Iterable[FeedState], *, lock_wait: float = 30.0) -> None:
    """Upsert the feeds' state after a poll."""
    table = pa.Table.from_pylist(
        [{column: getattr(state, column) for column in _FEED_COLUMNS} for state in states],
        schema=pa.schema([
            ("url", pa.string()), ("name", pa.string()), ("etag", pa.string()),
            ("last_modified", pa.string()), ("body_sha256", pa.string()),
            ("last_polled_at", pa.timestamp("us", tz="UTC")), ("last_status", pa.int32()),
            ("last_full_fetch_at", pa.timestamp("us", tz="UTC")),
            ("last_new_entry_at", pa.timestamp("us", tz="UTC")),
            ("consecutive_failures", pa.int32()), ("last_error", pa.string()),
        ]),
    )
    if table.num_rows == 0:
        return
    updates = ", ".join(f"{c} = excluded.{c}" for c in _FEED_COLUMNS[1:])
    with connect_during_run(path, lock_wait_seconds=lock_wait) as con:
        con.register("staged_feeds", table)
        con.execute(
            f"INSERT INTO feeds SELECT {', '.join(_FEED_COLUMNS)} FROM staged_feeds"
            f" ON CONFLICT (url) DO UPDATE SET {updates}"
        )


def known_urls(path: Path, urls: Iterable[str], *, lock_wait: float = 30.0) -> set[str]:
    """Return those of the URLs that already lead to a stored article."""
    wanted = pa.table({"url": pa.array(sorted(set(urls)), pa.string())})
    if wanted.num_rows == 0:
        return set()
    with connect_during_run(path, lock_wait_seconds=lock_wait) as con:
        con.register("wanted", wanted)
        rows = con.execute("SELECT w.url FROM wanted w JOIN article_urls u USING (url)").fetchall()
    return {row[0] for row in rows}


_ARTICLE_COLUMNS = [
    "id", "url", "title", "source", "published_at", "date_source", "fetched_at", "language",
    "author", "text", "text_source", "relevant", "relevance", "themes_version", "feed_url", "guid",
    "summary", "content_hash",
]
_TS = pa.timestamp("us", tz="UTC")
_ARTICLE_SCHEMA = pa.schema([
    ("id", pa.string()), ("url", pa.string()), ("title", pa.string()), ("source", pa.string()),
    ("published_at", _TS), ("date_source", pa.string()), ("fetched_at", _TS),
    ("language", pa.string()), ("author", pa.string()), ("text", pa.string()),
    ("text_source", pa.string()), ("relevant", pa.bool_()), ("relevance", pa.float64()),
    ("themes_version", pa.string()), ("feed_url", pa.string()), ("guid", pa.string()),
    ("summary", pa.string()), ("content_hash", pa.string()),
])


def store_articles(path: Path, records: Sequence[ArticleRecord], run_id: str | None,
                   *, errors: Sequence[ErrorRecord] = (), lock_wait: float = 30.0) -> StoreResult:
    """Store a batch and its failures in one transaction.

    An article whose URL or text is already stored becomes an alias of the stored one.
    """
    # Within the batch, keep the first record per id and per content hash.
    seen_ids: set[str] = set()
    seen_hashes: dict[str, str] = {}
    unique: list[ArticleRecord] = []
    aliases: list[tuple[str, str]] = []
    for record in records:
        if record.id in seen_ids:
            continue
        if record.content_hash in seen_hashes:
            aliases.append((record.url, seen_hashes[record.content_hash]))
            aliases.extend((alias, seen_hashes[record.content_hash]) for alias in record.aliases)
            seen_ids.add(record.id)
            continue
        seen_ids.add(record.id)
        seen_hashes[record.content_hash] = record.id
        unique.append(record)
    if not unique and not aliases:
        record_errors(path, run_id, errors, lock_wait=lock_wait)
        return StoreResult(new=0, duplicate=0)

    staged = pa.Table.from_pylist(
        [{c: getattr(r, c) for c in _ARTICLE_COLUMNS} | {"run_id": run_id} for r in unique],
        schema=_ARTICLE_SCHEMA.append(pa.field("run_id", pa.string())),
    )
    with connect_during_run(path, lock_wait_seconds=lock_wait) as con, single_threaded(con):
        con.execute("BEGIN TRANSACTION")
        try:
            con.register("staged_articles", staged)
            existing = _stored_matches(con)
            new_records = [r for r in unique if r.id not in existing]
            for record in unique:
                target = existing.get(record.id)
                if target is not None:
                    aliases.append((record.url, target))
                    aliases.extend((alias, target) for alias in record.aliases)
            con.execute(
                f"""INSERT INTO articles ({', '.join(_ARTICLE_COLUMNS)}, run_id)
                    SELECT {', '.join(_ARTICLE_COLUMNS)}, run_id FROM staged_articles
                    WHERE NOT list_contains(?, id)""",
                [list(existing)],
            )
            _insert_children(con, new_records, aliases)
            # In the same transaction: each open replays the WAL the night has written so far.
            _insert_errors(con, run_id, errors)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    duplicate = len(records) - len(new_records)
    return StoreResult(new=len(new_records), duplicate=duplicate,
                       new_ids=tuple(r.id for r in new_records))


def _stored_matches(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    # Two equi-joins rather than one join on `id = ... OR content_hash = ...`, which DuckDB
    # can only run as a nested loop over every stored article. Same URL wins over same text.
    rows = con.execute(
        """SELECT s.id, a.id, 1 AS by_id FROM staged_articles s JOIN articles a ON a.content_hash = s.content_hash
           UNION ALL
           SELECT s.id, a.id, 2 FROM staged_articles s JOIN articles a ON a.id = s.id
           ORDER BY 3, 2"""
    ).fetchall()
    return {staged: stored for staged, stored, _ in rows}


def _insert_children(con: duckdb.DuckDBPyConnection, new_records: Sequence[ArticleRecord],
                     aliases: Sequence[tuple[str, str]]) -> None:
    urls = [(r.url, r.id) for r in new_records]
    urls += [(alias, r.id) for r in new_records for alias in r.aliases]
    urls += list(aliases)
    if urls:
        con.register("staged_urls", pa.table({
            "url": pa.array([u for u, _ in urls], pa.string()),
            "article_id": pa.array([a for _, a in urls], pa.string()),
        }))
        # A URL already stored keeps the article it leads to.
        con.execute(
            "INSERT INTO article_urls SELECT DISTINCT ON (url) url, article_id FROM staged_urls s"
            " WHERE NOT EXISTS (SELECT 1 FROM article_urls u WHERE u.url = s.url)"
        )
    themes = [
        {"article_id": r.id, "url": r.url, "theme": t.theme, "score": t.score,
         "evidence": t.evidence, "themes_version": r.themes_version}
        for r in new_records for t in r.themes
    ]
    if themes:
        con.register("staged_themes", pa.Table.from_pylist(themes))
        require_unique(con, "staged_themes", "article_themes")
        con.execute(
            "INSERT INTO article_themes (article_id, url, theme, score, evidence, themes_version)"
            " SELECT article_id, url, theme, score, evidence, themes_version FROM staged_themes"
        )
    entities = [
        {"article_id": r.id, "entity": e.entity, "kind": e.kind, "mentions": e.mentions}
        for r in new_records for e in r.entities
    ]
    if entities:
        con.register("staged_entities", pa.Table.from_pylist(entities))
        require_unique(con, "staged_entities", "article_entities")
        con.execute(
            "INSERT INTO article_entities (article_id, entity, kind, mentions)"
            " SELECT article_id, entity, kind, mentions FROM staged_entities"
        )
    pages = [
        {"article_id": r.id, "url": r.final_url or r.url, "status": r.status,
         "content_type": r.content_type, "html_zstd": r.html_zstd, "fetched_at": r.fetched_at}
        for r in new_records if r.html_zstd is not None
    ]
    if pages:
        con.register("staged_pages", pa.Table.from_pylist(pages, schema=pa.schema([
            ("article_id", pa.string()), ("url", pa.string()), ("status", pa.int32()),
            ("content_type", pa.string()), ("html_zstd", pa.binary()), ("fetched_at", _TS),
        ])))
        require_unique(con, "staged_pages", "pages")
        con.execute(
            "INSERT INTO pages (article_id, url, status, content_type, html_zstd, fetched_at)"
            " SELECT article_id, url, status, content_type, html_zstd, fetched_at FROM staged_pages"
        )


def record_errors(path: Path, run_id: str | None, errors: Sequence[ErrorRecord],
                  *, lock_wait: float = 30.0) -> None:
    """Append failures to fetch_errors, one row each."""
    if not errors:
        return
    with connect_during_run(path, lock_wait_seconds=lock_wait) as con:
        _insert_errors(con, run_id, errors)


def _insert_errors(con: duckdb.DuckDBPyConnection, run_id: str | None, errors: Sequence[ErrorRecord]) -> None:
    if not errors:
        return
    con.register("staged_errors", pa.Table.from_pylist(
        [{"run_id": run_id, "occurred_at": e.at, "url": e.url, "feed_url": e.feed_url, "stage": e.stage,
          "error": e.error} for e in errors],
        schema=pa.schema([("run_id", pa.string()), ("occurred_at", _TS), ("url", pa.string()),
                          ("feed_url", pa.string()), ("stage", pa.string()), ("error", pa.string())]),
    ))
    con.execute("INSERT INTO fetch_errors SELECT run_id, occurred_at, url, feed_url, stage, error FROM staged_errors")


def stored_pages(path: Path, *, after_id: str = "", limit: int = 200,
                 lock_wait: float = 30.0) -> list[tuple[str, str, str | None, bytes, datetime]]:
    """Return a page of stored raw HTML: (article_id, url, content_type, html_zstd, fetched_at)."""
    with connect(path, lock_wait_seconds=lock_wait) as con:
        rows = con.execute(
            "SELECT article_id, url, content_type, html_zstd, fetched_at FROM pages"
            " WHERE article_id > ? AND html_zstd IS NOT NULL ORDER BY article_id LIMIT ?",
            [after_id, limit],
        ).fetchall()
    return [(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]


def update_extractions(path: Path, rows: Sequence[dict[str, object]], *, lock_wait: float = 30.0) -> int:
    """Replace the extracted fields of stored articles (reextract): text, title, author, language, source."""
    if not rows:
        return 0
    table = pa.Table.from_pylist(list(rows), schema=pa.schema([
        ("id", pa.string()), ("title", pa.string()), ("author", pa.string()),
        ("language", pa.string()), ("source", pa.string()), ("text", pa.string()),
    ]))
    with connect(path, lock_wait_seconds=lock_wait, vacuum=True) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            con.register("staged_extractions", table)
            con.execute(
                """UPDATE articles AS a SET
                       title = coalesce(s.title, a.title), author = coalesce(s.author, a.author),
                       language = coalesce(s.language, a.language), source = coalesce(s.source, a.source),
                       text = s.text, text_source = 'page'
                   FROM staged_extractions s WHERE a.id = s.id AND length(s.text) > 0"""
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return table.num_rows


def save_theme_phrases(path: Path, phrases: Mapping[str, Iterable[str]], *,
                       lock_wait: float = 30.0) -> int:
    """Store the themes' key phrases, which `emerging_terms` leaves out; return how many."""
    from warehouse.queries import refresh_theme_phrases

    with connect_during_run(path, lock_wait_seconds=lock_wait) as con:
        return refresh_theme_phrases(con, phrases)

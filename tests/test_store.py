"""Warehouse writes on a real DuckDB file: batches, dedup by URL and by content, migrations."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from warehouse.db import applied_migrations, available_migrations, connect
from warehouse.store import (
    ArticleRecord,
    EntityRow,
    ErrorRecord,
    FeedState,
    RunCounts,
    ThemeRow,
    finish_run,
    known_urls,
    load_feed_states,
    record_errors,
    save_feed_states,
    start_run,
    store_articles,
)

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def record(n: int, text: str | None = None, **changes: object) -> ArticleRecord:
    base = ArticleRecord(
        id=f"id{n:04d}", url=f"https://news.example/a/{n}", title=f"Title {n}", source="Example",
        published_at=NOW, date_source="feed", fetched_at=NOW, language="en", author=None,
        text=text or f"Body of article {n} about Llama.", text_source="page", relevant=True,
        relevance=0.9, themes_version="v1", feed_url="https://news.example/feed", guid=str(n),
        summary=None, content_hash=f"hash-{text or n}",
        themes=(ThemeRow("licensing-and-openness", 0.8, "The licence says..."),),
        entities=(EntityRow("Llama", "model", 2),), html_zstd=b"\x28\xb5\x2f\xfd",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def counts(db: Path) -> tuple[int, int, int, int, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute(
            "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM article_urls),"
            " (SELECT count(*) FROM article_themes), (SELECT count(*) FROM article_entities),"
            " (SELECT count(*) FROM pages)").fetchone()
        assert row is not None
        return row
    finally:
        con.close()


def test_migrations_recorded_once(db_path: Path) -> None:
    with connect(db_path) as con:
        first = applied_migrations(con)
    with connect(db_path) as con:
        assert applied_migrations(con) == first
    assert first == [v for v, _, _ in available_migrations()]


def test_batch_is_stored_once_and_rerun_is_idempotent(db_path: Path) -> None:
    batch = [record(i) for i in range(5)]
    result = store_articles(db_path, batch, "run1")
    assert (result.new, result.duplicate) == (5, 0)
    assert counts(db_path) == (5, 5, 5, 5, 5)
    again = store_articles(db_path, batch, "run2")
    assert (again.new, again.duplicate) == (0, 5)
    assert counts(db_path) == (5, 5, 5, 5, 5)


def test_same_text_under_two_urls_is_stored_once(db_path: Path) -> None:
    store_articles(db_path, [record(1, text="Same wire story")], "r")
    twin = record(2, text="Same wire story")
    result = store_articles(db_path, [twin, record(3, text="Same wire story")], "r")
    assert result.new == 0 and result.duplicate == 2
    # The other URLs now lead to the stored article, so they are never fetched.
    assert known_urls(db_path, [twin.url, record(3).url, "https://other"]) == {twin.url, record(3).url}
    assert counts(db_path)[0] == 1


def test_aliases_are_known(db_path: Path) -> None:
    store_articles(db_path, [record(1, aliases=("https://news.google.com/rss/articles/x",))], "r")
    assert known_urls(db_path, ["https://news.google.com/rss/articles/x"]) == {
        "https://news.google.com/rss/articles/x"}


def test_failed_batch_leaves_nothing_behind(db_path: Path) -> None:
    store_articles(db_path, [record(1)], "r")
    bad = [record(2), record(3, themes=(ThemeRow("x", 0.5, "e"), ThemeRow("x", 0.6, "e")))]
    failure = ErrorRecord("https://news.example/a/9", "extract", "no text", NOW)
    with pytest.raises(duckdb.ConstraintException):
        store_articles(db_path, bad, "r", errors=[failure])
    # The whole batch rolled back, its failures with it: article 2 is not half-stored.
    assert counts(db_path) == (1, 1, 1, 1, 1)
    assert _errors(db_path) == []
    assert store_articles(db_path, [record(2)], "r", errors=[failure]).new == 1
    assert _errors(db_path) == [("https://news.example/a/9", "extract", "no text")]
    # A batch whose pages all failed still records its failures.
    assert store_articles(db_path, [], "r", errors=[replace(failure, url="u")]).new == 0
    assert len(_errors(db_path)) == 2


def _errors(db: Path) -> list[tuple[str, str, str]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT url, stage, error FROM fetch_errors ORDER BY url").fetchall()
    finally:
        con.close()


def test_runs_feeds_and_errors(db_path: Path) -> None:
    start_run(db_path, "r1", None, NOW)
    con = duckdb.connect(str(db_path), read_only=True)
    assert con.execute("SELECT status, finished_at FROM runs").fetchall() == [("running", None)]
    con.close()
    finish_run(db_path, "r1", RunCounts(feeds_ok=2, articles_new=7), NOW, "completed")
    save_feed_states(db_path, [FeedState(url="https://f/1", name="F", etag='"x"', last_status=200)])
    save_feed_states(db_path, [FeedState(url="https://f/1", name="F", etag='"y"', last_status=304)])
    assert load_feed_states(db_path, ["https://f/1"])["https://f/1"].etag == '"y"'
    record_errors(db_path, "r1", [ErrorRecord("https://f/2", "feed", "HTTP 500 after 3 attempts", NOW)])
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        assert con.execute("SELECT status, feeds_ok, articles_new FROM runs").fetchall() == [
            ("completed", 2, 7)]
        assert con.execute("SELECT url, stage, error FROM fetch_errors").fetchall() == [
            ("https://f/2", "feed", "HTTP 500 after 3 attempts")]
    finally:
        con.close()


def test_stored_url_wins_over_stored_text(db_path: Path) -> None:
    store_articles(db_path, [record(1, text="First story"), record(2, text="Second story")], "r")
    # Article 1's URL again, now with article 2's text: it stays an alias of article 1.
    again = record(1, text="Second story", aliases=("https://news.example/amp/1",))
    assert store_articles(db_path, [again], "r").duplicate == 1
    assert store_articles(db_path, [record(3, text="Second story")], "r").duplicate == 1
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        assert con.execute("SELECT url, article_id FROM article_urls ORDER BY url").fetchall() == [
            ("https://news.example/a/1", "id0001"), ("https://news.example/a/2", "id0002"),
            ("https://news.example/a/3", "id0002"), ("https://news.example/amp/1", "id0001")]
    finally:
        con.close()
    assert counts(db_path)[0] == 2


def _storage(db: Path, table: str) -> dict[int, set[int]]:
    """Return the blocks that hold each row group of a table."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            f"SELECT row_group_id, block_id FROM pragma_storage_info('{table}') WHERE block_id >= 0"
        ).fetchall()
    finally:
        con.close()
    blocks: dict[int, set[int]] = {}
    for group, block in rows:
        blocks.setdefault(group, set()).add(block)
    return blocks


def test_a_later_night_leaves_stored_row_groups_untouched(db_path: Path) -> None:
    # By default DuckDB's checkpoint merged each night's rows into the table's last row group
    # and rewrote it whole, raw HTML included: memory and time in proportion to the table.
    page = bytes(range(256)) * 64  # 16 KB that does not compress
    for night in range(2):
        start_run(db_path, f"r{night}", None, NOW)
        batch = [record(100 * night + n, html_zstd=page + bytes([n])) for n in range(20)]
        assert store_articles(db_path, batch, f"r{night}").new == 20
        finish_run(db_path, f"r{night}", RunCounts(articles_new=20), NOW, "completed")
        if night == 0:
            first_night = _storage(db_path, "pages")
    later = _storage(db_path, "pages")
    assert len(first_night) == 1 and len(later) == 2
    assert later[0] == first_night[0]
    assert counts(db_path) == (40, 40, 40, 40, 40)


def test_a_night_that_dies_before_its_checkpoint_keeps_its_batches(db_path: Path) -> None:
    start_run(db_path, "r1", None, NOW)
    assert store_articles(db_path, [record(n) for n in range(5)], "r1").new == 5
    # No finish_run: the batch is committed to the write-ahead log, not yet to the file.
    assert Path(str(db_path) + ".wal").exists()
    assert counts(db_path)[0] == 5
    assert store_articles(db_path, [record(n) for n in range(8)], "r2").new == 3
    finish_run(db_path, "r2", RunCounts(), NOW, "completed")
    assert not Path(str(db_path) + ".wal").exists()
    assert counts(db_path)[0] == 8

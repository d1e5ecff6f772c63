"""Bulk appends in transactions of whole row groups: warehouse.bulk.append_batches."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from warehouse_rows import articles, themes, urls

from warehouse.bulk import append_batches, append_batches_to
from warehouse.db import connect


def batch(*ids: str) -> dict[str, pa.Table]:
    """Return the articles with one theme each and their URLs."""
    return {"articles": articles(*ids), "article_themes": themes(*((a, "safety") for a in ids)),
            "article_urls": urls(*((f"https://example.org/{a}", a) for a in ids))}


def test_batches_are_regrouped_and_tags_travel_with_their_article(db_path: Path) -> None:
    # Batches of 3 in transactions of 4: a005's tag waits for a005; the second batch's tag of
    # a001, stored in the first transaction, goes with the next one.
    stream = [batch("a000", "a001", "a002"), batch("a003", "a004", "a005"), batch("a006", "a007", "a008")]
    stream[1]["article_themes"] = themes(("a001", "licensing"), ("a004", "safety"), ("a005", "safety"))
    with connect(db_path) as con:
        totals = append_batches(con, iter(stream), rows_per_transaction=4)
    assert totals == {"articles": 9, "article_urls": 9, "article_themes": 9, "article_entities": 0}
    with connect(db_path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (9,)
        orphans = con.execute(
            "SELECT count(*) FROM article_themes t ANTI JOIN articles a ON a.id = t.article_id").fetchone()
        assert orphans == (0,)
        assert con.execute("SELECT theme FROM article_themes WHERE article_id = 'a001' ORDER BY 1").fetchall() == [
            ("licensing",), ("safety",)]


def test_a_failing_transaction_keeps_the_whole_row_groups_before_it(db_path: Path) -> None:
    # The second transaction (a004, a005) fails: a005 repeats the text of a000, stored by the first.
    stream = [batch("a000", "a001", "a002"), batch("a003", "a004", "a005")]
    stream[1]["articles"] = articles("a003", "a004", "a005", hashes=("h-a003", "h-a004", "h-a000"))
    with pytest.raises(duckdb.ConstraintException, match='Duplicate key "content_hash: h-a000"'):
        append_batches_to(db_path, iter(stream), rows_per_transaction=4)
    with connect(db_path, read_only=True) as con:
        stored = con.execute("SELECT id FROM articles ORDER BY id").fetchall()
        tagged = con.execute("SELECT article_id FROM article_themes ORDER BY 1").fetchall()
    # The first transaction (a000-a003, with their tags) committed; the rest rolled back.
    assert stored == tagged == [("a000",), ("a001",), ("a002",), ("a003",)]


def test_rows_per_transaction_must_be_positive(db_path: Path) -> None:
    with connect(db_path) as con, pytest.raises(ValueError, match="positive"):
        append_batches(con, iter([batch("a000")]), rows_per_transaction=0)


def test_appends_run_single_threaded_and_restore_the_thread_count(db_path: Path) -> None:
    with connect(db_path) as con:
        con.execute("SET threads = 2")
        append_batches(con, iter([batch("a000")]))
        assert con.execute("SELECT current_setting('threads')").fetchone() == (2,)
        with pytest.raises(duckdb.ConstraintException):
            append_batches(con, iter([batch("a000")]))
        assert con.execute("SELECT current_setting('threads')").fetchone() == (2,)

"""Keys without indexes (migration 006): the writer enforces what the constraints did."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from warehouse_rows import articles, themes, urls

from warehouse.bulk import append_tables_to
from warehouse.db import available_migrations, connect


def count(db: Path, table: str) -> int:
    with connect(db, read_only=True) as con:
        row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def test_large_tables_have_no_art_index(db_path: Path) -> None:
    with connect(db_path) as con:
        indexed = con.execute(
            "SELECT DISTINCT table_name FROM duckdb_constraints()"
            " WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
            " UNION SELECT table_name FROM duckdb_indexes()"
        ).fetchall()
        not_null = con.execute(
            "SELECT count(*) FROM duckdb_constraints()"
            " WHERE table_name = 'articles' AND constraint_type = 'NOT NULL'"
        ).fetchone()
    tables = {name for (name,) in indexed}
    assert not tables & {"articles", "article_urls", "pages", "article_themes", "article_entities"}
    # Small tables keep their keys; ON CONFLICT upserts need them.
    assert {"feeds", "runs", "backfill_urls"} <= tables
    assert not_null == (6,)


def test_migration_keeps_the_rows_of_an_existing_database(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)")
    for version, name, sql in available_migrations():
        if version < 6:
            con.execute(sql)
            con.execute("INSERT INTO schema_version (version, name) VALUES (?, ?)", [version, name])
    con.register("a", articles("a1", "a2"))
    con.execute("INSERT INTO articles BY NAME SELECT * FROM a")
    con.register("t", themes(("a1", "safety"), ("a2", "licensing")))
    con.execute("INSERT INTO article_themes SELECT * FROM t")
    con.execute("INSERT INTO article_urls VALUES ('https://example.org/a1', 'a1')")
    con.execute("INSERT INTO article_entities VALUES ('a1', 'Llama', 'model', 3)")
    con.execute("INSERT INTO pages VALUES ('a1', 'https://example.org/a1', 200, 'text/html', "
                "'\\x28'::BLOB, TIMESTAMPTZ '2026-11-20 00:00:00+00')")
    assert con.execute("SELECT index_name FROM duckdb_indexes()"
                       " WHERE table_name = 'articles'").fetchall() == [("articles_content_hash",)]
    con.close()

    with connect(db) as con:
        assert con.execute("SELECT max(version) FROM schema_version").fetchone() == (6,)
        assert con.execute("SELECT id, content_hash FROM articles ORDER BY id").fetchall() == [
            ("a1", "h-a1"), ("a2", "h-a2")]
        assert con.execute("SELECT count(*) FROM article_themes").fetchone() == (2,)
        assert con.execute("SELECT * FROM article_entities").fetchall() == [("a1", "Llama", "model", 3)]
        assert con.execute("SELECT article_id, status FROM pages").fetchall() == [("a1", 200)]
        assert con.execute("SELECT count(*) FROM duckdb_indexes()"
                           " WHERE table_name = 'articles'").fetchone() == (0,)
        # The views of migration 003 read the rebuilt tables.
        assert con.execute("SELECT theme, articles FROM theme_weekly ORDER BY theme").fetchall() == [
            ("licensing", 1), ("safety", 1)]


@pytest.mark.parametrize(("tables", "message"), [
    ({"articles": articles("a1")}, "id: a1"),
    ({"articles": articles("b1", hashes=("h-a1",))}, "content_hash: h-a1"),
    ({"articles": articles("b1", "b1")}, "id: b1"),
    ({"articles": articles("b1"), "article_urls": urls(("https://example.org/a1", "b1"))},
     "url: https://example.org/a1"),
    ({"articles": articles("b1"), "article_themes": themes(("b1", "safety"), ("b1", "safety"))},
     "article_id: b1, theme: safety"),
    ({"article_themes": themes(("a1", "safety"))}, "article_id: a1, theme: safety"),
])
def test_bulk_append_refuses_a_repeated_key_and_writes_nothing(
        db_path: Path, tables: dict[str, pa.Table], message: str) -> None:
    append_tables_to(db_path, {"articles": articles("a1"), "article_themes": themes(("a1", "safety")),
                               "article_urls": urls(("https://example.org/a1", "a1"))})
    with pytest.raises(duckdb.ConstraintException, match=f"Duplicate key \"{message}\""):
        append_tables_to(db_path, tables)
    assert (count(db_path, "articles"), count(db_path, "article_themes"),
            count(db_path, "article_urls")) == (1, 1, 1)


def test_bulk_append_accepts_new_keys(db_path: Path) -> None:
    append_tables_to(db_path, {"articles": articles("a1"), "article_themes": themes(("a1", "safety"))})
    append_tables_to(db_path, {"articles": articles("a2"),
                               "article_themes": themes(("a2", "safety"), ("a1", "licensing"))})
    with connect(db_path, read_only=True) as con:
        assert con.execute("SELECT article_id, theme FROM article_themes ORDER BY ALL").fetchall() == [
            ("a1", "licensing"), ("a1", "safety"), ("a2", "safety")]

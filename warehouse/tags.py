"""SQL for re-tagging stored articles: read texts in Arrow batches, stage, swap atomically.

`newsmon retag` reads every article's stored text batch by batch, tags it outside the
warehouse, and appends the results to connection-local staging tables. One transaction then
replaces the old rows of `article_themes` and `article_entities` and updates
`articles.relevant / relevance / themes_version`, so readers see either the old version's tags
or the new ones, never a mix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from warehouse.keys import require_unique

__all__ = [
    "ENTITY_SCHEMA",
    "RELEVANCE_SCHEMA",
    "THEME_SCHEMA",
    "RetagCounts",
    "article_text_batches",
    "begin_staging",
    "count_articles",
    "stage_batch",
    "swap_staged",
    "themes_versions",
]

RELEVANCE_SCHEMA = pa.schema(
    [("article_id", pa.string()), ("relevant", pa.bool_()), ("relevance", pa.float64())]
)
THEME_SCHEMA = pa.schema(
    [
        ("article_id", pa.string()),
        ("url", pa.string()),
        ("theme", pa.string()),
        ("score", pa.float64()),
        ("evidence", pa.string()),
    ]
)
ENTITY_SCHEMA = pa.schema(
    [
        ("article_id", pa.string()),
        ("entity", pa.string()),
        ("kind", pa.string()),
        ("mentions", pa.int32()),
    ]
)


@dataclass(frozen=True)
class RetagCounts:
    articles: int
    relevant: int
    theme_rows: int
    entity_rows: int


def count_articles(con: duckdb.DuckDBPyConnection) -> int:
    """Return how many articles are stored."""
    row = con.execute("SELECT count(*) FROM articles").fetchone()
    return int(row[0]) if row else 0


def article_text_batches(
    con: duckdb.DuckDBPyConnection, batch_size: int = 2000
) -> Iterator[pa.RecordBatch]:
    """Yield (id, url, title, text) of every stored article as Arrow record batches."""
    # A separate cursor streams the scan while the main connection writes the staging tables.
    cursor = con.cursor()
    try:
        reader = cursor.execute(
            "SELECT id, url, title, coalesce(text, '') AS text FROM articles ORDER BY id"
        ).to_arrow_reader(batch_size)
        for batch in reader:
            if batch.num_rows:
                yield batch
    finally:
        cursor.close()


def begin_staging(con: duckdb.DuckDBPyConnection) -> None:
    """Create empty connection-local staging tables for a re-tag."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE retag_relevance ("
        " article_id VARCHAR PRIMARY KEY, relevant BOOLEAN, relevance DOUBLE)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE retag_themes ("
        " article_id VARCHAR, url VARCHAR, theme VARCHAR, score DOUBLE, evidence VARCHAR)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE retag_entities ("
        " article_id VARCHAR, entity VARCHAR, kind VARCHAR, mentions INTEGER)"
    )


def stage_batch(
    con: duckdb.DuckDBPyConnection, relevance: pa.Table, themes: pa.Table, entities: pa.Table
) -> None:
    """Append one batch of re-tag results (Arrow tables in the schemas above) to staging."""
    for name, table, columns in (
        ("retag_relevance", relevance, "article_id, relevant, relevance"),
        ("retag_themes", themes, "article_id, url, theme, score, evidence"),
        ("retag_entities", entities, "article_id, entity, kind, mentions"),
    ):
        if table.num_rows == 0:
            continue
        view = f"{name}_batch"
        con.register(view, table)
        try:
            con.execute(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM {view}")
        finally:
            con.unregister(view)


def swap_staged(con: duckdb.DuckDBPyConnection, themes_version: str) -> RetagCounts:
    """Replace the staged articles' tags, entities and relevance in one transaction."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "DELETE FROM article_themes WHERE article_id IN (SELECT article_id FROM retag_relevance)"
        )
        # No index guards the tag tables' keys (migration 006): check the staged rows against
        # themselves and against the tags of articles this re-tag does not replace.
        require_unique(con, "retag_themes", "article_themes")
        con.execute(
            "INSERT INTO article_themes (article_id, url, theme, score, evidence, themes_version)"
            " SELECT article_id, url, theme, score, evidence, ? FROM retag_themes",
            [themes_version],
        )
        con.execute(
            "DELETE FROM article_entities WHERE article_id IN (SELECT article_id FROM retag_relevance)"
        )
        require_unique(con, "retag_entities", "article_entities")
        con.execute(
            "INSERT INTO article_entities (article_id, entity, kind, mentions)"
            " SELECT article_id, entity, kind, mentions FROM retag_entities"
        )
        con.execute(
            "UPDATE articles SET relevant = r.relevant, relevance = r.relevance, themes_version = ?"
            " FROM retag_relevance AS r WHERE articles.id = r.article_id",
            [themes_version],
        )
        row = con.execute(
            "SELECT (SELECT count(*) FROM retag_relevance),"
            " (SELECT count(*) FROM retag_relevance WHERE relevant),"
            " (SELECT count(*) FROM retag_themes), (SELECT count(*) FROM retag_entities)"
        ).fetchone()
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        for name in ("retag_relevance", "retag_themes", "retag_entities"):
            con.execute(f"DROP TABLE IF EXISTS {name}")
    assert row is not None
    return RetagCounts(int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def themes_versions(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Return themes_version -> number of articles carrying it (NULL as '')."""
    rows = con.execute(
        "SELECT coalesce(themes_version, ''), count(*) FROM articles GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return {str(version): int(n) for version, n in rows}

"""Append whole Arrow tables to the core tables: backfills, benchmarks and tests.

The nightly store (warehouse.store) deduplicates article by article; this path trusts its
input and appends each table with one set-based INSERT ... BY NAME, in one transaction, which
is what a bulk load needs to reach tens of thousands of articles per second.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse.db import connect

__all__ = ["BULK_TABLES", "append_tables", "append_tables_to"]

# Children after parents, so a reader never sees a tag without its article.
BULK_TABLES: tuple[str, ...] = ("articles", "article_urls", "article_themes", "article_entities")


def append_tables(con: duckdb.DuckDBPyConnection, tables: Mapping[str, pa.Table]) -> dict[str, int]:
    """Insert each Arrow table into the core table of the same name in one transaction."""
    unknown = set(tables) - set(BULK_TABLES)
    if unknown:
        raise ValueError(f"cannot bulk-append to {sorted(unknown)}; allowed: {', '.join(BULK_TABLES)}")
    counts: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for name in BULK_TABLES:
            table = tables.get(name)
            if table is None or table.num_rows == 0:
                continue
            staged = f"staged_{name}"
            con.register(staged, table)
            try:
                # The name comes from BULK_TABLES, never from the caller.
                con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM {staged}")
            finally:
                con.unregister(staged)
            counts[name] = table.num_rows
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return counts


def append_tables_to(path: str | Path, tables: Mapping[str, pa.Table], *,
                     lock_wait_seconds: float = 30.0) -> dict[str, int]:
    """Open the database, append the tables in one transaction, and release the file."""
    with connect(path, lock_wait_seconds=lock_wait_seconds) as con:
        return append_tables(con, tables)

"""Append whole Arrow tables to the core tables: backfills, benchmarks and tests.

The nightly store (warehouse.store) turns duplicates into aliases; this path appends each
table with one set-based INSERT ... BY NAME, in one transaction, and fails the whole call with
a ConstraintException when a key repeats (within a table or against the stored rows), which
is what a bulk load needs to reach tens of thousands of articles per second.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.db import connect, single_threaded
from warehouse.keys import require_unique

__all__ = [
    "BULK_TABLES",
    "ROW_GROUP_ROWS",
    "append_batches",
    "append_batches_to",
    "append_tables",
    "append_tables_to",
]

# Children after parents, so a reader never sees a tag without its article.
BULK_TABLES: tuple[str, ...] = ("articles", "article_urls", "article_themes", "article_entities")

# DuckDB's rows per row group. A transaction that appends whole row groups has them compressed
# and written straight to the file; a smaller one goes through the write-ahead log, and every
# checkpoint then compresses the table's unfinished last row group again. Loading 250,000 to
# 500,000 articles in transactions of 50,000 took 1.6 to 2.3 times the CPU of transactions
# of 122,880.
ROW_GROUP_ROWS = 122_880


def append_tables(con: duckdb.DuckDBPyConnection, tables: Mapping[str, pa.Table]) -> dict[str, int]:
    """Insert each Arrow table into the core table of the same name in one transaction."""
    unknown = set(tables) - set(BULK_TABLES)
    if unknown:
        raise ValueError(f"cannot bulk-append to {sorted(unknown)}; allowed: {', '.join(BULK_TABLES)}")
    counts: dict[str, int] = {}
    with single_threaded(con):
        _append_in_transaction(con, tables, counts)
    return counts


def _append_in_transaction(con: duckdb.DuckDBPyConnection, tables: Mapping[str, pa.Table],
                           counts: dict[str, int]) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        for name in BULK_TABLES:
            table = tables.get(name)
            if table is None or table.num_rows == 0:
                continue
            staged = f"staged_{name}"
            con.register(staged, table)
            try:
                # Keys are checked here, not by indexes (migration 006); a duplicate fails
                # the whole call, as a violated primary key did.
                require_unique(con, staged, name)
                # The name comes from BULK_TABLES, never from the caller.
                con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM {staged}")
            finally:
                con.unregister(staged)
            counts[name] = table.num_rows
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def append_tables_to(path: str | Path, tables: Mapping[str, pa.Table], *,
                     lock_wait_seconds: float = 30.0) -> dict[str, int]:
    """Open the database, append the tables in one transaction, and release the file."""
    with connect(path, lock_wait_seconds=lock_wait_seconds) as con:
        return append_tables(con, tables)


def _regroup(batches: Iterable[Mapping[str, pa.Table]], rows: int) -> Iterator[dict[str, pa.Table]]:
    """Yield the batches' rows again in chunks of whole multiples of `rows` articles."""
    pending: dict[str, list[pa.Table]] = {name: [] for name in BULK_TABLES}

    def buffered(name: str) -> pa.Table | None:
        parts = [t for t in pending[name] if t.num_rows]
        return pa.concat_tables(parts, promote_options="default") if parts else None

    for batch in batches:
        unknown = set(batch) - set(BULK_TABLES)
        if unknown:
            raise ValueError(f"cannot bulk-append to {sorted(unknown)}; allowed: {', '.join(BULK_TABLES)}")
        for name, table in batch.items():
            pending[name].append(table)
        articles = buffered("articles")
        waiting = articles.num_rows if articles is not None else 0
        if waiting < rows:
            continue
        assert articles is not None
        take = waiting - waiting % rows
        chunk = {"articles": articles.slice(0, take)}
        rest = articles.slice(take)
        # Tags and URLs travel with their article; those of articles stored before go now.
        later_ids = rest.column("id")
        for name in BULK_TABLES[1:]:
            table = buffered(name)
            if table is None:
                continue
            later = pc.is_in(table.column("article_id"), value_set=later_ids)
            chunk[name] = table.filter(pc.invert(later))
            pending[name] = [table.filter(later)]
        pending["articles"] = [rest]
        yield chunk
    last = {name: table for name in BULK_TABLES if (table := buffered(name)) is not None}
    if last:
        yield last


def append_batches(con: duckdb.DuckDBPyConnection, batches: Iterable[Mapping[str, pa.Table]], *,
                   rows_per_transaction: int = ROW_GROUP_ROWS) -> dict[str, int]:
    """Append a stream of batches in transactions of whole row groups of articles; return rows per table."""
    if rows_per_transaction <= 0:
        raise ValueError("rows_per_transaction must be positive")
    totals = {name: 0 for name in BULK_TABLES}
    for chunk in _regroup(batches, rows_per_transaction):
        for name, n in append_tables(con, chunk).items():
            totals[name] += n
    return totals


def append_batches_to(path: str | Path, batches: Iterable[Mapping[str, pa.Table]], *,
                      rows_per_transaction: int = ROW_GROUP_ROWS,
                      lock_wait_seconds: float = 30.0) -> dict[str, int]:
    """Append a stream of batches, opening the file for each transaction so readers get turns."""
    if rows_per_transaction <= 0:
        raise ValueError("rows_per_transaction must be positive")
    totals = {name: 0 for name in BULK_TABLES}
    for chunk in _regroup(batches, rows_per_transaction):
        for name, n in append_tables_to(path, chunk, lock_wait_seconds=lock_wait_seconds).items():
            totals[name] += n
    return totals

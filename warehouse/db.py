"""Open the DuckDB warehouse, apply migrations, and wait out another process's lock.

DuckDB lets one process hold a database file read-write and locks every other process out,
readers included. newsmon keeps write transactions short and closes the file between
batches; both readers and writers retry the open within a bounded wait
(`storage.lock_wait_seconds`), so a query during the nightly run waits at most one batch.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from importlib import resources
from pathlib import Path

import duckdb

__all__ = [
    "WarehouseError",
    "WarehouseLocked",
    "applied_migrations",
    "available_migrations",
    "connect",
    "connect_during_run",
    "migrate",
    "open_database",
    "single_threaded",
]


class WarehouseError(RuntimeError):
    """The warehouse could not be opened or used."""


class WarehouseLocked(WarehouseError):
    """Another process held the database file for longer than the allowed wait."""


def available_migrations() -> list[tuple[int, str, str]]:
    """Return (version, name, sql) for every bundled migration, in order."""
    found: list[tuple[int, str, str]] = []
    folder = resources.files("warehouse") / "migrations"
    for entry in folder.iterdir():
        name = entry.name
        if not name.endswith(".sql"):
            continue
        version = int(name.split("_", 1)[0])
        found.append((version, name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise WarehouseError(f"two migrations share a version number: {versions}")
    return found


def applied_migrations(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Return the migration versions recorded in the database."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchone()
    if not exists or not exists[0]:
        return []
    return [row[0] for row in con.execute("SELECT version FROM schema_version ORDER BY version").fetchall()]


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply the migrations not yet recorded, each in its own transaction; return those applied."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
        " applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)"
    )
    done = set(applied_migrations(con))
    pending = [m for m in available_migrations() if m[0] not in done]
    if not pending:
        return []
    # A rebuild such as 006 runs for seconds on a large file; DuckDB would draw its progress
    # bar into the nightly run's log or a command's output.
    row = con.execute("SELECT current_setting('enable_progress_bar')").fetchone()
    con.execute("SET enable_progress_bar = false")
    applied: list[int] = []
    try:
        for version, name, sql in pending:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(sql)
                con.execute("INSERT INTO schema_version (version, name) VALUES (?, ?)", [version, name])
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
            applied.append(version)
    finally:
        con.execute(f"SET enable_progress_bar = {'true' if row and row[0] else 'false'}")
    return applied


def _configure_writes(con: duckdb.DuckDBPyConnection, *, vacuum: bool, checkpoint_on_close: bool) -> None:
    # DuckDB starts a new row group for a connection's first append to a stored table, but by
    # default the checkpoint then vacuums it back into the table's last row group and so
    # rewrites that group whole (up to 122,880 rows, raw HTML included): each nightly batch of
    # 100 articles took memory and time in proportion to the table, +142 MB at 2,000 articles
    # and +797 MB and 2.5 s at 16,000, and the file grew to twice its data. Appends therefore
    # run without vacuum tasks; only commands that delete or rewrite rows (retag, reextract)
    # ask for them, so that the space their old rows held is reclaimed.
    if not vacuum:
        con.execute("SET max_vacuum_tasks = 0")
    # Each checkpoint writes every changed table's new rows to blocks of their own: one per
    # nightly batch of 100 left most of five 256 KB blocks empty and made the file several
    # times its data. The night's writes leave theirs to the WAL threshold (16 MB) and to the
    # checkpoint that ends the run.
    if not checkpoint_on_close:
        con.execute("PRAGMA disable_checkpoint_on_shutdown")


def _is_lock_error(exc: Exception) -> bool:
    message = str(exc).lower()
    return "lock" in message and ("conflicting" in message or "could not set lock" in message)


def open_database(
    path: str | Path,
    *,
    read_only: bool = False,
    lock_wait_seconds: float = 30.0,
    timezone: str | None = None,
    vacuum: bool = False,
    checkpoint_on_close: bool = True,
) -> duckdb.DuckDBPyConnection:
    """Open the database file, retrying while another process holds it; migrate when writable.

    A writable connection appends without vacuuming unless `vacuum` is set, and checkpoints
    when it closes unless `checkpoint_on_close` is false (see _configure_writes).
    """
    path = Path(path)
    if read_only and not path.exists():
        raise WarehouseError(f"{path}: no database yet (run `newsmon run` or `newsmon demo` first)")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Writers (the night, backfill, retag) build Arrow tables batch after batch. Arrow's
        # default pool (jemalloc) kept what each batch freed, and a night's process grew by
        # megabytes per batch; the system allocator gives it back. Imported here: readers
        # such as `newsmon query` never load Arrow.
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())
    deadline = time.monotonic() + lock_wait_seconds
    delay = 0.02
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.Error as exc:
            if not _is_lock_error(exc):
                raise WarehouseError(f"{path}: cannot open database: {exc}") from None
            if time.monotonic() >= deadline:
                raise WarehouseLocked(
                    f"{path}: still locked by another process after {lock_wait_seconds:.0f} s"
                ) from None
            # Jitter so a reader and a writer do not retry in lockstep.
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 1.6, 0.5)
    try:
        if timezone:
            con.execute(f"SET TimeZone = '{_checked_timezone(timezone)}'")
        if not read_only:
            _configure_writes(con, vacuum=vacuum, checkpoint_on_close=checkpoint_on_close)
            migrate(con)
    except Exception:
        con.close()
        raise
    return con


def _checked_timezone(name: str) -> str:
    # SET does not take bound parameters; allow only what IANA names contain.
    if not name or any(not (ch.isalnum() or ch in "/_+-") for ch in name):
        raise WarehouseError(f"invalid timezone name {name!r}")
    return name


@contextmanager
def connect(
    path: str | Path,
    *,
    read_only: bool = False,
    lock_wait_seconds: float = 30.0,
    timezone: str | None = None,
    vacuum: bool = False,
    checkpoint_on_close: bool = True,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse for as long as the block needs it, then release the file."""
    con = open_database(path, read_only=read_only, lock_wait_seconds=lock_wait_seconds, timezone=timezone,
                        vacuum=vacuum, checkpoint_on_close=checkpoint_on_close)
    try:
        yield con
    finally:
        con.close()


def connect_during_run(path: str | Path, *, lock_wait_seconds: float = 30.0
                       ) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """Open the warehouse for one of a run's writes, left in the WAL for the run's end to checkpoint."""
    return connect(path, lock_wait_seconds=lock_wait_seconds, checkpoint_on_close=False)


@contextmanager
def single_threaded(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run the block's statements on one DuckDB thread, then restore the thread count."""
    # Appends and key checks ran 1.6-2x faster per CPU-second on one thread than on two on
    # the 2-core machine, where extraction or other work keeps the cores busy: DuckDB's
    # parallel append and compression spend the difference coordinating.
    row = con.execute("SELECT current_setting('threads')").fetchone()
    threads = int(row[0]) if row else 1
    con.execute("SET threads = 1")
    try:
        yield
    finally:
        con.execute(f"SET threads = {threads}")

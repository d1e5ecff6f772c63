"""One nightly writer at a time: a lock file beside the database, and a Prefect limit.

Two nightly runs writing at once would each poll the same feeds and fight over the
database file. The guard has two layers:

- a lock file (`<database>.nightly.lock`, `flock`) beside the database. It works in every
  mode, including Prefect's ephemeral one, and the kernel releases it when a process dies,
  so a crashed run never blocks the next night;
- with a Prefect server or Prefect Cloud configured (`PREFECT_API_URL`), also the global
  concurrency limit `newsmon-nightly-writer` (one slot), so the UI shows who holds it and
  runs on other machines that share a warehouse (MotherDuck, DuckLake) wait too. Its slot
  is leased, so a crashed holder's slot is reclaimed when the lease runs out.
  Ephemeral mode skips this layer: each ephemeral process keeps its own leases, so a
  crash there could leave the slot taken for good.

A second run waits up to `wait_seconds`, then stops with `WriterBusy` naming the holder.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from newsmon.errors import UserError

__all__ = ["DEFAULT_WAIT_SECONDS", "WriterBusy", "file_lock", "lock_file_for", "nightly_writer"]

DEFAULT_WAIT_SECONDS = 60.0


class WriterBusy(UserError):
    """Another nightly run holds the writer lock for longer than we wait."""


def lock_file_for(database: Path) -> Path:
    """Return the lock file that guards writes to this database."""
    database = Path(database)
    return database.with_name(database.name + ".nightly.lock")


@contextmanager
def file_lock(path: Path, wait_seconds: float, *, poll: float = 0.2) -> Iterator[None]:
    """Hold an exclusive `flock` on path, waiting up to wait_seconds for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    raise WriterBusy(
                        f"another nightly run is writing to this database ({holder}); "
                        f"waited {wait_seconds:.0f} s. Try again when it has finished."
                    ) from None
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
                  .encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "holder unknown"


@contextmanager
def nightly_writer(database: Path, wait_seconds: float = DEFAULT_WAIT_SECONDS,
                   *, use_prefect_limit: bool | None = None) -> Iterator[None]:
    """Hold the nightly writer's lock file, and its Prefect limit when a server is configured."""
    started = time.monotonic()
    with ExitStack() as stack:
        stack.enter_context(file_lock(lock_file_for(database), wait_seconds))
        if use_prefect_limit is None:
            from newsmon.prefect_api import configured_api_url

            use_prefect_limit = configured_api_url() is not None
        if use_prefect_limit:
            stack.enter_context(_prefect_slot(max(1.0, wait_seconds - (time.monotonic() - started))))
        yield


@contextmanager
def _prefect_slot(wait_seconds: float) -> Iterator[None]:
    from prefect.concurrency.sync import concurrency

    from newsmon.serve import WRITER_LIMIT, ensure_writer_limit

    ensure_writer_limit()
    held = ExitStack()
    try:
        held.enter_context(concurrency(WRITER_LIMIT, occupy=1, timeout_seconds=wait_seconds,
                                       strict=True))
    except TimeoutError:
        raise WriterBusy(
            f"another nightly run holds the Prefect concurrency limit '{WRITER_LIMIT}'; "
            f"waited {wait_seconds:.0f} s. Try again when it has finished."
        ) from None
    with held:
        yield

"""Progress bars for long interactive commands, shown only on a terminal.

A nightly run started by a deployment, or with its output piped to a file, gets no bar
and no control characters in its log; Prefect's logger still reports one line per feed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["progress_bar"]


@contextmanager
def progress_bar(description: str, total: int, *,
                 console: Console | None = None) -> Iterator[Callable[[int], None]]:
    """Show a bar on stderr while the block runs when it is a terminal; yield `advance(n)`."""
    console = console or Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, disable=not console.is_terminal,
                  transient=False) as progress:
        task_id = progress.add_task(description, total=total)

        def advance(done: int) -> None:
            progress.advance(task_id, done)

        yield advance

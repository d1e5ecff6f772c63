"""Where extraction and tagging run: in this process's pool, or on a Dask cluster.

`[runner] kind = "default"` keeps the nightly flow's own `ThreadPoolTaskRunner` and the
extraction process pool. `kind = "dask"` sends each batch to a Dask cluster through
prefect-dask's `DaskTaskRunner`, split into chunks so every worker gets a share: a local
`LocalCluster` when `dask_address` is empty, else the scheduler at that address (for example
`tcp://10.0.0.5:8786`), which is how a user with thousands of feeds grows past one machine.
The flow opens the runner itself, so the choice follows the configuration wherever the flow
is started from (`newsmon run`, `newsmon serve`, a deployment).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from prefect import Task
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from newsmon.config import RunnerSettings
from newsmon.errors import UserError

__all__ = ["RUNNER_KINDS", "build_task_runner", "extraction_runner", "run_chunked", "split_chunks"]

RUNNER_KINDS = ("default", "dask")

T = TypeVar("T")
R = TypeVar("R")


def build_task_runner(runner: RunnerSettings, *, processes: bool = True) -> TaskRunner[Any]:
    """Build the task runner named by `[runner] kind` (not yet started).

    `processes=False` makes a local cluster's workers threads of this process: quicker to
    start, but the GIL serialises extraction (tests use it).
    """
    if runner.kind == "default":
        return ThreadPoolTaskRunner()
    if runner.kind == "dask":
        from prefect_dask import DaskTaskRunner

        if runner.dask_address:
            return DaskTaskRunner(address=runner.dask_address)
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={
                "n_workers": max(1, runner.dask_workers),
                "threads_per_worker": 1,
                # Extraction is CPU-bound Python: worker processes, not threads, use the cores.
                "processes": processes,
                # The dashboard would bind a public port and needs bokeh; nobody looks at it here.
                "dashboard_address": None,
            },
        )
    raise UserError(f"[runner] kind must be one of {', '.join(RUNNER_KINDS)}, not {runner.kind!r}")


@contextmanager
def extraction_runner(runner: RunnerSettings, *,
                      processes: bool = True) -> Iterator[TaskRunner[Any] | None]:
    """Start the Dask runner for the block when configured; yield None for the default pool."""
    if runner.kind == "default":
        yield None
        return
    with build_task_runner(runner, processes=processes) as started:
        yield started


def split_chunks(items: Sequence[T], parts: int) -> list[list[T]]:
    """Split items into at most `parts` contiguous chunks of near-equal size, order kept."""
    if not items:
        return []
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    chunks: list[list[T]] = []
    start = 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        chunks.append(list(items[start:end]))
        start = end
    return chunks


def run_chunked(runner: TaskRunner[Any], task: Task[..., list[R]], items: Sequence[T],
                item_parameter: str, parts: int, **parameters: Any) -> list[R]:
    """Submit `task` once per chunk of items on the runner and return all results in order."""
    futures = [runner.submit(task, {item_parameter: chunk, **parameters})
               for chunk in split_chunks(items, parts)]
    results: list[R] = []
    for future in futures:
        results.extend(future.result())
    return results

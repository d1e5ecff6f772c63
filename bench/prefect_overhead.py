"""Measure what a Prefect task costs, to choose the task granularity of the nightly flow.

Runs N trivial calls three ways inside one flow (ephemeral API): a plain function, a sync
task called directly, and a task submitted to the thread pool; prints ms per call and the
ratio against the plain call. The nightly flow makes tasks per feed and per batch of ~100
articles, so this cost is paid about 4 times per batch instead of 4 times per article.

Usage: .venv/bin/python -m bench.prefect_overhead [--calls 200]
"""

from __future__ import annotations

import argparse
import os
import time

from prefect import flow, task
from prefect.cache_policies import NONE as NO_CACHE


def work(x: int) -> int:
    """Do a trivial piece of work."""
    return x * 2


@task(cache_policy=NO_CACHE)
def work_task(x: int) -> int:
    """Do the same work as a task."""
    return x * 2


@flow
def measure(calls: int) -> dict[str, float]:
    """Time the three ways of calling."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    for i in range(calls):
        work(i)
    timings["plain"] = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(calls):
        work_task(i)
    timings["task"] = time.perf_counter() - start
    start = time.perf_counter()
    futures = [work_task.submit(i) for i in range(calls)]
    for future in futures:
        future.result()
    timings["task_submit"] = time.perf_counter() - start
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    start = time.perf_counter()
    timings = measure(args.calls)
    total = time.perf_counter() - start
    plain = max(timings["plain"], 1e-9)
    for name, seconds in timings.items():
        print(f"{name:12s} {1000 * seconds / args.calls:8.3f} ms/call   x{seconds / plain:,.0f} vs plain")
    print(f"flow call including ephemeral API start-up: {total:.1f} s")
    per_task = 1000 * timings["task"] / args.calls
    print(f"2,000 articles as one task each would add ~{2000 * per_task / 1000:.1f} s; "
          f"as 20 batches x 3 tasks, ~{60 * per_task / 1000:.2f} s")


if __name__ == "__main__":
    main()

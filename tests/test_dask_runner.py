"""Extraction and tagging on a local Dask cluster give the same records as the default runner."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from newsmon.config import RunnerSettings
from newsmon.errors import UserError
from newsmon.paths import SAMPLE_DIR
from newsmon.runners import build_task_runner, extraction_runner, split_chunks

TRUTH = json.loads((SAMPLE_DIR / "pages" / "truth.json").read_text(encoding="utf-8"))


def test_split_chunks_keeps_order_and_balance() -> None:
    assert split_chunks(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert split_chunks([1, 2], 5) == [[1], [2]]
    assert split_chunks([], 4) == []
    assert [x for chunk in split_chunks(list(range(100)), 8) for x in chunk] == list(range(100))


def test_runner_kind_selects_the_task_runner() -> None:
    from prefect_dask import DaskTaskRunner

    assert isinstance(build_task_runner(RunnerSettings()), ThreadPoolTaskRunner)
    local = build_task_runner(RunnerSettings(kind="dask", dask_workers=3))
    assert isinstance(local, DaskTaskRunner)
    assert local.address is None and local.cluster_kwargs["n_workers"] == 3
    assert local.cluster_kwargs["processes"] is True
    remote = build_task_runner(RunnerSettings(kind="dask", dask_address="tcp://10.0.0.5:8786"))
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://10.0.0.5:8786"
    with pytest.raises(UserError, match="kind must be one of default, dask"):
        build_task_runner(RunnerSettings(kind="ray"))
    with extraction_runner(RunnerSettings()) as runner:
        assert runner is None  # the default keeps the flow's own process pool


@pytest.mark.slow
def test_dask_runner_gives_the_same_records_as_the_default(prefect_harness: None) -> None:
    from flows.nightly import extract_and_tag_task
    from newsmon.processing import PageJob, TaggingConfig
    from newsmon.runners import run_chunked

    now = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
    pages = [t for t in TRUTH if t["file"].endswith(".html")][:6]
    jobs = [PageJob(article_id=f"{i:016x}", url=t["url"], feed_url="http://127.0.0.1/feed",
                    feed_name="Feed", guid=None, entry_title=None, entry_summary="summary",
                    entry_text=None, entry_author=None, entry_published=None, first_seen=now,
                    body=(SAMPLE_DIR / "pages" / t["file"]).read_bytes(), final_url=t["url"],
                    status=200, content_type="text/html")
            for i, t in enumerate(pages)]
    tagging = TaggingConfig()

    @flow(name="compare-runners")
    def compare() -> tuple[list[object], list[object], float]:
        default = extract_and_tag_task(jobs, tagging, 1)
        started = time.perf_counter()
        # Thread workers start in a fraction of the time of process workers; the records
        # still travel through the Dask scheduler and Prefect's task engine on the workers.
        with extraction_runner(RunnerSettings(kind="dask", dask_workers=2), processes=False) as runner:
            assert runner is not None
            on_dask = run_chunked(runner, extract_and_tag_task, jobs, "jobs", 4,
                                  tagging=tagging, workers=1)
        return default, on_dask, time.perf_counter() - started

    default, on_dask, seconds = compare()
    assert len(default) == len(jobs) == len(on_dask)
    assert on_dask == default  # same records, same order: text, dates, themes, entities, hashes
    # Real extraction happened: most pages' annotated main-text snippets are in their text.
    found = sum(1 for p, truth in zip(default, pages)
                if p.record is not None and truth["with"][0] in p.record.text)
    assert found >= 4
    print(f"dask: {len(jobs)} pages on a 2-worker local cluster in {seconds:.1f} s (cluster start included)")

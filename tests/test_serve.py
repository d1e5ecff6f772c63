"""`newsmon serve` in pieces: deployments and schedules under Prefect's harness, the local
server's start/health/stop, the nightly writer's lock file and Prefect concurrency limit."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.config import ScheduleSettings, Settings, StorageSettings
from newsmon.prefect_api import LocalPrefectServer
from newsmon.serve import (
    DIGEST_DEPLOYMENT,
    NIGHTLY_DEPLOYMENT,
    WRITER_LIMIT,
    build_deployments,
    prefect_home,
)
from newsmon.writer_lock import WriterBusy, file_lock, lock_file_for, nightly_writer


def _settings(tmp_path: Path, **schedule: str) -> Settings:
    return Settings(storage=StorageSettings(database=str(tmp_path / "data" / "newsmon.duckdb")),
                    schedule=ScheduleSettings(**schedule))


@pytest.mark.slow
def test_deployments_carry_cron_timezone_and_parameters(prefect_harness: None, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    settings = _settings(tmp_path, timezone="Europe/Berlin", nightly_cron="30 1 * * *",
                         digest_cron="0 8 * * 1")
    config = str(tmp_path / "newsmon.toml")
    ids = [deployment.apply() for deployment in build_deployments(settings, config)]
    with get_client(sync_client=True) as client:
        nightly = client.read_deployment_by_name(f"nightly-ingest/{NIGHTLY_DEPLOYMENT}")
        digest = client.read_deployment_by_name(f"weekly-digest/{DIGEST_DEPLOYMENT}")
        assert [nightly.id, digest.id] == ids
        for deployment, cron in ((nightly, "30 1 * * *"), (digest, "0 8 * * 1")):
            assert len(deployment.schedules) == 1
            schedule = deployment.schedules[0].schedule
            assert (schedule.cron, schedule.timezone) == (cron, "Europe/Berlin")
            assert deployment.schedules[0].active
            assert deployment.parameters == {"config_path": config}
            assert deployment.global_concurrency_limit is not None
            assert deployment.global_concurrency_limit.limit == 1
        # The server's scheduler turns the cron into runs at 01:30 Berlin time.
        runs = client.read_flow_runs(limit=20)
        nightly_starts = sorted(r.expected_start_time for r in runs if r.deployment_id == nightly.id)
    if nightly_starts:  # the scheduler may not have ticked yet in a short test
        berlin = nightly_starts[0].astimezone(ZoneInfo("Europe/Berlin"))
        assert (berlin.hour, berlin.minute) == (1, 30)


def test_default_schedules_are_nightly_and_monday_morning(tmp_path: Path) -> None:
    nightly, digest = build_deployments(_settings(tmp_path), None)
    assert (nightly.name, digest.name) == (NIGHTLY_DEPLOYMENT, DIGEST_DEPLOYMENT)
    assert nightly.schedules[0].schedule.cron == "0 2 * * *"
    assert digest.schedules[0].schedule.cron == "0 7 * * 1"
    assert {nightly.schedules[0].schedule.timezone, digest.schedules[0].schedule.timezone} == {"UTC"}
    assert nightly.parameters == {"config_path": None}


def test_serve_rejects_a_bad_schedule_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "newsmon.toml"
    config.write_text('[schedule]\nnightly_cron = "every night"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["serve", "--config", str(config)])
    assert result.exit_code != 0
    assert "nightly_cron 'every night'" in str(result.exception)
    config.write_text('[schedule]\ntimezone = "Mars/Olympus"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["serve", "--config", str(config)])
    assert "Mars/Olympus" in str(result.exception)


def test_prefect_home_lives_beside_the_database(tmp_path: Path) -> None:
    assert prefect_home(_settings(tmp_path)) == (tmp_path / "data" / "prefect").resolve()


@pytest.mark.slow
def test_local_server_starts_answers_and_stops(tmp_path: Path) -> None:
    server = LocalPrefectServer(tmp_path / "prefect", startup_timeout=150)
    started = time.monotonic()
    with server:
        took = time.monotonic() - started
        assert server.running
        assert server.url.startswith("http://127.0.0.1:")
        health = httpx.get(f"{server.api_url}/health", timeout=5)
        assert health.status_code == 200 and health.json() is True
        # The UI is served at the printed address.
        assert httpx.get(server.url, timeout=5).status_code == 200
    assert not server.running
    assert server.database.is_file() and server.database.stat().st_size > 0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.api_url}/health", timeout=2)
    print(f"local Prefect server healthy after {took:.1f} s")


def test_second_writer_waits_then_fails_clearly(tmp_path: Path) -> None:
    database = tmp_path / "data" / "newsmon.duckdb"
    with nightly_writer(database, wait_seconds=0.5, use_prefect_limit=False):
        started = time.monotonic()
        with (pytest.raises(WriterBusy) as info,
              nightly_writer(database, wait_seconds=0.6, use_prefect_limit=False)):
            pytest.fail("two writers held the lock at once")
        assert time.monotonic() - started >= 0.5
    assert f"pid {os.getpid()}" in str(info.value) and "Try again" in str(info.value)
    # Released: the next writer gets it at once.
    with nightly_writer(database, wait_seconds=0, use_prefect_limit=False):
        assert lock_file_for(database).is_file()


def test_second_writer_that_waits_long_enough_gets_the_lock(tmp_path: Path) -> None:
    lock = tmp_path / "w.lock"
    order: list[str] = []
    first_in = threading.Event()

    def first() -> None:
        with file_lock(lock, 1):
            first_in.set()
            order.append("first in")
            time.sleep(0.4)
            order.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(5)
    with file_lock(lock, 5):
        order.append("second in")
    thread.join()
    assert order == ["first in", "first out", "second in"]


def test_lock_of_a_killed_process_is_released(tmp_path: Path) -> None:
    lock = tmp_path / "w.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         ("import sys, time; from pathlib import Path; from newsmon.writer_lock import file_lock\n"
          f"with file_lock(Path({str(lock)!r}), 1):\n    print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(WriterBusy), file_lock(lock, 0.2):
            pass
        holder.kill()
        holder.wait(10)
        with file_lock(lock, 5):
            assert f"pid {os.getpid()}" in lock.read_text()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)


@pytest.mark.slow
def test_prefect_limit_keeps_a_second_writer_out(prefect_harness: None, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    # Two databases, so only the Prefect limit (not the lock file) can keep them apart: the
    # case of two machines writing one shared warehouse.
    with nightly_writer(tmp_path / "a.duckdb", wait_seconds=5, use_prefect_limit=True):
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(WRITER_LIMIT)
        assert (limit.limit, limit.active_slots) == (1, 1)
        with (pytest.raises(WriterBusy) as info,
              nightly_writer(tmp_path / "b.duckdb", wait_seconds=1.5, use_prefect_limit=True)):
            pytest.fail("two writers held the Prefect limit at once")
        assert WRITER_LIMIT in str(info.value)
    with (nightly_writer(tmp_path / "b.duckdb", wait_seconds=5, use_prefect_limit=True),
          get_client(sync_client=True) as client):
        assert client.read_global_concurrency_limit_by_name(WRITER_LIMIT).active_slots == 1
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(WRITER_LIMIT).active_slots == 0



def test_prefect_yaml_deploys_both_flows_to_a_process_pool() -> None:
    import yaml

    from newsmon.paths import PROJECT_ROOT

    spec = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    deployments = {d["name"]: d for d in spec["deployments"]}
    assert set(deployments) == {NIGHTLY_DEPLOYMENT, DIGEST_DEPLOYMENT}
    defaults = ScheduleSettings()
    for name, cron, flow_name in ((NIGHTLY_DEPLOYMENT, defaults.nightly_cron, "nightly_ingest"),
                                  (DIGEST_DEPLOYMENT, defaults.digest_cron, "weekly_digest")):
        d = deployments[name]
        path, _, function = d["entrypoint"].partition(":")
        assert function == flow_name
        assert f"def {flow_name}(" in (PROJECT_ROOT / path).read_text(encoding="utf-8")
        assert d["schedules"] == [{"cron": cron, "timezone": defaults.timezone, "active": True}]
        assert d["parameters"] == {"config_path": None}
        assert d["work_pool"]["name"] == "newsmon-process"
        assert d["concurrency_limit"] == 1


@pytest.mark.slow
def test_second_nightly_run_stops_clearly_while_one_writes(prefect_harness: None, tmp_path: Path) -> None:
    from flows.nightly import nightly_ingest

    database = tmp_path / "news.duckdb"
    config = tmp_path / "newsmon.toml"
    config.write_text(f'[storage]\ndatabase = "{database}"\nlock_wait_seconds = 1\n\n'
                      '[[feeds]]\nname = "Local"\nurl = "http://127.0.0.1:9/feed.xml"\n', encoding="utf-8")
    # The first night holds the lock file, as a run in another process would.
    with file_lock(lock_file_for(database), 1):
        started = time.monotonic()
        with pytest.raises(WriterBusy) as info:
            nightly_ingest(config_path=str(config))
        waited = time.monotonic() - started
    assert "another nightly run is writing to this database" in str(info.value)
    assert waited >= 1.0
    # It stopped before recording a run or touching any feed.
    assert not database.exists()

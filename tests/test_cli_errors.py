"""Bad input at the edges: the real `newsmon` executable, run in a subprocess.

A broken config must end in one clear line that names the problem and the file, never a
traceback; `newsmon query` must refuse anything that writes, and leave the warehouse (and
the file system) as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from reliability import Report, sync_section

from warehouse.db import open_database

NEWSMON = Path(sys.executable).with_name("newsmon")

CONFIG_CASES: dict[str, tuple[str, bytes, list[str]]] = {
    # name: (what the table calls it, file content, words the error line must hold)
    "broken_toml": ("newsmon.toml that is not valid TOML",
                    b"[fetch\nconcurrency = 3\n", ["not valid TOML", "line 1"]),
    "unknown_key": ("unknown key in a section (a typo)",
                    b"[fetch]\nconcurency = 3\n", ["unknown key 'concurency'", "[fetch]"]),
    "unknown_section": ("unknown section",
                        b"[fetching]\nconcurrency = 3\n", ["unknown section [fetching]"]),
    "bad_scheme": ("feed URL with a non-http scheme",
                   b'[[feeds]]\nname = "x"\nurl = "ftp://example.org/feed.xml"\n',
                   ["feed #1", "invalid feed URL", "ftp://example.org/feed.xml"]),
    "no_host": ("feed URL without a host",
                (b'[[feeds]]\nname = "ok"\nurl = "https://example.org/a.xml"\n'
                 b'[[feeds]]\nname = "x"\nurl = "https:///feed.xml"\n'),
                ["feed #2", "invalid feed URL"]),
    "wrong_type": ("value of the wrong type",
                   b'[fetch]\nconcurrency = "many"\n', ["[fetch] concurrency", "integer", "many"]),
    "not_utf8": ("config file that is not UTF-8", b"\xff\xfe[fetch]\n", ["cannot read"]),
}

WRITES: dict[str, str] = {
    "drop": "DROP TABLE articles",
    "insert": "INSERT INTO runs (run_id, started_at, status) VALUES ('x', now(), 'x')",
    "update": "UPDATE articles SET title = 'changed'",
    "delete": "WITH t AS (SELECT 1) DELETE FROM articles",
    "create": "CREATE TABLE scratch (a INTEGER)",
    "second statement": "SELECT 1; DROP TABLE articles",
    "copy to file": "COPY articles TO '{tmp}/leak.csv'",
    "export database": "EXPORT DATABASE '{tmp}/dump'",
    "attach new file": "ATTACH '{tmp}/other.duckdb' AS other",
}

REPORT = Report(
    section="cli",
    title="Bad input at the edges (tests/test_cli_errors.py)",
    faults=(*(case[0] for case in CONFIG_CASES.values()),
            "config file that does not exist", "broken ./newsmon.toml found without --config",
            "broken file named by $NEWSMON_CONFIG",
            *(f"newsmon query: {name}" for name in WRITES)),
)


@pytest.fixture(scope="module")
def report() -> Iterator[Report]:
    yield REPORT


@dataclass(frozen=True)
class Job:
    args: tuple[str, ...]
    cwd: Path
    env: tuple[tuple[str, str], ...] = ()


def _newsmon(job: Job) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    environ.update(dict(job.env))
    return subprocess.run([str(NEWSMON), *job.args], cwd=job.cwd, env=environ,
                          capture_output=True, text=True, timeout=60, check=False)


def _make_warehouse(folder: Path) -> Path:
    folder.mkdir()
    database = folder / "news.duckdb"
    con = open_database(database)
    con.execute("INSERT INTO runs (run_id, started_at, status)"
                " VALUES ('r1', TIMESTAMPTZ '2026-11-02 02:00:00+00', 'completed')")
    con.close()
    config = folder / "newsmon.toml"
    config.write_text(f'[storage]\ndatabase = "{database}"\n')
    return config


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Job, subprocess.CompletedProcess[str]]]:
    """Run every command line of this module once, four at a time (each pays Python's start-up)."""
    root = tmp_path_factory.mktemp("cli")
    jobs: dict[str, Job] = {}
    for case, (_, content, _) in CONFIG_CASES.items():
        folder = root / case
        folder.mkdir()
        (folder / "custom.toml").write_bytes(content)
        jobs[f"run:{case}"] = Job(("run", "--config", str(folder / "custom.toml")), folder)
    # The same loader serves every command: two more commands on one broken file.
    jobs["status:unknown_key"] = Job(("status", "--config", str(root / "unknown_key" / "custom.toml")),
                                     root / "unknown_key")
    jobs["query:bad_scheme"] = Job(("query", "--config", str(root / "bad_scheme" / "custom.toml"),
                                    "SELECT 1"), root / "bad_scheme")
    jobs["missing"] = Job(("run", "--config", str(root / "nowhere.toml")), root)
    cwd_case = root / "cwd"
    cwd_case.mkdir()
    (cwd_case / "newsmon.toml").write_bytes(CONFIG_CASES["unknown_key"][1])
    jobs["cwd"] = Job(("run",), cwd_case)
    env_case = root / "env"
    env_case.mkdir()
    (env_case / "elsewhere.toml").write_bytes(CONFIG_CASES["broken_toml"][1])
    jobs["env"] = Job(("status",), env_case, (("NEWSMON_CONFIG", str(env_case / "elsewhere.toml")),))
    read = _make_warehouse(root / "read")
    jobs["query:read"] = Job(("query", "--config", str(read), "--format", "csv",
                              "SELECT run_id, status FROM runs"), root / "read")
    for name, sql in WRITES.items():
        folder = root / f"write-{name.replace(' ', '-')}"
        config = _make_warehouse(folder)
        jobs[f"write:{name}"] = Job(("query", "--config", str(config), sql.format(tmp=folder)), folder)
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = dict(zip(jobs, pool.map(_newsmon, jobs.values())))
    return {key: (jobs[key], done[key]) for key in jobs}


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """Assert the run failed with exactly one error line and no traceback; return the line."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_config_is_one_clear_line(runs: dict[str, tuple[Job, subprocess.CompletedProcess[str]]],
                                      case: str, report: Report) -> None:
    label, _, words = CONFIG_CASES[case]
    job, result = runs[f"run:{case}"]
    line = _one_line_error(result)
    config = str(job.cwd / "custom.toml")
    assert line.startswith(f"error: {config}: ")
    for word in words:
        assert word in line
    report.record(label, "one line naming the file and the problem, exit 2",
                  line.replace(config, "custom.toml"))


@pytest.mark.parametrize("key", ["status:unknown_key", "query:bad_scheme"])
def test_every_command_reports_bad_config_alike(
        runs: dict[str, tuple[Job, subprocess.CompletedProcess[str]]], key: str) -> None:
    job, result = runs[key]
    line = _one_line_error(result)
    case = key.split(":")[1]
    assert line.startswith(f"error: {job.cwd / 'custom.toml'}: ")
    assert all(word in line for word in CONFIG_CASES[case][2])


def test_missing_config_file(runs: dict[str, tuple[Job, subprocess.CompletedProcess[str]]],
                             report: Report) -> None:
    job, result = runs["missing"]
    line = _one_line_error(result)
    assert line == f"error: {job.cwd / 'nowhere.toml'}: config file not found"
    report.record("config file that does not exist", "one line naming the file, exit 2",
                  line.replace(str(job.cwd) + os.sep, ""))


def test_broken_config_found_in_working_directory(
        runs: dict[str, tuple[Job, subprocess.CompletedProcess[str]]], report: Report) -> None:
    _, result = runs["cwd"]
    line = _one_line_error(result)
    assert line.startswith("error: newsmon.toml: unknown key 'concurency' in [fetch]")
    report.record("broken ./newsmon.toml found without --config",
                  "one line naming newsmon.toml, exit 2", line)


def test_broken_config_named_by_environment(
        runs: dict[str, tuple[Job, subprocess.CompletedProcess[str]]], report: Report) -> None:
    job, result = runs["env"]
    line = _one_line_error(result)
    assert f"{job.cwd / 'elsewhere.toml'}: not valid TOML" in line
    report.record("broken file named by $NEWSMON_CONFIG", "one line naming that file, exit 2",
                  line.replace(str(job.cwd) + os.sep, ""))


def _snapshot(folder: Path) -> tuple[object, ...]:
    con = duckdb.connect(str(folder / "news.duckdb"), read_only=True)
    try:
        tables = con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()
        runs = con.execute("SELECT run_id, status FROM runs ORDER BY 1").fetchall()
        return (tuple(tables), tuple(runs))
    finally:
        con.close()


def test_query_reads(runs: dict[str, tuple[Job, subprocess.CompletedProcess[str]]]) -> None:
    _, result = runs["query:read"]
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["run_id,status", "r1,completed"]


@pytest.mark.parametrize("name", list(WRITES))
def test_query_refuses_writes(runs: dict[str, tuple[Job, subprocess.CompletedProcess[str]]],
                              name: str, report: Report) -> None:
    job, result = runs[f"write:{name}"]
    line = _one_line_error(result)
    assert "read-only" in line
    # The warehouse still holds what it held, and no statement left a file behind
    # (COPY ... TO, EXPORT DATABASE and ATTACH write next to the warehouse).
    untouched, _ = runs["query:read"]
    assert _snapshot(job.cwd) == _snapshot(untouched.cwd)
    assert _snapshot(job.cwd)[1] == (("r1", "completed"),)
    assert sorted(p.name for p in job.cwd.iterdir()) == ["news.duckdb", "newsmon.toml"]
    report.record(f"newsmon query: {name}", "refused in one line, warehouse and files unchanged",
                  line.replace(str(job.cwd), "<dir>"))


def test_reliability_table_is_current(report: Report) -> None:
    sync_section(report)

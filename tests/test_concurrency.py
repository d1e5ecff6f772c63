"""A writer process ingests batch after batch while other processes query: nothing fails or is lost."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from warehouse.db import connect

NEWSMON = Path(sys.executable).with_name("newsmon")
BATCHES = 12
BATCH_SIZE = 200

# Each batch: open the file, append articles and their tags from Arrow in one transaction,
# close (releasing the lock), pause briefly as the nightly flow does between fetches.
WRITER = textwrap.dedent(
    """
    import os, sys, time
    from datetime import datetime, timedelta, timezone
    import pyarrow as pa
    from warehouse.bulk import append_tables_to

    db, batches, size, done, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    # Start once the reader is up, so the race really happens on a busy machine too.
    deadline = time.monotonic() + 30
    while not os.path.exists(ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    start = datetime(2026, 11, 16, 8, tzinfo=timezone.utc)
    ts = pa.timestamp("us", tz="UTC")
    for b in range(batches):
        ids = [f"b{b:03d}-{i:04d}" for i in range(size)]
        when = [start + timedelta(minutes=b * size + i) for i in range(size)]
        articles = pa.table({
            "id": ids, "url": [f"https://example.org/{i}" for i in ids],
            "title": [f"Story {i}" for i in ids],
            "published_at": pa.array(when, ts), "date_source": ["feed"] * size,
            "fetched_at": pa.array(when, ts), "text": ["text"] * size,
            "text_source": ["page"] * size, "relevant": [True] * size,
            "content_hash": [f"h-{i}" for i in ids],
        })
        themes = pa.table({
            "article_id": ids, "url": [f"https://example.org/{i}" for i in ids],
            "theme": ["licensing"] * size, "score": [0.9] * size,
            "evidence": ["e"] * size, "themes_version": ["v"] * size,
        })
        answered = os.path.getsize(ready)
        append_tables_to(db, {"articles": articles, "article_themes": themes},
                         lock_wait_seconds=30)
        print(b, flush=True)
        # Pause as the nightly flow does between batches, until the reader has answered once
        # more (bounded): a write is faster than a query, and the race must really happen.
        deadline = time.monotonic() + 5
        while os.path.getsize(ready) <= answered and time.monotonic() < deadline:
            time.sleep(0.01)
    open(done, "w").close()
    """
)

# `newsmon query` run over and over in one process (no interpreter start between runs), so
# its opens of the file interleave densely with the writer's.
READER = textwrap.dedent(
    """
    import contextlib, io, json, os, sys, time
    from newsmon.cli import app

    config, done, ready = sys.argv[1], sys.argv[2], sys.argv[3]
    open(ready, "w").close()
    sql = "SELECT count(*) AS n, (SELECT count(*) FROM article_themes) AS tags FROM articles"
    while True:
        finished = os.path.exists(done)
        out = io.StringIO()
        started = time.monotonic()
        try:
            with contextlib.redirect_stdout(out):
                app(["query", sql, "--format", "json", "--config", config], standalone_mode=False)
            row = json.loads(out.getvalue())[0]
            print(json.dumps({"ok": True, "n": row["n"], "tags": row["tags"],
                              "seconds": time.monotonic() - started}), flush=True)
            with open(ready, "a") as answers:  # the writer paces itself by this file's size
                answers.write(".")
        except BaseException as exc:
            print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        if finished:
            break
    """
)


@pytest.mark.slow
def test_queries_during_batched_writes(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    with connect(db):
        pass  # create and migrate before the race starts
    config = tmp_path / "newsmon.toml"
    config.write_text(f"[storage]\ndatabase = '{db}'\nlock_wait_seconds = 30\n", encoding="utf-8")
    done = tmp_path / "writer.done"
    ready = tmp_path / "reader.ready"
    (tmp_path / "writer.py").write_text(WRITER, encoding="utf-8")
    (tmp_path / "reader.py").write_text(READER, encoding="utf-8")

    started = time.monotonic()
    writer = subprocess.Popen(
        [sys.executable, str(tmp_path / "writer.py"), str(db), str(BATCHES), str(BATCH_SIZE), str(done), str(ready)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reader = subprocess.Popen([sys.executable, str(tmp_path / "reader.py"), str(config), str(done), str(ready)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Meanwhile, real `newsmon query` processes, as a user at a terminal would start them.
    cli_runs: list[subprocess.CompletedProcess[str]] = []
    while writer.poll() is None and time.monotonic() - started < 60:
        cli_runs.append(subprocess.run(
            [str(NEWSMON), "query", "SELECT count(*) AS n FROM articles", "--format", "csv",
             "--config", str(config)], check=False, capture_output=True, text=True, timeout=60))
    writer_out, writer_err = writer.communicate(timeout=60)
    reader_out, reader_err = reader.communicate(timeout=60)

    assert writer.returncode == 0, writer_err
    assert writer_out.split() == [str(b) for b in range(BATCHES)]
    assert reader.returncode == 0, reader_err

    results = [json.loads(line) for line in reader_out.splitlines()]
    failures = [r for r in results if not r["ok"]]
    assert failures == []
    counts = [r["n"] for r in results]
    assert len(counts) >= 5
    # Every answer is a whole number of committed batches, tags included, and never goes back.
    assert all(n % BATCH_SIZE == 0 for n in counts)
    assert all(r["tags"] == r["n"] for r in results)
    assert counts == sorted(counts)
    assert any(0 < n < BATCHES * BATCH_SIZE for n in counts), "no query ran while writing"
    assert counts[-1] == BATCHES * BATCH_SIZE

    assert cli_runs, "no newsmon process ran while the writer was busy"
    for run in cli_runs:
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr
        n = int(run.stdout.split()[1])
        assert n % BATCH_SIZE == 0

    with connect(db, read_only=True) as con:
        per_batch = con.execute(
            "SELECT count(DISTINCT split_part(id, '-', 1)), count(*), min(c), max(c) FROM ("
            " SELECT id, count(*) OVER (PARTITION BY split_part(id, '-', 1)) AS c FROM articles)"
        ).fetchone()
        tags = con.execute("SELECT count(*) FROM article_themes t JOIN articles a ON a.id = t.article_id").fetchone()
    assert per_batch == (BATCHES, BATCHES * BATCH_SIZE, BATCH_SIZE, BATCH_SIZE)
    assert tags == (BATCHES * BATCH_SIZE,)
    assert time.monotonic() - started < 60

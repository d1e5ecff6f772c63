"""`newsmon status` on a real DuckDB file written through the warehouse's own writers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.commands.ops import human_size
from warehouse import store
from warehouse.status import status_report
from warehouse.store import ArticleRecord, ErrorRecord, FeedState, RunCounts

NOW = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)


def _article(n: int, feed_url: str, fetched_at: datetime) -> ArticleRecord:
    return ArticleRecord(
        id=f"{n:016x}", url=f"https://news.example/{n}", title=f"Story {n}", source="Example",
        published_at=fetched_at, date_source="feed", fetched_at=fetched_at, language="en",
        author=None, text=f"Text of story {n} about open-weights models. " * 20, text_source="page",
        relevant=True, relevance=0.8, themes_version="t1", feed_url=feed_url, guid=None,
        summary=None, content_hash=f"hash-{n}", html_zstd=b"\x28\xb5\x2f\xfd" + bytes(200),
        final_url=f"https://news.example/{n}", status=200, content_type="text/html",
    )


@pytest.fixture()
def seeded(db_path: Path) -> Path:
    """Three nights of runs, one feed failing for four nights, one gone stale, one fresh."""
    fresh, stale, broken, idle = ("https://fresh.example/feed", "https://stale.example/feed",
                                  "https://broken.example/feed", "https://idle.example/feed")
    for night in range(3):
        started = NOW - timedelta(days=3 - night, hours=-2)
        run_id = f"run{night}"
        store.start_run(db_path, run_id, None, started)
        store.finish_run(db_path, run_id, RunCounts(feeds_ok=2, feeds_failed=1, articles_new=night + 1,
                                                    articles_duplicate=night),
                         started + timedelta(minutes=5), "completed")
        store.record_errors(db_path, run_id, [ErrorRecord(broken, "feed", "HTTP 503 after 3 attempts",
                                                          started, broken)])
    store.start_run(db_path, "killed", None, NOW - timedelta(hours=1))  # never finished
    store.save_feed_states(db_path, [
        FeedState(url=fresh, name="Fresh", last_polled_at=NOW, consecutive_failures=0),
        FeedState(url=stale, name="Stale", last_polled_at=NOW, consecutive_failures=0),
        FeedState(url=broken, name="Broken", last_polled_at=NOW, consecutive_failures=4,
                  last_error="HTTP 503 after 3 attempts"),
        FeedState(url=idle, name="Idle", last_polled_at=NOW, consecutive_failures=2,
                  last_new_entry_at=NOW - timedelta(days=2)),
    ])
    store.store_articles(db_path, [_article(1, fresh, NOW - timedelta(days=1)),
                                   _article(2, stale, NOW - timedelta(days=40)),
                                   _article(3, stale, NOW - timedelta(days=30))], "run0")
    return db_path


def test_status_report_reads_runs_failing_stale_and_size(seeded: Path) -> None:
    report = status_report(seeded, runs=3, failing_after=3, stale_days=14, now=NOW)
    assert [r.run_id for r in report.runs] == ["killed", "run2", "run1"]
    assert report.runs[0].finished_at is None and report.runs[0].status == "running"
    run2 = report.runs[1]
    assert (run2.articles_new, run2.articles_duplicate, run2.feeds_failed, run2.errors) == (3, 2, 1, 1)
    assert [(f.name, f.consecutive_failures) for f in report.failing] == [("Broken", 4)]
    # Broken never brought an article: it is stale "never", listed first; Stale's last article
    # is 30 days old. Fresh (1 day) and Idle (feed state says 2 days) are not stale.
    assert [(s.name, None if s.days is None else round(s.days)) for s in report.stale] == [
        ("Broken", None), ("Stale", 30)]
    assert report.size.articles == 3 and report.size.pages == 3
    assert report.size.file_bytes >= seeded.stat().st_size > 0
    assert 0 < report.size.used_bytes <= report.size.file_bytes


def test_status_thresholds_change_the_lists(seeded: Path) -> None:
    report = status_report(seeded, failing_after=2, stale_days=45, now=NOW)
    assert [f.name for f in report.failing] == ["Broken", "Idle"]
    assert [s.name for s in report.stale] == ["Broken"]


def test_status_command_prints_everything(seeded: Path, tmp_path: Path) -> None:
    config = tmp_path / "newsmon.toml"
    config.write_text(f'[storage]\ndatabase = "{seeded}"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["status", "--config", str(config), "--runs", "2",
                                      "--stale-days", "14"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Last 2 runs" in out and "killed" in out and "run2" in out and "run1" not in out
    assert "running (or killed)" in out
    assert "Feeds failing 3+ nights in a row" in out and "Broken" in out and "HTTP 503 after 3" in out
    assert "no new article for 14+ days" in out and "Stale" in out and "never" in out
    on_disk = human_size(status_report(seeded).size.file_bytes)
    assert f"{on_disk} on disk" in out and "3 articles, 3 raw pages" in out


def test_human_size() -> None:
    assert [human_size(n) for n in (512, 2048, 5 * 2**20, 3 * 2**30)] == [
        "512 B", "2.0 KB", "5.0 MB", "3.0 GB"]


def test_status_without_database_is_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "newsmon.toml"
    config.write_text(f'[storage]\ndatabase = "{tmp_path / "none.duckdb"}"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["status", "--config", str(config)])
    assert result.exit_code != 0
    assert "no database yet" in str(result.exception)

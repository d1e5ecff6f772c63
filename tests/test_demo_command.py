"""`newsmon demo`: the main job on the bundled sample site, end to end."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from newsmon.cli import app

pytestmark = pytest.mark.slow


def test_demo_stores_sample_and_reruns_cleanly(prefect_harness: None, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./newsmon.toml: built-in defaults
    runner = CliRunner()
    first = runner.invoke(app, ["demo", "--folder", str(tmp_path / "demo")])
    assert first.exit_code == 0, first.output
    assert "Articles per source" in first.output and "Relevant articles per theme" in first.output
    database = tmp_path / "demo" / "newsmon.duckdb"
    assert str(database) in first.output.replace("\n", "")
    con = duckdb.connect(str(database), read_only=True)
    try:
        stored, relevant = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE relevant) FROM articles").fetchone()  # type: ignore[misc]
        themes = con.execute("SELECT count(DISTINCT theme) FROM article_themes").fetchone()
        weeks = con.execute(
            "SELECT count(DISTINCT date_trunc('week', published_at)) FROM articles").fetchone()
    finally:
        con.close()
    assert stored > 100 and 0 < relevant < stored  # real posts are relevant, saved news pages not
    assert themes is not None and themes[0] >= 6
    assert weeks is not None and weeks[0] >= 4  # spread over weeks, so trends have a shape
    assert list((tmp_path / "demo" / "digest").glob("*.html"))

    second = runner.invoke(app, ["demo", "--folder", str(tmp_path / "demo")])
    assert second.exit_code == 0, second.output
    con = duckdb.connect(str(database), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (stored,)
        last = con.execute(
            "SELECT articles_new, articles_duplicate, feeds_not_modified, status FROM runs"
            " ORDER BY started_at DESC LIMIT 1").fetchone()
        feeds = con.execute("SELECT count(*) FROM feeds").fetchone()
    finally:
        con.close()
    # Same URLs on the rerun: every feed answers 304 and no article is fetched again.
    assert feeds is not None and last == (0, 0, feeds[0], "completed")

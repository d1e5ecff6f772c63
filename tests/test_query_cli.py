"""`newsmon query`, `trends` and `export` on a real DuckDB file, in-process and as a real process."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from test_views import article, emerging_fixture, store
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.commands.warehouse import column_chart, sparkline
from newsmon.errors import UserError

NEWSMON = Path(sys.executable).with_name("newsmon")



@pytest.fixture(scope="module")
def warehouse_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config naming a database with six weeks of tagged articles (Berlin time)."""
    folder = tmp_path_factory.mktemp("cli")
    db = folder / "news.duckdb"
    monday = datetime(2026, 10, 12, 10, tzinfo=UTC)
    rows, themes = [], []
    for week in range(6):
        for i in range(4 + week):
            art_id = f"w{week}a{i}"
            when = monday + timedelta(weeks=week, days=i % 5)
            rows.append(article(art_id, title=f"Open weights story {i}", published=when,
                                fetched=when + timedelta(hours=2), source=f"outlet{i % 2}"))
            themes.append((art_id, "licensing" if i % 2 == 0 else "open_weights"))
            if i < week:
                themes.append((art_id, "agents"))
    rows.append(article("irrelevant", published=monday, fetched=monday, relevant=False))
    store(db, rows, themes=themes, entities=[("w5a0", "Llama 3.1", "model", 2)])
    config = folder / "newsmon.toml"
    config.write_text(f"[storage]\ndatabase = '{db}'\nlock_wait_seconds = 5\n\n"
                      "[trends]\ntimezone = 'Europe/Berlin'\n", encoding="utf-8")
    return config


runner = CliRunner()


def test_query_prints_a_table(warehouse_config: Path) -> None:
    sql = "SELECT iso_week, count(*) AS n FROM articles_dated WHERE relevant GROUP BY ALL ORDER BY 1"
    result = runner.invoke(app, ["query", sql, "--config", str(warehouse_config)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("iso_week" in line and "n" in line for line in lines)
    assert any("2026-W42" in line and " 4 " in line for line in lines)
    assert any("2026-W47" in line and " 9 " in line for line in lines)
    assert lines[-1] == "6 rows"


def test_query_table_caps_rows(warehouse_config: Path) -> None:
    result = runner.invoke(app, ["query", "SELECT id FROM articles ORDER BY id", "--max-rows", "3",
                                 "-c", str(warehouse_config)])
    assert result.exit_code == 0, result.output
    assert "40 rows, 37 not shown" in result.output
    assert "w0a0" in result.output and "w5a8" not in result.output


def test_query_csv_and_json(warehouse_config: Path) -> None:
    sql = ("SELECT week, iso_week, theme, articles, share FROM theme_weekly"
           " WHERE theme = 'agents' ORDER BY week")
    as_csv = runner.invoke(app, ["query", sql, "--format", "csv", "-c", str(warehouse_config)])
    assert as_csv.exit_code == 0, as_csv.output
    table = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert [r["iso_week"] for r in table] == [f"2026-W{w}" for w in range(42, 48)]
    assert [int(r["articles"]) for r in table] == [0, 1, 2, 3, 4, 5]
    assert table[0]["week"] == "2026-10-12"

    as_json = runner.invoke(app, ["query", sql, "--format", "json", "-c", str(warehouse_config)])
    assert as_json.exit_code == 0, as_json.output
    records = json.loads(as_json.output)
    assert [r["articles"] for r in records] == [0, 1, 2, 3, 4, 5]
    assert records[-1]["share"] == pytest.approx(5 / 9)
    assert records[0]["week"] == "2026-10-12"


def test_query_json_keeps_timestamps_in_the_configured_timezone(warehouse_config: Path) -> None:
    result = runner.invoke(app, ["query", "SELECT article_date FROM articles_dated WHERE id = 'w0a0'",
                                 "-f", "json", "-c", str(warehouse_config)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"article_date": "2026-10-12T12:00:00+02:00"}]


def test_query_writes_parquet_and_files(warehouse_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "weekly.parquet"
    result = runner.invoke(app, ["query", "SELECT * FROM theme_weekly", "--format", "parquet",
                                 "--out", str(out), "-c", str(warehouse_config)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows == 18  # six weeks x three themes
    assert set(table.column_names) == {"week", "iso_week", "theme", "articles", "relevant_articles", "share"}

    csv_out = tmp_path / "out.csv"
    result = runner.invoke(app, ["query", "SELECT 1 AS one", "-f", "csv", "-o", str(csv_out),
                                 "-c", str(warehouse_config)])
    assert result.exit_code == 0
    assert csv_out.read_text(encoding="utf-8") == "one\n1\n"


def test_parquet_needs_out(warehouse_config: Path) -> None:
    result = runner.invoke(app, ["query", "SELECT 1", "--format", "parquet", "-c", str(warehouse_config)])
    assert isinstance(result.exception, UserError)
    assert "--out" in str(result.exception)


def test_bad_query_reports_duckdb_message(warehouse_config: Path) -> None:
    result = runner.invoke(app, ["query", "SELECT * FROM theme_weekyl", "-c", str(warehouse_config)])
    assert isinstance(result.exception, UserError)
    assert "theme_weekyl does not exist" in str(result.exception)
    assert 'Did you mean "theme_weekly"' in str(result.exception)


@pytest.mark.parametrize("sql", [
    "DELETE FROM articles",
    "CREATE TABLE t AS SELECT 1",
    "UPDATE articles SET title = 'x'",
])
def test_writing_statements_are_refused(warehouse_config: Path, sql: str) -> None:
    result = runner.invoke(app, ["query", sql, "-c", str(warehouse_config)])
    assert isinstance(result.exception, UserError)
    assert "read-only" in str(result.exception)
    after = runner.invoke(app, ["query", "SELECT count(*) AS n FROM articles", "-f", "csv",
                                "-c", str(warehouse_config)])
    assert after.output == "n\n40\n"


def test_missing_database_is_one_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"[storage]\ndatabase = '{tmp_path / 'none.duckdb'}'\n", encoding="utf-8")
    result = runner.invoke(app, ["query", "SELECT 1", "-c", str(config)])
    assert isinstance(result.exception, UserError)
    assert "no database yet" in str(result.exception)
    assert not (tmp_path / "none.duckdb").exists()


def test_real_process_bad_query_exits_nonzero_without_traceback(warehouse_config: Path) -> None:
    bad = subprocess.run([str(NEWSMON), "query", "SELEC 1", "--config", str(warehouse_config)],
                         check=False, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr + bad.stdout
    assert bad.stderr.startswith("error: Parser Error: syntax error at or near \"SELEC\"")

    good = subprocess.run([str(NEWSMON), "query", "SELECT count(*) AS n FROM theme_weekly",
                           "--format", "csv", "--config", str(warehouse_config)],
                          check=False, capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stderr
    assert good.stdout == "n\n18\n"


def test_trends_prints_table_and_chart(warehouse_config: Path) -> None:
    result = runner.invoke(app, ["trends", "--weeks", "4", "--emerging", "-c", str(warehouse_config)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "2026-W44 to 2026-W47 (Europe/Berlin)" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│")}
    assert set(rows) == {"agents", "licensing", "open_weights"}
    # agents: 5 of 9 relevant articles in 2026-W47, up from 4 of 8.
    assert "55.6%" in rows["agents"] and "+5.6 pp" in rows["agents"]
    assert "relevant articles per week" in out
    assert "█" in out
    # Every title is "Open weights story N": nothing new this week.
    assert "emerging terms" not in out


def test_trends_for_one_theme(warehouse_config: Path) -> None:
    result = runner.invoke(app, ["trends", "--theme", "agents", "--weeks", "6", "-c", str(warehouse_config)])
    assert result.exit_code == 0, result.output
    weeks = [line for line in result.output.splitlines() if line.startswith("│ 2026-W")]
    assert len(weeks) == 6
    assert "2026-W42" in weeks[0] and "0.0%" in weeks[0]
    assert "2026-W47" in weeks[-1] and "55.6%" in weeks[-1]
    assert "share of relevant articles tagged agents" in result.output


def test_trends_unknown_theme(warehouse_config: Path) -> None:
    result = runner.invoke(app, ["trends", "--theme", "nope", "-c", str(warehouse_config)])
    assert isinstance(result.exception, UserError)
    assert "known: agents, licensing, open_weights" in str(result.exception)


def test_export_command(warehouse_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "bi"
    result = runner.invoke(app, ["export", "--parquet", str(out), "-c", str(warehouse_config)])
    assert result.exit_code == 0, result.output
    assert "articles 40 rows, article_themes 54 rows, article_entities 1 rows" in result.output
    assert "\x1b[" not in result.output  # no progress display when not a terminal
    months = sorted(p.name for p in (out / "articles").iterdir())
    assert months == ["month=2026-10", "month=2026-11"]
    themes = ds.dataset(out / "article_themes", format="parquet", partitioning="hive").to_table()
    assert themes.num_rows == 39 + 15  # one theme each, plus agents


def test_sparkline_and_column_chart() -> None:
    assert sparkline([0.0, 0.5, 1.0]) == "▁▄█"
    assert sparkline([0.0, 0.0]) == "▁▁"
    chart = column_chart([1.0, 0.5], ["W1", "W2"], height=2, fmt="{:.0f}")
    assert chart.splitlines() == [
        "1 │██   ",
        "0 │██ ██",
        "  └─────",
        "   W1 W2",
    ]
    # All bars tall: the axis starts above zero so the difference shows.
    tall = column_chart([100.0, 90.0], ["a", "b"], height=4, fmt="{:.0f}").splitlines()
    assert tall[0].startswith("100 │██") and tall[3].startswith(" 80 │██ ██")
    assert tall[1] == "    │██   " and tall[2] == "    │██ ██"


def test_trends_lists_emerging_terms(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    emerging_fixture(db)
    store(db, [], themes=[("p0", "licensing"), ("z24", "licensing")])
    config = tmp_path / "c.toml"
    config.write_text(f"[storage]\ndatabase = '{db}'\n", encoding="utf-8")
    result = runner.invoke(app, ["trends", "--emerging", "-c", str(config)])
    assert result.exit_code == 0, result.output
    terms_line = " ".join(result.output[result.output.index("emerging terms in 2026-W47:"):].split())
    assert "zephyrion-9 weights released (5)" in terms_line
    # The bundled themes file's licensing phrases cover "license": today's themes apply.
    from parsers.themes import load_themes

    phrases = [p for theme in load_themes().themes for p in theme.phrases]
    assert any(p.lower().startswith("licen") for p in phrases)
    assert "license" not in terms_line

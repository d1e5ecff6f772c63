"""`newsmon retag`: every stored article re-tagged from its text, old version swapped out atomically."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.retagging import retag_database, tag_batch
from parsers.entities import load_gazetteer
from parsers.themes import LexicalTagger, TagResult, load_tagger, load_themes
from warehouse import tags as sql
from warehouse.db import connect

OPEN_LICENSE = (
    "Meta released Llama 3.1 as an open-weight model under its community license. The license "
    "restricts commercial use for services with more than 700 million monthly active users, "
    "and its acceptable use policy lists what the open model may not be used for."
)
ON_DEVICE = (
    "Qualcomm showed the open-source Llama 2 model running locally on a Snapdragon phone. "
    "Quantized to 4-bit, the small model needs no cloud: inference happens on the device."
)
OFF_TOPIC = "The city council approved new bicycle lanes and a budget for the river park."


def _articles(rows: list[tuple[str, str | None, str | None]]) -> pa.Table:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    return pa.table(
        {
            "id": [r[0] for r in rows],
            "url": [f"https://news.example/{r[0]}" for r in rows],
            "title": [r[1] for r in rows],
            "date_source": ["feed"] * len(rows),
            "fetched_at": pa.array([now] * len(rows), pa.timestamp("us", tz="UTC")),
            "text": [r[2] for r in rows],
            "text_source": ["page"] * len(rows),
            "relevant": [True] * len(rows),
            "relevance": [0.5] * len(rows),
            "themes_version": ["old"] * len(rows),
            "content_hash": [f"hash-{r[0]}" for r in rows],
        }
    )


@pytest.fixture()
def stored(db_path: Path) -> Path:
    """A warehouse with three articles tagged by an old themes version, plus old entities."""
    articles = _articles(
        [("a1", "Llama 3.1 license", OPEN_LICENSE), ("a2", None, ON_DEVICE), ("a3", "Parks", OFF_TOPIC)]
    )
    old_themes = pa.table(
        {
            "article_id": ["a1", "a3"],
            "url": ["https://news.example/a1", "https://news.example/a3"],
            "theme": ["business-models", "business-models"],
            "score": [0.9, 0.8],
            "evidence": ["old", "old"],
            "themes_version": ["old", "old"],
        }
    )
    old_entities = pa.table(
        {"article_id": ["a3"], "entity": ["Old"], "kind": ["model"], "mentions": pa.array([1], pa.int32())}
    )
    with connect(db_path) as con:
        con.register("new_articles", articles)
        con.execute(f"INSERT INTO articles ({', '.join(articles.column_names)}) SELECT * FROM new_articles")
        con.register("old_themes", old_themes)
        con.execute("INSERT INTO article_themes SELECT * FROM old_themes")
        con.register("old_entities", old_entities)
        con.execute("INSERT INTO article_entities SELECT * FROM old_entities")
    return db_path


def _rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    with connect(path, read_only=True) as con:
        return con.execute(query).fetchall()


def test_retag_replaces_old_tags_with_the_current_version(stored: Path) -> None:
    tagger = load_tagger()
    report = retag_database(stored, tagger, load_gazetteer(), batch_size=2)
    assert (report.articles, report.relevant) == (3, 2)
    version = tagger.version
    articles = _rows(stored, "SELECT id, relevant, relevance, themes_version FROM articles ORDER BY id")
    assert [(a[0], a[1], a[3]) for a in articles] == [
        ("a1", True, version), ("a2", True, version), ("a3", False, version)
    ]
    expected = {a: tagger.tag(text, title) for a, title, text in
                [("a1", "Llama 3.1 license", OPEN_LICENSE), ("a2", None, ON_DEVICE), ("a3", "Parks", OFF_TOPIC)]}
    assert [a[2] for a in articles] == [expected[k].relevance for k in ("a1", "a2", "a3")]
    themes = _rows(stored, "SELECT article_id, theme, score, evidence, themes_version, url FROM article_themes ORDER BY 1, 3 DESC")
    assert {r[4] for r in themes} == {version}
    assert [(r[0], r[1]) for r in themes] == [
        (k, t.theme) for k in ("a1", "a2") for t in expected[k].tags
    ]
    assert ("a1", "licensing-and-openness") in {(r[0], r[1]) for r in themes}
    assert ("a2", "on-device-inference") in {(r[0], r[1]) for r in themes}
    for row in themes:
        assert row[3] and row[5] == f"https://news.example/{row[0]}"
    entities = _rows(stored, "SELECT article_id, entity, kind, mentions FROM article_entities ORDER BY 1, 2")
    assert ("a1", "Llama 3.1", "model", 2) in entities  # title and text
    assert ("a1", "Meta", "organisation", 1) in entities
    assert ("a2", "Qualcomm", "organisation", 2) in entities  # Qualcomm and Snapdragon
    assert not [e for e in entities if e[0] == "a3"]  # the old entity row is gone


def test_retag_handles_articles_without_text(db_path: Path) -> None:
    with connect(db_path) as con:
        table = _articles([("n1", "Open-weight Llama model news", None)])
        con.register("t", table)
        con.execute(f"INSERT INTO articles ({', '.join(table.column_names)}) SELECT * FROM t")
    report = retag_database(db_path, load_tagger(), load_gazetteer())
    assert report.articles == 1
    assert _rows(db_path, "SELECT themes_version FROM articles") == [(load_themes().version,)]


def test_a_failed_swap_leaves_the_old_version_in_place(stored: Path) -> None:
    tagger = load_tagger()
    with connect(stored) as con:
        sql.begin_staging(con)
        batch = next(sql.article_text_batches(con, 10))
        tables = tag_batch(batch, tagger, load_gazetteer())
        sql.stage_batch(con, *tables)
        # The same theme rows twice break article_themes' key inside the swap transaction.
        con.execute("DELETE FROM retag_relevance")
        sql.stage_batch(con, *tables)
        with pytest.raises(Exception, match="(?i)constraint|duplicate"):
            sql.swap_staged(con, tagger.version)
    assert _rows(stored, "SELECT DISTINCT themes_version FROM articles") == [("old",)]
    assert _rows(stored, "SELECT article_id, theme, themes_version FROM article_themes ORDER BY 1") == [
        ("a1", "business-models", "old"), ("a3", "business-models", "old")
    ]
    assert _rows(stored, "SELECT entity FROM article_entities") == [("Old",)]


def test_a_tagger_failure_mid_run_changes_nothing(stored: Path) -> None:
    class Failing(LexicalTagger):
        calls = 0

        def tag(self, text: str, title: str | None = None) -> TagResult:
            Failing.calls += 1
            if Failing.calls > 2:
                raise RuntimeError("tagger broke")
            return super().tag(text, title)

    with pytest.raises(RuntimeError, match="tagger broke"):
        retag_database(stored, Failing(load_themes()), load_gazetteer(), batch_size=1)
    assert _rows(stored, "SELECT count(*) FROM article_themes WHERE themes_version = 'old'") == [(2,)]
    assert _rows(stored, "SELECT DISTINCT themes_version FROM articles") == [("old",)]


def test_retag_command_reports_counts(stored: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSMON_STORAGE__DATABASE", str(stored))
    monkeypatch.delenv("NEWSMON_CONFIG", raising=False)
    monkeypatch.chdir(stored.parent)
    result = CliRunner().invoke(app, ["retag", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    version = load_themes().version
    assert f"retagged 3 articles with themes version {version}: 2 relevant" in result.stdout
    assert "tagged 2/3 articles" in result.stderr
    assert _rows(stored, "SELECT DISTINCT themes_version FROM article_themes") == [(version,)]


def test_versions_summary(stored: Path) -> None:
    with connect(stored, read_only=True) as con:
        assert sql.themes_versions(con) == {"old": 3}

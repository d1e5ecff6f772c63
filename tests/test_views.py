"""The documented views, on a real DuckDB file: dates, ISO weeks, counts, emerging terms, export."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from warehouse.bulk import append_tables_to
from warehouse.db import applied_migrations, connect
from warehouse.queries import (
    emerging_terms,
    export_parquet,
    known_themes,
    latest_week,
    refresh_theme_phrases,
    theme_phrases,
    theme_trend,
    use_theme_phrases,
)

TS = pa.timestamp("us", tz="UTC")


def article(id: str, *, title: str = "Open model news", published: datetime | None,
            fetched: datetime, relevant: bool = True, source: str | None = "example.org",
            date_source: str = "feed", text: str = "body") -> dict[str, Any]:
    """Return one articles row with the columns the views read."""
    return {
        "id": id, "url": f"https://example.org/{id}", "title": title, "source": source,
        "published_at": published, "date_source": date_source, "fetched_at": fetched,
        "text": text, "text_source": "page", "relevant": relevant,
        "relevance": 0.9 if relevant else 0.1, "themes_version": "t1", "content_hash": f"hash-{id}",
    }


ARTICLE_SCHEMA = pa.schema([
    ("id", pa.string()), ("url", pa.string()), ("title", pa.string()), ("source", pa.string()),
    ("published_at", TS), ("date_source", pa.string()), ("fetched_at", TS), ("text", pa.string()),
    ("text_source", pa.string()), ("relevant", pa.bool_()), ("relevance", pa.float64()),
    ("themes_version", pa.string()), ("content_hash", pa.string()),
])


def store(path: Path, articles: Iterable[dict[str, Any]], themes: Iterable[tuple[str, str]] = (),
          entities: Iterable[tuple[str, str, str, int]] = ()) -> None:
    """Append articles, (article_id, theme) tags and (article_id, entity, kind, mentions) rows."""
    rows = list(articles)
    theme_rows = list(themes)
    entity_rows = list(entities)
    tables = {"articles": pa.Table.from_pylist(rows, schema=ARTICLE_SCHEMA)}
    if theme_rows:
        tables["article_themes"] = pa.table({
            "article_id": [a for a, _ in theme_rows],
            "url": [f"https://example.org/{a}" for a, _ in theme_rows],
            "theme": [t for _, t in theme_rows],
            "score": [0.8] * len(theme_rows),
            "evidence": ["because"] * len(theme_rows),
            "themes_version": ["t1"] * len(theme_rows),
        })
    if entity_rows:
        tables["article_entities"] = pa.table({
            "article_id": [r[0] for r in entity_rows], "entity": [r[1] for r in entity_rows],
            "kind": [r[2] for r in entity_rows],
            "mentions": pa.array([r[3] for r in entity_rows], pa.int32()),
        })
    append_tables_to(path, tables)


def at(day: str, hour: int = 12, minute: int = 0) -> datetime:
    """Return a UTC datetime on an ISO date."""
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=UTC)


def test_migration_creates_every_documented_view(db_path: Path) -> None:
    with connect(db_path) as con:
        assert 3 in applied_migrations(con)
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        macros = {r[0] for r in con.execute("SELECT function_name FROM duckdb_functions() WHERE function_type = 'table_macro'").fetchall()}
    assert {"articles_dated", "theme_weekly", "theme_daily", "source_weekly", "entity_weekly",
            "emerging_terms"} <= views
    assert "emerging_terms_at" in macros


def test_article_date_uses_published_only_when_plausible(db_path: Path) -> None:
    fetched = at("2026-11-18")
    store(db_path, [
        article("ok", published=at("2026-11-17"), fetched=fetched),
        article("slightly-ahead", published=fetched + timedelta(hours=23), fetched=fetched),
        article("future", published=fetched + timedelta(days=3), fetched=fetched),
        article("ancient", published=at("1994-12-31"), fetched=fetched),
        article("missing", published=None, fetched=fetched),
        article("first-seen", published=at("2026-11-10"), fetched=fetched, date_source="first_seen"),
    ])
    with connect(db_path, read_only=True, timezone="UTC") as con:
        rows = {r[0]: r[1:] for r in con.execute(
            "SELECT id, date_basis, article_date, day, week, iso_week FROM articles_dated").fetchall()}
    assert rows["ok"][0] == "published" and rows["ok"][2] == date(2026, 11, 17)
    assert rows["slightly-ahead"][0] == "published"
    assert rows["slightly-ahead"][2] == date(2026, 11, 19)
    for fallback in ("future", "ancient", "missing", "first-seen"):
        basis, article_date, day, week, iso_week = rows[fallback]
        assert basis == "fetched", fallback
        assert article_date == fetched
        assert day == date(2026, 11, 18)
        assert week == date(2026, 11, 16)  # the Monday
        assert iso_week == "2026-W47"


@pytest.mark.parametrize(
    ("day", "monday", "label"),
    [
        ("2024-12-30", date(2024, 12, 30), "2025-W01"),  # ISO year starts in December
        ("2021-01-03", date(2020, 12, 28), "2020-W53"),  # a Sunday in ISO week 53 of 2020
        ("2026-11-22", date(2026, 11, 16), "2026-W47"),  # Sunday belongs to the week before
        ("2026-11-23", date(2026, 11, 23), "2026-W48"),
    ],
)
def test_iso_week_boundaries(db_path: Path, day: str, monday: date, label: str) -> None:
    store(db_path, [article("a", published=at(day), fetched=at(day, 18))])
    with connect(db_path, read_only=True, timezone="UTC") as con:
        assert con.execute("SELECT week, iso_week FROM articles_dated").fetchone() == (monday, label)


def test_weeks_follow_the_configured_timezone(db_path: Path) -> None:
    # Sunday 23:30 UTC is already Monday in Berlin and still Sunday afternoon in New York.
    late_sunday = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
    store(db_path, [article("a", published=late_sunday, fetched=late_sunday + timedelta(hours=1))])
    expected = {
        "UTC": (date(2026, 11, 22), date(2026, 11, 16), "2026-W47"),
        "Europe/Berlin": (date(2026, 11, 23), date(2026, 11, 23), "2026-W48"),
        "America/New_York": (date(2026, 11, 22), date(2026, 11, 16), "2026-W47"),
        "Asia/Kathmandu": (date(2026, 11, 23), date(2026, 11, 23), "2026-W48"),
    }
    for tz, want in expected.items():
        with connect(db_path, read_only=True, timezone=tz) as con:
            assert con.execute("SELECT day, week, iso_week FROM articles_dated").fetchone() == want, tz


def test_local_day_matches_timezone_library_across_dst_switches(db_path: Path) -> None:
    # Every 37 minutes over two daylight-saving switches of several zones, including the hours
    # right at the switch: the per-day offset shortcut must agree with DuckDB's own conversion.
    start = datetime(2026, 3, 27, tzinfo=UTC)
    stamps = [start + timedelta(minutes=37 * i) for i in range(4 * 24 * 60 // 37)]
    start_fall = datetime(2026, 10, 23, tzinfo=UTC)
    stamps += [start_fall + timedelta(minutes=37 * i) for i in range(5 * 24 * 60 // 37)]
    store(db_path, [article(f"t{i}", published=s, fetched=s) for i, s in enumerate(stamps)])
    for tz in ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/St_Johns", "Pacific/Chatham"):
        with connect(db_path, read_only=True, timezone=tz) as con:
            mismatches = con.execute(
                "SELECT count(*) FROM articles_dated"
                " WHERE day <> CAST(article_date AS DATE)"
                "    OR week <> CAST(date_trunc('week', article_date) AS DATE)"
                "    OR iso_week <> strftime(CAST(article_date AS DATE), '%G-W%V')"
            ).fetchone()
            total = con.execute("SELECT count(*) FROM articles_dated").fetchone()
        assert mismatches == (0,), tz
        assert total == (len(stamps),)


@pytest.fixture()
def two_weeks(db_path: Path) -> Path:
    """Articles over two ISO weeks: themes, sources, entities, and one irrelevant article."""
    w1, w2 = "2026-11-10", "2026-11-17"  # Tuesdays of 2026-W46 and 2026-W47
    store(
        db_path,
        [
            article("a1", published=at(w1), fetched=at(w1, 20), source="The Verge"),
            article("a2", published=at(w1), fetched=at(w1, 20), source="Ars"),
            article("a3", published=at(w1, 9), fetched=at(w1, 20), source="Ars"),
            article("b1", published=at(w2), fetched=at(w2, 20), source="Ars"),
            article("b2", published=at(w2), fetched=at(w2, 20), source=None),
            article("x1", published=at(w2), fetched=at(w2, 20), source="Ars", relevant=False),
        ],
        themes=[("a1", "licensing"), ("a2", "licensing"), ("a2", "safety"), ("a3", "safety"),
                ("b1", "licensing"), ("x1", "licensing"), ("x1", "safety")],
        entities=[("a1", "Llama 3.1", "model", 3), ("a2", "Llama 3.1", "model", 1),
                  ("b1", "Meta", "organisation", 2), ("x1", "Meta", "organisation", 9)],
    )
    return db_path


def test_theme_weekly_counts_relevant_articles_with_zero_rows(two_weeks: Path) -> None:
    with connect(two_weeks, read_only=True, timezone="UTC") as con:
        rows = con.execute(
            "SELECT iso_week, theme, articles, relevant_articles, share FROM theme_weekly ORDER BY ALL"
        ).fetchall()
        types = dict(con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'theme_weekly'"
        ).fetchall())
    assert rows == [
        ("2026-W46", "licensing", 2, 3, pytest.approx(2 / 3)),
        ("2026-W46", "safety", 2, 3, pytest.approx(2 / 3)),
        ("2026-W47", "licensing", 1, 2, 0.5),
        ("2026-W47", "safety", 0, 2, 0.0),  # x1 is irrelevant: left out
    ]
    assert types == {"week": "DATE", "iso_week": "VARCHAR", "theme": "VARCHAR", "articles": "BIGINT",
                     "relevant_articles": "BIGINT", "share": "DOUBLE"}


def test_theme_daily_counts_per_day(two_weeks: Path) -> None:
    with connect(two_weeks, read_only=True, timezone="UTC") as con:
        rows = con.execute("SELECT day, theme, articles, relevant_articles FROM theme_daily ORDER BY ALL").fetchall()
    assert rows == [
        (date(2026, 11, 10), "licensing", 2, 3), (date(2026, 11, 10), "safety", 2, 3),
        (date(2026, 11, 17), "licensing", 1, 2), (date(2026, 11, 17), "safety", 0, 2),
    ]


def test_source_weekly(two_weeks: Path) -> None:
    with connect(two_weeks, read_only=True, timezone="UTC") as con:
        rows = con.execute(
            "SELECT iso_week, source, articles, relevant_articles, all_articles FROM source_weekly ORDER BY ALL"
        ).fetchall()
    assert rows == [
        ("2026-W46", "Ars", 2, 3, 2),
        ("2026-W46", "The Verge", 1, 3, 1),
        ("2026-W47", "(unknown)", 1, 2, 1),  # no source and no feed URL
        ("2026-W47", "Ars", 1, 2, 2),  # one relevant, one irrelevant
    ]


def test_entity_weekly_counts_articles_and_mentions(two_weeks: Path) -> None:
    with connect(two_weeks, read_only=True, timezone="UTC") as con:
        rows = con.execute(
            "SELECT iso_week, entity, kind, articles, mentions FROM entity_weekly ORDER BY ALL"
        ).fetchall()
    assert rows == [
        ("2026-W46", "Llama 3.1", "model", 2, 4),
        ("2026-W47", "Meta", "organisation", 1, 2),  # x1's nine mentions are irrelevant
    ]


def test_theme_trend_and_known_themes(two_weeks: Path) -> None:
    with connect(two_weeks, read_only=True, timezone="UTC") as con:
        assert known_themes(con) == ["licensing", "safety"]
        assert latest_week(con) == date(2026, 11, 16)
        trend = theme_trend(con, weeks=1, theme="licensing")
        both = theme_trend(con, weeks=2)
    assert [(t.iso_week, t.articles, t.share) for t in trend] == [("2026-W47", 1, 0.5)]
    assert len(both) == 4 and {t.iso_week for t in both} == {"2026-W46", "2026-W47"}


def emerging_fixture(path: Path) -> None:
    """Four quiet weeks of routine titles, then a week where a new model name breaks out."""
    rows: list[dict[str, Any]] = []
    monday = date(2026, 11, 16)
    n = 0
    for weeks_back in range(4, 0, -1):
        day = (monday - timedelta(weeks=weeks_back) + timedelta(days=2)).isoformat()
        for i in range(6):
            rows.append(article(f"p{n}", title=f"Benchmark results for quantized models part {i}",
                                published=at(day), fetched=at(day, 20)))
            n += 1
    day = (monday + timedelta(days=1)).isoformat()
    for i in range(5):
        rows.append(article(f"z{n}", title=f"Zephyrion-9 weights released under a permissive license {i}",
                            published=at(day), fetched=at(day, 20)))
        n += 1
    for i in range(4):
        rows.append(article(f"r{n}", title="Hardware roundup: quantized inference on laptops",
                            published=at(day), fetched=at(day, 20)))
        n += 1
    for i in range(6):  # irrelevant: never counted
        rows.append(article(f"x{n}", title="Crypto wallets surge again", published=at(day),
                            fetched=at(day, 20), relevant=False))
        n += 1
    store(path, rows)


def test_emerging_terms_finds_the_new_name(db_path: Path) -> None:
    emerging_fixture(db_path)
    with connect(db_path, timezone="UTC") as con:
        rows = con.execute(
            "SELECT week, iso_week, term, this_week, prior_weekly_avg, ratio FROM emerging_terms ORDER BY ratio DESC, term"
        ).fetchall()
        at_week = con.execute(
            "SELECT * FROM emerging_terms_at(?) ORDER BY ratio DESC, term", [date(2026, 11, 16)]
        ).fetchall()
        quiet_week = con.execute(
            "SELECT count(*) FROM emerging_terms_at(?)", [date(2026, 11, 9)]
        ).fetchone()
    assert rows == at_week
    terms = {r[2]: r for r in rows}
    top = rows[0]
    assert top[:2] == (date(2026, 11, 16), "2026-W47")
    assert top[3] == 5 and top[4] == 0.0 and top[5] == pytest.approx(5.0)
    # The longest phrase that always goes with the name stands for its parts.
    assert {r[2] for r in rows if r[3] == 5} == {"zephyrion-9 weights released", "permissive license"}
    assert "zephyrion-9" not in terms and "weights released" not in terms
    # Stop words neither stand alone nor start or end a phrase.
    assert not any(t.split()[0] in {"under", "a", "on"} or t.split()[-1] in {"under", "a", "on"} for t in terms)
    # "quantized" was already common: no jump. Irrelevant titles never count.
    assert "quantized" not in terms and "crypto" not in terms
    # Hardware roundup is new too (4 articles), and a numbers-only token is never a term.
    assert terms["hardware roundup quantized"][3:] == (4, 0.0, 4.0)
    assert not any(t.isdigit() for t in terms)
    assert quiet_week == (0,)


def test_theme_key_phrases_cover_terms(db_path: Path) -> None:
    emerging_fixture(db_path)
    with connect(db_path, timezone="UTC") as con:
        count = refresh_theme_phrases(con, {"licensing": ["Permissive License", "  "],
                                            "hardware": ["hardware", "Inference"]})
        assert count == 3
        assert theme_phrases(con) == {"hardware": ["hardware", "inference"], "licensing": ["permissive license"]}
        terms = [t for t, *_ in emerging_terms(con, date(2026, 11, 16), limit=50)]
        # Refreshing replaces the old phrases rather than adding to them.
        refresh_theme_phrases(con, {"licensing": ["zephyrion-9"]})
        after = [t for t, *_ in emerging_terms(con, date(2026, 11, 16), limit=50)]
    assert "zephyrion-9 weights released" in terms
    assert not any("hardware" in t or "inference" in t or "permissive license" in t for t in terms)
    assert not any("license" == t or "permissive" == t for t in terms)
    assert not any("zephyrion" in t for t in after)
    assert any("hardware" in t for t in after)


def test_export_parquet_partitions_by_month(two_weeks: Path, tmp_path: Path) -> None:
    store(two_weeks, [article("old", published=at("2026-09-02"), fetched=at("2026-09-02", 20))],
          themes=[("old", "safety")])
    out = tmp_path / "export"
    seen: list[tuple[str, int]] = []
    with connect(two_weeks, read_only=True, timezone="UTC") as con:
        result = export_parquet(con, out, on_table=lambda name, rows: seen.append((name, rows)))
        again = export_parquet(con, out)  # overwriting an earlier export works
    assert seen == [("articles", 7), ("article_themes", 8), ("article_entities", 4)]
    assert again.rows == result.rows
    assert sorted(p.name for p in (out / "articles").iterdir()) == ["month=2026-09", "month=2026-11"]
    articles = ds.dataset(out / "articles", format="parquet", partitioning="hive").to_table()
    assert articles.num_rows == 7
    by_month = {m: articles.filter(ds.field("month") == m).num_rows for m in ("2026-09", "2026-11")}
    assert by_month == {"2026-09": 1, "2026-11": 6}
    assert {"id", "title", "text", "article_date", "date_basis", "iso_week"} <= set(articles.column_names)
    themes = ds.dataset(out / "article_themes", format="parquet", partitioning="hive").to_table()
    assert sorted(zip(themes["article_id"].to_pylist(), themes["theme"].to_pylist()))[:2] == [
        ("a1", "licensing"), ("a2", "licensing")]
    assert result.files == len(list(out.glob("*/month=*/*.parquet")))


def test_prefix_key_phrases_and_session_phrases(db_path: Path) -> None:
    emerging_fixture(db_path)
    with connect(db_path, timezone="UTC") as con:
        refresh_theme_phrases(con, {"licensing": ["permissive licen*"], "hardware": ["roundup*"]})
        assert theme_phrases(con) == {"hardware": ["roundup*"], "licensing": ["permissive licen*"]}
    with connect(db_path, read_only=True, timezone="UTC") as con:
        stored = [t for t, *_ in emerging_terms(con, date(2026, 11, 16), limit=50)]
        # A read-only session can bring the phrases of today's themes file.
        assert use_theme_phrases(con, {"new": ["Zephyrion-9*"]}) == 1
        session = [t for t, *_ in emerging_terms(con, date(2026, 11, 16), limit=50)]
    assert "zephyrion-9 weights released" in stored
    assert not any("permissive" in t or "roundup" in t for t in stored)
    assert not any("zephyrion" in t for t in session)
    assert "permissive license" in session
    with connect(db_path, read_only=True, timezone="UTC") as con:
        # The override lived in that session only.
        assert theme_phrases(con) == {"hardware": ["roundup*"], "licensing": ["permissive licen*"]}

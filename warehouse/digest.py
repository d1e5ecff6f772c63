"""What the weekly digest reads from the warehouse, and the log of digests sent.

Every figure comes from the documented views: headline counts and theme rises and falls
from `theme_weekly`, entities from `entity_weekly`, terms from `emerging_terms_at`, the
week's stories from `articles_dated`. Irrelevant articles are left out by those views.
Reading functions take an open connection (the caller opens it read-only in the trends
timezone); the send log is written with `record_send`, which opens the file briefly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from warehouse.db import connect
from warehouse.queries import ThemeWeek

# One theme's share of relevant articles in one week: the row of the `theme_weekly` view.
ThemeShare = ThemeWeek

__all__ = [
    "ArticleTheme",
    "EmergingTerm",
    "EntityCount",
    "SendRecord",
    "ThemeMove",
    "ThemeShare",
    "WeekArticle",
    "WeekData",
    "latest_week",
    "read_week",
    "record_send",
    "send_log",
    "sent_recipients",
    "theme_moves",
    "theme_shares",
    "top_emerging_terms",
    "top_entities",
    "week_articles",
]

# How much of each article's text the digest needs: the lead for clustering and snippets.
_TEXT_CHARS = 6000


@dataclass(frozen=True)
class ThemeMove:
    """One theme this week against its average over the previous weeks."""

    theme: str
    articles: int
    share: float
    prior_share: float  # mean share over the baseline weeks that had relevant articles
    prior_weeks: int  # how many baseline weeks had relevant articles

    @property
    def change_points(self) -> float:
        """Return the change in share, in percentage points."""
        return (self.share - self.prior_share) * 100.0

    @property
    def change_ratio(self) -> float | None:
        """Return the relative change in share, or None when the theme is new."""
        if self.prior_share <= 0:
            return None
        return self.share / self.prior_share - 1.0


@dataclass(frozen=True)
class ArticleTheme:
    """A theme assigned to an article, with the sentence that decided it."""

    theme: str
    score: float
    evidence: str | None


@dataclass(frozen=True)
class WeekArticle:
    """A relevant article of the week with its themes."""

    id: str
    url: str
    title: str | None
    source: str | None
    feed_url: str | None
    article_date: datetime
    text: str  # the lead of the stored text, else the feed summary
    themes: tuple[ArticleTheme, ...]  # best score first


@dataclass(frozen=True)
class EntityCount:
    """How many of the week's relevant articles name an entity, and how often."""

    entity: str
    kind: str
    articles: int
    mentions: int


@dataclass(frozen=True)
class EmergingTerm:
    """A term whose article count jumped this week against the four weeks before."""

    term: str
    this_week: int
    prior_weekly_avg: float
    ratio: float


@dataclass(frozen=True)
class WeekData:
    """Everything the digest of one week shows, as read from the warehouse."""

    week: date  # Monday of the ISO week
    iso_week: str
    relevant_articles: int
    prior_relevant_avg: float | None  # mean over baseline weeks with relevant articles
    shares: tuple[ThemeShare, ...]  # chart weeks, oldest first
    moves: tuple[ThemeMove, ...]  # biggest change in share first
    articles: tuple[WeekArticle, ...]
    entities: tuple[EntityCount, ...]
    terms: tuple[EmergingTerm, ...]


@dataclass(frozen=True)
class SendRecord:
    """One attempt to send one week's digest to one recipient."""

    week: str
    recipient: str
    status: str  # sent | failed
    attempted_at: datetime
    sent_at: datetime | None = None
    error: str | None = None
    message_id: str | None = None


def latest_week(con: duckdb.DuckDBPyConnection) -> date | None:
    """Return the Monday of the latest week that has relevant articles, if any."""
    row = con.execute("SELECT max(week) FROM theme_weekly").fetchone()
    return row[0] if row else None


def theme_shares(con: duckdb.DuckDBPyConnection, week: date, weeks: int = 12) -> list[ThemeShare]:
    """Return theme shares for the `weeks` weeks ending with `week`, oldest first."""
    rows = con.execute(
        """
        SELECT week, iso_week, theme, articles, relevant_articles, share
        FROM theme_weekly
        WHERE week > CAST(? AS DATE) - CAST(? AS INTEGER) * 7 AND week <= CAST(? AS DATE)
        ORDER BY week, theme
        """,
        [week, weeks, week],
    ).fetchall()
    return [ThemeShare(*row) for row in rows]


def theme_moves(con: duckdb.DuckDBPyConnection, week: date, baseline_weeks: int = 4) -> list[ThemeMove]:
    """Return every theme's share this week against its mean over the baseline weeks."""
    rows = con.execute(
        """
        WITH cur AS (
            SELECT theme, articles, share FROM theme_weekly WHERE week = CAST($week AS DATE)
        ), prior AS (
            SELECT theme, avg(share) AS prior_share, count(DISTINCT week) AS prior_weeks
            FROM theme_weekly
            WHERE week >= CAST($week AS DATE) - CAST($n AS INTEGER) * 7
              AND week < CAST($week AS DATE)
            GROUP BY theme
        )
        SELECT coalesce(c.theme, p.theme) AS theme,
               coalesce(c.articles, 0) AS articles,
               coalesce(c.share, 0.0) AS share,
               coalesce(p.prior_share, 0.0) AS prior_share,
               coalesce(p.prior_weeks, 0) AS prior_weeks
        FROM cur c FULL OUTER JOIN prior p ON p.theme = c.theme
        ORDER BY abs(coalesce(c.share, 0.0) - coalesce(p.prior_share, 0.0)) DESC, theme
        """,
        {"week": week, "n": baseline_weeks},
    ).fetchall()
    return [ThemeMove(*row) for row in rows]


def week_articles(con: duckdb.DuckDBPyConnection, week: date) -> list[WeekArticle]:
    """Return the week's relevant articles with their assigned themes, newest first."""
    rows = con.execute(
        """
        SELECT a.id, a.url, a.title, a.source, a.feed_url, a.article_date,
               left(coalesce(nullif(a.text, ''), a.summary, ''), CAST($chars AS INTEGER)) AS text,
               list({'theme': t.theme, 'score': t.score, 'evidence': t.evidence}
                    ORDER BY t.score DESC, t.theme) FILTER (WHERE t.theme IS NOT NULL) AS themes
        FROM articles_dated a LEFT JOIN article_themes t ON t.article_id = a.id
        WHERE a.relevant IS TRUE AND a.week = CAST($week AS DATE)
        GROUP BY ALL
        ORDER BY a.article_date DESC, a.id
        """,
        {"week": week, "chars": _TEXT_CHARS},
    ).fetchall()
    return [
        WeekArticle(
            id=row[0], url=row[1], title=row[2], source=row[3], feed_url=row[4],
            article_date=row[5], text=row[6] or "",
            themes=tuple(ArticleTheme(t["theme"], t["score"], t["evidence"]) for t in row[7] or ()),
        )
        for row in rows
    ]


def top_entities(con: duckdb.DuckDBPyConnection, week: date, limit: int = 10) -> list[EntityCount]:
    """Return the entities named by the most relevant articles this week."""
    rows = con.execute(
        """
        SELECT entity, kind, articles, mentions FROM entity_weekly
        WHERE week = CAST(? AS DATE)
        ORDER BY articles DESC, mentions DESC, entity
        LIMIT ?
        """,
        [week, limit],
    ).fetchall()
    return [EntityCount(*row) for row in rows]


def top_emerging_terms(con: duckdb.DuckDBPyConnection, week: date, limit: int = 10) -> list[EmergingTerm]:
    """Return this week's emerging terms, the biggest jump first."""
    rows = con.execute(
        """
        SELECT term, this_week, prior_weekly_avg, ratio FROM emerging_terms_at(CAST(? AS DATE))
        ORDER BY ratio DESC, this_week DESC, term
        LIMIT ?
        """,
        [week, limit],
    ).fetchall()
    return [EmergingTerm(*row) for row in rows]


def read_week(
    con: duckdb.DuckDBPyConnection,
    week: date,
    *,
    chart_weeks: int = 12,
    baseline_weeks: int = 4,
    entities: int = 10,
    terms: int = 10,
) -> WeekData:
    """Read everything the digest of the week starting `week` shows."""
    counts = con.execute(
        """
        SELECT max(relevant_articles) FILTER (WHERE week = CAST($week AS DATE)),
               avg(relevant_articles) FILTER (WHERE week < CAST($week AS DATE))
        FROM (SELECT DISTINCT week, relevant_articles FROM theme_weekly
              WHERE week >= CAST($week AS DATE) - CAST($n AS INTEGER) * 7
                AND week <= CAST($week AS DATE))
        """,
        {"week": week, "n": baseline_weeks},
    ).fetchone()
    current, prior = (counts or (None, None))
    iso = week.isocalendar()
    return WeekData(
        week=week,
        iso_week=f"{iso.year}-W{iso.week:02d}",
        relevant_articles=int(current or 0),
        prior_relevant_avg=float(prior) if prior is not None else None,
        shares=tuple(theme_shares(con, week, chart_weeks)),
        moves=tuple(theme_moves(con, week, baseline_weeks)),
        articles=tuple(week_articles(con, week)),
        entities=tuple(top_entities(con, week, entities)),
        terms=tuple(top_emerging_terms(con, week, terms)),
    )


def sent_recipients(con: duckdb.DuckDBPyConnection, iso_week: str) -> set[str]:
    """Return the recipients who were already sent the digest of `iso_week`."""
    rows = con.execute(
        "SELECT DISTINCT recipient FROM digests WHERE week = ? AND status = 'sent'", [iso_week]
    ).fetchall()
    return {row[0] for row in rows}


def record_send(target: str | Path | duckdb.DuckDBPyConnection, records: Sequence[SendRecord],
                *, lock_wait_seconds: float = 30.0) -> None:
    """Append send attempts to the digests log, in one transaction."""
    if not records:
        return
    if isinstance(target, duckdb.DuckDBPyConnection):
        _insert_records(target, records)
        return
    with connect(target, lock_wait_seconds=lock_wait_seconds) as con:
        _insert_records(con, records)


def _insert_records(con: duckdb.DuckDBPyConnection, records: Sequence[SendRecord]) -> None:
    rows: list[list[Any]] = [
        [r.week, r.recipient, r.status, r.attempted_at, r.sent_at, r.error, r.message_id]
        for r in records
    ]
    con.execute("BEGIN TRANSACTION")
    try:
        con.executemany(
            "INSERT INTO digests (week, recipient, status, attempted_at, sent_at, error, message_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def send_log(con: duckdb.DuckDBPyConnection, iso_week: str | None = None) -> list[SendRecord]:
    """Return the recorded send attempts, of one week or all, oldest first."""
    rows = con.execute(
        """
        SELECT week, recipient, status, attempted_at, sent_at, error, message_id FROM digests
        WHERE ? IS NULL OR week = ?
        ORDER BY attempted_at, recipient
        """,
        [iso_week, iso_week],
    ).fetchall()
    return [SendRecord(*row) for row in rows]

"""Read-side SQL: ad-hoc queries on a read-only connection, theme trends, Parquet export.

The documented views (migration 003, docs/warehouse.md) are the public query surface; these
functions are thin, typed doors onto them for the command line and the digest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

__all__ = [
    "EXPORT_TABLES",
    "ExportResult",
    "QueryError",
    "QueryRefused",
    "ThemeWeek",
    "emerging_terms",
    "export_parquet",
    "known_themes",
    "latest_week",
    "refresh_theme_phrases",
    "run_query",
    "theme_phrases",
    "theme_trend",
    "use_theme_phrases",
]


class QueryError(ValueError):
    """DuckDB rejected a query; the message is DuckDB's own."""


class QueryRefused(QueryError):
    """A query tried to change the warehouse through the read-only door."""


@dataclass(frozen=True)
class ThemeWeek:
    week: date
    iso_week: str
    theme: str
    articles: int
    relevant_articles: int
    share: float


@dataclass(frozen=True)
class ExportResult:
    directory: Path
    rows: Mapping[str, int]  # table name -> rows written
    files: int


# SELECT covers PRAGMA, SHOW, DESCRIBE and SUMMARIZE; SET only changes this session.
_READING_STATEMENTS = frozenset({
    duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN, duckdb.StatementType.SET,
})


def run_query(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Run a user's SQL and return the last statement's result as an Arrow table."""
    if not sql.strip():
        raise QueryError("empty query")
    try:
        # A read-only database still lets COPY ... TO, EXPORT DATABASE, ATTACH and INSTALL
        # write files or reach the network, so only reading statement types are run.
        kinds = [statement.type for statement in con.extract_statements(sql)]
    except duckdb.Error as exc:
        raise QueryError(str(exc).strip()) from None
    refused = sorted({kind.name for kind in kinds if kind not in _READING_STATEMENTS})
    if refused:
        raise QueryRefused(
            "newsmon query opens the warehouse read-only and runs only reading statements; "
            f"refused: {', '.join(refused)}"
        )
    try:
        result = con.execute(sql)
        if result.description is None:
            # A statement without a result set (SET, PRAGMA ...): nothing to print.
            return pa.table({})
        return result.to_arrow_table()
    except duckdb.Error as exc:
        message = str(exc).strip()
        if "read-only mode" in message or "read_only" in message.lower():
            raise QueryRefused(
                "newsmon query opens the warehouse read-only and runs only reading statements; "
                f"DuckDB said: {message}"
            ) from None
        raise QueryError(message) from None


def latest_week(con: duckdb.DuckDBPyConnection) -> date | None:
    """Return the Monday of the latest ISO week that has relevant articles."""
    row = con.execute("SELECT latest_trend_week()").fetchone()
    return row[0] if row else None


def known_themes(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Return every theme id that has been assigned to an article, sorted."""
    return [r[0] for r in con.execute("SELECT DISTINCT theme FROM article_themes ORDER BY theme").fetchall()]


def theme_trend(con: duckdb.DuckDBPyConnection, *, weeks: int, theme: str | None = None,
                until: date | None = None) -> list[ThemeWeek]:
    """Return theme_weekly rows for the `weeks` weeks ending at `until` (default: the latest)."""
    if weeks < 1:
        raise ValueError("weeks must be at least 1")
    end = until if until is not None else latest_week(con)
    if end is None:
        return []
    start = end - timedelta(weeks=weeks - 1)
    rows = con.execute(
        """SELECT week, iso_week, theme, articles, relevant_articles, share
           FROM theme_weekly_since(CAST(? AS DATE))
           WHERE week <= CAST(? AS DATE) AND (CAST(? AS VARCHAR) IS NULL OR theme = ?)
           ORDER BY week, theme""",
        [start, end, theme, theme],
    ).fetchall()
    return [ThemeWeek(*row) for row in rows]


def emerging_terms(con: duckdb.DuckDBPyConnection, week_start: date | None = None, *,
                   limit: int = 10) -> list[tuple[str, int, float, float]]:
    """Return (term, this_week, prior_weekly_avg, ratio) of a week's emerging terms, best first."""
    start = week_start if week_start is not None else latest_week(con)
    if start is None:
        return []
    rows = con.execute(
        "SELECT term, this_week, prior_weekly_avg, ratio FROM emerging_terms_at(?)"
        " ORDER BY ratio DESC, this_week DESC, term LIMIT ?",
        [start, limit],
    ).fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def refresh_theme_phrases(con: duckdb.DuckDBPyConnection,
                          phrases: Mapping[str, Iterable[str]]) -> int:
    """Replace the stored theme key phrases (theme id -> phrases) that emerging terms skip."""
    pairs = [(theme, phrase) for theme, items in phrases.items() for phrase in items if phrase.strip()]
    staged = pa.table({
        "theme": pa.array([t for t, _ in pairs], pa.string()),
        "phrase": pa.array([p for _, p in pairs], pa.string()),
    })
    con.execute("BEGIN TRANSACTION")
    try:
        con.register("staged_key_phrases", staged)
        con.execute("DELETE FROM theme_key_phrases")
        # key_phrase_text normalises as the emerging-terms macro does, so the anti-join agrees.
        con.execute(
            "INSERT INTO theme_key_phrases"
            " SELECT DISTINCT theme, key_phrase_text(phrase) FROM staged_key_phrases"
            " WHERE term_text(phrase) <> ''"
        )
        con.unregister("staged_key_phrases")
        count = con.execute("SELECT count(*) FROM theme_key_phrases").fetchone()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return int(count[0]) if count else 0


def use_theme_phrases(con: duckdb.DuckDBPyConnection, phrases: Mapping[str, Iterable[str]]) -> int:
    """Make this session's emerging terms skip these key phrases, even on a read-only connection."""
    pairs = [(theme, phrase) for theme, items in phrases.items() for phrase in items if phrase.strip()]
    staged = pa.table({
        "theme": pa.array([t for t, _ in pairs], pa.string()),
        "phrase": pa.array([p for _, p in pairs], pa.string()),
    })
    con.register("session_key_phrases", staged)
    try:
        # A temporary table comes first in the search path, so it shadows the stored one for
        # this connection only; a read-only file cannot be written, its temp schema can.
        con.execute(
            "CREATE OR REPLACE TEMP TABLE theme_key_phrases AS"
            " SELECT DISTINCT theme, key_phrase_text(phrase) AS phrase FROM session_key_phrases"
            " WHERE term_text(phrase) <> ''"
        )
    finally:
        con.unregister("session_key_phrases")
    count = con.execute("SELECT count(*) FROM temp.theme_key_phrases").fetchone()
    return int(count[0]) if count else 0


def theme_phrases(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Return the stored key phrases per theme, as normalised for matching."""
    found: dict[str, list[str]] = {}
    for theme, phrase in con.execute(
        "SELECT theme, phrase FROM theme_key_phrases ORDER BY theme, phrase"
    ).fetchall():
        found.setdefault(theme, []).append(phrase)
    return found


# Each export: its folder name and the query whose rows it holds; every row carries `month`
# (YYYY-MM of the article's trend date in the session timezone), the partition key.
EXPORT_TABLES: tuple[tuple[str, str], ...] = (
    ("articles",
     "SELECT *, strftime(article_date, '%Y-%m') AS month FROM articles_dated"),
    ("article_themes",
     ("SELECT t.*, a.week, a.iso_week, a.relevant, strftime(a.article_date, '%Y-%m') AS month"
      " FROM article_themes t JOIN articles_dated a ON a.id = t.article_id")),
    ("article_entities",
     ("SELECT e.*, a.week, a.iso_week, a.relevant, strftime(a.article_date, '%Y-%m') AS month"
      " FROM article_entities e JOIN articles_dated a ON a.id = e.article_id")),
)


def export_parquet(con: duckdb.DuckDBPyConnection, out_dir: str | Path,
                   on_table: Callable[[str, int], None] | None = None) -> ExportResult:
    """Write articles and their tags as Parquet under out_dir/<table>/month=YYYY-MM/."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    for name, query in EXPORT_TABLES:
        target = out / name
        # COPY takes no bound parameter for its target; the path is quoted as a literal.
        literal = "'" + str(target).replace("'", "''") + "'"
        result = con.execute(
            f"COPY ({query}) TO {literal}"
            " (FORMAT parquet, PARTITION_BY (month), OVERWRITE true, COMPRESSION zstd)"
        ).fetchone()
        rows[name] = int(result[0]) if result else 0
        if on_table is not None:
            on_table(name, rows[name])
    files = sum(1 for _ in out.glob("*/month=*/*.parquet"))
    return ExportResult(directory=out, rows=rows, files=files)

"""Small read-side summaries printed by `newsmon run` and `newsmon demo`."""

from __future__ import annotations

from pathlib import Path

from warehouse.db import connect

__all__ = ["articles_per_source", "articles_per_theme", "last_run"]


def articles_per_source(path: Path, *, lock_wait: float = 30.0) -> list[tuple[str, int, int]]:
    """Return (source, articles, relevant articles) for every source, largest first."""
    with connect(path, read_only=True, lock_wait_seconds=lock_wait) as con:
        return [(r[0], int(r[1]), int(r[2])) for r in con.execute(
            """SELECT coalesce(source, '(unknown)'), count(*), count(*) FILTER (WHERE relevant)
               FROM articles GROUP BY 1 ORDER BY 2 DESC, 1"""
        ).fetchall()]


def articles_per_theme(path: Path, *, lock_wait: float = 30.0) -> list[tuple[str, int]]:
    """Return (theme, relevant articles tagged with it), largest first."""
    with connect(path, read_only=True, lock_wait_seconds=lock_wait) as con:
        return [(r[0], int(r[1])) for r in con.execute(
            """SELECT t.theme, count(DISTINCT t.article_id) FROM article_themes t
               JOIN articles a ON a.id = t.article_id WHERE a.relevant
               GROUP BY 1 ORDER BY 2 DESC, 1"""
        ).fetchall()]


def last_run(path: Path, *, lock_wait: float = 30.0) -> dict[str, object] | None:
    """Return the most recent row of `runs` as a mapping."""
    with connect(path, read_only=True, lock_wait_seconds=lock_wait) as con:
        cursor = con.execute("SELECT * FROM runs ORDER BY started_at DESC LIMIT 1")
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cursor.description], row))

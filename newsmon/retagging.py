"""Re-tag every stored article from its stored text, batch by batch, swapped in atomically."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from parsers.entities import Gazetteer, find_entities
from parsers.themes import Tagger, TagResult
from warehouse import tags as sql
from warehouse.db import connect

__all__ = ["RetagReport", "retag_database", "tag_batch"]


@dataclass(frozen=True)
class RetagReport:
    themes_version: str
    articles: int
    relevant: int
    theme_rows: int
    entity_rows: int
    seconds: float
    swap_seconds: float

    @property
    def articles_per_second(self) -> float:
        """Return the overall rate, swap included."""
        return self.articles / self.seconds if self.seconds > 0 else 0.0


def _tag_texts(tagger: Tagger, texts: Sequence[str], titles: Sequence[str | None]) -> list[TagResult]:
    tag_many = getattr(tagger, "tag_many", None)
    if tag_many is not None:
        return list(tag_many(list(zip(texts, titles))))
    return [tagger.tag(text, title) for text, title in zip(texts, titles)]


def tag_batch(
    batch: pa.RecordBatch, tagger: Tagger, gazetteer: Gazetteer
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Tag one Arrow batch of (id, url, title, text); return relevance, theme and entity tables."""
    ids = batch.column("id").to_pylist()
    urls = batch.column("url").to_pylist()
    titles = batch.column("title").to_pylist()
    texts = batch.column("text").to_pylist()
    results = _tag_texts(tagger, texts, titles)
    relevance = pa.table(
        {
            "article_id": ids,
            "relevant": [r.relevant for r in results],
            "relevance": [r.relevance for r in results],
        },
        schema=sql.RELEVANCE_SCHEMA,
    )
    theme_cols: dict[str, list[object]] = {name: [] for name in sql.THEME_SCHEMA.names}
    entity_cols: dict[str, list[object]] = {name: [] for name in sql.ENTITY_SCHEMA.names}
    for article_id, url, title, text, result in zip(ids, urls, titles, texts, results):
        for tag in result.tags:
            theme_cols["article_id"].append(article_id)
            theme_cols["url"].append(url)
            theme_cols["theme"].append(tag.theme)
            theme_cols["score"].append(tag.score)
            theme_cols["evidence"].append(tag.evidence)
        # Same input as the nightly store: the title, then the text.
        for mention in find_entities(f"{title or ''}\n{text}", gazetteer):
            entity_cols["article_id"].append(article_id)
            entity_cols["entity"].append(mention.entity)
            entity_cols["kind"].append(mention.kind)
            entity_cols["mentions"].append(mention.mentions)
    return (
        relevance,
        pa.table(theme_cols, schema=sql.THEME_SCHEMA),
        pa.table(entity_cols, schema=sql.ENTITY_SCHEMA),
    )


def retag_database(
    path: str | Path,
    tagger: Tagger,
    gazetteer: Gazetteer,
    *,
    batch_size: int = 2000,
    lock_wait_seconds: float = 30.0,
    progress: Callable[[int, int], None] | None = None,
) -> RetagReport:
    """Recompute relevance, themes and entities of every stored article; swap in one transaction."""
    started = time.perf_counter()
    with connect(path, lock_wait_seconds=lock_wait_seconds, vacuum=True) as con:
        total = sql.count_articles(con)
        sql.begin_staging(con)
        done = 0
        for batch in sql.article_text_batches(con, batch_size):
            sql.stage_batch(con, *tag_batch(batch, tagger, gazetteer))
            done += batch.num_rows
            if progress is not None:
                progress(done, total)
        swap_started = time.perf_counter()
        counts = sql.swap_staged(con, tagger.version)
        swap_seconds = time.perf_counter() - swap_started
    return RetagReport(
        themes_version=tagger.version,
        articles=counts.articles,
        relevant=counts.relevant,
        theme_rows=counts.theme_rows,
        entity_rows=counts.entity_rows,
        seconds=time.perf_counter() - started,
        swap_seconds=swap_seconds,
    )

"""Measure `newsmon retag` on a warehouse of synthetic stored articles (default 100,000).

The articles are cut from the bundled blog posts (sample/articles), 1-5 KB each, written into a
fresh DuckDB file with Arrow in one insert, each already carrying an old version's theme and
entity rows. Then the re-tag runs exactly as the command does (read in Arrow batches, tag,
stage, one swap transaction) and the timing and the resulting row counts are printed.

Usage (from the project root): .venv/bin/python -m bench.retag [--articles 100000] [--batch-size 2000]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from bench.tagging import sample_posts
from newsmon.retagging import retag_database
from parsers.entities import load_gazetteer
from parsers.themes import load_tagger
from warehouse.db import connect

__all__ = ["build_warehouse", "main", "synthetic_articles"]


def _chunks() -> list[tuple[str, str]]:
    chunks: list[tuple[str, str]] = []
    for title, body in sample_posts():
        for start in range(0, len(body), 3000):
            piece = body[start : start + 5000]
            if len(piece) >= 1000:
                chunks.append((title, piece))
    return chunks


def synthetic_articles(count: int) -> pa.Table:
    """Return `count` article rows (Arrow) with distinct ids, URLs and content hashes."""
    chunks = _chunks()
    now = datetime.now(UTC)
    ids, urls, titles, texts, hashes = [], [], [], [], []
    for i in range(count):
        title, text = chunks[i % len(chunks)]
        url = f"https://news.example/{i}"
        ids.append(hashlib.sha256(url.encode()).hexdigest()[:16])
        urls.append(url)
        titles.append(title)
        texts.append(text)
        hashes.append(f"{i:064x}")  # distinct per row: the repeats stand for distinct stories
    n = count
    return pa.table(
        {
            "id": ids,
            "url": urls,
            "title": titles,
            "date_source": ["feed"] * n,
            "fetched_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
            "text": texts,
            "text_source": ["page"] * n,
            "relevant": [True] * n,
            "relevance": [0.5] * n,
            "themes_version": ["old"] * n,
            "content_hash": hashes,
        }
    )


def build_warehouse(path: Path, count: int) -> float:
    """Write `count` synthetic articles, each with an old theme and entity row; return seconds."""
    started = time.perf_counter()
    articles = synthetic_articles(count)
    ids = articles.column("id")
    old_themes = pa.table(
        {
            "article_id": ids,
            "url": articles.column("url"),
            "theme": ["business-models"] * count,
            "score": [0.9] * count,
            "evidence": ["old evidence"] * count,
            "themes_version": ["old"] * count,
        }
    )
    old_entities = pa.table(
        {"article_id": ids, "entity": ["Old"] * count, "kind": ["model"] * count, "mentions": [1] * count}
    )
    with connect(path) as con:
        con.register("synthetic_articles", articles)
        con.execute(f"INSERT INTO articles ({', '.join(articles.column_names)}) SELECT * FROM synthetic_articles")
        con.register("old_themes", old_themes)
        con.execute("INSERT INTO article_themes SELECT * FROM old_themes")
        con.register("old_entities", old_entities)
        con.execute("INSERT INTO article_entities SELECT * FROM old_entities")
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    """Build the synthetic warehouse, run the re-tag, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "retag.duckdb"
        built = build_warehouse(path, args.articles)
        print(f"built {args.articles:,} synthetic articles in {built:.1f} s")
        tagger = load_tagger()
        gazetteer = load_gazetteer()
        cpu = time.process_time()
        report = retag_database(path, tagger, gazetteer, batch_size=args.batch_size)
        cpu = time.process_time() - cpu
        # Wall time depends on what else the machine runs; CPU time is this process's own work
        # (tagging runs on one core; DuckDB's threads add a little during reads and the swap).
        print(
            f"retag: {report.articles:,} articles in {report.seconds:.1f} s wall clock "
            f"({report.articles_per_second:,.0f} articles/s), {cpu:.1f} s of CPU time "
            f"({report.articles / max(cpu, 1e-9):,.0f} articles/s); "
            f"swap transaction {report.swap_seconds:.2f} s"
        )
        print(
            f"  {report.relevant:,} relevant, {report.theme_rows:,} theme rows, "
            f"{report.entity_rows:,} entity rows, themes version {report.themes_version}"
        )
        with connect(path, read_only=True) as con:
            stale = con.execute(
                "SELECT (SELECT count(*) FROM article_themes WHERE themes_version <> ?),"
                " (SELECT count(*) FROM articles WHERE themes_version <> ?),"
                " (SELECT count(*) FROM article_entities WHERE entity = 'Old')",
                [report.themes_version, report.themes_version],
            ).fetchone()
        print(f"  rows left from the old version (themes, articles, entities): {stale}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

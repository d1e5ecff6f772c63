"""Measure the warehouse at scale: bulk write rate, size, and the time of every documented view.

Generates 1,000,000 synthetic articles over three years (rising to 10,000 a week in the latest
weeks) with themes, entities and URLs, appends them from Arrow in bulk batches, then times each
view, `newsmon trends` and `newsmon query` (in-process and as a fresh process). A made-up
model name is planted in the latest week's titles, so emerging_terms must find it.

    .venv/bin/python -m bench.warehouse [--articles N] [--keep DIR [--reuse]]
        [--batch N] [--rows-per-transaction N]

`--articles 100000` gives a quick run (under a minute); the write rate per article hardly
depends on the size. `--rows-per-transaction 0` writes each generated batch in a transaction
of its own, as the benchmark did before warehouse.bulk.append_batches.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

# This script is named like the `warehouse` package it measures, and Python puts the script's
# folder first on the path; take it off so `import warehouse` finds the package.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import numpy as np
import pyarrow as pa

from warehouse.bulk import ROW_GROUP_ROWS, append_batches, append_tables
from warehouse.db import connect
from warehouse.queries import refresh_theme_phrases
from warehouse.records import ArticleRecord, EntityRow, ThemeRow
from warehouse.store import store_articles

WEEKS = 156
PEAK_PER_WEEK = 10_000
FLAT_WEEKS = 12
LATEST_MONDAY = datetime(2026, 11, 16, tzinfo=UTC)
PLANTED_TERM = "zephyrion-9"
THEMES = ("open_weights", "licensing", "safety", "fine_tuning", "benchmarks", "hardware",
          "policy", "community", "agents")
ENTITIES = (
    ("Llama 3.1", "model"), ("Llama 2", "model"), ("Mistral", "model"), ("Mixtral", "model"),
    ("DeepSeek", "model"), ("Qwen", "model"), ("Gemma", "model"), ("Phi", "model"),
    ("Falcon", "model"), ("gpt-oss", "model"), ("GPT-4o", "model"), ("Claude", "model"),
    ("Gemini", "model"), ("Meta", "organisation"), ("OpenAI", "organisation"),
    ("Anthropic", "organisation"), ("Google", "organisation"), ("Microsoft", "organisation"),
    ("Hugging Face", "organisation"), ("NVIDIA", "organisation"), ("Apple", "organisation"),
    ("AWS", "organisation"), ("Mistral AI", "organisation"), ("Qualcomm", "organisation"),
)
KEY_PHRASES = {
    "open_weights": ["open weights", "open-weight model", "model weights"],
    "licensing": ["license", "licence", "apache 2.0", "acceptable use policy"],
    "safety": ["red teaming", "safety evaluation", "guardrails"],
    "fine_tuning": ["fine-tuning", "lora", "instruction tuning"],
    "benchmarks": ["benchmark", "leaderboard"],
    "hardware": ["gpu", "on-device", "inference chip"],
    "policy": ["regulation", "ai act", "executive order"],
    "community": ["community", "contributors"],
    "agents": ["agent", "tool use"],
}
SOURCES = tuple(f"outlet{n:02d}.example" for n in range(40))


def weekly_counts(total: int) -> np.ndarray:
    """Articles per week, oldest first: a linear rise, then FLAT_WEEKS weeks at the peak."""
    peak = min(PEAK_PER_WEEK, max(1, total // 100))
    flat = peak * FLAT_WEEKS
    rising = WEEKS - FLAT_WEEKS
    # Mean of the rise is (start + peak) / 2; pick start so the total comes out right.
    start = max(1.0, 2 * (total - flat) / rising - peak)
    counts = np.concatenate([np.linspace(start, peak, rising, endpoint=False), np.full(FLAT_WEEKS, peak)])
    counts = np.floor(counts).astype(np.int64)
    counts[-FLAT_WEEKS - 1] += total - int(counts.sum())
    return counts


def _vocabulary(rng: np.random.Generator, size: int) -> np.ndarray:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(3, 10, size)
    return np.array(["".join(rng.choice(letters, n)) for n in lengths], dtype=object)


def _hex_ids(rng: np.random.Generator, n: int, words: int) -> list[str]:
    parts = [rng.integers(0, 2**63, n, dtype=np.int64) for _ in range(words)]
    return ["".join(f"{int(p[i]):016x}" for p in parts) for i in range(n)]


def generate_batches(total: int, batch_size: int, seed: int = 7) -> Iterator[dict[str, pa.Table]]:
    """Yield Arrow tables (articles, article_urls, article_themes, article_entities) per batch."""
    rng = np.random.default_rng(seed)
    vocab = _vocabulary(rng, 4000)
    zipf = 1.0 / np.arange(1, len(vocab) + 1)
    zipf /= zipf.sum()
    sentences = np.array(
        [" ".join(rng.choice(vocab, rng.integers(8, 22), p=zipf)).capitalize() + "."
         for _ in range(6000)], dtype=object)
    counts = weekly_counts(total)
    week_of = np.repeat(np.arange(WEEKS), counts)
    first_monday = LATEST_MONDAY - timedelta(weeks=WEEKS - 1)
    base_us = int(first_monday.timestamp() * 1_000_000)
    week_us = 7 * 86_400 * 1_000_000
    fetched_at = base_us + week_of * week_us + rng.integers(0, week_us, total)
    lag = rng.integers(0, 36 * 3_600_000_000, total)
    published_at = fetched_at - lag
    kind = rng.random(total)
    missing = kind < 0.03  # no date: first_seen
    future = (kind >= 0.03) & (kind < 0.05)  # implausible: a week after the fetch
    published_at = np.where(future, fetched_at + 7 * 86_400 * 1_000_000, published_at)
    date_source = np.where(missing, "first_seen", "feed").astype(object)
    relevant = rng.random(total) < 0.7
    latest_week = week_of == WEEKS - 1
    planted = latest_week & relevant & (rng.random(total) < 0.06)
    # One theme rises over the three years so the trend chart has a shape.
    rise = week_of / WEEKS

    done = 0
    while done < total:
        n = min(batch_size, total - done)
        sl = slice(done, done + n)
        ids = _hex_ids(rng, n, 1)
        hashes = _hex_ids(rng, n, 4)
        src = rng.integers(0, len(SOURCES), n)
        urls = [f"https://{SOURCES[s]}/news/{i}" for s, i in zip(src, ids)]
        title_words = rng.choice(vocab, (n, 9), p=zipf)
        ent_pick = rng.integers(0, len(ENTITIES), n)
        titles = []
        for i in range(n):
            words = list(title_words[i, : 5 + (i % 5)])
            words.insert(1, ENTITIES[ent_pick[i]][0])
            if planted[done + i]:
                words.insert(2, "Zephyrion-9")
            titles.append(" ".join(words).capitalize())
        picks = rng.integers(0, len(sentences), (n, 14))
        texts = [" ".join(sentences[row]) for row in picks]
        published = np.where(missing[sl], fetched_at[sl], published_at[sl])
        articles = pa.table({
            "id": pa.array(ids, pa.string()),
            "url": pa.array(urls, pa.string()),
            "title": pa.array(titles, pa.string()),
            "source": pa.array([SOURCES[s] for s in src], pa.string()),
            "published_at": pa.array(published, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "date_source": pa.array(date_source[sl], pa.string()),
            "fetched_at": pa.array(fetched_at[sl], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "language": pa.array(["en"] * n, pa.string()),
            "text": pa.array(texts, pa.string()),
            "text_source": pa.array(["page"] * n, pa.string()),
            "relevant": pa.array(relevant[sl], pa.bool_()),
            "relevance": pa.array(np.where(relevant[sl], 0.8, 0.1), pa.float64()),
            "themes_version": pa.array(["bench-1"] * n, pa.string()),
            "content_hash": pa.array(hashes, pa.string()),
        })
        # Themes: relevant articles only, 1-3 each; 'agents' grows over time.
        probs = np.tile(np.array([0.35, 0.2, 0.12, 0.15, 0.15, 0.1, 0.1, 0.08, 0.0]), (n, 1))
        probs[:, -1] = 0.02 + 0.3 * rise[sl]
        take = (rng.random((n, len(THEMES))) < probs) & relevant[sl][:, None]
        rows, cols = np.nonzero(take)
        themes = pa.table({
            "article_id": pa.array([ids[r] for r in rows], pa.string()),
            "url": pa.array([urls[r] for r in rows], pa.string()),
            "theme": pa.array([THEMES[c] for c in cols], pa.string()),
            "score": pa.array(rng.random(len(rows)) * 0.5 + 0.5, pa.float64()),
            "evidence": pa.array(["Synthetic evidence sentence."] * len(rows), pa.string()),
            "themes_version": pa.array(["bench-1"] * len(rows), pa.string()),
        })
        # Entities: the title's entity plus up to three more.
        extra = rng.integers(0, len(ENTITIES), (n, 3))
        keep = rng.random((n, 3)) < 0.5
        pairs = {(i, int(ent_pick[i])) for i in range(n)}
        pairs.update((i, int(extra[i, j])) for i, j in zip(*np.nonzero(keep)))
        pair_list = sorted(pairs)
        entities = pa.table({
            "article_id": pa.array([ids[i] for i, _ in pair_list], pa.string()),
            "entity": pa.array([ENTITIES[e][0] for _, e in pair_list], pa.string()),
            "kind": pa.array([ENTITIES[e][1] for _, e in pair_list], pa.string()),
            "mentions": pa.array(rng.integers(1, 6, len(pair_list)), pa.int32()),
        })
        article_urls = pa.table({"url": pa.array(urls, pa.string()), "article_id": pa.array(ids, pa.string())})
        yield {"articles": articles, "article_urls": article_urls, "article_themes": themes,
               "article_entities": entities}
        done += n


def timed(fn: Callable[[], object], repeat: int = 3) -> tuple[float, float]:
    """Return (median wall seconds, median CPU seconds of this process, all threads) of fn."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


VIEW_QUERIES: dict[str, str] = {
    "articles_dated (count per week and basis)":
        "SELECT week, date_basis, count(*) FROM articles_dated GROUP BY ALL",
    "theme_weekly": "SELECT * FROM theme_weekly",
    "theme_weekly (one week, digest)":
        "SELECT * FROM theme_weekly WHERE week = DATE '2026-11-16'",
    "theme_weekly_since (12 weeks, trends)":
        "SELECT * FROM theme_weekly_since(DATE '2026-08-31')",
    "theme_daily": "SELECT * FROM theme_daily",
    "source_weekly": "SELECT * FROM source_weekly",
    "entity_weekly": "SELECT * FROM entity_weekly",
    "emerging_terms": "SELECT * FROM emerging_terms ORDER BY ratio DESC LIMIT 10",
    "emerging_terms_at(latest, digest)":
        "SELECT * FROM emerging_terms_at(DATE '2026-11-16') ORDER BY ratio DESC LIMIT 10",
    "emerging_terms_at(a year earlier)":
        "SELECT * FROM emerging_terms_at(DATE '2025-11-17') ORDER BY ratio DESC LIMIT 10",
}


class _Clock:
    """Wall and CPU seconds spent inside a generator, so they can be left out of a rate."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def wrap(self, batches: Iterator[dict[str, pa.Table]]) -> Iterator[dict[str, pa.Table]]:
        """Yield the batches, timing each step of the generator."""
        while True:
            wall, cpu = time.perf_counter(), time.process_time()
            batch = next(batches, None)
            self.wall += time.perf_counter() - wall
            self.cpu += time.process_time() - cpu
            if batch is None:
                return
            yield batch


def build(db: Path, articles: int, batch_size: int, rows_per_transaction: int) -> None:
    """Generate the warehouse and print the write rate and size."""
    for stale in (db, db.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    generator = _Clock()
    with connect(db) as con:
        refresh_theme_phrases(con, KEY_PHRASES)
        batches = generator.wrap(generate_batches(articles, batch_size))
        wall, cpu = time.perf_counter(), time.process_time()
        if rows_per_transaction > 0:
            rows = append_batches(con, batches, rows_per_transaction=rows_per_transaction)
        else:
            rows = {}
            for batch in batches:
                for name, count in append_tables(con, batch).items():
                    rows[name] = rows.get(name, 0) + count
        con.execute("CHECKPOINT")
        write_wall = time.perf_counter() - wall - generator.wall
        write_cpu = time.process_time() - cpu - generator.cpu
        row_groups = con.execute(
            "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('articles')").fetchone()
    size = db.stat().st_size
    n = rows["articles"]
    transactions = (f"transactions of {rows_per_transaction:,} articles" if rows_per_transaction > 0
                    else f"one transaction per batch of {batch_size:,}")
    print(f"generated in {generator.wall:.1f} s (not counted in the write rate)")
    print("rows: " + ", ".join(f"{k} {v:,}" for k, v in rows.items())
          + f"; {row_groups[0] if row_groups else 0} row groups in articles")
    print(f"bulk write ({transactions}, incl. tags, URLs, key checks, final checkpoint):")
    print(f"  wall {write_wall:.1f} s = {n / write_wall:,.0f} articles/s;"
          f" CPU {write_cpu:.1f} s = {n / write_cpu:,.0f} articles per CPU-second (goal >= 20,000/s)")
    print(f"database size: {size / 2**20:,.0f} MiB = {size / 2**20 / (n / 100_000):,.1f}"
          " MiB per 100,000 articles (text ~1.5 KB each)")


def _nightly_records(attempt: int) -> list[ArticleRecord]:
    small = next(generate_batches(20_000, 100, seed=99 + attempt))
    themes: dict[str, list[ThemeRow]] = {}
    for row in small["article_themes"].to_pylist():
        themes.setdefault(row["article_id"], []).append(ThemeRow(row["theme"], row["score"], row["evidence"]))
    entities: dict[str, list[EntityRow]] = {}
    for row in small["article_entities"].to_pylist():
        entities.setdefault(row["article_id"], []).append(EntityRow(row["entity"], row["kind"], row["mentions"]))
    records = []
    for row in small["articles"].to_pylist():
        old_id = row["id"]
        new_id = hashlib.sha256(f"nightly{time.time_ns()}{old_id}".encode()).hexdigest()[:16]
        records.append(ArticleRecord(
            id=new_id, url=f"https://n.example/{new_id}", title=row["title"], source=row["source"],
            published_at=row["published_at"], date_source=row["date_source"],
            fetched_at=row["fetched_at"], language=row["language"], author=None, text=row["text"],
            text_source=row["text_source"], relevant=row["relevant"], relevance=row["relevance"],
            themes_version=row["themes_version"], feed_url=None, guid=None, summary=None,
            content_hash=hashlib.sha256(row["text"].encode() + new_id.encode()).hexdigest(),
            themes=tuple(themes.get(old_id, ())), entities=tuple(entities.get(old_id, ())),
            final_url=None, status=200, content_type="text/html",
            html_zstd=row["text"].encode()[:4000]))
    return records


def nightly_batches(db: Path) -> None:
    """Time the nightly pattern on the full database: open, store 100 articles, close."""
    walls, cpus = [], []
    for attempt in range(3):
        records = _nightly_records(attempt)
        wall, cpu = time.perf_counter(), time.process_time()
        result = store_articles(db, records, f"bench-night-{attempt}")
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        if result.new != len(records):
            raise RuntimeError(f"nightly batch stored {result.new} of {len(records)} articles")
    print(f"nightly batch (warehouse.store.store_articles: open, dedup against the stored rows,"
          f" store 100 articles with tags, entities, URLs and pages, close): median"
          f" {statistics.median(walls) * 1000:.0f} ms wall, {statistics.median(cpus) * 1000:.0f} ms CPU"
          " = the longest a reader waits for the file")
    wall, cpu = time.perf_counter(), time.process_time()
    with connect(db, read_only=True) as con:
        con.execute("SELECT count(*) FROM article_urls WHERE url = ?", ["https://n.example/none"]).fetchall()
    print(f"read-only open and one URL lookup: {(time.perf_counter() - wall) * 1000:.0f} ms wall,"
          f" {(time.process_time() - cpu) * 1000:.0f} ms CPU")


def time_views(db: Path) -> None:
    """Print the wall and CPU time of every documented view."""
    print("\nviews: median wall s / CPU s (both cores) of 3 runs; goal < 1 s each")
    with connect(db, read_only=True, timezone="UTC") as con:
        con.execute("SET enable_progress_bar = false")
        for label, sql in VIEW_QUERIES.items():
            def run(sql: str = sql) -> None:
                con.execute(sql).to_arrow_table()

            wall, cpu = timed(run)
            print(f"  {label:<45} {wall:6.3f} s / {cpu:6.3f} s")
        top = con.execute(VIEW_QUERIES["emerging_terms"]).fetchall()
        print("  emerging terms, latest week:", ", ".join(f"{r[2]} ({r[3]}, x{r[5]:.1f})" for r in top[:5]))
        if not top or top[0][2] != PLANTED_TERM:
            print(f"  WARNING: the planted term {PLANTED_TERM!r} is not the top emerging term")
    with connect(db, read_only=True, timezone="Europe/Berlin") as con:
        con.execute("SET enable_progress_bar = false")
        wall, cpu = timed(lambda: con.execute("SELECT * FROM theme_weekly").to_arrow_table())
        print(f"  {'theme_weekly in Europe/Berlin':<45} {wall:6.3f} s / {cpu:6.3f} s")


def time_commands(db: Path, folder: Path) -> None:
    """Print the time of `newsmon trends` and `newsmon query`, in-process and as a new process."""
    from typer.testing import CliRunner

    from newsmon.cli import app

    config = folder / "bench.toml"
    config.write_text(f"[storage]\ndatabase = '{db}'\n", encoding="utf-8")
    runner = CliRunner()
    exe = Path(sys.executable).with_name("newsmon")
    print("\ncommands: in-process wall s / CPU s, then a fresh process (interpreter start included)")
    for label, argv in (
        ("newsmon trends", ["trends", "--config", str(config)]),
        ("newsmon trends --theme agents --weeks 52",
         ["trends", "--theme", "agents", "--weeks", "52", "--config", str(config)]),
        ("newsmon query (theme_weekly, csv)",
         ["query", "SELECT * FROM theme_weekly", "--format", "csv", "--config", str(config)]),
    ):
        def in_process(argv: list[str] = argv, label: str = label) -> None:
            result = runner.invoke(app, argv)
            if result.exit_code != 0:
                raise RuntimeError(f"{label} failed: {result.output}")

        def fresh_process(argv: list[str] = argv) -> None:
            subprocess.run([str(exe), *argv], check=True, capture_output=True,
                           env={**os.environ, "COLUMNS": "120"})

        wall, cpu = timed(in_process)
        process_wall, _ = timed(fresh_process)
        print(f"  {label:<45} {wall:6.3f} s / {cpu:6.3f} s   process {process_wall:6.3f} s")


def main() -> None:
    """Build the synthetic warehouse and print every figure."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--articles", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=50_000, help="articles per generated batch")
    parser.add_argument("--rows-per-transaction", type=int, default=ROW_GROUP_ROWS,
                        help="articles per write transaction (0: one transaction per batch)")
    parser.add_argument("--keep", type=Path, help="build the database in this folder and keep it")
    parser.add_argument("--reuse", action="store_true",
                        help="with --keep: time the views of the database built before")
    args = parser.parse_args()

    folder = args.keep or Path(tempfile.mkdtemp(prefix="newsmon-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "bench.duckdb"
    print(f"database: {db}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if not (args.reuse and db.exists()):
        build(db, args.articles, args.batch, args.rows_per_transaction)
        nightly_batches(db)
    time_views(db)
    time_commands(db, folder)
    if args.keep is None:
        for leftover in folder.iterdir():
            leftover.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()

"""How much memory one nightly store batch takes as the warehouse grows.

Extracts the bundled sample pages once, then stores them again and again in batches of 100
(new ids, URLs and texts each time, raw HTML kept, as the night does) into a fresh database
file, and samples the process's RSS every 2 ms while each `store_articles` call runs. Prints,
every `--every` batches, the RSS before the batch, the peak above it during the batch, the
batch's wall time and the file's size; then the same without raw HTML (keep_raw_html = false)
as the baseline.

Usage: .venv/bin/python -m bench.store_memory [--batches 80] [--every 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from newsmon.paths import SAMPLE_DIR
from newsmon.processing import PageJob, TaggingConfig, process_one
from warehouse import store
from warehouse.records import ArticleRecord


def sample_records(count: int = 100) -> list[ArticleRecord]:
    """Extract and tag the first `count` sample pages as the night would."""
    config = TaggingConfig()
    now = datetime.now(UTC)
    records = []
    for index, page in enumerate(sorted((SAMPLE_DIR / "pages").glob("*.html"))[:count]):
        job = PageJob(f"{index:016x}", f"http://127.0.0.1/{page.name}", "http://127.0.0.1/feed.xml",
                      "Bench", None, page.stem, None, None, None, now, now, body=page.read_bytes())
        record = process_one(job, config).record
        if record is not None:
            records.append(record)
    return records


def _wal_size(database: Path) -> int:
    # The night's batches stay in the write-ahead log until it reaches DuckDB's checkpoint
    # threshold (16 MB); the run's end checkpoints it.
    wal = database.with_name(database.name + ".wal")
    return wal.stat().st_size if wal.exists() else 0


def run(records: list[ArticleRecord], batches: int, every: int, keep_html: bool) -> None:
    process = psutil.Process()
    peak = [0]
    sampling = threading.Event()

    def sample() -> None:
        while sampling.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.002)

    with tempfile.TemporaryDirectory(prefix="newsmon-store-memory-") as tmp:
        database = Path(tmp) / "bench.duckdb"
        worst = 0.0
        for batch in range(batches):
            rows = [dataclasses.replace(r, id=f"{batch:04d}{r.id[4:]}", url=f"{r.url}?batch={batch}",
                                        content_hash=f"{batch:04d}{r.content_hash[4:]}",
                                        text=f"{r.text} {batch}", html_zstd=r.html_zstd if keep_html else None)
                    for r in records]
            before = process.memory_info().rss
            peak[0] = before
            sampling.set()
            sampler = threading.Thread(target=sample)
            sampler.start()
            started = time.perf_counter()
            store.store_articles(database, rows, "bench")
            took = time.perf_counter() - started
            sampling.clear()
            sampler.join()
            above = (peak[0] - before) / 2**20
            worst = max(worst, above)
            if (batch + 1) % every == 0:
                print(f"  {(batch + 1) * len(records):6d} articles: RSS {before / 2**20:4.0f} MB, "
                      f"+{above:4.0f} MB during the batch, {took:5.2f} s, "
                      f"file {database.stat().st_size / 2**20:5.0f} MB + WAL {_wal_size(database) / 2**20:3.0f} MB",
                      flush=True)
        print(f"  largest rise during one batch: {worst:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=80)
    parser.add_argument("--every", type=int, default=10)
    args = parser.parse_args()
    records = sample_records()
    print(f"{len(records)} sample articles per batch, "
          f"{sum(len(r.html_zstd or b'') for r in records) / len(records) / 1024:.0f} KB of compressed HTML each")
    print("with raw HTML (the default):")
    run(records, args.batches, args.every, keep_html=True)
    print("without raw HTML:")
    run(records, args.batches, args.every, keep_html=False)


if __name__ == "__main__":
    main()

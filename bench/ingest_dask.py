"""Benchmark the nightly ingest with the Dask runner against the default runner.

Serves the bench site (bench/ingest.py's: distinct article pages behind feeds spread over
loopback hosts 127.0.0.2-127.0.0.N) and runs the same first night twice, each in a child
process on a fresh database: once with `[runner] kind = "default"` (the flow's process
pool), once with `kind = "dask"` (a local Dask cluster of `dask_workers` worker processes,
started by the flow). It reports each flow's own duration (from `runs`), the child's wall
time (Prefect start-up included) and peak memory, that both stored the same articles, and the
Dask runner's overhead against the default.

Usage: .venv/bin/python -m bench.ingest_dask [--articles 400] [--feeds 8] [--hosts 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import duckdb

from bench.ingest import flow_seconds, run_measured
from newsmon.commands.ingest import write_demo_config
from newsmon.demo_site import MultiHostSite, build_bench_site


def _config(path: Path, database: Path, base_urls: list[str], feeds: list[tuple[str, str]],
            runner: str, workers: int) -> Path:
    config = write_demo_config(path, database, base_urls[0], feeds)
    text = config.read_text()
    for index, (_, feed_path) in enumerate(feeds):
        text = text.replace(f'"{base_urls[0]}{feed_path}"', f'"{base_urls[index % len(base_urls)]}{feed_path}"')
    config.write_text(text + f'\n[extract]\nbatch_size = 100\nworkers = {workers}\n\n'
                             f'[runner]\nkind = "{runner}"\ndask_workers = {workers}\n')
    return config


def _stored(database: Path) -> tuple[int, str]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        row = con.execute("SELECT count(*), md5(string_agg(id || content_hash || coalesce(themes_version, ''),"
                          " ',' ORDER BY id)) FROM articles").fetchone()
    finally:
        con.close()
    return (int(row[0]), str(row[1])) if row else (0, "")


def _rounded(peak: object) -> object:
    # bench/ingest.py reports peak memory as one figure or as named figures.
    if isinstance(peak, dict):
        return {name: round(value) for name, value in peak.items()}
    return round(float(peak))  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=400)
    parser.add_argument("--feeds", type=int, default=8)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    hosts = [f"127.0.0.{i}" for i in range(2, 2 + args.hosts)]
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="newsmon-bench-dask-") as tmp:
        root = Path(tmp) / "site"
        with MultiHostSite(root, hosts) as served:
            site = build_bench_site(root, served.base_urls, articles=args.articles, feeds=args.feeds)
            feeds = [(f.name, f.path) for f in site.feeds]
            print(f"site: {site.article_count} articles, {len(feeds)} feeds, {len(hosts)} hosts; "
                  f"{args.workers} extraction workers either way")
            for runner in ("default", "dask"):
                database = Path(tmp) / f"{runner}.duckdb"
                config = _config(Path(tmp) / f"{runner}.toml", database, served.base_urls, feeds,
                                 runner, args.workers)
                times, peak, code = run_measured(config, lambda: None)
                flows = flow_seconds(database) if database.exists() else []
                count, digest = _stored(database) if database.exists() else (0, "")
                results[runner] = {"first_run_s": round(times[0], 2) if times else None,
                                   "first_flow_s": round(flows[0], 2) if flows else None,
                                   "articles_stored": count, "peak_mb": _rounded(peak),
                                   "exit_code": code, "_digest": digest}
                print(f"{runner}: {json.dumps({k: v for k, v in results[runner].items() if k != '_digest'})}")

    default, dask = results["default"], results["dask"]
    same = default["_digest"] == dask["_digest"] and default["articles_stored"] == dask["articles_stored"]
    summary = {
        "same_articles_stored": same,
        "dask_flow_overhead_s": (round(float(dask["first_flow_s"]) - float(default["first_flow_s"]), 2)  # type: ignore[arg-type]
                                 if dask["first_flow_s"] and default["first_flow_s"] else None),
        "dask_flow_ratio": (round(float(dask["first_flow_s"]) / float(default["first_flow_s"]), 3)  # type: ignore[arg-type]
                            if dask["first_flow_s"] and default["first_flow_s"] else None),
    }
    print(json.dumps(summary, indent=2))
    print(f"Dask runner vs default, flow only: {summary['dask_flow_ratio']}x "
          f"({summary['dask_flow_overhead_s']} s overhead, cluster start included); "
          f"same articles stored: {same}")


if __name__ == "__main__":
    main()

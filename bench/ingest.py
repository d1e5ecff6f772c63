"""Benchmark the nightly ingest against a bare trafilatura loop over the same pages.

Builds 2,000 distinct article pages from the corpus pages, serves them through 20 feeds spread
over loopback addresses 127.0.0.2-127.0.0.21 (so per-host limits act as on the web), and
measures in one run:

  (a) the first nightly run's wall time vs a single-process `trafilatura.extract()` loop
      over the same HTML (goal: ratio <= 0.75);
  (b) a second run with nothing new (goal: <= 5 % of the first, zero article fetches);
  (c) peak memory (RSS) of the run's process tree (goal: <= 400 MB).

Both nightly runs happen in one child process, as `newsmon run` runs them (whose whole
process tree is sampled): the first run's time includes starting Prefect's ephemeral API, the
second does not need one. The flows' own durations (from the `runs` table) are printed too.
The bare loop runs before and after the nights; the baseline is their mean.

Usage: .venv/bin/python -m bench.ingest [--articles 2000] [--feeds 20] [--hosts 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import psutil
import trafilatura

from newsmon.commands.ingest import write_demo_config
from newsmon.demo_site import MultiHostSite, build_bench_site
from parsers import xpath_rewrites


def baseline_seconds(pages: list[Path]) -> float:
    """Time the bare single-process extraction loop."""
    # Bare means trafilatura as shipped: without newsmon's rewritten XPath expressions, which
    # importing parsers.articles would have put in place.
    xpath_rewrites.uninstall()
    start = time.perf_counter()
    for page in pages:
        trafilatura.extract(page.read_bytes())
    return time.perf_counter() - start


def child(config: str) -> None:
    """Run the nightly flow twice in this process, as `newsmon run` does, and print each
    call's wall time; the first includes starting Prefect's ephemeral API."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    from flows.nightly import nightly_ingest, warm_up_extraction
    from newsmon.config import load_settings
    from newsmon.prefect_api import flow_api

    times = []
    start = time.perf_counter()
    warm_up_extraction(load_settings(config))
    with flow_api():
        for night in range(2):
            summary = nightly_ingest(config_path=config)
            times.append(time.perf_counter() - start)
            if summary["status"] != "completed":
                raise SystemExit(f"run failed: {summary}")
            if night == 0:
                # Let the parent read the server's request count between the two nights.
                print("FIRST_DONE", flush=True)
                sys.stdin.readline()
                start = time.perf_counter()
    print("TIMES " + json.dumps(times), flush=True)


def _is_prefect_server(process: psutil.Process) -> bool:
    command = process.cmdline()
    return any("prefect" in part and "server" in part for part in command) or any(
        part == "uvicorn" or part.endswith("/uvicorn") for part in command)


def _pss(pid: int) -> int:
    """Return a process's proportional set size in bytes (smaps_rollup: the kernel sums it)."""
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def run_measured(config: Path, between: Callable[[], None]) -> tuple[
        list[float], dict[str, float], dict[str, float], int]:
    """Run two nights in a child process, calling `between` after the first; return
    (wall seconds per run, peak memory figures in MB, CPU seconds per role, exit code).

    Memory: the flow process's RSS (sampled every 0.1 s); the pipeline's PSS (flow process
    plus extraction workers, shared pages counted once; every 2 s, as reading it costs the
    kernel more); and Prefect's API server on its own. CPU: per role (every 0.5 s), including this
    benchmark's own process (the loopback site and this sampler), which competes for the
    same two cores."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.ingest", "--child", str(config)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    peak = {"flow_process_rss": 0.0, "pipeline_pss": 0.0, "prefect_server_rss": 0.0}
    # CPU seconds per process, the last value seen: how the work was shared out. A process's
    # role is fixed when first seen, since an exiting process no longer shows its command line.
    cpu_by_pid: dict[int, tuple[str, float]] = {}
    roles: dict[int, str] = {}
    harness = psutil.Process()
    harness_cpu = sum(harness.cpu_times()[:2])
    done = threading.Event()

    def role_of(process: psutil.Process, parent: psutil.Process) -> str:
        if process.pid not in roles:
            roles[process.pid] = ("flow_process" if process.pid == parent.pid
                                  else "prefect_server" if _is_prefect_server(process)
                                  else "extraction_workers")
        return roles[process.pid]

    def sample() -> None:
        parent = psutil.Process(proc.pid)
        tick = 0
        by_role: dict[str, list[psutil.Process]] = {}
        while not done.is_set():
            try:
                # The flow process's RSS is the goal's figure: every tick. The process list,
                # CPU times and PSS cost the kernel far more (a scan of /proc, smaps_rollup),
                # and this sampler shares the two cores with the pipeline it measures.
                peak["flow_process_rss"] = max(peak["flow_process_rss"], parent.memory_info().rss / 2**20)
                if tick % 5 == 0:
                    by_role = {}
                    for process in [parent, *parent.children(recursive=True)]:
                        try:
                            role = role_of(process, parent)
                            times = process.cpu_times()
                        except psutil.Error:
                            continue
                        by_role.setdefault(role, []).append(process)
                        cpu_by_pid[process.pid] = (role, times.user + times.system)
                    peak["prefect_server_rss"] = max(peak["prefect_server_rss"], sum(
                        p.memory_info().rss for p in by_role.get("prefect_server", [])) / 2**20)
                if tick % 20 == 0:
                    pipeline = by_role.get("flow_process", []) + by_role.get("extraction_workers", [])
                    peak["pipeline_pss"] = max(peak["pipeline_pss"],
                                               sum(_pss(p.pid) for p in pipeline) / 2**20)
            except (psutil.Error, OSError):
                pass
            tick += 1
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("FIRST_DONE"):
            between()
            proc.stdin.write("\n")
            proc.stdin.flush()
    proc.wait()
    done.set()
    sampler.join()
    text = "".join(lines)
    if proc.returncode != 0:
        print(text[-3000:])
    times = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("TIMES ")]
    cpu = dict.fromkeys(("flow_process", "extraction_workers", "prefect_server"), 0.0)
    for role, seconds in cpu_by_pid.values():
        cpu[role] += seconds
    cpu["benchmark_site_and_sampler"] = sum(harness.cpu_times()[:2]) - harness_cpu
    return (times[0] if times else []), peak, cpu, proc.returncode


def flow_seconds(database: Path) -> list[float]:
    """Return each run's own duration from the `runs` table, oldest first."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        rows = con.execute(
            "SELECT epoch(finished_at) - epoch(started_at) FROM runs ORDER BY started_at").fetchall()
    finally:
        con.close()
    return [float(r[0]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--fast", action="store_true",
                        help="run the pipeline with [extract] fast = true (trafilatura's fast mode)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    hosts = [f"127.0.0.{i}" for i in range(2, 2 + args.hosts)]
    with tempfile.TemporaryDirectory(prefix="newsmon-bench-") as tmp:
        root = Path(tmp) / "site"
        database = Path(tmp) / "bench.duckdb"
        with MultiHostSite(root, hosts) as served:
            site = build_bench_site(root, served.base_urls, articles=args.articles, feeds=args.feeds)
            pages = sorted(p for p in root.rglob("*.html"))
            print(f"site: {site.article_count} articles, {len(site.feeds)} feeds, {len(hosts)} hosts, "
                  f"{sum(p.stat().st_size for p in pages) / 2**20:.0f} MB of HTML")

            # The loop runs before and after the nights and the mean is the baseline: this
            # machine's speed drifts by tens of percent within minutes.
            base_before = baseline_seconds(pages)
            print(f"baseline before: trafilatura.extract() loop, 1 process: {base_before:.1f} s "
                  f"({1000 * base_before / len(pages):.1f} ms/page)", flush=True)

            config = write_demo_config(Path(tmp) / "bench.toml", database, served.base_urls[0],
                                       [(f.name, f.path) for f in site.feeds])
            # Feeds name their own hosts: rewrite each feed URL onto its host.
            text = config.read_text()
            for index, feed in enumerate(site.feeds):
                host_base = served.base_urls[index % len(served.base_urls)]
                text = text.replace(f'"{served.base_urls[0]}{feed.path}"', f'"{host_base}{feed.path}"')
            config.write_text(text + "\n[extract]\nbatch_size = 100\n"
                              + ("fast = true\n" if args.fast else ""))

            counts = [served.article_requests()]
            times, peak, cpu, code = run_measured(config, lambda: counts.append(served.article_requests()))
            counts.append(served.article_requests())
            base_after = baseline_seconds(pages)
            print(f"baseline after: {base_after:.1f} s ({1000 * base_after / len(pages):.1f} ms/page)")
            base = (base_before + base_after) / 2

        if not database.exists():
            raise SystemExit(f"the nightly run stored nothing (exit code {code})")
        con = duckdb.connect(str(database), read_only=True)
        stored = con.execute("SELECT count(*) FROM articles").fetchone()
        con.close()
        flows = flow_seconds(database)

    first, second = (times + [float("nan"), float("nan")])[:2]
    results = {
        "baseline_s": round(base, 2),
        "baseline_before_s": round(base_before, 2),
        "baseline_after_s": round(base_after, 2),
        "ratio_first_flow_vs_baseline_before_after": [round(flows[0] / b, 3) for b in (base_before, base_after)]
        if flows else None,
        "first_run_s": round(first, 2),
        "first_flow_s": round(flows[0], 2) if flows else None,
        "ratio_first_vs_baseline": round(first / base, 3),
        "ratio_first_flow_vs_baseline": round(flows[0] / base, 3) if flows else None,
        "second_run_s": round(second, 2),
        "second_flow_s": round(flows[1], 2) if len(flows) > 1 else None,
        "ratio_second_vs_first": round(second / first, 3),
        "ratio_second_flow_vs_first_flow": round(flows[1] / flows[0], 3) if len(flows) > 1 else None,
        "article_requests_first": counts[1] - counts[0] if len(counts) == 3 else None,
        "article_requests_second": counts[2] - counts[1] if len(counts) == 3 else None,
        "articles_stored": stored[0] if stored else 0,
        "peak_flow_process_rss_mb": round(peak["flow_process_rss"]),
        "peak_pipeline_pss_mb": round(peak["pipeline_pss"]),
        "peak_prefect_server_rss_mb": round(peak["prefect_server_rss"]),
        **{f"cpu_{role}_s": round(seconds, 1) for role, seconds in cpu.items()},
        "cpu_extraction_workers_ms_per_page": round(1000 * cpu["extraction_workers"] / max(1, len(pages)), 1),
        "baseline_ms_per_page": round(1000 * base / max(1, len(pages)), 1),
        "exit_code": code,
    }
    print(json.dumps(results, indent=2))
    print(f"(a) first run / baseline: {results['ratio_first_vs_baseline']} (goal <= 0.75); "
          f"flow only: {results['ratio_first_flow_vs_baseline']}")
    print(f"(b) second run / first: {results['ratio_second_vs_first']} (goal <= 0.05), "
          f"article fetches: {results['article_requests_second']} "
          f"(first run: {results['article_requests_first']} for {results['articles_stored']} stored); flow only: "
          f"{results['ratio_second_flow_vs_first_flow']}")
    print(f"(c) peak memory: flow process RSS {results['peak_flow_process_rss_mb']} MB, pipeline "
          f"(flow + extraction workers) PSS {results['peak_pipeline_pss_mb']} MB (goal <= 400); "
          f"Prefect's API server besides: {results['peak_prefect_server_rss_mb']} MB RSS")


if __name__ == "__main__":
    main()

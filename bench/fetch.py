"""Benchmark the Fetcher on loopback: pages per second under the limits, and a gzip bomb's memory.

Serves pages from 127.0.0.2-127.0.0.11 (one threaded server per address, so the per-host
limit acts as on the web), each answer delayed by --delay seconds, and prints:
pages/s, the most requests one host saw at once, and the peak Python memory while a
gzip bomb (1 GB of zeros) is fetched under the default 10 MB cap.

    .venv/bin/python -m bench.fetch --pages 400 --hosts 10 --delay 0.02
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing import Event, Process, Queue
from multiprocessing.synchronize import Event as EventType

from newsmon.config import FetchSettings
from newsmon.fetch import Fetcher, PageResponse

PAGE = (b"<html><body>" + b"<p>open-source model weights released today.</p>" * 400
        + b"</body></html>")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        """Answer a page, a bomb, or an empty robots.txt."""
        state = self.server
        with state.lock:
            state.now += 1
            state.most = max(state.most, state.now)
        try:
            if self.path == "/robots.txt":
                body, extra = b"User-agent: *\nAllow: /\n", {}
            elif self.path == "/bomb":
                body, extra = state.bomb, {"Content-Encoding": "gzip"}
            else:
                time.sleep(state.delay)
                body, extra = PAGE, {}
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        finally:
            with state.lock:
                state.now -= 1

    def log_message(self, format: str, *args: object) -> None:
        """Keep the benchmark's output to its figures."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, delay: float, bomb: bytes) -> None:
        super().__init__((host, 0), _Handler)
        self.delay = delay
        self.bomb = bomb
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0


async def _fetch_all(settings: FetchSettings, urls: list[str]) -> int:
    async with Fetcher(settings) as fetcher:
        results = await fetcher.fetch_pages(urls)
    return sum(isinstance(result, PageResponse) for result in results)


async def _fetch_bomb(settings: FetchSettings, url: str) -> tuple[PageResponse, int]:
    async with Fetcher(settings) as fetcher:
        # Count the fetch alone, not the client's set-up or the event loop's teardown.
        tracemalloc.reset_peak()
        page = await fetcher.fetch_page(url)
        return page, tracemalloc.get_traced_memory()[1]


def _serve(hosts: int, delay: float, ports: Queue[int], stop: EventType) -> None:
    """Serve pages and the bomb from loopback addresses until told to stop."""
    bomb = gzip.compress(b"\0" * 1_000_000_000, compresslevel=9)
    servers = [_Server(f"127.0.0.{2 + i}", delay, bomb) for i in range(hosts)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        ports.put(server.server_port)
    ports.put(len(bomb))
    stop.wait()
    ports.put(max(server.most for server in servers))
    for server in servers:
        server.shutdown()
        server.server_close()


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=400)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--delay", type=float, default=0.02)
    args = parser.parse_args()

    # The servers run in their own process so they do not share the fetcher's GIL.
    ports: Queue[int] = Queue()
    stop = Event()
    child = Process(target=_serve, args=(args.hosts, args.delay, ports, stop), daemon=True)
    child.start()
    try:
        port = [ports.get(timeout=60) for _ in range(args.hosts)]
        bomb_size = ports.get(timeout=60)
        settings = FetchSettings(allow_private_addresses=True)
        urls = [f"http://127.0.0.{2 + n % args.hosts}:{port[n % args.hosts]}/p/{n}"
                for n in range(args.pages)]
        start = time.perf_counter()
        fetched = asyncio.run(_fetch_all(settings, urls))
        elapsed = time.perf_counter() - start
        print(f"pages fetched: {fetched}/{args.pages} from {args.hosts} hosts "
              f"in {elapsed:.2f} s = {fetched / elapsed:.0f} pages/s "
              f"(concurrency {settings.concurrency}, per host {settings.per_host_concurrency}, "
              f"server delay {args.delay * 1000:.0f} ms, page {len(PAGE)} bytes)")

        tracemalloc.start()
        start = time.perf_counter()
        page, peak = asyncio.run(_fetch_bomb(settings, f"http://127.0.0.2:{port[0]}/bomb"))
        elapsed = time.perf_counter() - start
        tracemalloc.stop()
        print(f"gzip bomb: {bomb_size} bytes compressed, 1e9 inflated; kept {len(page.body)} "
              f"bytes (truncated={page.truncated}) in {elapsed:.2f} s, "
              f"peak Python memory during the fetch {peak / 1e6:.1f} MB")
    finally:
        stop.set()
    print(f"most requests in flight at one host: {ports.get(timeout=10)}")
    child.join(timeout=10)


if __name__ == "__main__":
    main()

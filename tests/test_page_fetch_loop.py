"""Tests for newsmon.ingest.PageFetchLoop: one Fetcher for a night's batches, on a real local server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from newsmon.config import FetchSettings
from newsmon.ingest import PageFetchLoop
from newsmon.local_server import LocalSite
from newsmon.processing import PageJob

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


def job(url: str) -> PageJob:
    return PageJob(article_id=url[-8:], url=url, feed_url="http://127.0.0.1/feed.xml", feed_name="Feed",
                   guid=None, entry_title=None, entry_summary=None, entry_text=None, entry_author=None,
                   entry_published=None, first_seen=NOW)


def settings() -> FetchSettings:
    return FetchSettings(allow_private_addresses=True, retries=1, page_deadline=5.0)


@pytest.fixture()
def site(tmp_path: Path) -> Iterator[LocalSite]:
    for i in range(6):
        (tmp_path / f"page-{i}.html").write_text(f"<html><body><p>Page {i}</p></body></html>")
    with LocalSite(tmp_path) as served:
        yield served


def test_batches_share_robots_txt_and_connections(site: LocalSite) -> None:
    with PageFetchLoop(settings()) as pages:
        first = pages.fetch([job(site.url(f"/page-{i}.html")) for i in range(3)]).result()
        second = pages.fetch([job(site.url(f"/page-{i}.html")) for i in range(3, 6)]
                             + [job(site.url("/missing.html"))]).result()
    fetched = first + second
    assert [j.body for j in fetched[:6]] == [f"<html><body><p>Page {i}</p></body></html>".encode() for i in range(6)]
    assert fetched[6].body is None and "404" in (fetched[6].fetch_error or "")
    assert site.requests_for("/robots.txt") == 1  # asked once for the night, not once per batch
    accepted, _ = site.connections()
    assert accepted <= settings().per_host_concurrency


class _Trickle(BaseHTTPRequestHandler):
    """Answer headers, then one byte per second for a minute."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/robots.txt":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", "60")
        self.end_headers()
        for _ in range(60):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(1)

    def log_message(self, format: str, *args: object) -> None:
        return


class _TrickleServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return  # the client hanging up mid-trickle is the point of the test, not an error


def test_leaving_early_stops_a_batch_still_downloading() -> None:
    server = _TrickleServer(("127.0.0.1", 0), _Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/slow.html"
    try:
        started = time.monotonic()
        with PageFetchLoop(replace_deadline(settings(), 120.0)) as pages:
            pending = pages.fetch([job(url)])
            time.sleep(0.3)
        assert time.monotonic() - started < 5  # not the minute the page would take
        assert pending.cancelled()
    finally:
        server.shutdown()
        server.server_close()


def replace_deadline(fetch: FetchSettings, seconds: float) -> FetchSettings:
    return replace(fetch, page_deadline=seconds, read_timeout=seconds)


def test_fetch_outside_with_is_refused() -> None:
    with pytest.raises(RuntimeError, match="inside 'with'"):
        PageFetchLoop(settings()).fetch([job("http://127.0.0.1/x.html")])

"""The Fetcher against real servers on 127.0.0.1: retries, caps, deadlines, redirects, robots."""

from __future__ import annotations

import asyncio
import gzip
import pickle
import socket
import threading
import time
import zlib
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, TypeVar

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from newsmon.config import FetchSettings
from newsmon.fetch import FeedResponse, Fetcher, FetchError, PageResponse

T = TypeVar("T")

HTML = "<html><head><title>t</title></head><body><p>Hello</p></body></html>"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh event loop."""
    return asyncio.run(coro)


def fast_settings(**overrides: Any) -> FetchSettings:
    """Settings for loopback tests: private addresses allowed, short timeouts."""
    values: dict[str, Any] = {
        "allow_private_addresses": True,
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "page_deadline": 5.0,
        "feed_deadline": 5.0,
        "backoff_seconds": 0.5,
        "retries": 3,
        "respect_robots": False,
    }
    values.update(overrides)
    return FetchSettings(**values)


class Sleeps:
    """An injected sleep that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture(scope="module")
def module_server() -> Iterator[HTTPServer]:
    """One threaded HTTP server on 127.0.0.1 for the module (stopping one takes 0.5 s)."""
    httpserver = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    httpserver.start()
    try:
        yield httpserver
    finally:
        httpserver.clear()
        httpserver.stop()


@pytest.fixture()
def server(module_server: HTTPServer) -> Iterator[HTTPServer]:
    """The module's server with no handlers and an empty log."""
    module_server.clear()
    yield module_server
    module_server.clear()


def paths(server: HTTPServer) -> list[str]:
    """Return the paths the server was asked for, in order."""
    return [request.path for request, _ in server.log]


def fetch_feed(settings: FetchSettings, url: str, sleep: Sleeps | None = None,
               **kwargs: Any) -> FeedResponse:
    """Fetch one feed with a fresh Fetcher."""
    async def go() -> FeedResponse:
        async with Fetcher(settings, sleep=sleep or Sleeps()) as fetcher:
            return await fetcher.fetch_feed(url, **kwargs)
    return run(go())


def fetch_page(settings: FetchSettings, url: str, sleep: Sleeps | None = None) -> PageResponse:
    """Fetch one page with a fresh Fetcher."""
    async def go() -> PageResponse:
        async with Fetcher(settings, sleep=sleep or Sleeps()) as fetcher:
            return await fetcher.fetch_page(url)
    return run(go())


def fetch_pages(settings: FetchSettings, urls: list[str]) -> list[PageResponse | FetchError]:
    """Fetch pages concurrently with a fresh Fetcher."""
    async def go() -> list[PageResponse | FetchError]:
        async with Fetcher(settings, sleep=Sleeps()) as fetcher:
            return await fetcher.fetch_pages(urls)
    return run(go())


def failure(call: Callable[[], object]) -> FetchError:
    """Return the FetchError a call raises."""
    with pytest.raises(FetchError) as caught:
        call()
    return caught.value


class RawServer:
    """A TCP server on 127.0.0.1 whose connections are answered by a scripted function."""

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self.script = script
        self.connections = 0
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(4096)
                if not data:
                    return
                head += data
            try:
                self.script(conn)
            except OSError:
                pass  # the client hung up, which is what some tests want

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()


@pytest.fixture()
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], RawServer]]:
    """Start RawServers for a test and close them afterwards."""
    started: list[RawServer] = []

    def start(script: Callable[[socket.socket], None]) -> RawServer:
        started.append(RawServer(script))
        return started[-1]

    yield start
    for raw in started:
        raw.close()


# -- feeds: conditional GET -----------------------------------------------------------------


def test_conditional_get_returns_304_and_validators(server: HTTPServer) -> None:
    seen: list[dict[str, str | None]] = []

    def feed(request: Request) -> Response:
        seen.append({name: request.headers.get(name) for name in
                     ("If-None-Match", "If-Modified-Since", "User-Agent", "Accept-Encoding")})
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response("<rss version='2.0'/>", content_type="application/rss+xml",
                        headers={"ETag": '"v1"', "Last-Modified": "Mon, 06 Jan 2025 10:00:00 GMT"})

    server.expect_request("/feed.xml").respond_with_handler(feed)
    url = server.url_for("/feed.xml")
    settings = fast_settings()

    first = fetch_feed(settings, url)
    assert (first.status, first.body) == (200, b"<rss version='2.0'/>")
    assert first.etag == '"v1"'
    assert first.last_modified == "Mon, 06 Jan 2025 10:00:00 GMT"
    assert first.headers["content-type"].startswith("application/rss+xml")
    assert first.final_url == url

    second = fetch_feed(settings, url, etag=first.etag, last_modified=first.last_modified)
    assert (second.status, second.body) == (304, b"")
    assert second.etag == '"v1"'
    assert second.last_modified == "Mon, 06 Jan 2025 10:00:00 GMT"

    forced = fetch_feed(settings, url, etag='"v1"', last_modified=first.last_modified,
                        unconditional=True)
    assert forced.status == 200

    assert seen[0]["If-None-Match"] is None and seen[0]["If-Modified-Since"] is None
    assert seen[1]["If-None-Match"] == '"v1"'
    assert seen[1]["If-Modified-Since"] == "Mon, 06 Jan 2025 10:00:00 GMT"
    assert seen[2]["If-None-Match"] is None and seen[2]["If-Modified-Since"] is None
    assert seen[0]["User-Agent"] == settings.user_agent
    assert seen[0]["Accept-Encoding"] == "gzip, deflate"


# -- retries ------------------------------------------------------------------------------


def test_500_then_200_is_retried(server: HTTPServer) -> None:
    server.expect_oneshot_request("/flaky").respond_with_data("down", status=500)
    server.expect_request("/flaky").respond_with_data(HTML, content_type="text/html")
    sleeps = Sleeps()
    page = fetch_page(fast_settings(), server.url_for("/flaky"), sleeps)
    assert page.status == 200 and page.body == HTML.encode()
    assert paths(server) == ["/flaky", "/flaky"]
    assert len(sleeps.delays) == 1 and 0.25 <= sleeps.delays[0] <= 0.75  # backoff 0.5 s ± jitter


def test_429_retry_after_seconds_is_honoured(server: HTTPServer) -> None:
    server.expect_oneshot_request("/busy").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "2"})
    server.expect_request("/busy").respond_with_data("<rss/>")
    sleeps = Sleeps()
    feed = fetch_feed(fast_settings(), server.url_for("/busy"), sleeps)
    assert feed.body == b"<rss/>"
    assert sleeps.delays == [pytest.approx(2.0, abs=0.1)]


def test_retry_after_http_date_is_honoured(server: HTTPServer) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    server.expect_oneshot_request("/busy").respond_with_data(
        "", status=503, headers={"Retry-After": when})
    server.expect_request("/busy").respond_with_data("<rss/>")
    sleeps = Sleeps()
    fetch_feed(fast_settings(), server.url_for("/busy"), sleeps)
    assert len(sleeps.delays) == 1 and 27 <= sleeps.delays[0] <= 30


def test_retry_after_over_the_limit_gives_up(server: HTTPServer) -> None:
    server.expect_request("/busy").respond_with_data(
        "", status=429, headers={"Retry-After": "3600"})
    sleeps = Sleeps()
    error = failure(lambda: fetch_feed(fast_settings(max_retry_after=120), server.url_for("/busy"),
                                       sleeps))
    assert error.reason == "HTTP 429: Retry-After 3600 s is over the 120 s limit"
    assert sleeps.delays == []
    assert paths(server) == ["/busy"]


def test_permanent_500_reports_attempts_with_growing_backoff(server: HTTPServer) -> None:
    server.expect_request("/broken").respond_with_data("oops", status=500)
    sleeps = Sleeps()
    error = failure(lambda: fetch_page(fast_settings(), server.url_for("/broken"), sleeps))
    assert (error.stage, error.reason) == ("page", "HTTP 500 after 3 attempts")
    assert error.url == server.url_for("/broken")
    assert paths(server) == ["/broken"] * 3
    first, second = sleeps.delays
    assert 0.25 <= first <= 0.75 and 0.5 <= second <= 1.5


def test_404_is_not_retried(server: HTTPServer) -> None:
    server.expect_request("/gone").respond_with_data("no", status=404)
    sleeps = Sleeps()
    error = failure(lambda: fetch_page(fast_settings(), server.url_for("/gone"), sleeps))
    assert error.reason == "HTTP 404"
    assert paths(server) == ["/gone"] and sleeps.delays == []


def test_read_timeout_is_retried_then_reported(server: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.6)
        return Response("<rss/>")

    server.expect_request("/slow").respond_with_handler(slow)
    sleeps = Sleeps()
    error = failure(lambda: fetch_feed(fast_settings(read_timeout=0.2, retries=2),
                                       server.url_for("/slow"), sleeps))
    assert error.reason == "read timed out (0.2 s) after 2 attempts"
    assert len(sleeps.delays) == 1
    time.sleep(0.5)  # let the slow handlers finish so both requests are in the log
    assert paths(server) == ["/slow", "/slow"]


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    error = failure(lambda: fetch_page(fast_settings(), f"http://127.0.0.1:{port}/", sleeps))
    assert error.reason == "connection refused after 3 attempts"
    assert len(sleeps.delays) == 2


# -- size caps and deadlines --------------------------------------------------------------


def test_oversized_page_is_truncated_at_the_cap(server: HTTPServer) -> None:
    body = ("<p>" + "x" * 996 + "</p>") * 50  # 50 000 bytes
    server.expect_request("/big").respond_with_data(body, content_type="text/html")
    server.expect_request("/small").respond_with_data(HTML, content_type="text/html")
    settings = fast_settings(max_body_bytes=10_000)
    big = fetch_page(settings, server.url_for("/big"))
    assert big.truncated and len(big.body) == 10_000
    assert big.body == body.encode()[:10_000]
    small = fetch_page(settings, server.url_for("/small"))
    assert not small.truncated and small.body == HTML.encode()
    assert small.content_type == "text/html"


def test_gzip_bomb_page_is_cut_at_the_cap(server: HTTPServer) -> None:
    bomb = gzip.compress(b"A" * 30_000_000, compresslevel=9)
    assert len(bomb) < 100_000
    server.expect_request("/bomb").respond_with_data(
        bomb, content_type="text/html", headers={"Content-Encoding": "gzip"})
    page = fetch_page(fast_settings(max_body_bytes=200_000), server.url_for("/bomb"))
    assert page.truncated and len(page.body) == 200_000
    assert page.body == b"A" * 200_000


def test_gzip_bomb_feed_is_an_error(server: HTTPServer) -> None:
    bomb = gzip.compress(b"<rss>" + b" " * 30_000_000, compresslevel=9)
    server.expect_request("/bomb.xml").respond_with_data(
        bomb, content_type="application/rss+xml", headers={"Content-Encoding": "gzip"})
    error = failure(lambda: fetch_feed(fast_settings(max_feed_bytes=1_000_000),
                                       server.url_for("/bomb.xml")))
    assert (error.stage, error.reason) == ("feed", "body larger than 1000000 bytes")
    assert paths(server) == ["/bomb.xml"]  # not retried


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
def test_deflate_bodies_are_decoded(server: HTTPServer, wbits: int) -> None:
    packer = zlib.compressobj(wbits=wbits)
    packed = packer.compress(HTML.encode()) + packer.flush()
    server.expect_request("/deflate").respond_with_data(
        packed, content_type="text/html", headers={"Content-Encoding": "deflate"})
    page = fetch_page(fast_settings(), server.url_for("/deflate"))
    assert page.body == HTML.encode() and not page.truncated


def test_corrupt_gzip_is_reported(server: HTTPServer) -> None:
    server.expect_request("/bad").respond_with_data(
        b"\x1f\x8b\x08\x00garbage-not-gzip", content_type="text/html",
        headers={"Content-Encoding": "gzip"})
    error = failure(lambda: fetch_page(fast_settings(), server.url_for("/bad")))
    assert error.reason.startswith("cannot decode body: gzip")


def test_feed_content_length_over_cap_is_rejected_before_reading(
        raw_server: Callable[[Callable[[socket.socket], None]], RawServer]) -> None:
    sent: list[int] = []

    def huge(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                     b"Content-Length: 50000000\r\n\r\n")
        for _ in range(10):
            conn.sendall(b"x" * 1000)
            sent.append(1000)
            time.sleep(0.05)

    raw = raw_server(huge)
    error = failure(lambda: fetch_feed(fast_settings(max_feed_bytes=1_000_000), raw.url("/f")))
    assert error.reason == "body larger than 1000000 bytes"
    assert raw.connections == 1


def test_short_content_length_body_is_a_clear_error(
        raw_server: Callable[[Callable[[socket.socket], None]], RawServer]) -> None:
    def short(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                     b"Content-Length: 5000\r\n\r\n<html>only this</html>")
        # Closing before the promised 5000 bytes.

    raw = raw_server(short)
    start = time.monotonic()
    error = failure(lambda: fetch_page(fast_settings(retries=2), raw.url("/p")))
    assert error.reason.startswith("connection broken: ")
    assert error.reason.endswith("after 2 attempts")
    assert raw.connections == 2
    assert time.monotonic() - start < 3


def test_content_length_promising_more_than_sent_ends_at_read_timeout(
        raw_server: Callable[[Callable[[socket.socket], None]], RawServer]) -> None:
    release = threading.Event()

    def stalls(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                     b"Content-Length: 5000\r\n\r\n<html>")
        release.wait(5)  # keeps the connection open without sending the rest

    raw = raw_server(stalls)
    start = time.monotonic()
    error = failure(lambda: fetch_page(fast_settings(read_timeout=0.3, retries=1), raw.url("/p")))
    release.set()
    assert error.reason == "read timed out (0.3 s) after 1 attempt"
    assert time.monotonic() - start < 2


def test_slowloris_body_is_stopped_at_the_deadline(
        raw_server: Callable[[Callable[[socket.socket], None]], RawServer]) -> None:
    def trickle(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                     b"Content-Length: 1000\r\n\r\n")
        for _ in range(100):
            conn.sendall(b"x")
            time.sleep(0.1)  # each byte resets the read timeout; only the deadline helps

    raw = raw_server(trickle)
    start = time.monotonic()
    error = failure(lambda: fetch_page(fast_settings(page_deadline=1.5, read_timeout=1.0),
                                       raw.url("/slow")))
    elapsed = time.monotonic() - start
    assert error.reason == "timed out after 1.5 s (deadline)"
    assert 1.4 <= elapsed < 2.5
    assert raw.connections == 1  # a deadline is not retried


# -- redirects ----------------------------------------------------------------------------


def test_redirect_loop_is_detected(server: HTTPServer) -> None:
    server.expect_request("/a").respond_with_data("", status=302, headers={"Location": "/b"})
    server.expect_request("/b").respond_with_data("", status=301, headers={"Location": "/a"})
    error = failure(lambda: fetch_page(fast_settings(), server.url_for("/a")))
    assert error.reason == f"redirect loop at {server.url_for('/a')}"
    assert paths(server) == ["/a", "/b"]


def test_too_many_redirects(server: HTTPServer) -> None:
    for hop in range(10):
        server.expect_request(f"/r{hop}").respond_with_data(
            "", status=307, headers={"Location": f"/r{hop + 1}"})
    error = failure(lambda: fetch_feed(fast_settings(max_redirects=5), server.url_for("/r0")))
    assert error.reason == "too many redirects (5)"
    assert paths(server) == [f"/r{hop}" for hop in range(6)]


def test_relative_redirect_is_followed(server: HTTPServer) -> None:
    server.expect_request("/news/2025/old").respond_with_data(
        "", status=301, headers={"Location": "../2024/story?id=7"})
    server.expect_request("/news/2024/story").respond_with_data(HTML, content_type="text/html")
    url = server.url_for("/news/2025/old")
    page = fetch_page(fast_settings(), url)
    assert page.url == url
    assert page.final_url == server.url_for("/news/2024/story?id=7")
    assert page.body == HTML.encode()


def test_redirect_without_location_is_an_error(server: HTTPServer) -> None:
    server.expect_request("/odd").respond_with_data("", status=302)
    error = failure(lambda: fetch_page(fast_settings(), server.url_for("/odd")))
    assert error.reason == "HTTP 302 without a Location"


# -- content types ------------------------------------------------------------------------


def test_non_html_page_is_refused_but_feed_is_not(server: HTTPServer) -> None:
    server.expect_request("/paper.pdf").respond_with_data(b"%PDF-1.7", content_type="application/pdf")
    error = failure(lambda: fetch_page(fast_settings(), server.url_for("/paper.pdf")))
    assert error.reason == "not HTML: application/pdf"
    feed = fetch_feed(fast_settings(), server.url_for("/paper.pdf"))
    assert feed.body == b"%PDF-1.7"


# -- robots.txt ---------------------------------------------------------------------------


def test_robots_disallow_is_honoured_and_fetched_once(server: HTTPServer) -> None:
    server.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nDisallow: /\n\nUser-agent: newsmon\nDisallow: /private/\nAllow: /\n",
        content_type="text/plain")
    for name in ("a", "b", "c"):
        server.expect_request(f"/public/{name}").respond_with_data(HTML, content_type="text/html")
        server.expect_request(f"/private/{name}").respond_with_data(HTML, content_type="text/html")
    urls = [server.url_for(f"/{area}/{name}") for name in "abc" for area in ("private", "public")]
    results = fetch_pages(fast_settings(respect_robots=True), urls)
    for url, result in zip(urls, results):
        if "/private/" in url:
            assert isinstance(result, FetchError)
            assert (result.url, result.reason) == (url, "disallowed by robots.txt")
        else:
            assert isinstance(result, PageResponse) and result.url == url
    assert paths(server).count("/robots.txt") == 1
    assert not [path for path in paths(server) if path.startswith("/private/")]
    assert sorted(p for p in paths(server) if p.startswith("/public/")) == [
        "/public/a", "/public/b", "/public/c"]


@pytest.mark.parametrize("status", [404, 500])
def test_missing_or_broken_robots_allows_all_and_is_asked_once(server: HTTPServer,
                                                                status: int) -> None:
    server.expect_request("/robots.txt").respond_with_data("", status=status)
    for name in "abcd":
        server.expect_request(f"/p/{name}").respond_with_data(HTML, content_type="text/html")
    results = fetch_pages(fast_settings(respect_robots=True),
                          [server.url_for(f"/p/{name}") for name in "abcd"])
    assert all(isinstance(result, PageResponse) for result in results)
    assert paths(server).count("/robots.txt") == 1


def test_feeds_ignore_robots(server: HTTPServer) -> None:
    server.expect_request("/robots.txt").respond_with_data("User-agent: *\nDisallow: /\n")
    server.expect_request("/feed.xml").respond_with_data("<rss/>")
    feed = fetch_feed(fast_settings(respect_robots=True), server.url_for("/feed.xml"))
    assert feed.body == b"<rss/>"
    assert paths(server) == ["/feed.xml"]


# -- concurrency --------------------------------------------------------------------------


class InFlight:
    """A handler that holds each request briefly and records the most held at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.15)
        with self.lock:
            self.now -= 1
        return Response(HTML, content_type="text/html")


@pytest.mark.parametrize(("concurrency", "per_host", "expected"), [(8, 2, 2), (1, 4, 1), (8, 3, 3)])
def test_concurrency_limits_are_never_exceeded(server: HTTPServer, concurrency: int,
                                               per_host: int, expected: int) -> None:
    handler = InFlight()
    server.expect_request("/story").respond_with_handler(handler)
    urls = [server.url_for(f"/story?n={n}") for n in range(8)]
    results = fetch_pages(fast_settings(concurrency=concurrency, per_host_concurrency=per_host),
                          urls)
    assert [r.url for r in results if isinstance(r, PageResponse)] == urls  # order kept
    assert handler.most == expected


def test_fetch_pages_keeps_order_with_errors(server: HTTPServer) -> None:
    server.expect_request("/ok").respond_with_data(HTML, content_type="text/html")
    server.expect_request("/missing").respond_with_data("", status=404)
    urls = [server.url_for("/missing"), server.url_for("/ok"), "ftp://127.0.0.1/x"]
    results = fetch_pages(fast_settings(), urls)
    assert isinstance(results[0], FetchError) and results[0].reason == "HTTP 404"
    assert isinstance(results[1], PageResponse) and results[1].body == HTML.encode()
    assert isinstance(results[2], FetchError)
    assert results[2].reason == "refused: scheme 'ftp' is not http or https"


def test_fetch_error_pickles() -> None:
    error = FetchError("https://news.example/a", "page", "HTTP 500 after 3 attempts")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.url, copy.stage, copy.reason, str(copy)) == (
        error.url, error.stage, error.reason, "https://news.example/a: HTTP 500 after 3 attempts")

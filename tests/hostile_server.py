"""A fault-injecting HTTP server on 127.0.0.1 for the reliability tests.

It speaks raw HTTP/1.1 over asyncio streams, so every byte on the wire is under the test's
control: a body can trickle, never end, lie about its length, inflate a thousandfold, or
arrive in a charset other than the one announced. The server runs its own event loop in a
daemon thread; routes are plain async handlers registered per path, and every request is
recorded as a `Hit` (when it started, when the server stopped sending, how many bytes went
out, and whether the client hung up first), so a test can check from the server's side that
newsmon gave up in time.

`hold(path)` makes a route block until `release(path)`: the crash tests use it to keep a
nightly run inside a known step while they kill it.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import struct
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import Self

__all__ = [
    "Handler",
    "Hit",
    "HostileServer",
    "Reply",
    "Request",
    "endless",
    "gzip_bomb",
    "html_page",
    "http_date",
    "huge_single_line",
    "redirect",
    "respond",
    "retry_after",
    "rss_feed",
    "trickle",
    "wrong_length",
]


@dataclass
class Hit:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    started: float
    finished: float | None = None
    sent: int = 0  # body bytes written
    aborted: bool = False  # the client closed the connection before the body was complete

    @property
    def duration(self) -> float:
        """Return how long the server kept this request going, in seconds."""
        return (self.finished or time.monotonic()) - self.started


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]  # lower-cased names


class Reply:
    """The write side of one response: status line, headers, then body bytes, counted."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hit: Hit) -> None:
        self._reader = reader
        self._writer = writer
        self._hit = hit

    async def pause(self, seconds: float) -> None:
        """Wait `seconds`, but raise ConnectionResetError as soon as the client hangs up."""
        try:
            data = await asyncio.wait_for(self._reader.read(1), seconds)
        except TimeoutError:
            return
        if not data:
            raise ConnectionResetError("the client closed the connection")

    async def head(self, status: int, headers: Iterable[tuple[str, str]] = (),
                   reason: str = "") -> None:
        """Send the status line and headers (Connection: close is always added)."""
        lines = [f"HTTP/1.1 {status} {reason or _REASONS.get(status, 'Status')}"]
        lines += [f"{name}: {value}" for name, value in headers]
        lines.append("Connection: close")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await self._writer.drain()

    async def body(self, data: bytes) -> None:
        """Send body bytes and wait until the socket took them."""
        self._writer.write(data)
        await self._writer.drain()
        self._hit.sent += len(data)


Handler = Callable[[Request, Reply], Awaitable[None]]

_REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 304: "Not Modified",
            404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}


async def _not_found(request: Request, reply: Reply) -> None:
    await reply.head(404, [("Content-Type", "text/plain"), ("Content-Length", "9")])
    await reply.body(b"not found")


@dataclass
class _Hold:
    event: threading.Event = field(default_factory=threading.Event)


class HostileServer:
    """Serve registered fault handlers on 127.0.0.1 from a background thread."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._routes: dict[str, Handler] = {}
        self._hits: list[Hit] = []
        self._lock = threading.Lock()
        self._holds: dict[str, _Hold] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._stopping: asyncio.Event | None = None
        # A bound socket that never listens: connecting to its port is refused at once, and
        # holding it keeps another process from taking the port during the test.
        self._refuser = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._refuser.bind((host, 0))
        self.refused_port = self._refuser.getsockname()[1]

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> HostileServer:
        """Start serving; return self once the port is known."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True,
                                        name="hostile-server")
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("hostile server did not start")
        return self

    def stop(self) -> None:
        """Stop serving and release every held route."""
        for hold in self._holds.values():
            hold.event.set()
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10)
        self._refuser.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        asyncio.run(self._serve(ready))

    async def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, self.host, 0, backlog=256)
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set()
        async with self._server:
            await self._stopping.wait()
            self._server.close()
            # Endless and trickling handlers are cancelled with their connections.
            for task in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
                task.cancel()

    # -- routes -------------------------------------------------------------------------

    @property
    def base(self) -> str:
        """Return the server's base URL, without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        """Return the absolute URL of a path on this server."""
        return f"{self.base}{path}"

    @property
    def refused_base(self) -> str:
        """Return a base URL on this host whose port refuses connections."""
        return f"http://{self.host}:{self.refused_port}"

    def route(self, path: str, handler: Handler) -> str:
        """Serve `handler` at `path`; return the path's absolute URL."""
        self._routes[path] = handler
        return self.url(path)

    def hold(self, path: str) -> None:
        """Make requests to `path` wait (before answering) until `release(path)`."""
        self._holds.setdefault(path, _Hold()).event.clear()

    def release(self, path: str) -> None:
        """Let held requests to `path` go on."""
        self._holds.setdefault(path, _Hold()).event.set()

    def hits(self, path: str | None = None) -> list[Hit]:
        """Return the requests seen so far, for one path or all."""
        with self._lock:
            return [h for h in self._hits if path is None or h.path == path]

    def count(self, prefix: str = "") -> int:
        """Return how many requests had a path starting with `prefix`."""
        with self._lock:
            return sum(1 for h in self._hits if h.path.startswith(prefix))

    # -- one connection -----------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hit: Hit | None = None
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            request = _parse_request(head)
            hit = Hit(request.path, request.headers, time.monotonic())
            with self._lock:
                self._hits.append(hit)
            hold = self._holds.get(request.path)
            if hold is not None:
                while not hold.event.is_set():
                    await asyncio.sleep(0.02)
            handler = self._routes.get(request.path, _not_found)
            await handler(request, Reply(reader, writer, hit))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError):
            if hit is not None:
                hit.aborted = True
        except asyncio.CancelledError:
            pass  # the server is stopping; endless handlers end here
        finally:
            if hit is not None:
                hit.finished = time.monotonic()
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, asyncio.CancelledError):
                pass


def _parse_request(head: bytes) -> Request:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
    path, _, query = target.partition("?")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return Request(method, path, query, headers)


# -- handler factories ------------------------------------------------------------------


def respond(body: bytes, content_type: str = "text/html; charset=utf-8", status: int = 200,
            headers: Iterable[tuple[str, str]] = ()) -> Handler:
    """Answer with a fixed body and a correct Content-Length."""

    async def handler(request: Request, reply: Reply) -> None:
        await reply.head(status, [("Content-Type", content_type),
                                  ("Content-Length", str(len(body))), *headers])
        await reply.body(body)

    return handler


def trickle(body: bytes, interval: float = 1.0, content_type: str = "text/html") -> Handler:
    """Send the headers at once, then the body one byte every `interval` seconds (slowloris)."""

    async def handler(request: Request, reply: Reply) -> None:
        await reply.head(200, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        for index in range(len(body)):
            await reply.body(body[index:index + 1])
            await reply.pause(interval)

    return handler


def endless(content_type: str = "text/html", chunk: bytes = b"<p>more and more</p>" * 3000) -> Handler:
    """Send a chunked body that never ends."""

    async def handler(request: Request, reply: Reply) -> None:
        await reply.head(200, [("Content-Type", content_type), ("Transfer-Encoding", "chunked")])
        opening = b"<html><body>"
        await reply.body(f"{len(opening):x}\r\n".encode() + opening + b"\r\n")
        framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        while True:
            await reply.body(framed)
            await asyncio.sleep(0)  # let the loop serve other connections

    return handler


def gzip_bomb(inflated_mib: int, content_type: str = "text/html") -> Handler:
    """Send a gzip body that inflates to `inflated_mib` MiB of zeros.

    After a full flush deflate forgets its history, so every further MiB of zeros compresses
    to the same bytes: the bomb is one compressed MiB repeated, built in milliseconds.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = bytes(1 << 20)
    compressor.compress(block)
    compressor.flush(zlib.Z_FULL_FLUSH)
    unit = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(inflated_mib):
        crc = zlib.crc32(block, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = compressor.flush() + struct.pack("<II", crc, (inflated_mib << 20) & 0xFFFFFFFF)
    payload = header + unit * inflated_mib + trailer

    async def handler(request: Request, reply: Reply) -> None:
        await reply.head(200, [("Content-Type", content_type), ("Content-Encoding", "gzip"),
                               ("Content-Length", str(len(payload)))])
        await reply.body(payload)

    return handler


def gzip_body(body: bytes, content_type: str) -> Handler:
    """Send an honest gzip-encoded body."""
    return respond(gzip.compress(body), content_type, headers=[("Content-Encoding", "gzip")])


def wrong_length(body: bytes, declared: int, *, then: str = "close",
                 content_type: str = "text/html; charset=utf-8") -> Handler:
    """Declare `declared` bytes but send `body`; then close, or stall ("stall") with the socket open."""

    async def handler(request: Request, reply: Reply) -> None:
        await reply.head(200, [("Content-Type", content_type), ("Content-Length", str(declared))])
        await reply.body(body)
        if then == "stall":
            await reply.pause(3600)

    return handler


def redirect(location: str, status: int = 302) -> Handler:
    """Answer with a redirect to `location`."""

    async def handler(request: Request, reply: Reply) -> None:
        await reply.head(status, [("Location", location), ("Content-Length", "0")])

    return handler


def huge_single_line(size: int, words: bytes = b"lorem ipsum dolor sit amet ") -> Handler:
    """Send a `size`-byte HTML page whose body is one line, generated as it goes."""
    opening = b"<html><head><title>One long line</title></head><body><p>"
    closing = b"</p></body></html>"
    filler = words * (65536 // len(words))

    async def handler(request: Request, reply: Reply) -> None:
        await reply.head(200, [("Content-Type", "text/html; charset=utf-8"),
                               ("Content-Length", str(size))])
        await reply.body(opening)
        remaining = size - len(opening) - len(closing)
        while remaining > 0:
            piece = filler[:remaining]
            await reply.body(piece)
            remaining -= len(piece)
        await reply.body(closing)

    return handler


def retry_after(seconds: int, then: Handler | None = None, times: int = 1) -> Handler:
    """Answer 429 with Retry-After `times` times, then hand over to `then` (or keep refusing)."""
    state = {"left": times}

    async def handler(request: Request, reply: Reply) -> None:
        if then is not None and state["left"] <= 0:
            await then(request, reply)
            return
        state["left"] -= 1
        await reply.head(429, [("Retry-After", str(seconds)), ("Content-Length", "4"),
                               ("Content-Type", "text/plain")])
        await reply.body(b"slow")

    return handler


# -- documents ---------------------------------------------------------------------------


def html_page(title: str, paragraphs: Iterable[str], *, charset: str | None = "utf-8",
              encoding: str = "utf-8", lang: str = "en") -> bytes:
    """Build an article page with a title, a meta charset (when given) and paragraphs."""
    meta = f'<meta charset="{charset}">' if charset else ""
    body = "".join(f"<p>{p}</p>\n" for p in paragraphs)
    text = (f'<!DOCTYPE html><html lang="{lang}"><head>{meta}<title>{title}</title></head>'
            f"<body><header><nav><a href='/'>Home</a></nav></header><article><h1>{title}</h1>\n"
            f"{body}</article><footer>Footer links</footer></body></html>")
    return text.encode(encoding)


def http_date(when: datetime) -> str:
    """Format a datetime as an RFC 822 date for a feed."""
    return format_datetime(when, usegmt=True)


def rss_feed(title: str, items: Iterable[dict[str, str | None]]) -> bytes:
    """Build an RSS 2.0 feed; each item may carry title, link, guid, pubDate, description."""

    def parts() -> Iterator[str]:
        yield (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
               f"<title>{title}</title><link>http://example.invalid/</link>"
               f"<description>{title}</description>")
        for item in items:
            yield "<item>"
            for key in ("title", "link", "guid", "pubDate", "description"):
                value = item.get(key)
                if value is not None:
                    yield f"<{key}>{_xml_escape(value)}</{key}>"
            yield "</item>"
        yield "</channel></rss>"

    return "".join(parts()).encode("utf-8")


def _xml_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

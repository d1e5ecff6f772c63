"""Serve a folder over HTTP on loopback addresses, for the demo, the tests and the benchmarks.

The server behaves like a well-mannered static web host: HTTP/1.1 with keep-alive, a
Content-Type chosen from the file extension, strong ETags and Last-Modified with 304 answers
to conditional GETs, and a robots.txt that allows everything when the folder has none. It
counts GETs per path so tests can tell whether a page was fetched again.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import socket
import socketserver
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

__all__ = ["CONTENT_TYPES", "DEMO_PORT", "ROBOTS_TXT", "LocalSite", "MultiHostSite"]

CONTENT_TYPES: dict[str, str] = {
    # No charset on HTML: the sample news pages come in several encodings and declare their own.
    ".html": "text/html",
    ".htm": "text/html",
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".rdf": "application/rdf+xml",
    ".opml": "text/x-opml",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}

ROBOTS_TXT = b"User-agent: *\nAllow: /\n"

# The demo's feed and article URLs name the port, so the same port on every run keeps them
# stable: feed state, ETags and stored article URLs then carry over from one run to the next.
# Below Linux's ephemeral range (32768+), where no outgoing connection will be holding it.
DEMO_PORT = 28765

# A keep-alive connection idle this long is closed, so handler threads never pile up.
_IDLE_SECONDS = 30.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connections when a fetcher opens dozens at once.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], site: LocalSite) -> None:
        self.site = site
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for the host's name, which stalls for
        # 127.0.0.2 and friends on a machine without a resolver.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "newsmon-localsite/0.1"
    sys_version = ""
    disable_nagle_algorithm = True
    # A buffered writer sends the headers and a page in one go instead of two system calls.
    wbufsize = 1 << 18
    timeout = _IDLE_SECONDS
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.site._track(self.connection, opened=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.site._track(self.connection, opened=False)

    def log_message(self, format: str, *args: Any) -> None:
        # Per-request log lines would drown the demo's output and slow the benchmark.
        return

    def do_GET(self) -> None:
        """Answer a GET, counting it."""
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        """Answer a HEAD like a GET without the body."""
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        site = self.server.site
        path = unquote(urlsplit(self.path).path) or "/"
        if send_body:
            site._count(path)
        resource = site._resolve(path)
        if resource is None:
            if path == "/robots.txt":
                self._send(HTTPStatus.OK, ROBOTS_TXT, CONTENT_TYPES[".txt"], send_body)
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", CONTENT_TYPES[".txt"], send_body)
            return
        try:
            etag, mtime, body = site._load(resource)
        except OSError:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", CONTENT_TYPES[".txt"], send_body)
            return
        last_modified = email.utils.formatdate(mtime, usegmt=True)
        validators = {"ETag": etag, "Last-Modified": last_modified}
        if self._not_modified(etag, mtime):
            self.send_response(HTTPStatus.NOT_MODIFIED)
            for name, value in validators.items():
                self.send_header(name, value)
            self.end_headers()
            return
        content_type = CONTENT_TYPES.get(resource.suffix.lower(), "application/octet-stream")
        self._send(HTTPStatus.OK, body, content_type, send_body, validators)

    def _not_modified(self, etag: str, mtime: int) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            # RFC 9110: If-None-Match wins over If-Modified-Since; GETs compare weakly.
            tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            return "*" in tags or etag in tags
        if_modified_since = self.headers.get("If-Modified-Since")
        if if_modified_since:
            try:
                since = email.utils.parsedate_to_datetime(if_modified_since)
            except (TypeError, ValueError):
                return False
            if since.tzinfo is None:
                since = since.replace(tzinfo=UTC)
            return datetime.fromtimestamp(mtime, UTC) <= since
        return False

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, send_body: bool,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)


class LocalSite:
    """Serve a folder over HTTP on a loopback address in a background thread.

    Content-Type follows the extension, ETag + Last-Modified come with every file and
    conditional GETs get 304, /robots.txt allows everything unless the folder has its own,
    and GETs are counted per path (query strings ignored). The socket is bound on
    construction, so `base_url` is known before the thread starts; use it as a context
    manager (or `start()` / `close()`). The folder may be filled after the server starts:
    every request reads the file system afresh.
    """

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = Path(root)
        self.host = host
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._etags: dict[Path, tuple[int, int, str]] = {}
        self._connections: set[socket.socket] = set()
        self._connections_accepted = 0
        self._thread: threading.Thread | None = None
        self._server = _Server((host, port), self)
        bound_port = self._server.server_address[1]
        self.port: int = int(bound_port)
        self.base_url: str = f"http://{host}:{self.port}"

    @classmethod
    def on_preferred_port(cls, root: Path, port: int = DEMO_PORT, host: str = "127.0.0.1") -> Self:
        """Bind the preferred port, or any free one when it is taken."""
        try:
            return cls(root, host=host, port=port)
        except OSError:
            return cls(root, host=host, port=0)

    def start(self) -> Self:
        """Create the folder if needed and start serving in a daemon thread."""
        if self._thread is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                name=f"local-site-{self.host}:{self.port}", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, drop open keep-alive connections and release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def url(self, path: str) -> str:
        """Return the absolute URL of a site path such as "/feeds/blog.xml"."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def requests_for(self, path: str) -> int:
        """Return how many GETs this server answered for a path (query string ignored)."""
        with self._lock:
            return self._counts[unquote(urlsplit(path).path)]

    def request_counts(self) -> dict[str, int]:
        """Return a copy of the GET count per path."""
        with self._lock:
            return dict(self._counts)

    def total_requests(self) -> int:
        """Return how many GETs this server answered in all."""
        with self._lock:
            return sum(self._counts.values())

    def article_requests(self) -> int:
        """Return how many GETs asked for HTML pages (articles), not feeds or robots.txt."""
        with self._lock:
            return sum(n for path, n in self._counts.items() if path.endswith((".html", ".htm")))

    def connections(self) -> tuple[int, int]:
        """Return (connections accepted in all, connections open now)."""
        with self._lock:
            return self._connections_accepted, len(self._connections)

    def _count(self, path: str) -> None:
        with self._lock:
            self._counts[path] += 1

    def _track(self, conn: socket.socket, opened: bool) -> None:
        with self._lock:
            if opened:
                self._connections.add(conn)
                self._connections_accepted += 1
            else:
                self._connections.discard(conn)

    def _resolve(self, path: str) -> Path | None:
        relative = path.lstrip("/")
        if not relative or path.endswith("/"):
            relative += "index.html"
        root = self.root.resolve()
        try:
            candidate = (root / relative).resolve()
        except (OSError, ValueError):
            return None
        if not candidate.is_relative_to(root) or not candidate.is_file():
            return None
        return candidate

    def _load(self, path: Path) -> tuple[str, int, bytes]:
        """Return (ETag, mtime in whole seconds, body) of a file."""
        with path.open("rb") as handle:
            # Stat the open file: the builder may swap in a new version between two calls.
            stat = os.fstat(handle.fileno())
            body = handle.read()
        key = (stat.st_mtime_ns, len(body))
        with self._lock:
            cached = self._etags.get(path)
        if cached is not None and cached[:2] == key:
            etag = cached[2]
        else:
            # Content-based, so rebuilding a file with the same bytes keeps its validator.
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            with self._lock:
                self._etags[path] = (*key, etag)
        return etag, int(stat.st_mtime), body


class MultiHostSite:
    """Serve one folder on several loopback addresses, one LocalSite each.

    Loopback is the whole of 127.0.0.0/8 on Linux, so 127.0.0.2..127.0.0.21 act as distinct
    hosts to a fetcher's per-host limits. `base_urls` follows the order of `hosts`.
    """

    def __init__(self, root: Path, hosts: Sequence[str]) -> None:
        if not hosts:
            raise ValueError("MultiHostSite needs at least one host")
        self.root = Path(root)
        self.sites: tuple[LocalSite, ...] = ()
        sites: list[LocalSite] = []
        try:
            for host in hosts:
                sites.append(LocalSite(self.root, host=host))
        except OSError:
            for site in sites:
                site.close()
            raise
        self.sites = tuple(sites)
        self.base_urls: tuple[str, ...] = tuple(site.base_url for site in self.sites)

    def start(self) -> Self:
        """Start every host's server."""
        for site in self.sites:
            site.start()
        return self

    def close(self) -> None:
        """Stop every host's server."""
        for site in self.sites:
            site.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def requests_for(self, path: str) -> int:
        """Return how many GETs all hosts together answered for a path."""
        return sum(site.requests_for(path) for site in self.sites)

    def total_requests(self) -> int:
        """Return how many GETs all hosts together answered."""
        return sum(site.total_requests() for site in self.sites)

    def article_requests(self) -> int:
        """Return how many GETs for HTML pages all hosts together answered."""
        return sum(site.article_requests() for site in self.sites)

"""Fetch feeds and pages politely and defensively over one httpx client.

One `Fetcher` owns one `httpx.AsyncClient` and applies, to every request:

- the address guard (`newsmon.netguard`) on every hop: redirects are followed here, not by
  httpx, so that a redirect to an internal address is refused before it is requested;
- a global concurrency limit and a per-host limit (a host slot is taken before a global
  one, so requests queued behind a busy host do not hold global slots), over a connection
  pool per origin (`newsmon.host_pools`);
- connect and read timeouts, plus a deadline per request (`page_deadline` /
  `feed_deadline`, from sending the request to the last body byte) that stops a server
  trickling its body one byte at a time. Retries and their waits come on top of it;
- a cap on the decoded body: gzip and deflate are inflated here with a bounded output size,
  so a compression bomb costs no more memory than the cap. Pages are truncated at
  `max_body_bytes`; a feed over `max_feed_bytes` is an error;
- retries with exponential backoff and jitter on 429, 5xx, timeouts and connection errors,
  honouring Retry-After up to `max_retry_after`; after a Retry-After every request to that
  host waits it out;
- robots.txt for pages (never for feeds, which the user subscribed to), fetched once per
  scheme, host and port and matched for the token `newsmon`.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import importlib.util
import random
import socket
import ssl
import threading
import zlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

import httpx
from protego import Protego

from newsmon.config import FetchSettings
from newsmon.host_pools import HostPools
from newsmon.netguard import BlockedAddressError, Resolver, check_url_allowed, system_resolver

__all__ = ["ROBOTS_TOKEN", "FeedResponse", "FetchError", "Fetcher", "PageResponse"]

ROBOTS_TOKEN = "newsmon"
_ROBOTS_MAX_BYTES = 512_000  # Google reads the first 500 KiB of a robots.txt
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
_FEED_ACCEPT = (
    "application/rss+xml,application/atom+xml,application/xml;q=0.9,text/xml;q=0.9,*/*;q=0.5"
)
_HTML_TYPES = frozenset({"application/xhtml+xml", "application/xml"})


class FetchError(Exception):
    """A feed, page or robots.txt that could not be fetched, with a short reason."""

    def __init__(self, url: str, stage: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.stage = stage
        self.reason = reason

    def __reduce__(self) -> tuple[type[FetchError], tuple[str, str, str]]:
        return (FetchError, (self.url, self.stage, self.reason))


@dataclass(frozen=True)
class FeedResponse:
    """A feed answer: 200 with its body, or 304 with an empty body."""

    url: str
    final_url: str
    status: int
    body: bytes
    headers: Mapping[str, str]
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class PageResponse:
    """A page body, cut at the size cap when `truncated`."""

    url: str
    final_url: str
    status: int
    content_type: str | None
    body: bytes
    truncated: bool


@dataclass(frozen=True)
class _Answer:
    url: str
    status: int
    headers: dict[str, str]
    body: bytes = b""
    truncated: bool = False


@dataclass(frozen=True)
class _Request:
    stage: str
    headers: dict[str, str]
    cap: int
    truncate: bool  # pages are cut at the cap; feeds and robots.txt fail over it
    deadline: float
    attempts: int
    html_only: bool = False
    ok_statuses: frozenset[int] = field(default_factory=frozenset)


class _Retry(Exception):
    """An attempt that failed in a way worth retrying."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@functools.cache
def _accept_encoding() -> str:
    # Brotli is advertised only when httpx can decode it.
    if importlib.util.find_spec("brotli") or importlib.util.find_spec("brotlicffi"):
        return "gzip, deflate, br"
    return "gzip, deflate"


_TLS_CONTEXT_LOCK = threading.Lock()


def _tls_context() -> ssl.SSLContext:
    # Loading the certificate store takes tens of milliseconds of CPU; every feed and batch
    # opens a client, so the process builds the store once and the clients share it. The
    # lock keeps feeds polled in parallel threads from each building it at the same moment.
    with _TLS_CONTEXT_LOCK:
        return _shared_tls_context()


@functools.cache
def _shared_tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def _seconds(value: float) -> str:
    return f"{value:g} s"


class Fetcher:
    """Fetch feeds and pages with limits, retries, robots.txt and the address guard."""

    def __init__(
        self,
        settings: FetchSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._resolver = resolver or system_resolver
        self._sleep = sleep
        self._client: httpx.AsyncClient | None = None
        self._global = asyncio.Semaphore(max(1, settings.concurrency))
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._host_resume: dict[str, float] = {}
        self._robots: dict[str, Protego | None] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._addresses: dict[str, asyncio.Future[list[str]]] = {}
        self._random = random.Random()

    async def __aenter__(self) -> Self:
        settings = self._settings
        timeout = httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.read_timeout,
            pool=settings.connect_timeout,
        )
        tls = _tls_context()  # the pools' and, for proxies taken from the environment, the client's
        transport = self._transport or HostPools(
            connections_per_host=max(1, settings.per_host_concurrency), verify=tls)
        self._client = httpx.AsyncClient(
            transport=transport,
            verify=tls,
            follow_redirects=False,
            timeout=timeout,
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": _accept_encoding()},
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for lookup in self._addresses.values():
            lookup.cancel()  # a no-op on finished lookups; stops any still in flight
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def fetch_feed(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        unconditional: bool = False,
    ) -> FeedResponse:
        """Fetch a feed, conditionally unless told otherwise; raise FetchError on failure."""
        settings = self._settings
        headers = {"Accept": _FEED_ACCEPT}
        if not unconditional and etag:
            headers["If-None-Match"] = etag
        if not unconditional and last_modified:
            headers["If-Modified-Since"] = last_modified
        conditional = "If-None-Match" in headers or "If-Modified-Since" in headers
        request = _Request(
            stage="feed",
            headers=headers,
            cap=settings.max_feed_bytes,
            truncate=False,
            deadline=settings.feed_deadline,
            attempts=max(1, settings.retries),
            ok_statuses=frozenset({304}) if conditional else frozenset(),
        )
        answer = await self._follow(url, request)
        if answer.status == 304:
            return FeedResponse(
                url=url,
                final_url=answer.url,
                status=304,
                body=b"",
                headers=answer.headers,
                etag=answer.headers.get("etag", etag),
                last_modified=answer.headers.get("last-modified", last_modified),
            )
        return FeedResponse(
            url=url,
            final_url=answer.url,
            status=answer.status,
            body=answer.body,
            headers=answer.headers,
            etag=answer.headers.get("etag"),
            last_modified=answer.headers.get("last-modified"),
        )

    async def fetch_page(self, url: str) -> PageResponse:
        """Fetch an article page, honouring robots.txt; raise FetchError on failure."""
        settings = self._settings
        request = _Request(
            stage="page",
            headers={"Accept": _PAGE_ACCEPT},
            cap=settings.max_body_bytes,
            truncate=True,
            deadline=settings.page_deadline,
            attempts=max(1, settings.retries),
            html_only=True,
        )
        answer = await self._follow(url, request)
        return PageResponse(
            url=url,
            final_url=answer.url,
            status=answer.status,
            content_type=answer.headers.get("content-type"),
            body=answer.body,
            truncated=answer.truncated,
        )

    async def fetch_pages(self, urls: Sequence[str]) -> list[PageResponse | FetchError]:
        """Fetch pages concurrently, returning each response or its error in input order."""
        return list(await asyncio.gather(*(self._page_or_error(url) for url in urls)))

    async def _page_or_error(self, url: str) -> PageResponse | FetchError:
        try:
            return await self.fetch_page(url)
        except FetchError as exc:
            return exc

    # -- hops and redirects -------------------------------------------------------------

    async def _follow(self, url: str, request: _Request) -> _Answer:
        limit = self._settings.max_redirects
        current = url
        seen = {url}
        for _ in range(limit + 1):
            await self._guard(url, current, request.stage)
            robots = request.stage == "page" and self._settings.respect_robots
            if robots and not await self._robots_allow(current):
                raise FetchError(url, request.stage, _hop("disallowed by robots.txt", url, current))
            answer = await self._with_retries(url, current, request)
            if answer.status not in _REDIRECTS:
                return answer
            location = answer.headers.get("location")
            if not location:
                raise FetchError(url, request.stage, f"HTTP {answer.status} without a Location")
            try:
                target = str(httpx.URL(current).join(location.strip()))
            except (httpx.InvalidURL, ValueError):
                raise FetchError(url, request.stage, f"bad redirect Location {location!r}") from None
            if target in seen:
                raise FetchError(url, request.stage, f"redirect loop at {target}")
            seen.add(target)
            current = target
        raise FetchError(url, request.stage, f"too many redirects ({limit})")

    async def _guard(self, url: str, hop: str, stage: str) -> None:
        try:
            await check_url_allowed(
                hop, allow_private=self._settings.allow_private_addresses, resolver=self._resolve
            )
        except BlockedAddressError as exc:
            raise FetchError(url, stage, _hop(f"refused: {exc.detail}", url, hop)) from None
        except OSError as exc:
            raise FetchError(url, stage, _hop(f"DNS lookup failed: {exc}", url, hop)) from None

    async def _resolve(self, host: str) -> list[str]:
        # One lookup per host per Fetcher, failures included, shared by concurrent pages: a
        # batch often holds many pages of one site.
        lookup = self._addresses.get(host)
        if lookup is None:
            lookup = self._addresses[host] = asyncio.ensure_future(self._lookup(host))
        return await asyncio.shield(lookup)

    async def _lookup(self, host: str) -> list[str]:
        attempts = max(1, self._settings.retries)
        for attempt in range(1, attempts):
            try:
                return await self._resolver(host)
            except socket.gaierror as exc:
                # Only a temporary failure is worth asking again.
                if exc.errno != socket.EAI_AGAIN:
                    raise
            await self._sleep(self._settings.backoff_seconds * 2 ** (attempt - 1))
        return await self._resolver(host)

    # -- retries --------------------------------------------------------------------------

    async def _with_retries(self, url: str, hop: str, request: _Request) -> _Answer:
        settings = self._settings
        for attempt in range(1, request.attempts + 1):
            try:
                answer = await self._attempt(url, hop, request)
            except _Retry as failure:
                reason, retry_after = failure.reason, failure.retry_after
            else:
                status = answer.status
                if status == 429 or status >= 500:
                    reason = f"HTTP {status}"
                    retry_after = _retry_after(answer.headers.get("retry-after"))
                elif 200 <= status < 300 or status in _REDIRECTS or status in request.ok_statuses:
                    return answer
                else:
                    raise FetchError(url, request.stage, _hop(f"HTTP {status}", url, hop))
            if retry_after is not None and retry_after > settings.max_retry_after:
                raise FetchError(
                    url,
                    request.stage,
                    _hop(f"{reason}: Retry-After {retry_after:.0f} s is over the "
                         f"{settings.max_retry_after:g} s limit", url, hop),
                )
            if attempt == request.attempts:
                break
            if retry_after is not None:
                # The next attempt, and every other request to this host, waits it out.
                self._pause_host(hop, retry_after)
            else:
                base = settings.backoff_seconds * 2 ** (attempt - 1)
                await self._sleep(base * self._random.uniform(0.5, 1.5))
        attempts = request.attempts
        plural = "attempt" if attempts == 1 else "attempts"
        raise FetchError(url, request.stage, _hop(f"{reason} after {attempts} {plural}", url, hop))

    def _pause_host(self, hop: str, delay: float) -> None:
        host = _host(hop)
        resume = asyncio.get_running_loop().time() + delay
        self._host_resume[host] = max(resume, self._host_resume.get(host, 0.0))

    async def _wait_for_host(self, host: str) -> None:
        resume = self._host_resume.get(host)
        if resume is not None:
            remaining = resume - asyncio.get_running_loop().time()
            if remaining > 0:
                await self._sleep(remaining)

    # -- one request ----------------------------------------------------------------------

    async def _attempt(self, url: str, hop: str, request: _Request) -> _Answer:
        host = _host(hop)
        await self._wait_for_host(host)
        slot = self._hosts.get(host)
        if slot is None:
            slot = self._hosts[host] = asyncio.Semaphore(max(1, self._settings.per_host_concurrency))
        async with slot, self._global:
            try:
                async with asyncio.timeout(request.deadline):
                    return await self._request(url, hop, request)
            except TimeoutError:
                raise FetchError(
                    url, request.stage,
                    _hop(f"timed out after {_seconds(request.deadline)} (deadline)", url, hop),
                ) from None
            except httpx.TimeoutException as exc:
                raise _Retry(_timeout_reason(exc, self._settings)) from None
            except httpx.ConnectError as exc:
                raise _Retry(_connect_reason(exc)) from None
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                raise _Retry(f"connection broken: {exc or type(exc).__name__}") from None
            except httpx.DecodingError as exc:
                raise FetchError(url, request.stage, _hop(f"cannot decode body: {exc}", url, hop)) from None
            except httpx.HTTPError as exc:
                raise FetchError(url, request.stage, _hop(f"{type(exc).__name__}: {exc}", url, hop)) from None

    async def _request(self, url: str, hop: str, request: _Request) -> _Answer:
        if self._client is None:
            raise RuntimeError("use the Fetcher inside 'async with'")
        async with self._client.stream("GET", hop, headers=request.headers) as response:
            headers = {name.lower(): value for name, value in response.headers.items()}
            status = response.status_code
            if not 200 <= status < 300:
                return _Answer(hop, status, headers)
            if request.html_only:
                kind = _media_type(headers.get("content-type"))
                if kind and not (kind.startswith("text/") or kind in _HTML_TYPES):
                    raise FetchError(url, request.stage, _hop(f"not HTML: {kind}", url, hop))
            too_big = _hop(f"body larger than {request.cap} bytes", url, hop)
            declared = headers.get("content-length", "")
            if not request.truncate and declared.isdigit() and int(declared) > request.cap:
                raise FetchError(url, request.stage, too_big)
            body, truncated = await _read_capped(response, request.cap)
            if truncated and not request.truncate:
                raise FetchError(url, request.stage, too_big)
            return _Answer(hop, status, headers, body, truncated)

    # -- robots.txt -----------------------------------------------------------------------

    async def _robots_allow(self, hop: str) -> bool:
        parsed = httpx.URL(hop)
        key = f"{parsed.scheme}://{parsed.host}:{parsed.port or _default_port(parsed.scheme)}"
        lock = self._robots_locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._robots:
                robots_url = f"{parsed.scheme}://{parsed.netloc.decode('ascii')}/robots.txt"
                self._robots[key] = await self._fetch_robots(robots_url)
        rules = self._robots[key]
        return True if rules is None else bool(rules.can_fetch(hop, ROBOTS_TOKEN))

    async def _fetch_robots(self, robots_url: str) -> Protego | None:
        # Missing robots.txt allows all; so does one that fails (5xx, unreachable), and the
        # answer is cached either way so a broken host is not asked again for every page.
        request = _Request(
            stage="robots",
            headers={"Accept": "text/plain,*/*;q=0.5"},
            cap=_ROBOTS_MAX_BYTES,
            truncate=True,
            deadline=min(self._settings.page_deadline, 30.0),
            attempts=1,
        )
        try:
            answer = await self._follow(robots_url, request)
        except FetchError:
            return None
        return Protego.parse(answer.body.decode("utf-8", errors="replace"))


async def _read_capped(response: httpx.Response, cap: int) -> tuple[bytes, bool]:
    """Read at most `cap` decoded bytes; tell whether more were on offer."""
    try:
        # A transport that hands back a response already read (MockTransport does) leaves
        # nothing to stream; its decoded body is already in memory.
        content = response.content
    except httpx.ResponseNotRead:
        pass
    else:
        return content[:cap], len(content) > cap
    chunks: list[bytes] = []
    total = 0
    async with aclosing(_decoded_chunks(response, cap)) as decoded:
        async for chunk in decoded:
            if total + len(chunk) > cap:
                chunks.append(chunk[: cap - total])
                return b"".join(chunks), True
            chunks.append(chunk)
            total += len(chunk)
    return b"".join(chunks), False


async def _decoded_chunks(response: httpx.Response, cap: int) -> AsyncGenerator[bytes, None]:
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        async for chunk in response.aiter_raw():
            yield chunk
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        # Other encodings (br when installed) go through httpx's own decoder; the cap is still
        # checked chunk by chunk.
        async for chunk in response.aiter_bytes():
            yield chunk
        return
    wbits = zlib.MAX_WBITS | 16 if encoding != "deflate" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    produced = 0
    first = True
    try:
        async for raw in response.aiter_raw():
            if first and encoding == "deflate":
                first = False
                try:
                    out = inflater.decompress(raw, cap - produced + 1)
                except zlib.error:
                    # Some servers send raw deflate without the zlib header.
                    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                    out = inflater.decompress(raw, cap - produced + 1)
            else:
                # max_length bounds the output, so a bomb inflates to at most cap + 1 bytes.
                out = inflater.decompress(raw, cap - produced + 1)
            produced += len(out)
            yield out
            if produced > cap:
                return
        yield inflater.flush()
    except zlib.error as exc:
        raise httpx.DecodingError(f"{encoding}: {exc}") from None


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _retry_after(value: str | None) -> float | None:
    """Read Retry-After as seconds, from a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _timeout_reason(exc: httpx.TimeoutException, settings: FetchSettings) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect timed out ({_seconds(settings.connect_timeout)})"
    if isinstance(exc, httpx.ReadTimeout):
        return f"read timed out ({_seconds(settings.read_timeout)})"
    if isinstance(exc, httpx.PoolTimeout):
        return "no free connection in time"
    return f"timed out ({type(exc).__name__})"


def _connect_reason(exc: httpx.ConnectError) -> str:
    text = str(exc)
    cause: BaseException | None = exc
    for _ in range(8):  # chains are short; the bound only guards against a cycle
        if cause is None:
            break
        if isinstance(cause, ConnectionRefusedError) or "refused" in str(cause).lower():
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    lowered = text.lower()
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return f"DNS lookup failed: {text}"
    return f"cannot connect: {text or type(exc).__name__}"


def _host(url: str) -> str:
    return httpx.URL(url).host.lower()


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _hop(reason: str, url: str, hop: str) -> str:
    """Name the redirect target in a reason when it is not the URL that was asked for."""
    return reason if hop == url else f"{reason} (at {hop})"

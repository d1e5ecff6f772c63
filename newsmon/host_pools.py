"""An httpx transport that keeps one small connection pool per origin.

httpcore's pool checks every connection it holds (a system call each, to see whether the
server closed it) whenever a request starts or ends. One pool for a night's many hosts
therefore cost more per page the more hosts it had met: fetching 2,000 pages from 20 hosts
over one client took 2.8-3.0 CPU-seconds through one pool and 1.6-1.7 through a pool per
host. A pool per origin also matches the per-host limit: it never holds more connections
than that limit needs.

Pools of hosts that are done with are closed, oldest first, once more than `max_hosts` are
open, so a night over hundreds of hosts does not keep hundreds of idle sockets.
"""

from __future__ import annotations

import ssl
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable

import httpx

__all__ = ["HostPools"]

_Origin = tuple[str, str, int | None]


class HostPools(httpx.AsyncBaseTransport):
    """Send each request over a connection pool of its own scheme, host and port."""

    def __init__(self, *, connections_per_host: int, verify: ssl.SSLContext, max_hosts: int = 32) -> None:
        self._limits = httpx.Limits(max_connections=max(1, connections_per_host))
        self._verify = verify
        self._max_hosts = max(1, max_hosts)
        self._pools: OrderedDict[_Origin, httpx.AsyncHTTPTransport] = OrderedDict()
        self._in_flight: dict[_Origin, int] = {}

    def open_hosts(self) -> int:
        """Return how many origins have a pool open."""
        return len(self._pools)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request over its origin's pool, opening the pool when needed."""
        origin = (request.url.scheme, request.url.host, request.url.port)
        pool = self._pools.get(origin)
        if pool is None:
            await self._close_idle_pools(keep=self._max_hosts - 1)
            pool = self._pools[origin] = httpx.AsyncHTTPTransport(verify=self._verify, limits=self._limits)
        self._pools.move_to_end(origin)
        # A pool is busy from the request until its body stream is closed.
        self._in_flight[origin] = self._in_flight.get(origin, 0) + 1
        try:
            response = await pool.handle_async_request(request)
        except BaseException:
            self._done(origin)
            raise
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_ClosingStream(response.stream, lambda: self._done(origin)),
            extensions=response.extensions,
        )

    def _done(self, origin: _Origin) -> None:
        self._in_flight[origin] -= 1
        if not self._in_flight[origin]:
            del self._in_flight[origin]

    async def _close_idle_pools(self, keep: int) -> None:
        for origin in [o for o in self._pools if o not in self._in_flight]:  # oldest first
            if len(self._pools) <= keep:
                return
            await self._pools.pop(origin).aclose()

    async def aclose(self) -> None:
        """Close every pool."""
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            await pool.aclose()


class _ClosingStream(httpx.AsyncByteStream):
    """A response body that reports once when it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream | httpx.SyncByteStream, on_close: Callable[[], None]) -> None:
        if not isinstance(stream, httpx.AsyncByteStream):
            raise TypeError("an async transport returned a sync stream")
        self._stream = stream
        self._on_close: Callable[[], None] | None = on_close

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._on_close is not None:
                on_close, self._on_close = self._on_close, None
                on_close()

"""Tests for newsmon.host_pools: a connection pool per origin, idle ones closed oldest first."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from newsmon.host_pools import HostPools
from newsmon.local_server import LocalSite

TLS = ssl.create_default_context()


@pytest.fixture()
def sites(tmp_path: Path) -> Iterator[list[LocalSite]]:
    (tmp_path / "page.html").write_bytes(b"<html><body><p>" + b"x" * 50_000 + b"</p></body></html>")
    servers = [LocalSite(tmp_path).start() for _ in range(3)]
    try:
        yield servers
    finally:
        for server in servers:
            server.close()


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def client(pools: HostPools) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=pools)


def test_pages_of_one_host_share_its_connections(sites: list[LocalSite]) -> None:
    site = sites[0]

    async def fetch() -> list[int]:
        async with client(HostPools(connections_per_host=2, verify=TLS)) as http:
            answers = await asyncio.gather(*(http.get(site.url("/page.html")) for _ in range(10)))
            more = [await http.get(site.url("/page.html")) for _ in range(5)]
        return [len(a.content) for a in [*answers, *more]]

    sizes = asyncio.run(fetch())
    assert sizes == [50_000 + len("<html><body><p></p></body></html>")] * 15
    accepted, _ = site.connections()
    assert accepted <= 2  # 15 requests over at most the host's two connections


def test_idle_pools_beyond_the_limit_are_closed_oldest_first(sites: list[LocalSite]) -> None:
    async def fetch() -> tuple[int, int]:
        pools = HostPools(connections_per_host=2, verify=TLS, max_hosts=2)
        async with client(pools) as http:
            for site in sites:
                assert (await http.get(site.url("/page.html"))).status_code == 200
            open_after_three = pools.open_hosts()
            # The first host's pool was closed: asking it again opens a new connection.
            await http.get(sites[0].url("/page.html"))
            return open_after_three, pools.open_hosts()

    assert asyncio.run(fetch()) == (2, 2)
    assert wait_for(lambda: sites[0].connections() == (2, 0))
    assert sites[2].connections()[0] == 1


def test_a_pool_whose_body_is_still_read_stays_open(sites: list[LocalSite]) -> None:
    async def fetch() -> int:
        pools = HostPools(connections_per_host=1, verify=TLS, max_hosts=1)
        async with client(pools) as http, http.stream("GET", sites[0].url("/page.html")) as slow:
            # Two other hosts come and go while the first body is not read yet.
            for site in sites[1:]:
                assert (await http.get(site.url("/page.html"))).status_code == 200
            assert pools.open_hosts() == 2  # the busy pool and the newest one
            body = await slow.aread()
        return len(body)

    assert asyncio.run(fetch()) > 50_000
    assert sites[0].connections()[0] == 1


def test_a_failed_request_leaves_its_pool_idle(sites: list[LocalSite]) -> None:
    dead = LocalSite(sites[0].root)
    dead_url = dead.url("/page.html")
    dead.close()  # bound and closed: connecting is refused

    async def fetch() -> int:
        pools = HostPools(connections_per_host=1, verify=TLS, max_hosts=1)
        async with client(pools) as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(dead_url)
            await http.get(sites[0].url("/page.html"))
            return pools.open_hosts()

    # The refused host's pool counted as idle, so the limit of one closed it.
    assert asyncio.run(fetch()) == 1

"""The address guard: which addresses are public, and that private hops are never requested.

Only 127.0.0.1 carries real packets here. Every other address goes through
httpx.MockTransport and a stubbed resolver, so no DNS query or packet leaves the machine.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import pytest
from pytest_httpserver import HTTPServer

from newsmon.config import FetchSettings
from newsmon.fetch import Fetcher, FetchError
from newsmon.netguard import BlockedAddressError, check_url_allowed, is_public_address

T = TypeVar("T")

PUBLIC_IP = "93.184.215.14"  # only ever handed out by the stub resolver below


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh event loop."""
    return asyncio.run(coro)


class StubResolver:
    """Resolve names from a table and record every lookup; unknown names fail like NXDOMAIN."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.lookups.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


def guarded_settings(**overrides: Any) -> FetchSettings:
    """Settings with the guard on and quick retries."""
    values: dict[str, Any] = {"allow_private_addresses": False, "backoff_seconds": 0.0,
                              "retries": 1, "respect_robots": False}
    values.update(overrides)
    return FetchSettings(**values)


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        ("93.184.215.14", True),
        ("8.8.8.8", True),
        ("1.1.1.1", True),
        ("10.0.0.5", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("172.31.255.255", False),
        ("172.32.0.1", True),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("127.8.9.10", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("100.127.255.254", False),
        ("100.128.0.1", True),
        ("0.0.0.0", False),
        ("224.0.0.251", False),
        ("239.255.255.250", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("192.0.2.10", False),
        ("198.18.0.1", False),
        ("2606:4700:4700::1111", True),
        ("2a00:1450:4001:80b::200e", True),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fe80::1%eth0", False),
        ("febf:ffff::1", False),
        ("fc00::1", False),
        ("fd12:3456:789a::1", False),
        ("ff02::1", False),
        ("2001:db8::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.5", False),
        ("::ffff:169.254.169.254", False),
        ("::ffff:93.184.215.14", True),
        ("2002:a9fe:a9fe::1", False),  # 6to4 wrapping 169.254.169.254
        ("64:ff9b::a00:5", False),  # NAT64 wrapping 10.0.0.5
        ("64:ff9b::808:808", True),  # NAT64 wrapping 8.8.8.8
        ("[::1]", False),
        ("not an address", False),
        ("", False),
    ],
)
def test_is_public_address(ip: str, public: bool) -> None:
    assert is_public_address(ip) is public


def test_check_refuses_name_resolving_to_private_address() -> None:
    resolver = StubResolver({"intranet.example": ["10.1.2.3"]})
    with pytest.raises(BlockedAddressError) as caught:
        run(check_url_allowed("http://intranet.example/admin", allow_private=False, resolver=resolver))
    assert str(caught.value) == (
        "http://intranet.example/admin: refused: intranet.example resolves to private address 10.1.2.3"
    )
    assert resolver.lookups == ["intranet.example"]


def test_check_refuses_when_any_address_is_private() -> None:
    resolver = StubResolver({"mixed.example": [PUBLIC_IP, "127.0.0.1"]})
    with pytest.raises(BlockedAddressError, match="private address 127.0.0.1"):
        run(check_url_allowed("https://mixed.example/", allow_private=False, resolver=resolver))


def test_check_allows_public_name() -> None:
    resolver = StubResolver({"news.example": [PUBLIC_IP, "2606:4700:4700::1111"]})
    assert run(check_url_allowed("https://news.example/a?b=1", allow_private=False,
                                 resolver=resolver)) is None
    assert resolver.lookups == ["news.example"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "http://2130706433/",  # decimal 127.0.0.1
        "http://0x7f.1/",  # hex-and-short 127.0.0.1
        "http://[::1]/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:9000/",
        "http://api.localhost/",
    ],
)
def test_check_refuses_literal_and_loopback_hosts_without_dns(url: str) -> None:
    resolver = StubResolver({})
    with pytest.raises(BlockedAddressError, match="private address"):
        run(check_url_allowed(url, allow_private=False, resolver=resolver))
    assert resolver.lookups == []


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("ftp://news.example/file", "scheme 'ftp' is not http or https"),
        ("file:///etc/passwd", "scheme 'file' is not http or https"),
        ("http://user:secret@news.example/", "the URL embeds credentials"),
    ],
)
@pytest.mark.parametrize("allow_private", [False, True])
def test_check_refuses_schemes_and_credentials_always(url: str, detail: str,
                                                      allow_private: bool) -> None:
    with pytest.raises(BlockedAddressError) as caught:
        run(check_url_allowed(url, allow_private=allow_private, resolver=StubResolver({})))
    assert caught.value.detail == detail


def test_check_with_private_allowed_does_not_resolve() -> None:
    resolver = StubResolver({})
    run(check_url_allowed("http://10.0.0.5/", allow_private=True, resolver=resolver))
    run(check_url_allowed("http://intranet.example/", allow_private=True, resolver=resolver))
    assert resolver.lookups == []


def test_blocked_address_error_pickles() -> None:
    error = BlockedAddressError("http://10.0.0.5/", "10.0.0.5 is a private address")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.url, copy.detail, str(copy)) == (error.url, error.detail, str(error))


def test_fetcher_refuses_feed_on_loopback_server() -> None:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        server.expect_request("/feed.xml").respond_with_data("<rss/>")
        url = server.url_for("/feed.xml")

        async def go() -> FetchError:
            async with Fetcher(guarded_settings(), resolver=StubResolver({})) as fetcher:
                with pytest.raises(FetchError) as caught:
                    await fetcher.fetch_feed(url)
                return caught.value

        error = run(go())
        assert error.stage == "feed"
        assert error.reason == "refused: 127.0.0.1 is a private address"
        assert server.log == []  # the request never reached the server
    finally:
        server.clear()
        server.stop()


class RedirectSite:
    """A mock web: public hosts redirect along a chain; every request is recorded."""

    def __init__(self, hops: dict[str, str]) -> None:
        self.hops = hops
        self.requested: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requested.append(url)
        if url in self.hops:
            return httpx.Response(302, headers={"Location": self.hops[url]})
        return httpx.Response(200, text="<html><body>secret</body></html>",
                              headers={"Content-Type": "text/html"})


PUBLIC_NAMES = {"news.example": [PUBLIC_IP], "cdn.example": [PUBLIC_IP],
                "intranet.example": ["10.1.2.3"]}


@pytest.mark.parametrize(
    ("target", "detail"),
    [
        ("http://127.0.0.1/admin", "127.0.0.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a private address"),
        ("http://10.0.0.5/", "10.0.0.5 is a private address"),
        ("http://intranet.example/", "intranet.example resolves to private address 10.1.2.3"),
        ("http://[::ffff:10.0.0.5]/", "::ffff:10.0.0.5 is a private address"),
    ],
)
@pytest.mark.parametrize("stage", ["feed", "page"])
def test_redirect_chain_to_private_address_is_refused(target: str, detail: str, stage: str) -> None:
    start = "https://news.example/story"
    middle = "https://cdn.example/next"
    site = RedirectSite({start: middle, middle: target})
    resolver = StubResolver(PUBLIC_NAMES)

    async def go() -> FetchError:
        async with Fetcher(guarded_settings(), transport=httpx.MockTransport(site),
                           resolver=resolver) as fetcher:
            with pytest.raises(FetchError) as caught:
                if stage == "feed":
                    await fetcher.fetch_feed(start)
                else:
                    await fetcher.fetch_page(start)
            return caught.value

    error = run(go())
    assert error.stage == stage
    assert error.url == start
    assert error.reason == f"refused: {detail} (at {target})"
    assert site.requested == [start, middle]  # the private hop was never requested
    assert set(resolver.lookups) <= set(PUBLIC_NAMES)


def test_public_redirect_chain_is_followed_under_the_guard() -> None:
    start = "https://news.example/story"
    site = RedirectSite({start: "https://cdn.example/final"})

    async def go() -> str:
        async with Fetcher(guarded_settings(), transport=httpx.MockTransport(site),
                           resolver=StubResolver(PUBLIC_NAMES)) as fetcher:
            page = await fetcher.fetch_page(start)
            assert page.body == b"<html><body>secret</body></html>"
            return page.final_url

    assert run(go()) == "https://cdn.example/final"
    assert site.requested == [start, "https://cdn.example/final"]


def test_unresolvable_name_is_reported_without_a_request() -> None:
    site = RedirectSite({})

    async def go() -> FetchError:
        async with Fetcher(guarded_settings(), transport=httpx.MockTransport(site),
                           resolver=StubResolver({})) as fetcher:
            results = await fetcher.fetch_pages(["https://nowhere.example/a"])
            assert isinstance(results[0], FetchError)
            return results[0]

    error = run(go())
    assert error.reason.startswith("DNS lookup failed")
    assert site.requested == []


def test_redirect_to_other_scheme_is_refused() -> None:
    start = "https://news.example/story"
    site = RedirectSite({start: "file:///etc/passwd"})

    async def go() -> FetchError:
        async with Fetcher(guarded_settings(), transport=httpx.MockTransport(site),
                           resolver=StubResolver(PUBLIC_NAMES)) as fetcher:
            with pytest.raises(FetchError) as caught:
                await fetcher.fetch_feed(start)
            return caught.value

    error = run(go())
    assert error.reason.startswith("refused: scheme 'file' is not http or https (at file:")
    assert site.requested == [start]


def test_dns_answers_are_cached_and_temporary_failures_retried() -> None:
    class Flaky(StubResolver):
        async def __call__(self, host: str) -> list[str]:
            self.lookups.append(host)
            if host == "news.example" and self.lookups.count(host) == 1:
                raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
            if host not in self.table:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return self.table[host]

    site = RedirectSite({})
    resolver = Flaky({"news.example": [PUBLIC_IP]})
    urls = ["https://news.example/a", "https://gone.example/1", "https://news.example/b",
            "https://gone.example/2"]

    async def go() -> list[Any]:
        async with Fetcher(guarded_settings(retries=3), transport=httpx.MockTransport(site),
                           resolver=resolver) as fetcher:
            return await fetcher.fetch_pages(urls)

    results = run(go())
    assert [type(result).__name__ for result in results] == [
        "PageResponse", "FetchError", "PageResponse", "FetchError"]
    assert all(r.reason.startswith("DNS lookup failed") for r in results[1::2])
    assert resolver.lookups.count("news.example") == 2  # one temporary failure, one answer
    assert resolver.lookups.count("gone.example") == 1  # a missing name is not asked again
    assert site.requested == ["https://news.example/a", "https://news.example/b"]

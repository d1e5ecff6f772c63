"""With allow_private_addresses = false nothing internal is fetched, and every refusal is recorded.

Real packets go to 127.0.0.1 only: the first test runs the real nightly flow against the
hostile server on loopback. Every other address (10/8, 169.254.169.254, names that resolve
to them) goes through httpx.MockTransport and a stubbed resolver into the same code the flow
runs (`newsmon.ingest.poll_feed`, `fetch_jobs`, `newsmon.processing`), so that even a broken
guard could not send a packet off the machine: the mock records what would have been asked.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from hostile_server import HostileServer, html_page, respond, rss_feed
from reliability import Report, sync_section

from newsmon.config import FeedConfig, FetchSettings
from newsmon.fetch import Fetcher
from newsmon.ingest import FeedPoll, fetch_jobs, plan_jobs, poll_feed
from newsmon.processing import TaggingConfig, process_one

PUBLIC_IP = "93.184.215.14"  # handed out by the stub resolver only
NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
FEED_URL = "https://news.example/feed.xml"

# (name in the table, the private URL a hop ends at, words the recorded reason must hold)
TARGETS: list[tuple[str, str, str]] = [
    ("loopback 127.0.0.1", "http://127.0.0.1/admin", "127.0.0.1 is a private address"),
    ("cloud metadata 169.254.169.254", "http://169.254.169.254/latest/meta-data/",
     "169.254.169.254 is a private address"),
    ("10.0.0.0/8", "http://10.20.30.40:8080/internal", "10.20.30.40 is a private address"),
    ("name resolving to 10.1.2.3", "http://intranet.example/wiki",
     "intranet.example resolves to private address 10.1.2.3"),
    ("name resolving to a public and a private address", "http://mixed.example/",
     "mixed.example resolves to private address 192.168.1.7"),
    ("decimal IPv4 2130706433 (127.0.0.1)", "http://2130706433/", "private address"),
    ("hex and short IPv4 0x7f.1", "http://0x7f.1/", "private address"),
    ("IPv6 loopback [::1]", "http://[::1]/", "private address"),
    ("IPv4-mapped IPv6 [::ffff:a9fe:a9fe]", "http://[::ffff:a9fe:a9fe]/", "private address"),
    ("0.0.0.0", "http://0.0.0.0/", "private address"),
    ("localhost. with a trailing dot", "http://localhost./", "private address"),
]
RESOLVER_TABLE = {
    "news.example": [PUBLIC_IP],
    "cdn.example": [PUBLIC_IP],
    "intranet.example": ["10.1.2.3"],
    "mixed.example": [PUBLIC_IP, "192.168.1.7"],
}

REPORT = Report(
    section="private",
    title="Private addresses, allow_private_addresses = false (tests/test_private_addresses.py)",
    faults=(
        "feed served on 127.0.0.1 (real nightly flow)",
        *(f"feed URL redirecting to {name}" for name, _, _ in TARGETS),
        *(f"article link redirecting to {name}" for name, _, _ in TARGETS),
        "article link pointing straight at 169.254.169.254",
        "feed URL whose name resolves to a private address",
    ),
)


class StubResolver:
    """Resolve names from a table and record every lookup; unknown names fail like NXDOMAIN."""

    def __init__(self) -> None:
        self.lookups: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.lookups.append(host)
        if host not in RESOLVER_TABLE:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return RESOLVER_TABLE[host]


class MockWeb:
    """A public web in memory: a feed, redirects, pages; every request is recorded."""

    def __init__(self, redirects: dict[str, str], feed: bytes = b"") -> None:
        self.redirects = redirects
        self.feed = feed
        self.requested: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requested.append(url)
        if url.endswith("/robots.txt"):
            return httpx.Response(404)
        if url in self.redirects:
            return httpx.Response(302, headers={"Location": self.redirects[url]})
        if url == FEED_URL and self.feed:
            return httpx.Response(200, content=self.feed,
                                  headers={"Content-Type": "application/rss+xml"})
        return httpx.Response(200, content=html_page("Internal", ["secret " * 50]),
                              headers={"Content-Type": "text/html"})

    def private_requests(self) -> list[str]:
        return [u for u in self.requested if httpx.URL(u).host not in RESOLVER_TABLE
                or httpx.URL(u).host in ("intranet.example", "mixed.example")]


def guarded() -> FetchSettings:
    return FetchSettings(allow_private_addresses=False, retries=1, backoff_seconds=0.0)


def _fetcher(web: MockWeb, resolver: StubResolver) -> Fetcher:
    return Fetcher(guarded(), transport=httpx.MockTransport(web), resolver=resolver)


@pytest.fixture(scope="module")
def report() -> Report:
    return REPORT


# -- the real flow, real loopback traffic ----------------------------------------------------


@pytest.mark.slow
def test_feed_on_loopback_is_refused_by_the_nightly_flow(prefect_harness: None, tmp_path: Path,
                                                         report: Report) -> None:
    from flows.nightly import nightly_ingest

    with HostileServer() as server:
        page = server.route("/story", respond(html_page("Story", ["text " * 40])))
        feed = server.route("/feed.xml", respond(rss_feed("Loopback", [
            {"title": "Story", "link": page, "guid": page, "description": "A story."}]),
            "application/rss+xml"))
        config = tmp_path / "newsmon.toml"
        config.write_text(
            f'[storage]\ndatabase = "{tmp_path / "news.duckdb"}"\n'
            "[fetch]\nallow_private_addresses = false\nretries = 1\n"
            f'[[feeds]]\nname = "Loopback"\nurl = "{feed}"\n')
        summary = nightly_ingest(config_path=str(config))
        hits = server.count()
    assert summary["status"] == "completed"
    assert summary["feeds_failed"] == 1 and summary["articles_new"] == 0
    assert hits == 0  # refused before connecting
    con = duckdb.connect(str(tmp_path / "news.duckdb"), read_only=True)
    try:
        errors = con.execute("SELECT url, stage, error FROM fetch_errors").fetchall()
        articles = con.execute("SELECT count(*) FROM articles").fetchone()
    finally:
        con.close()
    assert articles == (0,)
    assert errors == [(feed, "feed", "refused: 127.0.0.1 is a private address")]
    report.record("feed served on 127.0.0.1 (real nightly flow)",
                  "refused before connecting; recorded; run completes",
                  f"{errors[0][1]}: {errors[0][2]}; server saw {hits} requests")


# -- feeds: poll_feed through a mock web --------------------------------------------------------


@pytest.mark.parametrize("name,target,words", TARGETS, ids=[t[0] for t in TARGETS])
def test_feed_redirecting_to_private_address(name: str, target: str, words: str,
                                             report: Report) -> None:
    web = MockWeb({FEED_URL: "https://cdn.example/feed", "https://cdn.example/feed": target})
    resolver = StubResolver()

    async def go() -> FeedPoll:
        async with _fetcher(web, resolver) as fetcher:
            return await poll_feed(fetcher, FeedConfig("News", FEED_URL), None, NOW, guarded())

    poll = asyncio.run(go())
    assert poll.outcome == "failed" and poll.entries == ()
    assert poll.error is not None and poll.error.stage == "feed" and poll.error.url == FEED_URL
    assert words in poll.error.error and "refused" in poll.error.error
    assert poll.state.consecutive_failures == 1 and poll.state.last_error == poll.error.error
    # The chain was followed up to the private hop, which was never requested.
    assert web.requested == [FEED_URL, "https://cdn.example/feed"]
    assert web.private_requests() == []
    report.record(f"feed URL redirecting to {name}", "refused before the hop; recorded",
                  f"{poll.error.stage}: {poll.error.error}")


def test_feed_whose_name_resolves_to_private_address(report: Report) -> None:
    web = MockWeb({})
    resolver = StubResolver()
    url = "https://intranet.example/feed.xml"

    async def go() -> FeedPoll:
        async with _fetcher(web, resolver) as fetcher:
            return await poll_feed(fetcher, FeedConfig("Intranet", url), None, NOW, guarded())

    poll = asyncio.run(go())
    assert poll.outcome == "failed" and poll.error is not None
    assert poll.error.error == "refused: intranet.example resolves to private address 10.1.2.3"
    assert web.requested == [] and resolver.lookups == ["intranet.example"]
    report.record("feed URL whose name resolves to a private address",
                  "refused without a request; recorded", f"feed: {poll.error.error}")


# -- pages: a public feed whose entries lead inside -------------------------------------------


def _jobs_for(links: list[str]) -> tuple[MockWeb, StubResolver, list[Any]]:
    items = [{"title": f"Entry {i}", "link": link, "guid": f"guid-{i}",
              "description": f"Feed text of entry {i} about open-source models."}
             for i, link in enumerate(links)]
    return MockWeb({}, rss_feed("News", items)), StubResolver(), items


def _poll_and_fetch(web: MockWeb, resolver: StubResolver) -> list[Any]:
    async def go() -> list[Any]:
        async with _fetcher(web, resolver) as fetcher:
            poll = await poll_feed(fetcher, FeedConfig("News", FEED_URL), None, NOW, guarded())
            assert poll.outcome == "ok", poll.error
            jobs, _ = plan_jobs([poll], set(), NOW)
            return await fetch_jobs(fetcher, jobs)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def tagging() -> TaggingConfig:
    return TaggingConfig(keep_raw_html=False)


@pytest.mark.parametrize("name,target,words", TARGETS, ids=[t[0] for t in TARGETS])
def test_article_redirecting_to_private_address(name: str, target: str, words: str,
                                                tagging: TaggingConfig, report: Report) -> None:
    start = "https://news.example/story"
    web, resolver, _ = _jobs_for([start])
    web.redirects = {start: "https://cdn.example/story", "https://cdn.example/story": target}
    [job] = _poll_and_fetch(web, resolver)
    assert job.body is None
    assert job.fetch_error is not None and "refused" in job.fetch_error and words in job.fetch_error
    pages = [u for u in web.requested if not u.endswith("/robots.txt")]
    assert pages[-2:] == [start, "https://cdn.example/story"]
    assert web.private_requests() == []
    # The article is kept from the feed's own text and the refusal is its recorded reason.
    processed = process_one(job, tagging)
    assert processed.record is not None and processed.record.text_source == "feed"
    assert processed.record.text.startswith("Feed text of entry 0")
    assert "secret" not in processed.record.text
    assert processed.fallback_reason == job.fetch_error
    report.record(f"article link redirecting to {name}",
                  "refused before the hop; stored from the feed's text; recorded",
                  f"page: {processed.fallback_reason}")


def test_article_pointing_at_metadata_service(tagging: TaggingConfig, report: Report) -> None:
    ok = "https://news.example/fine"
    bad = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    web, resolver, _ = _jobs_for([ok, bad])
    jobs = _poll_and_fetch(web, resolver)
    by_url = {job.url: job for job in jobs}
    assert by_url[ok].body is not None and by_url[ok].fetch_error is None
    assert by_url[bad].body is None
    assert by_url[bad].fetch_error == "refused: 169.254.169.254 is a private address"
    assert web.private_requests() == []
    processed = process_one(by_url[bad], tagging)
    assert processed.record is not None and processed.record.text_source == "feed"
    report.record("article link pointing straight at 169.254.169.254",
                  "refused without a request; the other entry fetched normally",
                  f"page: {processed.fallback_reason}")


def test_reliability_table_is_current(report: Report) -> None:
    sync_section(report)

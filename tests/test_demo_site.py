"""The demo and bench sample sites, served for real on loopback and read with httpx + feedparser."""

from __future__ import annotations

import calendar
import hashlib
import http.client
import json
import re
import shutil
import socket
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import feedparser
import httpx
import protego
import pytest
import trafilatura

from newsmon.demo_site import (
    BLOG_SITE_NAME,
    DemoSite,
    LocalSite,
    MultiHostSite,
    build_bench_site,
    build_demo_site,
)
from newsmon.paths import SAMPLE_DIR

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
WEEKS = 10
MANIFEST: list[dict[str, Any]] = json.loads((SAMPLE_DIR / "articles" / "manifest.json").read_text())
OPEN_POSTS = [row for row in MANIFEST if row["group"] != "ml-engineering"]
ENGINEERING_POSTS = [row for row in MANIFEST if row["group"] == "ml-engineering"]


@dataclass(frozen=True)
class Served:
    server: LocalSite
    site: DemoSite
    feeds: dict[str, Any]  # feed path -> feedparser result


def _when(entry: Any) -> datetime:
    return datetime.fromtimestamp(calendar.timegm(entry.published_parsed), UTC)


def _parse(response: httpx.Response) -> Any:
    headers = dict(response.headers) | {"content-location": str(response.url)}
    return feedparser.parse(response.content, response_headers=headers)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Start the server on an empty folder first, then build into it, as `newsmon demo` does."""
    root = tmp_path_factory.mktemp("demo") / "site"
    with LocalSite(root) as server:
        site = build_demo_site(root, server.base_url, now=NOW, weeks=WEEKS)
        with httpx.Client(timeout=10) as client:
            feeds = {f.path: _parse(client.get(server.url(f.path))) for f in site.feeds}
        yield Served(server, site, feeds)


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http


def _english_pages() -> list[Path]:
    pages = []
    for page in sorted((SAMPLE_DIR / "pages").glob("*.html")):
        if re.search(rb"<html[^>]*?\blang\s*=\s*[\"']?en\b", page.read_bytes()[:65536], re.IGNORECASE):
            pages.append(page)
    return pages


def test_demo_site_has_four_valid_feeds_with_the_right_entries(served: Served) -> None:
    by_path = served.feeds
    assert [f.path for f in served.site.feeds] == [
        "/feeds/hf-blog.xml", "/feeds/hf-blog.atom", "/feeds/newsletter.xml", "/feeds/web-news.xml"]
    assert len({f.name for f in served.site.feeds}) == 4
    for parsed in by_path.values():
        assert not parsed.bozo, parsed.get("bozo_exception")
    assert by_path["/feeds/hf-blog.xml"].version == "rss20"
    assert by_path["/feeds/hf-blog.atom"].version == "atom10"
    assert by_path["/feeds/newsletter.xml"].version == "rss20"
    assert by_path["/feeds/web-news.xml"].version == "rss20"

    news = _english_pages()
    assert len(news) >= 15
    assert len(by_path["/feeds/hf-blog.xml"].entries) == (len(OPEN_POSTS) + 1) // 2
    assert len(by_path["/feeds/hf-blog.atom"].entries) == len(OPEN_POSTS) // 2
    assert len(by_path["/feeds/newsletter.xml"].entries) == len(ENGINEERING_POSTS) + 5
    assert len(by_path["/feeds/web-news.xml"].entries) == len(news)
    assert served.site.article_count == len(MANIFEST) + len(news) == len(served.site.article_paths)

    distinct = {urlsplit(e.link).path for p in by_path.values() for e in p.entries}
    assert distinct == set(served.site.article_paths)
    for parsed in by_path.values():
        for entry in parsed.entries:
            assert entry.title and entry.get("id")


def test_rss_feed_carries_full_content_and_atom_only_summaries(served: Served) -> None:
    rss = served.feeds["/feeds/hf-blog.xml"]
    atom = served.feeds["/feeds/hf-blog.atom"]
    assert all(len(e.content[0].value) > 1000 for e in rss.entries)
    assert all("<p>" in e.content[0].value for e in rss.entries)
    assert all("content" not in e and len(e.summary) > 40 for e in atom.entries)
    authors = {Path(row["file"]).stem: ", ".join(row["authors"]) for row in MANIFEST}
    for entry in rss.entries + atom.entries:
        assert entry.get("author", "") == authors[Path(urlsplit(entry.link).path).stem]


def test_every_link_points_at_the_server_and_answers_200(served: Served, client: httpx.Client) -> None:
    base = urlsplit(served.server.base_url)
    for parsed in served.feeds.values():
        for entry in parsed.entries:
            link = urlsplit(entry.link)
            assert (link.scheme, link.netloc) == (base.scheme, base.netloc), entry.link
            response = client.get(entry.link)
            assert response.status_code == 200, entry.link
            assert response.headers["content-type"] == "text/html"
            assert int(response.headers["content-length"]) == len(response.content) > 1000


def test_blog_pages_carry_metadata_matching_the_feed(served: Served, client: httpx.Client) -> None:
    rows = {Path(row["file"]).stem: row for row in MANIFEST}
    for entry in served.feeds["/feeds/hf-blog.xml"].entries[:8]:
        page = client.get(entry.link).text
        row = rows[Path(urlsplit(entry.link).path).stem]
        published = _when(entry)
        stamp = published.isoformat().replace("+00:00", "Z")
        assert f'<meta property="article:published_time" content="{stamp}">' in page
        assert f'<meta property="og:site_name" content="{BLOG_SITE_NAME}">' in page
        assert f'<meta name="author" content="{", ".join(row["authors"])}">' in page
        title = re.search(r"<title>(.*?)</title>", page, re.DOTALL)
        assert title is not None and title.group(1).strip()
        assert not page.lstrip("\ufeff").startswith("---")
        assert "\nauthors:\n" not in page  # front matter stripped
        document = trafilatura.bare_extraction(page, with_metadata=True)
        assert isinstance(document, trafilatura.settings.Document)
        extracted = document.as_dict()
        assert extracted["sitename"] == BLOG_SITE_NAME
        assert extracted["date"] == published.date().isoformat()
        assert len(extracted["text"]) > 500


def test_news_pages_are_served_byte_for_byte(served: Served, client: httpx.Client) -> None:
    for entry in served.feeds["/feeds/web-news.xml"].entries:
        name = Path(urlsplit(entry.link).path).name
        assert client.get(entry.link).content == (SAMPLE_DIR / "pages" / name).read_bytes()


def test_relative_links_feed_resolves_against_the_feed_url(served: Served) -> None:
    raw = (served.site.root / "feeds/web-news.xml").read_text("utf-8")
    links = re.findall(r"<item>.*?<link>(.*?)</link>", raw, re.DOTALL)
    assert links and all(link.startswith("/news/") for link in links)
    resolved = [e.link for e in served.feeds["/feeds/web-news.xml"].entries]
    assert resolved == [served.server.base_url + link for link in links]


def test_tracking_parameters_appear_in_exactly_one_feed(served: Served) -> None:
    tracked = {path for path, parsed in served.feeds.items()
               if any("utm_" in e.link for e in parsed.entries)}
    assert tracked == {"/feeds/newsletter.xml"}
    newsletter = served.feeds["/feeds/newsletter.xml"].entries
    for entry in newsletter:
        params = parse_qs(urlsplit(entry.link).query)
        assert {"utm_source", "utm_medium", "utm_campaign"} <= set(params)
    # Five newsletter links repeat posts another feed lists under the clean URL.
    elsewhere = {e.link for p in ("/feeds/hf-blog.xml", "/feeds/hf-blog.atom")
                 for e in served.feeds[p].entries}
    repeats = [e for e in newsletter if e.link.split("?")[0] in elsewhere]
    assert len(repeats) == 5


def test_dates_spread_over_the_recent_weeks_in_real_order(served: Served) -> None:
    dates = [_when(e)
             for p in served.feeds.values() for e in p.entries]
    start = NOW - timedelta(weeks=WEEKS)
    assert all(start <= d < NOW for d in dates)
    weeks = Counter((d - start) // timedelta(weeks=1) for d in dates)
    assert sorted(weeks) == list(range(WEEKS))  # every week has articles
    assert min(weeks.values()) >= 5
    # Blog posts keep the order of their real publication dates.
    real = {Path(row["file"]).stem: row["date"] for row in MANIFEST}
    posts = sorted(
        (_when(e), Path(urlsplit(e.link).path).stem)
         for p in ("/feeds/hf-blog.xml", "/feeds/hf-blog.atom") for e in served.feeds[p].entries)
    real_dates = [real[stem] for _, stem in posts]
    assert real_dates == sorted(real_dates)


def test_conditional_get_answers_304_and_requests_are_counted(
        served: Served, client: httpx.Client) -> None:
    server = served.server
    path = "/feeds/hf-blog.atom"
    before = server.requests_for(path)
    first = client.get(server.url(path))
    assert first.status_code == 200
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert etag.startswith('"') and modified.endswith("GMT")
    by_etag = client.get(server.url(path), headers={"If-None-Match": etag})
    assert by_etag.status_code == 304 and by_etag.content == b""
    assert by_etag.headers["etag"] == etag
    by_date = client.get(server.url(path), headers={"If-Modified-Since": modified})
    assert by_date.status_code == 304
    stale = client.get(server.url(path), headers={"If-None-Match": '"something-else"'})
    assert stale.status_code == 200 and stale.content == first.content
    older = client.get(server.url(path), headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert older.status_code == 200
    assert server.requests_for(path) == before + 5
    assert server.requests_for(path + "?utm_source=x") == before + 5


def test_rebuild_is_deterministic_and_keeps_validators(served: Served, client: httpx.Client) -> None:
    root = served.site.root
    files = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}
    etag = client.get(served.server.url("/feeds/hf-blog.xml")).headers["etag"]
    # Within the same hour the site does not change, so demo reruns get 304s.
    later = build_demo_site(root, served.server.base_url, now=NOW + timedelta(minutes=25),
                            weeks=WEEKS)
    assert later == served.site
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}
    assert after == files
    revalidated = client.get(served.server.url("/feeds/hf-blog.xml"), headers={"If-None-Match": etag})
    assert revalidated.status_code == 304


def test_robots_allows_everything_and_unknown_paths_are_404(
        served: Served, client: httpx.Client) -> None:
    robots = client.get(served.server.url("/robots.txt"))
    assert robots.status_code == 200 and robots.headers["content-type"].startswith("text/plain")
    rules = protego.Protego.parse(robots.text)
    assert rules.can_fetch(served.server.url(served.site.article_paths[0]), "newsmon/0.1")
    assert client.get(served.server.url("/blog/no-such-post.html")).status_code == 404
    index = client.get(served.server.url("/"))
    assert index.status_code == 200 and "/feeds/hf-blog.xml" in index.text
    # A raw request line is not normalised by the client, so this reaches the server as is.
    conn = http.client.HTTPConnection("127.0.0.1", served.server.port, timeout=10)
    try:
        for path in ("/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd"):
            conn.request("GET", path)
            answer = conn.getresponse()
            assert answer.status == 404, path
            assert b"root:" not in answer.read()
    finally:
        conn.close()


def test_keep_alive_and_head(served: Served) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", served.server.port, timeout=10)
    path = served.site.article_paths[0]
    before = served.server.requests_for(path)
    try:
        conn.request("HEAD", path)
        head = conn.getresponse()
        assert head.status == 200 and head.read() == b""
        length = int(head.getheader("Content-Length") or -1)
        for _ in range(3):
            conn.request("GET", path)
            answer = conn.getresponse()
            assert answer.version == 11 and not answer.will_close
            assert len(answer.read()) == length
        assert conn.sock is not None  # still the same open connection
    finally:
        conn.close()
    assert served.server.requests_for(path) == before + 3  # HEAD is not counted


def test_preferred_port_is_used_when_free_and_replaced_when_taken(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_bytes(b"<p>hello</p>")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with LocalSite.on_preferred_port(tmp_path, port=port) as first, \
            LocalSite.on_preferred_port(tmp_path, port=port) as second, \
            httpx.Client(timeout=10) as client:
        assert first.port == port and first.base_url == f"http://127.0.0.1:{port}"
        assert second.port != port
        for server in (first, second):
            assert client.get(server.url("/page.html")).content == b"<p>hello</p>"
            assert server.requests_for("/page.html") == 1


@pytest.mark.slow
def test_bench_site_has_2000_distinct_pages_over_20_feeds_on_two_hosts(tmp_path: Path) -> None:
    root = tmp_path / "bench"
    try:
        with MultiHostSite(root, ["127.0.0.1", "127.0.0.2"]) as served, \
                httpx.Client(timeout=10) as client:
            assert [urlsplit(u).hostname for u in served.base_urls] == ["127.0.0.1", "127.0.0.2"]
            site = build_bench_site(root, served.base_urls, articles=2000, feeds=20, now=NOW)
            assert site.article_count == 2000 and len(site.feeds) == 20

            pages = sorted(root.rglob("*.html"))
            assert len(pages) == 2000
            digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in pages}
            assert len(digests) == 2000

            links: list[str] = []
            for index, feed in enumerate(site.feeds):
                host = served.base_urls[index % 2]
                parsed = _parse(client.get(host + feed.path))
                assert not parsed.bozo and len(parsed.entries) == 100
                assert all(e.link.startswith(host + "/articles/") for e in parsed.entries)
                links += [e.link for e in parsed.entries]
            assert {urlsplit(link).path for link in links} == set(site.article_paths)

            before = served.article_requests()
            for link in links[::97]:
                assert client.get(link).status_code == 200
            assert served.article_requests() - before == len(links[::97])
            assert all(s.article_requests() > 0 for s in served.sites)  # both hosts served pages

            _check_copies_extract_differently(root, site)
    finally:
        shutil.rmtree(root, ignore_errors=True)  # 240 MB: do not keep it around


def _check_copies_extract_differently(root: Path, site: DemoSite) -> None:
    """Copies keep the original HTML apart from their marker, and extraction keeps the marker."""
    originals = sorted((SAMPLE_DIR / "pages").glob("*.html"))
    chosen = [0, 1, len(originals), 2 * len(originals), *range(7, 2000, 331)]
    texts: set[str] = set()
    for k in chosen:
        path = root / site.article_paths[k].lstrip("/")
        original = originals[k % len(originals)]
        marker = f" (copy {k:04d})".encode()
        variant = path.read_bytes()
        assert variant.replace(marker, b"") == original.read_bytes()
        text = trafilatura.extract(variant) or ""
        assert marker.decode().strip() in text, site.article_paths[k]
        texts.add(hashlib.sha256(text.encode()).hexdigest())
    assert len(texts) == len(chosen)

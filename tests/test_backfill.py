"""Backfill from a real local site's sitemaps into a real DuckDB file, under Prefect's harness."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import markdown
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from newsmon.paths import SAMPLE_DIR
from parsers.sitemaps import parse_sitemap, site_root

pytestmark = pytest.mark.slow

SINCE = "2026-03-01"
RELEVANT = ["codellama.md", "llama3.md", "mixtral.md", "gemma.md"]


def _article_html(name: str, published: str) -> bytes:
    text = (SAMPLE_DIR / "articles" / name).read_text(encoding="utf-8")
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.DOTALL)
    title = next((line[2:] for line in text.splitlines() if line.startswith("# ")), name)
    body = markdown.markdown(text)
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
            f"<meta property='article:published_time' content='{published}'>"
            f"<meta property='og:site_name' content='Local blog'></head>"
            f"<body><article>{body}</article></body></html>").encode()


class Site:
    """A small site: robots.txt naming a sitemap index, a gzipped nested sitemap, pages."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.base = server.url_for("").rstrip("/")
        self.hits: dict[str, int] = {}
        self.pages: dict[str, bytes] = {}

    def _count(self, path: str) -> None:
        self.hits[path] = self.hits.get(path, 0) + 1

    def install(self) -> None:
        b = self.base
        for index, name in enumerate(RELEVANT):
            self.pages[f"/blog/{name[:-3]}"] = _article_html(name, f"2026-04-{10 + index:02d}T09:00:00+00:00")
        # Relevant but published before --since, and its sitemap says nothing about dates.
        self.pages["/blog/falcon"] = _article_html("falcon.md", "2025-06-01T09:00:00+00:00")
        # A German page about child seats: dated, recent, not about open-source AI.
        german = (SAMPLE_DIR / "pages" / "adac.de.kindersitze.html").read_bytes()
        self.pages["/ratgeber/kindersitze"] = german.replace(
            b"<head>", b"<head><meta property='article:published_time' content='2026-04-02T08:00:00Z'>", 1)
        posts = "".join(f"<url><loc>{b}/blog/{n[:-3]}</loc><lastmod>2026-04-{10 + i:02d}</lastmod></url>"
                        for i, n in enumerate(RELEVANT))
        posts += f"<url><loc>{b}/blog/falcon</loc></url>"
        # Known to be old from lastmod and from the URL: never fetched.
        posts += f"<url><loc>{b}/blog/bloom</loc><lastmod>2023-01-05</lastmod></url>"
        posts += f"<url><loc>{b}/2022/07/12/bloom-release</loc></url>"
        # Another site's URL in our sitemap is not ours to fetch.
        posts += "<url><loc>https://elsewhere.example/blog/x</loc></url>"
        urlset = ('<?xml version="1.0" encoding="UTF-8"?>'
                  '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">' + posts + "</urlset>")
        other = ('<?xml version="1.0" encoding="UTF-8"?>'
                 '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                 f"<url><loc>{b}/ratgeber/kindersitze</loc><lastmod>2026-04-02</lastmod></url></urlset>")
        index = ('<?xml version="1.0" encoding="UTF-8"?>'
                 '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                 f"<sitemap><loc>{b}/sitemap-posts.xml.gz</loc></sitemap>"
                 f"<sitemap><loc>{b}/sitemap-other.xml</loc></sitemap></sitemapindex>")
        files: dict[str, tuple[bytes, str]] = {
            "/robots.txt": (f"User-agent: *\nAllow: /\nSitemap: {b}/sitemap_index.xml\n".encode(), "text/plain"),
            "/sitemap_index.xml": (index.encode(), "application/xml"),
            "/sitemap-posts.xml.gz": (gzip.compress(urlset.encode()), "application/gzip"),
            "/sitemap-other.xml": (other.encode(), "application/xml"),
            **{path: (body, "text/html; charset=utf-8") for path, body in self.pages.items()},
        }

        def handler(request: Request) -> Response:
            self._count(request.path)
            if request.path not in files:
                return Response("not found", status=404)
            body, kind = files[request.path]
            return Response(body, content_type=kind)

        self.server.expect_request(re.compile(".*")).respond_with_handler(handler)


@pytest.fixture()
def site(httpserver: HTTPServer) -> Iterator[Site]:
    s = Site(httpserver)
    s.install()
    yield s
    httpserver.clear()


def _config(tmp_path: Path, site: Site, db: Path) -> Path:
    path = tmp_path / "newsmon.toml"
    path.write_text(
        f'[storage]\ndatabase = "{db}"\n\n[fetch]\nallow_private_addresses = true\nretries = 1\n'
        f'backoff_seconds = 0.05\n\n[extract]\nworkers = 1\nbatch_size = 3\n\n'
        f'[[feeds]]\nname = "Local"\nurl = "{site.base}/feed.xml"\n',
        encoding="utf-8")
    return path


def test_parse_sitemap_keeps_lastmod_and_nested_sitemaps() -> None:
    body = gzip.compress(b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                         b"<url><loc>http://127.0.0.1:9/a</loc><lastmod>2026-04-01</lastmod></url>"
                         b"<url><loc>http://127.0.0.1:9/more.xml</loc></url>"
                         b"<url><loc>http://127.0.0.1:9/b</loc></url></urlset>")
    page = parse_sitemap(body, "http://127.0.0.1:9/sitemap.xml.gz")
    assert [(e.url, e.lastmod) for e in page.urls] == [
        ("http://127.0.0.1:9/a", datetime(2026, 4, 1, tzinfo=UTC)),
        ("http://127.0.0.1:9/b", None),
    ]
    assert page.sitemaps == ("http://127.0.0.1:9/more.xml",)
    assert site_root("https://Example.org:8443/feed?x=1") == "https://example.org:8443"


def test_backfill_filters_by_date_and_relevance_and_resumes(
        prefect_harness: None, tmp_path: Path, site: Site) -> None:
    from flows.backfill import backfill

    db = tmp_path / "news.duckdb"
    config = _config(tmp_path, site, db)
    # Bounded: the first call considers at most 3 URLs, newest lastmod first.
    first = backfill(since=SINCE, config_path=str(config), max_urls=3, pause_seconds=0.0)
    assert first["discovered"] == 8  # elsewhere.example dropped by the same-site filter
    assert first["considered"] == 3 and first["more_pending"] is True
    assert first["stored"] == 3

    # Resumable: the second call does not read the sitemaps again and continues.
    sitemap_hits = site.hits["/sitemap_index.xml"]
    second = backfill(since=SINCE, config_path=str(config), max_urls=50, pause_seconds=0.0)
    assert site.hits["/sitemap_index.xml"] == sitemap_hits
    assert second["discovered"] == 0
    assert second["stored"] == 1 and second["irrelevant"] == 1
    assert second["old"] == 2  # /blog/falcon (page date) and /2022/07/12/... (URL date)
    assert second["more_pending"] is False

    # Old by lastmod: never fetched at all. Old by URL date: never fetched either.
    assert "/blog/bloom" not in site.hits and "/2022/07/12/bloom-release" not in site.hits
    assert site.hits["/blog/falcon"] == 1  # fetched once: its date shows only on the page
    assert all(site.hits[f"/blog/{n[:-3]}"] == 1 for n in RELEVANT)

    con = duckdb.connect(str(db), read_only=True)
    try:
        stored = con.execute("SELECT url, date_source, relevant, text_source FROM articles ORDER BY url").fetchall()
        statuses = dict(con.execute("SELECT url, status FROM backfill_urls").fetchall())
        themes = con.execute("SELECT count(DISTINCT article_id) FROM article_themes").fetchone()
        runs = con.execute("SELECT status, articles_new FROM runs ORDER BY started_at").fetchall()
    finally:
        con.close()
    assert [row[0] for row in stored] == sorted(f"{site.base}/blog/{n[:-3]}" for n in RELEVANT)
    assert {row[1:] for row in stored} == {("page", True, "page")}
    assert themes is not None and themes[0] == 4
    assert statuses[f"{site.base}/ratgeber/kindersitze"] == "irrelevant"
    assert statuses[f"{site.base}/blog/bloom"] == "pending"  # stays queued for an earlier --since
    assert runs == [("completed", 3), ("completed", 1)]

    # Nothing is fetched twice: a third call has nothing pending before --since.
    third = backfill(since=SINCE, config_path=str(config), max_urls=50, pause_seconds=0.0)
    assert third["considered"] == 0 and third["stored"] == 0

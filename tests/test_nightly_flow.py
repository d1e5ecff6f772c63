"""The nightly flow end to end: a real HTTP server on 127.0.0.1, a real DuckDB file, Prefect's harness."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from newsmon.paths import SAMPLE_DIR

pytestmark = pytest.mark.slow

TRUTH = {t["file"]: t for t in json.loads((SAMPLE_DIR / "pages" / "truth.json").read_text())}
# Three real saved pages, each with a snippet its extracted text must contain.
PAGES = ["0a29620f9c4347758c146ed06dab6f3e.html", "aclu.org-grades.html", "adac.de.kindersitze.html"]


def _rss(base: str) -> str:
    items = [
        # A relative link, resolved against the feed URL.
        ("One", "articles/one", "Mon, 02 Nov 2026 10:00:00 GMT"),
        # Tracking parameters and a fragment, dropped by canonicalization.
        ("Two", f"{base}/articles/two?utm_source=rss&amp;utm_medium=feed#comments", "Tue, 03 Nov 2026 10:00:00 GMT"),
        # A page that fails twice with 500 before it answers.
        ("Three", f"{base}/articles/flaky", "Wed, 04 Nov 2026 10:00:00 GMT"),
        # A page that always fails: stored from the feed's own content, and recorded.
        ("Four", f"{base}/articles/gone", "Thu, 05 Nov 2026 10:00:00 GMT"),
    ]
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid>{base}/guid/{t}</guid>"
        f"<pubDate>{d}</pubDate><description>Feed summary of article {t} about open-source Llama "
        f"models and their licence.</description></item>"
        for t, link, d in items
    )
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Test feed</title>'
            f"<link>{base}/</link><description>t</description>{body}</channel></rss>")


class Site:
    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.base = server.url_for("").rstrip("/")
        self.hits: dict[str, int] = {}
        self.flaky_failures = 2

    def count(self, path: str) -> None:
        self.hits[path] = self.hits.get(path, 0) + 1

    def install(self) -> None:
        feed = _rss(self.base).encode()

        def feed_handler(request: Request) -> Response:
            self.count("/feed.xml")
            if request.headers.get("If-None-Match") == '"v1"':
                return Response(status=304)
            return Response(feed, content_type="application/rss+xml", headers={"ETag": '"v1"'})

        def page(name: str):  # type: ignore[no-untyped-def]
            data = (SAMPLE_DIR / "pages" / name).read_bytes()

            def handler(request: Request) -> Response:
                self.count(request.path)
                return Response(data, content_type="text/html")

            return handler

        flaky_page = (SAMPLE_DIR / "pages" / PAGES[2]).read_bytes()

        def flaky(request: Request) -> Response:
            self.count(request.path)
            if self.flaky_failures > 0:
                self.flaky_failures -= 1
                return Response("busy", status=500)
            return Response(flaky_page, content_type="text/html")

        def gone(request: Request) -> Response:
            self.count(request.path)
            return Response("nope", status=404)

        self.server.expect_request("/feed.xml").respond_with_handler(feed_handler)
        self.server.expect_request("/broken.xml").respond_with_data(
            (SAMPLE_DIR / "feeds-bad" / "sixcolors.html").read_bytes(), content_type="text/html")
        self.server.expect_request("/articles/one").respond_with_handler(page(PAGES[0]))
        self.server.expect_request("/articles/two").respond_with_handler(page(PAGES[1]))
        self.server.expect_request("/articles/flaky").respond_with_handler(flaky)
        self.server.expect_request("/articles/gone").respond_with_handler(gone)
        self.server.expect_request("/robots.txt").respond_with_data("User-agent: *\nAllow: /\n")


@pytest.fixture()
def site(httpserver: HTTPServer) -> Iterator[Site]:
    s = Site(httpserver)
    s.install()
    yield s


def _config(tmp_path: Path, site: Site) -> Path:
    config = tmp_path / "newsmon.toml"
    config.write_text(
        f'[storage]\ndatabase = "{tmp_path / "news.duckdb"}"\n'
        "[fetch]\nallow_private_addresses = true\nbackoff_seconds = 0.05\nretries = 3\n"
        "[extract]\nworkers = 2\nbatch_size = 2\n"
        f'[[feeds]]\nname = "Test feed"\nurl = "{site.base}/feed.xml"\n'
        f'[[feeds]]\nname = "Broken"\nurl = "{site.base}/broken.xml"\n'
    )
    return config


def test_night_then_rerun(prefect_harness: None, tmp_path: Path, site: Site,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.nightly
    from flows.nightly import nightly_ingest

    # The extraction processes start while the feeds are polled, and only on a night whose
    # feeds list entries.
    started: list[int] = []
    start_workers = flows.nightly.start_workers

    def recording(pool: object, workers: int) -> None:
        started.append(workers)
        start_workers(pool, workers)  # type: ignore[arg-type]

    monkeypatch.setattr(flows.nightly, "start_workers", recording)
    config = _config(tmp_path, site)
    first = nightly_ingest(config_path=str(config))
    assert started == [2]
    assert first["status"] == "completed"
    assert first["feeds_ok"] == 1 and first["feeds_failed"] == 1
    assert first["articles_new"] == 4
    assert first["articles_fallback"] == 1

    con = duckdb.connect(str(tmp_path / "news.duckdb"), read_only=True)
    try:
        rows = dict(con.execute("SELECT title, url FROM articles").fetchall())
        texts = dict(con.execute("SELECT url, text FROM articles").fetchall())
        sources = dict(con.execute("SELECT url, text_source FROM articles").fetchall())
        errors = con.execute("SELECT url, stage, error FROM fetch_errors ORDER BY url").fetchall()
        run = con.execute("SELECT status, finished_at IS NOT NULL, articles_new FROM runs").fetchall()
        themes_version = con.execute("SELECT DISTINCT themes_version FROM articles").fetchall()
        pages = con.execute("SELECT count(*) FROM pages").fetchone()
    finally:
        con.close()

    # Relative link resolved, tracking parameters and fragment dropped.
    assert f"{site.base}/articles/one" in texts
    assert f"{site.base}/articles/two" in texts
    assert not any("utm_" in url or "#" in url for url in texts)
    # Real extraction: the truth snippets of the saved page are in the stored text.
    for snippet in TRUTH[PAGES[0]]["with"]:
        assert snippet in texts[f"{site.base}/articles/one"]
    # The flaky page was retried and extracted; the gone page fell back to the feed's content.
    assert sources[f"{site.base}/articles/flaky"] == "page"
    assert sources[f"{site.base}/articles/gone"] == "feed"
    assert "Feed summary of article Four" in texts[f"{site.base}/articles/gone"]
    assert site.hits["/articles/flaky"] == 3
    # Every failure is recorded with its stage: the broken feed and the fallback page.
    assert (f"{site.base}/broken.xml", "parse") in [(u, s) for u, s, _ in errors]
    assert any(u == f"{site.base}/articles/gone" and s == "page" and "404" in e for u, s, e in errors)
    assert run == [("completed", True, 4)]
    assert len(themes_version) == 1 and themes_version[0][0]
    assert pages == (3,)
    assert len(rows) == 4

    # Rerun: the feed answers 304, nothing is fetched or stored twice.
    page_hits = {p: n for p, n in site.hits.items() if p.startswith("/articles/")}
    second = nightly_ingest(config_path=str(config))
    assert second["status"] == "completed"
    assert second["feeds_not_modified"] == 1
    assert second["articles_new"] == 0
    assert started == [2]
    assert {p: n for p, n in site.hits.items() if p.startswith("/articles/")} == page_hits
    con = duckdb.connect(str(tmp_path / "news.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*), count(DISTINCT url) FROM articles").fetchone() == (4, 4)
        assert con.execute("SELECT count(*) FROM runs WHERE status = 'completed'").fetchone() == (2,)
    finally:
        con.close()


def test_changed_body_with_known_entries_fetches_nothing(prefect_harness: None, tmp_path: Path,
                                                          site: Site) -> None:
    """A server that ignores validators: the same body costs no parse, known entries no fetch."""
    from flows.nightly import nightly_ingest

    config = _config(tmp_path, site)
    nightly_ingest(config_path=str(config))
    state = tmp_path / "news.duckdb"
    con = duckdb.connect(str(state))
    # Forget the validators, as if the server had sent none.
    con.execute("UPDATE feeds SET etag = NULL, last_modified = NULL")
    con.close()
    before = dict(site.hits)
    second = nightly_ingest(config_path=str(config))
    assert second["feeds_not_modified"] == 1  # unchanged body
    assert second["articles_new"] == 0
    assert site.hits["/feed.xml"] == before["/feed.xml"] + 1
    assert {p: n for p, n in site.hits.items() if p.startswith("/articles/")} == \
        {p: n for p, n in before.items() if p.startswith("/articles/")}

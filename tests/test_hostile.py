"""The nightly flow against a hostile web: every fault is served beside normal feeds.

One real nightly run (Prefect harness, real DuckDB file, the fault-injecting server on
127.0.0.1) serves every fault at once; each test then checks one fault from three sides:
what `fetch_errors` says, that the normal feed's articles were stored untouched, and, from
the server's clock, that newsmon let go of the fault within the configured deadlines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest
from hostile_server import (
    HostileServer,
    endless,
    gzip_bomb,
    html_page,
    http_date,
    huge_single_line,
    redirect,
    respond,
    retry_after,
    rss_feed,
    trickle,
    wrong_length,
)
from reliability import Report, sync_section

from newsmon.paths import SAMPLE_DIR

pytestmark = pytest.mark.slow

# The deadlines of the test config; every bound below is derived from them.
PAGE_DEADLINE = 2.0
FEED_DEADLINE = 2.0
READ_TIMEOUT = 3.0  # above the deadlines, so a trickle or a stall meets the deadline first
RETRIES = 2
MAX_BODY = 1_000_000
MAX_FEED = 3_000_000
MAX_ENTRIES = 30
MAX_RETRY_AFTER = 1.5
SLACK = 1.5  # scheduling on a loaded two-core machine

TRUTH = {t["file"]: t for t in json.loads((SAMPLE_DIR / "pages" / "truth.json").read_text())}
GOOD_PAGES = ["0a29620f9c4347758c146ed06dab6f3e.html", "aclu.org-grades.html",
              "adac.de.kindersitze.html"]

RUSSIAN = [
    "Открытые языковые модели становятся всё популярнее среди исследователей и разработчиков.",
    "Компании публикуют веса моделей, чтобы сообщество могло проверять и улучшать их работу.",
    "Критики отмечают, что лицензии таких моделей не всегда соответствуют определению открытого ПО.",
    "Тем не менее число загрузок открытых моделей за последний год выросло в несколько раз.",
]
JAPANESE = [
    "オープンソースの言語モデルは、研究者や開発者の間でますます人気が高まっています。",
    "企業はモデルの重みを公開し、コミュニティが検証と改良を行えるようにしています。",
    "批評家は、こうしたモデルのライセンスが必ずしもオープンソースの定義を満たしていないと指摘しています。",
    "それでも、公開モデルのダウンロード数は昨年一年間で数倍に増えました。",
]
RUSSIAN_OTHER = [
    "Новая версия открытой модели вышла вчера вечером и сразу попала в рейтинги.",
    "Разработчики обещают улучшить поддержку русского языка в следующем выпуске.",
    "Пользователи уже сравнивают её с закрытыми аналогами на собственных задачах.",
]
MOJIBAKE = [
    "Café owners in Zürich say the naïve résumé filter rejected every applicant’s CV.",
    "The “open weights” release was downloaded 40 000 times in its first week — a record.",
    "Researchers in São Paulo and Kraków reproduced the benchmark within a few days.",
]


@dataclass(frozen=True)
class Fault:
    key: str
    label: str  # the row in docs/reliability.md
    expected: str
    path: str  # the feed or page path on the hostile server


PAGE_FAULTS = [
    Fault("slowloris", "page body trickles one byte a second (slowloris)",
          "cut at the page deadline; stored from the feed's text", "/p/slowloris"),
    Fault("endless", "page body that never ends (chunked, no end)",
          "cut at max_body_bytes; what arrived is extracted", "/p/endless"),
    Fault("gzip_bomb", "page that is a gzip bomb (512 MiB of zeros)",
          "inflated no further than max_body_bytes; stored from the feed's text", "/p/bomb"),
    Fault("short_close", "Content-Length larger than the body, then the connection closes",
          "retried, then recorded; stored from the feed's text", "/p/short-close"),
    Fault("short_stall", "Content-Length larger than the body, then the server stalls",
          "cut at the page deadline; stored from the feed's text", "/p/short-stall"),
    Fault("long_body", "Content-Length smaller than the body",
          "reads the declared bytes only; stored from the page", "/p/long-body"),
    Fault("redirect_loop", "redirect loop (a -> b -> a)",
          "loop detected and recorded; stored from the feed's text", "/p/loop-a"),
    Fault("redirect_chain", "redirect chain longer than max_redirects",
          "stopped at the limit and recorded", "/p/hop/0"),
    Fault("pdf", "article link that is a PDF", "not downloaded, recorded as not HTML", "/p/report.pdf"),
    Fault("image", "article link that is an image", "not downloaded, recorded as not HTML",
          "/p/photo.png"),
    Fault("huge_line", "50 MB HTML page on a single line",
          "cut at max_body_bytes; the first part is extracted", "/p/huge"),
    Fault("wrong_charset", "header says UTF-8, body is windows-1251",
          "decoded as windows-1251; Cyrillic text stored intact", "/p/wrong-charset"),
    Fault("shift_jis", "Shift_JIS page (charset in the header)",
          "Japanese text stored intact", "/p/shift-jis"),
    Fault("cp1251", "windows-1251 page (charset only in <meta>)",
          "Cyrillic text stored intact", "/p/cp1251"),
    Fault("mojibake", "UTF-8 text double-encoded (mojibake)", "repaired; text stored intact",
          "/p/mojibake"),
    Fault("retry_after_ok", "page answers 429 with Retry-After: 1, then 200",
          "waits the second, then stores the page", "/p/busy"),
    Fault("retry_after_long", "page answers 429 with Retry-After: 3600",
          "gives up at once (over max_retry_after) and records it", "/p/very-busy"),
    Fault("refused_page", "article host refuses connections",
          "retried, recorded; stored from the feed's text", "/p/refused"),
]
FEED_FAULTS = [
    Fault("feed_html", "feed URL serves an HTML page (as application/rss+xml)",
          "recorded as a parse failure", "/f/html.xml"),
    Fault("feed_truncated_empty", "feed cut off before its first entry",
          "recorded as a parse failure", "/f/truncated-empty.xml"),
    Fault("feed_truncated", "feed cut off inside its third entry",
          "the two whole entries stored; the damage recorded", "/f/truncated.xml"),
    Fault("feed_laughs", "XML entity expansion (billion laughs) feed",
          "entities never expanded; the damage recorded", "/f/laughs.xml"),
    Fault("feed_10k", "feed with 10,000 entries", f"the newest {MAX_ENTRIES} kept and stored",
          "/f/ten-thousand.xml"),
    Fault("feed_dup_guid", "duplicate GUIDs in a feed, and a link another feed also has",
          "each article stored once", "/f/duplicates.xml"),
    Fault("feed_dates", "entry dates in the future, in 1970, and missing",
          "implausible dates replaced by the first-seen time", "/f/dates.xml"),
    Fault("feed_slowloris", "feed body trickles one byte a second",
          "cut at the feed deadline; recorded", "/f/slow.xml"),
    Fault("feed_bomb", "feed that is a gzip bomb", "cut at max_feed_bytes; recorded",
          "/f/bomb.xml"),
    Fault("feed_endless", "feed body that never ends", "cut at max_feed_bytes; recorded",
          "/f/endless.xml"),
    Fault("feed_retry_after", "feed answers 429 with Retry-After: 1, then 200",
          "waits, then parses and stores its entry", "/f/busy.xml"),
    Fault("feed_refused", "feed host refuses connections", "retried, then recorded",
          "/f/refused.xml"),
    Fault("feed_loop", "feed URL in a redirect loop", "loop detected and recorded",
          "/f/loop-a.xml"),
]
ALL_FAULTS = PAGE_FAULTS + FEED_FAULTS
FAULTS = {f.key: f for f in ALL_FAULTS}

REPORT = Report(
    section="hostile",
    title="Hostile web (tests/test_hostile.py)",
    faults=(*(f.label for f in ALL_FAULTS), "the whole night"),
)

NOW = datetime.now(UTC).replace(microsecond=0)


def _item(base: str, title: str, path: str, *, days_ago: float = 1.0, guid: str | None = None,
          summary: str | None = None, date: str | None = "auto") -> dict[str, str | None]:
    published = http_date(NOW - timedelta(days=days_ago)) if date == "auto" else date
    return {"title": title, "link": f"{base}{path}", "guid": guid or f"{base}{path}",
            "pubDate": published,
            "description": summary or f"Feed text of {title}: open-source models and their licences."}


def _laughs(base: str) -> bytes:
    entities = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)]
    return ('<?xml version="1.0"?><!DOCTYPE rss [' + "".join(entities) + ']>'
            '<rss version="2.0"><channel><title>&lol9;</title><item><title>&lol9;</title>'
            f"<link>{base}/laughs-entry</link><description>An entry under a bomb.</description>"
            "</item></channel></rss>").encode()


class Site:
    """The hostile server with every fault installed, plus a normal feed."""

    def __init__(self, server: HostileServer) -> None:
        self.server = server
        self.base = server.base
        base = self.base
        route = server.route

        # -- a normal feed beside the faults ----------------------------------------------
        good_items = [_item(base, f"Good {i}", f"/good/{i}", days_ago=i) for i in range(3)]
        route("/f/good.xml", respond(rss_feed("Good feed", good_items), "application/rss+xml"))
        for i, name in enumerate(GOOD_PAGES):
            route(f"/good/{i}", respond((SAMPLE_DIR / "pages" / name).read_bytes()))

        # -- page faults, all in one feed ------------------------------------------------------
        # The refused page lives on a port nobody listens on.
        page_items = [_item(server.refused_base if f.key == "refused_page" else base, f.label, f.path)
                      for f in PAGE_FAULTS]
        route("/f/pages.xml", respond(rss_feed("Hostile pages", page_items), "application/rss+xml"))
        route("/p/slowloris", trickle(html_page("Slow", ["x" * 200]), interval=1.0))
        route("/p/endless", endless())
        route("/p/bomb", gzip_bomb(512))
        route("/p/short-close", wrong_length(b"<html><body><p>partial</p>", 100_000))
        route("/p/short-stall", wrong_length(b"<html><body><p>partial</p>", 100_000, then="stall"))
        long_page = html_page("Declared short", ["The declared part of this page is long enough "
                                                 "to be an article about open-source models. " * 4])
        route("/p/long-body", wrong_length(long_page + b"<p>EXTRA BYTES BEYOND</p>" * 50,
                                           len(long_page)))
        route("/p/loop-a", redirect("/p/loop-b"))
        route("/p/loop-b", redirect("/p/loop-a"))
        for hop in range(8):
            route(f"/p/hop/{hop}", redirect(f"/p/hop/{hop + 1}", status=301))
        route("/p/report.pdf", respond(b"%PDF-1.7\n" + bytes(range(256)) * 80_000, "application/pdf"))
        route("/p/photo.png", respond(b"\x89PNG\r\n\x1a\n" + bytes(20_000_000), "image/png"))
        route("/p/huge", huge_single_line(50_000_000))
        route("/p/wrong-charset", respond(
            html_page("Открытые модели", RUSSIAN, charset=None, encoding="cp1251", lang="ru"),
            "text/html; charset=utf-8"))
        route("/p/shift-jis", respond(
            html_page("オープンモデル", JAPANESE, charset=None, encoding="shift_jis", lang="ja"),
            "text/html; charset=Shift_JIS"))
        route("/p/cp1251", respond(
            html_page("Новая модель", RUSSIAN_OTHER, charset="windows-1251", encoding="cp1251",
                      lang="ru"), "text/html"))
        route("/p/mojibake", respond(
            html_page("Cafe", MOJIBAKE).decode("latin-1").encode("utf-8"), "text/html; charset=utf-8"))
        ok_page = html_page("Worth the wait", ["This page asked us to come back a second later, "
                                               "and the article about open models was there. " * 3])
        route("/p/busy", retry_after(1, then=respond(ok_page)))
        route("/p/very-busy", retry_after(3600, times=10**6))

        # -- feed faults -------------------------------------------------------------------
        route("/f/html.xml", respond((SAMPLE_DIR / "feeds-bad" / "sixcolors.html").read_bytes(),
                                     "application/rss+xml"))
        route("/f/truncated-empty.xml", respond(
            (SAMPLE_DIR / "feeds-bad" / "rss_2.0_invalid_1.xml").read_bytes(), "application/rss+xml"))
        truncated = rss_feed("Cut", [_item(base, f"Cut {i}", f"/cut/{i}") for i in range(3)])
        route("/f/truncated.xml", respond(truncated[: truncated.index(b"Cut 2") + 3],
                                          "application/rss+xml"))
        route("/f/laughs.xml", respond(_laughs(base), "application/rss+xml"))
        # Lean entries (title, link, date): the fault is their number, not their size.
        many = [{"title": f"Many {i}", "link": f"{base}/many/{i}",
                 "pubDate": http_date(NOW - timedelta(days=1, hours=i))} for i in range(10_000)]
        route("/f/ten-thousand.xml", respond(rss_feed("Many", many), "application/rss+xml"))
        dup = [
            _item(base, "Dup first", "/dup/1", guid="same-guid"),
            _item(base, "Dup second", "/dup/2", guid="same-guid"),
            _item(base, "Good 0 again", "/good/0", guid="another-guid"),
            _item(base, "Dup third", "/dup/3"),
        ]
        route("/f/duplicates.xml", respond(rss_feed("Dups", dup), "application/rss+xml"))
        dates = [
            _item(base, "From the future", "/dated/future", date=http_date(NOW + timedelta(days=3650))),
            _item(base, "From 1970", "/dated/epoch", date="Thu, 01 Jan 1970 00:00:00 GMT"),
            _item(base, "Undated", "/dated/none", date=None),
        ]
        route("/f/dates.xml", respond(rss_feed("Dates", dates), "application/rss+xml"))
        route("/f/slow.xml", trickle(rss_feed("Slow", [_item(base, "S", "/s")]), interval=1.0,
                                     content_type="application/rss+xml"))
        route("/f/bomb.xml", gzip_bomb(512, "application/rss+xml"))
        route("/f/endless.xml", endless("application/rss+xml"))
        route("/f/busy.xml", retry_after(1, then=respond(
            rss_feed("Busy", [_item(base, "Busy entry", "/busy-entry")]), "application/rss+xml")))
        route("/f/loop-a.xml", redirect("/f/loop-b.xml"))
        route("/f/loop-b.xml", redirect("/f/loop-a.xml"))

        # Simple article pages for the feeds above.
        for path in ["/cut/0", "/cut/1", "/dup/1", "/dup/2", "/dup/3", "/dated/future",
                     "/dated/epoch", "/dated/none", "/busy-entry", "/laughs-entry",
                     *(f"/many/{i}" for i in range(10_000))]:
            route(path, respond(html_page(f"Article {path}", [
                f"This is the article at {path}. It discusses open-source language models, "
                "their licences and the community that builds them. " * 3])))

    def feed_urls(self) -> dict[str, str]:
        urls = {"good": self.server.url("/f/good.xml"), "pages": self.server.url("/f/pages.xml")}
        for fault in FEED_FAULTS:
            urls[fault.key] = self.server.url(fault.path)
        urls["feed_refused"] = f"{self.server.refused_base}/f/refused.xml"
        return urls

    def page_url(self, key: str) -> str:
        if key == "refused_page":
            return f"{self.server.refused_base}/p/refused"
        return self.server.url(FAULTS[key].path)

    def scrub(self, text: str) -> str:
        """Write the server's ports as fixed names so the report is deterministic."""
        text = text.replace(self.server.refused_base, "http://hostile:closed-port")
        return text.replace(self.base, "http://hostile")


@dataclass
class Night:
    site: Site
    summary: dict[str, Any]
    seconds: float
    articles: dict[str, dict[str, Any]]  # url -> row
    errors: list[tuple[str, str, str]]  # (url, stage, error)
    runs: list[tuple[Any, ...]]

    def errors_for(self, url: str) -> list[tuple[str, str]]:
        return [(stage, error) for u, stage, error in self.errors if u == url]


@pytest.fixture(scope="module")
def night(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Night]:
    from flows.nightly import nightly_ingest

    tmp = tmp_path_factory.mktemp("hostile")
    with HostileServer() as server:
        site = Site(server)
        feeds = site.feed_urls()
        config = tmp / "newsmon.toml"
        lines = [
            "[storage]", f'database = "{tmp / "news.duckdb"}"', "lock_wait_seconds = 10",
            "[fetch]", "allow_private_addresses = true", "connect_timeout = 1",
            f"read_timeout = {READ_TIMEOUT}", f"page_deadline = {PAGE_DEADLINE}",
            f"feed_deadline = {FEED_DEADLINE}", f"retries = {RETRIES}", "backoff_seconds = 0.05",
            f"max_retry_after = {MAX_RETRY_AFTER}", f"max_body_bytes = {MAX_BODY}",
            f"max_feed_bytes = {MAX_FEED}", "max_redirects = 4",
            f"max_entries_per_feed = {MAX_ENTRIES}", "per_host_concurrency = 8",
            "[extract]", "workers = 2", "batch_size = 40",
        ]
        for name, url in feeds.items():
            lines += ["[[feeds]]", f'name = "{name}"', f'url = "{url}"']
        config.write_text("\n".join(lines) + "\n")
        started = time.monotonic()
        summary = nightly_ingest(config_path=str(config))
        seconds = time.monotonic() - started
        time.sleep(0.2)  # let the server note the last hang-ups
        con = duckdb.connect(str(tmp / "news.duckdb"), read_only=True)
        try:
            cursor = con.execute("SELECT * FROM articles")
            names = [d[0] for d in cursor.description]
            articles = {row[names.index("url")]: dict(zip(names, row)) for row in cursor.fetchall()}
            errors = con.execute("SELECT url, stage, error FROM fetch_errors").fetchall()
            runs = con.execute("SELECT status, finished_at IS NOT NULL FROM runs").fetchall()
        finally:
            con.close()
        yield Night(site, summary, seconds, articles, errors, runs)


@pytest.fixture(scope="module")
def report() -> Report:
    return REPORT


def _observe(night: Night, url: str) -> str:
    """Describe what newsmon did with a URL: its recorded errors and how it was stored."""
    parts = [f"{stage}: {night.site.scrub(error)}" for stage, error in sorted(night.errors_for(url))]
    row = night.articles.get(url)
    if row is not None:
        parts.append(f"stored from the {row['text_source']}")
    else:
        parts.append("not stored")
    return "; ".join(parts)


def _assert_good_feed_intact(night: Night) -> None:
    for i, name in enumerate(GOOD_PAGES):
        row = night.articles[night.site.server.url(f"/good/{i}")]
        assert row["text_source"] == "page"
        for snippet in TRUTH[name]["with"][:2]:
            assert snippet in row["text"]
    assert not [e for e in night.errors if "/good/" in e[0] or e[0].endswith("/f/good.xml")]


def _assert_page_fallback(night: Night, key: str, *reason_words: str) -> str:
    """The fault is recorded for its URL, the article kept from the feed's text."""
    url = night.site.page_url(key)
    errors = night.errors_for(url)
    assert errors, f"no fetch_errors row for {url}"
    assert any(stage == "page" and all(w in error for w in reason_words) for stage, error in errors), errors
    row = night.articles[url]
    assert row["text_source"] == "feed"
    assert row["text"].startswith(f"Feed text of {FAULTS[key].label}")
    _assert_good_feed_intact(night)
    observed = _observe(night, url)
    REPORT.record(FAULTS[key].label, FAULTS[key].expected, observed)
    return observed


def _hits(night: Night, key: str) -> list[Any]:
    return night.site.server.hits(FAULTS[key].path)


# -- the night as a whole ---------------------------------------------------------------


def test_the_night_completes_and_keeps_the_normal_feed(night: Night) -> None:
    assert night.summary["status"] == "completed"
    assert night.runs == [("completed", True)]
    _assert_good_feed_intact(night)
    # Every fault is served concurrently; the whole night is bounded by a few deadlines
    # (pages are fetched in two batches, each at most deadline x retries, plus extraction).
    assert night.seconds < 120, night.seconds
    REPORT.record("the whole night", "completes; normal feed stored from its pages",
                  f"completed; {night.summary['feeds_ok']} feeds ok, {night.summary['feeds_failed']} "
                  f"failed, {night.summary['articles_new']} articles stored")


# -- page faults ------------------------------------------------------------------------


def test_slowloris_page_is_cut_at_the_deadline(night: Night) -> None:
    _assert_page_fallback(night, "slowloris", f"timed out after {PAGE_DEADLINE:g} s (deadline)")
    hit = _hits(night, "slowloris")
    assert len(hit) == 1  # a deadline is not retried
    assert hit[0].aborted and hit[0].duration < PAGE_DEADLINE + SLACK


def test_endless_page_is_cut_at_the_body_cap(night: Night) -> None:
    url = night.site.page_url("endless")
    row = night.articles[url]
    assert row["text_source"] == "page" and "more and more" in row["text"]
    assert any("1000000 bytes" in e for _, e in night.errors_for(url)), night.errors_for(url)
    hits = _hits(night, "endless")
    assert len(hits) == 1 and hits[0].aborted and hits[0].duration < PAGE_DEADLINE + SLACK
    # The client hung up soon after the cap: the server did not get to send much more.
    assert hits[0].sent < MAX_BODY * 20
    _assert_good_feed_intact(night)
    REPORT.record(FAULTS["endless"].label, FAULTS["endless"].expected, _observe(night, url))


def test_gzip_bomb_page_inflates_only_to_the_cap(night: Night) -> None:
    _assert_page_fallback(night, "gzip_bomb", "1000000 bytes")
    hits = _hits(night, "gzip_bomb")
    assert len(hits) == 1 and hits[0].duration < PAGE_DEADLINE + SLACK


def test_content_length_promising_more_then_closing(night: Night) -> None:
    _assert_page_fallback(night, "short_close", "connection broken", f"after {RETRIES} attempts")
    assert len(_hits(night, "short_close")) == RETRIES


def test_content_length_promising_more_then_stalling(night: Night) -> None:
    _assert_page_fallback(night, "short_stall", f"timed out after {PAGE_DEADLINE:g} s (deadline)")
    hits = _hits(night, "short_stall")
    assert len(hits) == 1 and hits[0].aborted and hits[0].duration < PAGE_DEADLINE + SLACK


def test_content_length_smaller_than_the_body(night: Night) -> None:
    url = night.site.page_url("long_body")
    row = night.articles[url]
    assert row["text_source"] == "page"
    assert "declared part of this page" in row["text"] and "EXTRA BYTES" not in row["text"]
    _assert_good_feed_intact(night)
    REPORT.record(FAULTS["long_body"].label, FAULTS["long_body"].expected, _observe(night, url))


def test_redirect_loop(night: Night) -> None:
    _assert_page_fallback(night, "redirect_loop", "redirect loop")
    assert len(night.site.server.hits("/p/loop-a")) == 1


def test_redirect_chain_too_long(night: Night) -> None:
    _assert_page_fallback(night, "redirect_chain", "too many redirects (4)")
    assert night.site.server.hits("/p/hop/5") == []


@pytest.mark.parametrize("key,kind", [("pdf", "application/pdf"), ("image", "image/png")])
def test_non_html_pages_are_not_downloaded(night: Night, key: str, kind: str) -> None:
    _assert_page_fallback(night, key, f"not HTML: {kind}")
    hits = _hits(night, key)
    # Only the headers were wanted: the client hung up long before the 20 MB body was sent.
    assert len(hits) == 1 and hits[0].aborted and hits[0].sent < 20_000_000


def test_fifty_megabyte_single_line_page(night: Night) -> None:
    url = night.site.page_url("huge_line")
    row = night.articles.get(url)
    assert row is not None
    assert any("1000000 bytes" in e for _, e in night.errors_for(url)), night.errors_for(url)
    hits = _hits(night, "huge_line")
    assert len(hits) == 1 and hits[0].sent < 50_000_000 and hits[0].duration < PAGE_DEADLINE + SLACK
    _assert_good_feed_intact(night)
    REPORT.record(FAULTS["huge_line"].label, FAULTS["huge_line"].expected, _observe(night, url))


@pytest.mark.parametrize("key,sentences", [("wrong_charset", RUSSIAN), ("shift_jis", JAPANESE),
                                           ("cp1251", RUSSIAN_OTHER), ("mojibake", MOJIBAKE)])
def test_charsets_are_decoded(night: Night, key: str, sentences: list[str]) -> None:
    url = night.site.page_url(key)
    row = night.articles[url]
    assert row["text_source"] == "page"
    for sentence in sentences:
        assert sentence in row["text"], row["text"][:300]
    assert night.errors_for(url) == []
    _assert_good_feed_intact(night)
    REPORT.record(FAULTS[key].label, FAULTS[key].expected,
                  f"{_observe(night, url)}; text: {row['text'][:40]}…")


def test_retry_after_is_honoured(night: Night) -> None:
    url = night.site.page_url("retry_after_ok")
    hits = _hits(night, "retry_after_ok")
    assert len(hits) == 2
    assert hits[1].started - hits[0].started >= 1.0
    assert night.articles[url]["text_source"] == "page"
    assert night.errors_for(url) == []
    REPORT.record(FAULTS["retry_after_ok"].label, FAULTS["retry_after_ok"].expected,
                  f"second request after ≥ 1 s; {_observe(night, url)}")


def test_retry_after_too_long_gives_up(night: Night) -> None:
    _assert_page_fallback(night, "retry_after_long", "Retry-After 3600 s is over the 1.5 s limit")
    assert len(_hits(night, "retry_after_long")) == 1


def test_refused_page(night: Night) -> None:
    _assert_page_fallback(night, "refused_page", "connection refused", f"after {RETRIES} attempts")


# -- feed faults ----------------------------------------------------------------------------


def _feed_failed(night: Night, key: str, stage: str, *words: str) -> None:
    url = night.site.feed_urls()[key]
    errors = night.errors_for(url)
    assert any(s == stage and all(w in e for w in words) for s, e in errors), errors
    _assert_good_feed_intact(night)
    REPORT.record(FAULTS[key].label, FAULTS[key].expected,
                  "; ".join(f"{s}: {night.site.scrub(e)}" for s, e in sorted(errors)))


def test_feed_that_is_html(night: Night) -> None:
    _feed_failed(night, "feed_html", "parse", "HTML page, not a feed")


def test_feed_truncated_before_any_entry(night: Night) -> None:
    _feed_failed(night, "feed_truncated_empty", "parse")


def test_feed_truncated_inside_an_entry(night: Night) -> None:
    base = night.site.base
    assert f"{base}/cut/0" in night.articles and f"{base}/cut/1" in night.articles
    assert f"{base}/cut/2" not in night.articles
    _feed_failed(night, "feed_truncated", "parse", "malformed")


def test_billion_laughs_feed(night: Night) -> None:
    _feed_failed(night, "feed_laughs", "parse", "entity declarations removed")
    # Whether or not its entry is kept, no text anywhere holds an expanded entity.
    assert not any("lollol" in (row["title"] or "") + (row["text"] or "")
                   for row in night.articles.values())


def test_ten_thousand_entries(night: Night) -> None:
    base = night.site.base
    stored = sorted(int(url.rsplit("/", 1)[1]) for url in night.articles if url.startswith(f"{base}/many/"))
    # The newest entries are kept: entry i is i hours older than entry 0.
    assert stored == list(range(MAX_ENTRIES))
    assert len(night.site.server.hits()) < 400  # only the kept entries were fetched
    assert night.errors_for(night.site.feed_urls()["feed_10k"]) == []
    _assert_good_feed_intact(night)
    REPORT.record(FAULTS["feed_10k"].label, FAULTS["feed_10k"].expected,
                  f"{len(stored)} newest entries stored, the rest not fetched")


def test_duplicate_guids(night: Night) -> None:
    base = night.site.base
    assert f"{base}/dup/1" in night.articles and f"{base}/dup/3" in night.articles
    assert f"{base}/dup/2" not in night.articles  # same GUID as /dup/1: the first wins
    assert len(night.site.server.hits("/dup/2")) == 0
    # /good/0 is in two feeds: fetched once, stored once.
    assert len(night.site.server.hits("/good/0")) == 1
    urls = [row["url"] for row in night.articles.values()]
    assert len(urls) == len(set(urls))
    REPORT.record(FAULTS["feed_dup_guid"].label, FAULTS["feed_dup_guid"].expected,
                  "second entry with the same GUID dropped; shared link fetched and stored once")


def test_implausible_and_missing_dates(night: Night) -> None:
    base = night.site.base
    observed = []
    for name in ("future", "epoch", "none"):
        row = night.articles[f"{base}/dated/{name}"]
        assert row["date_source"] in ("first_seen", "page")
        assert abs(row["published_at"] - NOW) < timedelta(days=2)
        observed.append(f"{name}: from {row['date_source']}")
    _assert_good_feed_intact(night)
    REPORT.record(FAULTS["feed_dates"].label, FAULTS["feed_dates"].expected, "; ".join(observed))


def test_slowloris_feed(night: Night) -> None:
    _feed_failed(night, "feed_slowloris", "feed", f"timed out after {FEED_DEADLINE:g} s (deadline)")
    for hit in _hits(night, "feed_slowloris"):
        assert hit.duration < FEED_DEADLINE + SLACK


def test_gzip_bomb_feed(night: Night) -> None:
    _feed_failed(night, "feed_bomb", "feed", f"body larger than {MAX_FEED} bytes")


def test_endless_feed(night: Night) -> None:
    _feed_failed(night, "feed_endless", "feed", f"body larger than {MAX_FEED} bytes")


def test_feed_retry_after(night: Night) -> None:
    hits = _hits(night, "feed_retry_after")
    assert len(hits) == 2 and hits[1].started - hits[0].started >= 1.0
    assert f"{night.site.base}/busy-entry" in night.articles
    assert night.errors_for(night.site.feed_urls()["feed_retry_after"]) == []
    REPORT.record(FAULTS["feed_retry_after"].label, FAULTS["feed_retry_after"].expected,
                  "second request after ≥ 1 s; its entry stored")


def test_refused_feed(night: Night) -> None:
    _feed_failed(night, "feed_refused", "feed", "connection refused", f"after {RETRIES} attempts")


def test_feed_redirect_loop(night: Night) -> None:
    _feed_failed(night, "feed_loop", "feed", "redirect loop")


def test_reliability_table_is_current(report: Report) -> None:
    sync_section(report)

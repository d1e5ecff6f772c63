"""Tests for parsers.feeds on the bundled real feeds, broken feeds and hand-made edge cases."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from parsers.feeds import FeedParseError, ParsedFeed, body_hash, parse_feed
from parsers.text import content_hash, html_to_text, normalise_text
from parsers.urls import canonicalize_url

SAMPLE = Path(__file__).resolve().parent.parent / "sample"
FEEDS = SAMPLE / "feeds"
BAD = SAMPLE / "feeds-bad"
FEED_URL = "https://feeds.example.org/dir/feed.xml"


def feed_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "manifest.json")


def parse_sample(name: str, url: str = FEED_URL, folder: Path = FEEDS, **kwargs: object) -> ParsedFeed:
    return parse_feed((folder / name).read_bytes(), url, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", feed_files(FEEDS))
def test_every_sample_feed_parses(name: str) -> None:
    manifest = {m["file"]: m for m in json.loads((FEEDS / "manifest.json").read_text("utf-8"))}
    parsed = parse_sample(name)
    observed = manifest[name]["observed_feedparser_6_0_14"]
    assert parsed.version == observed["feedparser_version_detected"]
    assert parsed.entries, name
    # Every raw entry is accounted for: kept, skipped for lack of a link, or a duplicate GUID.
    assert len(parsed.entries) + parsed.skipped <= observed["entries"]
    for entry in parsed.entries:
        assert canonicalize_url(entry.url) == entry.url
        assert entry.link.startswith(("http://", "https://"))
        assert entry.guid
        assert entry.published_at is None or entry.published_at.tzinfo == UTC
        for html in (entry.content_html, entry.summary_html):
            # feedparser resolved every root-relative reference against the base URL.
            assert 'href="/' not in (html or "") and 'src="/' not in (html or "")
    assert len({e.guid for e in parsed.entries}) == len(parsed.entries)


def test_atom_relative_links_resolve_against_feed_url() -> None:
    parsed = parse_sample("atom_relative.xml", url="https://example.com/blog/feed.xml")
    (entry,) = parsed.entries
    assert entry.url == "https://example.com/blog/2003/12/13/atom03"
    assert entry.link == entry.url
    assert parsed.site_url == "https://example.com/blog/"
    assert entry.author == "Jane Doe"  # feed-level author
    assert entry.published_at == datetime(2003, 12, 13, 18, 30, 2, tzinfo=UTC)
    assert entry.guid == "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a"


def test_content_location_header_sets_the_base() -> None:
    body = (FEEDS / "atom_relative.xml").read_bytes()
    parsed = parse_feed(body, "https://cdn.example.net/x.xml",
                        {"Content-Location": "https://example.com/blog/feed.xml"})
    assert parsed.entries[0].url == "https://example.com/blog/2003/12/13/atom03"


def test_qemu_relative_entry_links() -> None:
    parsed = parse_sample("qemu.atom", url="https://www.qemu.org/feed.xml")
    assert len(parsed.entries) == 10
    assert parsed.entries[0].url == "https://www.qemu.org/2025/08/26/qemu-10-1-0/"
    assert all(e.url.startswith("https://www.qemu.org/20") for e in parsed.entries)
    assert "https://wiki.qemu.org/ChangeLog/10.1" in (parsed.entries[0].content_html or "")


def test_xml_base_wins_over_feed_url() -> None:
    parsed = parse_sample("rss_2.0_relurl_1.xml", url="https://mirror.example.net/index.xml")
    assert [e.url for e in parsed.entries] == [
        "https://insanity.industries/post/pareto-optimal-compression/",
        "https://insanity.industries/post/pacman-tracking-leftover-packages/",
    ]


def test_macworld_root_relative_hrefs_in_descriptions() -> None:
    raw = (FEEDS / "macworld.rss").read_text("iso-8859-1")
    assert 'href="/article/3235804/' in raw
    parsed = parse_sample("macworld.rss", url="https://www.macworld.com/index.rss")
    html = "".join(e.summary_html or "" for e in parsed.entries)
    assert 'href="https://www.macworld.com/article/3235804/' in html
    # The fragment the feed adds for its own statistics is not part of the article URL.
    assert parsed.entries[0].link.endswith("#tk.rss_all")
    assert "#" not in parsed.entries[0].url


@pytest.mark.parametrize(
    ("name", "encoding", "feed_title", "entry_title"),
    [
        ("encoding_WINDOWS-1251.xml", "cp1251", "iBash.Org.Ru", "Цитата #17703"),
        ("kc0011.rss", "gb18030", "投资资讯网交易在线--流通纪念币最新20篇论坛主题-全文",
         "建国35周年纪念，华表，和平鸽"),
        ("encoding_ISO-8859-1.xml", "iso8859-1", "Golem.de",
         "Red Dead Redemption 2: Hinweise auf PC-Umsetzung in App von Rockstar Games"),
        ("rss_0.91_encoding_1.xml", "iso8859-1",
         "Dicas-L: Dicas técnicas de Linux e Software Livre", "bash - Expansão de Parâmetros"),
    ],
)
def test_encodings(name: str, encoding: str, feed_title: str, entry_title: str) -> None:
    parsed = parse_sample(name)
    assert parsed.encoding == encoding
    assert parsed.title == feed_title
    assert parsed.entries[0].title == entry_title


def test_urdu_right_to_left_text() -> None:
    parsed = parse_sample("urdu_UTF8.xml")
    assert parsed.title is not None and parsed.title.startswith("BBC News اردو")
    assert all(any("\u0600" <= ch <= "\u06ff" for ch in e.title or "") for e in parsed.entries)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("medscape.rss", datetime(2025, 11, 5, 18, 52, 10, tzinfo=UTC)),  # "... 13:52:10  EST"
        ("rss_2.0_nbcny.xml", datetime(2023, 12, 16, 14, 2, 33, tzinfo=UTC)),  # "Dec 16 2023 02:02:33 PM"
        ("rss_2.0_ilmessaggero.xml", datetime(2022, 11, 15, 23, 38, 15, tzinfo=UTC)),  # "mer, 16 nov"
        ("kc0011.rss", datetime(2020, 1, 10, 14, 33, tzinfo=UTC)),  # "2020/1/10 14:33:00"
        ("expertopinionent.atom", datetime(2017, 4, 7, 1, 50, 50, tzinfo=UTC)),  # +10:30 offset
    ],
)
def test_dates_in_feeds(name: str, expected: datetime) -> None:
    assert parse_sample(name).entries[0].published_at == expected


def test_feeds_without_dates() -> None:
    assert all(e.published_at is None for e in parse_sample("rdf_UTF8.xml").entries)


def test_feedburner_orig_link_is_the_article_url() -> None:
    parsed = parse_sample("TechCrunch.xml")
    entry = parsed.entries[0]
    assert entry.link.startswith("http://feedproxy.google.com/~r/Techcrunch/")
    assert entry.url.startswith("http://techcrunch.com/2011/11/02/angies-list-prices-ipo")
    assert parsed.bozo and parsed.bozo_reason  # newline before the XML declaration
    assert entry.content_html and len(entry.content_text or "") > 500


def test_google_alerts_links_are_unwrapped() -> None:
    parsed = parse_sample("google_alerts_atom.xml")
    assert len(parsed.entries) == 20
    for entry in parsed.entries:
        assert entry.link.startswith("https://www.google.com/url?")
        assert "google.com" not in entry.url


def test_content_and_summary_text() -> None:
    entry = parse_sample("rss_2.0_cloudflare.xml").entries[0]
    assert entry.content_html and "<" in entry.content_html
    assert entry.content_text and "<" not in entry.content_text[:200]
    assert entry.summary and entry.summary.startswith("Announcing a public demo")
    assert entry.author == "Luke Valenta"


GOOGLE_NEWS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>AI - Google News</title><link>https://news.google.com/</link>
<item><title>Open model released - Example Times</title>
<link>https://news.google.com/rss/articles/CBMiK2h0dHBzOi8vd3d3LmV4YW1wbGUuY29tL25ld3MvYXJ0aWNsZS0xMjPSAQA?oc=5</link>
<guid isPermaLink="false">CBMiK2h0dHBzOi8vd3d3LmV4YW1wbGUuY29tL25ld3MvYXJ0aWNsZS0xMjPSAQA</guid>
<pubDate>Tue, 23 Jul 2024 10:00:00 GMT</pubDate>
<description>&lt;a href="https://news.google.com/rss/articles/CBMiK2h0dHBzOi8vd3d3LmV4YW1wbGUuY29tL25ld3MvYXJ0aWNsZS0xMjPSAQA?oc=5"&gt;Open model released&lt;/a&gt;&amp;nbsp;&amp;nbsp;&lt;font color="#6f6f6f"&gt;Example Times&lt;/font&gt;</description>
<source url="https://www.example.com">Example Times</source></item>
<item><title>Old style link</title>
<link>http://news.google.com/news/url?sa=t&amp;fd=R&amp;url=https://publisher.example/story.html%3Futm_source%3Dgn&amp;usg=AFQ</link>
<guid isPermaLink="false">tag:news.google.com,2005:cluster=1</guid>
<source url="https://publisher.example">Publisher</source></item>
<item><title>Opaque token</title>
<link>https://news.google.com/rss/articles/AU_yqLOpaqueToken?oc=5</link>
<guid isPermaLink="false">opaque-1</guid><source url="https://other.example">Other</source></item>
</channel></rss>"""


def test_google_news_entries() -> None:
    parsed = parse_feed(GOOGLE_NEWS, "https://news.google.com/rss/search?q=ai")
    first, second, third = parsed.entries
    assert first.url == "https://www.example.com/news/article-123"
    assert first.link.startswith("https://news.google.com/rss/articles/")
    assert first.summary == "Open model released Example Times"
    assert first.published_at == datetime(2024, 7, 23, 10, tzinfo=UTC)
    assert second.url == "https://publisher.example/story.html"
    # Not decodable offline: the aggregator link is kept rather than the source's home page.
    assert third.url == "https://news.google.com/rss/articles/AU_yqLOpaqueToken?oc=5"


ATOM_RELATED = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:x</id><updated>2024-07-23T00:00:00Z</updated>
<entry><title>a</title><id>urn:a</id><updated>2024-07-23T00:00:00Z</updated>
<link rel="alternate" href="https://feedproxy.google.com/~r/x/~3/abc/"/>
<link rel="related" href="https://publisher.example/a?utm_medium=feed"/></entry></feed>"""


def test_aggregator_link_loses_to_a_publisher_link() -> None:
    (entry,) = parse_feed(ATOM_RELATED, "https://example.org/atom").entries
    assert entry.url == "https://publisher.example/a"
    assert entry.link == "https://feedproxy.google.com/~r/x/~3/abc/"


def rss(items: str) -> bytes:
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
            f"<link>https://example.com/</link>{items}</channel></rss>").encode()


def test_duplicate_guids_collapse_keeping_the_first() -> None:
    body = rss(
        "<item><guid isPermaLink='false'>g1</guid><link>https://example.com/a</link><title>first</title></item>"
        "<item><guid isPermaLink='false'>g1</guid><link>https://example.com/b</link><title>second</title></item>"
        "<item><guid isPermaLink='false'>g2</guid><link>https://example.com/c</link><title>third</title></item>"
    )
    parsed = parse_feed(body, "https://example.com/feed")
    assert [(e.guid, e.title) for e in parsed.entries] == [("g1", "first"), ("g2", "third")]
    # A real FeedBurner feed that repeats one GUID for four items.
    real = parse_sample("issue137-rss.xml", folder=BAD)
    assert len(real.entries) == 1 and real.entries[0].title == "Single-Session Primary Schools"


def test_guid_falls_back_to_link_then_hash() -> None:
    body = rss(
        "<item><link>https://example.com/a</link><title>a</title></item>"
        "<item><title>no link</title><description>text only</description></item>"
    )
    parsed = parse_feed(body, "https://example.com/feed")
    assert [e.guid for e in parsed.entries] == ["https://example.com/a"]
    assert parsed.skipped == 1


def test_max_entries_keeps_the_newest() -> None:
    items = "".join(
        f"<item><link>https://example.com/{day}</link><pubDate>{day:02d} Jul 2024 10:00:00 GMT</pubDate></item>"
        for day in (3, 9, 1, 7)
    ) + "<item><link>https://example.com/undated</link></item>"
    parsed = parse_feed(rss(items), "https://example.com/feed", max_entries=3)
    assert [e.url for e in parsed.entries] == [
        "https://example.com/9", "https://example.com/7", "https://example.com/3"]
    everything = parse_feed(rss(items), "https://example.com/feed")
    assert [e.url.rsplit("/", 1)[1] for e in everything.entries] == ["3", "9", "1", "7", "undated"]


def test_header_charset_is_used() -> None:
    body = '<?xml version="1.0"?><rss version="2.0"><channel><title>Новости</title>' \
           "<item><link>https://example.ru/1</link><title>Привет</title></item></channel></rss>"
    parsed = parse_feed(body.encode("koi8-r"), "https://example.ru/feed",
                        {"Content-Type": "application/rss+xml; charset=KOI8-R"})
    assert parsed.title == "Новости" and parsed.entries[0].title == "Привет"


# What each broken input must give: an error naming the problem, or a feed (bozo or not).
BAD_EXPECTED: dict[str, tuple[str, str | int]] = {
    "DaringFireball.html": ("error", "HTML page"),
    "sixcolors.html": ("error", "HTML page"),
    "empty_feed.xml": ("error", "empty"),
    "aaa_illformed.xml": ("error", "truncated"),
    "bozo_invalid-bytes-with-bom.xml": ("error", "truncated"),
    "rss_2.0_invalid_1.xml": ("error", "truncated"),
    "rss_incomplete_cdata.xml": ("error", "truncated"),
    "undeclared_namespace.xml": ("error", "malformed"),
    "rss_empty_document.xml": ("error", "not an RSS, Atom or RDF feed"),
    "unknown_feed.xml": ("error", "not an RSS, Atom or RDF feed"),
    "external.xml": ("error", "entity"),
    "xmlbomb.xml": ("error", "entity"),
    "quadratic.xml": ("error", "entity"),
    "InvalidDateFormat.xml": ("bozo", 2),
    "issue137-rss.xml": ("bozo", 1),
    "rss_2.0_dbengines.xml": ("bozo", 1),
    # Well-formed once the charset lie is corrected; no entry carries a link.
    "bozo_bogus_encoding.xml": ("bozo", 0),
    "koi8r.xml": ("bozo", 0),
    "utf8-incorrect-prolog.xml": ("bozo", 0),
    "windows-1252-incorrect-prolog.xml": ("bozo", 0),
    # A valid (if empty) channel; the Greek date is in the channel, not an item.
    "http_high_bit_date.xml": ("feed", 0),
}


def test_bad_expectations_cover_the_folder() -> None:
    assert set(BAD_EXPECTED) == set(feed_files(BAD))


@pytest.mark.parametrize("name", feed_files(BAD))
def test_bad_feeds(name: str) -> None:
    kind, detail = BAD_EXPECTED[name]
    if kind == "error":
        with pytest.raises(FeedParseError, match=str(detail)):
            parse_sample(name, folder=BAD)
        return
    parsed = parse_sample(name, folder=BAD)
    assert len(parsed.entries) == detail
    assert parsed.bozo is (kind == "bozo")
    assert (parsed.bozo_reason is not None) is parsed.bozo


def test_charset_lies_are_corrected() -> None:
    assert parse_sample("windows-1252-incorrect-prolog.xml", folder=BAD).title == "Euro €"
    assert parse_sample("utf8-incorrect-prolog.xml", folder=BAD).title == "테스트 피드"
    koi8 = parse_sample("koi8r.xml", folder=BAD)
    assert koi8.encoding == "koi8-r" and "koi8-r" in (koi8.bozo_reason or "")


def test_entity_bomb_is_refused_quickly() -> None:
    import time

    start = time.perf_counter()
    with pytest.raises(FeedParseError, match="entity-expansion bomb"):
        parse_sample("quadratic.xml", folder=BAD)
    assert time.perf_counter() - start < 1.0


def test_body_hash_and_text_helpers() -> None:
    assert body_hash(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert html_to_text("<p>Hello&nbsp; <b>world</b></p><p>Two<br>lines</p><script>x()</script>") == \
        "Hello world\n\nTwo\nlines"
    assert normalise_text("  e\u0301 \t x \r\n\r\n\r\n y ") == "é x\n\ny"
    assert content_hash("Hello  World") == content_hash("hello world\u200b")
    assert content_hash("hello world") != content_hash("hello, world")

"""Property tests: URL canonicalisation, date parsing, feed parsing and text normalisation on arbitrary input."""

from __future__ import annotations

import re
import unicodedata
from datetime import timedelta
from urllib.parse import parse_qsl, quote, urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.dates import parse_date
from parsers.feeds import FeedParseError, parse_feed
from parsers.text import normalise_text
from parsers.urls import canonicalize_url, is_tracking_param

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

label = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
hosts = st.lists(label, min_size=1, max_size=3).map(lambda parts: ".".join(parts) + ".example")
segment = st.text(st.characters(codec="utf-8", exclude_characters="/?#%\\", exclude_categories=["Cc", "Cs"]),
                  max_size=10).filter(lambda s: s not in (".", ".."))
paths = st.lists(segment, max_size=4).map(lambda segs: "/" + "/".join(quote(s, safe="") for s in segs))
param_name = st.one_of(
    st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8),
    st.sampled_from(["utm_source", "utm_campaign", "fbclid", "gclid", "ref", "mc_eid", "id", "page"]),
)
param_value = st.text("abcdefghijklmnopqrstuvwxyz0123456789-._~", max_size=8)
queries = st.lists(st.tuples(param_name, param_value), max_size=5)


@FAST
@given(st.text(max_size=200), st.one_of(st.none(), st.text(max_size=60)))
def test_canonicalize_only_raises_value_error_and_is_idempotent(url: str, base: str | None) -> None:
    try:
        result = canonicalize_url(url, base)
    except ValueError:
        return
    assert result.startswith(("http://", "https://"))
    assert canonicalize_url(result) == result


@FAST
@given(st.sampled_from(["http", "https", "HTTPS"]), hosts, paths, queries,
       st.text("abc", max_size=5))
def test_canonicalize_keeps_what_identifies_the_article(
    scheme: str, host: str, path: str, query: list[tuple[str, str]], fragment: str
) -> None:
    raw_query = "&".join(f"{k}={v}" for k, v in query)
    url = f"{scheme}://{host.upper()}{path}" + (f"?{raw_query}" if raw_query else "") + \
        (f"#{fragment}" if fragment else "")
    result = canonicalize_url(url)
    parts = urlsplit(result)
    assert parts.hostname == host
    assert parts.path == (path or "/")
    kept = sorted((k, v) for k, v in query if not is_tracking_param(k))
    assert sorted(parse_qsl(parts.query, keep_blank_values=True)) == kept
    assert not parts.fragment
    assert canonicalize_url(result) == result


@FAST
@given(st.one_of(st.none(), st.text(max_size=80), st.from_regex(
    r"\A(Mon|Tue|mer|Di\.)?,? ?\d{1,2} [A-Za-z]{3,9}\.? \d{2,4}( \d{1,2}:\d{2}(:\d{2})?)? ?"
    r"([+-]\d{2,4}|[A-Z]{2,5})?\Z")))
def test_parse_date_never_raises(value: str | None) -> None:
    result = parse_date(value)
    if result is not None:
        assert result.utcoffset() == timedelta(0)


feed_like = st.builds(
    lambda head, items, tail: (head + items + tail).encode("utf-8", "surrogatepass"),
    st.sampled_from(['<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>',
                     '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>', "", "<rss>"]),
    st.lists(st.builds(
        lambda link, title: f"<item><link>{link}</link><title>{title}</title></item>"
                            f"<entry><link href=\"{link}\"/><title>{title}</title></entry>",
        st.one_of(st.text(max_size=40), st.just("https://example.com/a?utm_source=x"),
                  st.just("/relative/path"), st.just("mailto:x@example.com")),
        st.text(max_size=20)), max_size=4).map("".join),
    st.sampled_from(["</channel></rss>", "</feed>", "", "<!ENTITY"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400), feed_like))
def test_parse_feed_returns_or_raises_feed_parse_error(body: bytes) -> None:
    try:
        parsed = parse_feed(body, "https://example.com/feed.xml")
    except FeedParseError as exc:
        assert str(exc)
        return
    for entry in parsed.entries:
        assert canonicalize_url(entry.url) == entry.url


def _normalise_by_definition(text: str) -> str:
    """normalise_text's contract, one plain step at a time."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", " ", re.sub("[\u200b\u200c\u200d\u2060\ufeff\u00ad]", "", text))
    lines = (re.sub(r"[^\S\n]+", " ", line).strip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


spacey = st.text(st.one_of(
    st.sampled_from([" ", "\n", "\r", "\t", "\x0b", "\x0c", "\x1c", "\x1f", "\x00", "\x85", "\u00a0", "\u2003",
                     "\u2028", "\u3000", "\u200b", "\u00ad", "\ufeff", "\u0301", "e", "Z"]),
    st.characters()), max_size=40)


@FAST
@given(spacey)
def test_normalise_text_keeps_its_definition(text: str) -> None:
    assert normalise_text(text) == _normalise_by_definition(text)
    assert normalise_text(normalise_text(text)) == normalise_text(text)

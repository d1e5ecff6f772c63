"""More properties: what the dedup key depends on survives canonicalisation, dates round-trip,
and the feed-entry wrapper is idempotent and keeps every distinct entry.

tests/test_properties.py covers "never raises" and idempotence of a single URL; these add the
properties across inputs: two different articles never share a key, and parsing what we
parsed gives the same entries again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from urllib.parse import quote

from hostile_server import rss_feed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.dates import parse_date
from parsers.feeds import parse_feed
from parsers.urls import article_id, canonicalize_url, is_tracking_param

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

label = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
hosts = st.lists(label, min_size=1, max_size=3).map(lambda parts: ".".join(parts) + ".example")
segments = st.lists(st.text("abcdefghijklmnopqrstuvwxyzABCDEF0123456789-_é ", min_size=1,
                            max_size=8).filter(lambda s: s not in (".", "..")), max_size=3)
params = st.dictionaries(st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6)
                         .filter(lambda k: not is_tracking_param(k)),
                         st.text("abcdefghijklmnopqrstuvwxyz0123456789", max_size=6), max_size=3)
ports = st.one_of(st.none(), st.integers(1024, 65535))


def _url(host: str, port: int | None, segs: list[str], query: dict[str, str]) -> str:
    path = "/" + "/".join(quote(s, safe="") for s in segs)
    netloc = host + (f":{port}" if port else "")
    q = "&".join(f"{k}={v}" for k, v in sorted(query.items()))
    return f"https://{netloc}{path}" + (f"?{q}" if q else "")


@FAST
@given(hosts, ports, segments, params, hosts, ports, segments, params)
def test_different_articles_never_share_a_key(h1: str, p1: int | None, s1: list[str],
                                              q1: dict[str, str], h2: str, p2: int | None,
                                              s2: list[str], q2: dict[str, str]) -> None:
    """Host, port, path and non-tracking parameters all reach the key; nothing else does."""
    a, b = _url(h1, p1, s1, q1), _url(h2, p2, s2, q2)
    same_article = (h1, p1, [x for x in s1], q1) == (h2, p2, [x for x in s2], q2)
    key_a, key_b = article_id(canonicalize_url(a)), article_id(canonicalize_url(b))
    assert (key_a == key_b) == same_article


@FAST
@given(hosts, segments, params, st.dictionaries(
    st.sampled_from(["utm_source", "utm_medium", "utm_campaign", "fbclid", "gclid", "mc_eid"]),
    st.text("abc123", min_size=1, max_size=5), min_size=1), st.text("abc", max_size=4))
def test_tracking_noise_does_not_change_the_key(host: str, segs: list[str], query: dict[str, str],
                                                tracking: dict[str, str], fragment: str) -> None:
    clean = _url(host, None, segs, query)
    noisy_query = {**query, **tracking}
    noisy = _url(host.upper(), None, segs, noisy_query) + (f"#{fragment}" if fragment else "")
    assert canonicalize_url(noisy) == canonicalize_url(clean)


aware = st.datetimes(min_value=datetime(1995, 1, 1), max_value=datetime(2099, 12, 31),
                     timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                                timezone(timedelta(hours=-8))]))


@FAST
@given(aware)
def test_dates_round_trip_through_feed_formats(value: datetime) -> None:
    moment = value.replace(microsecond=0)
    for text in (format_datetime(moment), moment.isoformat()):
        parsed = parse_date(text)
        assert parsed is not None, text
        assert parsed == moment and parsed.utcoffset() == timedelta(0), text
        # Idempotent: what we return, written out again, parses to itself.
        assert parse_date(parsed.isoformat()) == parsed
        assert parse_date(format_datetime(parsed)) == parsed


entries = st.lists(
    st.tuples(hosts, segments, params, st.text("abcdefghij ", min_size=1, max_size=20),
              st.one_of(st.none(), aware)),
    min_size=1, max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries)
def test_feed_entries_are_idempotent_and_keep_every_distinct_article(
        raw: list[tuple[str, list[str], dict[str, str], str, datetime | None]]) -> None:
    items = [{"title": title, "link": _url(host, None, segs, query) + "&utm_source=rss"
              if query else _url(host, None, segs, query) + "?utm_source=rss",
              "pubDate": format_datetime(when.replace(microsecond=0)) if when else None,
              "description": f"About {title}"}
             for host, segs, query, title, when in raw]
    feed = parse_feed(rss_feed("Props", items), "https://feeds.example/rss")
    canonical = {canonicalize_url(item["link"] or "") for item in items}
    # One entry per distinct article (the GUID falls back to the link), none lost.
    assert {e.url for e in feed.entries} == canonical
    assert len(feed.entries) == len(canonical)
    for entry in feed.entries:
        assert canonicalize_url(entry.url) == entry.url
        assert "utm_source" not in entry.url
    # Writing the entries back out as a feed and parsing again gives the same entries.
    again = parse_feed(rss_feed("Props", [
        {"title": e.title, "link": e.url, "guid": e.guid,
         "pubDate": format_datetime(e.published_at) if e.published_at else None,
         "description": e.summary} for e in feed.entries]), "https://feeds.example/rss")
    key = lambda e: (e.url, e.guid, e.title, e.published_at, e.summary)
    assert sorted(map(key, again.entries), key=str) == sorted(map(key, feed.entries), key=str)

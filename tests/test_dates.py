"""Tests for parsers.dates: parsing, URL dates, plausibility and the choice of a publication date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from parsers.dates import choose_published, date_from_url, is_plausible, parse_date

NOW = datetime(2024, 7, 24, 12, 0, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
        micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Tue, 23 Jul 2024 10:00:00 +0000", utc(2024, 7, 23, 10)),
        ("Tue, 23 Jul 2024 10:00:00 GMT", utc(2024, 7, 23, 10)),
        ("Mon, 06 Jan 2020 15:00:00 -0000", utc(2020, 1, 6, 15)),
        ("Wed, 5 Nov 2025  13:52:10 EST", utc(2025, 11, 5, 18, 52, 10)),  # medscape
        ("Sun, 17 Dec 2023 00:58:40 -0500", utc(2023, 12, 17, 5, 58, 40)),
        ("Sat, Dec 16 2023 02:02:33 PM", utc(2023, 12, 16, 14, 2, 33)),  # nbcny
        ("mer, 16 nov 2022 00:38:15 +0100", utc(2022, 11, 15, 23, 38, 15)),  # il messaggero
        ("mar, 15 nov 2022 10:00:00 +0100", utc(2022, 11, 15, 9)),  # "mar" = martedì
        ("Di., 23. Juli 2024 10:00 MESZ", utc(2024, 7, 23, 8)),
        ("5 mars 2024", utc(2024, 3, 5)),
        ("July 23rd, 2024 10:00 am", utc(2024, 7, 23, 10)),
        ("Tuesday, July 23, 2024", utc(2024, 7, 23)),
        ("2020/1/10 14:33:00", utc(2020, 1, 10, 14, 33)),  # kc0011
        ("2014-10-05T01:28:05.849-07:00", utc(2014, 10, 5, 8, 28, 5, 849000)),
        ("2017-04-07T12:20:50+10:30", utc(2017, 4, 7, 1, 50, 50)),
        ("2024-07-23T10:00:00Z", utc(2024, 7, 23, 10)),
        ("2024-07-23 10:00", utc(2024, 7, 23, 10)),
        ("2019-08-27", utc(2019, 8, 27)),
        ("20240723", utc(2024, 7, 23)),
        ("12.03.2021 14:00", utc(2021, 3, 12, 14)),
        ("Sun Dec 17 00:58:40 2023", utc(2023, 12, 17, 0, 58, 40)),
        ("1700000000", utc(2023, 11, 14, 22, 13, 20)),
        ("Thu, 01 Jan 1970 00:00:00 +0000", utc(1970, 1, 1)),
        ("Tue, 23 Jul 2024 10:00:00 GMT+2", utc(2024, 7, 23, 8)),
        ("2099-01-01T00:00:00Z", utc(2099, 1, 1)),
        ("", None),
        ("   ", None),
        (None, None),
        ("garbage", None),
        ("2024-02-30", None),
        ("Tue, 32 Jul 2024 10:00:00 GMT", None),
        ("2024-07-23T25:00:00Z", None),
        ("Tue, 23 Jul 2024 10:00:00 +9999", None),
        ("99999999999999999999", None),
    ],
)
def test_parse_date(raw: str | None, expected: datetime | None) -> None:
    result = parse_date(raw)
    assert result == expected
    if result is not None:
        assert result.tzinfo is not None and result.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/2024/07/23/some-story/", utc(2024, 7, 23)),
        ("https://example.com/news/2024/7/3/story", utc(2024, 7, 3)),
        ("https://example.com/news/20240723/story", utc(2024, 7, 23)),
        ("https://example.com/a/2024-07-23-story.html", utc(2024, 7, 23)),
        ("https://example.com/2024/13/45/story", None),
        ("https://example.com/p/1234567890", None),
        ("https://example.com/story?date=2024-07-23", None),
        ("https://2024-07-23.example.com/story", None),
        ("not a url", None),
    ],
)
def test_date_from_url(url: str, expected: datetime | None) -> None:
    assert date_from_url(url) == expected


@pytest.mark.parametrize(
    ("dt", "plausible"),
    [
        (NOW, True),
        (NOW + timedelta(hours=23), True),
        (NOW + timedelta(days=2), False),
        (utc(2099, 1, 1), False),
        (utc(1995, 1, 1), True),
        (utc(1994, 12, 31, 23, 59), False),
        (utc(1970, 1, 1), False),
        (datetime(2024, 7, 23, 10), True),  # naive: read as UTC
        (datetime(2024, 7, 25, 13, 0, tzinfo=timezone(timedelta(hours=2))), True),
        (datetime(2024, 7, 25, 15, 0, tzinfo=timezone(timedelta(hours=2))), False),
    ],
)
def test_is_plausible(dt: datetime, plausible: bool) -> None:
    assert is_plausible(dt, NOW) is plausible


@pytest.mark.parametrize(
    ("feed", "page", "url", "expected"),
    [
        (utc(2024, 7, 20), utc(2024, 7, 21), "https://e.com/2024/07/22/x", (utc(2024, 7, 20), "feed")),
        (None, utc(2024, 7, 21), "https://e.com/2024/07/22/x", (utc(2024, 7, 21), "page")),
        (utc(2099, 1, 1), utc(2024, 7, 21), "https://e.com/x", (utc(2024, 7, 21), "page")),
        (utc(1970, 1, 1), None, "https://e.com/2024/07/22/x", (utc(2024, 7, 22), "url")),
        (None, utc(2030, 1, 1), "https://e.com/2031/01/01/x", (utc(2024, 7, 1), "first_seen")),
        (None, None, "https://e.com/x", (utc(2024, 7, 1), "first_seen")),
        (datetime(2024, 7, 20, 12, tzinfo=timezone(timedelta(hours=2))), None, "https://e.com/x",
         (utc(2024, 7, 20, 10), "feed")),
    ],
)
def test_choose_published(
    feed: datetime | None, page: datetime | None, url: str, expected: tuple[datetime, str]
) -> None:
    result = choose_published(feed, page, url, utc(2024, 7, 1), now=NOW)
    assert result == expected
    assert result[0].utcoffset() == timedelta(0)


def test_choose_published_defaults_to_current_time() -> None:
    future = datetime.now(UTC) + timedelta(days=30)
    assert choose_published(future, None, "https://e.com/x", utc(2024, 7, 1))[1] == "first_seen"

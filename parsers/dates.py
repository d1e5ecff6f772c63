"""Date parsing for feeds, page metadata and URLs; every datetime returned is tz-aware UTC."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from types import MappingProxyType

__all__ = [
    "EARLIEST_PLAUSIBLE",
    "choose_published",
    "date_from_url",
    "is_plausible",
    "parse_date",
]

#: Nothing we monitor was published before the web had news sites.
EARLIEST_PLAUSIBLE = datetime(1995, 1, 1, tzinfo=UTC)
_CLOCK_SKEW = timedelta(days=1)
_MAX_INPUT = 200

_MONTH_NAMES = (
    ("jan january janv janvier januar jänner jaenner gen gennaio ene enero janeiro januari "
     "sty stycznia styczen"),
    ("feb february fev fév févr fevr février fevrier februar febbraio febrero fevereiro "
     "februari lut lutego luty"),
    "mar march mars märz maerz marzo março marco maart mrt marca marzec",
    "apr april avr avril aprile abr abril kwi kwietnia kwiecien",
    "may mai maggio mag mayo maio mei maj maja",
    "jun june juin juni giu giugno junio junho cze czerwca czerwiec",
    "jul july juil juillet juli lug luglio julio julho lip lipca lipiec",
    "aug august aout août ago agosto augustus sie sierpnia sierpien",
    "sep sept september septembre set settembre septiembre setembro wrz wrzesnia września",
    ("oct october octobre okt oktober ott ottobre octubre out outubro paz pazdziernika "
     "października"),
    "nov november novembre noviembre novembro lis listopada listopad",
    ("dec december décembre decembre dez dezember dic dicembre diciembre dezembro gru grudnia "
     "grudzien grudzień"),
)
_MONTHS: Mapping[str, int] = MappingProxyType(
    {name: number for number, names in enumerate(_MONTH_NAMES, start=1) for name in names.split()}
)

# Named zones seen in real feeds. Ambiguous abbreviations take the reading most common in
# English-language feeds (IST as India, BST as British Summer Time).
_ZONES: Mapping[str, int] = MappingProxyType({
    "z": 0, "ut": 0, "utc": 0, "gmt": 0, "wet": 0, "bst": 60, "ist": 330, "cet": 60,
    "met": 60, "mez": 60, "cest": 120, "mesz": 120, "eet": 120, "eest": 180, "msk": 180,
    "est": -300, "edt": -240, "cst": -360, "cdt": -300, "mst": -420, "mdt": -360,
    "pst": -480, "pdt": -420, "akst": -540, "akdt": -480, "hst": -600, "jst": 540,
    "kst": 540, "aest": 600, "aedt": 660, "acst": 570, "awst": 480, "nzst": 720,
    "nzdt": 780, "sgt": 480, "hkt": 480,
})
_TZ = r"(?P<tz>[A-Za-z]{1,5}|[+-]\d{1,2}(?::?\d{2})?|(?:GMT|UTC)[+-]\d{1,2}(?::?\d{2})?)"
_TIME = (
    r"(?:[T\s,]+(?P<hour>\d{1,2})[:.h](?P<minute>\d{2})(?:[:.](?P<second>\d{2})(?:[.,](?P<frac>\d+))?)?"
    r"\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?)?"
)
_ISO_RE = re.compile(
    r"^(?P<year>\d{4})(?P<sep>[-/.]?)(?P<month>\d{1,2})(?P=sep)(?P<day>\d{1,2})"
    + _TIME + r"\s*" + _TZ + r"?$"
)
_DMY_NAMED_RE = re.compile(
    r"^(?P<day>\d{1,2})(?:st|nd|rd|th|er|º|\.)?\s*(?:de\s+)?(?P<mname>[^\W\d_]{3,})\.?,?\s*(?:de\s+)?"
    r"(?P<year>\d{4}|\d{2})" + _TIME + r"\s*" + _TZ + r"?$"
)
_MDY_NAMED_RE = re.compile(
    r"^(?P<mname>[^\W\d_]{3,})\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<year>\d{4})"
    + _TIME + r"\s*" + _TZ + r"?$"
)
# A 4-digit year after the time, as in asctime: "Dec 16 02:02:33 2023".
_ASCTIME_RE = re.compile(
    r"^(?P<mname>[^\W\d_]{3,})\s+(?P<day>\d{1,2})\s+(?P<hour>\d{1,2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2}))?\s+(?:" + _TZ + r"\s+)?(?P<year>\d{4})$"
)
_DMY_NUMERIC_RE = re.compile(
    r"^(?P<day>\d{1,2})[./](?P<month>\d{1,2})[./](?P<year>\d{4})" + _TIME + r"\s*" + _TZ + r"?$"
)
_WEEKDAY_RE = re.compile(r"^[^\W\d_]{2,}\.?,?\s+(?=\d|[^\W\d_]{3,}\.?\s+\d)")
_URL_DATE_RES = (
    re.compile(r"/((?:19|20)\d{2})/(\d{1,2})/(\d{1,2})(?=/|$|[-_.])"),
    re.compile(r"(?:^|[/_-])((?:19|20)\d{2})-(\d{2})-(\d{2})(?=/|$|[-_.])"),
    re.compile(r"/((?:19|20)\d{2})(\d{2})(\d{2})(?=/|$|[-_.])"),
)


def _offset(tz: str | None) -> timezone | None:
    """Return the fixed offset a zone token names, UTC for unknown names, None for bad offsets."""
    if not tz:
        return UTC
    token = tz.strip().lower()
    if token in _ZONES:
        return timezone(timedelta(minutes=_ZONES[token]))
    if token.isalpha():
        # An unknown zone name is closer to UTC than to dropping the date altogether.
        return UTC
    match = re.fullmatch(r"(?:gmt|utc)?([+-])(\d{1,2}):?(\d{2})?", token)
    if not match:
        return None
    hours, minutes = int(match.group(2)), int(match.group(3) or 0)
    if hours > 18 or minutes > 59:
        return None
    sign = -1 if match.group(1) == "-" else 1
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _build(fields: dict[str, str | None], month: int | None = None) -> datetime | None:
    """Build a UTC datetime from regex groups, None when they do not form a real date."""
    tz = _offset(fields.get("tz"))
    if tz is None:
        return None
    year = int(fields["year"] or 0)
    if year < 100:
        year += 2000 if year < 70 else 1900
    month = month if month is not None else int(fields.get("month") or 0)
    hour = int(fields.get("hour") or 0)
    ampm = (fields.get("ampm") or "").replace(".", "").lower()
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    frac = (fields.get("frac") or "0")[:6].ljust(6, "0")
    try:
        local = datetime(
            year, month, int(fields["day"] or 0), hour, int(fields.get("minute") or 0),
            min(int(fields.get("second") or 0), 59), int(frac), tzinfo=tz,
        )
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _parse(text: str) -> datetime | None:
    """Try each known layout on a cleaned date string."""
    if text.isdigit() and len(text) != 8:
        # Unix timestamps in seconds or milliseconds (seen in dc:date of broken feeds).
        if len(text) in (9, 10):
            return datetime.fromtimestamp(int(text), UTC)
        if len(text) == 13:
            return datetime.fromtimestamp(int(text) / 1000, UTC)
        return None
    match = _ISO_RE.match(text)
    if match:
        return _build(match.groupdict())
    # A leading word is a weekday unless it is a month name; "mar" is both (Italian Tuesday,
    # March), so try the text with and without it.
    weekday = _WEEKDAY_RE.match(text)
    variants = (text[weekday.end():], text) if weekday else (text,)
    for variant in variants:
        for pattern in (_DMY_NAMED_RE, _MDY_NAMED_RE, _ASCTIME_RE):
            match = pattern.match(variant)
            if match:
                month = _MONTHS.get(match.group("mname").lower().rstrip("."))
                if month:
                    return _build(match.groupdict(), month)
        match = _DMY_NUMERIC_RE.match(variant)
        if match:
            return _build(match.groupdict())
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_date(value: str | None) -> datetime | None:
    """Parse an RFC 822, ISO 8601 or common variant date string to UTC; never raise."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())[:_MAX_INPUT].strip(" ,;")
    if not text:
        return None
    try:
        return _parse(text)
    except (ValueError, OverflowError, OSError):
        return None


def date_from_url(url: str) -> datetime | None:
    """Return the publication date a URL path carries (/2024/07/23/, /20240723/, 2024-07-23)."""
    if not isinstance(url, str):
        return None
    path = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*", "", url).split("?", 1)[0].split("#", 1)[0]
    for pattern in _URL_DATE_RES:
        for match in pattern.finditer(path):
            try:
                return datetime(int(match[1]), int(match[2]), int(match[3]), tzinfo=UTC)
            except ValueError:
                continue
    return None


def _as_utc(dt: datetime) -> datetime:
    """Treat a naive datetime as UTC and convert an aware one to UTC."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def is_plausible(dt: datetime, now: datetime) -> bool:
    """Tell whether a publication date is neither in the future (beyond 1 day) nor before 1995."""
    moment = _as_utc(dt)
    return EARLIEST_PLAUSIBLE <= moment <= _as_utc(now) + _CLOCK_SKEW


def choose_published(
    feed: datetime | None,
    page: datetime | None,
    url: str,
    first_seen: datetime,
    now: datetime | None = None,
) -> tuple[datetime, str]:
    """Pick the first plausible date of feed, page, URL, else first_seen; return it and its source."""
    current = now if now is not None else datetime.now(UTC)
    candidates = (("feed", feed), ("page", page), ("url", date_from_url(url)))
    for source, candidate in candidates:
        if candidate is not None and is_plausible(candidate, current):
            return _as_utc(candidate), source
    return _as_utc(first_seen), "first_seen"

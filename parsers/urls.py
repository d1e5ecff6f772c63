"""Canonical article URLs: resolution, normalisation, tracking-parameter removal, redirect unwrapping."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from urllib.parse import parse_qsl, quote, unquote, urljoin, urlsplit, urlunsplit

__all__ = [
    "TRACKING_PARAMS",
    "TRACKING_PREFIXES",
    "article_id",
    "canonicalize_url",
    "host_of",
    "is_tracking_param",
    "unwrap_redirect",
]

#: Query parameters that only identify a campaign, click or share and never select content.
#: Compared case-insensitively. ``ref`` and ``ref_src`` are included because news sites use
#: them for "where did the reader come from", never to pick an article.
TRACKING_PARAMS: frozenset[str] = frozenset(
    {
        # ad and click identifiers
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid",
        "twclid", "ttclid", "li_fat_id", "igshid", "igsh", "epik", "rb_clickid", "s_kwcid",
        # mail campaigns (Mailchimp, HubSpot, Marketo, Vero, Omeda)
        "mc_cid", "mc_eid", "_hsenc", "_hsmi", "__hstc", "__hssc", "__hsfp", "hsctatracking",
        "mkt_tok", "vero_id", "vero_conv", "oly_anon_id", "oly_enc_id", "wickedid",
        # analytics and share widgets
        "_ga", "_gl", "cmpid", "ncid", "ocid", "s_cid", "sr_share", "share", "spm",
        "ref", "ref_src", "ref_url", "referrer", "trk", "trkcampaign",
        "sc_campaign", "sc_channel", "sc_content", "sc_medium", "sc_outcome", "sc_geo",
        "sc_country", "at_medium", "at_campaign", "at_custom1", "at_custom2", "at_custom3",
        "at_custom4", "xtor", "smid", "smtyp", "guccounter", "guce_referrer",
        "guce_referrer_sig", "__twitter_impression", "wt_mc", "wt_zmc",
    }
)

#: Parameter name prefixes that mark a whole family of campaign parameters.
TRACKING_PREFIXES: tuple[str, ...] = ("utm_", "pk_", "mtm_", "matomo_", "hmb_", "ga_")

_DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 3986 unreserved characters: an escape of one of these means the same as the character.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})?")
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = "/?:@!$&'()*+,;=-._~%"
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_MAX_UNWRAP_DEPTH = 4

# Aggregators whose redirect links name their target in a query parameter.
_REDIRECT_PARAMS: tuple[tuple[re.Pattern[str], str, tuple[str, ...]], ...] = (
    (re.compile(r"^(?:www\.)?google\.[a-z.]+$"), r"^/url$", ("url", "q")),
    (re.compile(r"^news\.google\.com$"), r"^/(?:news/)?url$", ("url", "q")),
    (re.compile(r"^(?:l|lm|m|www)\.facebook\.com$"), r"^/l\.php$", ("u",)),
    (re.compile(r"^(?:www\.)?linkedin\.com$"), r"^/redir/redirect/?$", ("url",)),
    (re.compile(r"^out\.reddit\.com$"), r"^/", ("url",)),
    (re.compile(r"^t\.umblr\.com$"), r"^/redirect$", ("z",)),
    (re.compile(r"^(?:www\.)?youtube\.com$"), r"^/redirect$", ("q",)),
    (re.compile(r"^(?:www\.)?bing\.com$"), r"^/news/apiclick\.aspx$", ("url",)),
    (re.compile(r"^slack-redir\.net$"), r"^/link$", ("url",)),
    (re.compile(r"^(?:www\.)?duckduckgo\.com$"), r"^/l/?$", ("uddg",)),
)
_GOOGLE_NEWS_ARTICLE = re.compile(r"^/(?:rss/)?articles/([A-Za-z0-9_-]+)")
_EMBEDDED_URL = re.compile(rb"https?://[\x21-\x7e]+")


def is_tracking_param(name: str) -> bool:
    """Tell whether a query parameter name is a known tracking parameter."""
    key = name.strip().lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def _normalise_escapes(part: str, safe: str) -> str:
    """Uppercase percent-escapes, decode escaped unreserved characters, escape the rest."""

    def fix(match: re.Match[str]) -> str:
        if match.group(1) is None:
            # A stray '%' is escaped so that decoding never forms a new escape on a later pass.
            return "%25"
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return quote(_ESCAPE_RE.sub(fix, part), safe=safe)


def _remove_dot_segments(path: str) -> str:
    """Apply RFC 3986 section 5.2.4 to an absolute path."""
    if "." not in path:
        return path
    output: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    result = "/".join(output)
    return result if result.startswith("/") else "/" + result


def _canonical_query(query: str) -> str:
    """Drop tracking parameters and sort the rest, keeping each pair's own spelling."""
    kept: list[tuple[str, str]] = []
    for piece in query.split("&") if query else ():
        if not piece:
            continue
        name = unquote(piece.split("=", 1)[0].replace("+", " "))
        if is_tracking_param(name):
            continue
        normalised = _normalise_escapes(piece, _QUERY_SAFE)
        kept.append((normalised.split("=", 1)[0], normalised))
    kept.sort()
    return "&".join(piece for _, piece in kept)


def _canonical_host(hostname: str) -> str:
    """Lowercase a host, drop a trailing dot and encode international names as IDNA."""
    host = hostname.strip().rstrip(".").lower()
    if not host:
        raise ValueError("URL has no host")
    if ":" in host:
        # IPv6 literal: urlsplit removed the brackets.
        return f"[{host}]"
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"invalid international host name: {hostname!r}") from exc
    if any(ch in host for ch in " /\\@?#%<>\"'`{}|^") or any(ord(ch) < 33 for ch in host):
        raise ValueError(f"invalid host name: {hostname!r}")
    return host


def canonicalize_url(url: str, base: str | None = None) -> str:
    """Return the canonical form of an http(s) URL used to identify an article."""
    if not isinstance(url, str):
        # The contract promises ValueError for every unusable input, so callers catch one type.
        raise ValueError(f"URL must be a string, not {type(url).__name__}")  # noqa: TRY004
    raw = url.strip()
    # Control characters inside a URL are never meaningful; browsers strip tabs and newlines.
    raw = re.sub(r"[\x00-\x1f\x7f]", "", raw)
    if base:
        raw = urljoin(base.strip(), raw)
    elif raw.startswith("//"):
        raw = "https:" + raw
    if not _SCHEME_RE.match(raw):
        raise ValueError(f"URL is not absolute: {url!r}")
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"URL scheme is not http(s): {url!r}")
    host = _canonical_host(parts.hostname or "")
    port = parts.port  # raises ValueError for a malformed port, which is what we want
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _remove_dot_segments(_normalise_escapes(parts.path.replace("\\", "/"), _PATH_SAFE))
    if not path.startswith("/"):
        path = "/" + path
    return urlunsplit((scheme, netloc, path, _canonical_query(parts.query), ""))


def _query_target(url: str) -> str | None:
    """Return the target URL carried in an aggregator link's query string."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    for host_re, path_re, names in _REDIRECT_PARAMS:
        if not host_re.match(host) or not re.match(path_re, parts.path):
            continue
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        for name in names:
            target = params.get(name, "").strip()
            if re.match(r"^https?://", target, re.IGNORECASE):
                return target
    return None


def _google_news_target(url: str) -> str | None:
    """Decode the publisher URL from an old-style Google News article token."""
    parts = urlsplit(url)
    if (parts.hostname or "").lower() != "news.google.com":
        return None
    match = _GOOGLE_NEWS_ARTICLE.match(parts.path)
    if not match:
        return None
    token = match.group(1)
    try:
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    # Old tokens are a protobuf that holds the publisher URL as plain bytes; newer ones are
    # opaque and need a request to Google, which a pure parser does not make.
    found = _EMBEDDED_URL.search(blob)
    if not found:
        return None
    target = found.group(0).decode("ascii")
    # The length-prefixed protobuf field can be followed by another field's bytes.
    return target if len(target) > len("https://x.y") else None


def unwrap_redirect(url: str) -> str:
    """Return the target of a redirecting aggregator link when the link carries it, else url."""
    current = url
    for _ in range(_MAX_UNWRAP_DEPTH):
        try:
            target = _query_target(current) or _google_news_target(current)
        except ValueError:
            return current
        if not target or target == current:
            return current
        current = target
    return current


def article_id(canonical_url: str) -> str:
    """Return the article id: the first 16 hex digits of sha256 of the canonical URL."""
    return hashlib.sha256(canonical_url.encode("utf-8")).hexdigest()[:16]


def host_of(url: str) -> str:
    """Return the lowercase host name of a URL, or '' when it has none."""
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return ""
    return (host or "").rstrip(".").lower()

"""The weekly email digest: compose it from the warehouse, render it, send it over SMTP.

One digest covers one ISO week in the trends timezone. Its figures come from the warehouse
views (see `warehouse.digest`); this module only arranges them. Near-duplicate coverage of
one event is clustered (`parsers.clustering`) so each story appears once, with the other
outlets that ran it. The message is a `multipart/alternative` of a plain-text part and a
`multipart/related` HTML part that carries the chart as an inline PNG (Content-ID). Each
recipient gets a separate message, and every attempt is logged in the `digests` table so a
second run for the same week does not send twice and a failed send is retried.
"""

from __future__ import annotations

import base64
import io
import re
import smtplib
import ssl
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2

from newsmon.config import Settings, SmtpSettings, smtp_password
from newsmon.errors import UserError
from parsers.clustering import ClusterSettings, cluster_near_duplicates
from parsers.themes import THEME_IDS, ThemeSet, load_themes
from warehouse.db import connect
from warehouse.digest import (
    SendRecord,
    ThemeShare,
    WeekArticle,
    WeekData,
    latest_week,
    read_week,
    record_send,
    sent_recipients,
)

__all__ = [
    "DeliveryReport",
    "Digest",
    "DigestError",
    "Link",
    "Mover",
    "Story",
    "ThemeSection",
    "build_message",
    "clean_header_text",
    "compose_digest",
    "iso_week_label",
    "last_complete_week",
    "load_digest",
    "parse_iso_week",
    "render_chart",
    "render_html",
    "render_text",
    "safe_url",
    "send_digest",
    "write_dry_run",
]

# One colour per theme, in THEME_IDS order, the same in the chart and beside each section.
_PALETTE = (
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00",
    "#56b4e9", "#8c564b", "#7f3c8d", "#4d4d4d",
)
_OTHER_COLOUR = "#9aa0a6"
_ISO_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_SPACE_RUN = re.compile(r"\s+")
_SNIPPET_CHARS = 280
_SUBJECT_CHARS = 160
_MOVER_MIN_POINTS = 1.0  # smaller changes are noise, not news
_CHART_THEMES = 5  # themes drawn in colour; the rest are grey context


class DigestError(UserError):
    """The digest cannot be composed or sent as configured."""


@dataclass(frozen=True)
class Link:
    """A link to one article: its outlet, title and URL (None when the URL is not http(s))."""

    outlet: str
    title: str
    url: str | None


@dataclass(frozen=True)
class Story:
    """One story of the week: its lead article and the other coverage of the same event."""

    title: str
    url: str | None
    outlet: str
    published: datetime
    when: str  # e.g. "Tue 18 Nov"
    snippet: str
    also: tuple[Link, ...]  # other articles of the cluster
    other_outlets: int  # distinct outlets among them, not counting the lead's
    coverage: int  # distinct outlets in the cluster, lead included
    theme: str


@dataclass(frozen=True)
class ThemeSection:
    """One theme's part of the digest."""

    theme: str
    name: str
    description: str
    colour: str
    articles: int
    share_label: str  # e.g. "24%"
    stories: tuple[Story, ...]


@dataclass(frozen=True)
class Mover:
    """A theme whose share rose or fell against the baseline weeks."""

    theme: str
    name: str
    colour: str
    arrow: str  # ▲ or ▼
    direction: str  # rose | fell
    share_label: str  # "24%"
    prior_label: str  # "15%"
    change_label: str  # "+9 pts"
    relative_label: str  # "+60%" or "new"


@dataclass(frozen=True)
class Digest:
    """Everything one week's email shows, ready to render."""

    iso_week: str
    week_start: date
    period: str  # "17–23 Nov 2026"
    subject: str
    relevant_articles: int
    prior_label: str  # "" or "4-week average 98"
    risers: tuple[Mover, ...]
    fallers: tuple[Mover, ...]
    sections: tuple[ThemeSection, ...]
    entities: tuple[tuple[str, str, int, int], ...]  # entity, kind, articles, mentions
    terms: tuple[tuple[str, int, str], ...]  # term, articles this week, "new" or "from 0.5/wk"
    shares: tuple[ThemeShare, ...] = field(repr=False)
    theme_names: Mapping[str, str] = field(repr=False, default_factory=dict)
    stories_total: int = 0


@dataclass(frozen=True)
class DeliveryReport:
    """What one send run did for each recipient."""

    iso_week: str
    sent: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]  # (recipient, error)
    skipped: tuple[str, ...]  # already sent this week, not forced


# --- weeks -------------------------------------------------------------------------------


def parse_iso_week(text: str) -> date:
    """Return the Monday of an ISO week written like 2026-W47."""
    match = _ISO_WEEK.match(text.strip())
    if not match:
        raise DigestError(f"week {text!r} is not an ISO week like 2026-W47")
    try:
        return date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except ValueError:
        raise DigestError(f"week {text!r} does not exist") from None


def iso_week_label(monday: date) -> str:
    """Return the ISO week of a date, like 2026-W47."""
    iso = monday.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def last_complete_week(tz_name: str, now: datetime | None = None) -> date:
    """Return the Monday of the last complete ISO week in the timezone."""
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DigestError(f"[trends] timezone {tz_name!r} is not a known timezone") from None
    today = (now or datetime.now(UTC)).astimezone(tz).date()
    return today - timedelta(days=today.weekday() + 7)


# --- text hygiene ------------------------------------------------------------------------


def clean_header_text(text: str, limit: int = _SUBJECT_CHARS) -> str:
    """Return text safe for a header: control and line-separator characters become spaces."""
    # Cc covers CR, LF and NUL; Zl/Zp are U+2028/U+2029, which some clients break lines on.
    cleaned = "".join(
        " " if unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} else ch for ch in text
    )
    cleaned = _SPACE_RUN.sub(" ", cleaned).strip()
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned


def _clean(text: str | None) -> str:
    return clean_header_text(text or "", limit=10_000)


def safe_url(url: str | None) -> str | None:
    """Return the URL when it is an absolute http(s) link, else None (no javascript: links)."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        return None
    if any(unicodedata.category(ch) == "Cc" or ch.isspace() for ch in url):
        return None
    return url


def _outlet(article: WeekArticle) -> str:
    if article.source and _clean(article.source):
        return _clean(article.source)
    for url in (article.url, article.feed_url):
        host = urlsplit(url or "").hostname
        if host:
            return host.removeprefix("www.")
    return "unknown outlet"


def _snippet(text: str, limit: int = _SNIPPET_CHARS) -> str:
    text = _clean(text)
    if len(text) <= limit:
        return text
    cut = text[:limit]
    # End on a sentence when one ends late enough, else on a word.
    sentence_end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    if sentence_end >= limit // 2:
        return cut[: sentence_end + 1]
    return cut.rsplit(" ", 1)[0].rstrip(",;:") + " …"


def _percent(share: float) -> str:
    return f"{share * 100:.0f}%"


# --- composing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cluster:
    members: tuple[WeekArticle, ...]  # lead first
    coverage: int
    latest: datetime
    themes: Mapping[str, tuple[float, str | None, WeekArticle]]  # best score, evidence, article

    @property
    def lead(self) -> WeekArticle:
        return self.members[0]

    @property
    def primary_theme(self) -> str | None:
        if not self.themes:
            return None
        return max(self.themes, key=lambda t: (self.themes[t][0], t))


def _clusters(articles: Sequence[WeekArticle], settings: ClusterSettings) -> list[_Cluster]:
    by_id = {a.id: a for a in articles}
    documents = []
    for article in articles:
        text = article.text
        if len(text.split()) < 20:
            # Too little text to compare: let the title carry the comparison.
            text = f"{article.title or ''}. {text}"
        documents.append((article.id, text))
    clustering = cluster_near_duplicates(documents, settings)
    clusters: list[_Cluster] = []
    for group in clustering.groups:
        members = sorted(
            (by_id[key] for key in group),
            # The earliest article is the original; the longer text wins a tie.
            key=lambda a: (a.article_date, -len(a.text), a.id),
        )
        themes: dict[str, tuple[float, str | None, WeekArticle]] = {}
        for member in members:
            for tag in member.themes:
                best = themes.get(tag.theme)
                if best is None or tag.score > best[0]:
                    themes[tag.theme] = (tag.score, tag.evidence, member)
        outlets = {_outlet(m).casefold() for m in members}
        clusters.append(
            _Cluster(
                members=tuple(members),
                coverage=len(outlets),
                latest=max(m.article_date for m in members),
                themes=themes,
            )
        )
    # Rank by coverage (outlets that ran the story), then recency.
    clusters.sort(key=lambda c: (-c.coverage, -c.latest.timestamp(), c.lead.id))
    return clusters


def _assign(
    clusters: Sequence[_Cluster], theme_order: Sequence[str], per_theme: int
) -> dict[str, list[_Cluster]]:
    """Give each theme its top clusters so that every cluster is shown once."""
    chosen: dict[str, list[_Cluster]] = {theme: [] for theme in theme_order}
    used: set[int] = set()
    # First each story goes under the theme it is most about, then slots left over are
    # filled with stories that carry the theme as a secondary tag.
    for primary_only in (True, False):
        for theme in theme_order:
            for index, cluster in enumerate(clusters):
                if len(chosen[theme]) >= per_theme:
                    break
                if index in used or theme not in cluster.themes:
                    continue
                if primary_only and cluster.primary_theme != theme:
                    continue
                chosen[theme].append(cluster)
                used.add(index)
    rank = {id(c): i for i, c in enumerate(clusters)}
    return {theme: sorted(found, key=lambda c: rank[id(c)]) for theme, found in chosen.items()}


def _story(cluster: _Cluster, theme: str) -> Story:
    lead = cluster.lead
    score_evidence = cluster.themes.get(theme)
    evidence = score_evidence[1] if score_evidence and score_evidence[2] is lead else None
    if not evidence and lead.themes:
        evidence = next((t.evidence for t in lead.themes if t.theme == theme and t.evidence), None)
    snippet = _snippet(evidence or lead.text or "")
    lead_outlet = _outlet(lead)
    others = cluster.members[1:]
    other_outlets = {_outlet(m).casefold() for m in others} - {lead_outlet.casefold()}
    return Story(
        title=_clean(lead.title) or "(untitled)",
        url=safe_url(lead.url),
        outlet=lead_outlet,
        published=lead.article_date,
        when=f"{lead.article_date:%a} {lead.article_date.day} {lead.article_date:%b}",
        snippet=snippet,
        also=tuple(Link(_outlet(m), _clean(m.title) or "(untitled)", safe_url(m.url)) for m in others),
        other_outlets=len(other_outlets),
        coverage=cluster.coverage,
        theme=theme,
    )


def _colour(theme: str) -> str:
    return _PALETTE[THEME_IDS.index(theme)] if theme in THEME_IDS else _OTHER_COLOUR


def compose_digest(
    data: WeekData,
    themes: ThemeSet,
    *,
    stories_per_theme: int = 3,
    subject_prefix: str = "[newsmon]",
    cluster_settings: ClusterSettings | None = None,
) -> Digest:
    """Arrange one week's warehouse figures into the digest's sections."""
    known = {t.id: t for t in themes.themes}
    names = {theme: known[theme].name if theme in known else theme for theme in THEME_IDS}
    for share in data.shares:
        names.setdefault(share.theme, share.theme)

    def name(theme: str) -> str:
        return names.get(theme, theme)

    movers: list[Mover] = []
    for move in data.moves:
        if move.prior_weeks == 0 or abs(move.change_points) < _MOVER_MIN_POINTS:
            continue
        ratio = move.change_ratio
        relative = "new" if ratio is None else f"{ratio * 100:+.0f}%"
        movers.append(
            Mover(
                theme=move.theme, name=name(move.theme), colour=_colour(move.theme),
                arrow="▲" if move.change_points > 0 else "▼",
                direction="rose" if move.change_points > 0 else "fell",
                share_label=_percent(move.share), prior_label=_percent(move.prior_share),
                change_label=f"{move.change_points:+.0f} pts", relative_label=relative,
            )
        )
    risers = tuple(m for m in movers if m.direction == "rose")[:3]
    fallers = tuple(m for m in movers if m.direction == "fell")[:3]

    clusters = _clusters(data.articles, cluster_settings or ClusterSettings())
    this_week = {m.theme: m for m in data.moves}
    order = sorted(
        {theme for c in clusters for theme in c.themes},
        key=lambda t: (-(this_week[t].articles if t in this_week else 0), name(t)),
    )
    assigned = _assign(clusters, order, stories_per_theme)
    sections = []
    for theme in order:
        if not assigned[theme]:
            continue
        current = this_week.get(theme)
        sections.append(
            ThemeSection(
                theme=theme, name=name(theme),
                description=known[theme].description if theme in known else "",
                colour=_colour(theme),
                articles=current.articles if current else 0,
                share_label=_percent(current.share) if current else "",
                stories=tuple(_story(c, theme) for c in assigned[theme]),
            )
        )
    stories_total = sum(len(s.stories) for s in sections)
    headline = sections[0].stories[0].title if sections else "a quiet week"
    if data.prior_relevant_avg is not None:
        prior_label = f"{_clean_number(data.prior_relevant_avg)} a week on average over the previous 4 weeks"
    else:
        prior_label = ""
    end = data.week + timedelta(days=6)
    start_label = f"{data.week.day} {data.week:%b} " if data.week.month != end.month else f"{data.week.day}"
    if data.week.year != end.year:
        start_label = f"{data.week.day} {data.week:%b %Y} "
    period = f"{start_label.strip()}–{end.day} {end:%b %Y}"
    subject = clean_header_text(f"{subject_prefix} Open-source AI, {data.iso_week}: {headline}")
    return Digest(
        iso_week=data.iso_week,
        week_start=data.week,
        period=period,
        subject=subject,
        relevant_articles=data.relevant_articles,
        prior_label=prior_label,
        risers=risers,
        fallers=fallers,
        sections=tuple(sections),
        entities=tuple((_clean(e.entity), _clean(e.kind), e.articles, e.mentions) for e in data.entities),
        terms=tuple((_clean(t.term), t.this_week, _term_label(t.prior_weekly_avg)) for t in data.terms),
        shares=data.shares,
        theme_names=names,
        stories_total=stories_total,
    )


def _term_label(prior_weekly_avg: float) -> str:
    if prior_weekly_avg <= 0:
        return "new"
    return f"from {_clean_number(prior_weekly_avg)}/wk"


def _clean_number(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}".rstrip("0").rstrip(".")


def load_digest(settings: Settings, week: date) -> Digest:
    """Read one week from the warehouse and compose its digest."""
    themes = load_themes(settings.themes.file or None)
    with connect(
        settings.database_path,
        read_only=True,
        timezone=settings.trends.timezone,
        lock_wait_seconds=settings.storage.lock_wait_seconds,
    ) as con:
        data = read_week(con, week)
    return compose_digest(
        data,
        themes,
        stories_per_theme=max(1, settings.digest.stories_per_theme),
        subject_prefix=settings.digest.subject_prefix,
    )


# --- rendering ---------------------------------------------------------------------------


def render_chart(digest: Digest) -> bytes:
    """Draw weekly theme shares over the chart weeks as a PNG sized for a 600 px email."""
    # Figure + Agg canvas, not pyplot: no global figure registry, safe in threads.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    weeks = sorted({s.week for s in digest.shares})
    series: dict[str, dict[date, float]] = {}
    for share in digest.shares:
        series.setdefault(share.theme, {})[share.week] = share.share
    latest = weeks[-1] if weeks else None
    ranked = sorted(series, key=lambda t: (-series[t].get(latest, 0.0) if latest else 0.0, t))
    coloured = ranked[:_CHART_THEMES]

    # 6 x 3.2 in at 200 dpi: 1200 x 640 px, shown at 600 px wide so it stays sharp on
    # high-density screens; fonts are sized for the 600 px view.
    figure = Figure(figsize=(6.0, 3.2), dpi=200)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(weeks)))
    for theme in reversed(ranked):
        values = [series[theme].get(week, 0.0) for week in weeks]
        if theme in coloured:
            axes.plot(positions, values, color=_colour(theme), linewidth=2.2, marker="o",
                      markersize=3, label=digest.theme_names.get(theme, theme), zorder=3)
        else:
            axes.plot(positions, values, color="#d0d4d9", linewidth=1.0, zorder=1)
    axes.set_xticks(positions)
    axes.set_xticklabels([f"W{w.isocalendar().week:02d}" for w in weeks], fontsize=7)
    axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    axes.tick_params(axis="y", labelsize=7)
    axes.set_ylim(bottom=0)
    axes.grid(axis="y", color="#e6e8eb", linewidth=0.6)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    axes.set_title("Share of relevant articles per theme, by ISO week", fontsize=8.5,
                   loc="left", color="#202124")
    if coloured:
        handles, labels = axes.get_legend_handles_labels()
        order = [labels.index(digest.theme_names.get(t, t)) for t in coloured]
        axes.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=6.5,
                    ncol=3, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    if not weeks:
        axes.text(0.5, 0.5, "No relevant articles in these weeks", ha="center", va="center",
                  transform=axes.transAxes, fontsize=8, color="#5f6368")
    # Fixed margins instead of tight_layout, which costs a second draw of the figure.
    figure.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.24 if coloured else 0.12)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="white")
    return buffer.getvalue()


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("newsmon", "templates"),
        # The HTML template escapes every value; the text template must not.
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(digest: Digest, chart_src: str) -> str:
    """Render the HTML part; `chart_src` is a cid: reference or a data: URI."""
    return _environment().get_template("digest.html.j2").render(digest=digest, chart_src=chart_src)


def render_text(digest: Digest) -> str:
    """Render the plain-text part."""
    return _environment().get_template("digest.txt.j2").render(digest=digest)


# --- the message -------------------------------------------------------------------------


def _address(value: str, what: str) -> Address:
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise DigestError(f"{what} {value!r} contains control characters")
    try:
        message = EmailMessage(policy=policy.SMTP)
        message["To"] = value
        addresses = message["To"].addresses
    except (ValueError, IndexError, TypeError) as exc:
        raise DigestError(f"{what} {value!r} is not an email address: {exc}") from None
    if len(addresses) != 1 or "@" not in addresses[0].addr_spec:
        raise DigestError(f"{what} {value!r} must be one email address")
    return addresses[0]


def build_message(
    digest: Digest,
    chart_png: bytes,
    *,
    sender: str,
    recipients: Sequence[str],
    now: datetime | None = None,
) -> EmailMessage:
    """Build the multipart/alternative message with the chart inline in the HTML part."""
    from_address = _address(sender, "[digest] sender")
    to_addresses = [_address(r, "[digest] recipient") for r in recipients]
    domain = from_address.domain or "localhost"
    # make_msgid with an explicit domain: without one it asks DNS for this host's name.
    chart_cid = make_msgid("chart", domain=domain)
    message = EmailMessage(policy=policy.SMTP)
    message["Subject"] = clean_header_text(digest.subject)
    message["From"] = from_address
    if to_addresses:
        message["To"] = to_addresses
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = make_msgid("digest", domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(render_text(digest), subtype="plain", charset="utf-8")
    message.add_alternative(render_html(digest, "cid:" + chart_cid[1:-1]), subtype="html", charset="utf-8")
    html_part = cast(list[EmailMessage], message.get_payload())[1]
    html_part.add_related(chart_png, maintype="image", subtype="png", cid=chart_cid,
                          disposition="inline", filename=f"themes-{digest.iso_week}.png")
    return message


def _check_smtp(smtp: SmtpSettings, password: str | None) -> None:
    if not smtp.host:
        raise DigestError("no SMTP host configured ([smtp] host); use --dry-run to write the digest to files")
    if smtp.security not in {"starttls", "tls", "none"}:
        raise DigestError(f"[smtp] security must be starttls, tls or none, not {smtp.security!r}")
    if smtp.username and password is None:
        raise DigestError("[smtp] username is set but no password: set $NEWSMON_SMTP_PASSWORD "
                          "or [smtp] password_block")
    if smtp.username and smtp.security == "none":
        raise DigestError("refusing to send the SMTP password without TLS: set [smtp] security")


def _smtp_connection(smtp: SmtpSettings, password: str | None, local_hostname: str,
                     ssl_context: ssl.SSLContext | None) -> smtplib.SMTP:
    _check_smtp(smtp, password)
    # Loading the system's CA store costs a noticeable moment; only TLS needs it.
    context = ssl_context or (ssl.create_default_context() if smtp.security != "none" else None)
    client: smtplib.SMTP
    if smtp.security == "tls":
        client = smtplib.SMTP_SSL(smtp.host, smtp.port, local_hostname=local_hostname,
                                  timeout=smtp.timeout, context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, local_hostname=local_hostname, timeout=smtp.timeout)
    try:
        client.ehlo()
        if smtp.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if smtp.username:
            client.login(smtp.username, password or "")
    except BaseException:
        client.close()
        raise
    return client


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = "; ".join(f"{code} {msg.decode(errors='replace')}" for code, msg in exc.recipients.values())
        return f"recipient refused: {codes}"
    if isinstance(exc, smtplib.SMTPResponseException):
        message = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{type(exc).__name__}: {exc.smtp_code} {message}"
    return f"{type(exc).__name__}: {exc}"


def send_digest(
    settings: Settings,
    week: str | None = None,
    *,
    force: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    password: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> DeliveryReport:
    """Send one week's digest to every configured recipient not yet sent it; log each attempt."""
    recipients = list(dict.fromkeys(settings.digest.recipients))
    if not recipients:
        raise DigestError("no recipients configured ([digest] recipients)")
    sender = _address(settings.digest.sender, "[digest] sender")
    for recipient in recipients:
        _address(recipient, "[digest] recipient")
    monday = parse_iso_week(week) if week else last_complete_week(settings.trends.timezone, now())
    iso_week = iso_week_label(monday)
    if password is None and settings.smtp.username:
        password = smtp_password(settings)
    # Configuration problems surface before any work, and are not logged as send failures.
    _check_smtp(settings.smtp, password)
    database = settings.database_path
    wait = settings.storage.lock_wait_seconds
    # A writable open applies pending migrations (the digests table) before anything is read.
    with connect(database, lock_wait_seconds=wait) as con:
        already = sent_recipients(con, iso_week)
    skipped = [] if force else [r for r in recipients if r in already]
    pending = [r for r in recipients if r not in skipped]
    if not pending:
        return DeliveryReport(iso_week, (), (), tuple(skipped))

    digest = load_digest(settings, monday)
    chart = render_chart(digest)
    sent: list[str] = []
    failed: list[tuple[str, str]] = []
    local_hostname = sender.domain or "localhost"
    client: smtplib.SMTP | None = None
    try:
        for index, recipient in enumerate(pending):
            if client is None:
                try:
                    client = _smtp_connection(settings.smtp, password, local_hostname, ssl_context)
                except (OSError, smtplib.SMTPException) as exc:
                    # Unreachable, or refused us: every recipient still pending failed.
                    error, attempted = _error_text(exc), now()
                    rest = pending[index:]
                    record_send(database, [SendRecord(iso_week, r, "failed", attempted, None, error, None)
                                           for r in rest], lock_wait_seconds=wait)
                    failed.extend((r, error) for r in rest)
                    break
            message = build_message(digest, chart, sender=settings.digest.sender,
                                    recipients=[recipient], now=now())
            attempted = now()
            try:
                refused = client.send_message(message, from_addr=sender.addr_spec, to_addrs=[recipient])
                if refused:
                    raise smtplib.SMTPRecipientsRefused(refused)
            except (OSError, smtplib.SMTPException) as exc:
                error = _error_text(exc)
                record = SendRecord(iso_week, recipient, "failed", attempted, None, error, message["Message-ID"])
                failed.append((recipient, error))
                if not isinstance(exc, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused):
                    # The connection itself broke: the next recipient gets a new one.
                    client.close()
                    client = None
            else:
                record = SendRecord(iso_week, recipient, "sent", attempted, now(), None, message["Message-ID"])
                sent.append(recipient)
            # Logged at once, so a crash later in the loop cannot cause a second send.
            record_send(database, [record], lock_wait_seconds=wait)
    finally:
        if client is not None:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()
    return DeliveryReport(iso_week, tuple(sent), tuple(failed), tuple(skipped))


def write_dry_run(settings: Settings, week: str | None, out_dir: str | Path) -> tuple[Path, Path]:
    """Write the week's digest as an .eml message and an .html preview; return both paths.

    Without `week`, the latest week that has relevant articles is used, so a demo over old
    articles still shows them.
    """
    if week:
        monday = parse_iso_week(week)
    else:
        with connect(settings.database_path, read_only=True, timezone=settings.trends.timezone,
                     lock_wait_seconds=settings.storage.lock_wait_seconds) as con:
            found = latest_week(con)
        monday = found or last_complete_week(settings.trends.timezone)
    digest = load_digest(settings, monday)
    chart = render_chart(digest)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    recipients = list(dict.fromkeys(settings.digest.recipients))
    message = build_message(digest, chart, sender=settings.digest.sender, recipients=recipients)
    eml = out / f"newsmon-digest-{digest.iso_week}.eml"
    eml.write_bytes(message.as_bytes(policy=policy.SMTP))
    html = out / f"newsmon-digest-{digest.iso_week}.html"
    data_uri = "data:image/png;base64," + base64.b64encode(chart).decode("ascii")
    html.write_text(render_html(digest, data_uri), encoding="utf-8")
    return eml, html

"""The weekly digest, end to end: a real warehouse file, a real SMTP server on 127.0.0.1.

The warehouse holds 13 weeks of real article text (tests/digest_seed.py), with one story run
by four outlets and titles that try HTML and header injection. Messages are received by
aiosmtpd, parsed back with the standard library, and checked part by part.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import shutil
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from digest_seed import (
    CLUSTER_OUTLETS,
    HOSTILE_BCC_TITLE,
    HOSTILE_SCRIPT_TITLE,
    IRRELEVANT_TITLE,
    JS_URL,
    TARGET_MONDAY,
    TARGET_WEEK,
    Seeded,
    seed_warehouse,
)
from PIL import Image
from typer.testing import CliRunner

from newsmon.config import DigestSettings, Settings, SmtpSettings, StorageSettings
from newsmon.digest import (
    DigestError,
    build_message,
    clean_header_text,
    compose_digest,
    iso_week_label,
    last_complete_week,
    parse_iso_week,
    render_chart,
    safe_url,
    send_digest,
    write_dry_run,
)
from parsers.themes import load_themes
from warehouse.db import connect
from warehouse.digest import read_week, send_log

RECIPIENTS = ("alice@example.org", "bob@example.org")


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded_master(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Seed the warehouse once per module; each test works on its own copy."""
    return seed_warehouse(tmp_path_factory.mktemp("seed") / "newsmon.duckdb")


@pytest.fixture()
def seeded(seeded_master: Seeded, tmp_path: Path) -> Seeded:
    """A private copy of the seeded warehouse file."""
    path = tmp_path / "newsmon.duckdb"
    shutil.copyfile(seeded_master.path, path)
    return replace(seeded_master, path=path)


@dataclass
class Collector:
    """An aiosmtpd handler that keeps what it receives, or refuses it on demand."""

    received: list[Any] = field(default_factory=list)
    reject_with: str | None = None
    unknown_users: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.unknown_users:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reject_with:
            return self.reject_with
        envelope.auth_login = getattr(session, "auth_data", None)
        self.received.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        """Parse every received message back with the standard library."""
        return [BytesParser(policy=policy.default).parsebytes(e.original_content) for e in self.received]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def smtp_server() -> Iterator[tuple[Collector, int]]:
    """A plain SMTP server on 127.0.0.1."""
    collector = Collector()
    port = _free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield collector, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def _client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


def _settings(seeded: Seeded, port: int, **smtp: Any) -> Settings:
    return Settings(
        storage=StorageSettings(database=str(seeded.path), lock_wait_seconds=5.0),
        digest=DigestSettings(recipients=RECIPIENTS, sender="newsmon@news.example", stories_per_theme=3),
        smtp=SmtpSettings(**{"host": "127.0.0.1", "port": port, "security": "none", "timeout": 10.0, **smtp}),
    )


def _log(seeded: Seeded) -> list[Any]:
    with connect(seeded.path, read_only=True) as con:
        return send_log(con, TARGET_WEEK)


# --- the received message ----------------------------------------------------------------


def test_digest_arrives_with_both_parts_chart_clusters_and_safe_headers(
    seeded: Seeded, smtp_server: tuple[Collector, int]
) -> None:
    collector, port = smtp_server
    report = send_digest(_settings(seeded, port), TARGET_WEEK)

    assert report.iso_week == TARGET_WEEK
    assert sorted(report.sent) == sorted(RECIPIENTS) and not report.failed and not report.skipped
    # One message per recipient, so no one sees the others' addresses.
    assert sorted(tuple(e.rcpt_tos) for e in collector.received) == [(r,) for r in sorted(RECIPIENTS)]
    assert {e.mail_from for e in collector.received} == {"newsmon@news.example"}

    for envelope, message in zip(collector.received, collector.messages()):
        # Header safety: the hostile title reaches the Subject as text and adds no header.
        assert message["Bcc"] is None
        assert {k.lower() for k in message} == {
            "subject", "from", "to", "date", "message-id", "auto-submitted", "mime-version", "content-type"}
        assert message["To"] == envelope.rcpt_tos[0]
        subject = str(message["Subject"])
        assert subject.startswith("[newsmon] Open-source AI, 2026-W47: Meta releases Llama 3 open weights")
        assert "\r" not in subject and "\n" not in subject
        raw_headers = envelope.original_content.split(b"\r\n\r\n", 1)[0]
        assert not re.search(rb"^bcc:", raw_headers, re.IGNORECASE | re.MULTILINE)

        # Structure: alternative(text, related(html, png)).
        assert message.get_content_type() == "multipart/alternative"
        text_part, related = message.get_payload()
        assert text_part.get_content_type() == "text/plain"
        assert related.get_content_type() == "multipart/related"
        html_part, image_part = related.get_payload()
        assert html_part.get_content_type() == "text/html"
        assert image_part.get_content_type() == "image/png"

        # The chart: a real PNG, referenced from the HTML by its Content-ID.
        content_id = image_part["Content-ID"].strip("<>")
        html = html_part.get_content()
        assert f'src="cid:{content_id}"' in html
        png = image_part.get_content()
        with Image.open(BytesIO(png)) as image:
            assert image.format == "PNG" and image.width >= 1000 and image.height >= 500
        # No external images, no scripts, no stylesheets to fetch.
        assert re.findall(r'<img[^>]+src="([^"]+)"', html) == [f"cid:{content_id}"]
        assert "<script" not in html.lower() and "<link" not in html.lower()

        # Escaping: the title holding <script> shows as text.
        assert "&lt;script&gt;alert(1)&lt;/script&gt; Llama licence explained" in html
        # A javascript: URL never becomes a link, but its story is still there as text.
        assert "javascript:" not in html.lower()
        assert "A story whose link is a script" in html
        # Irrelevant articles stay out.
        assert IRRELEVANT_TITLE not in html and IRRELEVANT_TITLE not in text_part.get_content()

        # The story run by four outlets appears once, with the three others linked.
        lead, *copies = seeded.cluster_urls
        assert html.count(f'href="{lead}"') == 1
        for url in copies:
            assert html.count(f'href="{url}"') == 1
        assert html.count("Also covered by 3 outlets") == 1
        assert html.count("Meta releases Llama 3 open weights") == 2  # the <title> and the story
        for outlet in CLUSTER_OUTLETS[1:]:
            assert f">{outlet}</a>" in html
        for title in ("Meta puts Llama 3 weights online", "Llama 3 is here", "Llama 3 arrives"):
            assert f">{title}" not in html  # copies are links under the story, not stories

        text = text_part.get_content()
        assert text.count("Also covered by 3 outlets:") == 1
        assert text.count(lead) == 1 and all(text.count(url) == 1 for url in copies)
        assert HOSTILE_SCRIPT_TITLE in text  # plain text needs no escaping
        assert "▲ Licensing and openness" in text

    records = _log(seeded)
    assert sorted((r.recipient, r.status) for r in records) == [(r, "sent") for r in sorted(RECIPIENTS)]
    received_ids = {m["Message-ID"] for m in collector.messages()}
    assert {r.message_id for r in records} == received_ids
    assert all(r.sent_at is not None and r.error is None for r in records)


def test_second_run_does_not_send_again_unless_forced(seeded: Seeded, smtp_server: tuple[Collector, int]) -> None:
    collector, port = smtp_server
    settings = _settings(seeded, port)
    send_digest(settings, TARGET_WEEK)
    assert len(collector.received) == 2

    again = send_digest(settings, TARGET_WEEK)
    assert again.sent == () and sorted(again.skipped) == sorted(RECIPIENTS)
    assert len(collector.received) == 2

    # A recipient added later gets the week's digest; the others do not get it twice.
    wider = replace(settings, digest=replace(settings.digest, recipients=(*RECIPIENTS, "carol@example.org")))
    third = send_digest(wider, TARGET_WEEK)
    assert third.sent == ("carol@example.org",)
    assert len(collector.received) == 3

    forced = send_digest(settings, TARGET_WEEK, force=True)
    assert sorted(forced.sent) == sorted(RECIPIENTS) and forced.skipped == ()
    assert len(collector.received) == 5
    assert [r.status for r in _log(seeded)] == ["sent"] * 5


def test_failed_send_is_recorded_and_the_next_run_retries(seeded: Seeded, smtp_server: tuple[Collector, int]) -> None:
    collector, port = smtp_server
    settings = _settings(seeded, port)
    collector.reject_with = "550 5.7.1 Mailbox unavailable"
    report = send_digest(settings, TARGET_WEEK)
    assert report.sent == ()
    assert sorted(r for r, _ in report.failed) == sorted(RECIPIENTS)
    assert all("550" in error and "Mailbox unavailable" in error for _, error in report.failed)
    failed = _log(seeded)
    assert [r.status for r in failed] == ["failed", "failed"]
    assert all("550" in (r.error or "") and r.sent_at is None for r in failed)
    assert collector.received == []

    collector.reject_with = None
    retry = send_digest(settings, TARGET_WEEK)
    assert sorted(retry.sent) == sorted(RECIPIENTS) and retry.skipped == ()
    assert len(collector.received) == 2
    statuses = [(r.recipient, r.status) for r in _log(seeded)]
    assert sorted(statuses) == sorted([(r, s) for r in RECIPIENTS for s in ("failed", "sent")])


def test_one_refused_recipient_does_not_stop_the_others(seeded: Seeded, smtp_server: tuple[Collector, int]) -> None:
    collector, port = smtp_server
    collector.unknown_users = {"alice@example.org"}
    report = send_digest(_settings(seeded, port), TARGET_WEEK)
    assert report.sent == ("bob@example.org",)
    assert [r for r, _ in report.failed] == ["alice@example.org"]
    assert "550" in report.failed[0][1] and "No such user" in report.failed[0][1]
    assert [tuple(e.rcpt_tos) for e in collector.received] == [("bob@example.org",)]
    assert sorted((r.recipient, r.status) for r in _log(seeded)) == [
        ("alice@example.org", "failed"), ("bob@example.org", "sent")]


def test_unreachable_server_is_recorded_for_every_recipient(seeded: Seeded) -> None:
    port = _free_port()  # nothing listens there
    report = send_digest(_settings(seeded, port), TARGET_WEEK)
    assert report.sent == () and len(report.failed) == 2
    assert all("Connection refused" in error or "ConnectionRefused" in error for _, error in report.failed)
    assert [r.status for r in _log(seeded)] == ["failed", "failed"]


def test_starttls_with_authentication(
    seeded: Seeded, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            logins.append((auth_data.login, auth_data.password))
            ok = auth_data.login == b"digest" and auth_data.password == b"s3cret pass"
            return AuthResult(success=ok, handled=False)
        return AuthResult(success=False, handled=False)

    collector = Collector()
    port = _free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port,
                            tls_context=_server_context(certificate), require_starttls=True,
                            authenticator=authenticator, auth_required=True)
    controller.start()
    try:
        monkeypatch.setenv("NEWSMON_SMTP_PASSWORD", "s3cret pass")
        settings = _settings(seeded, port, security="starttls", username="digest")
        report = send_digest(settings, TARGET_WEEK, ssl_context=_client_context(certificate))
    finally:
        controller.stop()
    assert sorted(report.sent) == sorted(RECIPIENTS)
    assert logins == [(b"digest", b"s3cret pass")]
    assert len(collector.received) == 2
    assert collector.messages()[0].get_content_type() == "multipart/alternative"


def test_implicit_tls(seeded: Seeded, certificate: tuple[Path, Path]) -> None:
    collector = Collector()
    port = _free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port, ssl_context=_server_context(certificate))
    controller.start()
    try:
        report = send_digest(_settings(seeded, port, security="tls"), TARGET_WEEK,
                             ssl_context=_client_context(certificate))
    finally:
        controller.stop()
    assert sorted(report.sent) == sorted(RECIPIENTS)
    assert len(collector.received) == 2


def test_untrusted_certificate_is_refused_and_recorded(seeded: Seeded, certificate: tuple[Path, Path]) -> None:
    collector = Collector()
    port = _free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port, ssl_context=_server_context(certificate))
    controller.start()
    try:
        # The default context does not trust a self-signed certificate.
        report = send_digest(_settings(seeded, port, security="tls"), TARGET_WEEK)
    finally:
        controller.stop()
    assert report.sent == () and len(report.failed) == 2
    assert all("CERTIFICATE_VERIFY_FAILED" in error for _, error in report.failed)
    assert collector.received == []


def test_password_is_never_sent_without_tls(seeded: Seeded, smtp_server: tuple[Collector, int],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    collector, port = smtp_server
    monkeypatch.setenv("NEWSMON_SMTP_PASSWORD", "pw")
    with pytest.raises(DigestError, match="without TLS"):
        send_digest(_settings(seeded, port, username="digest"), TARGET_WEEK)
    assert collector.received == []


def test_configuration_errors_are_reported(seeded: Seeded, smtp_server: tuple[Collector, int]) -> None:
    _, port = smtp_server
    settings = _settings(seeded, port)
    with pytest.raises(DigestError, match="no recipients"):
        send_digest(replace(settings, digest=replace(settings.digest, recipients=())), TARGET_WEEK)
    with pytest.raises(DigestError, match="control characters"):
        send_digest(replace(settings, digest=replace(settings.digest, recipients=("a@example.org\r\nBcc: x@y",))),
                    TARGET_WEEK)
    with pytest.raises(DigestError, match="no SMTP host"):
        send_digest(replace(settings, smtp=replace(settings.smtp, host="")), TARGET_WEEK)
    with pytest.raises(DigestError, match="not an ISO week"):
        send_digest(settings, "2026-47")


# --- composing ---------------------------------------------------------------------------


def test_digest_figures_come_from_the_warehouse_views(seeded: Seeded) -> None:
    with connect(seeded.path, read_only=True, timezone="UTC") as con:
        data = read_week(con, TARGET_MONDAY)
        share = con.execute(
            "SELECT share FROM theme_weekly WHERE iso_week = ? AND theme = 'licensing-and-openness'",
            [TARGET_WEEK]).fetchone()
    digest = compose_digest(data, load_themes(), stories_per_theme=3)
    assert digest.relevant_articles == seeded.per_week_relevant[TARGET_WEEK] == 15
    assert digest.period == "16–22 Nov 2026"
    # The rise is theme_weekly's share against its mean over the 4 weeks before.
    riser = digest.risers[0]
    assert riser.theme == "licensing-and-openness" and riser.name == "Licensing and openness"
    assert share is not None and riser.share_label == f"{share[0] * 100:.0f}%"
    assert riser.arrow == "▲" and riser.change_label.startswith("+")
    assert all(m.arrow == "▼" for m in digest.fallers)
    # 12 chart weeks, every theme in each.
    assert len({s.week for s in digest.shares}) == 12
    # Sections come in order of the week's articles; each story appears once.
    assert digest.sections[0].theme == "licensing-and-openness"
    assert digest.sections[0].stories[0].coverage == 4
    urls = [s.url for section in digest.sections for s in section.stories]
    assert len(urls) == len(set(urls))
    assert all(len(section.stories) <= 3 for section in digest.sections)
    # Emerging terms from emerging_terms_at, entities from entity_weekly.
    assert "smollm4" in [term for term, _, _ in digest.terms]
    assert ("Llama", "model", 5, pytest.approx(286, abs=400)) in [
        (e, k, a, pytest.approx(m, abs=400)) for e, k, a, m in digest.entities]


def test_stories_rank_by_coverage_then_recency(seeded: Seeded) -> None:
    with connect(seeded.path, read_only=True, timezone="UTC") as con:
        data = read_week(con, TARGET_MONDAY)
    digest = compose_digest(data, load_themes(), stories_per_theme=5)
    for section in digest.sections:
        keys = [(-s.coverage, -s.published.timestamp()) for s in section.stories]
        # Leads are the earliest of their cluster, so recency is checked for singletons only.
        singles = [k for k in keys if k[0] == -1]
        assert singles == sorted(singles)
        assert keys[0][0] == min(k[0] for k in keys)


def test_chart_is_sized_for_email_and_not_blank(seeded: Seeded) -> None:
    with connect(seeded.path, read_only=True, timezone="UTC") as con:
        data = read_week(con, TARGET_MONDAY)
    png = render_chart(compose_digest(data, load_themes()))
    with Image.open(BytesIO(png)) as image:
        assert image.size == (1200, 640)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000) or []
    assert len(colours) > 50  # lines, labels and legend, not an empty canvas


def test_header_text_is_cleaned() -> None:
    assert clean_header_text(HOSTILE_BCC_TITLE) == "Meta releases Llama 3 open weights Bcc: x@y.example"
    assert clean_header_text("a\u2028b\x00c\u200bd") == "a b c d"
    assert len(clean_header_text("x" * 500)) == 160


def test_only_http_links_are_kept() -> None:
    assert safe_url("https://example.org/a?b=1") == "https://example.org/a?b=1"
    assert safe_url(JS_URL) is None
    assert safe_url("data:text/html,hi") is None
    assert safe_url("https://example.org/a b") is None
    assert safe_url("//example.org/x") is None


def test_weeks() -> None:
    assert parse_iso_week("2026-W47") == date(2026, 11, 16)
    assert parse_iso_week("2020-W53") == date(2020, 12, 28)
    assert iso_week_label(date(2027, 1, 1)) == "2026-W53"
    with pytest.raises(DigestError):
        parse_iso_week("2021-W53")  # 2021 has 52 weeks
    monday = datetime(2026, 11, 23, 6, 30, tzinfo=dt.UTC)
    assert last_complete_week("UTC", monday) == date(2026, 11, 16)
    # Sunday evening in New York is already Monday in UTC: the zone decides the week.
    assert last_complete_week("America/New_York", datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)) == date(2026, 11, 9)


@pytest.mark.parametrize(("week", "period"), [
    ("2026-W47", "16–22 Nov 2026"), ("2026-W49", "30 Nov–6 Dec 2026"), ("2026-W01", "29 Dec 2025–4 Jan 2026")])
def test_period_names_the_days_of_the_week(week: str, period: str) -> None:
    from warehouse.digest import WeekData

    monday = parse_iso_week(week)
    data = WeekData(week=monday, iso_week=week, relevant_articles=0, prior_relevant_avg=None,
                    shares=(), moves=(), articles=(), entities=(), terms=())
    digest = compose_digest(data, load_themes())
    assert digest.period == period
    assert digest.sections == () and digest.risers == () and digest.subject.endswith(": a quiet week")


def test_build_message_refuses_header_injection_through_sender() -> None:
    from newsmon.digest import Digest

    digest = Digest(iso_week=TARGET_WEEK, week_start=TARGET_MONDAY, period="", subject="s\r\nBcc: x@y",
                    relevant_articles=0, prior_label="", risers=(), fallers=(), sections=(),
                    entities=(), terms=(), shares=())
    message = build_message(digest, b"\x89PNG", sender="n@example.org", recipients=["a@example.org"])
    assert message["Subject"] == "s Bcc: x@y" and message["Bcc"] is None
    with pytest.raises(DigestError):
        build_message(digest, b"", sender="n@example.org\nBcc: x@y", recipients=[])


# --- dry run and the command line ---------------------------------------------------------


def test_dry_run_writes_eml_and_self_contained_html(seeded: Seeded, tmp_path: Path) -> None:
    settings = Settings(storage=StorageSettings(database=str(seeded.path)),
                        digest=DigestSettings(recipients=RECIPIENTS))
    eml, html = write_dry_run(settings, None, tmp_path / "out")  # None: the latest week with articles
    assert eml == tmp_path / "out" / "newsmon-digest-2026-W47.eml"
    assert html == tmp_path / "out" / "newsmon-digest-2026-W47.html"
    message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert message["To"] == ", ".join(RECIPIENTS)
    assert [p.get_content_type() for p in message.walk()] == [
        "multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png"]
    page = html.read_text(encoding="utf-8")
    assert re.findall(r'<img[^>]+src="(data:image/png;base64,[^"]{1000,})"', page)
    assert "cid:" not in page
    assert _log(seeded) == []  # a dry run sends nothing and logs nothing


def test_dry_run_of_a_week_without_articles_says_so(seeded: Seeded, tmp_path: Path) -> None:
    settings = Settings(storage=StorageSettings(database=str(seeded.path)))
    eml, html = write_dry_run(settings, "2026-W20", tmp_path)
    message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert message["Subject"] == "[newsmon] Open-source AI, 2026-W20: a quiet week"
    assert message["To"] is None  # no recipients configured
    assert "No relevant stories were stored for this week." in html.read_text(encoding="utf-8")


def test_cli_dry_run_prints_paths(seeded: Seeded, tmp_path: Path) -> None:
    from newsmon.cli import app

    config = tmp_path / "newsmon.toml"
    config.write_text(f'[storage]\ndatabase = "{seeded.path}"\n', encoding="utf-8")
    out = tmp_path / "dry"
    result = CliRunner().invoke(app, ["digest", "--week", TARGET_WEEK, "--dry-run", "--out", str(out),
                                      "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert str(out / "newsmon-digest-2026-W47.eml") in result.output
    assert str(out / "newsmon-digest-2026-W47.html") in result.output
    assert (out / "newsmon-digest-2026-W47.html").stat().st_size > 10_000


def test_cli_sends_once_and_reports(seeded: Seeded, smtp_server: tuple[Collector, int], tmp_path: Path) -> None:
    from newsmon.cli import app

    collector, port = smtp_server
    config = tmp_path / "newsmon.toml"
    config.write_text(
        f'[storage]\ndatabase = "{seeded.path}"\n'
        f'[digest]\nrecipients = ["alice@example.org"]\nsender = "newsmon@news.example"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n', encoding="utf-8")
    runner = CliRunner()
    first = runner.invoke(app, ["digest", "--week", TARGET_WEEK, "--config", str(config)])
    assert first.exit_code == 0, first.output
    assert f"sent {TARGET_WEEK} to alice@example.org" in first.output
    second = runner.invoke(app, ["digest", "--week", TARGET_WEEK, "--config", str(config)])
    assert "already sent" in second.output and "--force" in second.output
    assert len(collector.received) == 1
    collector.reject_with = "550 no"
    forced = runner.invoke(app, ["digest", "--week", TARGET_WEEK, "--force", "--config", str(config)])
    assert forced.exit_code == 1
    assert "failed 2026-W47 to alice@example.org" in forced.output


# --- the Prefect flow --------------------------------------------------------------------


@pytest.mark.slow
def test_flow_sends_once_and_writes_dry_run(
    prefect_harness: None, seeded: Seeded, smtp_server: tuple[Collector, int], tmp_path: Path
) -> None:
    from flows.digest import weekly_digest

    collector, port = smtp_server
    config = tmp_path / "newsmon.toml"
    config.write_text(
        f'[storage]\ndatabase = "{seeded.path}"\n'
        f'[digest]\nrecipients = ["alice@example.org"]\nsender = "newsmon@news.example"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n', encoding="utf-8")
    first = weekly_digest(config_path=str(config), week=TARGET_WEEK)
    assert first == {"status": "sent", "week": TARGET_WEEK, "sent": ["alice@example.org"],
                     "skipped": [], "failed": []}
    second = weekly_digest(config_path=str(config), week=TARGET_WEEK)
    assert second["sent"] == [] and second["skipped"] == ["alice@example.org"]
    assert len(collector.received) == 1
    assert collector.messages()[0]["Subject"].startswith("[newsmon] Open-source AI, 2026-W47")

    dry = weekly_digest(config_path=str(config), week=TARGET_WEEK, dry_run=True, out_dir=str(tmp_path / "dry"))
    assert dry["status"] == "dry-run"
    assert Path(str(dry["html"])).is_file() and Path(str(dry["eml"])).is_file()
    assert len(collector.received) == 1

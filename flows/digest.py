"""The weekly digest flow: compose one week's digest and send it, or write it to files.

Two tasks, because they are the steps that can fail on their own: writing the dry-run files
and delivering over SMTP. Delivery logs every attempt in the `digests` table, so a rerun (or
a retry of this flow) sends only to the recipients that did not get the week's digest.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE as NO_CACHE

from newsmon.config import Settings, load_settings
from newsmon.digest import DeliveryReport, send_digest, write_dry_run

__all__ = ["DigestDeliveryFailed", "weekly_digest"]


class DigestDeliveryFailed(RuntimeError):
    """At least one recipient did not get the digest; the attempt is logged for a retry."""


@task(name="write-digest-files", cache_policy=NO_CACHE)
def write_files_task(settings: Settings, week: str | None, out_dir: str) -> tuple[str, str]:
    """Write the week's digest as .eml and .html files."""
    eml, html = write_dry_run(settings, week, out_dir)
    return str(eml), str(html)


@task(name="send-digest", cache_policy=NO_CACHE)
def send_task(settings: Settings, week: str | None, force: bool) -> DeliveryReport:
    """Send the week's digest to every recipient not yet sent it."""
    return send_digest(settings, week, force=force)


def _summary(report: DeliveryReport) -> str:
    lines = [f"# Weekly digest {report.iso_week}", "", "| recipient | result |", "| --- | --- |"]
    lines += [f"| {r} | sent |" for r in report.sent]
    lines += [f"| {r} | already sent |" for r in report.skipped]
    lines += [f"| {r} | failed: {error.replace('|', '/')} |" for r, error in report.failed]
    return "\n".join(lines)


@flow(name="weekly-digest")
def weekly_digest(
    config_path: str | None = None,
    week: str | None = None,
    dry_run: bool = False,
    out_dir: str | None = None,
    force: bool = False,
) -> dict[str, object]:
    """Send the weekly digest of `week` (default: the last complete week), or write it to files."""
    settings = load_settings(config_path)
    logger = get_run_logger()
    if dry_run:
        folder = out_dir or str(Path(settings.database_path).parent / "digest")
        eml, html = write_files_task(settings, week, folder)
        logger.info("Dry-run digest written: %s and %s", eml, html)
        return {"status": "dry-run", "eml": eml, "html": html}
    report = send_task(settings, week, force)
    create_markdown_artifact(_summary(report), key="weekly-digest", description="Weekly digest delivery")
    result: dict[str, object] = {
        "status": "failed" if report.failed else "sent",
        "week": report.iso_week,
        "sent": list(report.sent),
        "skipped": list(report.skipped),
        "failed": [list(pair) for pair in report.failed],
    }
    if report.failed:
        names = ", ".join(r for r, _ in report.failed)
        raise DigestDeliveryFailed(f"digest {report.iso_week} not delivered to {names}; rerun to retry")
    logger.info("Digest %s sent to %d, already sent to %d", report.iso_week, len(report.sent), len(report.skipped))
    return result

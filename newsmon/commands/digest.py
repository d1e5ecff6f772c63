"""Commands of the digest area: `digest`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsmon.commands.options import ConfigOption, settings_or_exit
from newsmon.errors import UserError

__all__ = ["digest", "register"]


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""
    app.command("digest")(digest)


def digest(
    week: Annotated[str | None, typer.Option(
        "--week", help="ISO week to cover, e.g. 2026-W47 (default: the last complete week).",
        show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Write the message (.eml) and an HTML preview instead of sending.")] = False,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for --dry-run files (default: digest/ beside the database).",
        show_default=False)] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Send again to recipients who already got this week's digest.")] = False,
    config: ConfigOption = None,
) -> None:
    """Email the weekly digest to the configured recipients, once a week unless --force.

    Every attempt is logged in the `digests` table; a failed send is retried by the next run.
    """
    settings = settings_or_exit(config)
    if out is not None and not dry_run:
        raise UserError("--out only applies with --dry-run")
    # Imported here so `newsmon --help` does not pay for matplotlib and duckdb.
    from newsmon.digest import iso_week_label, last_complete_week, send_digest, write_dry_run
    from parsers.themes import ThemesError
    from warehouse.db import WarehouseError

    try:
        if dry_run:
            label = week or iso_week_label(last_complete_week(settings.trends.timezone))
            folder = out or settings.database_path.parent / "digest"
            eml, html = write_dry_run(settings, label, folder)
            typer.echo(f"Digest {label} written (not sent):")
            typer.echo(f"  message: {eml}")
            typer.echo(f"  preview: {html}")
            return
        report = send_digest(settings, week, force=force)
    except (WarehouseError, ThemesError) as exc:
        raise UserError(str(exc)) from None
    for recipient in report.sent:
        typer.echo(f"sent {report.iso_week} to {recipient}")
    for recipient in report.skipped:
        typer.echo(f"already sent {report.iso_week} to {recipient} (use --force to send again)")
    for recipient, error in report.failed:
        typer.secho(f"failed {report.iso_week} to {recipient}: {error}", fg=typer.colors.RED, err=True)
    if report.failed:
        raise typer.Exit(1)

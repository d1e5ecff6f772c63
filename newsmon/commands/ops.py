"""Commands of the ops area: `serve`, `status`, `backfill`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from newsmon.commands.options import ConfigOption, settings_or_exit
from newsmon.errors import UserError

__all__ = ["backfill", "human_size", "register", "serve", "status"]


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""
    app.command("serve")(serve)
    app.command("status")(status)
    app.command("backfill")(backfill)


def serve(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Address of the local Prefect server, when one is started.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the local Prefect server (0: any free port).")] = 4200,
) -> None:
    """Serve the nightly ingest and the weekly digest on their schedules until stopped.

    Without PREFECT_API_URL, a local Prefect server is started (home and database under the
    data folder) and stopped again on exit; its UI address is printed.
    """
    from newsmon.serve import build_deployments, serve_forever

    settings = settings_or_exit(config)
    config_path = str(config.resolve()) if config else None
    console = Console()
    schedule = settings.schedule
    build_deployments(settings, config_path)  # a bad cron or timezone fails here, in one line
    console.print(f"nightly-ingest/nightly: [bold]{schedule.nightly_cron}[/bold] ({schedule.timezone})")
    console.print(f"weekly-digest/weekly:   [bold]{schedule.digest_cron}[/bold] ({schedule.timezone})")
    serve_forever(settings, config_path, host=host, port=port, echo=console.print)


def human_size(size: int) -> str:
    """Format a byte count for people: 1.5 MB."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def status(
    config: ConfigOption = None,
    runs: Annotated[int, typer.Option(help="How many recent runs to list.")] = 10,
    failing_nights: Annotated[int, typer.Option(help="List feeds failing at least this many polls in a row.")] = 3,
    stale_days: Annotated[int, typer.Option(help="List feeds with no new article for this many days.")] = 14,
) -> None:
    """Show the last runs, failing and stale feeds, and the database's size."""
    from warehouse.db import WarehouseError
    from warehouse.status import status_report

    settings = settings_or_exit(config)
    try:
        report = status_report(settings.database_path, runs=runs, failing_after=failing_nights,
                               stale_days=stale_days, lock_wait=settings.storage.lock_wait_seconds)
    except WarehouseError as exc:
        raise UserError(str(exc)) from None
    console = Console()
    table = Table(title="Last run" if len(report.runs) == 1 else f"Last {len(report.runs)} runs")
    for column in ("run", "started", "status", "feeds ok", "304/same", "feeds failed",
                   "new", "dup", "failed", "from feed", "errors"):
        table.add_column(column, justify="left" if column in ("run", "started", "status") else "right")
    for r in report.runs:
        state = r.status if r.finished_at or r.status != "running" else "running (or killed)"
        table.add_row(r.run_id, _when(r.started_at), state, str(r.feeds_ok), str(r.feeds_not_modified),
                      str(r.feeds_failed), str(r.articles_new), str(r.articles_duplicate),
                      str(r.articles_failed), str(r.articles_fallback), str(r.errors))
    console.print(table if report.runs else "No runs yet.")
    if report.failing:
        failing = Table(title=f"Feeds failing {report.failing_after}+ nights in a row")
        for column in ("feed", "nights", "last error", "last polled"):
            failing.add_column(column)
        for f in report.failing:
            failing.add_row(f.name or f.url, str(f.consecutive_failures), f.last_error or "-",
                            _when(f.last_polled_at))
        console.print(failing)
    else:
        console.print(f"No feed has failed {report.failing_after} nights in a row.")
    if report.stale:
        stale = Table(title=f"Feeds with no new article for {report.stale_days}+ days")
        for column in ("feed", "last new article", "days"):
            stale.add_column(column)
        for s in report.stale:
            stale.add_row(s.name or s.url, _when(s.last_new_at) if s.last_new_at else "never",
                          f"{s.days:.0f}" if s.days is not None else "-")
        console.print(stale)
    else:
        console.print(f"No feed has gone {report.stale_days} days without a new article.")
    size = report.size
    console.print(f"Database {report.database}: {human_size(size.file_bytes)} on disk "
                  f"({human_size(size.used_bytes)} in use), {size.articles} articles, "
                  f"{size.pages} raw pages")


def backfill(
    since: Annotated[str, typer.Option(help="Earliest publication date to fill, YYYY-MM-DD.")],
    config: ConfigOption = None,
    site: Annotated[list[str] | None, typer.Option(
        help="Site to read sitemaps from (repeatable; default: the hosts of the configured feeds).")] = None,
    max_urls: Annotated[int, typer.Option(help="Most pages to consider in this call; run again to continue.")] = 500,
    max_sitemaps: Annotated[int, typer.Option(help="Most sitemap documents to read per site.")] = 50,
    rediscover: Annotated[bool, typer.Option(help="Read the sitemaps again even if read before.")] = False,
    pause: Annotated[float, typer.Option(help="Seconds to pause between batches.")] = 1.0,
) -> None:
    """Fill earlier weeks from the sites' sitemaps: filtered by date and relevance, resumable."""
    from newsmon.backfill import parse_since

    settings_or_exit(config)
    parse_since(since)  # a bad date fails here, before Prefect starts
    from flows.backfill import backfill as backfill_flow
    from newsmon.prefect_api import flow_api

    with flow_api():
        summary = backfill_flow(since=since, config_path=str(config) if config else None,
                                sites=list(site) if site else None, max_urls=max_urls,
                                max_sitemaps=max_sitemaps, rediscover=rediscover, pause_seconds=pause)
    table = Table(title=f"Backfill since {summary['since']}")
    for column in ("discovered", "considered", "stored", "duplicate", "known", "old", "irrelevant", "failed"):
        table.add_column(column, justify="right")
    table.add_row(*[str(summary[c]) for c in ("discovered", "considered", "stored", "duplicate",
                                                "known", "old", "irrelevant", "failed")])
    console = Console()
    console.print(table)
    if summary["more_pending"]:
        console.print("More URLs are pending: run the same command again to continue.")

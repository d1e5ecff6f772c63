"""Commands of the ingest area: `run`, `demo`, `reextract`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from newsmon.commands.options import ConfigOption, settings_or_exit
from newsmon.config import Settings
from newsmon.errors import UserError

__all__ = ["register", "write_demo_config"]


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""
    app.command("run")(run)
    app.command("demo")(demo)
    app.command("reextract")(reextract)


def run(config: ConfigOption = None) -> None:
    """Run the nightly ingest once: poll feeds, fetch new articles, extract, tag, store."""
    settings = settings_or_exit(config)  # a bad config fails here, in one line, before Prefect starts
    from flows.nightly import nightly_ingest, warm_up_extraction
    from newsmon.prefect_api import flow_api

    # The extraction processes' imports run on the other core while Prefect's API starts.
    warm_up_extraction(settings)
    # The flow loads the settings itself (it also runs from deployments); without --config it
    # finds $NEWSMON_CONFIG or ./newsmon.toml the same way.
    with flow_api():
        summary = nightly_ingest(config_path=str(config) if config else None)
    _print_summary(Console(), summary)
    if summary.get("status") != "completed":
        raise typer.Exit(1)


def _print_summary(console: Console, summary: dict[str, object]) -> None:
    table = Table(title=f"Run {summary['run_id']}: {summary['status']}", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, key in (("feeds ok", "feeds_ok"), ("feeds not modified", "feeds_not_modified"),
                       ("feeds failed", "feeds_failed"), ("articles new", "articles_new"),
                       ("articles already stored", "articles_duplicate"),
                       ("articles failed", "articles_failed"),
                       ("articles from feed content", "articles_fallback"),
                       ("failures recorded in fetch_errors", "errors")):
        table.add_row(label, str(summary[key]))
    console.print(table)


def write_demo_config(path: Path, database: Path, site_base: str, feeds: list[tuple[str, str]]) -> Path:
    """Write the demo's config: local database, loopback feeds allowed."""
    lines = [
        "# Written by `newsmon demo`: the bundled sample feeds, served on 127.0.0.1.",
        "[storage]",
        f"database = {json.dumps(str(database))}",
        "",
        "[fetch]",
        "allow_private_addresses = true   # the sample site is served on loopback",
        "retries = 2",
        "backoff_seconds = 0.2",
        "",
    ]
    for name, feed_path in feeds:
        lines += ["[[feeds]]", f"name = {json.dumps(name)}", f"url = {json.dumps(site_base + feed_path)}", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def demo(
    config: ConfigOption = None,
    folder: Annotated[Path, typer.Option(help="Where the demo keeps its site, config and database.")] = Path("data/demo"),
    fresh: Annotated[bool, typer.Option(help="Start from an empty demo database.")] = False,
) -> None:
    """Serve the bundled sample feeds on 127.0.0.1 and run the nightly flow against them."""
    from flows.nightly import nightly_ingest
    from newsmon.demo_site import LocalSite, build_demo_site
    from newsmon.prefect_api import flow_api
    from warehouse.reports import articles_per_source, articles_per_theme

    settings_or_exit(config)  # a bad --config still fails clearly; the demo runs on its own config
    console = Console()
    folder = folder.resolve()
    database = folder / "newsmon.duckdb"
    if fresh and database.exists():
        database.unlink()
    site_root = folder / "site"
    # A fixed port keeps feed and article URLs stable, so a rerun gets 304s and fetches nothing.
    with LocalSite.on_preferred_port(site_root) as server:
        site = build_demo_site(site_root, server.base_url, now=datetime.now(UTC))
        console.print(f"Serving {len(site.feeds)} sample feeds and {site.article_count} articles "
                      f"on {server.base_url}")
        demo_config = write_demo_config(folder / "newsmon.toml", database, server.base_url,
                                        [(f.name, f.path) for f in site.feeds])
        with flow_api():
            summary = nightly_ingest(config_path=str(demo_config))
    _print_summary(console, summary)

    per_source = Table(title="Articles per source")
    per_source.add_column("source")
    per_source.add_column("articles", justify="right")
    per_source.add_column("relevant", justify="right")
    for source, count, relevant in articles_per_source(database):
        per_source.add_row(source, str(count), str(relevant))
    console.print(per_source)
    per_theme = Table(title="Relevant articles per theme")
    per_theme.add_column("theme")
    per_theme.add_column("articles", justify="right")
    for theme, count in articles_per_theme(database):
        per_theme.add_row(theme, str(count))
    console.print(per_theme)

    demo_settings = settings_or_exit(demo_config)
    _demo_digest(console, demo_settings, folder)
    console.print(f"\nDatabase: [bold]{database}[/bold]")
    console.print(f"Query it:  newsmon query --config {demo_config} "
                  "\"SELECT theme, count(*) FROM article_themes GROUP BY ALL ORDER BY 2 DESC\"")
    console.print(f"Trends:    newsmon trends --config {demo_config}")
    console.print(f"Or with the duckdb CLI: duckdb -readonly {database}")


def _demo_digest(console: Console, settings: Settings, folder: Path) -> None:
    try:
        from newsmon.digest import write_dry_run
    except ImportError:
        return
    eml, html = write_dry_run(settings, None, folder / "digest")
    console.print(f"\nDry-run digest (no SMTP configured): {html}\n  message: {eml}")


def reextract(
    config: ConfigOption = None,
    batch: Annotated[int, typer.Option(help="Pages per batch.")] = 200,
) -> None:
    """Re-run text extraction over stored raw HTML, without refetching."""
    from newsmon.reextract import reextract_all

    settings = settings_or_exit(config)
    if not settings.database_path.exists():
        raise UserError(f"{settings.database_path}: no database yet")
    updated = reextract_all(settings, batch_size=batch)
    console = Console()
    console.print(f"Re-extracted {updated} stored pages in {settings.database_path}")
    if updated:
        # New text means new relevance, themes and entities.
        from newsmon.retagging import retag_database
        from parsers.entities import load_gazetteer
        from parsers.themes import load_tagger

        report = retag_database(
            settings.database_path,
            load_tagger(settings.themes.file or None, kind=settings.themes.tagger),
            load_gazetteer(settings.themes.entities_file or None),
            lock_wait_seconds=settings.storage.lock_wait_seconds)
        console.print(f"Re-tagged {report.articles} articles ({report.relevant} relevant)")

"""Commands of the feeds area: `feeds list`, `feeds import FILE.opml`, `feeds export`."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from newsmon.commands.options import ConfigOption, settings_or_exit
from newsmon.config import FeedConfig, find_config_file, settings_from_mapping
from newsmon.errors import UserError
from parsers.opml import OpmlError, OpmlFeed, parse_opml, render_opml

__all__ = ["append_feeds", "register"]

feeds_app = typer.Typer(help="List, import and export the feed subscriptions (OPML).",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""
    app.add_typer(feeds_app, name="feeds")


@feeds_app.command("list")
def list_feeds(config: ConfigOption = None) -> None:
    """List the configured feeds."""
    settings = settings_or_exit(config)
    table = Table(title=f"Feeds ({settings.source})")
    table.add_column("name")
    table.add_column("url")
    for feed in settings.feeds:
        table.add_row(feed.name, feed.url)
    Console().print(table)


@feeds_app.command("export")
def export_feeds(
    config: ConfigOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Export the configured feeds as OPML."""
    settings = settings_or_exit(config)
    document = render_opml([OpmlFeed(f.name, f.url) for f in settings.feeds])
    if out:
        out.write_text(document, encoding="utf-8")
        typer.echo(f"Wrote {len(settings.feeds)} feeds to {out}", err=True)
    else:
        typer.echo(document, nl=False)


@feeds_app.command("import")
def import_feeds(
    opml_file: Annotated[Path, typer.Argument(help="OPML file exported from a feed reader.")],
    config: ConfigOption = None,
) -> None:
    """Add the feeds of an OPML file to the config file (./newsmon.toml unless --config)."""
    try:
        feeds = parse_opml(opml_file.read_bytes())
    except OSError as exc:
        raise UserError(f"{opml_file}: cannot read: {exc.strerror}") from None
    except OpmlError as exc:
        raise UserError(f"{opml_file}: {exc}") from None
    target = _config_target(config)
    added, skipped = append_feeds(target, [FeedConfig(f.name, f.url) for f in feeds])
    typer.echo(f"Added {added} feeds to {target} ({skipped} already there or invalid)")


def _config_target(config: Path | None) -> Path:
    if config:
        return config
    found = find_config_file(None, os.environ)
    return found if found is not None else Path("newsmon.toml")


def append_feeds(path: Path, feeds: list[FeedConfig]) -> tuple[int, int]:
    """Append feeds not yet present to a config file; return (added, skipped)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None
    current = settings_from_mapping(data, source=str(path))
    blocks: list[str] = []
    if "feeds" not in data:
        # The file relied on the built-in list; write it out so importing adds to it.
        blocks += [_feed_block(feed) for feed in current.feeds]
    existing = {feed.url for feed in current.feeds}
    added = skipped = 0
    for feed in feeds:
        if feed.url in existing or not feed.url.startswith(("http://", "https://")):
            skipped += 1
            continue
        existing.add(feed.url)
        blocks.append(_feed_block(feed))
        added += 1
    if blocks:
        separator = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        path.write_text(text + separator + "\n".join(blocks), encoding="utf-8")
    return added, skipped


def _feed_block(feed: FeedConfig) -> str:
    # JSON strings are valid TOML basic strings.
    return (f"[[feeds]]\nname = {json.dumps(feed.name, ensure_ascii=False)}\n"
            f"url = {json.dumps(feed.url)}\n")

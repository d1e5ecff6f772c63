"""The `newsmon` command line: one typer app, commands registered per area."""

from __future__ import annotations

import os
import sys

import typer

from newsmon.commands import digest, feeds, ingest, ops, themes, warehouse

__all__ = ["app", "main"]

app = typer.Typer(
    name="newsmon",
    help="Nightly news monitoring for open-source AI: feeds, extraction, themes, DuckDB, digest.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for area in (ingest, feeds, themes, warehouse, digest, ops):
    area.register(app)


def main() -> None:
    """Run the command line, turning expected errors into one clear line."""
    from newsmon.errors import UserError

    # Prefect's ephemeral API gives up after 20 s by default, which a busy 2-core machine can
    # exceed on the first flow run; wait longer unless the user chose a value.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    try:
        app()
    except UserError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)

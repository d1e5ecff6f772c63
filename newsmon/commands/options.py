"""Options shared by every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsmon.config import ConfigError, Settings, load_settings
from newsmon.errors import UserError

__all__ = ["ConfigOption", "settings_or_exit"]

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Config file (default: $NEWSMON_CONFIG, then ./newsmon.toml, then built-in defaults).",
        show_default=False,
    ),
]


def settings_or_exit(config: Path | None) -> Settings:
    """Load the settings, turning a bad config into a one-line error."""
    try:
        return load_settings(config)
    except ConfigError as exc:
        raise UserError(str(exc)) from None

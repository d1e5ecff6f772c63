"""The README is the manual: every command the CLI has is documented there."""

from __future__ import annotations

from typing import Any

import typer.main

from newsmon.cli import app
from newsmon.paths import PROJECT_ROOT


def _command_names(command: Any, prefix: str = "") -> list[str]:
    if getattr(command, "commands", None):
        names: list[str] = []
        for name, sub in command.commands.items():
            names += _command_names(sub, f"{prefix}{name} ")
        return names
    return [prefix.strip()]


def test_every_command_is_in_the_readme() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    names = _command_names(typer.main.get_command(app))
    assert len(names) >= 15
    missing = [name for name in names if f"newsmon {name}" not in readme and f"`{name}" not in readme]
    assert not missing, f"undocumented commands: {missing}"

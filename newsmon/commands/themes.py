"""Commands of the themes area: `tag` (JSON lines in, tags out) and `retag` (the warehouse)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from newsmon.commands.options import ConfigOption, settings_or_exit
from newsmon.errors import UserError

__all__ = ["TaggerKind", "register", "tag_lines"]


class TaggerKind(str, Enum):
    lexical = "lexical"
    semantic = "semantic"


TaggerOption = Annotated[
    TaggerKind | None,
    typer.Option("--tagger", help="Tagger to use (default: the themes.tagger setting).", show_default=False),
]
ThemesOption = Annotated[
    Path | None,
    typer.Option("--themes", help="Themes file (default: the themes.file setting, else seeds/themes.toml).", show_default=False),
]


def _load_tagger(themes_file: str, kind: str) -> Any:
    from parsers.themes import ThemesError, load_tagger

    try:
        return load_tagger(themes_file or None, kind=kind)
    except ThemesError as exc:
        raise UserError(str(exc)) from None


def tag_lines(lines: Iterable[str], tagger: Any) -> Iterator[dict[str, Any]]:
    """Tag JSON lines {"id", "text"[, "title"]}; yield {"id", "relevant", "themes", "scores"}."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"line {number}: not valid JSON: {exc.msg}") from None
        if not isinstance(item, dict) or "id" not in item or not isinstance(item.get("text"), str):
            raise UserError(f'line {number}: need an object with "id" and a string "text"')
        title = item.get("title")
        result = tagger.tag(item["text"], title if isinstance(title, str) else None)
        yield {
            "id": item["id"],
            "relevant": result.relevant,
            "themes": [tag.theme for tag in result.tags],
            "scores": dict(result.scores),
        }


def _open_input(path: str) -> TextIO:
    if path == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror}") from None


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""

    @app.command("tag")
    def tag_command(
        jsonl: Annotated[
            str,
            typer.Option("--jsonl", help='JSON lines {"id": ..., "text": ...} to tag; "-" reads standard input.'),
        ],
        tagger_kind: TaggerOption = None,
        themes: ThemesOption = None,
        config: ConfigOption = None,
    ) -> None:
        """Tag texts: print {"id", "relevant", "themes", "scores"} per input line."""
        settings = settings_or_exit(config)
        kind = tagger_kind.value if tagger_kind else settings.themes.tagger
        tagger = _load_tagger(str(themes) if themes else settings.themes.file, kind)
        handle = _open_input(jsonl)
        try:
            for row in tag_lines(handle, tagger):
                sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        finally:
            if handle is not sys.stdin:
                handle.close()
        sys.stdout.flush()

    @app.command("retag")
    def retag_command(
        tagger_kind: TaggerOption = None,
        themes: ThemesOption = None,
        batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Articles per batch.")] = 2000,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
        config: ConfigOption = None,
    ) -> None:
        """Recompute relevance, themes and entities of every stored article from its stored text."""
        from newsmon.retagging import retag_database
        from parsers.entities import GazetteerError, load_gazetteer
        from warehouse.db import WarehouseError

        settings = settings_or_exit(config)
        kind = tagger_kind.value if tagger_kind else settings.themes.tagger
        tagger = _load_tagger(str(themes) if themes else settings.themes.file, kind)
        try:
            gazetteer = load_gazetteer(settings.themes.entities_file or None)
        except GazetteerError as exc:
            raise UserError(str(exc)) from None

        def progress(done: int, total: int) -> None:
            if not quiet:
                typer.echo(f"tagged {done:,}/{total:,} articles", err=True)

        try:
            report = retag_database(
                settings.storage.database,
                tagger,
                gazetteer,
                batch_size=batch_size,
                lock_wait_seconds=settings.storage.lock_wait_seconds,
                progress=progress,
            )
        except WarehouseError as exc:
            raise UserError(str(exc)) from None
        typer.echo(
            f"retagged {report.articles:,} articles with themes version {report.themes_version}: "
            f"{report.relevant:,} relevant, {report.theme_rows:,} theme tags, "
            f"{report.entity_rows:,} entity rows in {report.seconds:.1f} s "
            f"(swap {report.swap_seconds:.2f} s)"
        )

"""Commands of the warehouse area: `query`, `trends`, `export`."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.table import Table

from newsmon.commands.options import ConfigOption, settings_or_exit
from newsmon.config import Settings
from newsmon.errors import UserError

__all__ = ["OutputFormat", "column_chart", "export", "query", "register", "sparkline", "trends"]


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""
    app.command("query")(query)
    app.command("trends")(trends)
    app.command("export")(export)


@contextmanager
def _reader(settings: Settings) -> Iterator[Any]:
    # Imported here so `newsmon --help` does not pay for duckdb.
    from warehouse.db import WarehouseError, connect

    try:
        with connect(settings.database_path, read_only=True,
                     lock_wait_seconds=settings.storage.lock_wait_seconds,
                     timezone=settings.trends.timezone) as con:
            # DuckDB draws its own progress bar on long queries, into our standard output.
            con.execute("SET enable_progress_bar = false")
            yield con
    except WarehouseError as exc:
        raise UserError(str(exc)) from None


def query(
    sql: Annotated[str, typer.Argument(help="SQL to run, e.g. \"SELECT * FROM theme_weekly LIMIT 5\".")],
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.table,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of standard output.")] = None,
    max_rows: Annotated[int, typer.Option(help="Rows shown by --format table; the other formats write all.")] = 100,
    config: ConfigOption = None,
) -> None:
    """Run read-only SQL on the warehouse (views: see docs/warehouse.md) and print the result."""
    from warehouse.queries import QueryError, run_query

    settings = settings_or_exit(config)
    if format is OutputFormat.parquet and out is None:
        raise UserError("--format parquet writes a file: add --out FILE")
    with _reader(settings) as con:
        try:
            table = run_query(con, sql)
        except QueryError as exc:
            raise UserError(str(exc)) from None
    if format is OutputFormat.parquet:
        import pyarrow.parquet as pq

        assert out is not None
        pq.write_table(table, out)
        typer.echo(f"wrote {table.num_rows} rows to {out}", err=True)
        return
    names = list(table.column_names)
    rows = [tuple(r.values()) for r in table.to_pylist()] if names else []
    with _text_sink(out) as sink:
        if format is OutputFormat.csv:
            _write_csv(sink, names, rows)
        elif format is OutputFormat.json:
            _write_json(sink, names, rows)
        else:
            _write_table(sink, names, rows, max_rows, to_terminal=out is None)


@contextmanager
def _text_sink(out: Path | None) -> Iterator[TextIO]:
    if out is None:
        yield sys.stdout
        return
    try:
        with out.open("w", encoding="utf-8", newline="") as handle:
            yield handle
    except OSError as exc:
        raise UserError(f"{out}: cannot write: {exc.strerror or exc}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    plain = _plain(value)
    if isinstance(plain, (dict, list)):
        return json.dumps(plain, ensure_ascii=False)
    return str(plain)


def _write_csv(sink: TextIO, names: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    writer = csv.writer(sink, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([_cell(v) for v in row])


def _write_json(sink: TextIO, names: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    # One record per line inside one array: valid JSON, and still readable line by line.
    sink.write("[")
    for index, row in enumerate(rows):
        record = {name: _plain(value) for name, value in zip(names, row)}
        sink.write(("\n" if index == 0 else ",\n") + json.dumps(record, ensure_ascii=False))
    sink.write("\n]\n" if rows else "]\n")


def _write_table(sink: TextIO, names: Sequence[str], rows: Sequence[tuple[Any, ...]],
                 max_rows: int, *, to_terminal: bool) -> None:
    console = Console(file=sink, width=None if to_terminal else 200,
                      force_terminal=False if not to_terminal else None)
    if not names:
        console.print("(no result set)")
        return
    table = Table(show_header=True, header_style="bold", show_lines=False)
    for name in names:
        table.add_column(name, overflow="fold")
    for row in rows[:max_rows]:
        table.add_row(*[("NULL" if v is None else _cell(v)) for v in row])
    console.print(table)
    hidden = len(rows) - max_rows
    shown = f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
    console.print(f"{shown}" + (f", {hidden} not shown (raise --max-rows or use --format csv)" if hidden > 0 else ""))


_BLOCKS = " ▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float]) -> str:
    """Render values as one line of block characters scaled to their maximum."""
    top = max(values, default=0.0)
    if top <= 0:
        return _BLOCKS[1] * len(values)
    return "".join(_BLOCKS[max(1, round(v / top * 8))] if v > 0 else _BLOCKS[1] for v in values)


def column_chart(values: Sequence[float], labels: Sequence[str], *, height: int = 8,
                 fmt: str = "{:.0%}") -> str:
    """Render a vertical bar chart in eighth blocks, one column per value, with a scale."""
    if height < 1 or not values:
        return ""
    top, low = max(values), min(values)
    # Start the axis above zero when every bar is tall, or a 5 % change would be invisible;
    # the bottom label shows where the axis starts.
    base = low - (top - low) if top > 0 and low > 0.6 * top else 0.0
    span = top - base
    scale = [(v - base) / span * height if span > 0 else 0.0 for v in values]
    axis_width = max(len(fmt.format(top)), len(fmt.format(base)))
    lines = []
    for level in range(height, 0, -1):
        label = fmt.format(top) if level == height else (fmt.format(base) if level == 1 else "")
        cells = []
        for filled in scale:
            part = filled - (level - 1)
            cells.append("██" if part >= 1 else (_BLOCKS[round(part * 8)] * 2 if part > 0 else "  "))
        lines.append(f"{label:>{axis_width}} │" + " ".join(cells))
    width = 3 * len(values) - 1
    lines.append(" " * axis_width + " └" + "─" * width)
    if labels:
        first, last = labels[0], labels[-1]
        gap = max(1, width - len(first) - len(last))
        lines.append(" " * (axis_width + 2) + first + (" " * gap + last if len(labels) > 1 else ""))
    return "\n".join(lines)


def trends(
    theme: Annotated[str | None, typer.Option("--theme", "-t", help="One theme id (default: every theme).")] = None,
    weeks: Annotated[int, typer.Option("--weeks", "-w", min=1, max=520, help="How many ISO weeks, ending at the latest.")] = 12,
    emerging: Annotated[bool, typer.Option("--emerging", "-e", help="Also list the latest week's emerging terms.")] = False,
    config: ConfigOption = None,
) -> None:
    """Show theme shares of relevant articles per ISO week, as a table and a terminal chart."""
    from warehouse.queries import emerging_terms, known_themes, theme_trend, use_theme_phrases

    settings = settings_or_exit(config)
    console = Console()
    with _reader(settings) as con:
        themes = known_themes(con)
        if theme is not None and theme not in themes:
            known = ", ".join(themes) or "none yet"
            raise UserError(f"no articles tagged with theme {theme!r} (known: {known})")
        rows = theme_trend(con, weeks=weeks, theme=theme)
        terms: list[tuple[str, int, float, float]] = []
        if rows and emerging:
            phrases = _current_key_phrases(settings)
            if phrases is not None:
                use_theme_phrases(con, phrases)
            terms = emerging_terms(con, limit=8)
    if not rows:
        console.print("No relevant articles in the warehouse yet.")
        return
    week_list = sorted({(r.week, r.iso_week) for r in rows})
    labels = [iso for _, iso in week_list]
    span = f"{labels[0]} to {labels[-1]} ({settings.trends.timezone})"
    if theme is not None:
        table = Table(title=f"Theme {theme}: share of relevant articles, {span}")
        for name, justify in (("week", "left"), ("articles", "right"), ("relevant", "right"), ("share", "right")):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for r in rows:
            table.add_row(r.iso_week, str(r.articles), str(r.relevant_articles), f"{r.share:.1%}")
        console.print(table)
        console.print(f"\nshare of relevant articles tagged {theme}, per week")
        console.print(column_chart([r.share for r in rows], labels), highlight=False)
    else:
        by_theme: dict[str, dict[str, Any]] = {}
        for r in rows:
            by_theme.setdefault(r.theme, {})[r.iso_week] = r
        table = Table(title=f"Theme share of relevant articles, {span}")
        table.add_column("theme")
        table.add_column("trend (share)")
        table.add_column("articles", justify="right")
        table.add_column(f"{labels[-1]}", justify="right")
        table.add_column("share", justify="right")
        table.add_column("vs week before", justify="right")
        for name in sorted(by_theme, key=lambda t: -by_theme[t][labels[-1]].share
                           if labels[-1] in by_theme[t] else 0.0):
            series = [by_theme[name][w].share if w in by_theme[name] else 0.0 for w in labels]
            latest = by_theme[name].get(labels[-1])
            before = by_theme[name].get(labels[-2]) if len(labels) > 1 else None
            change = ""
            if latest is not None and before is not None:
                change = f"{(latest.share - before.share) * 100:+.1f} pp"
            table.add_row(
                name, sparkline(series),
                str(sum(r.articles for r in by_theme[name].values())),
                str(latest.articles if latest else 0),
                f"{latest.share:.1%}" if latest else "0.0%",
                change,
            )
        console.print(table)
        totals = {r.iso_week: r.relevant_articles for r in rows}
        console.print("\nrelevant articles per week")
        console.print(column_chart([float(totals[w]) for w in labels], labels, fmt="{:,.0f}"),
                      highlight=False)
    if terms:
        console.print("\nemerging terms in " + labels[-1] + ": "
                      + ", ".join(f"{t} ({n})" for t, n, _, _ in terms), highlight=False)


def _current_key_phrases(settings: Settings) -> dict[str, list[str]] | None:
    # The themes file as configured now, so a theme added today already hides its phrases;
    # without a readable file the phrases stored at the last ingest apply.
    from parsers.themes import ThemesError, load_themes

    try:
        themes = load_themes(settings.themes.file or None)
    except (ThemesError, OSError) as exc:  # a broken themes file must not stop the report
        typer.echo(f"warning: themes file not read ({exc}); using the stored key phrases", err=True)
        return None
    return {theme.id: list(theme.phrases) for theme in themes.themes}


def export(
    parquet: Annotated[Path, typer.Option("--parquet", help="Folder to write articles/, article_themes/, article_entities/ into.")],
    config: ConfigOption = None,
) -> None:
    """Export articles and their theme and entity tags as Parquet, partitioned by month."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from warehouse.queries import EXPORT_TABLES, export_parquet

    settings = settings_or_exit(config)
    console = Console(stderr=True)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} tables"),
                        TimeElapsedColumn(), console=console, disable=not console.is_terminal)
    with _reader(settings) as con, progress:
        task = progress.add_task("exporting", total=len(EXPORT_TABLES))

        def advance(name: str, rows: int) -> None:
            progress.update(task, advance=1, description=f"exported {name} ({rows:,} rows)")

        try:
            result = export_parquet(con, parquet, on_table=advance)
        except OSError as exc:
            raise UserError(f"{parquet}: cannot write: {exc}") from None
        except Exception as exc:
            import duckdb

            if isinstance(exc, duckdb.Error):
                raise UserError(f"export failed: {exc}") from None
            raise
    summary = ", ".join(f"{name} {rows:,} rows" for name, rows in result.rows.items())
    typer.echo(f"exported to {result.directory} ({result.files} Parquet files, by month): {summary}")


"""Progress bars show on a terminal and stay out of logs and pipes."""

from __future__ import annotations

import io

from rich.console import Console

from newsmon.progress import progress_bar


def test_bar_is_drawn_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    with progress_bar("articles", 10, console=console) as advance:
        advance(4)
        advance(6)
    text = out.getvalue()
    assert "articles" in text and "10/10" in text


def test_bar_is_hidden_when_output_is_not_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=80)
    with progress_bar("articles", 10, console=console) as advance:
        advance(10)
    assert out.getvalue() == ""

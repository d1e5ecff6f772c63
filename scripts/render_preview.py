"""Render a digest's HTML preview to a PNG with headless Chromium, to see what readers see.

    python scripts/render_preview.py data/digest/newsmon-digest-2026-W47.html [out.png]

Chromium runs with a fresh profile in a temporary folder, no GPU, no background
networking, and a host resolver that answers nothing: the preview is self-contained (the
chart is a data: URI), so any lookup would be a bug and must not leave the machine.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["chromium_command", "find_chromium", "main", "render_preview"]

WINDOW = (800, 2000)


def find_chromium() -> str | None:
    """Return the path of a Chromium executable on PATH, if any."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_command(chromium: str, html: Path, png: Path, profile: Path,
                     window: tuple[int, int] = WINDOW) -> list[str]:
    """Return the Chromium command line that screenshots `html` into `png`."""
    return [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        # Resolve no host at all: a self-contained preview needs none.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        f"--window-size={window[0]},{window[1]}",
        html.resolve().as_uri(),
    ]


def render_preview(html: Path, png: Path, *, chromium: str | None = None,
                   window: tuple[int, int] = WINDOW, timeout: float = 90.0) -> Path:
    """Screenshot the HTML file into a PNG with headless Chromium and return the PNG path."""
    executable = chromium or find_chromium()
    if executable is None:
        raise FileNotFoundError("chromium is not on PATH (Debian: apt-get install chromium)")
    png = png.resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="newsmon-chromium-") as profile:
        result = subprocess.run(
            chromium_command(executable, html, png, Path(profile), window),
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    if result.returncode != 0 or not png.is_file():
        raise RuntimeError(f"chromium failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return png


def main(argv: list[str] | None = None) -> int:
    """Render the preview named on the command line and print the PNG's path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path, help="the .html preview written by `newsmon digest --dry-run`")
    parser.add_argument("png", type=Path, nargs="?", help="output PNG (default: beside the HTML)")
    args = parser.parse_args(argv)
    png = args.png or args.html.with_suffix(".png")
    try:
        print(render_preview(args.html, png))
    except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

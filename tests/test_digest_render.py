"""Render the digest's HTML preview with headless Chromium and check what a reader would see."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from digest_seed import TARGET_WEEK, seed_warehouse
from PIL import Image, ImageStat

from newsmon.config import DigestSettings, Settings, StorageSettings
from newsmon.digest import write_dry_run
from newsmon.paths import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "render_preview.py"


def _chromium() -> str | None:
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(_chromium() is None,
                       reason="chromium is not on PATH (Debian: apt-get install chromium; .ci/run installs it)"),
]


def test_preview_renders_in_chromium(tmp_path: Path) -> None:
    seeded = seed_warehouse(tmp_path / "newsmon.duckdb")
    settings = Settings(storage=StorageSettings(database=str(seeded.path)),
                        digest=DigestSettings(recipients=("alice@example.org",)))
    _, html = write_dry_run(settings, TARGET_WEEK, tmp_path / "out")
    png = tmp_path / "preview.png"

    result = subprocess.run([sys.executable, str(SCRIPT), str(html), str(png)],
                            capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(png)
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.size == (800, 2000)
        rgb = image.convert("RGB")
        # Not blank: text, the chart and the coloured theme bars give real variance.
        assert max(ImageStat.Stat(rgb).stddev) > 20
        colours = rgb.getcolors(maxcolors=1_000_000) or []
        assert len(colours) > 500
        # The page body is white on a grey background, 600 px wide and centred.
        assert rgb.getpixel((400, 60)) == (255, 255, 255)
        assert rgb.getpixel((20, 60)) == (241, 243, 244)
        # The chart's leading theme colour (licensing, #009e73) is drawn somewhere.
        assert any(_close(c, (0, 158, 115)) for _, c in colours)


def _close(colour: tuple[int, int, int], target: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, target))

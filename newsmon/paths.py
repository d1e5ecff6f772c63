"""Locations of the files that ship with newsmon."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_ENTITIES_FILE", "DEFAULT_THEMES_FILE", "PROJECT_ROOT", "SAMPLE_DIR", "SEEDS_DIR"]

# newsmon is installed editable from its clone; the sample data and seeds live beside the code.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEEDS_DIR = PROJECT_ROOT / "seeds"
SAMPLE_DIR = PROJECT_ROOT / "sample"
DEFAULT_THEMES_FILE = SEEDS_DIR / "themes.toml"
DEFAULT_ENTITIES_FILE = SEEDS_DIR / "entities.toml"

from __future__ import annotations

import tomllib
from pathlib import Path

from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.config import DEFAULT_FEEDS, load_settings
from parsers.opml import parse_opml

runner = CliRunner()

OPML = b"""<?xml version="1.0"?>
<opml version="1.0"><head><title>reader</title></head><body>
  <outline text="AI">
    <outline type="rss" text="Simon Willison" xmlUrl="https://simonwillison.net/atom/everything/"/>
    <outline type="rss" title="HF blog" text="hf" xmlUrl="https://huggingface.co/blog/feed.xml"/>
    <outline type="rss" text="bad" xmlUrl="ftp://example.com/feed"/>
  </outline>
</body></opml>"""


def test_import_adds_new_feeds_to_config(tmp_path: Path) -> None:
    opml = tmp_path / "subs.opml"
    opml.write_bytes(OPML)
    config = tmp_path / "newsmon.toml"
    config.write_text('[storage]\ndatabase = "x.duckdb"\n')
    result = runner.invoke(app, ["feeds", "import", str(opml), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "Added 1 feeds" in result.output
    settings = load_settings(config, environ={})
    urls = [f.url for f in settings.feeds]
    # The built-in list is written out, then the new feed; HF was already there, ftp refused.
    assert urls[: len(DEFAULT_FEEDS)] == [f.url for f in DEFAULT_FEEDS]
    assert urls[-1] == "https://simonwillison.net/atom/everything/"
    assert urls.count("https://huggingface.co/blog/feed.xml") == 1
    assert settings.storage.database == "x.duckdb"
    # Importing again adds nothing.
    again = runner.invoke(app, ["feeds", "import", str(opml), "--config", str(config)])
    assert "Added 0 feeds" in again.output
    assert len(tomllib.loads(config.read_text())["feeds"]) == len(urls)


def test_export_round_trips(tmp_path: Path) -> None:
    config = tmp_path / "newsmon.toml"
    config.write_text('[[feeds]]\nname = "A & B <news>"\nurl = "https://example.org/feed?a=1&b=2"\n')
    result = runner.invoke(app, ["feeds", "export", "--config", str(config)])
    assert result.exit_code == 0, result.output
    feeds = parse_opml(result.output.encode())
    assert [(f.name, f.url) for f in feeds] == [("A & B <news>", "https://example.org/feed?a=1&b=2")]


def test_import_rejects_bad_opml(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.opml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
                    "<opml><body><outline xmlUrl='&b;'/></body></opml>")
    result = runner.invoke(app, ["feeds", "import", str(bomb), "--config", str(tmp_path / "c.toml")])
    assert result.exit_code != 0
    assert not (tmp_path / "c.toml").exists()

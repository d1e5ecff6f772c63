"""`newsmon reextract`: extraction re-run over stored raw HTML, with no network at all."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import zstandard
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.paths import SAMPLE_DIR
from warehouse.store import ArticleRecord, store_articles

NOW = datetime(2026, 11, 20, tzinfo=UTC)
TRUTH = {t["file"]: t for t in json.loads((SAMPLE_DIR / "pages" / "truth.json").read_text())}
PAGE = "0a29620f9c4347758c146ed06dab6f3e.html"


def test_reextract_replaces_text_from_stored_html(tmp_path: Path) -> None:
    database = tmp_path / "news.duckdb"
    html = (SAMPLE_DIR / "pages" / PAGE).read_bytes()
    stale = ArticleRecord(
        id="a1", url="https://www.tagblatt.ch/kultur/x", title=None, source="feed name",
        published_at=NOW, date_source="feed", fetched_at=NOW, language=None, author=None,
        text="Only the feed summary.", text_source="feed", relevant=False, relevance=0.0,
        themes_version="v", feed_url=None, guid=None, summary=None, content_hash="h1",
        html_zstd=zstandard.ZstdCompressor().compress(html), content_type="text/html")
    # A second article without stored HTML must be left alone.
    store_articles(database, [stale, replace(stale, id="a2", url="https://x/2", content_hash="h2",
                                             html_zstd=None)], "r1")
    config = tmp_path / "newsmon.toml"
    config.write_text(f'[storage]\ndatabase = "{database}"\n[extract]\nworkers = 2\n')

    result = CliRunner().invoke(app, ["reextract", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "Re-extracted 1 stored pages" in result.output
    assert "Re-tagged 2 articles" in result.output

    con = duckdb.connect(str(database), read_only=True)
    try:
        rows = dict(con.execute("SELECT id, text FROM articles").fetchall())
        meta = con.execute("SELECT text_source, author, published_at FROM articles WHERE id = 'a1'").fetchone()
        versions = con.execute("SELECT DISTINCT themes_version FROM articles").fetchall()
    finally:
        con.close()
    for snippet in TRUTH[PAGE]["with"]:
        assert snippet in rows["a1"]
    assert rows["a2"] == "Only the feed summary."
    assert meta is not None and meta[0] == "page" and meta[1] == TRUTH[PAGE]["author"]
    assert meta[2] == NOW  # the stored date and its source are kept
    assert versions != [("v",)]  # tags were recomputed from the new text

"""Minimal rows of the large warehouse tables, for the key and bulk-append tests."""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")


def articles(*ids: str, hashes: tuple[str, ...] | None = None) -> pa.Table:
    """Return an articles table with the required columns."""
    n = len(ids)
    return pa.table({
        "id": list(ids), "url": [f"https://example.org/{i}" for i in ids],
        "title": [f"Title {i}" for i in ids], "date_source": ["feed"] * n,
        "fetched_at": pa.array([1_700_000_000_000_000] * n, pa.int64()).cast(TS),
        "text": [f"text {i}" for i in ids], "text_source": ["page"] * n,
        "relevant": [True] * n, "content_hash": list(hashes or [f"h-{i}" for i in ids]),
    })


def themes(*pairs: tuple[str, str]) -> pa.Table:
    """Return article_themes rows for (article_id, theme) pairs."""
    return pa.table({
        "article_id": [a for a, _ in pairs], "url": [f"https://example.org/{a}" for a, _ in pairs],
        "theme": [t for _, t in pairs], "score": [0.9] * len(pairs),
        "evidence": ["e"] * len(pairs), "themes_version": ["v"] * len(pairs),
    })


def urls(*pairs: tuple[str, str]) -> pa.Table:
    """Return article_urls rows for (url, article_id) pairs."""
    return pa.table({"url": [u for u, _ in pairs], "article_id": [a for _, a in pairs]})

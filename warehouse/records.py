"""The rows the nightly ingest hands to the warehouse: plain frozen dataclasses.

Kept apart from `warehouse.store` so the extraction workers that build them need not load
DuckDB or Arrow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "ArticleRecord",
    "EntityRow",
    "ErrorRecord",
    "FeedState",
    "RunCounts",
    "StoreResult",
    "ThemeRow",
]


@dataclass(frozen=True)
class ThemeRow:
    theme: str
    score: float
    evidence: str


@dataclass(frozen=True)
class EntityRow:
    entity: str
    kind: str
    mentions: int


@dataclass(frozen=True)
class ArticleRecord:
    id: str
    url: str
    title: str | None
    source: str | None
    published_at: datetime
    date_source: str
    fetched_at: datetime
    language: str | None
    author: str | None
    text: str
    text_source: str
    relevant: bool
    relevance: float
    themes_version: str
    feed_url: str | None
    guid: str | None
    summary: str | None
    content_hash: str
    aliases: tuple[str, ...] = ()  # other URLs that lead here (the feed's raw link, redirects)
    themes: tuple[ThemeRow, ...] = ()
    entities: tuple[EntityRow, ...] = ()
    final_url: str | None = None
    status: int | None = None
    content_type: str | None = None
    html_zstd: bytes | None = None


@dataclass(frozen=True)
class ErrorRecord:
    url: str
    stage: str
    error: str
    at: datetime
    feed_url: str | None = None


@dataclass(frozen=True)
class FeedState:
    url: str
    name: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_sha256: str | None = None
    last_polled_at: datetime | None = None
    last_status: int | None = None
    last_full_fetch_at: datetime | None = None
    last_new_entry_at: datetime | None = None
    consecutive_failures: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class RunCounts:
    feeds_ok: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    articles_new: int = 0
    articles_duplicate: int = 0
    articles_failed: int = 0
    articles_fallback: int = 0


@dataclass(frozen=True)
class StoreResult:
    new: int
    duplicate: int
    new_ids: tuple[str, ...] = field(default_factory=tuple)

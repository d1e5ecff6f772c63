"""Re-run extraction over stored raw HTML: better extractor settings without refetching."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import zstandard

from newsmon.config import Settings
from parsers.articles import extract_article
from parsers.text import normalise_text
from warehouse.store import stored_pages, update_extractions

__all__ = ["reextract_all"]


def _extract_row(item: tuple[str, str, str | None, bytes, bool]) -> dict[str, object] | None:
    article_id, url, content_type, html_zstd, fast = item
    html = zstandard.ZstdDecompressor().decompress(html_zstd)
    extracted = extract_article(html, url, content_type=content_type, fast=fast)
    text = normalise_text(extracted.text)
    if not text:
        return None
    return {"id": article_id, "title": extracted.title, "author": extracted.author,
            "language": extracted.language, "source": extracted.site_name, "text": text}


def reextract_all(settings: Settings, batch_size: int = 200) -> int:
    """Extract every stored page again and update the articles' text and metadata; return the count."""
    path = settings.database_path
    lock_wait = settings.storage.lock_wait_seconds
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["newsmon.processing", "newsmon.pool_preload"])
    updated = 0
    after = ""
    with ProcessPoolExecutor(max_workers=max(1, settings.extract.workers), mp_context=context) as pool:
        while True:
            # Read one batch and release the file before the CPU work, so readers get in.
            page = stored_pages(path, after_id=after, limit=batch_size, lock_wait=lock_wait)
            if not page:
                break
            after = page[-1][0]
            items = [(aid, url, ctype, blob, settings.extract.fast) for aid, url, ctype, blob, _ in page]
            rows = [row for row in pool.map(_extract_row, items) if row is not None]
            updated += update_extractions(path, rows, lock_wait=lock_wait)
    return updated

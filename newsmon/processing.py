"""Turn fetched pages and feed entries into warehouse records: extract, date, tag, hash.

This is the CPU-bound middle of the night. `process_batch` fans out over a process pool so
both cores extract; each worker loads the tagger once. Everything here is deterministic and
free of network and database I/O, so the same code serves the nightly flow, `reextract`,
and a Dask worker.
"""

from __future__ import annotations

import gc
import multiprocessing
import multiprocessing.context
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import forkserver

import zstandard

from newsmon.heap import release_free_memory
from parsers.articles import ExtractedArticle, extract_article
from parsers.dates import choose_published, is_plausible
from parsers.entities import find_entities, load_gazetteer
from parsers.text import content_hash, normalise_text
from parsers.themes import load_tagger
from warehouse.records import ArticleRecord, EntityRow, ThemeRow

__all__ = ["PageJob", "Processed", "TaggingConfig", "extraction_pool", "process_batch", "process_one",
           "start_fork_server", "start_workers"]


@dataclass(frozen=True)
class TaggingConfig:
    themes_file: str | None = None
    entities_file: str | None = None
    kind: str = "lexical"
    fast_extraction: bool = False
    keep_raw_html: bool = True


@dataclass(frozen=True)
class PageJob:
    """One new article: its feed entry and, when the fetch worked, the page."""

    article_id: str
    url: str
    feed_url: str
    feed_name: str
    guid: str | None
    entry_title: str | None
    entry_summary: str | None
    entry_text: str | None  # the feed's own content, the fallback when the page fails
    entry_author: str | None
    entry_published: datetime | None
    first_seen: datetime
    aliases: tuple[str, ...] = ()
    body: bytes | None = None  # None: the page could not be fetched
    final_url: str | None = None
    status: int | None = None
    content_type: str | None = None
    fetch_error: str | None = None


@dataclass(frozen=True)
class Processed:
    """The record to store, or None with the reason it could not be made."""

    job_url: str
    record: ArticleRecord | None
    fallback_reason: str | None  # set when feed content stood in for the page
    error: str | None  # set when nothing could be stored
    # Set when the page's text was stored although its fetch reported a problem (a body cut
    # at the size cap), so the run still records it in fetch_errors.
    note: str | None = None


class _Worker:
    """Per-process state: the tagger and gazetteer, loaded once."""

    def __init__(self, config: TaggingConfig) -> None:
        self.config = config
        self.tagger = load_tagger(config.themes_file, kind=config.kind)
        self.gazetteer = load_gazetteer(config.entities_file)
        # zstd's default level: 0.43 ms and 24.2 KB per sample page, against 1.53 ms and
        # 22.6 KB at level 6, on the two cores the night is short of.
        self.compressor = zstandard.ZstdCompressor(level=3)
        self.pages_since_trim = 0


_WORKER: _Worker | None = None  # one per pool process, set by the pool's initializer


def _init_worker(config: TaggingConfig) -> None:
    global _WORKER
    _WORKER = _Worker(config)
    gc.freeze()  # the tagger lives as long as the worker: no need to scan it on every collection


# Pages between two releases of the worker's free heap memory (newsmon.heap): trimming costs
# about a millisecond, while each page's parse leaves some megabytes behind in malloc's arenas.
_PAGES_PER_TRIM = 20


def _run_in_worker(job: PageJob) -> Processed:
    assert _WORKER is not None, "pool initializer did not run"
    processed = _process(job, _WORKER)
    _WORKER.pages_since_trim += 1
    if _WORKER.pages_since_trim >= _PAGES_PER_TRIM:
        _WORKER.pages_since_trim = 0
        release_free_memory()
    return processed


def process_one(job: PageJob, config: TaggingConfig) -> Processed:
    """Process one job in this process (tests, small batches)."""
    return _process(job, _Worker(config))


@contextmanager
def extraction_pool(config: TaggingConfig, workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """Keep `workers` extraction processes, each with its tagger loaded, for a whole night.

    The processes start with the first batch, or earlier through `start_workers`.
    """
    if workers <= 1:
        yield None
        return
    context = _fork_server_context()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=_init_worker, initargs=(config,)) as pool:
        yield pool


def _fork_server_context() -> multiprocessing.context.ForkServerContext:
    # forkserver: children fork from a clean single-threaded server, not from a process
    # that runs Prefect's threads, and the server preloads the heavy imports once.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["newsmon.processing", "newsmon.pool_preload"])
    return context


def start_fork_server() -> None:
    """Start the extraction pool's fork server now, without waiting for it.

    Its imports take 3-5 s of one core; started before Prefect's API or the feed polls, they
    are done by the time a night has pages to extract. The server lives as long as this
    process and serves every pool it opens.
    """
    _fork_server_context()
    forkserver.ensure_running()


def start_workers(pool: ProcessPoolExecutor | None, workers: int) -> None:
    """Start the pool's processes in the background and return at once."""
    # Launching the first process waits for the fork server's imports (about 3 s on a cold
    # start), and each worker then loads its tagger: done from a thread, all of it overlaps
    # whatever the caller does next (the night: polling its feeds on the other core).
    if pool is not None:
        threading.Thread(target=_submit_started, args=(pool, workers), name="extraction-pool-start",
                         daemon=True).start()


def _submit_started(pool: ProcessPoolExecutor, workers: int) -> None:
    with suppress(RuntimeError):  # the pool was shut down first: nothing to start
        for _ in range(workers):
            pool.submit(_started)


def _started() -> None:
    """Nothing: submitted once per worker to make the pool start them."""


def process_batch(jobs: Sequence[PageJob], config: TaggingConfig, workers: int,
                  pool: ProcessPoolExecutor | None = None) -> list[Processed]:
    """Process jobs on the pool (or a pool of `workers` made for this batch), order kept."""
    if not jobs:
        return []
    if pool is not None:
        return list(pool.map(_run_in_worker, jobs, chunksize=1))
    if workers <= 1 or len(jobs) == 1:
        worker = _Worker(config)
        return [_process(job, worker) for job in jobs]
    with extraction_pool(config, workers) as own_pool:
        return process_batch(jobs, config, workers, own_pool)


def _process(job: PageJob, worker: _Worker) -> Processed:
    extracted: ExtractedArticle | None = None
    if job.body is not None:
        # The feed's date wins over the page's, so a dated entry spares the page's date search;
        # a feed's author likewise spares the search for a byline in the page's markup.
        feed_dated = job.entry_published is not None and is_plausible(job.entry_published, datetime.now(UTC))
        extracted = extract_article(job.body, job.final_url or job.url, content_type=job.content_type,
                                    fast=worker.config.fast_extraction, want_date=not feed_dated,
                                    want_author=not job.entry_author)
    page_text = extracted.text if extracted else ""  # extract_article normalised it
    fallback_reason: str | None = None
    if page_text:
        text, text_source = page_text, "page"
    else:
        text = normalise_text(job.entry_text or job.entry_summary or "")
        text_source = "feed"
        fallback_reason = job.fetch_error or "page yielded no text"
        if not text:
            return Processed(job.url, None, None,
                             f"{fallback_reason}; the feed gives no content to fall back on")

    title = (extracted.title if extracted and extracted.title else None) or job.entry_title
    published, date_source = choose_published(
        job.entry_published, extracted.published_at if extracted else None, job.url, job.first_seen
    )
    result = worker.tagger.tag(text, title=title)
    entities = find_entities(f"{title or ''}\n{text}", worker.gazetteer)
    html_zstd = None
    if job.body is not None and worker.config.keep_raw_html:
        html_zstd = worker.compressor.compress(job.body)
    record = ArticleRecord(
        id=job.article_id,
        url=job.url,
        title=title,
        source=(extracted.site_name if extracted and extracted.site_name else None) or job.feed_name,
        published_at=published,
        date_source=date_source,
        fetched_at=job.first_seen,
        language=extracted.language if extracted else None,
        author=(extracted.author if extracted and extracted.author else None) or job.entry_author,
        text=text,
        text_source=text_source,
        relevant=result.relevant,
        relevance=result.relevance,
        themes_version=result.themes_version,
        feed_url=job.feed_url,
        guid=job.guid,
        summary=job.entry_summary,
        # Empty pages must not collide with each other, so their hash falls back to the URL.
        content_hash=content_hash(text) if text else content_hash(f"url:{job.url}"),
        aliases=job.aliases,
        themes=tuple(ThemeRow(t.theme, t.score, t.evidence) for t in result.tags),
        entities=tuple(EntityRow(e.entity, e.kind, e.mentions) for e in entities),
        final_url=job.final_url,
        status=job.status,
        content_type=job.content_type,
        html_zstd=html_zstd,
    )
    note = job.fetch_error if text_source == "page" else None
    return Processed(job.url, record, fallback_reason, None, note)

"""Build the sample web site that `newsmon demo` and the ingest benchmark serve on loopback.

The demo site is made from the bundled real data in `sample/` (see NOTICE):

- every blog post in `sample/articles/` becomes an HTML page under `/blog/` (Markdown
  rendered with the `markdown` package, front matter stripped, with `<title>`,
  `<meta name=author>`, `<meta property=article:published_time>` and `og:site_name`);
- the English news pages of `sample/pages/` are copied under `/news/` byte for byte;
- four feeds under `/feeds/` point at them, each showing a different habit of real feeds:
  RSS 2.0 with `content:encoded`, Atom 1.0 with summaries only, RSS whose links carry
  `utm_*` tracking parameters (and repeat five posts that another feed also lists), and
  RSS with root-relative links.

Dates: the sample posts were published between 2021 and 2025, which would leave a
monitor's weekly trends empty. Each group (blog posts, news pages) keeps its real order
(by original date, then file name) and is spread evenly over the `weeks` weeks before
`now` (taken to the whole hour), floored to the minute; a post's page states the same date
as its feed entries and names its original date and URL in the footer. The output depends
only on the sample and on `now`'s hour, and files whose bytes did not change are not
rewritten, so a rebuild within the hour keeps every validator: a second demo run served on
the same port (`LocalSite.on_preferred_port`) gets 304 for every feed.

The bench site turns the corpus pages into any number of distinct article pages: copy k of
a page gets the marker " (copy k)" after every occurrence of the page's annotated main-text
snippets and at the end of every paragraph, so its extracted text, and hence its content
hash, differs from every other copy while the HTML keeps its real size and structure.
"""

from __future__ import annotations

import email.utils
import html
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

import markdown

from newsmon.local_server import DEMO_PORT, LocalSite, MultiHostSite
from newsmon.paths import SAMPLE_DIR

__all__ = [
    "BLOG_SITE_NAME",
    "DEMO_PORT",
    "TRACKING_QUERY",
    "DemoSite",
    "LocalSite",
    "MultiHostSite",
    "SiteFeed",
    "build_bench_site",
    "build_demo_site",
]

BLOG_SITE_NAME = "Hugging Face Blog"
TRACKING_QUERY = "utm_source=newsletter&utm_medium=rss&utm_campaign=weekly-digest"
_ORIGINAL_BLOG = "https://huggingface.co/blog/"
# How many of the newest posts the tracked-links feed repeats from the other blog feeds.
_NEWSLETTER_REPEATS = 5
_SUMMARY_CHARS = 280

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n.*?\n---[ \t]*\n", re.DOTALL)
_HTML_LANG = re.compile(rb"<html[^>]*?\blang\s*=\s*[\"']?([A-Za-z]+)", re.IGNORECASE)
_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
_PARAGRAPH = re.compile(r"<p[^>]*>(.*?)</p>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_P_CLOSE = re.compile(rb"</p\s*>", re.IGNORECASE)
_BODY_OPEN = re.compile(rb"<body[^>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class SiteFeed:
    name: str
    path: str  # URL path on the site, e.g. "/feeds/hf-blog.xml"


@dataclass(frozen=True)
class DemoSite:
    root: Path  # folder with every file to serve
    feeds: tuple[SiteFeed, ...]
    article_count: int
    article_paths: tuple[str, ...] = ()  # URL path of every distinct article page


@dataclass(frozen=True)
class _Entry:
    path: str  # site path of the article page
    title: str
    published: datetime
    author: str
    summary: str
    content_html: str = ""


def build_demo_site(root: Path, base_url: str, *, now: datetime | None = None,
                    weeks: int = 10, sample: Path = SAMPLE_DIR) -> DemoSite:
    """Write the demo site (blog pages, news pages, four feeds) into root."""
    if weeks < 1:
        raise ValueError("weeks must be at least 1")
    root = Path(root)
    base = base_url.rstrip("/")
    moment = _utc(now)
    posts = _load_posts(sample / "articles")
    post_dates = _spread(len(posts), moment, weeks)
    entries: dict[str, _Entry] = {}
    # One converter, reset per post: building its extension registries costs as much as a post.
    converter = markdown.Markdown(extensions=["fenced_code", "tables"], output_format="html")
    for post, published in zip(posts, post_dates, strict=True):
        page, entry = _render_post(converter, post, published, base)
        _write(root / entry.path.lstrip("/"), page)
        entries[post["file"]] = entry

    news = _english_pages(sample / "pages")
    news_entries: list[_Entry] = []
    for (page_path, meta), published in zip(news, _spread(len(news), moment, weeks)):
        target = f"/news/{page_path.name}"
        _write(root / target.lstrip("/"), page_path.read_bytes())
        news_entries.append(_news_entry(target, page_path, meta, published))

    open_posts = [entries[p["file"]] for p in posts if p.get("group") != "ml-engineering"]
    engineering = [entries[p["file"]] for p in posts if p.get("group") == "ml-engineering"]
    newsletter = sorted([*engineering, *open_posts[-_NEWSLETTER_REPEATS:]],
                        key=lambda e: (e.published, e.path))
    feeds = (
        SiteFeed(f"{BLOG_SITE_NAME} (sample, RSS)", "/feeds/hf-blog.xml"),
        SiteFeed(f"{BLOG_SITE_NAME} (sample, Atom)", "/feeds/hf-blog.atom"),
        SiteFeed("Open ML newsletter (sample, tracked links)", "/feeds/newsletter.xml"),
        SiteFeed("Web news (sample, relative links)", "/feeds/web-news.xml"),
    )
    _write(root / "feeds/hf-blog.xml", _rss(
        feeds[0].name, base + "/blog/", "Posts about open models, with full content.",
        open_posts[0::2], lambda e: base + e.path, with_content=True))
    _write(root / "feeds/hf-blog.atom", _atom(
        feeds[1].name, base, base + feeds[1].path, open_posts[1::2]))
    _write(root / "feeds/newsletter.xml", _rss(
        feeds[2].name, base + "/", "Engineering posts and the week's highlights.",
        newsletter, lambda e: f"{base}{e.path}?{TRACKING_QUERY}", guid_prefix="newsletter:"))
    _write(root / "feeds/web-news.xml", _rss(
        feeds[3].name, "/", "Saved news pages, linked relative to this feed.",
        news_entries, lambda e: e.path, guid_prefix="web-news:"))
    _write(root / "index.html", _index_page(feeds))
    _write(root / "feeds.opml", _opml(base, feeds))
    paths = tuple(e.path for e in (*entries.values(), *news_entries))
    return DemoSite(root=root, feeds=feeds, article_count=len(paths), article_paths=paths)


def build_bench_site(root: Path, base_urls: Sequence[str], *, articles: int = 2000,
                     feeds: int = 20, now: datetime | None = None, weeks: int = 10,
                     sample: Path = SAMPLE_DIR) -> DemoSite:
    """Write `articles` distinct pages made from the corpus pages, listed by `feeds` feeds."""
    if not base_urls:
        raise ValueError("build_bench_site needs at least one base URL")
    if articles < 1 or feeds < 1:
        raise ValueError("articles and feeds must be positive")
    root = Path(root)
    bases = [url.rstrip("/") for url in base_urls]
    pages = sorted((sample / "pages").glob("*.html"))
    if not pages:
        raise FileNotFoundError(f"{sample / 'pages'}: no corpus pages")
    truth = _truth(sample / "pages")
    width = max(4, len(str(articles - 1)))
    dates = _spread(articles, _utc(now), weeks)
    per_feed: list[list[_Entry]] = [[] for _ in range(feeds)]
    paths: list[str] = [""] * articles
    for index, page in enumerate(pages):
        copies = range(index, articles, len(pages))
        if not copies:
            break
        raw = page.read_bytes()
        meta = truth.get(page.name, {})
        positions = _marker_positions(raw, meta.get("with", []))
        title = _page_title(raw, meta, page)
        summary = _clean(str((meta.get("extra") or {}).get("description") or "")) or title
        for k in copies:
            path = f"/articles/{k:0{width}d}-{page.stem}.html"
            _write(root / path.lstrip("/"), _with_marker(raw, positions, f" (copy {k:0{width}d})"))
            paths[k] = path
            per_feed[k % feeds].append(_Entry(
                path=path, title=f"{title} (copy {k:0{width}d})", published=dates[k],
                author=_author(meta), summary=_shorten(summary)))
    site_feeds: list[SiteFeed] = []
    for i, entries in enumerate(per_feed):
        feed = SiteFeed(f"Bench feed {i + 1:02d}", f"/feeds/bench-{i + 1:02d}.xml")
        base = bases[i % len(bases)]
        _write(root / feed.path.lstrip("/"), _rss(
            feed.name, base + "/", "Corpus pages for the ingest benchmark.",
            sorted(entries, key=lambda e: (e.published, e.path)),
            lambda e, base=base: base + e.path, guid_prefix=f"bench-{i + 1:02d}:"))
        site_feeds.append(feed)
    return DemoSite(root=root, feeds=tuple(site_feeds), article_count=articles,
                    article_paths=tuple(paths))


# --- dates --------------------------------------------------------------------------------

def _utc(now: datetime | None) -> datetime:
    """Return now in UTC, floored to the hour so rebuilds within an hour are identical."""
    if now is None:
        now = datetime.now(UTC)
    moment = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def _spread(count: int, now: datetime, weeks: int) -> list[datetime]:
    """Return `count` ascending minute-precise times spread evenly over the weeks before now."""
    window = timedelta(weeks=weeks)
    start = now - window
    return [(start + window * (i + 0.5) / count).replace(second=0, microsecond=0)
            for i in range(count)]


# --- blog posts -----------------------------------------------------------------------------

def _load_posts(folder: Path) -> list[dict[str, Any]]:
    """Return the manifest rows of the posts, oldest first."""
    manifest: list[dict[str, Any]] = json.loads((folder / "manifest.json").read_text("utf-8"))
    present = [row for row in manifest if (folder / row["file"]).is_file()]
    for row in present:
        row["_path"] = folder / row["file"]
    return sorted(present, key=lambda row: (row.get("date", ""), row["file"]))


def _render_post(converter: markdown.Markdown, post: dict[str, Any], published: datetime,
                 base: str) -> tuple[bytes, _Entry]:
    text = Path(post["_path"]).read_text("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    body = _FRONT_MATTER.sub("", text, count=1)
    rendered = converter.reset().convert(body)
    slug = Path(post["file"]).stem
    path = f"/blog/{slug}.html"
    title = str(post.get("title") or slug).strip()
    authors = [str(a) for a in post.get("authors", [])]
    author = ", ".join(authors)
    stamp = published.isoformat().replace("+00:00", "Z")
    heading = "" if body.lstrip().startswith("# ") else f"<h1>{html.escape(title)}</h1>\n"
    original = _ORIGINAL_BLOG + slug
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<meta name="author" content={quoteattr(author)}>
<meta name="description" content={quoteattr(_summary(rendered) or title)}>
<meta property="og:type" content="article">
<meta property="og:title" content={quoteattr(title)}>
<meta property="og:site_name" content="{BLOG_SITE_NAME}">
<meta property="og:url" content={quoteattr(base + path)}>
<meta property="article:published_time" content="{stamp}">
<link rel="canonical" href={quoteattr(base + path)}>
</head>
<body>
<header><nav><a href="/">{BLOG_SITE_NAME} (sample)</a> · <a href="/feeds/hf-blog.xml">RSS</a></nav></header>
<main>
<article>
{heading}<p class="byline">By {html.escape(author or "the Hugging Face team")} · <time datetime="{stamp}">{published:%B} {published.day}, {published:%Y}</time></p>
{rendered}
</article>
</main>
<footer><p>Sample copy for the newsmon demo of the post first published at
<a href="{original}">{original}</a> ({html.escape(str(post.get("date_raw") or post.get("date", "")))}),
from the huggingface/blog repository; the text remains its authors' work.</p></footer>
</body>
</html>
"""
    entry = _Entry(path=path, title=title, published=published, author=author,
                   summary=_summary(rendered) or title, content_html=rendered)
    return page.encode("utf-8"), entry


def _summary(rendered: str) -> str:
    """Return the first real paragraph of rendered HTML as plain text, shortened."""
    for match in _PARAGRAPH.finditer(rendered):
        text = _clean(_TAG.sub(" ", match.group(1)))
        if len(text) >= 60:
            return _shorten(text)
    return ""


def _clean(text: str) -> str:
    return " ".join(html.unescape(text).split())


def _shorten(text: str) -> str:
    if len(text) <= _SUMMARY_CHARS:
        return text
    return text[:_SUMMARY_CHARS].rsplit(" ", 1)[0] + " …"


# --- news pages -----------------------------------------------------------------------------

def _truth(folder: Path) -> dict[str, dict[str, Any]]:
    path = folder / "truth.json"
    if not path.is_file():
        return {}
    rows: list[dict[str, Any]] = json.loads(path.read_text("utf-8"))
    return {row["file"]: row for row in rows}


def _english_pages(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Return the pages whose <html lang> is English, oldest annotated date first."""
    truth = _truth(folder)
    chosen: list[tuple[Path, dict[str, Any]]] = []
    for page in sorted(folder.glob("*.html")):
        match = _HTML_LANG.search(page.read_bytes()[:65536])
        if match and match.group(1).lower() == b"en":
            chosen.append((page, truth.get(page.name, {})))
    return sorted(chosen, key=lambda item: (str(item[1].get("date") or ""), item[0].name))


def _page_title(raw: bytes, meta: dict[str, Any], page: Path) -> str:
    title = str(meta.get("title") or "").strip()
    if not title:
        match = _HTML_TITLE.search(raw)
        if match:
            title = _clean(match.group(1).decode("utf-8", "replace"))
    return title or page.stem


def _author(meta: dict[str, Any]) -> str:
    author = meta.get("author") or ""
    return "; ".join(author) if isinstance(author, list) else str(author)


def _news_entry(path: str, page: Path, meta: dict[str, Any], published: datetime) -> _Entry:
    raw = page.read_bytes()
    title = _page_title(raw, meta, page)
    description = _clean(str((meta.get("extra") or {}).get("description") or ""))
    return _Entry(path=path, title=title, published=published, author=_author(meta),
                  summary=_shorten(description) if description else "")


# --- bench pages ----------------------------------------------------------------------------

def _marker_positions(raw: bytes, snippets: Iterable[str]) -> list[int]:
    """Return the byte offsets where a copy's marker goes, so extraction keeps it."""
    positions: set[int] = set()
    for snippet in snippets:
        needle = _find_prefix(raw, snippet)
        if needle:
            positions.update(m.end() for m in re.finditer(re.escape(needle), raw))
    # Paragraph ends cover pages whose snippets sit where the extractor does not look.
    positions.update(m.start() for m in _P_CLOSE.finditer(raw))
    if not positions:
        body = _BODY_OPEN.search(raw)
        positions.add(body.end() if body else len(raw))
    return sorted(positions)


def _find_prefix(raw: bytes, snippet: str) -> bytes:
    """Return the longest leading run (2 to 8 words) of a snippet found in the raw bytes."""
    words = snippet.split()
    for count in range(min(len(words), 8), 1, -1):
        for encoding in ("utf-8", "cp1252"):
            try:
                needle = " ".join(words[:count]).encode(encoding)
            except UnicodeEncodeError:
                continue
            if needle in raw:
                return needle
    return b""


def _with_marker(raw: bytes, positions: Sequence[int], marker: str) -> bytes:
    tag = marker.encode("ascii")
    parts: list[bytes] = []
    previous = 0
    for position in positions:
        parts += [raw[previous:position], tag]
        previous = position
    parts.append(raw[previous:])
    return b"".join(parts)


# --- feeds and index ------------------------------------------------------------------------

def _rss(title: str, link: str, description: str, entries: Sequence[_Entry],
         href: Any, *, with_content: bool = False, guid_prefix: str = "") -> bytes:
    """Return an RSS 2.0 document; `href` maps an entry to the link the feed shows."""
    newest = max((e.published for e in entries), default=None)
    items: list[str] = []
    for entry in reversed(entries):  # newest first, as feeds list them
        url = href(entry)
        guid = (f'<guid isPermaLink="false">{xml_escape(guid_prefix + entry.path)}</guid>'
                if guid_prefix else f'<guid isPermaLink="true">{xml_escape(url)}</guid>')
        lines = [
            "<item>",
            f"<title>{xml_escape(entry.title)}</title>",
            f"<link>{xml_escape(url)}</link>",
            guid,
            f"<pubDate>{email.utils.format_datetime(entry.published)}</pubDate>",
        ]
        if entry.author:
            lines.append(f"<dc:creator>{xml_escape(entry.author)}</dc:creator>")
        if entry.summary:
            lines.append(f"<description>{xml_escape(entry.summary)}</description>")
        if with_content and entry.content_html:
            lines.append(f"<content:encoded>{xml_escape(entry.content_html)}</content:encoded>")
        lines.append("</item>")
        items.append("\n".join(lines))
    build_date = (f"<lastBuildDate>{email.utils.format_datetime(newest)}</lastBuildDate>\n"
                  if newest else "")
    document = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">\n<channel>\n'
        f"<title>{xml_escape(title)}</title>\n<link>{xml_escape(link)}</link>\n"
        f"<description>{xml_escape(description)}</description>\n<language>en</language>\n"
        f"{build_date}" + "\n".join(items) + "\n</channel>\n</rss>\n"
    )
    return document.encode("utf-8")


def _atom(title: str, base: str, self_url: str, entries: Sequence[_Entry]) -> bytes:
    """Return an Atom 1.0 document with summaries only (readers must fetch the page)."""
    newest = max((e.published for e in entries), default=datetime(1970, 1, 1, tzinfo=UTC))
    parts: list[str] = []
    for entry in reversed(entries):
        stamp = _atom_time(entry.published)
        author = f"<author><name>{xml_escape(entry.author)}</name></author>\n" if entry.author else ""
        parts.append(
            "<entry>\n"
            f"<title>{xml_escape(entry.title)}</title>\n"
            f"<link rel=\"alternate\" type=\"text/html\" href={quoteattr(base + entry.path)}/>\n"
            f"<id>{xml_escape(base + entry.path)}</id>\n"
            f"<published>{stamp}</published>\n<updated>{stamp}</updated>\n"
            f"{author}<summary type=\"text\">{xml_escape(entry.summary)}</summary>\n"
            "</entry>"
        )
    document = (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n'
        f"<title>{xml_escape(title)}</title>\n"
        f"<link rel=\"self\" href={quoteattr(self_url)}/>\n"
        f"<link rel=\"alternate\" href={quoteattr(base + '/')}/>\n"
        f"<id>{xml_escape(self_url)}</id>\n<updated>{_atom_time(newest)}</updated>\n"
        + "\n".join(parts) + "\n</feed>\n"
    )
    return document.encode("utf-8")


def _atom_time(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _index_page(feeds: Sequence[SiteFeed]) -> bytes:
    links = "\n".join(f'<li><a href="{html.escape(f.path)}">{html.escape(f.name)}</a></li>'
                      for f in feeds)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
        "<title>newsmon sample site</title></head>\n<body>\n<h1>newsmon sample site</h1>\n"
        f"<p>Feeds served for the demo:</p>\n<ul>\n{links}\n</ul>\n"
        '<p>Also as <a href="/feeds.opml">OPML</a>.</p>\n</body>\n</html>\n'
    ).encode()


def _opml(base: str, feeds: Sequence[SiteFeed]) -> bytes:
    outlines = "\n".join(
        f"<outline type=\"rss\" text={quoteattr(f.name)} title={quoteattr(f.name)} "
        f"xmlUrl={quoteattr(base + f.path)}/>" for f in feeds)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<opml version="2.0">\n'
        "<head><title>newsmon sample feeds</title></head>\n"
        f"<body>\n{outlines}\n</body>\n</opml>\n"
    ).encode()


def _write(path: Path, data: bytes) -> None:
    """Write bytes unless the file already holds them, so mtime-based validators stay valid."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write beside and rename: the site may already be serving while it is built.
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)

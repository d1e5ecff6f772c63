"""A real warehouse for the digest tests: 13 weeks of articles with real text.

Bodies are the bundled blog posts (sample/articles). The last week (2026-W47) holds one
story run by four outlets (the original, a wire copy with boilerplate, a trimmed copy and a
reworded copy), titles that try HTML and header injection, a javascript: link, a new term
in three titles, and an irrelevant article that must stay out.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pyarrow as pa

from newsmon.paths import SAMPLE_DIR
from parsers.themes import THEME_IDS
from warehouse.bulk import append_tables_to

TARGET_WEEK = "2026-W47"
TARGET_MONDAY = date(2026, 11, 16)
WEEKS = 13
OUTLETS = ("The Verge", "TechCrunch", "Ars Technica", "VentureBeat", "Wired", "MIT Technology Review")
HOSTILE_BCC_TITLE = "Meta releases Llama 3 open weights\r\nBcc: x@y.example"
HOSTILE_SCRIPT_TITLE = "<script>alert(1)</script> Llama licence explained"
JS_URL = "javascript:alert(2)"
IRRELEVANT_TITLE = "Chipmaker quarterly earnings beat estimates"
CLUSTER_OUTLETS = ("Reuters", "The Verge", "TechCrunch", "Ars Technica")
CLUSTER_POST = "llama3.md"
NEW_TERM = "smollm4"


@dataclass(frozen=True)
class Seeded:
    """What the seeded warehouse holds, for assertions."""

    path: Path
    cluster_urls: tuple[str, ...]  # lead first
    script_url: str
    js_title: str
    per_week_relevant: dict[str, int]


def post_body(name: str) -> str:
    """Return a bundled post's text without front matter, markup lines or image links."""
    text = (SAMPLE_DIR / "articles" / name).read_text(encoding="utf-8")
    if text.startswith("---"):
        text = text.split("---", 2)[-1]
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("<", "![", "```", "|")):
            continue
        lines.append(stripped.lstrip("#").strip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def first_sentence(text: str) -> str:
    """Return the first sentence of reasonable length, as a tagger's evidence."""
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if 60 <= len(sentence) <= 300 and "\n" not in sentence:
            return sentence
    return text[:200]


def _posts() -> list[str]:
    names = sorted(p.name for p in (SAMPLE_DIR / "articles").glob("*.md"))
    return [n for n in names if n != CLUSTER_POST]


def seed_warehouse(path: Path) -> Seeded:
    """Write 13 weeks of articles, themes and entities to a DuckDB file."""
    rng = random.Random(5)
    articles: list[dict[str, object]] = []
    themes: list[dict[str, object]] = []
    entities: list[dict[str, object]] = []
    per_week: dict[str, int] = {}
    posts = iter(_posts())

    def add(title: str, url: str, source: str, published: datetime, text: str,
            theme_scores: dict[str, float], relevant: bool = True,
            entity_names: tuple[tuple[str, str], ...] = ()) -> None:
        article_id = hashlib.sha256(url.encode()).hexdigest()[:16]
        articles.append({
            "id": article_id, "url": url, "title": title, "source": source,
            "published_at": published, "date_source": "feed",
            "fetched_at": published + timedelta(hours=2), "language": "en", "author": None,
            "text": text, "text_source": "page", "relevant": relevant,
            "relevance": 0.9 if relevant else 0.1, "themes_version": "test-1",
            "feed_url": f"https://{_slug(source)}.example/feed", "guid": url,
            "summary": text[:200], "content_hash": hashlib.sha256(text.encode() + url.encode()).hexdigest(),
            "run_id": "seed",
        })
        evidence = first_sentence(text)
        for theme, score in theme_scores.items():
            themes.append({"article_id": article_id, "url": url, "theme": theme, "score": score,
                           "evidence": evidence, "themes_version": "test-1"})
        for name, kind in entity_names:
            entities.append({"article_id": article_id, "entity": name, "kind": kind,
                             "mentions": 1 + len(re.findall(re.escape(name), text))})
        if relevant:
            iso = published.date().isocalendar()
            key = f"{iso.year}-W{iso.week:02d}"
            per_week[key] = per_week.get(key, 0) + 1

    for offset in range(WEEKS):
        monday = TARGET_MONDAY - timedelta(days=7 * (WEEKS - 1 - offset))
        last = offset == WEEKS - 1
        for index in range(6):
            name = next(posts)
            body = post_body(name)
            published = datetime.combine(monday + timedelta(days=index), time(10, 0), UTC)
            theme = THEME_IDS[(offset + index) % len(THEME_IDS)]
            if last and index < 3:
                theme = "licensing-and-openness"  # the theme that rises this week
            outlet = OUTLETS[(offset + index) % len(OUTLETS)]
            add(_title(body, name), f"https://{_slug(outlet)}.example/{offset}/{name[:-3]}", outlet,
                published, body, {theme: round(0.55 + rng.random() * 0.4, 2)},
                entity_names=(("Hugging Face", "organisation"),))
        add(f"{IRRELEVANT_TITLE} ({offset})", f"https://chips.example/{offset}", "Chip Daily",
            datetime.combine(monday + timedelta(days=2), time(8, 0), UTC),
            "The chipmaker reported revenue above analyst expectations for the quarter.", {}, relevant=False)

    # The week of the digest: one story in four outlets, hostile titles, a new term.
    original = post_body(CLUSTER_POST)
    monday = TARGET_MONDAY
    cluster_texts = (
        original,
        "SAN FRANCISCO (Reuters) - " + original + "\n\nReporting by the wire desk. Subscribe to our newsletter.",
        "\n\n".join(original.split("\n\n")[: max(3, len(original.split("\n\n")) // 2)]),
        " ".join(rng.choice(["new", "model", "said", "open", "release"]) if rng.random() < 0.12 else w
                 for w in original.split()),
    )
    cluster_titles = (
        HOSTILE_BCC_TITLE,
        "Meta puts Llama 3 weights online",
        "Llama 3 is here: what Meta released",
        "Meta's Llama 3 arrives with open weights",
    )
    cluster_urls = []
    for index, (outlet, text, title) in enumerate(zip(CLUSTER_OUTLETS, cluster_texts, cluster_titles)):
        url = f"https://{_slug(outlet)}.example/2026/llama-3"
        cluster_urls.append(url)
        add(title, url, outlet, datetime.combine(monday + timedelta(days=index // 2), time(9 + index, 0), UTC),
            text, {"licensing-and-openness": 0.9, "open-vs-closed-race": 0.6},
            entity_names=(("Llama", "model"), ("Meta", "organisation")))
    script_url = "https://wired.example/2026/licence"
    add(HOSTILE_SCRIPT_TITLE, script_url, "Wired",
        datetime.combine(monday + timedelta(days=3), time(12, 0), UTC),
        post_body(next(posts)), {"licensing-and-openness": 0.7}, entity_names=(("Llama", "model"),))
    js_title = "A story whose link is a script"
    add(js_title, JS_URL, "Sketchy Site",
        datetime.combine(monday + timedelta(days=4), time(12, 0), UTC),
        post_body(next(posts)), {"safety-security-misuse": 0.8})
    for index, title in enumerate(("SmolLM4 runs on a phone", "Hands-on with SmolLM4", "SmolLM4 beats larger models")):
        outlet = OUTLETS[index]
        add(title, f"https://{_slug(outlet)}.example/2026/smollm4-{index}", outlet,
            datetime.combine(monday + timedelta(days=5), time(8 + index, 0), UTC),
            post_body(next(posts)), {"on-device-inference": 0.8}, entity_names=(("SmolLM", "model"),))

    append_tables_to(path, {
        "articles": pa.Table.from_pylist(articles),
        "article_themes": pa.Table.from_pylist(themes),
        "article_entities": pa.Table.from_pylist(entities),
    })
    return Seeded(path=path, cluster_urls=tuple(cluster_urls), script_url=script_url,
                  js_title=js_title, per_week_relevant=per_week)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _title(body: str, name: str) -> str:
    text = (SAMPLE_DIR / "articles" / name).read_text(encoding="utf-8")
    match = re.search(r"^title:\s*[\"']?(.+?)[\"']?\s*$", text, re.MULTILINE)
    return match.group(1) if match else name[:-3].replace("-", " ").capitalize()

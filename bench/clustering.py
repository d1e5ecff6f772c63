"""Measure near-duplicate clustering: datasketch MinHash LSH against exact all-pairs Jaccard.

The labeled set is built from the bundled blog posts (sample/articles): for a third of them,
three syndicated copies are made the way outlets make them (wire boilerplate added, story
trimmed to its first half, about one word in eight reworded). A copy belongs with its original;
every other pair, including posts of one series (Falcon, Gemma, ethics), must stay apart.
Prints pair precision, recall and F1 and the time taken, then the time on larger weeks.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from itertools import combinations

from newsmon.paths import SAMPLE_DIR
from parsers.clustering import Clustering, ClusterSettings, cluster_exact, cluster_near_duplicates

Clusterer = Callable[[Sequence[tuple[str, str]], ClusterSettings], Clustering]


def load_posts() -> list[tuple[str, str]]:
    """Return (name, body) of every bundled post, without its front matter."""
    posts = []
    for path in sorted((SAMPLE_DIR / "articles").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        if text.startswith("---"):
            text = text.split("---", 2)[-1]
        posts.append((path.stem, text.strip()))
    return posts


def wire_copy(text: str, rng: random.Random) -> str:
    """Add an outlet's dateline and footer around the story."""
    outlet = rng.choice(["Reuters", "AP", "AFP", "Bloomberg"])
    return f"SAN FRANCISCO ({outlet}) - {text}\n\nReporting by staff; editing by the desk. Subscribe to our newsletter for more."


def trimmed_copy(text: str, rng: random.Random) -> str:
    """Keep the first half of the paragraphs, as outlets cut a story to length."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    keep = max(1, len(paragraphs) // 2)
    return "\n\n".join(paragraphs[:keep])


def reworded_copy(text: str, rng: random.Random) -> str:
    """Swap about one word in eight for another word, as a light rewrite does."""
    vocabulary = ["new", "model", "company", "said", "open", "release", "users", "today", "also"]
    words = text.split()
    return " ".join(rng.choice(vocabulary) if rng.random() < 0.125 else w for w in words)


def labeled_set(seed: int = 7) -> tuple[list[tuple[str, str]], set[frozenset[str]]]:
    """Return documents and the set of true duplicate pairs."""
    rng = random.Random(seed)
    posts = load_posts()
    documents = list(posts)
    truth: set[frozenset[str]] = set()
    for name, text in posts[::3]:
        copies = [name]
        for kind, make in (("wire", wire_copy), ("trim", trimmed_copy), ("reword", reworded_copy)):
            key = f"{name}~{kind}"
            documents.append((key, make(text, rng)))
            copies.append(key)
        truth.update(frozenset(pair) for pair in combinations(copies, 2))
    rng.shuffle(documents)
    return documents, truth


def score(clustering: Clustering, truth: set[frozenset[str]]) -> tuple[float, float, float]:
    """Return pair precision, recall and F1."""
    found = {frozenset(pair) for group in clustering.groups for pair in combinations(group, 2)}
    tp = len(found & truth)
    precision = tp / len(found) if found else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def timed(clusterer: Clusterer, documents: Sequence[tuple[str, str]], settings: ClusterSettings) -> tuple[Clustering, float]:
    """Run one clustering and return it with its wall time in seconds."""
    start = time.perf_counter()
    result = clusterer(documents, settings)
    return result, time.perf_counter() - start


def title_baseline(documents: Sequence[tuple[str, str]], settings: ClusterSettings) -> Clustering:
    """Group documents whose first line, normalised, is the same: the cheapest alternative."""
    groups: dict[str, list[str]] = {}
    for key, text in documents:
        first = re.sub(r"\W+", " ", text.strip().split("\n", 1)[0].lower()).strip()
        groups.setdefault(first or key, []).append(key)
    return Clustering(groups=tuple(tuple(g) for g in groups.values()))


def main() -> None:
    """Print quality and speed of each method."""
    documents, truth = labeled_set()
    print(f"labeled set: {len(documents)} documents, {len(truth)} duplicate pairs")
    print(f"{'method':46} {'P':>6} {'R':>6} {'F1':>6} {'seconds':>8}")
    variants: list[tuple[str, Clusterer, ClusterSettings]] = [
        ("minhash-lsh lead 400 words, J>=0.25 (default)", cluster_near_duplicates, ClusterSettings()),
        ("exact all-pairs Jaccard, same shingles", cluster_exact, ClusterSettings()),
        ("minhash-lsh whole text, J>=0.25", cluster_near_duplicates, ClusterSettings(lead_words=10**9)),
        ("exact all-pairs Jaccard, whole text", cluster_exact, ClusterSettings(lead_words=10**9)),
        ("minhash-lsh lead 400, J>=0.5", cluster_near_duplicates, ClusterSettings(threshold=0.5)),
        ("exact all-pairs lead 400, J>=0.5", cluster_exact, ClusterSettings(threshold=0.5)),
        ("minhash-lsh lead 400, J>=0.15", cluster_near_duplicates, ClusterSettings(threshold=0.15)),
        ("first line equal (title baseline)", title_baseline, ClusterSettings()),
    ]
    cluster_near_duplicates(documents[:20])  # warm up imports and numpy before timing
    for label, clusterer, settings in variants:
        result, seconds = timed(clusterer, documents, settings)
        p, r, f = score(result, truth)
        print(f"{label:46} {p:6.3f} {r:6.3f} {f:6.3f} {seconds:8.3f}")
    rng = random.Random(11)
    posts = load_posts()
    sentences = [s for _, text in posts for s in re.split(r"(?<=[.!?])\s+", text) if len(s) > 40]
    for size in (1000, 5000):
        # A bigger week of distinct stories (30 sentences drawn from all posts) plus one
        # reworded copy per ten stories, so candidates and true pairs are both present.
        week = [(f"d{i}", " ".join(rng.sample(sentences, 30))) for i in range(size)]
        week += [(f"c{i}", reworded_copy(week[i][1], rng)) for i in range(0, size, 10)]
        _, lsh_seconds = timed(cluster_near_duplicates, week, ClusterSettings())
        line = f"{len(week)} documents: minhash-lsh {lsh_seconds:.2f} s"
        if size <= 1000:  # all-pairs is quadratic: about 4 minutes at 3,000 documents
            _, exact_seconds = timed(cluster_exact, week, ClusterSettings())
            line += f", exact all-pairs {exact_seconds:.2f} s"
        print(line)

if __name__ == "__main__":
    main()

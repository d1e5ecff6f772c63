"""Near-duplicate clustering on real article text: copies join, distinct stories stay apart."""

from __future__ import annotations

import random
from itertools import combinations

import pytest

from newsmon.paths import SAMPLE_DIR
from parsers.clustering import ClusterSettings, cluster_exact, cluster_near_duplicates, shingles


def post_body(name: str) -> str:
    """Return a bundled blog post without its front matter."""
    text = (SAMPLE_DIR / "articles" / name).read_text(encoding="utf-8")
    return text.split("---", 2)[-1].strip() if text.startswith("---") else text.strip()


def _copies(text: str, rng: random.Random) -> list[str]:
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return [
        "LONDON (AP) - " + text + "\n\nCopyright the wire. All rights reserved.",
        "\n\n".join(paragraphs[: max(2, len(paragraphs) // 2)]),
        " ".join(rng.choice(["new", "model", "said"]) if rng.random() < 0.12 else w for w in text.split()),
    ]


@pytest.fixture(scope="module")
def labeled() -> tuple[list[tuple[str, str]], set[frozenset[str]]]:
    """Forty real posts, three syndicated copies of every fourth one, and the true pairs."""
    rng = random.Random(3)
    names = sorted(p.name for p in (SAMPLE_DIR / "articles").glob("*.md"))[:40]
    # Posts of one series on one subject: the hardest negatives in the bundle.
    names += ["falcon.md", "falcon3.md", "gemma.md", "gemma2.md", "ethics-soc-3.md", "ethics-soc-5.md"]
    documents = [(name, post_body(name)) for name in dict.fromkeys(names)]
    truth: set[frozenset[str]] = set()
    for name, text in list(documents)[::4]:
        keys = [name]
        for index, copy in enumerate(_copies(text, rng)):
            keys.append(f"{name}#{index}")
            documents.append((keys[-1], copy))
        truth.update(frozenset(p) for p in combinations(keys, 2))
    rng.shuffle(documents)
    return documents, truth


def _pairs(groups: tuple[tuple[str, ...], ...]) -> set[frozenset[str]]:
    return {frozenset(p) for group in groups for p in combinations(group, 2)}


def test_shingles_are_lower_case_word_triples_of_the_lead() -> None:
    assert shingles("Meta RELEASES Llama, today!") == frozenset({"meta releases llama", "releases llama today"})
    assert shingles("one two three four", lead_words=3) == frozenset({"one two three"})
    assert shingles("Llama") == frozenset({"llama"})
    assert shingles("  ...  ") == frozenset()


def test_syndicated_copies_join_their_original_and_nothing_else(labeled) -> None:
    documents, truth = labeled
    found = _pairs(cluster_near_duplicates(documents).groups)
    assert found - truth == set(), "distinct posts were merged"
    recall = len(found & truth) / len(truth)
    assert recall >= 0.95, f"pair recall {recall:.3f}"


def test_lsh_agrees_with_exact_jaccard_baseline(labeled) -> None:
    documents, truth = labeled
    lsh = _pairs(cluster_near_duplicates(documents).groups)
    exact = _pairs(cluster_exact(documents).groups)
    assert exact - truth == set()
    # MinHash estimates Jaccard; near the threshold it may differ from the exact value.
    assert len(lsh ^ exact) <= 0.05 * len(truth)


def test_every_key_appears_once_in_input_order() -> None:
    text = post_body("llama3.md")
    docs = [("b", "unrelated words about the weather in spring"), ("a", text), ("c", ""),
            ("d", "SAN FRANCISCO (Reuters) - " + text), ("e", "")]
    clustering = cluster_near_duplicates(docs)
    assert clustering.groups == (("b",), ("a", "d"), ("c",), ("e",))
    assert clustering.group_of("d") == ("a", "d")
    with pytest.raises(KeyError):
        clustering.group_of("zzz")


def test_threshold_controls_what_counts_as_a_copy() -> None:
    text = post_body("gemma.md")
    words = text.split()
    trimmed = " ".join(words[: len(words) // 3])
    docs = [("full", text), ("trimmed", trimmed)]
    # The lead holds both texts' first 400 words, so a trimmed copy stays close...
    assert len(cluster_near_duplicates(docs).groups) == 1
    # ...while over the whole text the trimmed copy shares too little to pass a high bar.
    strict = ClusterSettings(threshold=0.9, lead_words=10**9)
    assert len(cluster_exact(docs, strict).groups) == 2


def test_clustering_is_deterministic(labeled) -> None:
    documents, _ = labeled
    assert cluster_near_duplicates(documents) == cluster_near_duplicates(documents)

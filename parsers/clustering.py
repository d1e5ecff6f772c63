"""Group near-duplicate coverage of one story: syndicated copies, trimmed or reworded ones.

Each text becomes a set of word shingles taken from its lead (the first `lead_words` words):
outlets that run a wire story keep its opening and cut or pad the rest, so the lead is where
copies agree. datasketch's MinHash LSH proposes candidate pairs in near-linear time, each
candidate is confirmed by its estimated Jaccard similarity, and confirmed pairs are joined
transitively (union-find). `cluster_exact` computes the exact Jaccard of every pair instead;
it is the baseline that `bench/clustering.py` measures the LSH version against.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from datasketch import MinHash, MinHashLSH

__all__ = [
    "ClusterSettings",
    "Clustering",
    "cluster_exact",
    "cluster_near_duplicates",
    "shingles",
]

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class ClusterSettings:
    """How texts are compared: shingle size, lead length, similarity threshold, hash count."""

    threshold: float = 0.25
    shingle_words: int = 3
    lead_words: int = 400
    num_perm: int = 128
    seed: int = 1
    candidate_margin: float = 0.1  # LSH proposes pairs from threshold - margin


@dataclass(frozen=True)
class Clustering:
    """Groups of document keys; every key appears in exactly one group, in input order."""

    groups: tuple[tuple[str, ...], ...]

    def group_of(self, key: str) -> tuple[str, ...]:
        """Return the group holding `key`."""
        for group in self.groups:
            if key in group:
                return group
        raise KeyError(key)


def shingles(text: str, shingle_words: int = 3, lead_words: int = 400) -> frozenset[str]:
    """Return the word shingles of the text's lead, lower-cased and stripped of punctuation."""
    words = _WORD.findall(text.lower())[:lead_words]
    if len(words) < shingle_words:
        # A very short text (a bare title) still needs something to compare.
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(
        " ".join(words[i : i + shingle_words]) for i in range(len(words) - shingle_words + 1)
    )


def cluster_near_duplicates(
    documents: Sequence[tuple[str, str]], settings: ClusterSettings = ClusterSettings()
) -> Clustering:
    """Cluster (key, text) pairs whose lead shingles are near-duplicates, using MinHash LSH."""
    keys = [key for key, _ in documents]
    sets = [shingles(text, settings.shingle_words, settings.lead_words) for _, text in documents]
    hashes = MinHash.bulk(
        ([s.encode("utf-8") for s in sorted(shingle_set)] for shingle_set in sets),
        num_perm=settings.num_perm,
        seed=settings.seed,
        # CRC-32 is uniform enough for MinHash, which permutes it anyway, and several
        # times faster than datasketch's default SHA-1.
        hashfunc=zlib.crc32,
    )
    # LSH misses some pairs just above its threshold (its banding is an S-curve), so it
    # proposes candidates from a lower bar and the estimate below applies the real one.
    lsh = MinHashLSH(threshold=max(0.05, settings.threshold - settings.candidate_margin),
                     num_perm=settings.num_perm)
    parent = list(range(len(keys)))
    for index, (shingle_set, minhash) in enumerate(zip(sets, hashes)):
        if not shingle_set:
            continue
        for other in lsh.query(minhash):
            # LSH only proposes; the estimate filters out band collisions below the threshold.
            if minhash.jaccard(hashes[other]) >= settings.threshold:
                _union(parent, index, other)
        lsh.insert(index, minhash)
    return _groups(keys, parent)


def cluster_exact(
    documents: Sequence[tuple[str, str]], settings: ClusterSettings = ClusterSettings()
) -> Clustering:
    """Cluster (key, text) pairs by the exact Jaccard similarity of every pair of shingle sets."""
    keys = [key for key, _ in documents]
    sets = [shingles(text, settings.shingle_words, settings.lead_words) for _, text in documents]
    parent = list(range(len(keys)))
    for i, first in enumerate(sets):
        if not first:
            continue
        for j in range(i):
            second = sets[j]
            if second and len(first & second) >= settings.threshold * len(first | second):
                _union(parent, i, j)
    return _groups(keys, parent)


def _find(parent: list[int], index: int) -> int:
    while parent[index] != index:
        parent[index] = parent[parent[index]]
        index = parent[index]
    return index


def _union(parent: list[int], first: int, second: int) -> None:
    a, b = _find(parent, first), _find(parent, second)
    if a != b:
        # The smaller index stays root so groups keep the order of the input.
        parent[max(a, b)] = min(a, b)


def _groups(keys: Iterable[str], parent: list[int]) -> Clustering:
    members: dict[int, list[str]] = {}
    for index, key in enumerate(keys):
        members.setdefault(_find(parent, index), []).append(key)
    return Clustering(groups=tuple(tuple(group) for group in members.values()))

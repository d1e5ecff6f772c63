"""Named models, organisations and software mentioned in an article, from a gazetteer.

The gazetteer (seeds/entities.toml) lists canonical names with their aliases. All aliases are
compiled into one regular expression, longest alias first, so one scan of the text finds
every mention and "Llama 3.1" is never also counted as "Llama 3" or "Llama". Names that are
also ordinary words ("Meta", "Phi", "Apple") match only with their capitalisation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parsers.toml_files import read_toml

__all__ = [
    "ENTITY_KINDS",
    "EntityDefinition",
    "EntityMention",
    "Gazetteer",
    "GazetteerError",
    "find_entities",
    "gazetteer_from_mapping",
    "load_gazetteer",
]

ENTITY_KINDS: tuple[str, ...] = ("model", "organisation", "software")

# Words are runs of letters or of digits, so "Llama3.1", "Llama-3.1" and "Llama 3.1" all
# read as Llama, 3, 1; between two words of an alias the text may have one separator or none.
_TOKEN = re.compile(r"[^\W\d_]+|\d+|\U0001F917")
_SEPARATORS = frozenset(" -_.\n\t\u00a0")


@dataclass(frozen=True)
class _Alias:
    lower: tuple[str, ...]
    words: tuple[str, ...]
    entity: int
    case_sensitive: bool


class GazetteerError(ValueError):
    """An entities file that cannot be used."""


@dataclass(frozen=True)
class EntityMention:
    entity: str  # canonical name, e.g. "Llama 3.1", "Hugging Face"
    kind: str  # 'model' | 'organisation' | 'software'
    mentions: int


@dataclass(frozen=True)
class EntityDefinition:
    name: str
    kind: str
    aliases: tuple[str, ...]
    case_sensitive: bool = False


@dataclass(frozen=True)
class Gazetteer:
    version: str
    entities: tuple[EntityDefinition, ...]
    # Lower-cased first word of an alias -> the aliases starting with it, longest first.
    index: Mapping[str, tuple[_Alias, ...]]
    source: str = "<gazetteer>"


def load_gazetteer(path: str | Path | None = None) -> Gazetteer:
    """Read and compile an entities file (default: the bundled seeds/entities.toml)."""
    if path is None or str(path) == "":
        from newsmon.paths import DEFAULT_ENTITIES_FILE

        path = DEFAULT_ENTITIES_FILE
    path = Path(path)
    data = read_toml(path, GazetteerError)
    return gazetteer_from_mapping(data, source=str(path))


def gazetteer_from_mapping(data: Mapping[str, Any], source: str = "<mapping>") -> Gazetteer:
    """Validate a parsed entities mapping and compile its matcher."""
    raw = data.get("entities")
    if not isinstance(raw, list) or not raw:
        raise GazetteerError(f"{source}: at least one [[entities]] table is required")
    entities: list[EntityDefinition] = []
    seen: set[str] = set()
    for entry in raw:
        if not isinstance(entry, Mapping):
            raise GazetteerError(f"{source}: each [[entities]] entry must be a table")
        name, kind, aliases = entry.get("name"), entry.get("kind"), entry.get("aliases", [])
        if not isinstance(name, str) or not name.strip():
            raise GazetteerError(f"{source}: an entity has no `name`")
        if name in seen:
            raise GazetteerError(f"{source}: entity {name!r} is listed twice")
        seen.add(name)
        if kind not in ENTITY_KINDS:
            raise GazetteerError(f"{source}: entity {name!r}: kind must be one of {ENTITY_KINDS}")
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
            raise GazetteerError(f"{source}: entity {name!r}: aliases must be non-empty strings")
        case_sensitive = entry.get("case_sensitive", False)
        if not isinstance(case_sensitive, bool):
            raise GazetteerError(f"{source}: entity {name!r}: case_sensitive must be true or false")
        entities.append(EntityDefinition(name, kind, tuple(aliases or [name]), case_sensitive))
    first: dict[str, list[_Alias]] = {}
    for index, entity in enumerate(entities):
        for alias in entity.aliases:
            words = tuple(_TOKEN.findall(alias))
            if not words:
                raise GazetteerError(f"{source}: entity {entity.name!r}: alias {alias!r} has no words")
            candidate = _Alias(tuple(w.lower() for w in words), words, index, entity.case_sensitive)
            first.setdefault(candidate.lower[0], []).append(candidate)
    # Longest alias first, so "Llama 3.1" wins over "Llama 3" and "Llama" at one position.
    index_by_first = {
        key: tuple(sorted(found, key=lambda a: (-len(a.lower), -sum(map(len, a.lower)), a.words)))
        for key, found in first.items()
    }
    version = data.get("version", "")
    return Gazetteer(
        version=str(version),
        entities=tuple(entities),
        index=index_by_first,
        source=source,
    )


def find_entities(text: str, gazetteer: Gazetteer) -> tuple[EntityMention, ...]:
    """Return the entities the text mentions, with counts, most mentioned first."""
    if not text:
        return ()
    matches = list(_TOKEN.finditer(text))
    words = [m.group() for m in matches]
    lower = [w.lower() for w in words]
    index = gazetteer.index
    counts: dict[int, int] = {}
    n = len(words)
    i = 0
    while i < n:
        candidates = index.get(lower[i])
        if candidates is None:
            i += 1
            continue
        for alias in candidates:
            length = len(alias.lower)
            if _matches_at(alias, i, length, matches, words, lower, text):
                counts[alias.entity] = counts.get(alias.entity, 0) + 1
                i += length
                break
        else:
            i += 1
    mentions = [
        EntityMention(gazetteer.entities[k].name, gazetteer.entities[k].kind, c)
        for k, c in counts.items()
    ]
    mentions.sort(key=lambda m: (-m.mentions, m.entity))
    return tuple(mentions)


def _matches_at(
    alias: _Alias,
    i: int,
    length: int,
    matches: list[re.Match[str]],
    words: list[str],
    lower: list[str],
    text: str,
) -> bool:
    if i + length > len(words):
        return False
    if tuple(lower[i : i + length]) != alias.lower:
        return False
    if alias.case_sensitive and tuple(words[i : i + length]) != alias.words:
        return False
    start = matches[i].start()
    if start > 0 and text[start - 1].isalnum():
        return False  # "4" inside "GPT4All" style runs, or a digit glued to letters
    for k in range(i + 1, i + length):
        gap = text[matches[k - 1].end() : matches[k].start()]
        if len(gap) > 1 or (gap and gap not in _SEPARATORS):
            return False
    end = matches[i + length - 1].end()
    if end < len(text):
        after = text[end]
        # Not the head of a longer name: "GPT-4" in "GPT-4o", "Llama 3" in "Llama 3.3".
        if after.isalnum():
            return False
        if after == "/":
            return False  # a namespace in a repository id or URL ("meta-llama/"), not a mention
        if after == "." and end + 1 < len(text) and text[end + 1].isdigit():
            return False
    return True

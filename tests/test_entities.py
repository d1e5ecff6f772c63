"""The entity gazetteer: aliases, longest match, case rules, counts, and file validation."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from newsmon.paths import DEFAULT_ENTITIES_FILE, SAMPLE_DIR
from parsers.entities import (
    ENTITY_KINDS,
    EntityMention,
    Gazetteer,
    GazetteerError,
    find_entities,
    gazetteer_from_mapping,
    load_gazetteer,
)
from parsers.themes import load_seed_documents


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return load_gazetteer()


def _found(text: str, gazetteer: Gazetteer) -> dict[str, int]:
    return {m.entity: m.mentions for m in find_entities(text, gazetteer)}


def test_gazetteer_lists_the_named_models_and_organisations(gazetteer: Gazetteer) -> None:
    names = {e.name: e.kind for e in gazetteer.entities}
    for model in ["Llama 3.1", "Llama 3", "Llama 2", "Code Llama", "Mistral", "Mixtral", "DeepSeek",
                  "Qwen", "Gemma", "Phi", "Falcon", "gpt-oss", "GPT-4o", "GPT-4", "Claude", "Gemini"]:
        assert names.get(model) == "model", model
    for org in ["Meta", "OpenAI", "Anthropic", "Google", "Microsoft", "Hugging Face", "Qualcomm",
                "NVIDIA", "Apple", "AWS", "Mistral AI"]:
        assert names.get(org) == "organisation", org
    assert set(names.values()) <= set(ENTITY_KINDS)
    assert tomllib.loads(DEFAULT_ENTITIES_FILE.read_text(encoding="utf-8"))["version"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Meta released Llama 3.1 today.", {"Meta": 1, "Llama 3.1": 1}),
        # Spellings of one version: spaced, hyphenated, glued, inside a repository id.
        ("Llama-3.1-8B, Llama3.1 and meta-llama/Llama-3.1-70B", {"Llama 3.1": 3}),
        # Longest alias wins; a longer version number is not its prefix.
        ("Llama 3.3 is not Llama 3, and Llama 3 is not Llama.", {"Llama 3.3": 1, "Llama 3": 2, "Llama": 1}),
        ("GPT-4o beats GPT-4 and GPT4All is neither.", {"GPT-4o": 1, "GPT-4": 1}),
        ("Mistral AI ships Mistral 7B and Mixtral 8x7B.", {"Mistral AI": 1, "Mistral": 1, "Mixtral": 1}),
        ("DeepSeek-R1 and DeepSeek V3 from deepseek.", {"DeepSeek": 3}),
        ("Hugging Face hosts it; HuggingFace and 🤗 say so.", {"Hugging Face": 3}),
        ("Code Llama learns to code.", {"Code Llama": 1}),
        ("gpt-oss-120b is open-weight.", {"gpt-oss": 1}),
        ("Qualcomm Snapdragon phones, NVIDIA and Nvidia GPUs", {"Qualcomm": 2, "NVIDIA": 2}),
    ],
)
def test_aliases_and_longest_match(gazetteer: Gazetteer, text: str, expected: dict[str, int]) -> None:
    assert _found(text, gazetteer) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Meta trained it. The meta-learning paper and metadata are not Meta.", {"Meta": 2}),
        ("Microsoft's Phi-3 beats phi, the golden ratio.", {"Microsoft": 1, "Phi": 1}),
        ("Apple devices, not an apple a day.", {"Apple": 1}),
        ("A falcon flew by; Falcon 180B was released.", {"Falcon": 1}),
        ("Gemini and Claude; a gemini horoscope.", {"Gemini": 1, "Claude": 1}),
        ("The mistral wind blew over Mistral.", {"Mistral": 1}),
    ],
)
def test_case_rules_for_names_that_are_also_words(
    gazetteer: Gazetteer, text: str, expected: dict[str, int]
) -> None:
    assert _found(text, gazetteer) == expected


def test_mentions_are_counted_and_sorted(gazetteer: Gazetteer) -> None:
    mentions = find_entities("OpenAI, OpenAI, Open AI and Anthropic; Meta.", gazetteer)
    assert mentions[0] == EntityMention("OpenAI", "organisation", 3)
    assert [m.entity for m in mentions[1:]] == ["Anthropic", "Meta"]
    assert find_entities("", gazetteer) == ()
    assert find_entities("nothing to see here", gazetteer) == ()


def test_seed_documents_mention_the_expected_entities(gazetteer: Gazetteer) -> None:
    documents = load_seed_documents()
    found = _found(documents["001_85a7d1030bda2f28.txt"], gazetteer)
    assert found["Llama 3.1"] >= 4
    assert found["Meta"] >= 10
    for name in ["OpenAI", "Anthropic", "Claude", "Apple", "GPT-4o", "Google", "PyTorch"]:
        assert name in found, name
    assert "Qualcomm" in _found(documents["003_cd8854967a37da6b.txt"], gazetteer)
    assert "Linux Foundation" in _found(documents["004_d32493eb55908b38.txt"], gazetteer)


def test_real_posts_are_scanned_quickly_and_sensibly(gazetteer: Gazetteer) -> None:
    post = (SAMPLE_DIR / "articles" / "llama32.md").read_text(encoding="utf-8")
    found = _found(post, gazetteer)
    assert found["Llama 3.2"] >= 10
    assert "Hugging Face" in found


def test_gazetteer_file_errors(tmp_path: Path) -> None:
    with pytest.raises(GazetteerError, match="kind"):
        gazetteer_from_mapping({"entities": [{"name": "X", "kind": "person", "aliases": ["X"]}]})
    with pytest.raises(GazetteerError, match="twice"):
        gazetteer_from_mapping({"entities": [{"name": "X", "kind": "model"}] * 2})
    with pytest.raises(GazetteerError, match="at least one"):
        gazetteer_from_mapping({"entities": []})
    bad = tmp_path / "entities.toml"
    bad.write_text("[[entities]\n", encoding="utf-8")
    with pytest.raises(GazetteerError, match="not valid TOML"):
        load_gazetteer(bad)


def test_an_entity_without_aliases_matches_its_name() -> None:
    gazetteer = gazetteer_from_mapping({"entities": [{"name": "Zephyr", "kind": "model"}]})
    assert _found("Zephyr and zephyr", gazetteer) == {"Zephyr": 2}

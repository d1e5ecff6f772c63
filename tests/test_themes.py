"""Theme definitions, seed repair, the lexical tagger against the labeled dev set, `newsmon tag`."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from ftfy.badness import is_bad
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.errors import UserError
from newsmon.paths import SAMPLE_DIR, SEEDS_DIR
from parsers.themes import (
    THEME_IDS,
    LexicalTagger,
    SentenceRule,
    TagResult,
    ThemesError,
    ThemeSet,
    assign_themes,
    load_seed_documents,
    load_tagger,
    load_themes,
    repair_text,
    semantic_available,
    split_sentences,
)

DEV = SAMPLE_DIR / "themes" / "dev.jsonl"


@pytest.fixture(scope="module")
def themes() -> ThemeSet:
    return load_themes()


@pytest.fixture(scope="module")
def tagger(themes: ThemeSet) -> LexicalTagger:
    return LexicalTagger(themes)


@pytest.fixture(scope="module")
def dev() -> list[dict[str, Any]]:
    with open(DEV, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


# --- themes.toml ---------------------------------------------------------------------------


def test_themes_file_has_the_nine_fixed_ids_with_definitions(themes: ThemeSet) -> None:
    assert themes.ids == THEME_IDS
    assert re.fullmatch(r"\d{4}\.\d+\.\d+", themes.version)
    for theme in themes.themes:
        assert len(theme.description) > 40, theme.id
        assert len(theme.phrases) >= 10, theme.id
        assert 0 <= theme.threshold <= 1
        assert theme.seed_sentences(), theme.id


def test_every_seed_passage_occurs_in_its_repaired_seed_document(themes: ThemeSet) -> None:
    documents = load_seed_documents()
    assert len(documents) == 5
    checked = 0
    for theme in themes.themes:
        for passage in theme.seeds:
            assert passage.file in documents, (theme.id, passage.file)
            for sentence in passage.sentences:
                assert sentence in documents[passage.file], (theme.id, sentence[:60])
                checked += 1
    assert checked >= 25


def test_every_seed_document_feeds_at_least_one_theme(themes: ThemeSet) -> None:
    used = {passage.file for theme in themes.themes for passage in theme.seeds}
    assert used == set(load_seed_documents())


def test_themes_file_errors_name_the_problem(tmp_path: Path) -> None:
    text = (SEEDS_DIR / "themes.toml").read_text(encoding="utf-8")
    broken = tmp_path / "themes.toml"
    broken.write_text(text.replace('id = "business-models"', 'id = "business"'), encoding="utf-8")
    with pytest.raises(ThemesError, match="missing: \\['business-models'\\]"):
        load_themes(broken)
    broken.write_text(text.replace('version = "', 'old_version = "', 1), encoding="utf-8")
    with pytest.raises(ThemesError, match="version"):
        load_themes(broken)
    broken.write_text(text + "\n[scoring]\nscale = 'big'\n", encoding="utf-8")
    with pytest.raises(ThemesError, match="not valid TOML|scale"):
        load_themes(broken)


# --- seed repair ---------------------------------------------------------------------------


def test_no_loaded_seed_contains_mojibake() -> None:
    documents = load_seed_documents()
    for name, text in documents.items():
        assert not is_bad(text), name
        assert not re.search("[\u0e00-\u0e7f]", text), name  # Thai letters only appear as damage
        assert "Ÿ" not in text and "â€" not in text, name
    repaired = documents["002_f5cf82a2356e469f.txt"]
    assert "🌈 Abstract" in repaired
    assert "🙋 Q&A" in repaired


def test_seed_files_stay_as_shipped() -> None:
    raw = (SEEDS_DIR / "002_f5cf82a2356e469f.txt").read_text(encoding="utf-8")
    assert "๐ŸŒˆ" in raw


@pytest.mark.parametrize(
    "text",
    [
        "café, naïve, Zürich — “quoted” and ‘single’ • bullet…",
        "Ünïcödé text with € and ™ stays",
        "Thai script ภาษาไทย stays",
    ],
)
def test_repair_keeps_real_text(text: str) -> None:
    assert repair_text(text) == text


def test_repair_fixes_both_kinds_of_mojibake() -> None:
    assert repair_text("๐ŸŒˆ rainbow") == "🌈 rainbow"
    assert repair_text("Metaâ€™s model") == "Meta’s model"


# --- the tagger ----------------------------------------------------------------------------


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def _score(records: Sequence[dict[str, Any]], results: Sequence[TagResult]) -> dict[str, float]:
    rel = [0, 0, 0]
    per = {t: [0, 0, 0] for t in THEME_IDS}
    for record, result in zip(records, results):
        rel[0] += result.relevant and record["relevant"]
        rel[1] += result.relevant and not record["relevant"]
        rel[2] += record["relevant"] and not result.relevant
        predicted = set(result.themes)
        for theme in THEME_IDS:
            gold = theme in record["themes"]
            per[theme][0] += gold and theme in predicted
            per[theme][1] += theme in predicted and not gold
            per[theme][2] += gold and theme not in predicted
    macro = sum(_prf(*c)[2] for c in per.values()) / len(per)
    micro = _prf(*(sum(c[i] for c in per.values()) for i in range(3)))[2]
    return {"relevance_f1": _prf(*rel)[2], "macro_f1": macro, "micro_f1": micro}


def test_dev_set_quality_stays_above_pinned_floors(
    tagger: LexicalTagger, dev: list[dict[str, Any]]
) -> None:
    # Measured with the shipped thresholds: relevance F1 0.972, macro F1 0.863, micro 0.856.
    results = [tagger.tag(r["text"], r["title"]) for r in dev]
    scores = _score(dev, results)
    assert len(dev) == 103
    assert scores["relevance_f1"] >= 0.95, scores
    assert scores["macro_f1"] >= 0.84, scores
    assert scores["micro_f1"] >= 0.83, scores


def test_cross_validated_macro_f1_stays_above_pinned_floors(
    tagger: LexicalTagger, themes: ThemeSet, dev: list[dict[str, Any]]
) -> None:
    from bench.tagging import cross_validate

    results = [tagger.tag(r["text"], r["title"]) for r in dev]
    # Measured: 2-fold 0.818, 5-fold 0.841 (tuning never starts from the shipped thresholds).
    assert cross_validate(dev, results, themes, 2).macro_f1 >= 0.80
    assert cross_validate(dev, results, themes, 5).macro_f1 >= 0.82


def test_scattered_passing_words_count_less_than_a_focused_sentence(themes: ThemeSet) -> None:
    focused = "Open-weight Llama models face regulation: lawmakers and regulators debate legislation."
    filler = "Open-weight Llama models are on the hub. The weights are public. Many people use them."
    passing = ("Lawmakers met.", "Regulation came up.", "So did legislation.", "Regulators wrote.")
    scattered = "".join(f"{filler} {words} " for words in (*passing, "A senator spoke."))
    whole = LexicalTagger(dataclasses.replace(themes, scoring=dataclasses.replace(themes.scoring, spread=1.0)))
    split = LexicalTagger(themes)
    assert themes.scoring.spread < 1.0
    theme = "regulation-and-policy"
    # With focus, passing words spread over the text weigh less than the same words together.
    assert split.tag(scattered).scores[theme] < whole.tag(scattered).scores[theme]
    assert split.tag(focused).scores[theme] == whole.tag(focused).scores[theme] > 0


def _with_rules_only(themes: ThemeSet, theme_id: str, rules: tuple[SentenceRule, ...]) -> ThemeSet:
    replaced = tuple(
        dataclasses.replace(t, rules=rules) if t.id == theme_id else dataclasses.replace(t, rules=())
        for t in themes.themes
    )
    return dataclasses.replace(themes, themes=replaced)


def test_a_sentence_rule_counts_only_when_its_groups_meet_in_one_sentence(themes: ThemeSet) -> None:
    theme = "enterprise-adoption"
    rule = SentenceRule("test", 5.0, (("hospitals",), ("rolled out",)))
    with_rule = LexicalTagger(_with_rules_only(themes, theme, (rule,)))
    without = LexicalTagger(_with_rules_only(themes, theme, ()))
    together = "Open-weight Llama models are popular. Hospitals rolled out the open model last year."
    apart = "Open-weight Llama models are popular with hospitals. The open model rolled out last year."
    # Together in one sentence the rule adds its weight; split over two sentences it adds nothing.
    assert with_rule.tag(together).scores[theme] > without.tag(together).scores[theme]
    assert with_rule.tag(apart).scores[theme] == without.tag(apart).scores[theme]
    # The sentence that satisfied the rule is the evidence.
    result = with_rule.tag(together + " Nothing else here.")
    tag = next((t for t in result.tags if t.theme == theme), None)
    assert tag is not None and "Hospitals rolled out" in tag.evidence, result.scores
    # A rule in the title counts like the title's phrases.
    assert with_rule.tag("Open-weight Llama models.", title="Hospitals rolled out Llama").scores[theme] > (
        without.tag("Open-weight Llama models.", title="Hospitals rolled out Llama").scores[theme]
    )


def test_shipped_themes_have_sentence_rules_for_enterprise_adoption(themes: ThemeSet) -> None:
    rules = themes.theme("enterprise-adoption").rules
    assert rules and all(len(rule.groups) >= 2 and rule.weight > 0 for rule in rules)
    tagger = LexicalTagger(themes)
    text = (
        "Banks and hospitals are adopting open-weight models such as Llama and Mistral. "
        "Several companies deployed them in production on their own servers last quarter."
    )
    result = tagger.tag(text)
    assert result.relevant and result.themes[:1] == ("enterprise-adoption",), result.scores


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("weight = 2.0\ngroups = [['adopt*']]", "at least two"),
        ("weight = 0\ngroups = [['a'], ['b']]", "weight"),
        ("weight = 1.0\ngroups = [['a'], []]", "non-empty"),
        ("weight = 1.0\ngroups = [['a'], ['% share']]", "symbol"),
        ("weight = 1.0\nwords = [['a'], ['b']]", "unknown keys"),
    ],
)
def test_bad_sentence_rules_are_rejected(tmp_path: Path, rule: str, message: str) -> None:
    text = (SEEDS_DIR / "themes.toml").read_text(encoding="utf-8")
    broken = tmp_path / "themes.toml"
    broken.write_text(text.rstrip("\n") + "\n\n[[themes.rules]]\n" + rule + "\n", encoding="utf-8")
    with pytest.raises(ThemesError, match=message):
        load_themes(broken)


def test_hard_negatives_in_dev_are_rejected(tagger: LexicalTagger, dev: list[dict[str, Any]]) -> None:
    negatives = [r for r in dev if not r["relevant"]]
    rejected = sum(not tagger.tag(r["text"], r["title"]).relevant for r in negatives)
    # 29 of the 32 close-to-topic negatives are rejected today.
    assert rejected >= 28


@pytest.mark.parametrize(
    "text",
    [
        # Closed-model product news.
        ("OpenAI announced new ChatGPT plans today. GPT-4o is now cheaper through the API, and "
        "Anthropic answered with a faster Claude model for its enterprise customers."),
        # Open-source software without AI.
        ("The database project changed its license from BSD to a source-available license, and "
        "the community forked it under the Linux Foundation to keep an open source version."),
        # AI regulation with no open models in it.
        ("Lawmakers in the European Parliament approved rules that sort AI systems into risk "
        "tiers, banning social scoring and requiring conformity assessments for high-risk uses."),
        # Chips.
        ("The startup unveiled an inference chip with more memory bandwidth than rival GPUs and "
        "raised money to build a new data centre for its cloud service."),
    ],
)
def test_written_hard_negatives_are_not_relevant(tagger: LexicalTagger, text: str) -> None:
    result = tagger.tag(text)
    assert not result.relevant, result.relevance
    assert result.tags == ()


@pytest.mark.parametrize(
    ("text", "theme"),
    [
        (
            ("Meta published the weights of Llama 3.1 under its community license. The license "
            "lets companies build on the open model but requires a separate agreement for any "
            "service with more than 700 million monthly active users."),
            "licensing-and-openness",
        ),
        (
            ("Quantized to 4-bit, the open-weight Gemma model runs locally on a laptop or a "
            "phone, so inference moves from the cloud onto the device without a network link."),
            "on-device-inference",
        ),
        (
            ("Senators asked the Commerce Department whether export controls should cover "
            "open-source AI models, citing national security and adversarial nations."),
            "regulation-and-policy",
        ),
        (
            ("Open-weight models such as DeepSeek and Qwen now match GPT-4 on several benchmarks, "
            "closing the gap with proprietary frontier models from OpenAI and Anthropic."),
            "open-vs-closed-race",
        ),
    ],
)
def test_open_model_news_is_relevant_with_the_right_theme(
    tagger: LexicalTagger, text: str, theme: str
) -> None:
    result = tagger.tag(text)
    assert result.relevant, result.relevance
    assert result.themes and result.themes[0] == theme, result.scores


def test_result_shape_evidence_and_determinism(tagger: LexicalTagger) -> None:
    text = load_seed_documents()["001_85a7d1030bda2f28.txt"]
    first = tagger.tag(text)
    second = LexicalTagger(load_themes()).tag(text)
    assert first == second
    assert first.themes_version == tagger.version
    assert set(first.scores) == set(THEME_IDS)
    assert all(0.0 <= s <= 1.0 for s in first.scores.values())
    assert 0.0 <= first.relevance <= 1.0 and first.relevant
    assert 1 <= len(first.tags) <= 3
    flat = re.sub(r"\s+", " ", text)
    for tag in first.tags:
        assert tag.score == first.scores[tag.theme]
        sentences = [s for s in split_sentences(tag.evidence)]
        assert 1 <= len(sentences) <= 4  # one or two text sentences (a heading may ride along)
        for sentence in sentences:
            assert sentence.rstrip("…") in flat or sentence in flat
    # Tags are in order of decreasing score.
    assert [t.score for t in first.tags] == sorted((t.score for t in first.tags), reverse=True)
    assert "safety-security-misuse" in first.themes
    misuse = next(t for t in first.tags if t.theme == "safety-security-misuse")
    assert "misuse" in misuse.evidence


def test_irrelevant_text_keeps_scores_but_gets_no_tags(tagger: LexicalTagger) -> None:
    result = tagger.tag("The city council approved the budget for new bicycle lanes downtown.")
    assert not result.relevant and result.tags == ()
    assert set(result.scores) == set(THEME_IDS)
    empty = tagger.tag("")
    assert not empty.relevant and empty.relevance == 0.0


def test_assign_themes_respects_thresholds_and_the_relative_floor(themes: ThemeSet) -> None:
    scores = {t: 0.0 for t in THEME_IDS} | {"licensing-and-openness": 0.9, "platform-and-ecosystem": 0.56}
    relevant, chosen = assign_themes(scores, relevance=0.9, themes=themes)
    assert relevant and chosen == ("licensing-and-openness",)  # 0.56 < 0.65 * 0.9
    assert assign_themes(scores, relevance=0.0, themes=themes) == (False, ())


def test_throughput_on_five_kb_texts(tagger: LexicalTagger) -> None:
    posts = sorted((SAMPLE_DIR / "articles").glob("*.md"))[:40]
    texts = [p.read_text(encoding="utf-8")[:5000] for p in posts]
    tagger.tag(texts[0])
    started = time.process_time()
    for _ in range(5):
        for text in texts:
            tagger.tag(text)
    rate = 5 * len(texts) / max(time.process_time() - started, 1e-9)
    # bench/tagging.py measures about 1,300/s (CPU time) on this machine; this floor only
    # catches an accidental slowdown by a large factor.
    assert rate >= 300, rate


# --- newsmon tag ---------------------------------------------------------------------------


def test_tag_command_prints_the_fixed_contract(tmp_path: Path, dev: list[dict[str, Any]]) -> None:
    source = tmp_path / "in.jsonl"
    rows = [{"id": r["id"], "text": r["text"]} for r in dev[:6]]
    rows.append({"id": 7, "text": "Bicycle lanes downtown."})
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["tag", "--jsonl", str(source)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines] == [r["id"] for r in rows]
    tagger = load_tagger()
    for row, line in zip(rows, lines):
        assert set(line) == {"id", "relevant", "themes", "scores"}
        expected = tagger.tag(row["text"])
        assert line["relevant"] is expected.relevant
        assert line["themes"] == list(expected.themes)
        assert line["scores"] == dict(expected.scores)
        assert set(line["scores"]) == set(THEME_IDS)
    assert lines[-1]["relevant"] is False and lines[-1]["themes"] == []
    assert any(line["relevant"] and line["themes"] for line in lines)


def test_tag_command_reads_standard_input() -> None:
    text = "Meta released Llama 3.1 as an open-weight model under its community license."
    result = CliRunner().invoke(app, ["tag", "--jsonl", "-"], input=json.dumps({"id": "a", "text": text}))
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout)
    assert line["id"] == "a" and line["relevant"] is True
    assert "licensing-and-openness" in line["themes"]


def test_tag_command_rejects_bad_lines_with_their_number(tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text('{"id": 1, "text": "ok"}\n{not json}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["tag", "--jsonl", str(source)])
    assert result.exit_code != 0
    assert isinstance(result.exception, UserError) and "line 2" in str(result.exception)
    source.write_text('{"id": 1}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["tag", "--jsonl", str(source)])
    assert isinstance(result.exception, UserError) and '"text"' in str(result.exception)


# --- semantic option -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not semantic_available(), reason="the optional `semantic` extra is not installed")
@pytest.mark.skipif(
    os.environ.get("NEWSMON_SEMANTIC_TESTS") != "1",
    reason="loading torch and the model takes about a minute; set NEWSMON_SEMANTIC_TESTS=1",
)
def test_semantic_tagger_scores_themes_from_seed_passages() -> None:
    tagger = load_tagger(kind="semantic")
    result = tagger.tag(
        "The open-weight model runs locally on a phone after 4-bit quantization. "
        "Running it on the device removes the cloud cost of every request."
    )
    assert tagger.version.endswith("+semantic")
    assert set(result.scores) == set(THEME_IDS)
    assert all(0.0 <= s <= 1.0 and not math.isnan(s) for s in result.scores.values())
    assert result.relevant
    assert max(result.scores, key=lambda t: result.scores[t]) == "on-device-inference"


def test_word_memo_is_bounded_without_losing_words(themes: ThemeSet, monkeypatch: pytest.MonkeyPatch) -> None:
    import parsers.themes as module

    monkeypatch.setattr(module, "_MEMO_LIMIT", 5)
    tagger = LexicalTagger(themes)
    text = "Meta released the open-weight Llama model under a community license for commercial use."
    expected = LexicalTagger(themes).tag(text)
    for _ in range(3):
        assert tagger.tag(text + " Other words here.") is not None
        assert tagger.tag(text) == expected

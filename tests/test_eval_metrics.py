"""Metric functions against hand-computed values."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from eval.metrics import (
    SUMMARY_KEYS,
    QuestionRecord,
    abstain_precision,
    abstain_recall,
    answer_hit,
    answer_hit_rate,
    citation_precision,
    grounded_rate,
    hit_answers,
    hit_at_k,
    mrr_at_k,
    ndcg,
    ndcg_at_k,
    percentile,
    recall_at_k,
    reciprocal_rank,
    record_from_json,
    record_to_json,
    summarise,
)

T, F = True, False
LISTS = [[F, T, F], [T, F, F], [F, F, F]]
LOG3 = math.log2(3)


def test_recall_at_k() -> None:
    assert recall_at_k(LISTS, 1) == pytest.approx(1 / 3)
    assert recall_at_k(LISTS, 2) == pytest.approx(2 / 3)
    assert recall_at_k(LISTS, 10) == pytest.approx(2 / 3)
    assert recall_at_k([], 5) is None
    assert hit_at_k([F, F, T], 3) and not hit_at_k([F, F, T], 2)


def test_mrr_at_k() -> None:
    assert mrr_at_k(LISTS, 3) == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert mrr_at_k(LISTS, 1) == pytest.approx(1 / 3)
    assert reciprocal_rank([F, F, F, T], 4) == 0.25
    assert reciprocal_rank([F, F, F, T], 3) == 0.0
    with pytest.raises(ValueError, match="k must be at least 1"):
        reciprocal_rank([T], 0)


def test_ndcg_one_relevant_at_rank_two() -> None:
    # DCG = 1/log2(3); ideal: one relevant passage at rank 1 -> 1.
    assert ndcg([F, T, F], 3) == pytest.approx(1 / LOG3)  # 0.6309


def test_ndcg_uses_known_relevant_count() -> None:
    # Two relevant passages exist, one retrieved at rank 2: ideal = 1 + 1/log2(3).
    assert ndcg([F, T, F], 3, n_relevant=2) == pytest.approx((1 / LOG3) / (1 + 1 / LOG3))  # 0.3869


def test_ndcg_two_relevant() -> None:
    # DCG = 1 + 1/log2(4) = 1.5; ideal = 1 + 1/log2(3).
    assert ndcg([T, F, T], 3) == pytest.approx(1.5 / (1 + 1 / LOG3))  # 0.9197
    # Cut at 2: the relevant passage at rank 3 counts for the ideal (capped at k), not for DCG.
    assert ndcg([T, F, T], 2) == pytest.approx(1 / (1 + 1 / LOG3))  # 0.6131
    assert ndcg([T, T], 2) == pytest.approx(1.0)
    assert ndcg([F, F], 2) == 0.0


def test_ndcg_at_k_averages() -> None:
    assert ndcg_at_k(LISTS, 3) == pytest.approx((1 / LOG3 + 1 + 0) / 3)
    assert ndcg_at_k(LISTS, 3, [2, None, 1]) == pytest.approx(((1 / LOG3) / (1 + 1 / LOG3) + 1 + 0) / 3)
    with pytest.raises(ValueError, match="n_relevant has 1 entries for 3"):
        ndcg_at_k(LISTS, 3, [1])


def test_answer_hit() -> None:
    assert answer_hit("盒马7000个社区免费提供45万件蔬菜。", ["45万件"])
    assert answer_hit("The answer is\nNew   York.", ["new york"])
    assert answer_hit("x", ["nope", " x "])
    assert not answer_hit("盒马提供了蔬菜。", ["45万件"])
    assert not answer_hit("", ["45万件"])
    assert not answer_hit("anything", [])
    assert answer_hit_rate(["45万件", "", "no"], [["45万件"], ["a"], ["b"]]) == pytest.approx(1 / 3)


def test_grounded_and_citation_precision_pool_over_answers() -> None:
    assert grounded_rate([[T, F], [T, T, T], []]) == pytest.approx(4 / 5)
    assert citation_precision([[T], [F, F], []]) == pytest.approx(1 / 3)
    assert grounded_rate([[], []]) is None
    assert citation_precision([]) is None


def test_abstention_precision_and_recall() -> None:
    abstained = [T, T, F, F, T]
    answerable = [F, T, F, T, F]
    # Abstained on items 0, 1, 4; of these 0 and 4 are unanswerable. Unanswerable: 0, 2, 4.
    assert abstain_precision(abstained, answerable) == pytest.approx(2 / 3)
    assert abstain_recall(abstained, answerable) == pytest.approx(2 / 3)
    assert abstain_precision([F, F], [F, T]) is None
    assert abstain_recall([T], [T]) is None
    with pytest.raises(ValueError, match="2 abstention flags for 1"):
        abstain_recall([T, F], [T])


def test_percentile_interpolates_linearly() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == pytest.approx(2.5)
    assert percentile([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)  # position 2.85
    assert percentile([1.0, 2.0, 3.0, 4.0], 0) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="within 0..100"):
        percentile([1.0], 101)


def record(**changes: Any) -> QuestionRecord:
    base = QuestionRecord(
        item_id="q",
        lang="zh",
        answerable=True,
        passage_ids=("d:1", "d:2"),
        scores=(0.9, 0.5),
        relevant=(True, False),
        answer="盒马提供45万件。",
        abstained=False,
        gold_answers=("45万件",),
        sentence_supported=(True,),
        citation_relevant=(True,),
        latency_ms=10.0,
    )
    return replace(base, **changes)


RECORDS = [
    # zh, answerable, relevant at rank 1, answer hit, grounded, citation relevant.
    record(item_id="zh-1"),
    # zh, unanswerable, abstained.
    record(
        item_id="zh-2",
        answerable=False,
        relevant=(False, False),
        answer="",
        abstained=True,
        gold_answers=(),
        sentence_supported=(),
        citation_relevant=(),
        latency_ms=20.0,
    ),
    # en, answerable, relevant at rank 2, answered wrongly: one of two sentences supported,
    # citations to the irrelevant and the relevant passage.
    record(
        item_id="en-1",
        lang="en",
        relevant=(False, True),
        answer="Something else. More.",
        sentence_supported=(True, False),
        citation_relevant=(False, True),
        latency_ms=30.0,
    ),
    # en, answerable, nothing relevant retrieved, abstained (an answer_hit miss).
    record(
        item_id="en-2",
        lang="en",
        relevant=(False, False),
        answer="",
        abstained=True,
        sentence_supported=(),
        citation_relevant=(),
        latency_ms=40.0,
    ),
    # en, unanswerable, answered anyway: its citation is not judged for citation precision.
    record(
        item_id="en-3",
        lang="en",
        answerable=False,
        relevant=(False, False),
        answer="Made up.",
        gold_answers=(),
        sentence_supported=(False,),
        citation_relevant=(False,),
        latency_ms=50.0,
    ),
]


def test_summarise_overall() -> None:
    overall = summarise(RECORDS)["overall"]
    assert list(overall) == list(SUMMARY_KEYS)
    expected = {
        "recall@1": 1 / 3,  # answerable: zh-1, en-1, en-2
        "recall@5": 2 / 3,
        "recall@10": 2 / 3,
        "mrr@10": (1 + 1 / 2 + 0) / 3,
        "ndcg@10": (1 + 1 / LOG3 + 0) / 3,
        "answer_hit": 1 / 3,  # en-2's abstention is a miss
        "grounded": 2 / 4,  # sentences of non-abstained answers: T | T F | F
        "citation_precision": 2 / 3,  # answerable items' citations: T | F T
        "abstain_precision": 1 / 2,  # abstained zh-2 (unanswerable), en-2 (answerable)
        "abstain_recall": 1 / 2,  # unanswerable zh-2 (abstained), en-3 (answered)
        "latency_ms_p50": 30.0,
        "latency_ms_p95": 48.0,  # position 3.8 between 40 and 50
    }
    for key, value in expected.items():
        assert overall[key] == pytest.approx(value), key
    assert (overall["n"], overall["n_answerable"], overall["n_unanswerable"]) == (5, 3, 2)


def test_summarise_by_language() -> None:
    by_lang = summarise(RECORDS)["by_lang"]
    assert list(by_lang) == ["zh", "en"]
    zh, en = by_lang["zh"], by_lang["en"]
    assert (zh["n"], zh["recall@1"], zh["answer_hit"], zh["abstain_precision"], zh["abstain_recall"]) == (
        2,
        1.0,
        1.0,
        1.0,
        1.0,
    )
    assert zh["latency_ms_p50"] == pytest.approx(15.0)
    assert (en["n"], en["recall@1"], en["recall@5"], en["mrr@10"]) == (3, 0.0, 0.5, 0.25)
    assert en["abstain_precision"] == 0.0 and en["abstain_recall"] == 0.0
    assert en["citation_precision"] == pytest.approx(1 / 2)


def test_summarise_empty_language_has_null_rates() -> None:
    summary = summarise([record()])
    en = summary["by_lang"]["en"]
    assert en["n"] == 0
    assert all(en[k] is None for k in SUMMARY_KEYS if not k.startswith("n"))
    assert summary["overall"]["abstain_precision"] is None  # nothing abstained


def test_record_checks_parallel_lists_and_round_trips() -> None:
    with pytest.raises(ValueError, match="same length"):
        record(scores=(0.9,))
    assert record().top_score == 0.9
    assert record(passage_ids=(), scores=(), relevant=()).top_score is None
    for r in RECORDS + [record(confidence=0.7, n_relevant=2, question="问")]:
        assert record_from_json(record_to_json(r)) == r


def test_summarise_by_language_pair() -> None:
    records = [
        record(item_id="a", lang="en", gold_lang="zh"),
        record(item_id="b", lang="en", gold_lang="zh", relevant=(False, True)),
        record(item_id="c", lang="en", gold_lang="en"),
        record(item_id="d", lang="zh", gold_lang=None),  # pair unknown: counted by language only
    ]
    summary = summarise(records)
    assert list(summary["by_pair"]) == ["en-en", "en-zh"]
    assert summary["by_pair"]["en-zh"]["n"] == 2 and summary["by_pair"]["en-zh"]["recall@1"] == 0.5
    assert summary["by_pair"]["en-en"]["recall@1"] == 1.0
    assert summary["by_lang"]["en"]["n"] == 3 and summary["by_lang"]["zh"]["n"] == 1
    assert record_from_json(record_to_json(records[0])).pair == "en-zh"
    assert record_from_json(record_to_json(records[3])).pair is None


def test_a_generated_answer_hits_with_the_gold_answers_in_the_questions_language() -> None:
    """An English question over a Chinese passage: the extractive answer quotes the passage (its gold is
    Chinese), the generated one is written in English (checked against the English gold too)."""
    english = ("450,000",)
    quoted = record(item_id="x", lang="en", gold_lang="zh", question_lang_answers=english)
    written = replace(quoted, item_id="g", answer="Hema gave away 450,000 items.", answer_mode="generated")
    wrong = replace(written, item_id="w", answer="Hema gave away 90,000 items.")
    assert hit_answers(quoted) == ("45万件",)
    assert hit_answers(written) == ("45万件", "450,000")
    # Without the English gold the generated answer would be a miss.
    assert summarise([replace(written, question_lang_answers=())])["overall"]["answer_hit"] == 0.0
    summary = summarise([quoted, written, wrong])
    assert summary["by_pair"]["en-zh"]["answer_hit"] == pytest.approx(2 / 3)
    # An extractive answer is not checked against the question-language answers.
    assert summarise([replace(quoted, answer="450,000")])["overall"]["answer_hit"] == 0.0
    assert record_from_json(record_to_json(written)) == written
    old = {k: v for k, v in record_to_json(quoted).items() if k != "question_lang_answers"}
    assert record_from_json(old).question_lang_answers == ()  # a record written before the field

"""The abstention model: fitting, scoring, its file format, and fitting it from eval records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from eval.errors import EvalError
from eval.fit import MODEL_FEATURES, fit_abstention, rescore
from eval.metrics import QuestionRecord
from index.store import SavedIndex
from service.abstention import (
    PAIRS,
    AbstentionModel,
    AbstentionModelError,
    Evidence,
    Logistic,
    auc,
    choose_threshold,
    cross_validated_auc,
    fit_logistic,
    pair_of,
    predict,
)
from service.answer import ExtractiveAnswerer


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Answerable questions have a larger margin and gap; ``top`` is noise."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.7).astype(np.float64)
    margin = 0.02 + 0.04 * y + rng.normal(0, 0.02, n)
    top = 0.85 + rng.normal(0, 0.03, n)
    gap = 0.005 + 0.02 * y + rng.normal(0, 0.01, n)
    return np.column_stack([margin, top, gap]), y


def test_auc_counts_pairs_and_ties() -> None:
    assert auc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert auc([0.1, 0.9], [True, False]) == 0.0
    assert auc([0.5, 0.5], [True, False]) == 0.5
    assert auc([0.5, 0.6], [True, True]) is None  # no negatives


def test_fit_logistic_learns_which_features_matter() -> None:
    x, y = synthetic(600)
    weights, bias = fit_logistic(x, y)
    margin, top, gap = weights
    assert margin > 0 and gap > 0
    assert abs(top) < min(margin, gap)  # noise gets a small weight
    probs = predict(weights, bias, x)
    assert auc(probs.tolist(), y.astype(bool).tolist()) > 0.9
    assert all(0.0 < p < 1.0 for p in probs)
    model = Logistic(("margin", "top", "gap"), weights, bias)
    assert model.probability(Evidence(*x[0], pair="zh-zh")) == pytest.approx(probs[0])
    held_out_x, held_out_y = synthetic(300, seed=1)
    held_out = predict(weights, bias, held_out_x)
    assert auc(held_out.tolist(), held_out_y.astype(bool).tolist()) > 0.9


def test_cross_validated_auc_is_deterministic_and_honest() -> None:
    x, y = synthetic(400)
    first = cross_validated_auc(x, y)
    assert first is not None and 0.9 < first <= 1.0
    assert cross_validated_auc(x, y) == first
    rng = np.random.default_rng(2)
    noise = rng.normal(size=(400, 3))
    noisy = cross_validated_auc(noise, y)
    assert noisy is not None and noisy < 0.65  # no signal, no separation out of fold


def test_the_threshold_keeps_answerable_questions_and_abstains_precisely() -> None:
    probabilities = [0.05, 0.10, 0.15, 0.20, 0.30, 0.40] + [0.12, 0.35] + [0.6 + i / 100 for i in range(30)]
    answerable = [False] * 6 + [True] * 2 + [True] * 30
    # Abstaining below 0.35 catches 5 of 6 unanswerable, at the cost of 1 of 32 answerable (kept 97%);
    # below 0.40 would cost the second one (kept 94%).
    assert choose_threshold(probabilities, answerable, keep=0.95, min_precision=0.8) == 0.35
    # Above 0.12, the answerable 0.12 brings the precision below 0.9 (2 of 3 at best).
    assert choose_threshold(probabilities, answerable, keep=0.95, min_precision=0.9) == 0.12
    # Keeping every answerable question answered also stops at 0.12.
    assert choose_threshold(probabilities, answerable, keep=1.0, min_precision=0.85) == 0.12
    hopeless = choose_threshold([0.5, 0.5, 0.5], [True, False, True], keep=0.97, min_precision=0.85)
    assert hopeless == 0.0  # never abstain on the model alone
    with pytest.raises(ValueError, match="answerable and unanswerable"):
        choose_threshold([0.1], [True], keep=0.9, min_precision=0.5)


def test_fit_logistic_refuses_one_class() -> None:
    with pytest.raises(ValueError, match="both"):
        fit_logistic(np.zeros((4, 3)), np.ones(4))


def test_model_round_trips_through_json(tmp_path: Path) -> None:
    cross = Logistic(("margin", "head"), (30.0, 2.0), -2.0, 0.0, 0.8)
    model = AbstentionModel(
        {"zh-zh": Logistic(("margin", "top", "gap"), (50.0, 1.0, 20.0), -3.0, 0.3), "en-en": cross}
        | {"en-zh": cross, "zh-en": cross},
        {"runs": ["r1"]},
    )
    path = tmp_path / "m.json"
    path.write_text(json.dumps(model.to_json()), encoding="utf-8")
    loaded = AbstentionModel.load(path)
    assert loaded == model
    same = Evidence(margin=0.05, top=0.9, gap=0.02, pair="zh-zh")
    other = Evidence(margin=0.05, top=0.9, gap=0.02, pair="en-zh", head=0.5)
    assert loaded.probability(same) == pytest.approx(1 / (1 + np.exp(-(2.5 + 0.9 + 0.4 - 3.0))))
    assert loaded.probability(other) == pytest.approx(
        1 / (1 + np.exp(-(1.5 + 1.0 - 2.0)))
    )  # its own features
    assert (loaded.threshold(same), loaded.threshold(other)) == (0.3, 0.0)
    assert (loaded.min_head("zh-zh"), loaded.min_head("en-zh")) == (0.0, 0.8)
    assert Evidence.from_json(other.to_json()) == other


def test_language_pairs() -> None:
    assert pair_of("en", "zh") == "en-zh"
    assert pair_of("zh", "und") == "zh-zh"  # a passage of no known language counts as the question's


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON"),
        ('{"models": {"zh-zh": {"features": ["pixels"], "weights": [1], "bias": 0}}}', "distinct names"),
        ('{"models": {"zh-zh": {"features": ["margin"], "weights": [1, 2], "bias": 0}}}', "2 weights for 1"),
        (
            '{"models": {"zh-zh": {"features": ["margin"], "weights": [1], "bias": 0}}}',
            "missing: en-en, en-zh",
        ),
        ('{"models": {"zh-zh": 1, "en-en": 2}}', "not an abstention"),
        ("[]", "not an abstention"),
    ],
)
def test_bad_model_files_are_refused_clearly(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "m.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AbstentionModelError, match=message):
        AbstentionModel.load(path)
    with pytest.raises(AbstentionModelError, match="not found"):
        AbstentionModel.load(tmp_path / "missing.json")


def test_the_shipped_model_loads_and_rises_with_the_evidence() -> None:
    model = AbstentionModel.load()
    assert model.fitted_on["runs"], "the shipped model records what it was fitted on"
    for pair, logistic in model.models.items():
        assert 0.0 <= logistic.threshold < 1.0 and 0.0 <= logistic.min_head <= 1.0
        weak = Evidence(0.0, 0.75, 0.0, pair, head=0.8, names=0.8, coverage=0.8)
        strong = Evidence(0.15, 0.95, 0.05, pair, head=1.0, names=1.0, coverage=1.0)
        assert model.probability(weak) < model.probability(strong), pair


def record(
    i: int, answerable: bool, evidence: Evidence, reason: str | None = None, confidence: float = 0.5
) -> QuestionRecord:
    return QuestionRecord(
        item_id=f"q{i}",
        lang=evidence.pair[:2],
        answerable=answerable,
        passage_ids=(),
        scores=(),
        relevant=(),
        answer="",
        abstained=reason is not None,
        gold_answers=(),
        sentence_supported=(),
        citation_relevant=(),
        latency_ms=1.0,
        confidence=confidence,
        evidence=evidence.to_json(),
        reason=reason,
    )


def synthetic_records(n: int) -> list[QuestionRecord]:
    x, y = synthetic(n)
    rng = np.random.default_rng(3)
    records = []
    for i, (row, label) in enumerate(zip(x, y, strict=True)):
        pair = PAIRS[i % len(PAIRS)]
        # Unanswerable questions often lack their focus: a head support of 0.5 instead of 1.
        head = 1.0 if label or rng.random() < 0.5 else 0.5
        records.append(record(i, bool(label), Evidence(*map(float, row), pair=pair, head=head)))
    return records


def test_fit_abstention_fits_each_pair_and_a_focus_threshold() -> None:
    records = synthetic_records(400)
    # Records whose answer type was not found are not the model's to decide.
    records.append(record(999, True, Evidence(-5.0, 0.0, 0.0, "zh-zh"), reason="type_mismatch"))
    # Nor are those under the margin floor: they abstain before the model is asked.
    records.append(record(998, False, Evidence(-0.5, 0.0, 0.0, "en-zh"), reason="off_topic"))
    model, fits = fit_abstention(records, sources=["runA"], min_margin=-0.2)
    assert [f.pair for f in fits] == list(PAIRS)
    assert sum(f.n_answerable + f.n_unanswerable for f in fits) == 400
    assert all(f.cv_auc is not None and f.cv_auc > 0.7 for f in fits)
    assert all(0.5 < f.model.min_head <= 1.0 for f in fits)  # the focus check catches head 0.5
    assert all(f.answerable_kept >= 0.97 for f in fits)
    assert model.fitted_on["runs"] == ["runA"]
    assert model.models["zh-zh"].features == MODEL_FEATURES


def test_fit_abstention_needs_unanswerable_questions_and_known_features() -> None:
    records = [record(i, True, Evidence(0.05, 0.9, 0.01, PAIRS[i % 4])) for i in range(40)]
    with pytest.raises(EvalError, match="neartopic"):
        fit_abstention(records)
    with pytest.raises(EvalError, match="distinct names"):
        fit_abstention(records, features={pair: ["margin", "margin"] for pair in PAIRS})


def test_rescore_replays_the_answerers_decision() -> None:
    records = synthetic_records(400)
    model, _ = fit_abstention(records, min_margin=-0.2)
    rescored = rescore(records, model, min_margin=-0.2)
    held = [r for r in rescored if r.abstained]
    assert held and {r.reason for r in held} <= {"focus_missing", "low_confidence"}
    assert all(r.sentence_supported == () and r.citation_relevant == () for r in held)
    for r in rescored:
        assert r.confidence == pytest.approx(model.probability(Evidence.from_json(r.evidence or {})))
    # A question the run's model held back has no recorded answer: it cannot be answered on replay.
    strong = Evidence(0.2, 0.95, 0.08, "zh-zh")
    with pytest.raises(ValueError, match="not recorded"):
        rescore([record(1, True, strong, reason="low_confidence")], model, min_margin=-0.2)


@pytest.mark.parametrize("pair", PAIRS)
def test_the_margin_floor_is_no_closer_than_background_text(pair: str) -> None:
    """Evidence no closer to the question than unrelated text is off topic; a small positive margin is the
    model's to weigh with the focus supports (the shipped model answers it when the focus is stated)."""
    answerer = ExtractiveAnswerer(
        cast(SavedIndex, None),  # decide() reads no index
        background={},
        abstention=AbstentionModel.load(None),
    )
    assert answerer.min_margin == 0.0
    stated = Evidence(0.01, 0.8, 0.02, pair)
    model = answerer.abstention
    assert answerer.decide(stated, model.probability(stated), typed=True) is None
    off = Evidence(-0.001, 0.8, 0.02, pair)
    assert answerer.decide(off, model.probability(off), typed=True) == "off_topic"
    unstated = Evidence(0.01, 0.8, 0.02, pair, 0.0, 0.0, 0.3, 0.2, 0.0)
    reason = answerer.decide(unstated, model.probability(unstated), typed=True)
    assert reason in ("focus_missing", "low_confidence")


def test_a_question_that_names_nothing_abstains_whatever_the_evidence() -> None:
    """ "hello", "What?", "为什么？": no evidence can state what such a question asks about, however close
    it is; the reason is ``focus_missing``, before the type check, and a rescore replays it."""
    answerer = ExtractiveAnswerer(
        cast(SavedIndex, None),  # decide() reads no index
        background={},
        abstention=AbstentionModel.load(None),
    )
    for pair in PAIRS:
        strong = Evidence(0.2, 0.95, 0.08, pair)
        assert answerer.decide(strong, 1.0, typed=True) is None
        nothing = Evidence(0.2, 0.95, 0.08, pair, asks=False)
        assert answerer.decide(nothing, 1.0, typed=True) == "focus_missing"
        assert answerer.decide(nothing, 1.0, typed=False) == "focus_missing"
    assert Evidence.from_json(nothing.to_json()) == nothing
    older = {k: v for k, v in strong.to_json().items() if k != "asks"}  # a run recorded before the flag
    assert Evidence.from_json(older).asks is True
    model, _ = fit_abstention(synthetic_records(400), min_margin=-0.2)
    held = record(1, False, nothing, reason="focus_missing")
    (rescored,) = rescore([held], model, min_margin=-0.2)
    assert rescored.abstained and rescored.reason == "focus_missing"

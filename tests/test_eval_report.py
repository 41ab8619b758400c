"""Reports: report.md and plots, TREC files, comparisons, abstention calibration."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from eval.errors import EvalError
from eval.metrics import QuestionRecord, summarise
from eval.report import (
    calibrate_threshold,
    confidence_of,
    format_comparison,
    recall_curves,
    write_report,
    write_trec_qrels,
    write_trec_run,
)

PNG = b"\x89PNG\r\n\x1a\n"


def record(item_id: str, top: float, answerable: bool, **changes: Any) -> QuestionRecord:
    base = QuestionRecord(
        item_id=item_id,
        lang="zh",
        answerable=answerable,
        passage_ids=("d:1", "d:2"),
        scores=(top, top / 2),
        relevant=(answerable, False),
        answer="盒马提供45万件。" if answerable else "",
        abstained=not answerable,
        gold_answers=("45万件",) if answerable else (),
        sentence_supported=(True,) if answerable else (),
        citation_relevant=(True,) if answerable else (),
        latency_ms=12.0,
        question=f"question {item_id}",
    )
    return replace(base, **changes)


# Top scores: answerable 0.9, 0.8, 0.4; unanswerable 0.3, 0.5.
RECORDS = [
    record("a1", 0.9, True),
    record("a2", 0.8, True, lang="en", relevant=(False, True)),
    record("a3", 0.4, True, lang="en", relevant=(False, False), answer="wrong"),
    record("u1", 0.3, False),
    record("u2", 0.5, False, lang="en", abstained=False, answer="made up"),
]


def test_calibrate_threshold_maximises_balanced_accuracy() -> None:
    threshold, table = calibrate_threshold(RECORDS)
    # Candidates 0.3 | 0.35 | 0.45 | 0.65 | 0.85 | just above 0.9. At 0.65 the abstentions are
    # 0.3, 0.4, 0.5: both unanswerable (recall 1) and 2 of 3 answerable kept -> (1 + 2/3) / 2.
    assert threshold == pytest.approx(0.65)
    assert [round(r.threshold, 4) for r in table] == [0.3, 0.35, 0.45, 0.65, 0.85, 0.9]
    best = next(r for r in table if r.threshold == threshold)
    assert (best.abstained, best.abstain_recall) == (3, 1.0)
    assert best.abstain_precision == pytest.approx(2 / 3)
    assert best.answerable_kept == pytest.approx(2 / 3)
    assert best.balanced_accuracy == pytest.approx(5 / 6)
    assert best.f1 == pytest.approx(0.8)
    lowest = table[0]
    assert (lowest.abstained, lowest.abstain_precision, lowest.balanced_accuracy) == (0, None, 0.5)
    assert table[-1].abstained == 5


def test_calibration_prefers_confidence_and_abstains_without_scores() -> None:
    assert confidence_of(record("x", 0.9, True, confidence=0.1)) == 0.1
    assert confidence_of(record("x", 0.9, True, passage_ids=(), scores=(), relevant=())) == -math.inf
    # A check before the model abstained: ruled out at any threshold, whatever the model said.
    assert confidence_of(record("x", 0.9, False, confidence=0.8, reason="focus_missing")) == -math.inf
    assert confidence_of(record("x", 0.9, False, confidence=0.2, reason="low_confidence")) == 0.2
    records = [
        record("a", 0.1, True, confidence=0.9),
        record("u", 0.9, False, confidence=0.2),
        record("n", 0.0, False, passage_ids=(), scores=(), relevant=()),
    ]
    threshold, _ = calibrate_threshold(records)
    assert threshold == pytest.approx(0.55)


def test_calibration_needs_both_classes() -> None:
    with pytest.raises(EvalError, match="got 3 answerable, 0 unanswerable"):
        calibrate_threshold(RECORDS[:3])


def test_trec_run_and_qrels(tmp_path: Path) -> None:
    run = tmp_path / "run.txt"
    write_trec_run(run, RECORDS[:2], "dense-e5")
    assert run.read_text(encoding="utf-8") == (
        "a1 Q0 d:1 1 0.900000 dense-e5\n"
        "a1 Q0 d:2 2 0.450000 dense-e5\n"
        "a2 Q0 d:1 1 0.800000 dense-e5\n"
        "a2 Q0 d:2 2 0.400000 dense-e5\n"
    )
    qrels = tmp_path / "qrels.txt"
    write_trec_qrels(qrels, RECORDS)
    assert qrels.read_text(encoding="utf-8") == "a1 0 d:1 1\na2 0 d:2 1\n"
    with pytest.raises(EvalError, match="run name without whitespace, got 'my run'"):
        write_trec_run(run, RECORDS, "my run")
    with pytest.raises(EvalError, match="question id without whitespace"):
        write_trec_run(run, [record("a b", 0.5, True)], "r")


def test_format_comparison_shows_values_and_deltas() -> None:
    a = {
        "overall": {"recall@1": 0.5, "grounded": None, "n": 10, "latency_ms_p50": 100.0},
        "by_lang": {"zh": {"recall@1": 0.25, "n": 5}},
    }
    b = {
        "overall": {"recall@1": 0.625, "grounded": 0.9, "n": 10, "latency_ms_p50": 80.25},
        "by_lang": {"zh": {"recall@1": 0.5, "n": 5}, "en": {"recall@1": 1.0, "n": 5}},
    }
    text = format_comparison(a, b, "baseline", "hybrid")
    lines = text.splitlines()
    assert lines[0] == "== overall =="
    assert lines[1].split() == ["metric", "baseline", "hybrid", "delta"]
    assert lines[2].split() == ["recall@1", "0.5000", "0.6250", "+0.1250"]
    assert "grounded - 0.9000 -".split() in [line.split() for line in lines]
    assert "n 10 10 +0".split() in [line.split() for line in lines]
    assert "latency_ms_p50 100.0 80.2 -19.8".split() in [line.split() for line in lines]
    assert text.index("== zh ==") < text.index("== en ==")
    assert "recall@1 - 1.0000 -".split() in [line.split() for line in lines]


def test_recall_curves_per_language() -> None:
    curves = recall_curves(RECORDS)
    assert set(curves) == {"overall", "zh", "en"}
    assert curves["zh"] == [1.0] * 10
    assert curves["en"][:2] == [0.0, 0.5]
    assert curves["overall"][0] == pytest.approx(1 / 3)


def test_write_report(tmp_path: Path) -> None:
    summary = summarise(RECORDS)
    paths = write_report(tmp_path / "report", summary, RECORDS)
    assert [p.name for p in paths] == ["report.md", "recall_at_k.png", "top_score_hist.png"]
    for png in paths[1:]:
        assert png.read_bytes().startswith(PNG)
    md = paths[0].read_text(encoding="utf-8")
    assert "| metric | overall | zh | en |" in md
    assert "| recall@1 | 0.3333 | 1.0000 | 0.0000 |" in md
    assert "![recall@k per language](recall_at_k.png)" in md
    assert "**0.6500**" in md
    assert "## Answerable, no relevant passage in the top 10 (1)" in md
    assert "`a3` [en] question a3" in md
    assert "## Unanswerable, but answered (1)" in md
    assert "answer: made up -- gold: (none)" in md


def test_write_report_without_unanswerable_items(tmp_path: Path) -> None:
    records = RECORDS[:3]
    write_report(tmp_path, summarise(records), records)
    assert "Not calibrated" in (tmp_path / "report.md").read_text(encoding="utf-8")

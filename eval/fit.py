"""Fit the abstention model (``service.abstention``) from eval runs: per language pair, the focus threshold
``min_head`` and a logistic model with its threshold.

The runs must hold near-topic unanswerable questions, or the model learns to spot off-topic ones only: fit
on the ``fit.jsonl`` half of the ``*-neartopic`` benchmarks (``citeqa convert``), report on ``report.jsonl``.
Every run records, per question, the evidence the answerer measured and the reason it abstained (if it
did), so the decision can be replayed with new thresholds. Per pair, on the questions that reach the focus
check (an answer-type mismatch or a margin under ``min_margin`` abstains first, whatever is fitted):

1. ``min_head``: the focus threshold that catches the most unanswerable questions while keeping
   ``focus_keep`` of the answerable ones and being right ``min_precision`` of the time (0 if none does);
2. a logistic model over ``features`` on the questions that pass it, with the threshold (chosen on
   out-of-fold probabilities, as the model will see new questions) that catches the most unanswerable
   ones while the pair as a whole (every check together, over all its answerable questions) keeps
   ``keep`` of them answered and the model's abstentions are right ``min_precision`` of the time (0: the
   model never abstains, where none does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from eval.errors import EvalError
from eval.metrics import QuestionRecord
from service.abstention import (
    PAIRS,
    AbstentionModel,
    Evidence,
    Logistic,
    auc,
    check_features,
    choose_threshold,
    cross_validated_auc,
    fit_logistic,
    out_of_fold,
)


@dataclass(frozen=True, slots=True)
class PairFit:
    """How the model for one language pair was fitted, and how well it separates."""

    pair: str
    n_answerable: int  # questions of the pair that reached the focus check
    n_unanswerable: int
    cv_auc: float | None  # 5-fold, out of fold, on the questions the model decides
    margin_auc: float | None  # the background margin alone, for comparison
    head_auc: float | None  # the focus support alone
    model: Logistic
    abstain_recall: float  # focus check and model together, at the thresholds, on the fitting runs
    abstain_precision: float | None
    answerable_kept: float  # over every answerable question of the pair, all checks together


# The signals every pair's model uses by default: each raises P(answerable) in every pair when fitted on the
# near-topic benchmarks. The passage's dense score and its lead over the second ("top", "gap") separate a
# little better on XQuAD but depend on the corpus (a one-article corpus has small leads), and the head
# support is the focus check's own threshold; all can be chosen with --features.
MODEL_FEATURES: tuple[str, ...] = ("margin", "names", "coverage", "relevance", "weakest")
DEFAULT_FEATURES: dict[str, tuple[str, ...]] = {pair: MODEL_FEATURES for pair in PAIRS}


def usable(record: QuestionRecord, min_margin: float) -> Evidence | None:
    """The record's evidence when the focus check and the model decide it: it was recorded, the answer
    type was found and the margin is above the floor; else None."""
    if record.evidence is None or record.reason in ("no_evidence", "type_mismatch"):
        return None
    evidence = Evidence.from_json(record.evidence)
    return evidence if evidence.margin >= min_margin else None


def choose_min_head(
    heads: Sequence[float], answerable: Sequence[bool], *, keep: float, min_precision: float
) -> float:
    """The focus threshold (abstain when head < it) catching the most unanswerable questions while
    keeping ``keep`` of the answerable ones and abstaining rightly ``min_precision`` of the time; 0.0 when
    none does. The same rule as ``choose_threshold``, over the focus support."""
    return choose_threshold(heads, answerable, keep=keep, min_precision=min_precision)


def fit_abstention(
    records: Sequence[QuestionRecord],
    *,
    l2: float = 1.0,
    keep: float = 0.97,
    focus_keep: float = 0.99,
    min_precision: float = 0.85,
    min_margin: float = 0.0,
    features: Mapping[str, Sequence[str]] = DEFAULT_FEATURES,
    sources: Sequence[str] = (),
) -> tuple[AbstentionModel, list[PairFit]]:
    """Per language pair, ``min_head`` and a logistic model over that pair's ``features`` with its threshold
    (see the module docstring). ``sources`` name the runs, for the record."""
    try:
        checked = {pair: check_features(list(features[pair])) for pair in PAIRS}
    except (KeyError, ValueError) as exc:
        raise EvalError(f"features for each of {', '.join(PAIRS)}: {exc}") from exc
    rows: dict[str, list[tuple[Evidence, bool]]] = {pair: [] for pair in PAIRS}
    answerable_total = dict.fromkeys(PAIRS, 0)
    for record in records:
        pair = None if record.evidence is None else str(record.evidence.get("pair"))
        if pair in answerable_total and record.answerable:
            answerable_total[pair] += 1
        evidence = usable(record, min_margin)
        if evidence is not None and evidence.pair in rows:
            rows[evidence.pair].append((evidence, record.answerable))
    fits = []
    for pair in PAIRS:
        labels = np.array([answerable for _, answerable in rows[pair]], dtype=bool)
        n_answerable = int(labels.sum())
        n_unanswerable = len(labels) - n_answerable
        if n_answerable < 5 or n_unanswerable < 5:
            raise EvalError(
                f"fitting the {pair} model needs at least 5 answerable and 5 unanswerable questions with "
                f"recorded evidence (got {n_answerable} and {n_unanswerable}); evaluate the fit.jsonl of the "
                "near-topic benchmarks first (`citeqa convert xquad-zh-neartopic ...`)"
            )
        heads = np.array([e.head for e, _ in rows[pair]])
        min_head = choose_min_head(
            heads.tolist(), labels.tolist(), keep=focus_keep, min_precision=min_precision
        )
        passed = heads >= min_head
        lost_before = answerable_total[pair] - n_answerable  # abstained by the type check or the margin
        lost_focus = int((~passed & labels).sum())
        x = np.array([evidence.vector(checked[pair]) for evidence, _ in rows[pair]])
        xs, ys = x[passed], labels[passed].astype(np.float64)
        if len(set(ys.tolist())) < 2:
            weights, bias = tuple(0.0 for _ in checked[pair]), 10.0  # nothing left to separate
            probabilities = np.ones(len(ys))
            threshold = 0.0
            cv = None
        else:
            weights, bias = fit_logistic(xs, ys, l2=l2)
            # The threshold is chosen on out-of-fold probabilities, as the model will score questions
            # it was not fitted on (in-sample ones flatter its precision).
            probabilities = out_of_fold(xs, ys, l2=l2)
            # What the model may still cost, so that the pair as a whole keeps ``keep`` answered.
            allowed = (1.0 - keep) * answerable_total[pair] - lost_before - lost_focus
            sub_keep = max(1.0 - max(allowed, 0.0) / max(int(ys.sum()), 1), 1e-9)
            threshold = (
                choose_threshold(
                    probabilities.tolist(), (ys == 1).tolist(), keep=sub_keep, min_precision=min_precision
                )
                if sub_keep < 1.0
                else 0.0
            )
            cv = cross_validated_auc(xs, ys, l2=l2)
        model_abstains = np.zeros(len(labels), dtype=bool)
        model_abstains[np.flatnonzero(passed)] = probabilities < threshold
        abstains = ~passed | model_abstains
        caught = int((abstains & ~labels).sum())
        lost = lost_before + int((abstains & labels).sum())
        fits.append(
            PairFit(
                pair=pair,
                n_answerable=n_answerable,
                n_unanswerable=n_unanswerable,
                cv_auc=cv,
                margin_auc=auc([e.margin for e, _ in rows[pair]], labels.tolist()),
                head_auc=auc(heads.tolist(), labels.tolist()),
                model=Logistic(checked[pair], weights, bias, threshold, min_head),
                abstain_recall=caught / n_unanswerable,
                abstain_precision=caught / int(abstains.sum()) if abstains.any() else None,
                answerable_kept=1.0 - lost / answerable_total[pair] if answerable_total[pair] else 1.0,
            )
        )
    fitted_on: dict[str, Any] = {
        "runs": list(sources),
        "l2": l2,
        "keep": keep,
        "focus_keep": focus_keep,
        "min_precision": min_precision,
        "min_margin": min_margin,
        "pairs": {
            f.pair: {
                "answerable": f.n_answerable,
                "unanswerable": f.n_unanswerable,
                "cv_auc": f.cv_auc,
                "margin_auc": f.margin_auc,
                "head_auc": f.head_auc,
                "abstain_recall": f.abstain_recall,
                "abstain_precision": f.abstain_precision,
                "answerable_kept": f.answerable_kept,
            }
            for f in fits
        },
    }
    return AbstentionModel({f.pair: f.model for f in fits}, fitted_on), fits


def rescore(
    records: Sequence[QuestionRecord], model: AbstentionModel, *, min_margin: float
) -> list[QuestionRecord]:
    """``records`` as the answerer would have decided them with ``model`` (``decide`` of
    ``service.answer``): every question's evidence and answer are recorded, so a refitted model can be
    measured on a run without running it again.

    Exact for questions the run answered or abstained on before the model (``no_evidence``,
    ``type_mismatch``, ``off_topic``, and ``focus_missing`` for a question that names nothing); a question
    the run's own model held back (``focus_missing``, ``low_confidence``) that ``model`` would answer has
    no recorded answer, so it is refused with a ValueError: rescore runs made with a model that never
    abstains (``threshold`` and ``min_head`` 0).
    """
    out = []
    for r in records:
        if r.evidence is None or r.reason in ("no_evidence", "type_mismatch"):
            out.append(r)
            continue
        evidence = Evidence.from_json(r.evidence)
        confidence = model.probability(evidence)
        reason: str | None = None
        if not evidence.asks:
            reason = "focus_missing"
        elif evidence.margin < min_margin:
            reason = "off_topic"
        elif evidence.head < model.min_head(evidence.pair):
            reason = "focus_missing"
        elif confidence < model.threshold(evidence):
            reason = "low_confidence"
        if reason is None and r.abstained:
            raise ValueError(
                f"{r.item_id}: the run abstained ({r.reason}) where this model answers, and its answer was "
                "not recorded; evaluate the questions again instead"
            )
        if reason is None:
            out.append(replace(r, confidence=confidence))
        else:
            out.append(
                replace(
                    r,
                    abstained=True,
                    reason=reason,
                    confidence=confidence,
                    answer="" if not r.abstained else r.answer,
                    sentence_supported=(),
                    citation_relevant=(),
                )
            )
    return out

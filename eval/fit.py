"""Fit the abstention model (``service.abstention``) from eval runs.

The runs must hold near-topic unanswerable questions, or the model learns to spot off-topic ones only:
the ``*-holdout`` benchmarks (``citeqa convert``) leave paragraphs out of the corpus so their questions
look answerable but are not. Only questions whose evidence passed the answer-type check are used (the
others abstain whatever the model says), one model per language pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eval.errors import EvalError
from eval.metrics import QuestionRecord
from service.abstention import (
    FEATURES,
    PAIRS,
    AbstentionModel,
    Evidence,
    Logistic,
    auc,
    check_features,
    choose_threshold,
    cross_validated_auc,
    fit_logistic,
    predict,
)


@dataclass(frozen=True, slots=True)
class PairFit:
    """How the model for one language pair was fitted, and how well it separates."""

    pair: str
    n_answerable: int
    n_unanswerable: int
    cv_auc: float | None  # 5-fold, out of fold
    margin_auc: float | None  # the background margin alone, for comparison
    model: Logistic
    abstain_recall: float  # at the threshold, on the fitting runs
    abstain_precision: float | None


DEFAULT_FEATURES: dict[str, tuple[str, ...]] = {"same": FEATURES, "cross": ("margin",)}


def usable(record: QuestionRecord, min_margin: float) -> Evidence | None:
    """The record's evidence when the model decides it: the answer-type check passed (a negative
    confidence says it failed) and the margin is above the floor; else None."""
    if record.evidence is None or record.confidence is None or record.confidence < 0:
        return None
    evidence = Evidence.from_json(record.evidence)
    return evidence if evidence.margin >= min_margin else None


def fit_abstention(
    records: Sequence[QuestionRecord],
    *,
    l2: float = 1.0,
    keep: float = 0.97,
    min_precision: float = 0.85,
    min_margin: float = 0.02,
    features: Mapping[str, Sequence[str]] = DEFAULT_FEATURES,
    sources: Sequence[str] = (),
) -> tuple[AbstentionModel, list[PairFit]]:
    """One logistic model per language pair from ``records``, over that pair's ``features``, each with
    its threshold (see ``service.abstention.choose_threshold``). Questions under the margin floor
    ``min_margin`` abstain before the model is asked, so they are left out. ``sources`` name the runs,
    for the record."""
    try:
        checked = {pair: check_features(list(features[pair])) for pair in PAIRS}
    except (KeyError, ValueError) as exc:
        raise EvalError(f"features for each of {', '.join(PAIRS)}: {exc}") from exc
    rows: dict[str, list[tuple[Evidence, bool]]] = {pair: [] for pair in PAIRS}
    for record in records:
        evidence = usable(record, min_margin)
        if evidence is not None:
            rows[evidence.pair].append((evidence, record.answerable))
    fits = []
    for pair in PAIRS:
        labels = np.array([answerable for _, answerable in rows[pair]], dtype=np.float64)
        n_answerable = int(labels.sum())
        n_unanswerable = len(labels) - n_answerable
        if n_answerable < 5 or n_unanswerable < 5:
            raise EvalError(
                f"fitting the {pair}-script model needs at least 5 answerable and 5 unanswerable questions "
                f"with recorded evidence (got {n_answerable} and {n_unanswerable}); evaluate a *-holdout "
                "benchmark first (`citeqa convert xquad-zh-holdout ...`)"
            )
        x = np.array([evidence.vector(checked[pair]) for evidence, _ in rows[pair]])
        weights, bias = fit_logistic(x, labels, l2=l2)
        probabilities = predict(weights, bias, x)
        threshold = choose_threshold(
            probabilities.tolist(), (labels == 1).tolist(), keep=keep, min_precision=min_precision
        )
        abstains = probabilities < threshold
        caught = int((abstains & (labels == 0)).sum())
        fits.append(
            PairFit(
                pair=pair,
                n_answerable=n_answerable,
                n_unanswerable=n_unanswerable,
                cv_auc=cross_validated_auc(x, labels, l2=l2),
                margin_auc=auc([e.margin for e, _ in rows[pair]], labels.astype(bool).tolist()),
                model=Logistic(checked[pair], weights, bias, threshold),
                abstain_recall=caught / n_unanswerable,
                abstain_precision=caught / int(abstains.sum()) if abstains.any() else None,
            )
        )
    fitted_on: dict[str, Any] = {
        "runs": list(sources),
        "l2": l2,
        "keep": keep,
        "min_precision": min_precision,
        "min_margin": min_margin,
        "pairs": {
            f.pair: {
                "answerable": f.n_answerable,
                "unanswerable": f.n_unanswerable,
                "cv_auc": f.cv_auc,
                "margin_auc": f.margin_auc,
                "abstain_recall": f.abstain_recall,
                "abstain_precision": f.abstain_precision,
            }
            for f in fits
        },
    }
    return AbstentionModel({f.pair: f.model for f in fits}, fitted_on), fits

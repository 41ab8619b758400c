"""Abstention: why the answerer may not answer, and how likely its evidence answers, from a fitted model.

Every abstention carries a typed reason (``REASONS``), decided in this order by the answerer
(``service.answer``):

- ``no_evidence``: nothing was retrieved;
- ``type_mismatch``: no evidence sentence can state the kind of answer asked for (``service.answertype``);
- ``off_topic``: the evidence is no closer to the question than unrelated background text is (the margin
  below ``min_margin``);
- ``focus_missing``: the passage does not state what the question asks about (``service.focus``): the
  head term's support is below the language pair's ``min_head``; or the question names nothing at all
  (``asks`` false: "hello", "你好", "What?", "为什么？", "123"), whatever the evidence, checked first;
- ``low_confidence``: the pair's logistic model gives P(answerable) below its threshold.

The model's inputs (``FEATURES``) are the background ``margin`` (the evidence sentence's similarity minus
the question's similarity to unrelated background text in the passage's language), ``top`` (the best
passage's dense score), ``gap`` (how far it stands above the second), the focus supports ``head``,
``names``, ``coverage`` and ``weakest`` (``service.focus``), and ``relevance``, the best hit's calibrated
probability of being the passage that answers (``index.search.Calibration``: on one scale for every
pair). There is one model per language pair (question language, evidence passage language: zh-zh, en-en,
en-zh, zh-en), since similarities of different pairs are not on one scale.

Both the model and ``min_head`` are fitted with ``citeqa fit-abstention`` on the fitting half of the
near-topic benchmarks (``citeqa convert *-neartopic``: holdout and focus-swapped unanswerable questions),
never on the seed set they are tested on, and shipped in ``service/data/abstention.json`` with a record of
what they were fitted on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from index.errors import CiteQAError
from index.lexical import PAIRS as PAIRS  # the language pairs are the retriever's
from index.lexical import pair_of as pair_of

FEATURES: tuple[str, ...] = (
    "margin",
    "top",
    "gap",
    "head",
    "names",
    "coverage",
    "relevance",
    "weakest",
)
Reason = Literal["no_evidence", "type_mismatch", "off_topic", "focus_missing", "low_confidence"]
REASONS: tuple[Reason, ...] = ("no_evidence", "type_mismatch", "off_topic", "focus_missing", "low_confidence")
BEFORE_MODEL: frozenset[str] = frozenset({"no_evidence", "type_mismatch", "off_topic"})


class AbstentionModelError(CiteQAError):
    """An abstention model file that cannot be used (missing, malformed, wrong features)."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the answerer measured about its best evidence (see the module docstring)."""

    margin: float
    top: float
    gap: float
    pair: str
    head: float = 1.0
    names: float = 1.0
    coverage: float = 1.0
    relevance: float = 1.0  # the best hit's calibrated probability of relevance (index.search.Calibration)
    weakest: float = 1.0  # the weakest focus support among the question's nouns
    asks: bool = True  # whether the question names anything (service.focus.Focus.empty is false)

    def vector(self, features: Sequence[str] = FEATURES) -> np.ndarray:
        values = {
            "margin": self.margin,
            "top": self.top,
            "gap": self.gap,
            "head": self.head,
            "names": self.names,
            "coverage": self.coverage,
            "relevance": self.relevance,
            "weakest": self.weakest,
        }
        return np.array([values[name] for name in features], dtype=np.float64)

    def to_json(self) -> dict[str, float | str]:
        return {
            "margin": self.margin,
            "top": self.top,
            "gap": self.gap,
            "pair": self.pair,
            "head": self.head,
            "names": self.names,
            "coverage": self.coverage,
            "relevance": self.relevance,
            "weakest": self.weakest,
            "asks": self.asks,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Evidence:
        return cls(
            float(obj["margin"]),
            float(obj["top"]),
            float(obj["gap"]),
            str(obj["pair"]),
            float(obj.get("head", 1.0)),
            float(obj.get("names", 1.0)),
            float(obj.get("coverage", 1.0)),
            float(obj.get("relevance", 1.0)),
            float(obj.get("weakest", 1.0)),
            bool(obj.get("asks", True)),
        )


@dataclass(frozen=True, slots=True)
class Logistic:
    """P(answerable) = sigmoid(weights . x + bias) over ``features`` (raw values); abstain below
    ``threshold``. ``min_head`` is the pair's focus threshold (``focus_missing`` below it)."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float = 0.5
    min_head: float = 0.0

    def probability(self, evidence: Evidence) -> float:
        return float(predict(self.weights, self.bias, evidence.vector(self.features)))

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "weights": list(self.weights),
            "bias": self.bias,
            "threshold": self.threshold,
            "min_head": self.min_head,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Logistic:
        features = check_features([str(name) for name in obj["features"]])
        weights = tuple(float(w) for w in obj["weights"])
        if len(weights) != len(features):
            raise ValueError(f"{len(weights)} weights for {len(features)} features")
        return cls(
            features,
            weights,
            float(obj["bias"]),
            float(obj.get("threshold", 0.5)),
            float(obj.get("min_head", 0.0)),
        )


def check_features(features: Sequence[str]) -> tuple[str, ...]:
    """``features`` as a tuple, if they are distinct names from ``FEATURES``; else ValueError."""
    if not features or len(set(features)) != len(features) or not set(features) <= set(FEATURES):
        raise ValueError(f"features must be distinct names from {', '.join(FEATURES)}; got {list(features)}")
    return tuple(features)


@dataclass(frozen=True, slots=True)
class AbstentionModel:
    """One logistic model per language pair, plus a record of how they were fitted."""

    models: Mapping[str, Logistic]
    fitted_on: Mapping[str, Any] = field(default_factory=dict)

    def probability(self, evidence: Evidence) -> float:
        return self.models[evidence.pair].probability(evidence)

    def threshold(self, evidence: Evidence) -> float:
        return self.models[evidence.pair].threshold

    def min_head(self, pair: str) -> float:
        return self.models[pair].min_head

    def to_json(self) -> dict[str, Any]:
        return {
            "models": {pair: m.to_json() for pair, m in self.models.items()},
            "fitted_on": dict(self.fitted_on),
        }

    @classmethod
    def from_json(cls, obj: Any, source: str = "abstention model") -> AbstentionModel:
        try:
            models = {pair: Logistic.from_json(m) for pair, m in obj["models"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AbstentionModelError(
                f"{source}: not an abstention model ({exc}); refit it with `citeqa fit-abstention`"
            ) from exc
        missing = [pair for pair in PAIRS if pair not in models]
        if missing:
            raise AbstentionModelError(
                f"{source}: needs a model for each of {', '.join(PAIRS)} (missing: {', '.join(missing)}); "
                "refit it with `citeqa fit-abstention`"
            )
        return cls(models, dict(obj.get("fitted_on", {})))

    @classmethod
    def load(cls, path: Path | None = None) -> AbstentionModel:
        """The model at ``path``, or the one shipped in ``service/data/abstention.json``."""
        if path is None:
            text = resources.files("service").joinpath("data/abstention.json").read_text(encoding="utf-8")
            return cls.from_json(json.loads(text), "service/data/abstention.json")
        try:
            obj = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise AbstentionModelError(f"abstention model {path} not found") from exc
        except json.JSONDecodeError as exc:
            raise AbstentionModelError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        return cls.from_json(obj, str(path))


# -- fitting (pure) ----------------------------------------------------------------------------


def fit_logistic(
    x: np.ndarray, y: np.ndarray, *, l2: float = 1.0, iterations: int = 50
) -> tuple[tuple[float, ...], float]:
    """L2-regularised logistic regression by Newton's method, on standardised features: the weights (for
    raw features) and the bias. ``y`` is 1 for answerable, 0 for not."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need an (n, d) matrix and n labels, got {x.shape} and {y.shape}")
    if len(set(y.tolist())) < 2:
        raise ValueError("need both answerable and unanswerable examples to fit")
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    z = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0  # the intercept is not shrunk
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -50.0, 50.0)))
        grad = z.T @ (p - y) + penalty * w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty)
        step = np.linalg.solve(hessian, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    weights = w[:-1] / std
    bias = float(w[-1] - np.dot(weights, mean))
    return tuple(float(v) for v in weights), bias


def predict(weights: Sequence[float], bias: float, x: np.ndarray) -> np.ndarray:
    """P(answerable) for each row of ``x`` (for one vector: a 0-d array)."""
    z = np.asarray(x, dtype=np.float64) @ np.asarray(weights, dtype=np.float64) + bias
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0))))


def choose_threshold(
    probabilities: Sequence[float], answerable: Sequence[bool], *, keep: float, min_precision: float
) -> float:
    """The threshold that abstains on the most unanswerable questions while keeping at least ``keep`` of
    the answerable ones answered and abstaining correctly at least ``min_precision`` of the time; 0.0 (never
    abstain) when no threshold does both. Abstain means probability < threshold."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(answerable, dtype=bool)
    if not y.any() or y.all():
        raise ValueError("need answerable and unanswerable questions to set a threshold")
    if not 0.0 < keep <= 1.0 or not 0.0 <= min_precision <= 1.0:
        raise ValueError(f"keep must be in (0, 1] and min_precision in [0, 1], got {keep}, {min_precision}")
    best, best_caught = 0.0, 0
    for threshold in np.unique(p):
        abstains = p < threshold
        if not abstains.any():
            continue
        caught = int((abstains & ~y).sum())
        kept = 1.0 - (abstains & y).sum() / y.sum()
        if kept >= keep and caught / abstains.sum() >= min_precision and caught > best_caught:
            best, best_caught = float(threshold), caught
    return best


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Probability that a random positive scores above a random negative (ties count half)."""
    s = np.asarray(scores, dtype=np.float64)
    lab = np.asarray(labels, dtype=bool)
    pos, neg = s[lab], s[~lab]
    if not len(pos) or not len(neg):
        return None
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


def out_of_fold(x: np.ndarray, y: np.ndarray, *, folds: int = 5, l2: float = 1.0) -> np.ndarray:
    """Each row's P(answerable) from a model fitted without its fold (fold = index modulo ``folds``, so
    the result is deterministic): what the model will say of questions it was not fitted on."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    predictions = np.zeros(len(y))
    fold = np.arange(len(y)) % folds
    for k in range(folds):
        train, test = fold != k, fold == k
        weights, bias = fit_logistic(x[train], y[train], l2=l2)
        predictions[test] = predict(weights, bias, x[test])
    return predictions


def cross_validated_auc(x: np.ndarray, y: np.ndarray, *, folds: int = 5, l2: float = 1.0) -> float | None:
    """AUC of out-of-fold predictions (see ``out_of_fold``)."""
    return auc(out_of_fold(x, y, folds=folds, l2=l2).tolist(), np.asarray(y).astype(bool).tolist())

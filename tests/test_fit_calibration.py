"""The score calibration's fits (eval/fit_calibration.py) on synthetic candidates, where the right answer is
known: pools of different sizes and on different scales, merged on the fitted probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from eval.fit_calibration import Sample, fit_models, recall_at_1
from index.search import Calibration

# A Chinese question's candidates: many from its own language's pool, a few from the English pool, whose
# cosines sit 0.1 lower. The gold paragraph is in either pool, half of the time each, and leads its pool's
# other candidates by a noisy margin.
POOLS = {"zh-zh": (40, 0.80), "zh-en": (5, 0.70)}
NOISE = 0.01


def _samples(n: int, seed: int, fit: bool) -> list[Sample]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        gold_pair = "zh-zh" if i % 2 == 0 else "zh-en"
        features, gold, pairs = [], [], []
        for pair, (size, level) in POOLS.items():
            dense = level + rng.normal(0.0, NOISE, size)
            if pair == gold_pair:
                dense[0] = level + 0.06 + rng.normal(0.0, NOISE)
            lead = dense - np.sort(dense)[::-1][:20].mean()
            features.append(np.column_stack([dense, lead, rng.uniform(0.0, 1.0, size)]))
            gold += [pair == gold_pair and j == 0 for j in range(size)]
            pairs += [pair] * size
        out.append(Sample(gold_pair, np.vstack(features), np.array(gold), np.array(pairs), fit))
    return out


def _recall(models: dict[str, tuple[tuple[float, ...], float]], samples: list[Sample]) -> float:
    result = recall_at_1(Calibration(models), samples)
    assert result is not None
    return result


@pytest.mark.parametrize("method", ["listwise", "pointwise"])
def test_a_fit_merges_pools_on_different_scales(method: str) -> None:
    """The English pool's cosines sit lower: a merge on raw cosines would always pick the Chinese pool's
    best, right half of the time; a fitted calibration picks the gold paragraph wherever it is."""
    fitting, held_out = _samples(600, seed=1, fit=True), _samples(600, seed=2, fit=False)
    assert _recall(fit_models(fitting, method=method), held_out) >= 0.95  # type: ignore[arg-type]


def test_listwise_probabilities_stay_probabilities() -> None:
    """The scaling per question language makes a pool's best candidate's score a probability that it is the
    gold paragraph: close to the share of pool heads that are."""
    fitting = _samples(600, seed=3, fit=True)
    models = fit_models(fitting, method="listwise")
    calibration = Calibration(models)
    predicted, actual = [], []
    for s in _samples(600, seed=4, fit=False):
        for pair in POOLS:
            mask = s.pairs == pair
            p = calibration.probability(pair, s.features[mask])
            predicted.append(float(p.max()))
            actual.append(bool(s.gold[mask][int(np.argmax(p))]))
    assert np.mean(predicted) == pytest.approx(np.mean(actual), abs=0.05)


def test_an_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="method must be one of listwise, pointwise"):
        fit_models(_samples(10, seed=5, fit=True), method="ranking")  # type: ignore[arg-type]

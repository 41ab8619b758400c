"""Fitting the search's per-language-pair score calibration (``index.search.Calibration``).

Data: a mixed XQuAD corpus, converted from the shared datasets (never stored in the repository) as the
``xquad-mixed`` benchmark is: the Chinese paragraphs of the even-indexed articles and the English paragraphs
of the odd ones, every item asked in both languages. It gives all four (question -> passage) pairs, and each
question's candidates come from both language pools, the pool without its gold paragraph included: exactly
the situation the calibration has to get right.

Fitting uses the questions of the articles whose index is 0 or 1 modulo 4 (both languages of gold paragraph
occur among them); the others are held out, and ``fit_calibration`` reports recall@1 on them per pair.

Each pair's model is logistic in the candidate's signals (``index.search.FEATURES``). Two fits:

- ``listwise`` (the default): the pools are merged on these probabilities, so the pair models must agree on
  one scale where they compete, at the head of each pool. One conditional logit over all of a question's
  candidates, of every pool (softmax of per-pair linear scores, the gold paragraph the one chosen), fits
  every pair's weights on that decision; then one logistic scaling per question language, fitted on each
  pool's best candidate, turns the scores into P(relevant) (monotone per question language: the order
  stays).
  Measured on the mixed corpus (``citeqa fit-calibration``, README "Score calibration"): an English passage
  outranking the right Chinese one for a Chinese question was the whole of xquad-mixed zh->zh's loss against
  the all-Chinese corpus on the same questions.
- ``pointwise``: an independent logistic regression per pair of "this candidate is the gold paragraph" over
  all its candidates (``service.abstention.fit_logistic``); each is calibrated on its own, but the pairs'
  scales are never compared where they compete.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from eval.convert import BENCHMARKS, convert_squad, read_squad
from index.lexical import pair_of

if TYPE_CHECKING:
    from index.search import Calibration, Retriever
    from service.settings import Settings

CORPORA = {"A": ("xquad/xquad.zh.json", "zh", "xquad/xquad.en.json", "en")}
HELD_OUT = 4  # articles with index % HELD_OUT in FITTED are fitted on, the others held out
FITTED = (0, 1)
Method = Literal["listwise", "pointwise"]
METHODS: tuple[Method, ...] = ("listwise", "pointwise")
L2 = {"listwise": 100.0, "pointwise": 1.0}  # the default penalty per method (README "Score calibration")
MODEL = {
    "listwise": "weights by a conditional logit over each question's candidates of every pool, then a "
    "logistic scaling per question language on each pool's best candidate",
    "pointwise": "an independent logistic regression of 'is the gold paragraph' per pair",
}


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    lang: str
    gold: str  # the gold passage id
    article: int  # 0-based XQuAD article index


@dataclass(frozen=True, slots=True)
class Sample:
    """One question's candidates: their signals, which is the gold paragraph, and each one's pair."""

    pair: str  # the question's language and its gold paragraph's ("en-zh")
    features: np.ndarray  # (candidates, len(FEATURES))
    gold: np.ndarray  # bool per candidate
    pairs: np.ndarray  # str per candidate: the question's language and the candidate's
    fit: bool  # from a fitting article, else held out


@dataclass(frozen=True, slots=True)
class PairFit:
    pair: str
    n_questions: int
    weights: tuple[float, ...]
    bias: float
    recall_fit: float | None  # recall@1 on the fitting questions whose gold is in this pair
    recall_held_out: float | None  # the same on the held-out articles


def convert_corpora(datasets: Path, out: Path) -> dict[str, tuple[Path, list[Question]]]:
    """Convert the corpora under ``out``; return each one's documents folder and questions."""
    corpora = {}
    for name, (first, first_lang, second, second_lang) in CORPORA.items():
        target = out / f"calibration-{name}"
        prefix = f"xquad-mix{name.lower()}"
        convert_squad(
            datasets / first,
            target,
            first_lang,
            prefix,
            parallel_questions=[(datasets / second, second_lang)],
            alternate_corpus=[(datasets / second, second_lang)],
            source=BENCHMARKS["xquad-mixed"].source,
            overwrite=True,
        )
        questions = [
            Question(q.question, lang, f"{prefix}-{p.number:04d}:1", p.article_index)
            for path, lang in ((first, first_lang), (second, second_lang))
            for p in read_squad(datasets / path)
            for q in p.questions
        ]
        corpora[name] = (target / "documents", questions)
    return corpora


def collect(
    retriever: Retriever, questions: Sequence[Question], progress: Callable[[int, int], None] | None = None
) -> list[Sample]:
    """Every question's candidates with their signals (``Retriever.candidates``)."""
    # A gold paragraph split into parts ("doc:1.1", "doc:1.2") is relevant in every part.
    lang_of = {p.id.split(".")[0]: p.lang for p in retriever.passages}
    samples = []
    for done, q in enumerate(questions, start=1):
        candidates = retriever.signals(q.text)
        gold = np.array([retriever.passages[c.row].id.split(".")[0] == q.gold for c in candidates])
        samples.append(
            Sample(
                pair=pair_of(q.lang, lang_of[q.gold]),
                features=np.vstack([c.features() for c in candidates]),
                gold=gold,
                pairs=np.array([c.pair for c in candidates]),
                fit=q.article % HELD_OUT in FITTED,
            )
        )
        if progress:
            progress(done, len(questions))
    return samples


def fit_models(
    samples: Sequence[Sample], *, method: Method = "listwise", l2: float | None = None
) -> dict[str, tuple[tuple[float, ...], float]]:
    """One logistic model per candidate pair, fitted on the fitting samples (see the module docstring);
    ``l2`` is the penalty on standardised weights (default ``L2[method]``)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    fitting = [s for s in samples if s.fit]
    penalty = L2[method] if l2 is None else l2
    if method == "pointwise":
        return fit_pointwise(fitting, l2=penalty)
    return fit_listwise(fitting, l2=penalty)


def fit_pointwise(
    samples: Sequence[Sample], *, l2: float = 1.0
) -> dict[str, tuple[tuple[float, ...], float]]:
    """An independent logistic regression per pair over all of its candidates."""
    from service.abstention import fit_logistic

    xs: dict[str, list[np.ndarray]] = defaultdict(list)
    ys: dict[str, list[np.ndarray]] = defaultdict(list)
    for s in samples:
        for pair in set(s.pairs.tolist()):
            mask = s.pairs == pair
            xs[pair].append(s.features[mask])
            ys[pair].append(s.gold[mask])
    return {
        pair: fit_logistic(np.vstack(xs[pair]), np.concatenate(ys[pair]).astype(float), l2=l2)
        for pair in sorted(xs)
    }


def fit_listwise(
    samples: Sequence[Sample], *, l2: float = 100.0
) -> dict[str, tuple[tuple[float, ...], float]]:
    """Per pair, linear scores fitted by one conditional logit over each question's candidates of every pool
    (L2 ``l2`` on standardised weights, not on the biases), then one logistic scaling of the scores per
    question language, fitted on each pool's best candidate."""
    from scipy.optimize import minimize

    from service.abstention import fit_logistic

    pairs = sorted({p for s in samples for p in s.pairs.tolist()})
    width = samples[0].features.shape[1] + 1 if samples else 0
    # Standardised per pair, as fit_logistic does, so one penalty suits every signal.
    mean, std = {}, {}
    for pair in pairs:
        x = np.vstack([s.features[s.pairs == pair] for s in samples])
        mean[pair], std[pair] = x.mean(axis=0), np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    column = {pair: i * width for i, pair in enumerate(pairs)}
    questions = []
    for s in samples:
        if not s.gold.any():
            continue  # the gold paragraph is no candidate: nothing to choose
        design = np.zeros((len(s.features), len(pairs) * width))
        for pair in set(s.pairs.tolist()):
            mask, start = s.pairs == pair, column[pair]
            design[mask, start : start + width - 1] = (s.features[mask] - mean[pair]) / std[pair]
            design[mask, start + width - 1] = 1.0
        questions.append((design, int(np.flatnonzero(s.gold)[0])))
    if not questions:
        raise ValueError("need questions whose gold paragraph is among their candidates")
    penalty = np.full(len(pairs) * width, l2)
    penalty[width - 1 :: width] = 0.0  # the biases are not shrunk

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = 0.5 * float(penalty @ theta**2), penalty * theta
        for design, gold in questions:
            z = design @ theta
            p = np.exp(z - z.max())
            p /= p.sum()
            value -= float(np.log(max(p[gold], 1e-300)))
            grad -= design[gold] - p @ design
        return value, grad

    theta = minimize(loss, np.zeros(len(penalty)), jac=True, method="L-BFGS-B").x
    linear = {}
    for pair, start in column.items():
        weights = theta[start : start + width - 1] / std[pair]
        linear[pair] = (weights, float(theta[start + width - 1] - weights @ mean[pair]))
    # Scores -> P(relevant), per question language, on the candidates that compete: each pool's best.
    heads: dict[str, tuple[list[float], list[bool]]] = defaultdict(lambda: ([], []))
    for s in samples:
        for pair in set(s.pairs.tolist()):
            mask = s.pairs == pair
            weights, bias = linear[pair]
            scores = s.features[mask] @ weights + bias
            best = int(np.argmax(scores))
            heads[pair.split("-")[0]][0].append(float(scores[best]))
            heads[pair.split("-")[0]][1].append(bool(s.gold[mask][best]))
    out = {}
    for pair, (weights, bias) in linear.items():
        scores, gold = heads[pair.split("-")[0]]
        (slope,), intercept = fit_logistic(np.array(scores)[:, None], np.array(gold, dtype=float))
        out[pair] = (tuple(float(w) for w in slope * weights), float(slope * bias + intercept))
    return out


def recall_at_1(calibration: Calibration, samples: Sequence[Sample]) -> float | None:
    """Share of samples whose best-calibrated candidate is the gold paragraph."""
    if not samples:
        return None
    hits = 0
    for s in samples:
        scores = np.zeros(len(s.features))
        for pair in set(s.pairs.tolist()):
            mask = s.pairs == pair
            scores[mask] = calibration.probability(pair, s.features[mask])
        hits += bool(s.gold[int(np.argmax(scores))])
    return hits / len(samples)


def fit_calibration(
    settings: Settings,
    datasets: Path,
    *,
    method: Method = "listwise",
    l2: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Calibration, list[PairFit], list[Sample]]:
    """Convert the corpora, run their questions through the retriever, fit one model per pair."""
    from eval.run import eval_index_dir
    from index.search import FEATURES, Calibration, Retriever
    from index.store import load_index
    from service.pipeline import background_vectors, corpus_translator, encoder_for, ensure_index

    corpora = convert_corpora(datasets, settings.data_dir / "benchmarks")
    encoder = encoder_for(settings)
    samples: list[Sample] = []
    for documents, questions in corpora.values():
        index_dir = eval_index_dir(settings, documents)
        run_settings = settings.model_copy(update={"documents_dir": documents, "index_dir": index_dir})
        ensure_index(run_settings, encoder)
        saved = load_index(index_dir, model=encoder.name, fingerprint=encoder.fingerprint)
        retriever = Retriever(
            saved,
            encoder,
            candidates=settings.candidates,
            sentence_weight=settings.sentence_weight,
            sentence_weight_cross=settings.sentence_weight_cross,
            translator=corpus_translator(settings, saved),
            background=background_vectors(encoder),
            rrf_k=settings.rrf_k,
        )
        samples += collect(retriever, questions, progress)
    penalty = L2[method] if l2 is None else l2
    calibration = Calibration(
        fit_models(samples, method=method, l2=penalty),
        {
            "data": "XQuAD mixed corpus (Chinese paragraphs of the even-indexed articles + English "
            "paragraphs of the odd-indexed ones; every question asked in both languages); fitted on the "
            "questions of "
            "the articles with index 0 or 1 mod 4, the others held out",
            "model": "per candidate pair, logistic in " + ", ".join(FEATURES) + "; " + MODEL[method],
            "method": method,
            "l2": penalty,
            "command": "citeqa fit-calibration --datasets ../shared/datasets "
            "--out index/data/calibration.json",
        },
    )
    fits = []
    for pair in sorted({s.pair for s in samples}):
        mine = [s for s in samples if s.pair == pair]
        weights, bias = calibration.models.get(pair, ((), 0.0))
        fits.append(
            PairFit(
                pair,
                sum(s.fit for s in mine),
                weights,
                bias,
                recall_at_1(calibration, [s for s in mine if s.fit]),
                recall_at_1(calibration, [s for s in mine if not s.fit]),
            )
        )
    record = dict(calibration.fitted_on) | {
        "encoder": f"{encoder.name} ({settings.encoder_backend})",
        "questions": {"fit": sum(s.fit for s in samples), "held_out": sum(not s.fit for s in samples)},
        "recall@1 per pair (fit / held out)": {f.pair: [f.recall_fit, f.recall_held_out] for f in fits},
    }
    return replace(calibration, fitted_on=record), fits, samples

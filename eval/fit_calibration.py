"""Fitting the search's per-language-pair score calibration (``index.search.Calibration``).

Data: a mixed XQuAD corpus, converted from the shared datasets (never stored in the repository) as the
``xquad-mixed`` benchmark is: the Chinese paragraphs of the even-indexed articles and the English paragraphs
of the odd ones, every item asked in both languages. It gives all four (question -> passage) pairs, and each
question's candidates come from both language pools, the pool without its gold paragraph included: exactly
the situation the calibration has to get right.

Fitting uses the questions of the articles whose index is 0 or 1 modulo 4 (both languages of gold paragraph
occur among them); the others are held out, and ``fit_calibration`` reports recall@1 on them per pair.
Each pair's model is a logistic regression of "this candidate is the gold paragraph" on the candidate's
signals (``index.search.FEATURES``), fitted by ``service.abstention.fit_logistic``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from eval.convert import BENCHMARKS, convert_squad, read_squad
from index.lexical import pair_of

if TYPE_CHECKING:
    from index.search import Calibration, Retriever
    from service.settings import Settings

CORPORA = {"A": ("xquad/xquad.zh.json", "zh", "xquad/xquad.en.json", "en")}
HELD_OUT = 4  # articles with index % HELD_OUT in FITTED are fitted on, the others held out
FITTED = (0, 1)


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


def fit_models(samples: Sequence[Sample], *, l2: float = 1.0) -> dict[str, tuple[tuple[float, ...], float]]:
    """One logistic model per candidate pair, over the fitting samples' candidates of that pair."""
    from service.abstention import fit_logistic

    xs: dict[str, list[np.ndarray]] = defaultdict(list)
    ys: dict[str, list[np.ndarray]] = defaultdict(list)
    for s in samples:
        if not s.fit:
            continue
        for pair in set(s.pairs.tolist()):
            mask = s.pairs == pair
            xs[pair].append(s.features[mask])
            ys[pair].append(s.gold[mask])
    return {
        pair: fit_logistic(np.vstack(xs[pair]), np.concatenate(ys[pair]).astype(float), l2=l2)
        for pair in sorted(xs)
    }


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
    l2: float = 1.0,
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
    calibration = Calibration(
        fit_models(samples, l2=l2),
        {
            "data": "XQuAD mixed corpus (Chinese paragraphs of the even-indexed articles + English "
            "paragraphs of the odd-indexed ones; every question asked in both languages); fitted on the "
            "questions of "
            "the articles with index 0 or 1 mod 4, the others held out",
            "model": "per candidate pair, logistic regression of 'is the gold paragraph' on "
            + ", ".join(FEATURES),
            "l2": l2,
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

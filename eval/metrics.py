"""Pure metric functions over per-question results, and the summary that a batch run writes.

Conventions, chosen once here so every report means the same thing:

- Retrieval metrics (recall@k, MRR@k, nDCG@k) are averaged over *answerable* items only; an
  unanswerable item has no relevant passage, so it would only add zeros.
- Relevance is binary. nDCG uses the standard ``1 / log2(rank + 1)`` discount. Its ideal DCG puts
  ``min(max(n_relevant, relevant retrieved), k)`` relevant passages at the top, where
  ``n_relevant`` is the number of relevant passages in the corpus when the runner knows it (it can
  count them with ``is_relevant`` over all passages) and 0 otherwise, and "relevant retrieved"
  counts relevant passages anywhere in the retrieved list (which may be longer than k). Without a
  known count this is the common "judged in the run" ideal: it is optimistic when relevant
  passages were never retrieved, which recall@k then exposes.
- ``answer_hit`` is over *all* answerable items: an abstention on an answerable item is a miss.
  A hit means the answer text contains any gold answer span after collapsing whitespace and
  case-folding (which only affects Latin and other cased scripts). A generated answer is written in the
  question's language: it also hits with the gold answers in that language when the gold passage is in the
  other one (``question_lang_answers``, see ``hit_answers``).
- ``grounded`` pools sentences: supported sentences / all answer sentences, over every
  non-abstained answer (grounding needs no gold, so unanswerable items count too).
- ``citation_precision`` pools citations of *answerable* items: citations to a relevant passage /
  all citations. Unanswerable items have no relevant passage to cite; answering them at all is
  what ``abstain_recall`` measures.
- Abstention is a classifier whose positive class is "unanswerable": precision = abstained
  unanswerable / abstained, recall = abstained unanswerable / unanswerable.
- A rate whose denominator is empty (no answerable items, nothing abstained, ...) is ``None``
  (``null`` in summary.json), never 0 and never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eval.dataset import LANGS, normalise_space

SUMMARY_KEYS: tuple[str, ...] = (
    "recall@1",
    "recall@5",
    "recall@10",
    "mrr@10",
    "ndcg@10",
    "answer_hit",
    "grounded",
    "citation_precision",
    "abstain_precision",
    "abstain_recall",
    "n",
    "n_answerable",
    "n_unanswerable",
    "latency_ms_p50",
    "latency_ms_p95",
)


@dataclass(frozen=True, slots=True)
class QuestionRecord:
    """Everything measured for one evaluated question; the batch runner fills it.

    ``passage_ids``, ``scores`` and ``relevant`` are parallel, in rank order (best first).
    ``sentence_supported`` has one flag per answer sentence (the grounding check's verdict);
    ``citation_relevant`` one flag per citation (does it point to a relevant passage).
    ``confidence`` is the answerer's own confidence when it has one; ``n_relevant`` is the number of
    relevant passages in the whole corpus when known (see the module docstring on nDCG); ``evidence``
    is what the abstention model saw (``service.abstention.Evidence``), kept so it can be refitted;
    ``reason`` why the answerer abstained (``service.abstention.REASONS``), None when it answered.
    """

    item_id: str
    lang: str
    answerable: bool
    passage_ids: tuple[str, ...]
    scores: tuple[float, ...]
    relevant: tuple[bool, ...]
    answer: str
    abstained: bool
    gold_answers: tuple[str, ...]
    sentence_supported: tuple[bool, ...]
    citation_relevant: tuple[bool, ...]
    latency_ms: float
    question: str = ""
    confidence: float | None = None
    n_relevant: int | None = None
    evidence: Mapping[str, float | str] | None = None  # the abstention model's inputs, when recorded
    reason: str | None = None
    gold_lang: str | None = None  # the language of the passages that answer it (see ``pair``)
    question_lang_answers: tuple[str, ...] = ()  # gold answers in the question's language (eval.dataset)
    # Generated answers (``citeqa eval --answer-mode generated``): what made the answer, how many sentences
    # the LLM wrote, the guard's reasons for those it dropped, and the LLM's fault if it gave nothing.
    answer_mode: str = "extractive"
    generated_sentences: int = 0
    dropped: tuple[str, ...] = ()
    generation_error: str | None = None

    def __post_init__(self) -> None:
        if not len(self.passage_ids) == len(self.scores) == len(self.relevant):
            raise ValueError(
                f"record {self.item_id!r}: passage_ids, scores and relevant must have the same length "
                f"(got {len(self.passage_ids)}, {len(self.scores)}, {len(self.relevant)})"
            )

    @property
    def pair(self) -> str | None:
        """The language pair "<question>-<gold passage>" ("en-zh": an English question answered by Chinese
        text), when the gold passages' language is known."""
        return None if self.gold_lang is None else f"{self.lang}-{self.gold_lang}"

    @property
    def top_score(self) -> float | None:
        """Score of the best retrieved passage, or None when nothing was retrieved."""
        return self.scores[0] if self.scores else None


# -- per-question ------------------------------------------------------------------------------


def hit_at_k(relevance: Sequence[bool], k: int) -> bool:
    """Whether any of the top ``k`` passages is relevant."""
    _check_k(k)
    return any(relevance[:k])


def reciprocal_rank(relevance: Sequence[bool], k: int) -> float:
    """1 / rank of the first relevant passage within the top ``k``, else 0."""
    _check_k(k)
    for rank, rel in enumerate(relevance[:k], start=1):
        if rel:
            return 1.0 / rank
    return 0.0


def ndcg(relevance: Sequence[bool], k: int, n_relevant: int | None = None) -> float:
    """Binary nDCG@k; ideal DCG from ``min(max(n_relevant, relevant retrieved), k)`` passages."""
    _check_k(k)
    dcg = sum(1.0 / math.log2(rank + 1) for rank, rel in enumerate(relevance[:k], start=1) if rel)
    n_ideal = min(max(n_relevant or 0, sum(1 for rel in relevance if rel)), k)
    if n_ideal == 0:
        return 0.0
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, n_ideal + 1))
    return dcg / ideal


def answer_hit(answer: str, gold_answers: Sequence[str]) -> bool:
    """Whether ``answer`` contains any gold span (whitespace collapsed, case-folded)."""
    text = normalise_space(answer).casefold()
    return any(normalise_space(g).casefold() in text for g in gold_answers if g.strip())


# -- over a set of questions -------------------------------------------------------------------


def recall_at_k(relevance_lists: Sequence[Sequence[bool]], k: int) -> float | None:
    """Share of items (pass answerable ones only) with a relevant passage in the top ``k``."""
    return _mean([1.0 if hit_at_k(rel, k) else 0.0 for rel in relevance_lists])


def mrr_at_k(relevance_lists: Sequence[Sequence[bool]], k: int) -> float | None:
    """Mean reciprocal rank with cut-off ``k``."""
    return _mean([reciprocal_rank(rel, k) for rel in relevance_lists])


def ndcg_at_k(
    relevance_lists: Sequence[Sequence[bool]],
    k: int,
    n_relevant: Sequence[int | None] | None = None,
) -> float | None:
    """Mean binary nDCG@k; ``n_relevant`` (parallel to the lists) gives known relevant counts."""
    counts: Sequence[int | None] = n_relevant if n_relevant is not None else [None] * len(relevance_lists)
    if len(counts) != len(relevance_lists):
        raise ValueError(f"n_relevant has {len(counts)} entries for {len(relevance_lists)} relevance lists")
    return _mean([ndcg(rel, k, n) for rel, n in zip(relevance_lists, counts, strict=True)])


def answer_hit_rate(answers: Sequence[str], gold_answers: Sequence[Sequence[str]]) -> float | None:
    """Share of answers that contain a gold span (pass answerable items; abstentions as "")."""
    if len(answers) != len(gold_answers):
        raise ValueError(f"{len(answers)} answers for {len(gold_answers)} gold answer lists")
    return _mean([1.0 if answer_hit(a, g) else 0.0 for a, g in zip(answers, gold_answers, strict=True)])


def grounded_rate(sentence_supported: Sequence[Sequence[bool]]) -> float | None:
    """Supported sentences / all sentences, pooled over answers."""
    return _share([flag for flags in sentence_supported for flag in flags])


def citation_precision(citation_relevant: Sequence[Sequence[bool]]) -> float | None:
    """Citations pointing to a relevant passage / all citations, pooled over answers."""
    return _share([flag for flags in citation_relevant for flag in flags])


def abstain_precision(abstained: Sequence[bool], answerable: Sequence[bool]) -> float | None:
    """Of the abstentions, the share on unanswerable items."""
    _check_parallel(abstained, answerable)
    return _share([not ans for abst, ans in zip(abstained, answerable, strict=True) if abst])


def abstain_recall(abstained: Sequence[bool], answerable: Sequence[bool]) -> float | None:
    """Of the unanswerable items, the share abstained on."""
    _check_parallel(abstained, answerable)
    return _share([abst for abst, ans in zip(abstained, answerable, strict=True) if not ans])


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) with linear interpolation between ranks (numpy's default)."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def hit_answers(record: QuestionRecord) -> tuple[str, ...]:
    """The gold answers ``record``'s answer is checked against: the passage's (``gold_answers``, what an
    extractive answer quotes); for a generated answer also those in the question's language, when the
    dataset has them (an English answer over a Chinese passage states "450,000", not "45万")."""
    if record.answer_mode == "generated":
        return record.gold_answers + record.question_lang_answers
    return record.gold_answers


# -- summary -----------------------------------------------------------------------------------


def summarise_group(records: Sequence[QuestionRecord]) -> dict[str, Any]:
    """The metrics of ``SUMMARY_KEYS`` for one group of records (see the module docstring)."""
    answerable = [r for r in records if r.answerable]
    relevance = [r.relevant for r in answerable]
    flags_abstained = [r.abstained for r in records]
    flags_answerable = [r.answerable for r in records]
    latencies = [r.latency_ms for r in records]
    return {
        "recall@1": recall_at_k(relevance, 1),
        "recall@5": recall_at_k(relevance, 5),
        "recall@10": recall_at_k(relevance, 10),
        "mrr@10": mrr_at_k(relevance, 10),
        "ndcg@10": ndcg_at_k(relevance, 10, [r.n_relevant for r in answerable]),
        "answer_hit": answer_hit_rate(
            ["" if r.abstained else r.answer for r in answerable], [hit_answers(r) for r in answerable]
        ),
        "grounded": grounded_rate([r.sentence_supported for r in records if not r.abstained]),
        "citation_precision": citation_precision([r.citation_relevant for r in answerable]),
        "abstain_precision": abstain_precision(flags_abstained, flags_answerable),
        "abstain_recall": abstain_recall(flags_abstained, flags_answerable),
        "n": len(records),
        "n_answerable": len(answerable),
        "n_unanswerable": len(records) - len(answerable),
        "latency_ms_p50": percentile(latencies, 50),
        "latency_ms_p95": percentile(latencies, 95),
    }


def summarise(records: Sequence[QuestionRecord]) -> dict[str, Any]:
    """summary.json: ``{"overall": {...}, "by_lang": {"zh": {...}, "en": {...}}, "by_pair": {...}}``.

    ``by_lang`` always holds zh and en (an absent language has ``n == 0`` and null rates), plus
    any other language present in the records. ``by_pair`` groups by question language and gold passage
    language ("en-zh": English questions whose answer is in Chinese text), for the pairs present.
    """
    langs = list(LANGS) + sorted({r.lang for r in records} - set(LANGS))
    pairs = sorted({r.pair for r in records if r.pair is not None})
    return {
        "overall": summarise_group(records),
        "by_lang": {lang: summarise_group([r for r in records if r.lang == lang]) for lang in langs},
        "by_pair": {pair: summarise_group([r for r in records if r.pair == pair]) for pair in pairs},
        "abstained_by": abstention_reasons(records),
    }


def abstention_reasons(records: Sequence[QuestionRecord]) -> dict[str, dict[str, int]]:
    """How many answerable and unanswerable questions abstained for each reason."""
    out: dict[str, dict[str, int]] = {}
    for r in records:
        if r.abstained:
            counts = out.setdefault(r.reason or "unknown", {"answerable": 0, "unanswerable": 0})
            counts["answerable" if r.answerable else "unanswerable"] += 1
    return dict(sorted(out.items()))


def record_to_json(record: QuestionRecord) -> dict[str, Any]:
    """A JSON-ready dict of ``record`` (for a records.jsonl beside summary.json)."""
    return {
        "item_id": record.item_id,
        "lang": record.lang,
        "answerable": record.answerable,
        "question": record.question,
        "passage_ids": list(record.passage_ids),
        "scores": list(record.scores),
        "relevant": list(record.relevant),
        "answer": record.answer,
        "abstained": record.abstained,
        "gold_answers": list(record.gold_answers),
        "sentence_supported": list(record.sentence_supported),
        "citation_relevant": list(record.citation_relevant),
        "latency_ms": record.latency_ms,
        "confidence": record.confidence,
        "n_relevant": record.n_relevant,
        "evidence": None if record.evidence is None else dict(record.evidence),
        "reason": record.reason,
        "gold_lang": record.gold_lang,
        "question_lang_answers": list(record.question_lang_answers),
        "answer_mode": record.answer_mode,
        "generated_sentences": record.generated_sentences,
        "dropped": list(record.dropped),
        "generation_error": record.generation_error,
    }


def record_from_json(obj: dict[str, Any]) -> QuestionRecord:
    """Inverse of ``record_to_json``."""
    return QuestionRecord(
        item_id=str(obj["item_id"]),
        lang=str(obj["lang"]),
        answerable=bool(obj["answerable"]),
        question=str(obj.get("question", "")),
        passage_ids=tuple(str(p) for p in obj["passage_ids"]),
        scores=tuple(float(s) for s in obj["scores"]),
        relevant=tuple(bool(r) for r in obj["relevant"]),
        answer=str(obj["answer"]),
        abstained=bool(obj["abstained"]),
        gold_answers=tuple(str(a) for a in obj["gold_answers"]),
        sentence_supported=tuple(bool(s) for s in obj["sentence_supported"]),
        citation_relevant=tuple(bool(c) for c in obj["citation_relevant"]),
        latency_ms=float(obj["latency_ms"]),
        confidence=None if obj.get("confidence") is None else float(obj["confidence"]),
        n_relevant=None if obj.get("n_relevant") is None else int(obj["n_relevant"]),
        evidence=obj.get("evidence"),
        reason=None if obj.get("reason") is None else str(obj["reason"]),
        gold_lang=None if obj.get("gold_lang") is None else str(obj["gold_lang"]),
        question_lang_answers=tuple(str(a) for a in obj.get("question_lang_answers", ())),
        answer_mode=str(obj.get("answer_mode", "extractive")),
        generated_sentences=int(obj.get("generated_sentences", 0)),
        dropped=tuple(str(d) for d in obj.get("dropped", ())),
        generation_error=None if obj.get("generation_error") is None else str(obj["generation_error"]),
    )


def generation_summary(records: Sequence[QuestionRecord]) -> dict[str, Any]:
    """Generated answers over a run: how many questions got one, how many fell back (and for an LLM
    fault), and the share of the LLM's sentences the grounding guard dropped, by reason."""
    written = sum(r.generated_sentences for r in records)
    dropped = [d for r in records for d in r.dropped]
    return {
        "generated_answers": sum(1 for r in records if r.answer_mode == "generated"),
        "llm_errors": sum(1 for r in records if r.generation_error is not None),
        "sentences": written,
        "dropped": len(dropped),
        "dropped_share": len(dropped) / written if written else None,
        "dropped_by": {reason: dropped.count(reason) for reason in sorted(set(dropped))},
    }


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _share(flags: Sequence[bool]) -> float | None:
    return sum(1 for f in flags if f) / len(flags) if flags else None


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def _check_parallel(abstained: Sequence[bool], answerable: Sequence[bool]) -> None:
    if len(abstained) != len(answerable):
        raise ValueError(f"{len(abstained)} abstention flags for {len(answerable)} answerable flags")

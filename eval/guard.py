"""Fitting and measuring the grounding guard (``service.guard``) on a labelled set built from XQuAD.

XQuAD's Chinese and English files are parallel (the same paragraphs and questions), which gives supported
and unsupported sentences in all four directions (sentence language -> passage language) without writing
any by hand. For a question of paragraph *i* and a direction A -> B, the passage is paragraph *i* in B, and
the sentences, in A, are:
- supported: the gold answer sentence of paragraph *i* (the one holding the answer), and the clause of it
  that holds the answer (a shorter, partial statement, as a generated answer often is); across languages
  these are translations of what the passage says;
- unsupported ``other``: a sentence of another paragraph of the same article (near-topic, seeded choice);
- unsupported ``swap``: the gold sentence with its answer replaced by the answer of another question of
  the same article, of the same kind (a number for a number, else a phrase), that paragraph *i* does not
  state: a fluent, on-topic sentence with one wrong fact.

Articles are split into a fit half and a report half as the benchmarks are (``eval.convert.article_splits``).
The similarity threshold of each direction is the lowest at which the whole guard (number and name checks,
then similarity) keeps supported sentences with a precision of at least ``target`` against the ``other``
sentences of the fit half (swaps differ from a supported sentence by one fact, which similarity cannot
see: they are the number and name checks' to catch); the whole guard's precision and recall over all
kinds are then reported on the report half. Nothing is written under the repository but the
fitted JSON (the data stay in the datasets folder: CC BY-SA 4.0).
"""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval.convert import article_splits
from index.chunk import split_sentences
from service.generate import GeneratedSentence
from service.guard import PAIRS, Guard, Passage, Thresholds, name_supported, names_in, unsupported_numbers

FILES = {"zh": "xquad/xquad.zh.json", "en": "xquad/xquad.en.json"}
_CLAUSE_END = re.compile(r"[，,、；;：:]")
MIN_CLAUSE_CHARS = {"zh": 6, "en": 20}


@dataclass(frozen=True, slots=True)
class Qa:
    id: str
    answer: str
    start: int


@dataclass(frozen=True, slots=True)
class Para:
    article: int
    context: dict[str, str]  # lang -> context
    qas: dict[str, tuple[Qa, ...]]  # lang -> questions, in the same order in both languages


@dataclass(frozen=True, slots=True)
class Example:
    pair: str  # sentence language -> passage language, e.g. "en-zh"
    split: str  # "fit" or "report"
    kind: str  # gold, clause (supported); other, swap (unsupported)
    supported: bool
    sentence: str
    passage: str
    passage_lang: str


@dataclass(frozen=True, slots=True)
class Checked:
    example: Example
    reason: str | None  # the number/name checks' reason to drop, None when they pass
    similarity: float


def read_parallel(datasets: Path) -> list[Para]:
    """The XQuAD paragraphs with their Chinese and English contexts and answers (with offsets)."""
    data = {lang: json.loads((datasets / f).read_text(encoding="utf-8"))["data"] for lang, f in FILES.items()}
    out: list[Para] = []
    for a, (zh, en) in enumerate(zip(data["zh"], data["en"], strict=True)):
        for pz, pe in zip(zh["paragraphs"], en["paragraphs"], strict=True):
            qas = {}
            for lang, p in (("zh", pz), ("en", pe)):
                qas[lang] = tuple(
                    Qa(q["id"], q["answers"][0]["text"].strip(), int(q["answers"][0]["answer_start"]))
                    for q in p["qas"]
                    if q["answers"]
                )
            if [q.id for q in qas["zh"]] != [q.id for q in qas["en"]]:
                continue
            out.append(Para(a, {"zh": pz["context"], "en": pe["context"]}, qas))
    return out


def gold_sentence(context: str, qa: Qa) -> tuple[str, int] | None:
    """The sentence holding the answer, and the answer's offset in it (None if the offsets are off)."""
    if context[qa.start : qa.start + len(qa.answer)] != qa.answer:
        found = context.find(qa.answer)
        if found < 0:
            return None
        qa = Qa(qa.id, qa.answer, found)
    for s, e in split_sentences(context):
        if s <= qa.start and qa.start + len(qa.answer) <= e:
            return context[s:e], qa.start - s
    return None


def answer_clause(sentence: str, at: int, length: int, lang: str) -> str | None:
    """The clause of ``sentence`` holding the answer at ``at``, when it is shorter than the sentence."""
    bounds = [0, *(m.end() for m in _CLAUSE_END.finditer(sentence)), len(sentence)]
    for s, e in zip(bounds, bounds[1:], strict=False):
        if s <= at and at + length <= e:
            clause = sentence[s:e].strip(" ，,、；;：:")
            if len(clause) >= MIN_CLAUSE_CHARS[lang] and clause != sentence.strip():
                return clause
    return None


def _is_number(text: str) -> bool:
    from service.guard import numbers_in

    return bool(numbers_in(text))


def build_examples(paras: Sequence[Para], per_paragraph: int = 2, seed: int = 0) -> list[Example]:
    """The labelled sentences of every direction (module docstring), deterministic for a seed."""
    rng = random.Random(seed)
    splits = article_splits(max(p.article for p in paras) + 1)
    by_article: dict[int, list[Para]] = {}
    for p in paras:
        by_article.setdefault(p.article, []).append(p)
    out: list[Example] = []
    for pair in PAIRS:
        a, b = pair.split("-")
        for para in paras:
            split = splits[para.article]
            siblings = [q for q in by_article[para.article] if q is not para]
            passage = para.context[b]
            answers = [qa.answer for sib in by_article[para.article] for qa in sib.qas[a]]
            for qa in para.qas[a][:per_paragraph]:
                found = gold_sentence(para.context[a], qa)
                if found is None:
                    continue
                sentence, at = found
                made = [("gold", sentence, True)]
                clause = answer_clause(sentence, at, len(qa.answer), a)
                if clause:
                    made.append(("clause", clause, True))
                if siblings:
                    other = rng.choice(siblings).context[a]
                    spans = split_sentences(other)
                    s, e = spans[rng.randrange(len(spans))]
                    made.append(("other", other[s:e], False))
                wanted = _is_number(qa.answer)
                swaps = [
                    x
                    for x in dict.fromkeys(answers)
                    if x != qa.answer
                    and _is_number(x) == wanted
                    and x not in para.context[a]
                    and x not in passage
                ]
                if swaps:
                    swap = rng.choice(swaps)
                    made.append(("swap", sentence[:at] + swap + sentence[at + len(qa.answer) :], False))
                out.extend(Example(pair, split, k, ok, text, passage, b) for k, text, ok in made)
    return out


def check_examples(guard: Guard, examples: Sequence[Example]) -> list[Checked]:
    """The guard's number and name checks and the similarity of every example (batched encodings)."""
    texts = [e.sentence for e in examples]
    vectors = guard.encoder.encode_passages(list(dict.fromkeys(texts)))
    vector_of = dict(zip(dict.fromkeys(texts), vectors, strict=True))
    passages = list(dict.fromkeys(e.passage for e in examples))
    tables = {p: vecs for p, (_, vecs) in zip(passages, guard.sentence_vectors(passages), strict=True)}
    out = []
    for e in examples:
        reason: str | None = None
        if unsupported_numbers(e.sentence, [e.passage]):
            reason = "unsupported_number"
        elif any(not name_supported(n, [e.passage]) for n in names_in(e.sentence)):
            reason = "unsupported_name"
        vecs = tables[e.passage]
        sim = float((vecs @ vector_of[e.sentence]).max()) if len(vecs) else -1.0
        out.append(Checked(e, reason, sim))
    return out


def precision_recall(checked: Sequence[Checked], threshold: float) -> dict[str, float | int]:
    kept = [c for c in checked if c.reason is None and c.similarity >= threshold]
    good = sum(c.example.supported for c in kept)
    positives = sum(c.example.supported for c in checked)
    return {
        "precision": round(good / len(kept), 4) if kept else 1.0,
        "recall": round(good / positives, 4) if positives else 0.0,
        "supported": positives,
        "unsupported": len(checked) - positives,
    }


def fit_threshold(checked: Sequence[Checked], target: float) -> tuple[float, bool]:
    """The lowest similarity threshold at which the guard's precision reaches ``target`` (and whether
    one does; if none does, the one of best precision)."""
    candidates = sorted({round(c.similarity, 4) for c in checked if c.reason is None})
    best = (candidates[-1] if candidates else 1.0, -1.0)
    for t in candidates:
        p = float(precision_recall(checked, t)["precision"])
        if p >= target:
            return t, True
        if p > best[1]:
            best = (t, p)
    return best[0], False


def drop_reasons(checked: Sequence[Checked], threshold: float) -> dict[str, dict[str, int]]:
    """Per kind of example: how many the guard kept and why it dropped the others."""
    out: dict[str, Counter[str]] = {}
    for c in checked:
        reason = c.reason or ("kept" if c.similarity >= threshold else "not_similar")
        out.setdefault(c.example.kind, Counter())[reason] += 1
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def guard_latency(guard: Guard, examples: Sequence[Example], n: int = 40) -> dict[str, float]:
    """Milliseconds ``Guard.check`` takes for one sentence and one cited passage not seen before."""
    timings = []
    for e in examples[:n]:
        guard._cache.clear()  # noqa: SLF001  (a cold passage: its sentences are encoded too)
        t0 = time.perf_counter()
        guard.check([GeneratedSentence(e.sentence, (1,))], {1: Passage(e.passage, e.passage_lang)})
        timings.append((time.perf_counter() - t0) * 1000)
    arr = np.array(timings)
    return {"median_ms": round(float(np.median(arr)), 1), "p90_ms": round(float(np.percentile(arr, 90)), 1)}


def fit_guard(
    guard: Guard,
    datasets: Path,
    *,
    per_paragraph: int = 2,
    target: float = 0.95,
    seed: int = 0,
    encoder_fingerprint: str = "",
) -> dict[str, Any]:
    """Build the labelled set, fit each direction's threshold on the fit half, report the other half."""
    examples = build_examples(read_parallel(datasets), per_paragraph, seed)
    checked = check_examples(guard, examples)
    pairs: dict[str, Any] = {}
    for pair in PAIRS:
        fit = [c for c in checked if c.example.pair == pair and c.example.split == "fit"]
        report = [c for c in checked if c.example.pair == pair and c.example.split == "report"]
        # Similarity tells a sentence about something else ("other") from a supported one; a swapped fact
        # in an otherwise identical sentence is the number and name checks' to catch, and no similarity
        # threshold below 1 separates it, so swaps do not move the threshold (they are reported).
        threshold, met = fit_threshold([c for c in fit if c.example.kind != "swap"], target)
        pairs[pair] = {
            "threshold": threshold,
            "target_met": met,
            "fit": precision_recall(fit, threshold),
            "report": precision_recall(report, threshold),
            "report_without_swaps": precision_recall(
                [c for c in report if c.example.kind != "swap"], threshold
            ),
            "report_by_kind": drop_reasons(report, threshold),
            "report_checks_only": precision_recall(report, -1.0),
        }
    fitted = Guard(guard.encoder, Thresholds({p: v["threshold"] for p, v in pairs.items()}))
    report_examples = [e for e in examples if e.split == "report"]
    return {
        "fitted_on": {
            "data": "XQuAD zh + en (parallel), " + ", ".join(FILES.values()),
            "split": "articles by eval.convert.article_splits: fitted on 'fit', figures on 'report'",
            "per_paragraph": per_paragraph,
            "seed": seed,
            "target_precision": target,
            "encoder": encoder_fingerprint,
            "similarity": "max cosine of encode_passages(sentence) and encode_passages(a passage sentence)",
            "command": "citeqa fit-guard --datasets DATASETS "
            f"--per-paragraph {per_paragraph} --target {target}",
        },
        "pairs": pairs,
        "latency": guard_latency(fitted, rng_sample(report_examples, seed)),
    }


def rng_sample(examples: Sequence[Example], seed: int, n: int = 40) -> list[Example]:
    rng = random.Random(seed)
    return rng.sample(list(examples), min(n, len(examples)))

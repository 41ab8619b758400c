"""The extractive answerer: pick the sentences of the retrieved passages that best answer the question.

Each candidate sentence is scored by its dense similarity to the question (sentence vectors are computed
at build time, so answering costs dot products, not model calls), plus lexical overlap when the question
shares the corpus's script, plus a small prior for the passage's rank. The best sentences are returned in
passage order, each citing the passage it came from.

Abstention: e5 cosines sit in a narrow band and shift with the language pair, so a raw score says little.
The confidence is the best sentence's similarity minus the question's mean similarity to its 3 nearest
*background* sentences (unrelated text in the corpus's language, ``service/data/background.txt``): evidence no
closer to the question than unrelated text is no evidence. Below the calibrated threshold the answerer
abstains and says so in the question's language.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

import numpy as np

from index.lexical import script_of, tokenize
from index.search import SearchResult
from index.store import SavedIndex
from index.types import Hit

ABSTAIN_MESSAGES = {
    "zh": "抱歉，文档中没有找到足以回答这个问题的依据。下面列出的是最接近的段落，仅供参考。",
    "en": "I could not find enough evidence in the documents to answer this question. "
    "The closest passages are listed below for reference.",
}


@dataclass(frozen=True, slots=True)
class ScoredSentence:
    rank: int  # 1-based rank of the passage it belongs to
    start: int  # offsets into the passage text
    end: int
    text: str
    dense: float
    lexical: float
    score: float


@dataclass(frozen=True, slots=True)
class AnswerSentence:
    text: str
    citations: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    sentences: tuple[AnswerSentence, ...]
    abstained: bool
    confidence: float
    lang: str


class Answerer(Protocol):
    """The answering seam: an extractive answerer today; a generative one would be checked the same way."""

    def score(self, question: str, search: SearchResult, hits: Sequence[Hit]) -> list[ScoredSentence]: ...

    def answer(
        self, question: str, search: SearchResult, hits: Sequence[Hit]
    ) -> tuple[Answer, list[ScoredSentence]]: ...


BACKGROUND_NEIGHBOURS = 3

# What kind of answer a question asks for, and how to recognise a sentence that can state it. A question
# that asks "how many" is not answered by a sentence without a number, however similar the two are.
ANSWER_TYPES: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "number": (
        re.compile(
            r"多少|几[个件人项种家次年倍类]|百分之|比例"
            r"|how (?:many|much)|what (?:percentage|proportion|number)",
            re.I,
        ),
        re.compile(
            r"\d|[一二三四五六七八九十百千万亿两]+(?:个|件|人|项|种|家|次|倍|成|万|亿|类|是|年)|百分之"
        ),
    ),
    "time": (
        re.compile(
            r"何时|什么时候|哪一?年|哪个月|哪一?天|几月|\bwhen\b|what (?:year|date|time)|which year", re.I
        ),
        re.compile(r"\d|[年月日]|春|夏|秋|冬|期间|时期|时刻|近日|近年|当前|今后"),
    ),
}

# Units a number question may ask for: (the unit as a Chinese question names it right after 多少/几, the
# English nouns after "how many"/"how much" or money words, how a text states it after a number).
# "How many pages" is answered by "N页"/"N pages", not by any number: a sentence with 45万件 does not say
# how many pages a report has. Questions naming no unit here only need a number.
UNITS: dict[str, tuple[str, str, str]] = {
    "page": ("页", r"pages?", r"页|pages?"),
    "person": ("人|名", r"people|persons?|deaths?|victims?|residents?", r"人|名|people|persons?"),
    "item": ("件", r"items?|pieces?", r"件|items?|pieces?"),
    "money": ("元|钱|块", r"money|yuan|dollars?|funds?|funding|investment|cost", r"元|yuan|dollars?|[$￥¥]"),
    "firm": ("家", r"factories|companies|firms|enterprises", r"家|factories|companies|firms"),
    "year": ("年", r"years?", r"年|years?"),
}
_MONEY_WORDS = re.compile(r"金额|资金|投资额?|捐款数|\b(?:investment|funding|donat\w+|cost)\b", re.I)
_NUMBER = r"(?:\d[\d,.]*|[一二三四五六七八九十百千两]+)\s*(?:[万亿千百]|million|billion|thousand)?\s*"
_UNIT_ASKED = {
    k: re.compile(rf"(?:多少|几)\s*(?:{zh})|how (?:many|much)\s+(?:\w+\s+)?(?:{en})\b", re.I)
    for k, (zh, en, _) in UNITS.items()
}
_UNIT_STATED = {k: re.compile(_NUMBER + f"(?:{t})", re.I) for k, (_, _, t) in UNITS.items()}


@dataclass(frozen=True, slots=True)
class Expected:
    """What the question asks for: a kind of answer (number, time) and, for numbers, maybe a unit."""

    kind: str | None = None
    unit: str | None = None

    def stated_by(self, sentence: str) -> bool:
        if self.kind is None:
            return True
        if self.unit is not None:
            return bool(_UNIT_STATED[self.unit].search(sentence))
        return bool(ANSWER_TYPES[self.kind][1].search(sentence))


def expected_answer(question: str) -> Expected:
    kind = next((name for name, (asks, _) in ANSWER_TYPES.items() if asks.search(question)), None)
    if kind != "number":
        return Expected(kind)
    unit = next((name for name, pattern in _UNIT_ASKED.items() if pattern.search(question)), None)
    if unit is None and _MONEY_WORDS.search(question):
        unit = "money"
    return Expected(kind, unit)


def background_sentences(script: str | None = None) -> list[str]:
    """The background sentences written in ``script`` (the corpus's), or all of them.

    Similarities depend on the language pair (English-English cosines run higher than English-Chinese), so the
    background must be in the language of the evidence it is compared with.
    """
    text = resources.files("service").joinpath("data/background.txt").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    same = [line for line in lines if script_of(line) == script]
    return same or lines


def question_lang(question: str) -> str:
    return "zh" if script_of(question) == "han" else "en"


def join_with_citations(sentences: Sequence[AnswerSentence]) -> str:
    parts = []
    for s in sentences:
        marks = "".join(f"[{n}]" for n in s.citations)
        cjk_end = bool(s.text) and (script_of(s.text[-1]) == "han" or s.text[-1] in "。！？；：”）」")
        parts.append(f"{s.text}{marks}" if cjk_end else f"{s.text} {marks}")
    joiner = "" if all(script_of(s.text) == "han" for s in sentences) else " "
    return joiner.join(parts)


class ExtractiveAnswerer:
    """Holds the index's sentence vectors; one instance serves every request."""

    def __init__(
        self,
        saved: SavedIndex,
        *,
        background: np.ndarray,
        threshold: float,
        max_sentences: int = 3,
        lexical_weight: float = 0.3,
        passage_weight: float = 0.5,
        margin: float = 0.03,
        type_margin: float = 0.03,
    ) -> None:
        self.saved = saved
        self.background = background
        self.threshold = threshold
        self.max_sentences = max_sentences
        self.lexical_weight = lexical_weight
        self.passage_weight = passage_weight
        self.margin = margin
        self.type_margin = type_margin
        self._tokens: dict[int, frozenset[str]] = {}

    def score(self, question: str, search: SearchResult, hits: Sequence[Hit]) -> list[ScoredSentence]:
        """Every sentence of the given hits, scored against the question."""
        q_tokens = set(tokenize(question)) if search.lexical_used else set()
        out: list[ScoredSentence] = []
        for rank, hit in enumerate(hits, start=1):
            rows = self.saved.sentences_by_passage.get(self.saved.row_of[hit.passage.id])
            if rows is None:
                continue
            dense = self.saved.sentence_vectors[rows] @ search.query_vector
            for sent_row, d in zip(rows.tolist(), dense, strict=True):
                span = self.saved.sentences[sent_row]
                text = hit.passage.text[span.start : span.end]
                lex = self._overlap(q_tokens, sent_row, text) if q_tokens else 0.0
                score = float(d) + self.lexical_weight * lex + self.passage_weight * (hit.dense_score or 0.0)
                out.append(ScoredSentence(rank, span.start, span.end, text, float(d), lex, score))
        return out

    def _overlap(self, question_tokens: set[str], sentence_row: int, text: str) -> float:
        """Lexical overlap, with each sentence tokenised once per process (jieba is the costly part)."""
        tokens = self._tokens.get(sentence_row)
        if tokens is None:
            tokens = self._tokens[sentence_row] = frozenset(tokenize(text))
        return len(question_tokens & tokens) / len(question_tokens)

    def confidence(self, query_vector: np.ndarray, evidence: ScoredSentence) -> float:
        """The evidence sentence's similarity minus the mean similarity to the nearest background sentences.

        When no sentence can state the kind of answer asked for, the answerer reports this minus 1, so a
        calibration over confidences sees those questions as clearly unanswered.
        """
        if not len(self.background):
            return evidence.dense
        near = np.sort(self.background @ query_vector)[-BACKGROUND_NEIGHBOURS:]
        return float(evidence.dense - near.mean())

    def answer(
        self, question: str, search: SearchResult, hits: Sequence[Hit]
    ) -> tuple[Answer, list[ScoredSentence]]:
        lang = question_lang(question)
        scored = self.score(question, search, hits)
        if not scored:
            return Answer(ABSTAIN_MESSAGES[lang], (), True, 0.0, lang), scored
        ranked = sorted(scored, key=lambda s: (-s.score, s.rank, s.start))
        # The evidence must be able to state what the question asks for (a number, a time): the best such
        # sentence may come from a little further down the ranking, but not from far below the best match.
        wanted = expected_answer(question)
        typed = [s for s in ranked if wanted.stated_by(s.text)]
        if not typed or typed[0].score < ranked[0].score - self.type_margin:
            confidence = self.confidence(search.query_vector, ranked[0]) - 1.0
            return Answer(ABSTAIN_MESSAGES[lang], (), True, confidence, lang), scored
        best = typed[0]
        confidence = self.confidence(search.query_vector, best)
        if confidence < self.threshold:
            return Answer(ABSTAIN_MESSAGES[lang], (), True, confidence, lang), scored
        chosen = [best] + [s for s in typed[1:] if s.score >= best.score - self.margin]
        chosen = chosen[: self.max_sentences]
        seen: set[str] = set()
        sentences = []
        for s in sorted(chosen, key=lambda s: (s.rank, s.start)):
            if s.text in seen:  # the same sentence in two passages: cite both
                continue
            seen.add(s.text)
            cites = tuple(sorted({c.rank for c in chosen if c.text == s.text}))
            sentences.append(AnswerSentence(s.text, cites))
        text = join_with_citations(sentences)
        return Answer(text, tuple(sentences), False, confidence, lang), scored

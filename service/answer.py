"""The extractive answerer: pick the sentences of the retrieved passages that best answer the question.

Each candidate sentence is scored by its dense similarity to the question (sentence vectors are computed
at build time, so answering costs dot products, not model calls), plus its lexical overlap with the search
terms for its passage's language (the question's own words, or their dictionary translation when the
passage is in the other language: ``index.translate``; a sentence also says what the section headings
above it say, and a Chinese sentence what its document's title says: a table row under "住宿标准" is about
lodging standards, "体长可达12公分" in an article titled 短齿天竺鲷 gives that fish's length; a sentence that
opens with a pronoun or demonstrative ("这是...", "It carried ...") says, at ``context_weight``, what the
sentence before it names), plus a prior for its passage: the passage's dense score and its calibrated
probability of being relevant (``index.search.Calibration``), which puts passages of different language
pairs on one scale. The best sentences are returned in passage order, each citing the passage it came
from; a lead-in (a sentence ending in a colon) brings the sentences after it, the list it introduces, and
a quoted sentence that refers back starts at the sentence before it.

Abstention, in four steps; failing any one, the answerer abstains, says so in the question's language and
gives the reason (``service.abstention.REASONS``):
1. ``type_mismatch``: the evidence must be able to state the kind of answer asked for (a number, an amount
   of money, a length, a date ...) and fit the years the question names (``service.answertype``);
2. ``off_topic``: it must be closer to the question than unrelated background text in the passage's
   language is (``service/data/background.txt``) by at least ``min_margin``;
3. ``focus_missing``: its passage must state what the question asks about (``service.focus``); a question
   that names nothing at all (no content word and no name: "hello", "你好", "What?", "为什么？", "123") has
   nothing the evidence could state, and abstains so before any other check, whatever the evidence;
4. ``low_confidence``: the abstention model of the (question, passage) language pair
   (``service.abstention``), fitted on near-topic unanswerable questions, must find it likely enough to
   answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

import numpy as np

from index.chunk import same_text_key
from index.lexical import Term, question_lang, script_of, tokenize
from index.readers import LEAD_IN_ENDS, introduces_next
from index.search import SearchResult
from index.store import SavedIndex
from index.types import Hit
from service.abstention import AbstentionModel, Evidence, Reason, pair_of
from service.answertype import expected_answer
from service.focus import FocusChecker, question_focus

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
    # P(answerable) from the abstention model of the evidence's language pair (None when nothing was
    # retrieved); computed even when an earlier check abstained, so a run can be refitted.
    confidence: float | None
    lang: str
    evidence: Evidence | None = None
    reason: Reason | None = None  # why it abstained (None when it answered)


class Answerer(Protocol):
    """The answering seam: an extractive answerer today; a generative one would be checked the same way."""

    def score(self, question: str, search: SearchResult, hits: Sequence[Hit]) -> list[ScoredSentence]: ...

    def answer(
        self, question: str, search: SearchResult, hits: Sequence[Hit]
    ) -> tuple[Answer, list[ScoredSentence]]: ...


BACKGROUND_NEIGHBOURS = 3


# A sentence that opens with a pronoun or demonstrative goes on from the one before it (closed classes; the
# Chinese third person includes its variants 牠, for animals, and 祂, for deities, which Taiwan and Hong Kong
# texts use), and so does a fragment that opens with a comma, as a clause cut from its sentence does.
_BACK_EN = frozenset("it its this these that those they their them he his him she her such both".split())
_BACK_ZH = ("这", "此", "其", "它", "他", "她", "牠", "祂", "该")
_CLAUSE_MARKS = ("，", "、", "；", ",", ";")
_OPENS_BACK = _BACK_ZH + _CLAUSE_MARKS  # joined once: refers_back runs for every sentence scored
_FIRST_WORD = re.compile(r"[A-Za-z]+")


def refers_back(sentence: str) -> bool:
    """Whether ``sentence`` opens with a pronoun or demonstrative ("这是...", "牠们...", "It was ...") or
    a clause mark ("，1953年8月15日卒于..."), so what it is about was named in the sentence before it."""
    text = sentence.lstrip(" \t\"'“‘（(")
    if text.startswith(_OPENS_BACK):
        return True
    first = _FIRST_WORD.match(text)
    return first is not None and first.group().lower() in _BACK_EN


def background_by_lang(encode: Callable[[list[str]], np.ndarray]) -> dict[str, np.ndarray]:
    """The background sentences' vectors per language ("zh", "en"), encoded with ``encode``."""
    return {lang: encode(background_sentences(script)) for lang, script in (("zh", "han"), ("en", "latin"))}


def background_sentences(script: str | None = None) -> list[str]:
    """The background sentences written in ``script`` (the corpus's), or all of them.

    Similarities depend on the language pair (English-English cosines run higher than English-Chinese), so the
    background must be in the language of the evidence it is compared with.
    """
    text = resources.files("service").joinpath("data/background.txt").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    same = [line for line in lines if script_of(line) == script]
    return same or lines


def streamed_piece(sentence: AnswerSentence, previous: AnswerSentence | None) -> str:
    """A sentence with its markers as a stream appends it to the text so far (before the rest is known):
    after a space unless it and the previous one are both Han (``join_with_citations`` decides the joiner
    from all the sentences at once; the two agree unless the answer mixes scripts)."""
    marks = "".join(f"[{n}]" for n in sentence.citations)
    text = sentence.text
    cjk_end = bool(text) and (script_of(text[-1]) == "han" or text[-1] in "。！？；：”）」")
    piece = f"{text}{marks}" if cjk_end else f"{text} {marks}"
    if previous is None or (script_of(previous.text) == "han" and script_of(text) == "han"):
        return piece
    return f" {piece}"


def _is_code(sentence: ScoredSentence, hits: Sequence[Hit]) -> bool:
    """Whether ``sentence`` lies inside one of its passage's code blocks (``Passage.code``)."""
    code = hits[sentence.rank - 1].passage.code
    return any(start <= sentence.start and sentence.end <= end for start, end in code)


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
        background: Mapping[str, np.ndarray],
        abstention: AbstentionModel,
        focus: FocusChecker | None = None,
        threshold: float | None = None,
        min_margin: float = 0.0,
        max_sentences: int = 3,
        lexical_weight: float = 0.3,
        lexical_weight_cross: float = 0.2,
        passage_weight: float = 0.5,
        relevance_weight: float = 0.1,
        margin: float = 0.03,
        type_margin: float = 0.03,
        context_weight: float = 0.75,
    ) -> None:
        self.saved = saved
        self.background = background  # per language ("zh", "en"): vectors of unrelated text
        self.abstention = abstention
        self.focus = focus or FocusChecker()
        self.threshold = threshold
        self.min_margin = min_margin
        self.max_sentences = max_sentences
        self.lexical_weight = lexical_weight
        # Overlap with a dictionary translation is noisier than with the question's own words.
        self.lexical_weight_cross = lexical_weight_cross
        self.passage_weight = passage_weight
        self.relevance_weight = relevance_weight
        self.margin = margin
        self.type_margin = type_margin
        self.context_weight = context_weight
        self._tokens: dict[int, frozenset[str]] = {}

    def score(self, question: str, search: SearchResult, hits: Sequence[Hit]) -> list[ScoredSentence]:
        """Every sentence of the given hits, scored against the question (see the module docstring)."""
        terms = self._terms(question, search) if search.lexical_used else {}
        lang = question_lang(question)
        out: list[ScoredSentence] = []
        for rank, hit in enumerate(hits, start=1):
            rows = self.saved.sentences_by_passage.get(self.saved.row_of[hit.passage.id])
            if rows is None:
                continue
            mine = terms.get(hit.passage.lang) or terms.get("*", ())
            cross = hit.passage.lang in ("zh", "en") and hit.passage.lang != lang
            lexical_weight = self.lexical_weight_cross if cross else self.lexical_weight
            # In Chinese the title too: Chinese prose leaves the article's subject unsaid once the article
            # has named it ("体长可达12公分。" under the title 短齿天竺鲷), and the readers drop the title
            # line from the passages. English writes its subjects ("The mill ...", "It ...": refers_back).
            above = (
                [hit.passage.title, *hit.passage.section] if hit.passage.lang == "zh" else hit.passage.section
            )
            heading = frozenset(tokenize(" / ".join(above))) if mine else frozenset()
            dense = self.saved.sentence_vectors[rows] @ search.query_vector
            # Similarities of different language pairs are not on one scale: each is taken relative to the
            # question's similarity to unrelated text in the passage's language (a constant in a one-language
            # corpus, where it changes nothing).
            base = self._baseline(search.query_vector, hit.passage.lang)
            prior = self.passage_weight * ((hit.dense_score or 0.0) - base)
            if search.calibrated:
                prior += self.relevance_weight * hit.score
            previous: int | None = None
            for sent_row, d in zip(rows.tolist(), dense, strict=True):
                span = self.saved.sentences[sent_row]
                text = hit.passage.text[span.start : span.end]
                if not any(ch.isalnum() for ch in text):
                    continue  # "}" closing a program's block, ". . ." in a PDF: states nothing
                before = previous if refers_back(text) else None
                lex = self._overlap(mine, sent_row, text, heading, before) if mine else 0.0
                previous = sent_row
                score = float(d) - base + lexical_weight * lex + prior
                out.append(ScoredSentence(rank, span.start, span.end, text, float(d), lex, score))
        return out

    @staticmethod
    def _terms(question: str, search: SearchResult) -> dict[str, tuple[Term, ...]]:
        """The lexical terms per passage language (deduplicated: overlap counts a term once)."""
        if not search.terms:
            return {"*": tuple(Term(((t, 1.0),), t) for t in dict.fromkeys(tokenize(question)))}
        return {lang: tuple({t.tokens: t for t in terms}.values()) for lang, terms in search.terms.items()}

    def _overlap(
        self,
        terms: Sequence[Term],
        sentence_row: int,
        text: str,
        heading: frozenset[str] = frozenset(),
        previous: int | None = None,
    ) -> float:
        """The weighted share of the terms the sentence or its ``heading`` tokens (its section headings, and
        for a Chinese passage its document's title) contain (a term counts with its best candidate's
        weight), with each sentence tokenised once per process (jieba is the costly part). A term only the
        ``previous`` sentence of the passage states counts ``context_weight`` as much: a sentence goes on
        from the one before it ("第一，监管一体化。这是...的必然要求": 这 is the integrated regulation asked
        about)."""
        tokens = self._tokens.get(sentence_row)
        if tokens is None:
            tokens = self._tokens[sentence_row] = frozenset(tokenize(text))
        before = (
            self._tokens.get(previous, frozenset()) if previous is not None and self.context_weight else None
        )
        total = sum(t.weight for t in terms)
        found = 0.0
        for t in terms:
            own = max((w for c, w in t.candidates if c in tokens or c in heading), default=0.0)
            if before:
                own = max(
                    own, self.context_weight * max((w for c, w in t.candidates if c in before), default=0.0)
                )
            found += t.weight * own
        return found / total if total > 0 else 0.0

    def evidence(
        self,
        question: str,
        search: SearchResult,
        hits: Sequence[Hit],
        best: ScoredSentence,
    ) -> Evidence:
        """The abstention model's inputs for the evidence sentence ``best`` (see ``service.abstention``)."""
        passage = hits[best.rank - 1].passage
        # Dense scores of different language pairs are on different scales: the best score and its gap
        # are taken among the hits in the evidence passage's language.
        dense = sorted(
            (h.dense_score for h in hits if h.dense_score is not None and h.passage.lang == passage.lang),
            reverse=True,
        )
        ordered = dense or [best.dense]
        gap = ordered[0] - ordered[1] if len(ordered) > 1 else 0.0
        pair = pair_of(question_lang(question), passage.lang)
        # The passage states what its document's title and its section headings state ("二、住宿标准" above
        # a table of rates; "... - The Rust Programming Language" over every page of a book about Rust).
        stated = "\n".join([passage.title, *passage.section, passage.text])
        focus = question_focus(question)
        support = self.focus.support(focus, stated, pair.split("-")[1])
        margin = self.background_margin(search.query_vector, best, pair.split("-")[1])
        relevance = max((h.score for h in hits), default=0.0) if search.calibrated else 1.0
        return Evidence(
            margin,
            ordered[0],
            gap,
            pair,
            support.head,
            support.names,
            support.coverage,
            relevance,
            support.weakest,
            asks=not focus.empty,
        )

    def _baseline(self, query_vector: np.ndarray, lang: str) -> float:
        """The question's mean similarity to its nearest background sentences in ``lang`` (0 without)."""
        background = self.background.get(lang)
        if background is None or not len(background):
            return 0.0
        return float(np.sort(background @ query_vector)[-BACKGROUND_NEIGHBOURS:].mean())

    def background_margin(
        self, query_vector: np.ndarray, evidence: ScoredSentence, lang: str = "zh"
    ) -> float:
        """The evidence sentence's similarity minus its mean similarity to the nearest background ones in
        the evidence's language."""
        background = self.background.get(lang)
        if background is None or not len(background):
            return evidence.dense
        near = np.sort(background @ query_vector)[-BACKGROUND_NEIGHBOURS:]
        return float(evidence.dense - near.mean())

    def answer(
        self, question: str, search: SearchResult, hits: Sequence[Hit]
    ) -> tuple[Answer, list[ScoredSentence]]:
        lang = question_lang(question)
        scored = self.score(question, search, hits)
        if not scored:
            return Answer(ABSTAIN_MESSAGES[lang], (), True, None, lang, reason="no_evidence"), scored
        ranked = sorted(scored, key=lambda s: (-s.score, s.rank, s.start))
        # The evidence must be able to state what the question asks for (service.answertype): the best such
        # sentence may come from a little further down the ranking, but not from far below the best match.
        wanted = expected_answer(question)
        texts = {rank: hit.passage.text for rank, hit in enumerate(hits, start=1)}
        typed = [s for s in ranked if wanted.stated_by(s.text, texts.get(s.rank))]
        typed_ok = bool(typed) and typed[0].score >= ranked[0].score - self.type_margin
        best = typed[0] if typed_ok else ranked[0]
        evidence = self.evidence(question, search, hits, best)
        confidence = self.abstention.probability(evidence)
        reason = self.decide(evidence, confidence, typed_ok)
        if reason is not None:
            return Answer(ABSTAIN_MESSAGES[lang], (), True, confidence, lang, evidence, reason), scored
        # A quoted code block's similarity is loose (a word of the question among its keywords): it may
        # answer alone, or as what a chosen lead-in introduces, but never joins another answer as an extra.
        chosen = [best] + [
            s for s in typed[1:] if s.score >= best.score - self.margin and not _is_code(s, hits)
        ]
        chosen = chosen[: self.max_sentences]
        chosen += self._continuations(chosen, scored, texts)
        chosen = self._with_antecedents(chosen, scored, texts)
        seen: set[str] = set()
        sentences = []
        for s in sorted(chosen, key=lambda s: (s.rank, s.start)):
            key = same_text_key(s.text)
            if key in seen:  # the same sentence in two passages (however spaced): quoted once, citing both
                continue
            seen.add(key)
            cites = tuple(sorted({c.rank for c in chosen if same_text_key(c.text) == key}))
            sentences.append(AnswerSentence(s.text, cites))
        text = join_with_citations(sentences)
        return Answer(text, tuple(sentences), False, confidence, lang, evidence), scored

    def _continuations(
        self, chosen: Sequence[ScoredSentence], scored: Sequence[ScoredSentence], texts: Mapping[int, str]
    ) -> list[ScoredSentence]:
        """What a chosen lead-in introduces: a sentence that ends in a colon ("There are two requirements:")
        states nothing on its own, so the sentences after it in its passage (the list items, up to
        ``max_sentences``) are quoted with it; so does one that refers forward ("You can do the following
        tasks.", ``introduces_next``) when what follows it starts on a line of its own (a list, a table).
        A question on a line of its own (an FAQ's, which the readers keep in one passage with its answer)
        states nothing either, and matches a question like it best: the sentences of the line after it, its
        answer, are quoted with it."""
        taken = {(s.rank, s.start) for s in chosen}
        out: list[ScoredSentence] = []
        for lead in chosen:
            lead_in = introduces_next(lead.text)
            asks = lead.text.rstrip().endswith(("?", "？"))
            if not lead_in and not asks:
                continue
            after = sorted(
                (s for s in scored if s.rank == lead.rank and s.start > lead.start), key=lambda s: s.start
            )
            own_line = bool(after) and "\n" in texts[lead.rank][lead.end : after[0].start]
            if not own_line and not (lead_in and lead.text.endswith(LEAD_IN_ENDS)):
                continue
            if not lead_in:  # a question: its answer is the next line's sentences
                line_end = texts[lead.rank].find("\n", after[0].start)
                after = [s for s in after if line_end < 0 or s.start < line_end]
            for s in after[: self.max_sentences]:
                if (s.rank, s.start) not in taken:
                    taken.add((s.rank, s.start))
                    out.append(s)
        return out

    @staticmethod
    def _with_antecedents(
        chosen: Sequence[ScoredSentence], scored: Sequence[ScoredSentence], texts: Mapping[int, str]
    ) -> list[ScoredSentence]:
        """``chosen`` with each sentence that refers back ("这是...的必然要求") widened to start at the
        sentence before it in its passage, so the quote says what "这" is (one quote, one citation); a
        chosen sentence the widening covers is dropped."""
        out: list[ScoredSentence] = []
        for s in chosen:
            before = (
                [p for p in scored if p.rank == s.rank and p.end <= s.start] if refers_back(s.text) else []
            )
            if before:
                prev = max(before, key=lambda p: p.start)
                text = texts[s.rank][prev.start : s.end]
                s = ScoredSentence(s.rank, prev.start, s.end, text, s.dense, s.lexical, s.score)
            out.append(s)
        return [
            s
            for s in out
            if not any(o is not s and o.rank == s.rank and o.start <= s.start and s.end <= o.end for o in out)
        ]

    def decide(self, evidence: Evidence, confidence: float, typed: bool) -> Reason | None:
        """The reason to abstain on ``evidence``, or None to answer (the order of the module docstring)."""
        if not evidence.asks:  # the question names nothing: no evidence can state what it asks about
            return "focus_missing"
        if not typed:
            return "type_mismatch"
        if evidence.margin < self.min_margin:  # no closer than unrelated text
            return "off_topic"
        if evidence.head < self.abstention.min_head(evidence.pair):
            return "focus_missing"
        threshold = self.abstention.threshold(evidence) if self.threshold is None else self.threshold
        return "low_confidence" if confidence < threshold else None

"""Lexical retrieval: BM25 over jieba tokens (Latin tokens lower-cased), with structured queries.

A query is a sequence of *terms*, each a set of weighted candidate tokens treated as synonyms
(probabilistic structured queries, Darwish and Oard 2003): a term's frequency in a passage is the weighted
sum of its candidates' frequencies, its document frequency the weighted sum of theirs. A term with one
candidate of weight 1 is a plain BM25 term, so a question in the passages' own language scores exactly as
BM25 (Lucene's formula, as bm25s computes it); a question in another language is first translated into
such terms by ``index.translate``.

Also the script detection that tells which language a text is in: each passage records its own
(``Passage.lang``), so lexical evidence is chosen per question and passage pair, never per corpus.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from scipy import sparse

Script = Literal["han", "latin", "other"]

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_WORD = re.compile(r"\w", re.UNICODE)
_STOP = frozenset(
    "the a an of to in on at for and or is are was were be been by with from as that this it its what which "
    "who whom whose when where why how did do does many much "
    "的 了 是 在 和 与 及 等 也 都 而 并 之 其 为 有 吗 呢 什么 哪些 哪个 多少 怎么 如何 为什么".split()
)
EMPTY_ROW = "\u2400"  # the one token of a passage that has none (a row still needs one)


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


@lru_cache(maxsize=1)
def _simplifier() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def fold(text: str) -> str:
    """The form in which words are compared: NFKC (full-width letters and digits, compatibility ideographs)
    and Chinese in simplified characters (OpenCC's t2s tables, by phrase: 聯絡人 -> 联络人, 頭髮 -> 头发, 乾隆
    kept), so that a question in either script finds, and is supported by, a passage in the other (a Big5
    notice, a simplified question). jieba's dictionary, CC-CEDICT's headwords and the answer-type tables are
    simplified too. Simplified text passes through all but unchanged (46 of 626,093 characters of the XQuAD
    and CMRC 2018 paragraphs change, each a traditional form left in them: 舖 -> 铺, 於 -> 于)."""
    text = unicodedata.normalize("NFKC", text)
    return _simplifier().convert(text) if _HAN.search(text) else text


def tokenize(text: str) -> list[str]:
    """Search tokens: jieba's fine-grained cut of the folded text (``fold``), Latin lower-cased, punctuation
    and stopwords dropped."""
    text = fold(text).lower()
    return [t for t in _jieba().cut_for_search(text) if _WORD.search(t) and t.strip() and t not in _STOP]


def is_stopword(token: str) -> bool:
    return token in _STOP


def script_of(text: str) -> Script:
    """The dominant script of a text: Han characters count once each, Latin letters in words of ~5."""
    han = len(_HAN.findall(text))
    latin = len(_LATIN.findall(text))
    if han == 0 and latin == 0:
        return "other"
    return "han" if han * 5 >= latin else "latin"


# The grammar of a question, outside what it quotes: English function words (of two letters or more: "A-135"
# is a name) and Chinese ones, question words included.
_EN_GRAMMAR = frozenset(w for w in _STOP if w.isascii() and len(w) > 1)
_ZH_WORDS = {*(w for w in _STOP if not w.isascii()), *"谁 哪 几 是否 怎样".split()}
_ZH_GRAMMAR = re.compile("|".join(sorted(_ZH_WORDS, key=len, reverse=True)))
_QUOTED = re.compile(r"《[^》]*》|“[^”]*”|「[^」]*」|\"[^\"]*\"")


@lru_cache(maxsize=4096)
def question_lang(question: str) -> str:
    """A question's language (a question always has one): the language of its grammar words when only one
    language's occur outside quotes ("Which company owns 卫视卡式台?" is English, "Maren Holt的灯塔有多高？"
    Chinese), else "zh" when it is mostly Han, else "en"."""
    frame = _QUOTED.sub(" ", fold(question))
    english = any(w.lower() in _EN_GRAMMAR for w in re.findall(r"[A-Za-z]+", frame))
    chinese = bool(_ZH_GRAMMAR.search("".join(_HAN.findall(frame))))
    if english != chinese:
        return "en" if english else "zh"
    return "zh" if script_of(question) == "han" else "en"


LANGS: tuple[str, ...] = ("zh", "en")
PAIRS: tuple[str, ...] = ("zh-zh", "en-en", "en-zh", "zh-en")


def pair_of(question_lang: str, passage_lang: str) -> str:
    """The language pair "<question>-<passage>" ("en-zh": an English question, a Chinese passage); a
    passage of undetermined language ("und") counts as the question's."""
    passage = passage_lang if passage_lang in LANGS else question_lang
    return f"{question_lang}-{passage}"


@dataclass(frozen=True, slots=True)
class Term:
    """One query term: candidate tokens with weights, synonyms of each other; ``source`` is the question
    text it stands for (the word itself, or the English words a Chinese word translates)."""

    candidates: tuple[tuple[str, float], ...]
    source: str = ""
    weight: float = 1.0  # the term's share of the score (an ambiguous single-character word counts less)

    @property
    def tokens(self) -> frozenset[str]:
        return frozenset(token for token, _ in self.candidates)


def plain_terms(tokens: Iterable[str]) -> tuple[Term, ...]:
    """One single-candidate term per token (repeats kept: BM25 counts a repeated query token twice)."""
    return tuple(Term(((t, 1.0),), t) for t in tokens)


class BM25Index:
    """BM25 over a fixed list of passages (rows match the vector store), from texts or from their tokens."""

    def __init__(
        self,
        texts: Sequence[str] = (),
        *,
        tokens: Sequence[Sequence[str]] | None = None,
        k1: float = 1.5,
        b: float = 0.75,
    ) -> None:
        """Index ``texts``, or their ``tokens`` when the caller has them (``tokenize`` is the costly part;
        the saved index stores every passage's tokens)."""
        rows = [list(t) for t in tokens] if tokens is not None else [tokenize(t) for t in texts]
        self._build(rows, k1, b)

    def _build(self, tokens: Sequence[Sequence[str]], k1: float, b: float) -> None:
        rows = [list(t) or [EMPTY_ROW] for t in tokens]
        self._size = len(rows)
        vocab: dict[str, int] = {}
        indptr, indices = [0], list[int]()
        for row in rows:
            indices.extend(vocab.setdefault(t, len(vocab)) for t in row)
            indptr.append(len(indices))
        counts = sparse.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(rows), len(vocab))
        )
        counts.sum_duplicates()
        self._tf = counts.tocsc()  # term columns: one slice per query token
        self._df = np.diff(self._tf.indptr).astype(np.float64)
        lengths = np.array([len(r) for r in rows], dtype=np.float64)
        average = lengths.mean() if len(lengths) else 1.0
        self._norm = k1 * (1 - b + b * lengths / average)  # per row, Lucene's length normalisation
        self._vocab = vocab

    @property
    def size(self) -> int:
        return self._size

    @property
    def vocabulary(self) -> frozenset[str]:
        return frozenset(self._vocab)

    def has(self, token: str) -> bool:
        return token in self._vocab

    def document_frequency(self, token: str) -> int:
        column = self._vocab.get(token)
        return 0 if column is None else int(self._df[column])

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row (zeros when no query token is in the vocabulary)."""
        return self.term_scores(plain_terms(tokenize(query)))

    def term_scores(self, terms: Sequence[Term], rows: np.ndarray | None = None) -> np.ndarray:
        """Structured BM25 of every row (see the module docstring); ``rows`` keeps only those rows (the
        others score 0)."""
        total = np.zeros(self._size, dtype=np.float64)
        for term in terms:
            tf = np.zeros(self._size, dtype=np.float64)
            df = 0.0
            for token, weight in term.candidates:
                column = self._vocab.get(token)
                if column is None or weight <= 0:
                    continue
                start, end = self._tf.indptr[column], self._tf.indptr[column + 1]
                tf[self._tf.indices[start:end]] += weight * self._tf.data[start:end]
                df += weight * self._df[column]
            if df <= 0:
                continue
            df = min(df, float(self._size))
            idf = np.log(1 + (self._size - df + 0.5) / (df + 0.5))
            hit = np.flatnonzero(tf)
            total[hit] += term.weight * idf * tf[hit] / (tf[hit] + self._norm[hit])
        if rows is not None:
            kept = np.zeros(self._size, dtype=bool)
            kept[rows] = True
            total[~kept] = 0.0
        return total.astype(np.float32)

    def attainable(self, terms: Sequence[Term]) -> float:
        """The BM25 a row would score holding every term at saturation: each term's weight times its idf
        here (a term no row holds at the rarest idf)."""
        total = 0.0
        for term in terms:
            df = sum(
                weight * self._df[column]
                for token, weight in term.candidates
                if weight > 0 and (column := self._vocab.get(token)) is not None
            )
            df = min(df, float(self._size))
            total += term.weight * float(np.log(1 + (self._size - df + 0.5) / (df + 0.5)))
        return total

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` rows with a positive score, best first (ties by row)."""
        return top_rows(self.scores(query), k)


def top_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``scores`` with a positive score, best first (ties by row), and their scores."""
    rows = np.flatnonzero(scores > 0)
    order = rows[np.lexsort((rows, -scores[rows]))][:k]
    return scores[order], order

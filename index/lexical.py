"""Lexical retrieval: BM25 (bm25s) over jieba tokens, Latin tokens lower-cased.

Also the script detection that decides when lexical evidence is meaningful: BM25 scores between a
question and a passage written in different scripts are noise (see shared/notes/embedding-model.md).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

import numpy as np

Script = Literal["han", "latin", "other"]

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_WORD = re.compile(r"\w", re.UNICODE)
_STOP = frozenset(
    "the a an of to in on at for and or is are was were be been by with from as that this it its what which "
    "who whom whose when where why how did do does many much "
    "的 了 是 在 和 与 及 等 也 都 而 并 之 其 为 有 吗 呢 什么 哪些 哪个 多少 怎么 如何 为什么".split()
)


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def tokenize(text: str) -> list[str]:
    """Search tokens: jieba's fine-grained cut, NFKC, Latin lower-cased, punctuation and stopwords dropped."""
    text = unicodedata.normalize("NFKC", text).lower()
    return [t for t in _jieba().cut_for_search(text) if _WORD.search(t) and t.strip() and t not in _STOP]


def script_of(text: str) -> Script:
    """The dominant script of a text: Han characters count once each, Latin letters in words of ~5."""
    han = len(_HAN.findall(text))
    latin = len(_LATIN.findall(text))
    if han == 0 and latin == 0:
        return "other"
    return "han" if han * 5 >= latin else "latin"


def corpus_script(texts: Sequence[str]) -> Script:
    return script_of("".join(texts[:2000]))


class BM25Index:
    """BM25 over a fixed list of texts (rows match the vector store)."""

    def __init__(self, texts: Sequence[str] = (), *, tokens: Sequence[Sequence[str]] | None = None) -> None:
        """Index ``texts``, or their ``tokens`` when the caller has them (``tokenize`` is the costly part;
        the saved index stores every passage's tokens)."""
        import bm25s

        rows = [list(t) for t in tokens] if tokens is not None else [tokenize(t) for t in texts]
        self._size = len(rows)
        self._bm25 = bm25s.BM25()
        self._vocab: set[str] = set()
        if rows:
            self._bm25.index(
                [r or ["\u2400"] for r in rows], show_progress=False
            )  # an empty row needs a token
            self._vocab = set(self._bm25.vocab_dict)

    @property
    def size(self) -> int:
        return self._size

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row (zeros when no query token is in the vocabulary)."""
        q = [t for t in tokenize(query) if t in self._vocab]
        if not q or not self._size:
            return np.zeros(self._size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(q), dtype=np.float32)

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` rows with a positive score, best first (ties by row)."""
        s = self.scores(query)
        rows = np.flatnonzero(s > 0)
        order = rows[np.lexsort((rows, -s[rows]))][:k]
        return s[order], order

"""Grounding check: is every answer sentence supported by a passage it cites?

For an extractive answer the check is exact (the sentence occurs verbatim in a cited passage). The same
function checks a generated answer: a sentence is then supported when a cited passage covers nearly all of
its content tokens and every number it states.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

from index.lexical import tokenize

_CITATION = re.compile(r"\[\d+\]")
_SPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")

MIN_TOKEN_COVERAGE = 0.8


def normalise(text: str) -> str:
    """NFKC, citation markers and all whitespace removed: the form in which containment is tested."""
    text = _CITATION.sub("", unicodedata.normalize("NFKC", text))
    return _SPACE.sub("", text).lower()


def supports(passage_text: str, sentence: str) -> bool:
    """Does this passage support this sentence?"""
    s, p = normalise(sentence), normalise(passage_text)
    if not s:
        return False
    if s in p:
        return True
    tokens = set(tokenize(sentence))
    if not tokens:
        return False
    passage_tokens = set(tokenize(passage_text))
    coverage = len(tokens & passage_tokens) / len(tokens)
    numbers_ok = all(n in p for n in _NUMBER.findall(s))
    return coverage >= MIN_TOKEN_COVERAGE and numbers_ok


def check_sentences(
    sentences: Sequence[tuple[str, Sequence[int]]], passages_by_rank: Mapping[int, str]
) -> list[bool]:
    """Per sentence (text, cited ranks): supported by at least one cited passage that exists."""
    return [
        any(rank in passages_by_rank and supports(passages_by_rank[rank], text) for rank in cites)
        for text, cites in sentences
    ]

"""Near-topic unanswerable questions made from answerable ones by swapping their focus (SQuAD 2.0-style).

SQuAD 2.0 had people write questions about a paragraph that the paragraph does not answer although it
holds a plausible answer ("How many trucks did Hema send?" over a paragraph that counts items, not trucks).
This module makes such questions at scale, reproducibly: take an answerable question, find a term of it that
its gold paragraph states (a name, a place, an organisation, a noun, a year or number), and replace it with a
term of the same kind from the same article (its other paragraphs; for one-paragraph articles, the most
similar other article) that the gold paragraph never states. The question keeps its other terms, so it
still points at the gold paragraph (near-topic), but asks about something the paragraph does not say.

A swap is kept only when the result is unanswerable as far as the text can tell:
- the new term occurs nowhere in the gold paragraph;
- the question keeps at least one *anchor*: another of its terms that the gold paragraph states (else it
  would be a question about the new term alone, which another paragraph might answer);
- no paragraph of the corpus states the new term together with every anchor (so no paragraph can be about
  both).

Terms are read with jieba's part-of-speech tagger for Chinese; for English, names are runs of capitalised
words, and nouns are words that the article itself puts after a determiner ("the trucks", "a kayak").
Terms that occur in more than a tenth of the paragraphs ("time", "name", "year") are too common to be a
focus. Everything is deterministic: the order in which slots and replacements are tried comes from a
generator seeded with the question's id.

Only the question's own language is used: for a parallel benchmark (English questions over Chinese
paragraphs) the English question is swapped with English terms and checked against the English version
of the paragraphs, which say the same as the Chinese ones.
"""

from __future__ import annotations

import logging
import random
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from service.focus import EN_FUNCTION, EN_WORD

NAME = "name"
PLACE = "place"
ORG = "org"
PROPER = "proper"
NOUN = "noun"
YEAR = "year"
NUMBER = "number"
DECIMAL = "decimal"

# jieba part-of-speech tags -> the kind of term (nr person, ns place, nt organisation, nz other proper noun).
_ZH_KINDS = {"nr": NAME, "ns": PLACE, "nt": ORG, "nz": PROPER, "n": NOUN}
_DIGITS = re.compile(r"\d[\d,.]*\d|\d")
_YEAR = re.compile(r"^(?:1[5-9]|20)\d\d$")
_DETERMINERS = frozenset(
    "the a an this these those its their his her our each every many several some any two three four five "
    "six seven eight nine ten first second new".split()
)


@dataclass(frozen=True, slots=True)
class Term:
    text: str
    kind: str


@dataclass(frozen=True, slots=True)
class Swap:
    """An unanswerable variant of a question: ``original`` replaced by ``replacement``."""

    question: str
    original: Term
    replacement: Term


@lru_cache(maxsize=1)
def _posseg() -> Any:
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    return jieba.posseg


def number_kind(token: str) -> str:
    """Years, whole numbers and decimals are swapped only with their own kind."""
    if _YEAR.match(token):
        return YEAR
    return DECIMAL if "." in token else NUMBER


def zh_terms(text: str) -> list[Term]:
    """Names, places, organisations, proper and common nouns (two or more characters) and numbers."""
    out: list[Term] = []
    for pair in _posseg().cut(text):
        word, flag = pair.word.strip(), pair.flag
        if not word:
            continue
        if _DIGITS.fullmatch(word):
            out.append(Term(word, number_kind(word)))
            continue
        kind = (_ZH_KINDS.get(flag[:2]) or _ZH_KINDS.get(flag[:1])) if flag.startswith("n") else None
        if kind is not None and len(word) >= 2 and not _DIGITS.search(word):
            out.append(Term(word, kind))
    return _unique(out)


def en_nouns(texts: Sequence[str]) -> frozenset[str]:
    """Lower-case words that ``texts`` put right after a determiner and right before a function word or
    punctuation ("the trucks were", "a kayak."): nouns, not the adjectives of "the new company"."""
    found: set[str] = set()
    for text in texts:
        matches = list(EN_WORD.finditer(text))
        for before, word, after in zip(matches, matches[1:], [*matches[2:], None], strict=False):
            w = word.group()
            if before.group().lower() not in _DETERMINERS or not w.isalpha() or not w.islower():
                continue
            if len(w) < 3 or w in EN_FUNCTION:
                continue
            if (
                after is None
                or text[word.end() : after.start()].strip()
                or after.group().lower() in EN_FUNCTION
            ):
                found.add(w)
    return frozenset(found)


def en_terms(text: str, nouns: frozenset[str], *, question: bool = False) -> list[Term]:
    """Names (runs of capitalised words, not a sentence's first word alone), numbers, and the words of
    ``text`` that ``nouns`` holds (lower-case in ``text``)."""
    out: list[Term] = []
    tokens = list(EN_WORD.finditer(text))
    run: list[str] = []

    def close() -> None:
        if run:
            out.append(Term(" ".join(run), NAME))
            run.clear()

    for i, match in enumerate(tokens):
        word = match.group()
        gap = text[tokens[i - 1].end() : match.start()] if i else ""
        if gap.strip():  # a name runs over words separated by spaces only
            close()
        sentence_start = i == 0 or gap.strip() in {".", "?", "!"}
        # "St." or "Mr." inside a name ends it; "Henan." at a sentence's end does not make it an abbreviation.
        abbreviation = (
            len(word) <= 3
            and text[match.end() : match.end() + 1] == "."
            and match.end() + 1 < len(text.rstrip())
        )
        if word[0].isupper() and word.lower() not in EN_FUNCTION and not abbreviation:
            if sentence_start and (question or word.lower() in nouns):
                close()  # a question's first word is capitalised whatever it is
                continue
            run.append(word)
            continue
        close()
        if _DIGITS.fullmatch(word):
            out.append(Term(word, number_kind(word)))
        elif word in nouns:
            out.append(Term(word, NOUN))
    close()
    return _unique(out)


def terms(text: str, lang: str, nouns: frozenset[str] = frozenset(), *, question: bool = False) -> list[Term]:
    return zh_terms(text) if lang == "zh" else en_terms(text, nouns, question=question)


def _whole(term: str) -> str:
    """A pattern for ``term`` as a whole Latin word or number (Chinese characters next to it do not count
    as part of it: "在1954年" states 1954)."""
    return rf"(?<![A-Za-z0-9]){re.escape(term)}(?![A-Za-z0-9])"


def states(text: str, term: str, lang: str) -> bool:
    """Whether ``text`` contains ``term`` (case-insensitive; as a whole word in English)."""
    if lang == "zh" and not term.isascii():
        return term in text
    return re.search(_whole(term), text, re.IGNORECASE) is not None


def _shape(term: Term) -> tuple[int, bool]:
    """Names are swapped for names of as many words ("Jared Allen" for "Peyton Manning"), English nouns
    for nouns of the same number (a plural for a plural)."""
    if term.kind == NAME:
        return len(term.text.split()), False
    plural = (
        term.kind == NOUN and term.text.isascii() and term.text.endswith("s") and not term.text.endswith("ss")
    )
    return 1, plural


def _unique(found: Sequence[Term]) -> list[Term]:
    seen: set[str] = set()
    out = []
    for t in found:
        if t.text.lower() not in seen:
            seen.add(t.text.lower())
            out.append(t)
    return out


class SwapMaker:
    """Makes focus-swapped variants of questions over one set of paragraphs (one language).

    ``paragraphs`` are all the paragraphs in the question's language, ``articles`` the article index of
    each (parallel to ``paragraphs``).
    """

    def __init__(self, paragraphs: Sequence[str], articles: Sequence[int], lang: str) -> None:
        if len(paragraphs) != len(articles):
            raise ValueError(f"{len(paragraphs)} paragraphs for {len(articles)} article indexes")
        self.paragraphs = list(paragraphs)
        self.lang = lang
        self.by_article: dict[int, list[int]] = {}
        for row, article in enumerate(articles):
            self.by_article.setdefault(article, []).append(row)
        self.articles = list(articles)
        self._nouns: dict[int, frozenset[str]] = {}
        self._terms: dict[int, list[Term]] = {}
        self._lower = [p.lower() for p in self.paragraphs]
        self._neighbour: dict[int, int] = {}
        df: Counter[str] = Counter()
        for row in range(len(self.paragraphs)):
            df.update({t.text.lower() for t in self.paragraph_terms(row)})
        limit = max(3, len(self.paragraphs) // 10)
        self.common = frozenset(term for term, n in df.items() if n > limit)

    def nouns(self, article: int) -> frozenset[str]:
        if self.lang == "zh":
            return frozenset()
        if article not in self._nouns:
            self._nouns[article] = en_nouns([self.paragraphs[r] for r in self.by_article[article]])
        return self._nouns[article]

    def paragraph_terms(self, row: int) -> list[Term]:
        if row not in self._terms:
            self._terms[row] = terms(self.paragraphs[row], self.lang, self.nouns(self.articles[row]))
        return self._terms[row]

    def sources(self, row: int) -> list[int]:
        """Where replacements for a question about paragraph ``row`` come from: the other paragraphs of
        its article, or for a one-paragraph article the paragraph sharing most terms with it."""
        others = [r for r in self.by_article[self.articles[row]] if r != row]
        if others:
            return others
        if row not in self._neighbour:
            mine = {t.text for t in self.paragraph_terms(row)}
            best = max(
                (r for r in range(len(self.paragraphs)) if r != row),
                key=lambda r: (len(mine & {t.text for t in self.paragraph_terms(r)}), -r),
            )
            self._neighbour[row] = best
        return [self._neighbour[row]]

    def swap(self, question: str, row: int, seed: str) -> Swap | None:
        """A focus-swapped variant of ``question`` (answered by paragraph ``row``), or None if none passes
        the checks in the module docstring."""
        gold = self.paragraphs[row]
        nouns = self.nouns(self.articles[row])
        # A slot is a term the gold paragraph states as a whole term of its own (not "利亚" inside
        # "安纳托利亚"): its swap then replaces a whole term there too.
        gold_terms = {t.text.lower() for t in self.paragraph_terms(row)}
        stated = [
            t
            for t in terms(question, self.lang, nouns, question=True)
            if t.text.lower() not in self.common and t.text.lower() in gold_terms
        ]
        if len(stated) < 2:  # a swapped term and at least one anchor
            return None
        rng = random.Random(zlib.crc32(seed.encode("utf-8")))
        slots = list(stated)
        rng.shuffle(slots)
        pool = [
            t for r in self.sources(row) for t in self.paragraph_terms(r) if t.text.lower() not in self.common
        ]
        for slot in slots:
            anchors = [t for t in stated if t != slot]
            candidates = sorted(
                {t.text: t for t in pool if t.kind == slot.kind and _shape(t) == _shape(slot)}.values(),
                key=lambda t: t.text,
            )
            rng.shuffle(candidates)
            for candidate in candidates:
                if self._acceptable(slot, candidate, gold, anchors):
                    return Swap(self._replace(question, slot.text, candidate.text), slot, candidate)
        return None

    def _acceptable(self, slot: Term, candidate: Term, gold: str, anchors: Sequence[Term]) -> bool:
        a, b = slot.text.lower(), candidate.text.lower()
        if a in b or b in a:
            return False
        if states(gold, candidate.text, self.lang):
            return False
        if candidate.kind == NAME and self.lang != "zh":
            # A name is not new when the paragraph already names any of its words ("Lane" in "Robert Lane").
            if any(states(gold, word, self.lang) for word in candidate.text.split()):
                return False
        for text in self.paragraphs:
            if states(text, candidate.text, self.lang) and all(
                states(text, t.text, self.lang) for t in anchors
            ):
                return False
        return True

    def _replace(self, question: str, old: str, new: str) -> str:
        if self.lang == "zh" and not old.isascii():
            return question.replace(old, new, 1)
        return re.sub(_whole(old), new.replace("\\", "\\\\"), question, count=1)

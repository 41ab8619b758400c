"""Names across scripts by sound: "Stiglitz" is stated by a Chinese passage that writes 斯蒂格利茨.

A foreign name in Chinese text is mostly a transliteration that no dictionary lists (Kibaki 齐贝吉, Pachauri
帕乔里), so the focus check (``service.focus``) cannot find it by translation. Both sides are reduced to
the consonants they sound, by class (b/p, d/t, g/k, s/z/c/ts, l/r, m, n, f, w, the palatals j/q/zh/ch; vowels
and h dropped, repeats collapsed): the English spelling by a few spelling rules ("ph" is f, "c" before e/i/y
is s), the Chinese characters by their Mandarin readings (CC-CEDICT's, handed in by the translator). Two
names match when the weighted edit distance of their keys is small against their length (``similarity``;
near classes such as k/j, the palatalised "ki" of 基, cost less than a full substitution).

Transliterations are written with a small set of characters (斯, 克, 尔, 拉...). The set is read from
jieba's dictionary: the characters of its words tagged ``nrt`` (transliterated personal names; at least
``MIN_NAMES`` of them). Only runs of those characters in a Chinese passage are compared with an English name,
which keeps ordinary words ("通过") from sounding like one; English names are compared with runs of one or
two capitalised words. Keys shorter than ``MIN_KEY`` consonants ("Lee", "Khan") match too much to count.

Chinese names in English are mostly not transliterations but their pinyin ("Zhao Peng" 赵鹏, "Hema" 盒马,
"Xi Jinping"): ``romanised`` finds the characters whose readings spell the name exactly (tones and spaces
aside), which the translator also uses to look corpus words up by their pinyin (``pinyin_keys``).
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from functools import lru_cache
from itertools import product

MIN_NAMES = 1  # jieba ``nrt`` words a character must occur in to count as a transliteration character
MIN_KEY = 3  # consonant classes in the shortest key compared
MAX_RUN_WORDS = 2  # capitalised English words in one compared run
MAX_SPELLINGS = 16  # pinyin spellings of one word (its characters' readings combined)

Readings = Mapping[str, tuple[str, ...]]
"""A Han character's pinyin readings with tone numbers, the most used first ("鸟" -> ("niao3", "diao3"))."""

# English spelling -> sound classes, applied in order (upper case marks a class already assigned); what no
# rule claims (vowels, h, y) is dropped.
_EN_RULES: tuple[tuple[str, str], ...] = (
    ("ph", "F"),
    ("gh", ""),
    ("ck", "K"),
    ("qu", "KW"),
    ("x", "KS"),
    ("sch", "S"),
    ("sh", "S"),
    ("ch", "J"),
    ("th", "T"),
    ("tz|ts|z", "S"),
    ("c(?=[eiy])", "S"),
    ("g(?=[eiy])", "J"),
    ("j", "J"),
    ("c|g|k|q", "K"),
    ("v|w", "W"),
    ("b|p", "P"),
    ("d|t", "T"),
    ("r|l", "L"),
    ("s", "S"),
    ("m", "M"),
    ("n", "N"),
    ("f", "F"),
)
_EN_PATTERNS = tuple((re.compile(pattern), cls) for pattern, cls in _EN_RULES)
# Pinyin initials -> the same classes (longest first); y and h carry no consonant of their own.
_INITIALS: tuple[tuple[str, str], ...] = (
    ("zh", "j"),
    ("ch", "j"),
    ("sh", "s"),
    ("b", "p"),
    ("p", "p"),
    ("m", "m"),
    ("f", "f"),
    ("d", "t"),
    ("t", "t"),
    ("n", "n"),
    ("l", "l"),
    ("r", "l"),
    ("g", "k"),
    ("k", "k"),
    ("h", ""),
    ("j", "j"),
    ("q", "j"),
    ("x", "s"),
    ("z", "s"),
    ("c", "s"),
    ("s", "s"),
    ("y", ""),
    ("w", "w"),
)
# Substitutions between classes that transliteration confuses cost less than 1.
_NEAR: dict[frozenset[str], float] = {
    frozenset("kj"): 0.5,
    frozenset("sj"): 0.3,
    frozenset("ts"): 0.6,
    frozenset("mn"): 0.7,
    frozenset("wf"): 0.6,
    frozenset("pf"): 0.6,
    frozenset("wp"): 0.7,
}
_HAN = re.compile(r"[\u3400-\u9fff]")
_HAN_RUN = re.compile(r"[\u3400-\u9fff]+")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+")


def _collapse(classes: str) -> str:
    return re.sub(r"(.)\1+", r"\1", classes)


@lru_cache(maxsize=65_536)
def english_key(word: str) -> str:
    """The consonant classes an English (or other Latin-script) spelling sounds: "Stiglitz" -> "stkls"."""
    letters = "".join(c for c in unicodedata.normalize("NFKD", word.lower()) if "a" <= c <= "z")
    for pattern, cls in _EN_PATTERNS:
        letters = pattern.sub(cls, letters)
    return _collapse("".join(c.lower() for c in letters if c.isupper()))


@lru_cache(maxsize=4096)
def syllable_key(reading: str) -> str:
    """The consonant classes of one pinyin syllable, tone number and all ("si1" -> "s", "ting2" -> "tn")."""
    syllable = reading.lower().rstrip("012345").replace("u:", "v")
    if syllable == "er":
        return "l"  # 尔: the English r/l
    key = ""
    for initial, cls in _INITIALS:
        if syllable.startswith(initial):
            key, syllable = cls, syllable[len(initial) :]
            break
    return key + ("n" if syllable.endswith(("n", "ng")) else "")


def chinese_key(text: str, readings: Readings) -> str:
    """The consonant classes of Chinese characters by their usual readings ("斯蒂格利茨" -> "stkls")."""
    return _collapse("".join(syllable_key(readings[c][0]) for c in text if c in readings))


def similarity(a: str, b: str) -> float:
    """1 - the weighted edit distance of two keys over the longer one's length (0 if either is empty)."""
    if not a or not b:
        return 0.0
    previous = [float(j) for j in range(len(b) + 1)]
    for i, x in enumerate(a, 1):
        current = [float(i)]
        for j, y in enumerate(b, 1):
            cost = 0.0 if x == y else _NEAR.get(frozenset((x, y)), 1.0)
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost))
        previous = current
    return 1.0 - previous[-1] / max(len(a), len(b))


@lru_cache(maxsize=1)
def transliteration_chars() -> frozenset[str]:
    """The characters transliterations are written with (see the module docstring)."""
    import jieba

    counts: Counter[str] = Counter()
    path = os.path.join(os.path.dirname(jieba.__file__), "dict.txt")
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "nrt" and len(parts[0]) >= 2:
                counts.update(set(parts[0]))
    return frozenset(c for c, n in counts.items() if n >= MIN_NAMES)


@lru_cache(maxsize=1)
def _runs_pattern() -> re.Pattern[str]:
    return re.compile("[" + re.escape("".join(sorted(transliteration_chars()))) + "]{2,}")


def in_chinese(name: str, text: str, readings: Readings) -> float:
    """How well the best run of transliteration characters in ``text`` sounds like the Latin-script
    ``name`` (``similarity`` of their keys; 0 when the name's key is too short to tell)."""
    key = english_key(name)
    if len(key) < MIN_KEY:
        return 0.0
    best = 0.0
    for run in _runs_pattern().findall(text):
        keys = [syllable_key(readings[c][0]) if c in readings else "" for c in run]
        for start in range(len(run) - 1):
            sounds = keys[start]
            for end in range(start + 1, len(run)):
                sounds += keys[end]
                span = _collapse(sounds)
                if len(span) > len(key) + 2:
                    break
                best = max(best, similarity(key, span))
    return best


def in_english(name: str, text: str, readings: Readings) -> float:
    """How well the best run of capitalised words in ``text`` sounds like the Chinese ``name``."""
    key = chinese_key(name, readings)
    if len(key) < MIN_KEY:
        return 0.0
    words = _LATIN_WORD.findall(text)
    best = 0.0
    for i in range(len(words)):
        for n in range(1, MAX_RUN_WORDS + 1):
            run = words[i : i + n]
            if len(run) < n or not all(w[:1].isupper() for w in run):
                break
            best = max(best, similarity(key, english_key("".join(run))))
    return best


def toneless(reading: str) -> str:
    """A pinyin reading without its tone or the colon of ü ("lu:4" -> "lu", "Zhào" -> "zhao")."""
    letters = unicodedata.normalize("NFKD", reading.lower())
    return "".join(c for c in letters if "a" <= c <= "z")


def pinyin_keys(text: str, readings: Readings) -> tuple[str, ...]:
    """The toneless pinyin spellings of Chinese characters run together, one per combination of their
    readings (at most ``MAX_SPELLINGS``; "重庆" -> ("zhongqing", "chongqing")); none if one has no reading."""
    if not all(c in readings for c in text):
        return ()
    options = [tuple(dict.fromkeys(toneless(r) for r in readings[c])) for c in text]
    spellings: list[str] = []
    for combination in product(*options):
        spellings.append("".join(combination))
        if len(spellings) >= MAX_SPELLINGS:
            break
    return tuple(spellings)


def romanised(name: str, text: str, readings: Readings) -> bool:
    """Whether ``text`` writes the Latin-script ``name`` as two or more Chinese characters whose pinyin
    spells it, in any of their readings ("Hema" in "盒马7000个社区", "Zhao Peng" in "赵鹏加入"). One syllable
    ("Ma", "Zhao") is no match: a single character occurs inside too many other words."""
    target = toneless(name)
    if len(target) < 2:
        return False
    for run in _HAN_RUN.findall(text):
        syllables = [{toneless(r) for r in readings.get(c, ())} for c in run]
        for start in range(len(run) - 1):
            # Spellings of run[start:i] that are prefixes of the name, breadth first.
            prefixes = {""}
            for i in range(start, len(run)):
                prefixes = {p + s for p in prefixes for s in syllables[i] if s and target.startswith(p + s)}
                if not prefixes:
                    break
                if target in prefixes and i > start:
                    return True
    return False


def sounds_in(name: str, text: str, text_lang: str, readings: Readings) -> float:
    """How well some name in ``text`` (in ``text_lang``) sounds like ``name`` written in the other script
    (0 when both are in the same script)."""
    if _HAN.search(name):
        return in_english(name, text, readings) if text_lang == "en" else 0.0
    if text_lang != "zh":
        return 0.0
    return 1.0 if romanised(name, text, readings) else in_chinese(name, text, readings)

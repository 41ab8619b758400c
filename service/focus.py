"""Question focus: what a question asks about must be stated in the evidence's passage.

A sentence that merely contains some number does not answer "How many trucks did Hema send?": the thing
counted ("trucks"), the role asked for ("Who is the CEO ..."), the names the question mentions and the
other things it is about (its nouns) must be stated where the answer comes from. The kind of answer asked
for is not among them ("which party", "什么朝代", "挂靴的原因是什么": the answer names an instance, often
without the category word), nor are the verbs and modifiers a paraphrase changes. A term is
*supported* by a passage when:

1. the passage states it (same script: the word, or its English stem, or a misspelling of it one or two
   edits away; Chinese: the string);
2. a translator gives a target-language term that the passage states (any ``Translator``, a callable
   ``(term, target_lang) -> terms``; the service passes the corpus's CC-CEDICT translator,
   ``index.translate.Translator.words``, which keeps only a word's strong senses); or
3. failing both, by word embeddings: the term's best cosine with the passage's words (the encoder's own
   vectors, one per word, cached), a graded support below 1; but an English term that the dictionary
   translates into Chinese, none of whose translations a Chinese passage states, has support 0 (``knows``);
   and among the nouns (``weakest``) a Chinese noun the dictionary has is stated in an English passage
   when the passage uses a word of one of its senses, and not (0) otherwise (``glossed_in``).

A name written in the other script is also stated by its sound (``sounds_like``: "Stiglitz" by 斯蒂格利茨,
"Hema" by 盒马; ``index.transliterate``).

``FocusSupport`` reports ``head``, the weakest support among the head terms (what the question asks
about), ``names``, the weakest among the names it mentions, ``coverage``, the mean support over all its
content terms, and ``weakest``, the weakest among its nouns. The answerer abstains with
``focus_missing`` when ``head`` falls below the language pair's threshold, and the abstention model takes
the others as inputs; the threshold and the model are fitted on the near-topic benchmarks (``citeqa
fit-abstention``).

Nouns: jieba's noun tags and verbal nouns for Chinese; for English, the content words that LemmInflect's
lexicon lists as nouns (or does not list at all: names, rare terms), without an adjective before a noun
("main idea").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from index.embed import Encoder
from index.lexical import fold
from service.answertype import EN_CARDINALS, si_prefixes

Translator = Callable[[str, str], Sequence[str]]
"""``(term, target_lang) -> terms`` in the target language ("zh"/"en"), best first; empty if unknown."""
SoundsLike = Callable[[str, str, str], float]
"""``(name, text, text_lang) -> similarity``: how well a name in ``text`` sounds like ``name`` written in the
other script (``index.translate.Translator.sounds_like``)."""
Knows = Callable[[str, str], bool]
"""``(term, target_lang) -> bool``: whether a dictionary translates ``term`` into ``target_lang`` at all, in
the passage's words or not (``index.translate.Translator.known``)."""
GlossedIn = Callable[[str, str], bool | None]
"""``(chinese_word, english_text) -> bool | None``: whether the text uses a word of one of the word's
dictionary senses, None when the dictionary does not have it (``index.translate.Translator.glossed_in``)."""
SOUNDS_ALIKE = 0.85
"""The similarity from which a name counts as stated by its transliteration (fitted: see the README)."""

# Latin letters with their accented forms ("Temüjin", "Zürich"), without × and ÷.
_LATIN = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
EN_WORD = re.compile(rf"[{_LATIN}][{_LATIN}'\-]*[{_LATIN}]|[{_LATIN}]|\d[\d,.]*\d|\d")
"""An English word or a number, as the focus check and the near-topic benchmarks split questions."""
_POSSESSIVE = re.compile(r"'s$", re.IGNORECASE)
_HAN = re.compile(r"[\u3400-\u9fff]")
EN_FUNCTION = frozenset(
    "a an the of to in on at for and or but is are was were be been being by with from as that this these "
    "those it its what which who whom whose when where why how did do does done has have had many much "
    "not no into than then there their they he she his her him we our you your i me my can could would "
    "should will shall may might must also after before during about over under between while if so "
    "such some any each every other most more less few several one two three four five six seven eight "
    "nine ten first second third last next".split()
)
"""English function words, interrogatives, small numbers and ordinals (closed classes)."""
# The rest of the English pronouns and determiners (closed classes, complete with EN_FUNCTION): LemmInflect's
# lexicon lists none of them, so they would pass for names or rare nouns ("another", "them", "both").
_EN_PRONOUNS = frozenset(
    "mine myself yours yourself yourselves himself hers herself itself us ours ourselves them theirs "
    "themselves all another anybody anyone anything both either enough everybody everyone everything "
    "neither nobody none nothing ones others somebody someone something whatever whichever whoever "
    "whomever".split()
)
# Never a focus: the closed classes, and verbs and nouns that only frame a question ("what is it called").
_EN_FUNCTION = (
    EN_FUNCTION
    | _EN_PRONOUNS
    | frozenset(
        "name named called kind type sort part same different according use used make made get got give "
        "given take taken say said".split()
    )
)
# Words for the document itself ("the article says", "according to the passage", "文章列举了", "文中提到的"):
# where the question asks, not what it asks about; no passage states them, every passage is in one.
_EN_DOCUMENT = frozenset("article articles passage passages paragraph paragraphs excerpt".split())
_ZH_DOCUMENT = frozenset("文章 篇文章 本文 文中 该文 此文 全文 上文 下文 本篇".split())
# Words that name the kind of answer, not what it is about ("how many times", "how much money"): the
# answer-type check (service.answertype) covers them.
_EN_ANSWER_KINDS = frozenset(
    "times time years year days day months month weeks week hours hour minutes percent percentage money "
    "people persons".split()
)
# The same closed class in Chinese ("多少钱", "多少次", "几年"): what follows 多少/几 names the answer's kind.
_ZH_ANSWER_KINDS = frozenset("钱 人 次 回 遍 年 岁 天 日 月 个月 周 星期 小时 钟头 分钟 秒 百分比".split())
_ZH_FUNCTION = frozenset(
    "的 了 是 在 和 与 及 等 也 都 而 并 之 其 为 有 吗 呢 什么 哪些 哪个 哪里 哪儿 哪 谁 "
    "多少 几 怎么 怎样 如何 为什么 为何 为啥 啥 咋 咋办 怎么办 怎么样 干什么 干嘛 是否 "
    "这 那 这个 那个 这些 那些 他 她 它 他们 我们 一个 "
    "一种 哪一 哪位 何 何时 什么样 名字 名称 叫 称为 被 把 对 从 "
    "向 到 由 于 以 将 就 又 还 所 该 此 其中 之一 时候 时间".split()
)
# Greetings, thanks, assent and interjections ("hello", "thanks", "ok", "你好", "谢谢", "请问"): a closed
# class that asks about nothing.
_EN_SMALL_TALK = frozenset(
    "hello hi hey hiya howdy thanks thank thx please pls ok okay yes yeah yep yup nope bye goodbye oh ah uh "
    "um hmm".split()
)
_ZH_SMALL_TALK = frozenset(
    "你好 您好 大家好 哈喽 哈 喽 嗨 嘿 喂 谢谢 多谢 请问 请 再见 拜拜 好的 好 是的 嗯 哦 啊 呀 在吗".split()
)
# Never a content term: the function words, the words for the document itself and small talk.
_EN_NO_TERM = _EN_FUNCTION | _EN_DOCUMENT | _EN_SMALL_TALK
_ZH_NO_TERM = _ZH_FUNCTION | _ZH_DOCUMENT | _ZH_SMALL_TALK
# jieba's tags of words that name nothing: pronouns (interrogatives among them), numerals, classifiers,
# particles, prepositions, conjunctions, adverbs, modal particles, interjections, onomatopoeia, punctuation.
_ZH_NAMELESS_TAGS = frozenset("rmqupcdyeoxw")
# The head: the thing a "how many" question counts, the role a "who is the ..." question asks for. (The
# category of "which city"/"哪所大学" is not one: the answer names an instance, often without the category.)
_EN_HEAD = re.compile(
    r"\bhow (?:many|much) (?:of (?:the |its |their )?)?([A-Za-z][\w'-]*)"
    r"|\bwho (?:is|was|are|were|will be|has been) (?:the |its |their |a |an )?(?:\w+ )?([A-Za-z][\w'-]*)"
    r"(?= (?:of|for|at|in|on)\b|\W*$)",
    re.IGNORECASE,
)
_ZH_NUMERAL_Q = ("多少", "几")
_ZH_CODE = re.compile(r"(\d*)([A-Za-z][A-Za-z']*)")
_ZH_NAME_TAGS = ("nr", "ns", "nt", "nz")


@dataclass(frozen=True, slots=True)
class Focus:
    """What a question is about: ``head`` (the thing counted, the role, kind or place asked for), the
    ``names`` it mentions, all its content ``terms`` (which include both), and among them its ``nouns``
    (names included: the things it is about, without the verbs and modifiers a paraphrase changes).
    ``empty`` when it names nothing at all: no content word of any length and no name, only function words,
    interrogatives, small talk and numbers ("hello", "你好", "What?", "为什么？", "是什么", "123")."""

    head: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()
    nouns: tuple[str, ...] = ()
    empty: bool = False

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.head + self.names))


@dataclass(frozen=True, slots=True)
class FocusSupport:
    head: float  # the weakest support among the head terms (1.0 when there are none)
    names: float  # the weakest support among the names (1.0 when there are none)
    coverage: float  # mean support over all content terms (1.0 when there are none)
    missing: tuple[str, ...] = ()  # head terms and names with no lexical or dictionary support
    weakest: float = 1.0  # the weakest support among the nouns (1.0 when there are none)


@lru_cache(maxsize=1)
def _jieba() -> tuple[Any, Any]:
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    return jieba, jieba.posseg


def _stem(word: str) -> str:
    """A crude English stem, enough to match "trucks"/"truck", "founded"/"founder" is not matched."""
    w = word.lower()
    for suffix in ("ies", "es", "s"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return w[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return w


@lru_cache(maxsize=65536)
def _stems(word: str) -> frozenset[str]:
    """``_stem``, and for a word in "-es" also the word less its "s": "-es" ends the plural of a singular in
    "-e" ("metres", "miles") as it ends "inches" and "boxes"."""
    w = word.lower()
    if w.endswith("es") and not w.endswith("ies") and len(w) > 3:
        return frozenset({_stem(w), w[:-1]})
    return frozenset({_stem(w)})


def _keep(words: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(w for w in words if w))


def _keep_nouns(words: Sequence[str]) -> tuple[str, ...]:
    """``words`` without repeats, ignoring case (a name "Bowl" and the term "bowl" are one noun)."""
    seen: set[str] = set()
    out = []
    for w in words:
        if w and w.lower() not in seen:
            seen.add(w.lower())
            out.append(w)
    return tuple(out)


@lru_cache(maxsize=4096)
def question_focus(question: str) -> Focus:
    """The focus of ``question`` (English or Chinese, by its script)."""
    question = fold(question)
    if _HAN.search(question):
        return _zh_focus(question)
    return _en_focus(question)


def _en_focus(question: str) -> Focus:
    words = [_POSSESSIVE.sub("", w) for w in EN_WORD.findall(question.replace("\u2019", "'"))]
    head = []
    for match in _EN_HEAD.finditer(question):
        word = next(g for g in match.groups() if g)
        if word.lower() not in _EN_FUNCTION | _EN_ANSWER_KINDS and not word[0].isdigit():
            head.append(word.lower())
    names = [
        w
        for i, w in enumerate(words)
        if i > 0 and w[0].isupper() and w.lower() not in _EN_FUNCTION and w.lower() not in head
    ]
    terms = [w.lower() for w in words if w.lower() not in _EN_NO_TERM and len(w) > 2 and not w[0].isdigit()]
    category = _en_category(words)
    lowered = [w.lower() for w in words]
    # An adjective before a noun modifies it ("main idea", "marine animals"): not a noun of its own.
    modifiers = {w for w, after in zip(lowered, lowered[1:], strict=False) if _en_modifier(w, after)}
    nouns = [*head, *names, *(t for t in terms if _en_noun(t) and t not in category | modifiers)]
    # Words of any length count here ("What is ai?"), which the terms leave out as too short to weigh.
    empty = not names and all(w.lower() in _EN_NO_TERM or w[0].isdigit() for w in words)
    return Focus(_keep(head), _keep(names), _keep(terms), _keep_nouns(nouns), empty)


_EN_WH = frozenset({"what", "which"})
_EN_COPULA = frozenset({"is", "was", "are", "were"})
# Between "what"/"which" and its noun: determiners and quantifiers ("what other work", "which two teams").
_EN_DETERMINERS = frozenset(
    "the a an its their his her our this that these those other another some many much several few one two "
    "three four five six seven eight nine ten first second third last next".split()
)


def _en_category(words: Sequence[str]) -> frozenset[str]:
    """The nouns that name the kind of answer, not what the question is about: the first common noun after
    "what"/"which" ("what party", "which German poet"; adjectives and determiners skipped) or after "what is
    the" ("What is the nickname for ...", "What was the main idea of ..."). The answer names an instance
    ("Labor", "Hockey Stick graph"), often without the category word."""
    lowered = [w.lower() for w in words]
    out: set[str] = set()
    for i, word in enumerate(lowered):
        if word not in _EN_WH:
            continue
        j = i + 1
        if j < len(lowered) and lowered[j] in _EN_COPULA:
            j += 1  # "what is the X of ..."
        # Determiners, adjectives and names may stand before it ("which German poet", "what main idea").
        while j < len(lowered) and (
            lowered[j] in _EN_DETERMINERS
            or words[j][0].isupper()
            or _en_adjective_only(lowered[j])
            or (j + 1 < len(lowered) and _en_modifier(lowered[j], lowered[j + 1]))
        ):
            j += 1
        if j < len(lowered) and lowered[j] not in EN_FUNCTION:
            out.add(lowered[j])
    return frozenset(out)


@lru_cache(maxsize=8192)
def _en_tags(word: str) -> frozenset[str]:
    """The parts of speech LemmInflect's lexicon knows a lower-case English word as ("NOUN", "VERB", "ADJ"
    ...; empty for a word it does not list: a name, a rare term)."""
    from lemminflect import getAllLemmas

    return frozenset(getAllLemmas(word))


def _en_adjective_only(word: str) -> bool:
    """Whether ``word`` is known as an adjective or adverb only ("previous", "other")."""
    tags = _en_tags(word)
    return bool(tags) and tags <= {"ADJ", "ADV"}


def _en_modifier(word: str, after: str) -> bool:
    """Whether ``word`` can be an adjective ("main", "marine") and ``after`` a noun."""
    return "ADJ" in _en_tags(word) and after not in EN_FUNCTION and _en_noun(after)


def _en_noun(word: str) -> bool:
    """Whether an English word can be a noun: the lexicon has a noun lemma for it, or has no entry at all
    (a name, a rare term); not "managed", "decides", "commonly", "previous"."""
    tags = _en_tags(word)
    return not tags or "NOUN" in tags or "PROPN" in tags


def _zh_focus(question: str) -> Focus:
    _, posseg = _jieba()
    tagged = [(p.word, p.flag) for p in posseg.cut(question) if p.word.strip()]
    head: list[str] = []
    flag_of = dict(tagged).get
    for i, (word, _flag) in enumerate(tagged):
        if word in _ZH_NUMERAL_Q or (word.startswith(_ZH_NUMERAL_Q) and flag_of(word) in ("m", "mq")):
            # The first noun after it: "多少辆卡车" -> 卡车, "多少人" -> 人.
            following = tagged[i + 1 : i + 4]
            noun = next((w for w, f in following if f.startswith("n") and w not in _ZH_FUNCTION), None)
            if noun is None and following and following[0][1] in ("q", "m"):
                noun = following[0][0]  # the classifier is what is counted: "多少页" -> 页
            if noun is not None and noun not in _ZH_ANSWER_KINDS:
                head.append(noun)
        if word == "谁" and i >= 2 and tagged[i - 1][0] == "是":
            before, flag = tagged[i - 2]  # "首席执行官是谁" -> 首席执行官
            if flag.startswith("n"):
                head.append(before)
    # A Latin word with the digits before it is one name ("城巴40M线": 40M, not M); a lone letter is none.
    codes = {m.group(2): m.group(0) for m in _ZH_CODE.finditer(question)}
    names = [
        codes.get(w, w)
        for w, f in tagged
        if (f.startswith(_ZH_NAME_TAGS) or (w.isascii() and w[0].isalpha() and len(codes.get(w, w)) >= 2))
        and w not in head
        and w not in _ZH_SMALL_TALK  # jieba tags 谢谢 as a person's name
    ]
    latin = [w for w, _ in tagged if w.isascii() and w[:1].isalpha() and len(w) >= 2]
    terms = [w for w, f in tagged if w not in _ZH_NO_TERM and f[0] in "nv" and len(w) >= 2]
    category = _zh_category(tagged)
    # jieba's noun tags (n, nr, ns, nt, nz, ng ...) and verbal nouns (vn: 改革, 投资).
    nouns = [
        *head,
        *names,
        *(w for w, f in tagged if w in terms and (f[0] == "n" or f == "vn") and w not in category),
    ]
    # Words of one character count here ("猫吃什么？"), which the terms leave out as too short to weigh.
    empty = not names and all(
        w in _ZH_NO_TERM or (f[0] in _ZH_NAMELESS_TAGS and f != "eng") or not any(c.isalpha() for c in w)
        for w, f in tagged
    )
    return Focus(_keep(head), _keep(names), _keep(terms + latin), _keep_nouns(nouns), empty)


_ZH_WH = ("什么", "哪", "何", "怎样")
_ZH_WH_PLACE = frozenset({"哪里", "哪儿", "何处", "何地", "何方"})  # "哪里的关帝庙": the answer is a place
_ZH_COPULA_WH = frozenset({"什么", "多少", "什么样", "怎样"})
# Between an interrogative and its noun: numerals, classifiers, 的, distinguishing words, adjectives.
_ZH_SKIP_TAGS = ("m", "q", "uj", "b", "a")


def _zh_category(tagged: Sequence[tuple[str, str]]) -> frozenset[str]:
    """The common nouns that name the kind of answer, not what the question is about: the last common noun
    of the run after an interrogative ("什么朝代", "哪个地区", "哪位德国诗人" -> 诗人; a name in the run stays
    a name), the subject of "是什么"/"是多少" ("挂靴的原因是什么", "比例是多少") and the last noun after
    "什么是" ("什么是委员会的主要职能"). The answer names an instance (a dynasty, a district, a number),
    often without the category word."""
    out: set[str] = set()
    for i, (word, flag) in enumerate(tagged):
        if word.startswith(_ZH_WH) and flag == "r" and word not in _ZH_WH_PLACE:
            j = i + 1
            while j < len(tagged) and tagged[j][1].startswith(_ZH_SKIP_TAGS):
                j += 1
            run = []
            while j < len(tagged) and tagged[j][1].startswith("n"):
                run.append(tagged[j])
                j += 1
            common = [w for w, f in run if not f.startswith(_ZH_NAME_TAGS)]
            if common:
                out.add(common[-1])
        if word in _ZH_COPULA_WH and i >= 2 and tagged[i - 1][0] == "是" and tagged[i - 2][1] == "n":
            out.add(tagged[i - 2][0])
        if word == "什么" and i + 1 < len(tagged) and tagged[i + 1][0] == "是":
            words = [(w, f) for w, f in tagged[i + 2 :] if f != "x"]
            if words and words[-1][1] == "n":
                out.add(words[-1][0])
    return frozenset(out)


class FocusChecker:
    """Support for a question's focus in a passage (see the module docstring). Holds a cache of word
    vectors, so one instance serves every request."""

    def __init__(
        self,
        encoder: Encoder | None = None,
        translator: Translator | None = None,
        cache_words: int = 100_000,
        sounds_like: SoundsLike | None = None,
        knows: Knows | None = None,
        glossed_in: GlossedIn | None = None,
    ) -> None:
        self.encoder = encoder
        self.translator = translator
        self.sounds_like = sounds_like
        self.knows = knows
        self.glossed_in = glossed_in
        self.cache_words = cache_words
        self._vectors: dict[str, np.ndarray] = {}

    def support(self, focus: Focus, passage: str, passage_lang: str) -> FocusSupport:
        """How well ``passage`` (in ``passage_lang``: "zh"/"en") supports ``focus``."""
        if focus.empty:  # nothing asked about, so nothing the passage could state
            return FocusSupport(0.0, 0.0, 0.0, (), 0.0)
        terms = tuple(dict.fromkeys(focus.terms + focus.key + focus.nouns))
        if not terms:
            return FocusSupport(1.0, 1.0, 1.0)
        text = fold(passage)
        scores = {t: 1.0 if self._stated(t, text, passage_lang) else None for t in terms}
        for name in focus.names:
            if scores[name] is None and self._sounds_stated(name, text, passage_lang):
                scores[name] = 1.0
        missing = tuple(t for t in focus.key if scores[t] is None)
        for t in terms:
            if scores[t] is None and self._translation_absent(t, passage_lang):
                scores[t] = 0.0
        unmatched = [t for t, s in scores.items() if s is None]
        for t, s in zip(unmatched, self._similarities(unmatched, text, passage_lang), strict=True):
            scores[t] = s
        head = min((scores[t] or 0.0 for t in focus.head), default=1.0)
        names = min((scores[t] or 0.0 for t in focus.names), default=1.0)
        coverage = float(np.mean([scores[t] or 0.0 for t in terms]))
        weakest = min(
            (self._noun_support(t, scores[t] or 0.0, text, passage_lang) for t in focus.nouns), default=1.0
        )
        return FocusSupport(head, names, coverage, missing, weakest)

    def _noun_support(self, noun: str, score: float, text: str, passage_lang: str) -> float:
        """A noun's support, where a Chinese noun over an English passage that the dictionary glosses is
        stated (1) or not (0) by its glosses rather than graded by word vectors, which put every
        cross-lingual pair of words at a similar cosine. (Nouns only: over every content term, verbs
        included, the same rule cost the zh->en model; README, Evaluation.)"""
        if score >= 1.0 or self.glossed_in is None or passage_lang != "en" or _script_lang(noun) != "zh":
            return score
        glossed = self.glossed_in(noun, text)
        return score if glossed is None else float(glossed)

    def _stated(self, term: str, text: str, passage_lang: str) -> bool:
        if _states(term, text):
            return True
        if self.translator is not None and _script_lang(term) != passage_lang:
            return any(_states(t, text) for t in self.translator(term, passage_lang))
        return False

    def _translation_absent(self, term: str, passage_lang: str) -> bool:
        """A term in the other script whose dictionary translations the passage does not state (it was
        looked for through them): not stated, rather than graded by word vectors, which put every
        cross-lingual pair of words at a similar cosine."""
        if self.knows is None or _script_lang(term) == passage_lang:
            return False
        return self.knows(term, passage_lang)

    def _sounds_stated(self, name: str, text: str, passage_lang: str) -> bool:
        """A name written in the other script that the passage states by its transliteration."""
        if self.sounds_like is None or _script_lang(name) == passage_lang:
            return False
        return self.sounds_like(name, text, passage_lang) >= SOUNDS_ALIKE

    def _similarities(self, terms: Sequence[str], text: str, passage_lang: str) -> list[float]:
        """Each term's best cosine with the passage's words (0 without an encoder)."""
        if not terms or self.encoder is None:
            return [0.0] * len(terms)
        words = passage_words(text, passage_lang)
        if not words:
            return [0.0] * len(terms)
        self._encode([*terms, *words])
        matrix = np.stack([self._vectors[w] for w in words]).astype(np.float32)
        return [float((matrix @ self._vectors[t].astype(np.float32)).max()) for t in terms]

    def _encode(self, words: Sequence[str]) -> None:
        assert self.encoder is not None
        new = [w for w in dict.fromkeys(words) if w not in self._vectors]
        if not new:
            return
        if len(self._vectors) + len(new) > self.cache_words:
            self._vectors.clear()
        vectors = self.encoder.encode_queries(new)
        for w, v in zip(new, vectors, strict=True):
            self._vectors[w] = np.asarray(v, dtype=np.float16)


def _script_lang(term: str) -> str:
    return "zh" if _HAN.search(term) else "en"


def _states(term: str, text: str) -> bool:
    if _HAN.search(term):
        return term in text
    if re.search(rf"(?<![A-Za-z]){re.escape(term)}(?![A-Za-z])", text, re.IGNORECASE):
        return True
    stems = _stems(term)
    words = [w for w in _en_words(text) if w[:1].lower() == term[:1].lower()]
    if any(_stems(w) & stems for w in words):
        return True
    # A unit is stated by its SI multiples and fractions: "1.5 gigatons" states tons, "5 kilometres"
    # metres, "4 megabytes" bytes, "a 42-kilometre footpath" metres (CLDR's prefixes, as the answer-type
    # check reads them).
    if any(_stems(rest) & stems for rest in _unprefixed(text)):
        return True
    # A misspelling ("coruption", "ctenophhores"): one edit in a word of five to eight letters, two in a
    # longer one, the first letter kept.
    if len(term) < _MIN_MISSPELT or not term.isalpha():
        return False
    limit = 1 if len(term) <= 8 else 2
    lowered = term.lower()
    return any(
        abs(len(w) - len(term)) <= limit and edit_distance(w.lower(), lowered, limit) <= limit for w in words
    )


_MIN_MISSPELT = 5


# Both read once per passage text, not once per question term (``_states`` is asked for each term).
@lru_cache(maxsize=8192)
def _en_words(text: str) -> tuple[str, ...]:
    """The English words of ``text`` (``EN_WORD``) and the parts of each compound that opens with a number
    word, whose unit they state: "a twenty-kilometre trail" states kilometres, "a two-week course" weeks
    (digits stand apart already: "42-kilometre")."""
    words = []
    for word in EN_WORD.findall(text):
        words.append(word)
        first, _, rest = word.partition("-")
        if rest and first.lower() in EN_CARDINALS:
            words.extend(part for part in rest.split("-") if part)
    return tuple(words)


@lru_cache(maxsize=8192)
def _unprefixed(text: str) -> tuple[str, ...]:
    """The rest of each English word of ``text`` (``_en_words``) that opens with an SI prefix ("gigatons" ->
    "tons"), when the rest is a word of three letters or more."""
    prefixes = si_prefixes()
    return tuple(
        word[len(p) :]
        for word in _en_words(text)
        for p in prefixes
        if len(word) >= len(p) + 3 and word[: len(p)].lower() == p
    )


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance between ``a`` and ``b``, or ``limit + 1`` once it must exceed ``limit``."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


@lru_cache(maxsize=8192)
def passage_words(text: str, lang: str) -> tuple[str, ...]:
    """The content words of a passage, as the focus check compares them with a question's terms."""
    if lang == "zh" or _HAN.search(text):
        jieba, _ = _jieba()
        words = [w for w in jieba.lcut(text) if _HAN.search(w) and w not in _ZH_FUNCTION]
        words += [w.lower() for w in EN_WORD.findall(text) if w.lower() not in _EN_FUNCTION and len(w) > 2]
    else:
        words = [w.lower() for w in EN_WORD.findall(text) if w.lower() not in _EN_FUNCTION and len(w) > 2]
    return tuple(dict.fromkeys(words))

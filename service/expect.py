"""What a question asks for, and whether a sentence can state it (answer-type checks, as in classic QA).

A sentence close to the question in meaning may still not answer it: "How many pages does the white paper
have?" is not answered by "45万件蔬菜", nor "Who is the CEO of Alibaba Cloud?" by a sentence that names no
chief executive, nor a question about 2021 by a paragraph about 2020. The answerer only answers from
evidence that passes these checks and abstains otherwise.

The checks work across languages (an English question over Chinese text and the reverse), so each
pattern that describes the evidence lists both languages' forms. They are deliberately narrow: a check
that fires wrongly costs an answerable question, so only constraints whose evidence is reliably visible
in the text are checked. The cost on answerable questions is measured on XQuAD (see README, Evaluation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Numbers and times as English text writes them in words ("three times", "in the 19th century").
_EN_NUMBER = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen"
    r"|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundreds?"
    r"|thousands?|millions?|billions?|trillions?|dozens?|half|once|twice|thrice|single|double|triple)"
)
_EN_TIME = (
    r"centur(?:y|ies)|decades?|years?|months?|weeks?|days?|january|february|march|april|may|june|july"
    r"|august|september|october|november|december|spring|summer|autumn|fall|winter|monday|tuesday"
    r"|wednesday|thursday|friday|saturday|sunday|era|age|period|reign|during|before|after|until|since|ago"
    r"|today|now|currently|recently|early|late|mid|morning|evening|night|dynasty|season"
)

# The kind of answer: (how a question asks for it, how a sentence can state it).
ANSWER_TYPES: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "number": (
        re.compile(
            r"多少|几[个件人项种家次年倍类]|百分之|比例"
            r"|how (?:many|much)|what (?:percentage|proportion|number)"
            r"|what (?:is|was|are|were) the (?:total |overall )?"
            r"(?:amount|investment|budget|cost|price|funding)\b",
            re.I,
        ),
        re.compile(
            r"\d|[一二三四五六七八九十百千万亿两]+(?:个|件|人|项|种|家|次|倍|成|万|亿|类|是|年)|百分之"
            rf"|\b{_EN_NUMBER}\b",
            re.I,
        ),
    ),
    "time": (
        re.compile(
            r"何时|什么时候|哪一?年|哪个月|哪一?天|几月|\bwhen\b|what (?:year|date|time)|which year", re.I
        ),
        re.compile(rf"\d|[年月日]|春|夏|秋|冬|期间|时期|时刻|近日|近年|当前|今后|\b(?:{_EN_TIME})\b", re.I),
    ),
}

# Units a number question may ask for: (the unit as a Chinese question names it right after 多少/几, the
# English nouns after "how many"/"how much" or money words, how a text states it after a number).
# "How many pages" is answered by "N页"/"N pages", not by any number: a sentence with 45万件 does not say
# how many pages a report has. Questions naming no unit here only need a number.
UNITS: dict[str, tuple[str, str, str]] = {
    "page": ("页", r"pages?", r"页|pages?"),
    "person": ("人|名", r"people|persons?|deaths?|victims?|residents?", r"人|名|people|persons?"),
    "item": ("件", r"items?|pieces?", r"件|items?|pieces?"),
    "money": ("元|钱|块", r"money|yuan|dollars?|funds?|funding|investment|cost", r"元|yuan|dollars?|[$￥¥]"),
    "firm": ("家", r"factories|companies|firms|enterprises", r"家|factories|companies|firms"),
    "year": ("年", r"years?", r"年|years?"),
}
_MONEY_WORDS = re.compile(r"金额|资金|投资额?|捐款数|\b(?:investment|funding|donat\w+|cost|budget)\b", re.I)
_NUMBER = (
    rf"(?:\d[\d,.]*|[一二三四五六七八九十百千两]+|\b{_EN_NUMBER}\b)"
    r"\s*(?:[万亿千百]|million|billion|thousand)?\s*"
)
_UNIT_ASKED = {
    k: re.compile(rf"(?:多少|几)\s*(?:{zh})|how (?:many|much)\s+(?:\w+\s+)?(?:{en})\b", re.I)
    for k, (zh, en, _) in UNITS.items()
}
_UNIT_STATED = {k: re.compile(_NUMBER + f"(?:{t})", re.I) for k, (_, _, t) in UNITS.items()}

# Roles a "who is the <role>" question asks about: (the role as a question names it, how a text names it,
# in either language). Whoever holds a title is named next to it ("阿里云总裁张建锋", "CEO Jane Doe"), so
# evidence that never names the title does not say who holds it. Authorship is not checked: texts state it
# in too many ways ("他的《医学宝鉴》", "wrote", "by").
ROLES: dict[str, tuple[str, str]] = {
    "chief executive": (
        r"首席执行官|执行长|总裁|\bCEO\b|chief executive",
        r"首席执行官|执行长|总裁|CEO|chief executive|总经理",
    ),
    "editor": (r"主编|总编|\beditors?\b", r"主编|总编|编辑|editor"),
    "chair": (r"董事长|\bchair(?:man|woman|person)?\b", r"董事长|主席|chair"),
    "founder": (r"创始人|创办人|\bfounders?\b", r"创始人|创办|创立|创建|founde"),
    "spokesperson": (r"发言人|\bspokes(?:man|woman|person)\b", r"发言人|spokes"),
    "mayor": (r"市长|\bmayor\b", r"市长|mayor"),
    "governor": (r"省长|州长|\bgovernor\b", r"省长|州长|总督|governor"),
    "principal": (
        r"校长|\b(?:principal|headmaster|headmistress|rector)\b",
        r"校长|院长|principal|head|rector",
    ),
}
_WHO = re.compile(r"谁|哪位|\bwho(?:m|se)?\b|which (?:person|people)", re.I)
_ROLE_ASKED = {k: re.compile(asked, re.I) for k, (asked, _) in ROLES.items()}
_ROLE_STATED = {k: re.compile(stated, re.I) for k, (_, stated) in ROLES.items()}

# Institutions a "which <institution>" question asks for, named by a word that such names carry
# ("清华大学", "Stanford University"): (the question's form, the evidence's form).
INSTITUTIONS: dict[str, tuple[str, str]] = {
    "university": (
        r"哪(?:个|一|所|家)?(?:大学|高校|学府)"
        r"|\b(?:which|what) (?:\w+ )?(?:university|universities|college)\b"
        r"(?!\s+(?:alumn|graduate|student|professor|member|faculty|staff|campus))",
        r"大学|学院|高校|universit|college",
    ),
    "hospital": (
        r"哪(?:个|一|所|家)?医院|\b(?:which|what) (?:\w+ )?hospitals?\b",
        r"医院|hospital|clinic|诊所",
    ),
}
_INSTITUTION_ASKED = {k: re.compile(asked, re.I) for k, (asked, _) in INSTITUTIONS.items()}
_INSTITUTION_STATED = {k: re.compile(stated, re.I) for k, (_, stated) in INSTITUTIONS.items()}

# A year, not a decade ("1970s", "1980's", "1970年代") and not part of a longer number.
_YEAR = re.compile(r"(?<!\d)(?<!\d\.)(1[6-9]\d\d|20\d\d)(?!\d|\.\d|'?s\b|年代)")


@dataclass(frozen=True, slots=True)
class Expected:
    """What a question asks for: a kind of answer (number, time) and, for numbers, maybe a unit; the role
    a "who" question names; the kind of institution a "which" question names; the years it names."""

    kind: str | None = None
    unit: str | None = None
    role: str | None = None
    institution: str | None = None
    years: tuple[str, ...] = ()

    def stated_by(self, sentence: str, passage: str | None = None) -> bool:
        """Whether ``sentence`` (from ``passage``, default: the sentence alone) can state the answer.

        Kind, unit, role and institution must show in the sentence. Years are checked on the passage (a
        paragraph often names the year once, for all of its sentences): a passage that is dated, naming
        years but none of the question's, is about another time; an undated one may still answer.
        """
        if self.years:
            dated = _YEAR.findall(sentence if passage is None else passage)
            if dated and not set(self.years) & set(dated):
                return False
        if self.role is not None and not _ROLE_STATED[self.role].search(sentence):
            return False
        if self.institution is not None and not _INSTITUTION_STATED[self.institution].search(sentence):
            return False
        if self.kind is None:
            return True
        if self.unit is not None:
            return bool(_UNIT_STATED[self.unit].search(sentence))
        return bool(ANSWER_TYPES[self.kind][1].search(sentence))


def expected_answer(question: str) -> Expected:
    """What ``question`` asks for (all fields empty when it asks for nothing these checks know)."""
    kind = next((name for name, (asks, _) in ANSWER_TYPES.items() if asks.search(question)), None)
    unit = None
    if kind == "number":
        unit = next((name for name, pattern in _UNIT_ASKED.items() if pattern.search(question)), None)
        if unit is None and _MONEY_WORDS.search(question):
            unit = "money"
    role = None
    if _WHO.search(question):
        role = next((name for name, pattern in _ROLE_ASKED.items() if pattern.search(question)), None)
    institution = next(
        (name for name, pattern in _INSTITUTION_ASKED.items() if pattern.search(question)), None
    )
    years = tuple(dict.fromkeys(_YEAR.findall(question)))
    return Expected(kind, unit, role, institution, years)

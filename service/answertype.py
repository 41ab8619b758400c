"""What kind of answer a question asks for, and whether a sentence can state it (answer types, as in
classic QA), from the Unicode CLDR tables that Babel ships rather than hand lists.

A sentence close to the question in meaning may still not answer it: "How tall is the lighthouse?" needs a
length ("The tower is 34 metres tall"), "How much does a ticket cost?" an amount of money in any currency
("Tickets cost 6 euros", "£3", "3,000 yen", "45万元"), "When ...?" a date or time. The answerer only answers
from evidence that can state the kind asked for, and says ``type_mismatch`` otherwise.

Where the vocabulary comes from:
- units of length, mass, area, volume, duration, temperature and speed, and percent/per-mille: CLDR's unit
  patterns in English (US and British spellings) and Chinese, every width and plural form ("34 metres",
  "34 m", "34米", "每小时120公里"), plus the Chinese market units (市制: 里, 亩, 斤 ...) that CLDR lacks;
- money: every CLDR currency, by symbol ("£", "US$", "¥"), ISO code ("EUR") and name in both languages
  (singular and plural, and the name's last word: "British pounds" gives "pounds"), plus the renminbi's own
  units (元, 角, 块);
- dates: CLDR month, weekday, era and day-period names and the relative date fields ("last year", "去年"),
  years, and centuries and decades (CLDR duration units);
- numbers: digits (with separators and scale words), Chinese numerals, and English cardinals (a complete
  table: they are a closed class).

The question side is the closed class of interrogatives ("how many", "how tall", "多少", "多高", "何时") and
the nouns that name a measurement ("height", "面积"); a unit named after "how many"/"多少" ("how many
miles", "多少公里") asks for that unit's quantity. A question asking for none of these kinds needs nothing.

Years are checked apart from the kinds: a passage dated to other years does not answer a question naming a
year, but a year given only as a comparison baseline ("较2020年增长", "compared with 2020") does not date it.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from index.lexical import fold

NUMBER = "number"
MONEY = "money"
PERCENT = "percent"
DATE = "date"
LENGTH = "length"
MASS = "mass"
AREA = "area"
VOLUME = "volume"
DURATION = "duration"
TEMPERATURE = "temperature"
SPEED = "speed"
UNIT_KINDS: tuple[str, ...] = (LENGTH, MASS, AREA, VOLUME, DURATION, TEMPERATURE, SPEED)
KINDS: tuple[str, ...] = (NUMBER, MONEY, PERCENT, DATE, *UNIT_KINDS)
QUANTITIES = frozenset({NUMBER, MONEY, PERCENT, *UNIT_KINDS})  # every kind that states a number

_LOCALES = ("en", "en_GB", "zh", "zh_Hant")
_CLDR_CATEGORY = {
    "length": LENGTH,
    "mass": MASS,
    "area": AREA,
    "volume": VOLUME,
    "duration": DURATION,
    "temperature": TEMPERATURE,
    "speed": SPEED,
    "concentr": PERCENT,
}
# Chinese market units (市制), which CLDR does not list: the complete set in use.
_MARKET_UNITS = {
    LENGTH: ("里", "丈", "尺", "寸", "公尺", "公分", "米"),
    MASS: ("斤", "两", "公斤", "担", "公两"),
    AREA: ("亩", "顷", "公亩", "平米"),
    VOLUME: ("斗", "石", "公升"),
    DURATION: ("年", "个月", "月", "周", "星期", "天", "日", "小时", "钟头", "分钟", "秒"),
}
_RMB_UNITS = ("元", "圆", "角", "块", "块钱", "毛钱")
# English cardinal numbers: a closed class, complete here.
EN_CARDINALS: tuple[str, ...] = tuple(
    (
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred "
        "hundreds thousand thousands million millions billion billions trillion trillions dozen dozens "
        "once twice thrice half"
    ).split()
)
_CN_NUMERAL = "零〇一二三四五六七八九十百千万亿两"
_PER_HUNDRED = ("concentr-percent", "concentr-permille", "concentr-permyriad")
_SCALE = r"(?:\s*(?:[万亿千百]|hundred|thousand|million|billion|trillion|bn|m)\b|[万亿千百])?"
_DIGITS = r"\d+(?:[,，.]\d+)*"
_NUMBER = (
    rf"(?:{_DIGITS}|[{_CN_NUMERAL}]+|\b(?:{'|'.join(EN_CARDINALS)})\b(?:[\s-]+(?:{'|'.join(EN_CARDINALS)})\b)*)"
    rf"{_SCALE}(?:多|余|来)?"  # "30多年", "十余万元"
)
_WORD_EDGE_LEFT = r"(?<![A-Za-z])"
_WORD_EDGE_RIGHT = r"(?![A-Za-z])"


def _alternation(words: Iterable[str]) -> str:
    """A regex alternation of ``words``, longest first; Latin words must stand as whole words."""
    parts = []
    for w in sorted({w for w in words if w}, key=lambda w: (-len(w), w)):
        escaped = re.escape(w)
        if w[0].isascii() and w[0].isalpha():
            escaped = _WORD_EDGE_LEFT + escaped
        if w[-1].isascii() and w[-1].isalpha():
            escaped += _WORD_EDGE_RIGHT
        parts.append(escaped)
    return "|".join(parts)


def _locale(name: str) -> Any:
    from babel import Locale

    return Locale.parse(name)


# The kinds whose units take SI prefixes ("gigatons", "kilolitres", "microseconds"): CLDR lists the common
# prefixed units and gives the prefix patterns ("giga{0}", "吉{0}") for the rest.
_PREFIXABLE = frozenset({LENGTH, MASS, VOLUME, DURATION})


def _si_prefixes(data: Any) -> tuple[str, ...]:
    """A locale's long SI (power-of-ten) prefix patterns from CLDR ("kilo{0}", "千{0}")."""
    compound = data["compound_unit_patterns"]
    return tuple(
        str(compound[key]["long"]["prefix"])
        for key in compound
        if key.startswith("10p") and "prefix" in compound[key].get("long", {})
    )


@lru_cache(maxsize=1)
def si_prefixes() -> tuple[str, ...]:
    """The English SI prefixes ("kilo", "milli"): a CLDR unit whose id starts with one ("mass-kilogram") is
    already prefixed, and takes no second prefix; the focus check reads a unit in its multiples with them
    ("gigatons" states tons)."""
    return tuple(p.replace("{0}", "") for p in _si_prefixes(_locale("en")._data))


@lru_cache(maxsize=1)
def unit_words() -> dict[str, tuple[tuple[str, str], ...]]:
    """Per kind, ``(before, after)`` text around the number in every CLDR pattern of that kind's units
    ("{0} metres" -> ("", "metres"), "每小时{0}公里" -> ("每小时", "公里")), in every locale of
    ``_LOCALES``; and a one-word long form of an unprefixed unit of a ``_PREFIXABLE`` kind with each SI
    prefix ("{0} tons" -> ("", "gigatons"))."""
    found: dict[str, set[tuple[str, str]]] = {kind: set() for kind in (*UNIT_KINDS, PERCENT)}
    prefixed = si_prefixes()
    for name in _LOCALES:
        data = _locale(name)._data
        patterns = data["unit_patterns"]
        prefixes = _si_prefixes(data)
        for unit in patterns:
            kind = _CLDR_CATEGORY.get(unit.split("-", 1)[0])
            if kind is None or (kind == PERCENT and unit not in _PER_HUNDRED):
                continue
            base = kind in _PREFIXABLE and not unit.split("-", 1)[1].startswith(prefixed)
            for width_name, width in patterns[unit].items():
                for form, pattern in width.items():
                    if form == "per" or "{0}" not in pattern:
                        continue
                    before, after = (
                        p.strip() for p in unicodedata.normalize("NFKC", pattern).split("{0}", 1)
                    )
                    found[kind].add((before, after))
                    if base and width_name == "long" and not before and after and " " not in after:
                        found[kind] |= {("", prefix.format(after)) for prefix in prefixes}
    for kind, words in _MARKET_UNITS.items():
        found[kind] |= {("", w) for w in words}
    found[PERCENT] |= {("百分之", ""), ("", "成")}
    return {kind: tuple(sorted(pairs)) for kind, pairs in found.items()}


@lru_cache(maxsize=1)
def _tender_currencies() -> frozenset[str]:
    """ISO codes of the currencies that are legal tender in some territory today (CLDR)."""
    from babel.core import get_global
    from babel.numbers import get_territory_currencies

    territories = get_global("territory_currencies")
    return frozenset(code for territory in territories for code in get_territory_currencies(territory))


@lru_cache(maxsize=1)
def currency_words() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(symbols and codes written before or after an amount, currency names written after it)."""
    symbols: set[str] = set()
    names: set[str] = set(_RMB_UNITS)
    # A name's last word stands alone ("pounds") only for a currency in use somewhere today: those of funds
    # and retired currencies are words like "units", "account", "rights" or "value".
    tender = _tender_currencies()
    for name in _LOCALES:
        locale = _locale(name)
        symbols |= {s for s in locale.currency_symbols.values() if not s.isalpha() or s.isupper()}
        symbols |= set(locale.currency_symbols)  # ISO codes
        for code, display in locale.currencies.items():
            if display.isascii():
                names.add(display.lower())
                if code in tender:
                    names.add(display.split()[-1].lower())
            else:
                names.add(display)
        for code, forms in locale._data.get("currency_names_plural", {}).items():
            for form in forms.values():
                names.add(form.lower())
                if code in tender:
                    names.add(form.split()[-1].lower())
    return tuple(sorted(s for s in symbols if s.strip())), tuple(
        sorted(n for n in names if len(n) > 1 or not n.isascii())
    )


@lru_cache(maxsize=1)
def date_words() -> tuple[str, ...]:
    """Month, weekday, era and day-period names, and relative date words, in every locale."""
    words: set[str] = set()
    for name in _LOCALES:
        locale = _locale(name)
        for table in (locale.months, locale.days):
            for context in table.values():
                for width, names in context.items():
                    if width != "narrow":
                        words |= set(names.values())
        for width, names in locale.eras.items():
            if width != "narrow":
                words |= set(names.values())
        for context in locale.day_periods.values():
            for width, names in context.items():
                if width != "narrow":
                    words |= set(names.values())
        for field, forms in locale._data["date_fields"].items():
            if "-" not in field and "relative" in forms:  # "last year", "去年", "today", "今天"
                words |= set(forms["relative"].values())
    return tuple(sorted(w.lower() for w in words if w and not w.isdigit()))


def _table(words: Iterable[tuple[str, str]]) -> dict[str, frozenset[str]]:
    """word (NFKC, lower-case) -> the kinds it names."""
    table: dict[str, set[str]] = {}
    for word, kind in words:
        key = unicodedata.normalize("NFKC", word).lower().strip()
        if key:
            table.setdefault(key, set()).add(kind)
    return {k: frozenset(v) for k, v in table.items()}


@dataclass(frozen=True, slots=True)
class _Matchers:
    number: re.Pattern[str]  # a number: digits, Chinese numerals, English cardinals, with a scale word
    after: dict[str, frozenset[str]]  # what follows a number, and its kinds ("metres", "欧元", "%")
    before: dict[str, frozenset[str]]  # what precedes one ("£", "百分之", "每小时")
    date: re.Pattern[str]  # years, times, temporal words
    date_words: frozenset[str]  # month, weekday, era, day-period and relative-date names
    longest: int


@lru_cache(maxsize=1)
def _matchers() -> _Matchers:
    """Unit and currency words are looked up next to each number (a prefix or suffix of the text around it
    in a table), so a sentence costs one scan for numbers and a few lookups, not a scan per unit."""
    units = unit_words()
    symbols, names = currency_words()
    after = _table(
        [(a, kind) for kind, pairs in units.items() for b, a in pairs if a and not b]
        + [(w, MONEY) for w in (*symbols, *names)]
    )
    before = _table(
        [(b, kind) for kind, pairs in units.items() for b, a in pairs if b] + [(w, MONEY) for w in symbols]
    )
    years = (
        rf"(?<!\d)(?:1\d{{3}}|20\d\d)(?!\d)|(?:\d+|[{_CN_NUMERAL}]+)\s*[万亿]?\s*(?:年|月|日|号|世纪|年代|时|点|岁)"
        r"|\d{1,2}(?:st|nd|rd|th)?\s+century|\d{2,4}'?s\b|\d{1,2}:\d\d"
    )
    # Temporal words, a closed class: periods, the seasons (which CLDR does not name) and the prepositions
    # and conjunctions that place an event in time ("during the reign of", "after the war", "in late spring",
    # "江户时代", "幕末...后", "晚春或初夏").
    periods = (
        r"\b(?:centur(?:y|ies)|decades?|millenni(?:um|a)|era|age|aged|period|reign|dynasty|during|before|after"
        r"|until|till|since|ago|when|while|times?|years? old|spring|summer|autumn|fall|winter)\b"
        r"|世纪|年代|年间|时代|时期|期间|朝|代|时|后|前|以来|岁"
        r"|[春夏秋冬](?:季|天)|[初早晚暮盛深隆仲孟][春夏秋冬]"
    )
    date = re.compile(f"{years}|{periods}", re.IGNORECASE)
    dates = frozenset(unicodedata.normalize("NFKC", w).lower() for w in date_words())
    longest = max(len(k) for k in (*after, *before, *dates))
    return _Matchers(re.compile(_NUMBER, re.IGNORECASE), after, before, date, dates, longest)


def _latin_edge(text: str, i: int) -> bool:
    """Whether ``text`` has no Latin letter at both sides of position ``i`` (a word boundary there)."""
    return not (
        0 < i < len(text)
        and text[i - 1].isascii()
        and text[i - 1].isalpha()
        and text[i].isascii()
        and text[i].isalpha()
    )


# What may stand between a number and its unit: a Chinese classifier after an optional approximator, with
# up to two more characters when they make one dictionary word with the unit ("十多个工作日"), or one
# English modifier before a unit word of three letters or more ("ten working days", not "3 goals in"); or
# the hyphen of an English compound adjective before a unit word of three letters or more, which is how a
# compound spells its unit ("a 3-year warranty", "a 42-kilometre footpath", "a two-week course"; not "3-D",
# "2-in-1").
_CLASSIFIER = re.compile(r"[多余来]?个")
_MODIFIER = re.compile(r"[a-z]{2,12}\s+")
_COMPOUND = re.compile(r"[-\u2010\u2011](?=[a-z])")
_SPELLED_UNIT = 3  # the fewest letters of a unit word after a modifier or a compound's hyphen
GAP = 14  # the longest gap looked past


def _kinds_after(table: dict[str, frozenset[str]], text: str, longest: int) -> frozenset[str]:
    """The kinds of the unit or currency right after a number (``text`` follows it) or its hyphen in a
    compound adjective, or else past a classifier or one modifier word there."""
    text = text.lstrip().lower()
    compound = _COMPOUND.match(text)
    if compound:
        rest = text[compound.end() :]
        return frozenset(k for n, k in _prefix_kinds_by_length(table, rest, longest) if n >= _SPELLED_UNIT)
    found = _prefix_kinds(table, text, longest)
    if found:
        return found
    classifier = _CLASSIFIER.match(text)
    if classifier:
        rest = text[classifier.end() :]
        found |= _prefix_kinds(table, rest, longest)
        _, tags = _jieba_tags()
        for k in (1, 2):
            for n in range(1, min(longest, len(rest) - k) + 1):
                kinds = table.get(rest[k : k + n])
                if kinds and not rest[k : k + n].isascii() and rest[: k + n] in tags:
                    found |= kinds
    modifier = _MODIFIER.match(text)
    if modifier:
        rest = text[modifier.end() :]
        found |= {k for n, k in _prefix_kinds_by_length(table, rest, longest) if n >= _SPELLED_UNIT}
    return frozenset(found)


def _prefix_kinds(table: dict[str, frozenset[str]], text: str, longest: int) -> frozenset[str]:
    """The kinds of every table word that ``text`` starts with (a whole word, if Latin)."""
    return frozenset(kind for _, kind in _prefix_kinds_by_length(table, text, longest))


def _prefix_kinds_by_length(
    table: dict[str, frozenset[str]], text: str, longest: int
) -> list[tuple[int, str]]:
    """(length of the word, kind) of every table word that ``text`` starts with."""
    return [
        (n, kind)
        for n in range(1, min(longest, len(text)) + 1)
        if _latin_edge(text, n)
        for kind in table.get(text[:n], ())
    ]


def _kinds_before(table: dict[str, frozenset[str]], text: str, longest: int) -> frozenset[str]:
    text = text.rstrip().lower()
    found: frozenset[str] = frozenset()
    for n in range(1, min(longest, len(text)) + 1):
        kinds = table.get(text[-n:])
        if kinds and _latin_edge(text, len(text) - n):
            found |= kinds
    return found


def _has_date_word(sentence: str, words: frozenset[str], longest: int) -> bool:
    text = sentence.lower()
    for match in re.finditer(r"[a-z]+(?:[ .'][a-z]+)?|[\u3400-\u9fff]+", text):
        chunk = match.group()
        if chunk.isascii():
            if chunk in words or any(w in words for w in chunk.split()):
                return True
            continue
        for i in range(len(chunk)):
            if any(chunk[i : i + n] in words for n in range(1, min(longest, len(chunk) - i) + 1)):
                return True
    return False


@lru_cache(maxsize=1)
def _jieba_tags() -> tuple[Any, dict[str, str]]:
    """jieba, and its dictionary's part-of-speech tag per word (no tagging pass: a lookup)."""
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    return jieba, jieba.posseg.dt.word_tag_tab


def _chinese_number(sentence: str) -> bool:
    """Whether a Chinese numeral states a number. Leniently: any numeral but 一 and 〇/零 does (a wrong
    "number" costs an abstention, a missed one an answer); 一 does inside a word that jieba's dictionary tags
    as a numeral ("一名", "一百"), not in "统一" or "进一步"."""
    if re.search("[二三四五六七八九十百千万亿两]", sentence):
        return True
    if "一" not in sentence:
        return False
    jieba, tags = _jieba_tags()
    return any("一" in word and tags.get(word) in ("m", "mq") for word in jieba.lcut(sentence, HMM=False))


# A label that names the unit of the value after it, as table headers do ("Price (EUR): 20", "面积（平方
# 米）：120"; index.readers writes a table row as "header: value | ...").
_LABEL_UNIT = re.compile(r"[(（]([^()（）:：|]{1,12})[)）]\s*[:：]\s*$")
_LABEL_SPAN = 24


# A year where years stand: after a preposition of time ("in 1998", "since 2019") or before 年 ("2025年"). It
# dates something and counts or measures nothing, so it is no answer to "how many" or "how long".
_YEAR_BEFORE = re.compile(r"\b(?:in|since|from|until|till|before|after|during|early|late|mid)[\s-]*$", re.I)


def _is_year(sentence: str, number: re.Match[str]) -> bool:
    if not re.fullmatch(r"1[6-9]\d\d|20\d\d", number.group()):
        return False
    if sentence[number.end() :].lstrip().startswith("年"):
        return True
    return bool(_YEAR_BEFORE.search(sentence[max(0, number.start() - 8) : number.start()]))


_NAME_BEFORE = re.compile(r"(?:[A-Za-z_]|[A-Z]-|[A-Za-z0-9_]\()$")  # "i32", "UTF-8", "passwd(5)"


def _in_name(sentence: str, start: int) -> bool:
    """Whether the digits at ``start`` belong to a name, not a quantity: written onto a Latin letter or an
    underscore ("i32", "sha256", "x86_64"), onto a capital and a hyphen ("UTF-8", "COVID-19", "B-52"; not
    "mid-1930s"), or in brackets onto a word (a manual section, "passwd(5)")."""
    return sentence[start : start + 1].isdigit() and bool(_NAME_BEFORE.search(sentence, 0, start))


@lru_cache(maxsize=65536)
def stated_kinds(sentence: str) -> frozenset[str]:
    """The kinds of answer ``sentence`` states (see ``KINDS``)."""
    sentence = fold(sentence)  # "℃" -> "°C", full-width digits, 萬 -> 万
    m = _matchers()
    found: set[str] = set()
    for number in m.number.finditer(sentence):
        if _is_year(sentence, number):
            continue  # a date, which the date patterns below find: "2021年" is no span of 2021 years
        if _in_name(sentence, number.start()):
            continue
        if not re.fullmatch(f"[{_CN_NUMERAL}]+", number.group()):
            found.add(NUMBER)
        found |= _kinds_after(m.after, sentence[number.end() : number.end() + m.longest + 2 + GAP], m.longest)
        found |= _kinds_before(
            m.before, sentence[max(0, number.start() - m.longest - 2) : number.start()], m.longest
        )
        labelled = _LABEL_UNIT.search(sentence, max(0, number.start() - _LABEL_SPAN), number.start())
        if labelled:  # "一线城市（元/晚）：600", "Weight (kg): 0.4": the label's unit is the value's
            unit = labelled.group(1).strip().lower()
            found |= _prefix_kinds(m.after, unit, m.longest) | _prefix_kinds(m.before, unit, m.longest)
    if NUMBER not in found and _chinese_number(sentence):
        found.add(NUMBER)
    if m.date.search(sentence) or _has_date_word(sentence, m.date_words, m.longest):
        found.add(DATE)
    return frozenset(found)


# -- the question side ---------------------------------------------------------------------------

# Adjectives of "how <adjective>" and Chinese "多<adjective>", and the nouns naming a measurement, with the
# kinds that answer them. ("how long" is a length or a duration; "how big" any size.)
_SIZE = (LENGTH, AREA, VOLUME, NUMBER)
_HOW_ADJECTIVE = {
    "tall": (LENGTH,), "high": (LENGTH,), "far": (LENGTH,), "wide": (LENGTH,), "deep": (LENGTH,),
    "thick": (LENGTH,), "long": (LENGTH, DURATION, DATE), "big": _SIZE, "large": _SIZE, "heavy": (MASS,),
    "hot": (TEMPERATURE,), "cold": (TEMPERATURE,), "warm": (TEMPERATURE,), "fast": (SPEED,),
    "quickly": (SPEED, DURATION), "old": (NUMBER, DURATION, DATE),
    "much": QUANTITIES, "many": QUANTITIES,
}  # fmt: skip
_ZH_ADJECTIVE = {
    "高": (LENGTH,), "远": (LENGTH,), "宽": (LENGTH,), "深": (LENGTH,), "厚": (LENGTH,),
    "长": (LENGTH, DURATION, DATE), "大": _SIZE, "重": (MASS,), "热": (TEMPERATURE,), "冷": (TEMPERATURE,),
    "快": (SPEED,), "久": (DURATION, DATE),
}  # fmt: skip
_MEASURE_NOUNS = {
    LENGTH: r"height|length|distance|width|depth|altitude|elevation|diameter|radius"
    r"|高度|长度|距离|宽度|深度|海拔|直径|半径|身高",
    AREA: r"area|面积",
    MASS: r"weight|mass|重量|质量|体重",
    VOLUME: r"volume|capacity|体积|容量|容积",
    TEMPERATURE: r"temperature|温度|气温|水温|体温",
    SPEED: r"speed|velocity|速度|时速|车速",
    DURATION: r"duration|时长|工期|期限",
    # 价 heads every Chinese word for a price (价格, 票价, 股价, 房价, 定价, 单价...): matched as the head.
    MONEY: r"money|price|cost|costs|budget|fee|fees|fare|salary|wage|revenue|income|funding|investment|value"
    r"|价(?:格|钱)?|费用|花费|成本|预算|金额|资金|投资额?|收入|营收|工资|薪水|市值|捐款",
    PERCENT: r"percentage|percent|proportion|ratio|百分比|比例|占比|比率|比重",
    NUMBER: r"population|number|amount|count|total|人口|数量|人数|总数|数目",
}  # fmt: skip
_COST_VERBS = (
    r"cost|costs|pay|paid|spend|spent|charge|charged|worth|sell for|sold for|earn|earned|raise|raised"
)
_WHEN = re.compile(
    r"\bwhen (?:did|does|do|was|were|is|are|will|would|had|has|have|could|can|should|might|must)\b"
    r"|\bwhen\W*$|what (?:year|date|day|month|time|century|decade|era|period)|which (?:year|date|day|month"
    r"|century|decade|era|period)|how long ago|何时|什么时候|什么时间|哪一?年|几几年|哪个?月|哪一?天|几月"
    r"|几号|几点|哪个?世纪|什么年代|哪个?朝代|何年|哪一?时期|哪个?季节",
    re.IGNORECASE,
)
_HOW = re.compile(r"\bhow (\w+)(?:\s+(\w+))?", re.IGNORECASE)
_ZH_DUO = re.compile(r"(?:(?<![\u4e00-\u9fff])|(?<=[有是为要需达]))多([高远宽深厚长大重热冷快久])")
_PERCENT_ASKED = re.compile(
    r"what (?:percentage|percent|proportion|fraction|share)|百分之几|多少%|百分比|占比|比例", re.I
)
_MONEY_ASKED = re.compile(
    rf"how much (?:\w+ )*?(?:{_COST_VERBS})\b|多少钱|多少元|多少美元|花了多少|价值多少", re.I
)


def _strip_classifier(word: str) -> str:
    return word.lstrip("十百千万亿").removeprefix("个").removeprefix("名").removeprefix("位")


def _zh_units_asked(question: str) -> list[str]:
    """For each "多少"/"几" of a Chinese question, the unit word after it ("" when none): "多少公里" ->
    "公里", "几年" -> "年", "多少万元" -> "元", "几个月" -> "月", "多少米长" -> "米", "多少升水" -> "升"."""
    jieba, tags = _jieba_tags()
    words = [w for w in jieba.lcut(question) if w.strip()]
    units = []
    for i, word in enumerate(words):
        if not (
            word in ("多少", "几") or (word.startswith(("多少", "几")) and tags.get(word) in ("m", "mq"))
        ):
            continue  # "几乎" (almost) and "几内亚" (Guinea) are other words
        following = _strip_classifier(word.removeprefix("多少").removeprefix("几"))
        if not following and i + 1 < len(words):
            following = _strip_classifier(words[i + 1])
        # The word itself, else its longest head that names a unit: a compound jieba does not know
        # ("米长"), or a unit it cut together with what follows (升水, a finance word, in "多少升水").
        units.append(
            next((following[:n] for n in range(len(following), 0, -1) if _unit_kinds(following[:n])), "")
        )
    return units


def _unit_kinds(word: str) -> frozenset[str]:
    """The kinds of the unit ``word`` names ("miles" -> length, "公里" -> length, "pounds" -> mass or
    money), from CLDR; empty when it names no unit."""
    word = word.lower()
    return _matchers().after.get(unicodedata.normalize("NFKC", word).lower(), frozenset())


@dataclass(frozen=True, slots=True)
class Expected:
    """What a question asks for: the kinds of answer that can state it (empty: anything can), and the
    years it names."""

    kinds: frozenset[str] = frozenset()
    years: tuple[str, ...] = ()
    designation: bool = False  # it asks for a number that names ("编号", "the pad number"): "G11", "LC-34"

    def stated_by(self, sentence: str, passage: str | None = None) -> bool:
        """Whether ``sentence`` (from ``passage``, default: the sentence alone) can state the answer.

        The kind must show in the sentence. Years are checked on the passage (a paragraph often names the
        year once, for all of its sentences): a passage that is dated, naming years but none of the
        question's, is about another time; an undated one may still answer.
        """
        if self.years:
            dated = dating_years(sentence if passage is None else passage)
            if dated and not set(self.years) & dated:
                return False
        if not self.kinds:
            return True
        if self.kinds & stated_kinds(sentence):
            return True
        return self.designation and NUMBER in self.kinds and _names_a_number(sentence)


# A number asked for as a name or a code, not a count: "编号是多少", "What is the model number?" ("the number
# of ..." is a count).
_DESIGNATION = re.compile(r"编号|号码|代号|型号|\bnumber\b(?!\s+of\b)", re.IGNORECASE)


def expected_answer(question: str) -> Expected:
    """What ``question`` asks for (no kinds when it asks for none these checks know)."""
    return Expected(
        asked_kinds(question),
        tuple(dict.fromkeys(_YEAR.findall(question))),
        bool(_DESIGNATION.search(question)),
    )


def _names_a_number(sentence: str) -> bool:
    """Whether ``sentence`` holds digits within a name ("G11", "LC-34": ``_in_name``)."""
    sentence = fold(sentence)
    return any(_in_name(sentence, m.start()) for m in _matchers().number.finditer(sentence))


def asked_kinds(question: str) -> frozenset[str]:
    """The kinds of answer that can answer ``question`` (empty: it asks for no number, amount or date).

    A specific kind (a unit after "how many"/"多少", "how tall", a measurement noun such as "price" or
    "面积", a cost) narrows the question to it; a bare "how many"/"多少"/"几" accepts any quantity.
    """
    question = fold(question)
    kinds: set[str] = set()
    generic = False
    if _WHEN.search(question):
        kinds.add(DATE)
    if _PERCENT_ASKED.search(question):
        kinds |= {PERCENT, NUMBER}
    if _MONEY_ASKED.search(question):
        kinds.add(MONEY)
    for match in _HOW.finditer(question):
        adjective = match.group(1).lower()
        if adjective in ("many", "much"):
            if match.group(2):  # the unit may be several words: "how many square kilometres"
                m = _matchers()
                after = unicodedata.normalize("NFKC", question[match.start(2) :]).lower()
                kinds |= _prefix_kinds(m.after, after, m.longest)
            generic = True
            continue
        kinds |= set(_HOW_ADJECTIVE.get(adjective, ()))
    for match in _ZH_DUO.finditer(question):
        kinds |= set(_ZH_ADJECTIVE[match.group(1)])
    for unit in _zh_units_asked(question):
        kinds |= _unit_kinds(unit)
        generic = True
    for kind, nouns in _MEASURE_NOUNS.items():
        # The measurement must be what is asked: "what is the (total) price", "what is the library's annual
        # budget", "票价是多少", "how much money"; not a noun after "of" ("the name of the budget office").
        en = (
            rf"\bwhat(?:'s| is| was| are| were)(?: the| its| their| a| an)?"
            rf"(?: (?!of\b|for\b|in\b|on\b)[\w'-]+){{0,3}} (?:{nouns})\b"
            r"(?!\s+(?:called|named|known))"
        )
        zh = rf"(?:{nouns})(?:大约|约|为|是|有|达到?|共|一共|总共)?(?:多少|几)"
        much = rf"\bhow (?:much|many) (?:{nouns})\b"
        if re.search(f"{en}|{zh}|{much}", question, re.IGNORECASE):
            if kind == NUMBER:
                generic = True
            else:
                kinds |= {kind, NUMBER} if kind == PERCENT else {kind}
    if generic and not kinds - {DATE}:
        kinds |= QUANTITIES
    return frozenset(kinds)


# A year, not a decade ("1970s", "1980's", "1970年代") and not part of a longer number.
_YEAR = re.compile(r"(?<!\d)(?<!\d\.)(1[6-9]\d\d|20\d\d)(?!\d|\.\d|'?s\b|年代)")
# A year given as a comparison baseline ("较2020年", "compared with 2020", "than in 2019") or a starting
# point ("since 2015", "自2015年以来") does not date a passage.
_BASELINE = re.compile(
    r"(?:较|比|相比|同比|对比|自|从|与)\s*(?:1[6-9]\d\d|20\d\d)|(?:1[6-9]\d\d|20\d\d)\s*年?(?:相比|以来|同期)"
    r"|(?:compared (?:with|to)|than(?: in)?|since|from) (?:1[6-9]\d\d|20\d\d)",
    re.IGNORECASE,
)


def dating_years(text: str) -> set[str]:
    """The years that date ``text``: those it names other than as a comparison baseline."""
    return set(_YEAR.findall(_BASELINE.sub(" ", text)))

"""Question focus (service.focus): what a question asks about, and its support in a passage."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from service.focus import FocusChecker, question_focus
from tests.fakes import HashingEncoder

HEMA_ZH = (
    "2021年夏天，河南遭遇罕见特大暴雨。盒马7000个社区免费提供45万件蔬菜、粮油等生活日用品；"
    "9500家工厂库存直发河南。"
)


@pytest.mark.parametrize(
    ("question", "head"),
    [
        ("How many trucks did Hema send to Henan?", ("trucks",)),
        ("How many residents live in the town?", ("residents",)),
        ("Who is the CEO of Alibaba Cloud?", ("ceo",)),
        ("Who was the first chair of the IPCC?", ("chair",)),
        ("盒马派出了多少辆卡车？", ("卡车",)),
        ("白皮书有多少页？", ("页",)),  # the classifier is what is counted
        ("阿里云的首席执行官是谁？", ("执行官",)),
        ("How many times did they win?", ()),  # "times" is the answer's kind, not its focus
        ("经理住宿每晚多少钱？", ()),  # so is 钱 (money)
        ("他们赢了多少次？", ()),
        ("Which university took part?", ()),  # a category, not a head: the answer names an instance
        ("几乎所有人都来了吗？", ()),
    ],
)
def test_the_head_of_a_question(question: str, head: tuple[str, ...]) -> None:
    assert question_focus(question).head == head


@pytest.mark.parametrize(
    ("question", "empty"),
    [
        ("hello", True),
        ("Thanks!", True),
        ("What?", True),
        ("How?", True),
        ("123", True),  # a bare number names nothing
        ("What is 42?", True),
        ("你好", True),
        ("谢谢", True),  # jieba tags it as a person's name
        ("为什么？", True),
        ("是什么", True),
        ("请问", True),
        ("这是啥？", True),
        ("Price?", False),
        ("Hema?", False),
        ("what is ai?", False),  # a word too short to weigh as a term still names something
        ("Who built the mill?", False),
        ("hello, who built the mill?", False),
        ("盒马捐了什么？", False),
        ("猫吃什么？", False),  # one-character words too
        ("MIT是什么？", False),
    ],
)
def test_a_question_that_names_nothing_is_empty(question: str, empty: bool) -> None:
    assert question_focus(question).empty is empty


def test_an_empty_focus_is_stated_by_no_passage() -> None:
    """A question about nothing has no terms whose support could default to 1.0: nothing it asks about
    can be stated, so every support is 0 (the answerer abstains, ``focus_missing``)."""
    support = FocusChecker().support(question_focus("hello"), "Hello, and welcome to the mill.", "en")
    assert (support.head, support.names, support.coverage, support.weakest) == (0.0, 0.0, 0.0, 0.0)
    assert question_focus("hello, who built the mill?").terms == ("built", "mill")  # small talk: no term


def test_names_and_terms() -> None:
    focus = question_focus("How many trucks did Hema send to Henan?")
    assert focus.names == ("Hema", "Henan")
    assert set(focus.terms) >= {"trucks", "hema", "henan"}
    assert "how" not in focus.terms and "did" not in focus.terms


@pytest.mark.parametrize(
    ("question", "nouns"),
    [
        # The kind of answer is no noun the passage must state: the answer names an instance of it.
        ("What party rules in Melbourne's inner regions?", ("Melbourne", "regions")),
        ("What is the nickname for the hockey stick graph?", ("hockey", "stick", "graph")),
        ("What German poet was descended from Huguenots?", ("German", "Huguenots")),
        ("What was the main idea of Hutton's paper?", ("Hutton", "paper")),  # "main" modifies "idea"
        ("What form of oxygen do marine animals acquire?", ("oxygen", "animals")),
        # The thing counted, and a noun after an auxiliary (the subject), stay.
        ("How many trucks did Hema send?", ("trucks", "Hema")),
        ("What did the trucks carry?", ("trucks",)),
        ("What caused the trucks to stop?", ("trucks", "stop")),
        ("What chemist managed to make liquid oxygen?", ("oxygen",)),  # no verbs
        ("Who gave them all another prize?", ("prize",)),  # pronouns and determiners are no nouns
        ("煮食用炉具最早可以追溯到什么朝代？", ("食用", "炉具")),
        ("哪位德国诗人是胡格诺派后裔?", ("德国", "胡格诺", "后裔")),  # a name in the run stays
        ("张天德挂靴的原因是什么？", ("天德", "挂靴")),
        ("什么是委员会的主要职能？", ("委员会",)),
        ("城巴40M线是来往哪里的巴士路线？", ("城巴", "40M", "巴士", "路线")),  # 哪里: a place; 40M: a name
        ("盒马提供了多少件生活日用品？", ("日用品", "盒马", "生活")),
    ],
)
def test_the_nouns_of_a_question(question: str, nouns: tuple[str, ...]) -> None:
    assert question_focus(question).nouns == nouns


@pytest.mark.parametrize(
    ("question", "nouns"),
    [
        # Words for the document itself say where to look, not what about: no passage states them.
        ("What does the article say about Cainiao?", ("Cainiao",)),
        ("According to the passage, how many trucks did Hema send?", ("trucks", "Hema")),
        ("文章说河南有多少个社区受灾？", ("社区", "河南")),
        ("这篇文章提到了哪些企业向河南捐款？", ("河南",)),
        ("本文讲述了河南暴雨的哪些影响？", ("河南", "暴雨", "影响")),
        ("文中提到的归纳偏置例子叫什么？", ("偏置", "例子")),
        # The same words about a document the passage mentions are the category of the answer.
        ("What article was published in 1937?", ()),
    ],
)
def test_the_document_itself_is_no_noun(question: str, nouns: tuple[str, ...]) -> None:
    focus = question_focus(question)
    assert focus.nouns == nouns
    assert not {"article", "passage", "文章", "篇文章", "文中"} & set(focus.terms)
    support = FocusChecker().support(focus, "Cainiao, Hema trucks; 河南社区暴雨影响, 偏置例子", "zh")
    assert support.weakest == 1.0


def test_weakest_reads_the_nouns() -> None:
    checker = FocusChecker()  # no encoder: what is not stated scores 0
    focus = question_focus("Which team did Hema's kayaks beat in Henan?")
    # "team" is the kind of answer; "beat" can be a noun too (LemmInflect's lexicon)
    assert focus.nouns == ("Hema", "Henan", "kayaks", "beat")
    support = checker.support(focus, "Hema sent 40 trucks to Henan and beat the Lions.", "en")
    assert support.weakest == 0.0 and support.coverage < 1.0
    stated = checker.support(focus, "Hema's kayaks beat the Lions in Henan.", "en")
    assert stated.weakest == 1.0


@pytest.mark.parametrize(
    ("question", "passage", "stated"),
    [
        ("How does Kenya curb coruption?", "Kenya's courts curb corruption.", True),
        ("How old are the ctenophhores?", "Fossils of ctenophores are 500 million years old.", True),
        ("How many ctenophores live in Kenya?", "Fossils of ctenophores ...", False),  # Kenya: no
        ("When did Spain join the European Union?", "Spain joined Europe's union in 1986.", False),
    ],
)
def test_a_misspelt_noun_is_stated(question: str, passage: str, stated: bool) -> None:
    support = FocusChecker().support(question_focus(question), passage, "en")
    assert (support.weakest == 1.0) is stated


@pytest.mark.parametrize(
    ("question", "passage", "stated"),
    [
        ("How many tons of carbon are released?", "Forests release 1.5 gigatons of carbon.", True),
        ("How many metres long is the bridge?", "The bridge is 5 kilometres long.", True),
        ("How many bytes does a char take?", "A char takes 4 bytes.", True),
        ("How many bytes does the cache hold?", "The cache holds 4 megabytes.", True),
        ("How many tons of carbon are released?", "Forests release 1.5 gigawatts of carbon.", False),
        ("How many metres long is the bridge?", "The bridge is 5 miles long.", False),
        # a compound adjective names its unit in the singular ("a 42-kilometre footpath")
        ("How many metres long is the trail?", "The trail is a 42-kilometre footpath.", True),
        ("How many kilometres long is the trail?", "The trail is a twenty-kilometre footpath.", True),
        ("How many miles long is the trail?", "The trail is a twenty-kilometre footpath.", False),
    ],
)
def test_a_unit_is_stated_by_its_si_multiples(question: str, passage: str, stated: bool) -> None:
    support = FocusChecker().support(question_focus(question), passage, "en")
    assert (support.head == 1.0) is stated


def test_lexical_support_with_english_stems() -> None:
    checker = FocusChecker()  # no encoder: what is not stated scores 0
    stated = checker.support(question_focus("How many trucks did Hema send?"), "Hema sent a truck.", "en")
    assert stated.head == 1.0 and stated.names == 1.0 and stated.missing == ()
    missing = checker.support(question_focus("How many kayaks did Hema send?"), "Hema sent 40 trucks.", "en")
    assert missing.head == 0.0 and missing.missing == ("kayaks",)
    assert 0.0 < missing.coverage < 1.0
    zh = checker.support(question_focus("盒马提供了多少件生活日用品？"), HEMA_ZH, "zh")
    assert zh.head == 1.0
    assert checker.support(question_focus("盒马派出了多少辆卡车？"), HEMA_ZH, "zh").head == 0.0


def test_a_translator_plugs_in_for_other_languages() -> None:
    table = {("trucks", "zh"): ["卡车", "货车"], ("factories", "zh"): ["工厂"]}

    def translate(term: str, lang: str) -> Sequence[str]:
        return table.get((term, lang), [])

    checker = FocusChecker(translator=translate)
    assert checker.support(question_focus("How many factories shipped goods?"), HEMA_ZH, "zh").head == 1.0
    assert checker.support(question_focus("How many trucks did Hema send?"), HEMA_ZH, "zh").head == 0.0


def test_a_chinese_noun_over_english_text_is_stated_by_its_glosses() -> None:
    glosses = {"卡车": {"truck", "lorry"}, "工厂": {"factori", "plant"}}

    def glossed_in(word: str, text: str) -> bool | None:
        stems = glosses.get(word)
        return None if stems is None else any(s in text.lower() for s in stems)

    plain, checker = FocusChecker(), FocusChecker(glossed_in=glossed_in)  # no encoder: unstated is 0
    focus = question_focus("卡车在工厂装了什么？")
    assert focus.nouns == ("卡车", "工厂")
    stated = "40 trucks loaded at two factories."
    assert plain.support(focus, stated, "en").weakest == 0.0
    assert checker.support(focus, stated, "en").weakest == 1.0
    absent = checker.support(focus, "40 trucks loaded at two farms.", "en")
    assert absent.weakest == 0.0
    # Only the nouns' weakest support reads the glosses; the coverage keeps its own grading.
    assert absent.coverage == plain.support(focus, stated, "en").coverage
    # Nothing changes over Chinese text, nor for a word the dictionary does not have.
    assert checker.support(focus, "卡车在工厂装货。", "zh").weakest == 1.0
    assert checker.support(question_focus("盒马在工厂装了什么？"), stated, "en").weakest == 0.0


def test_embedding_support_is_graded_and_cached() -> None:
    encoder = HashingEncoder()
    checker = FocusChecker(encoder)
    support = checker.support(
        question_focus("How many truckloads did Hema send?"), "Hema sent 40 trucks.", "en"
    )
    assert 0.0 < support.head < 1.0  # no exact match, a similar word
    calls = encoder.calls
    checker.support(question_focus("How many truckloads did Hema send?"), "Hema sent 40 trucks.", "en")
    assert encoder.calls == calls  # every word vector was cached


def test_cross_lingual_support_with_the_real_model(encoder) -> None:  # type: ignore[no-untyped-def]
    """Word vectors of the retrieval model: a translation is closer than an unrelated word."""
    checker = FocusChecker(encoder)
    stated = checker.support(question_focus("How many factories shipped goods to Henan?"), HEMA_ZH, "zh")
    absent = checker.support(question_focus("How many kayaks shipped goods to Henan?"), HEMA_ZH, "zh")
    assert stated.head > absent.head


def test_accented_names_and_possessives_are_whole_names() -> None:
    focus = question_focus("Who kidnapped Temüjin's first wife in Zürich’s old town?")
    assert focus.names == ("Temüjin", "Zürich")
    assert "temüjin" in focus.terms


@pytest.mark.parametrize(
    ("question", "passage"),
    [
        ("停水时间是几点到几点？", "本大廈將於十二月五日停水，停水時間為上午九時至下午五時。"),  # Big5 notice
        ("停水時間是幾點到幾點？", "本大厦将于十二月五日停水，停水时间为上午九时至下午五时。"),
    ],
)
def test_traditional_and_simplified_chinese_state_the_same_words(question: str, passage: str) -> None:
    support = FocusChecker().support(question_focus(question), passage, "zh")
    assert support.head == 1.0 and support.weakest == 1.0

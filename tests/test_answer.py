"""Pure pieces of answering: answer types, citation formatting, the grounding check."""

import pytest

from service.answer import AnswerSentence, join_with_citations
from service.expect import Expected, expected_answer
from service.grounding import check_sentences, supports

HEMA = (
    "2021年夏天，河南遭遇罕见特大暴雨。盒马7000个社区免费提供45万件蔬菜、粮油等生活日用品；"
    "菜鸟全力调动运输配送力量。"
)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("盒马提供了多少件生活日用品？", Expected("number", "item")),
        ("How many items did Hema give away?", Expected("number", "item")),
        ("白皮书有多少页？", Expected("number", "page")),
        ("How many pages does the white paper have?", Expected("number", "page")),
        ("马云公益基金会向河南捐款的金额是多少？", Expected("number", "money")),
        ("How much money did Ant Group donate?", Expected("number", "money")),
        ("亿元GDP事故死亡率降到了多少？", Expected("number", None)),  # 亿元 is not the unit asked for
        ("When did the heavy rain hit Henan?", Expected("time", None)),
        ("盒马在哪里提供物资？", Expected(None, None)),
    ],
)
def test_expected_answer(question: str, expected: Expected) -> None:
    assert expected_answer(question) == expected


def test_a_number_in_another_unit_does_not_answer() -> None:
    sentence = "盒马7000个社区免费提供45万件蔬菜、粮油等生活日用品；"
    assert Expected("number", "item").stated_by(sentence)
    assert not Expected("number", "page").stated_by(sentence)
    assert Expected("number", None).stated_by(sentence)
    assert Expected("number", "year").stated_by("全国安全生产事故起数和死亡人数连续十八年“双下降”")
    assert not Expected("number", None).stated_by("阿里巴巴集团紧急捐款援驰。")
    assert Expected(None, None).stated_by("")


def test_citations_follow_each_sentence() -> None:
    zh = [AnswerSentence("第一句。", (1,)), AnswerSentence("第二句；", (1, 3))]
    assert join_with_citations(zh) == "第一句。[1]第二句；[1][3]"
    en = [AnswerSentence("First one.", (2,)), AnswerSentence("Second", (1,))]
    assert join_with_citations(en) == "First one. [2] Second [1]"


def test_extractive_sentences_are_supported_exactly() -> None:
    assert supports(HEMA, "盒马7000个社区免费提供45万件蔬菜、粮油等生活日用品；")
    assert supports(HEMA, "盒马7000个社区免费提供45万件蔬菜、粮油等生活日用品； [1]")  # markers ignored
    assert not supports(HEMA, "")


def test_generated_sentences_need_token_and_number_coverage() -> None:
    assert supports(HEMA, "盒马的7000个社区免费提供了45万件蔬菜和粮油。")  # a paraphrase, same facts
    assert not supports(HEMA, "盒马的7000个社区免费提供了46万件蔬菜和粮油。")  # a number the passage lacks
    assert not supports(HEMA, "阿里云发布了一款新的手机。")


def test_every_sentence_needs_a_supporting_cited_passage() -> None:
    passages = {1: HEMA, 2: "同时，我们也注意到，我国仍是世界上自然灾害最为严重的国家之一。"}
    claims = [
        ("盒马7000个社区免费提供45万件蔬菜、粮油等生活日用品；", (1,)),
        ("盒马7000个社区免费提供45万件蔬菜、粮油等生活日用品；", (2,)),  # cites the wrong passage
        ("盒马7000个社区免费提供45万件蔬菜、粮油等生活日用品；", (9,)),  # cites a passage not returned
        ("盒马7000个社区免费提供45万件蔬菜、粮油等生活日用品；", ()),  # cites nothing
        ("盒马7000个社区免费提供45万件蔬菜、粮油等生活日用品；", (2, 1)),
    ]
    assert check_sentences(claims, passages) == [True, False, False, False, True]


@pytest.mark.parametrize(
    ("question", "role", "institution", "years"),
    [
        ("Who is the CEO of Alibaba Cloud?", "chief executive", None, ()),
        ("阿里云的首席执行官是谁？", "chief executive", None, ()),
        ("白皮书的主编是谁？", "editor", None, ()),
        ("安全应急数智化需要谁共同引导规范？", None, None, ()),  # "who" without a title: anyone may answer
        ("What does the CEO decide?", None, None, ()),  # a title without "who"
        ("Which university took part in writing the white paper?", None, "university", ()),
        ("哪所大学参与了白皮书的编写？", None, "university", ()),
        ("What university alumni member won the prize?", None, None, ()),  # asks for a person
        ("How many people were evacuated during the 2021 Henan floods?", None, None, ("2021",)),
        ("What happened in the 1970s and in 1980's?", None, None, ()),  # decades are not years
        ("1970年代发生了什么？", None, None, ()),
        ("What was the population as of 2010.", None, None, ("2010",)),
    ],
)
def test_expected_roles_institutions_and_years(
    question: str, role: str | None, institution: str | None, years: tuple[str, ...]
) -> None:
    wanted = expected_answer(question)
    assert (wanted.role, wanted.institution, wanted.years) == (role, institution, years)


def test_a_money_focus_asks_for_an_amount() -> None:
    wanted = expected_answer("What is the total investment in the demonstration bases?")
    assert (wanted.kind, wanted.unit) == ("number", "money")
    assert not wanted.stated_by("2021年，工业和信息化部印发《国家安全应急产业示范基地管理办法(试行)》。")
    assert wanted.stated_by("示范基地总投资达120亿元。")


def test_a_who_question_about_a_title_needs_the_title() -> None:
    wanted = expected_answer("Who is the CEO of Alibaba Cloud?")
    assert not wanted.stated_by("阿里巴巴集团、蚂蚁集团、马云公益基金会，紧急捐款援驰。")
    assert wanted.stated_by("阿里云总裁张建锋出席了发布会。")
    assert wanted.stated_by("Its chief executive, Jane Doe, said so.")


def test_a_which_institution_question_needs_one_named() -> None:
    wanted = expected_answer("Which university took part in writing the white paper?")
    assert not wanted.stated_by("赛迪研究院安全产业所、中国安全生产科学研究院联合研究发布白皮书。")
    assert wanted.stated_by("清华大学参与了白皮书的编写。")


def test_a_passage_dated_to_other_years_does_not_answer() -> None:
    wanted = expected_answer("2021年河南暴雨造成了多少人死亡？")
    sentence = "全国因自然灾害死亡失踪591人，为历史最低。"
    assert not wanted.stated_by(sentence, "2020年我国多地遭受1998年以来最严重汛情。" + sentence)
    assert wanted.stated_by(sentence, "2021年夏天，河南遭遇罕见特大暴雨。" + sentence)
    assert wanted.stated_by(sentence, sentence)  # an undated passage may still answer
    assert wanted.stated_by("In 2021, 591 people died.")  # "2021." at a sentence end is a year


def test_english_text_states_numbers_and_times_in_words() -> None:
    assert expected_answer("How many times did the team win?").stated_by("The team won three times.")
    assert not expected_answer("How many times did the team win?").stated_by("The team won the cup.")
    assert expected_answer("How many people died?").stated_by("Three hundred people died.")
    assert not expected_answer("How many people died?").stated_by("Many people died.")
    assert expected_answer("When was it built?").stated_by("It was built during the reign of Henry VIII.")
    assert expected_answer("When was it built?").stated_by("It was built in the nineteenth century.")
    assert not expected_answer("When was it built?").stated_by("It was built by monks in Paris.")

"""Pure pieces of answering: answer types, citation formatting, the grounding check."""

import pytest

from service.answer import AnswerSentence, Expected, expected_answer, join_with_citations
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

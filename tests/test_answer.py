"""Pure pieces of answering: citation formatting and the grounding check (answer types:
test_answertype.py; focus: test_focus.py)."""

from service.answer import AnswerSentence, join_with_citations
from service.grounding import check_sentences, supports

HEMA = (
    "2021年夏天，河南遭遇罕见特大暴雨。盒马7000个社区免费提供45万件蔬菜、粮油等生活日用品；"
    "菜鸟全力调动运输配送力量。"
)


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

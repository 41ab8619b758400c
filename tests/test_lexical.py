"""Lexical analysis (index.lexical): the form words are compared in, and search tokens."""

from __future__ import annotations

import pytest

from index.lexical import BM25Index, fold, tokenize
from service.answertype import MONEY, asked_kinds, stated_kinds


def test_traditional_chinese_folds_to_simplified_and_simplified_stays() -> None:
    assert fold("聯絡人為陳淑芬小姐。頭髮") == "联络人为陈淑芬小姐。头发"
    simplified = "盒马7000个社区免费提供45万件蔬菜。乾隆年间的著名画家"
    assert fold(simplified) == simplified
    assert fold("ＡＢＣ１２３ Café") == "ABC123 Café"  # NFKC; Latin text is not converted


@pytest.mark.parametrize(
    ("question", "passage"),
    [
        ("停水時間是幾點到幾點？", "停水时间为上午九时至下午五时。"),
        ("停水时间是几点到几点？", "停水時間為上午九時至下午五時。"),
    ],
)
def test_a_question_in_either_script_finds_a_passage_in_the_other(question: str, passage: str) -> None:
    assert set(tokenize(question)) & set(tokenize(passage)) >= {"停水", "时间"}
    index = BM25Index([passage, "渡轮每二十分钟从旧城码头开出，票价十二元。"])
    scores = index.scores(question)
    assert scores[0] > 0 and scores[1] == 0


def test_answer_types_read_traditional_characters() -> None:
    assert MONEY in asked_kinds("入場費多少錢？")
    assert MONEY in stated_kinds("全年會費為三萬元。")

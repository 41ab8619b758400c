"""The guard's pure parts: numbers across formats and scripts, names, the completion's sentences and
citations, the shipped thresholds. (The whole guard runs through the app in tests/test_generate.py.)"""

from __future__ import annotations

import json
from importlib import resources

import pytest

from index.errors import GenerationError
from service.generate import chat_url, parse_completion
from service.guard import PAIRS, Thresholds, name_supported, names_in, numbers_in, unsupported_numbers

HEMA = "2021年夏天，河南遭遇罕见特大暴雨。盒马7000个社区免费提供45万件蔬菜、粮油等生活日用品；"


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("45万件", {450000}),
        ("450,000 items", {450000}),
        ("450 thousand items", {450000}),
        ("0.45 million items", {450000}),
        ("四十五万件", {450000}),
        ("三千人", {3000}),
        ("three thousand people", {3000}),
        ("forty-five people", {45}),
        ("2021年", {2021}),
        ("in 2021", {2021}),
        ("百分之四十三", {43}),
        ("43%", {43}),
        ("一是全国安全生产", set()),  # a lone 一 is a word
        ("千万不要", set()),  # so is a run of scales
        ("one of the best", set()),
        ("连续十八年", {18}),
        ("the third time", {3}),
        ("第三次", {3}),
    ],
)
def test_numbers_are_values_whatever_the_format_or_script(text: str, values: set[float]) -> None:
    assert numbers_in(text) == frozenset(float(v) for v in values)


def test_a_number_is_supported_by_its_passage_in_any_form() -> None:
    for sentence in (
        "Hema gave away 450,000 items in 7,000 communities.",
        "Hema gave away 450 thousand items in seven thousand communities in 2021.",
        "盒马在七千个社区提供了四十五万件物品。",
        "In July 2021, Hema gave away 0.45 million items.",  # July: only the passage's numbers are checked
    ):
        assert unsupported_numbers(sentence, [HEMA]) == [], sentence
    assert unsupported_numbers("Hema gave away 460,000 items.", [HEMA]) == [460000.0]
    assert unsupported_numbers("盒马在2022年提供了45万件物品。", [HEMA]) == [2022.0]
    assert unsupported_numbers("盒马在7月提供了物品。", ["In July 2021, Hema gave items away."]) == []
    assert unsupported_numbers("盒马在8月提供了物品。", ["In July 2021, Hema gave items away."]) == [8.0]


def test_names() -> None:
    assert names_in("The Denver Broncos won Super Bowl 50 in Santa Clara.") == [
        "Denver Broncos",
        "Super Bowl",
        "Santa Clara",
    ]
    assert names_in("Hema gave away 450,000 items.") == []  # one capitalised word opening a sentence
    assert "马化腾" in names_in("马化腾宣布盒马提供了物品。")
    assert name_supported("Denver Broncos", ["The Broncos of Denver won."])
    assert not name_supported("Carolina Panthers", ["The Denver Broncos won."])
    assert not name_supported("马化腾", [HEMA])
    assert name_supported("河南", [HEMA])
    # Across scripts a name is not checked, so it is not held against the sentence.
    assert name_supported("Tencent", [HEMA])
    assert name_supported("马化腾", ["Hema gave away 450,000 items."])


def test_the_completion_is_split_into_sentences_with_their_citations() -> None:
    c = parse_completion("盒马提供了45万件物品[1]。河南遭遇暴雨【2】！ Hema helped [1, 3]. It rained. [2] 完")
    assert [(s.text, s.citations) for s in c.sentences] == [
        ("盒马提供了45万件物品。", (1,)),
        ("河南遭遇暴雨！", (2,)),
        ("Hema helped.", (1, 3)),
        ("It rained.", (2,)),  # markers opening the next piece belong to the sentence before
        ("完", ()),
    ]
    assert not c.not_answered
    assert parse_completion("NOT_IN_DOCUMENTS").not_answered
    assert parse_completion("Not in documents.").not_answered  # the marker, spelt with spaces
    assert not parse_completion("The documents say nothing else [1].").not_answered
    with pytest.raises(GenerationError, match="empty"):
        parse_completion("  \n")


def test_the_chat_url() -> None:
    assert chat_url("http://localhost:11434") == "http://localhost:11434/v1/chat/completions"
    assert chat_url("http://localhost:11434/v1/") == "http://localhost:11434/v1/chat/completions"


def test_the_shipped_thresholds_were_fitted_for_every_direction() -> None:
    data = json.loads(resources.files("service").joinpath("data/guard.json").read_text(encoding="utf-8"))
    assert set(data["pairs"]) == set(PAIRS)
    assert "XQuAD" in data["fitted_on"]["data"]
    thresholds = Thresholds.load()
    for pair in PAIRS:
        assert 0.0 < thresholds.by_pair[pair] < 1.0
        assert data["pairs"][pair]["report"]["supported"] > 100

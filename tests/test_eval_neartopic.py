"""Focus-swapped near-topic unanswerable questions (eval.neartopic) and the benchmarks made of them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from eval.convert import SPLITS, article_splits, convert_benchmark, convert_squad, find_datasets_dir
from eval.dataset import load_items
from eval.neartopic import NAME, NOUN, YEAR, SwapMaker, Term, en_nouns, en_terms, states, zh_terms

REPO = Path(__file__).resolve().parents[1]
DATASETS = find_datasets_dir(REPO)

EN_ARTICLE = [
    "In 1886 the company in Henan sent 40 trucks. The trucks carried rice for the villages.",
    "The city also received kayaks from a club in Wuhan. Each kayak was blue.",
    "The trucks were later sold, and the kayaks were sent back to the club.",
]
ZH_ARTICLE = [
    "盒马向河南派出了四十辆卡车，卡车运送了大米。",
    "菜鸟在郑州调集了皮划艇和救生衣。",
]


def test_english_terms_names_numbers_and_nouns() -> None:
    nouns = en_nouns(EN_ARTICLE)
    assert {"trucks", "kayaks", "club", "city", "kayak"} <= nouns
    assert "company" in nouns and "sent" not in nouns and "blue" not in nouns
    found = en_terms("How many trucks did Peyton Manning send to Henan in 1886?", nouns, question=True)
    assert Term("trucks", NOUN) in found
    assert Term("Peyton Manning", NAME) in found
    assert Term("Henan", NAME) in found and Term("1886", YEAR) in found
    assert all(t.text != "How" for t in found)  # a question's first word is not a name


def test_chinese_terms_come_from_the_tagger() -> None:
    found = {t.text for t in zh_terms("盒马向河南派出了多少辆卡车？")}
    assert "卡车" in found and "河南" in found


def test_states_matches_whole_words_and_numbers_next_to_chinese() -> None:
    assert states("The trucks arrived.", "trucks", "en")
    assert not states("The firetrucks arrived.", "trucks", "en")
    assert states("在1954年建成", "1954", "zh")
    assert not states("在11954年", "1954", "zh")


def test_swap_replaces_a_stated_term_with_one_the_paragraph_never_states() -> None:
    maker = SwapMaker(EN_ARTICLE, [0, 0, 0], "en")
    swap = maker.swap("How many trucks did the company send to Henan?", 0, "q1")
    assert swap is not None
    assert swap.original.text in {"trucks", "company", "Henan"}
    assert swap.replacement.kind == swap.original.kind
    assert not states(EN_ARTICLE[0], swap.replacement.text, "en")  # never stated in the gold paragraph
    assert swap.question != "How many trucks did the company send to Henan?"
    # Deterministic: the same id gives the same swap.
    assert maker.swap("How many trucks did the company send to Henan?", 0, "q1") == swap


def test_no_swap_without_an_anchor_or_when_another_paragraph_could_answer() -> None:
    maker = SwapMaker(EN_ARTICLE, [0, 0, 0], "en")
    # Only one term the gold paragraph states: nothing would keep the question on its paragraph.
    assert maker.swap("What did the trucks carry?", 0, "q2") is None
    # Paragraph 3 states kayaks together with the anchor "club": swapping trucks -> kayaks there would
    # make a question that paragraph 3 may answer, so no swap may use a term stated beside every anchor.
    for seed in ("a", "b", "c", "d", "e"):
        swap = maker.swap("Where did the trucks from the club go?", 1, seed)
        assert swap is None or not (swap.replacement.text == "trucks")


def test_chinese_swap() -> None:
    maker = SwapMaker(ZH_ARTICLE, [0, 0], "zh")
    swap = maker.swap("盒马向河南派出了多少辆卡车？", 0, "z1")
    assert swap is not None
    assert swap.replacement.text not in ZH_ARTICLE[0]
    assert swap.original.text in ZH_ARTICLE[0]


def qa(qid: str, question: str, answer: str) -> dict[str, object]:
    return {"id": qid, "question": question, "answers": [{"text": answer, "answer_start": 0}]}


def test_convert_with_swaps_writes_variants_and_an_article_split(tmp_path: Path) -> None:
    words = [("trucks", "kayaks", "Henan", "Wuhan"), ("buses", "boats", "Hunan", "Hubei"),
             ("vans", "canoes", "Anhui", "Jiangxi"), ("cars", "rafts", "Fujian", "Yunnan")]  # fmt: skip
    articles = [
        [text.replace("trucks", a).replace("kayaks", b).replace("Henan", c).replace("Wuhan", d)
         for text in EN_ARTICLE]
        for a, b, c, d in words
    ]  # fmt: skip
    data = {
        "data": [
            {
                "title": f"T{n}",
                "paragraphs": [
                    {"context": texts[0], "qas": [qa(f"a{n}", f"How many {a} went to {c}?", "4")]},
                    {"context": texts[1], "qas": [qa(f"b{n}", f"Where did the {b} come from?", "a club")]},
                    {"context": texts[2], "qas": [qa(f"c{n}", f"What happened to the {a}?", "sold")]},
                ],
            }
            for n, (texts, (a, b, c, _)) in enumerate(zip(articles, words, strict=True))
        ]
    }  # fmt: skip
    source = tmp_path / "en.json"
    source.write_text(json.dumps(data), encoding="utf-8")
    convert_squad(source, tmp_path / "out", "en", "t", swaps=True)
    items = load_items(tmp_path / "out" / "questions.jsonl")
    swaps = [i for i in items if i.id.endswith("-swap")]
    assert swaps and all(not i.answerable and not i.answers and not i.gold_passages for i in swaps)
    assert all(i.id.removesuffix("-swap") in {j.id for j in items} for i in swaps)
    parts = {split: load_items(tmp_path / "out" / f"{split}.jsonl") for split in SPLITS}
    assert sorted(i.id for p in parts.values() for i in p) == sorted(i.id for i in items)
    splits = article_splits(4)
    for split, part in parts.items():  # whole articles go to one split
        assert {splits[int(i.id.split("-")[1][1:])] for i in part} == {split}
    assert "-swap" in (tmp_path / "out" / "NOTICE.txt").read_text(encoding="utf-8")


def test_split_is_balanced_and_not_the_holdout_pattern() -> None:
    splits = article_splits(48)
    assert Counter(splits) == {"fit": 24, "report": 24}
    assert article_splits(48) == splits  # fixed
    # Every 8th article is held out, and every 4th paragraph: neither pattern may land in one split.
    assert len({splits[a] for a in range(7, 48, 8)}) == 2
    assert len({splits[a] for a in range(3, 48, 4)}) == 2


@pytest.mark.skipif(DATASETS is None, reason="shared datasets folder (../shared/datasets) is absent")
def test_real_neartopic_benchmark_covers_both_question_languages(tmp_path: Path) -> None:
    assert DATASETS is not None
    stats = convert_benchmark("xquad-en-neartopic", DATASETS, tmp_path)
    assert stats.documents == 162
    report = load_items(tmp_path / "report.jsonl")
    kinds = Counter(
        (i.lang, "answerable" if i.answerable else "swap" if i.id.endswith("-swap") else "holdout")
        for i in report
    )
    for lang in ("en", "zh"):  # en->en and zh->en
        assert (
            kinds[(lang, "answerable")] > 300
            and kinds[(lang, "swap")] > 100
            and kinds[(lang, "holdout")] > 100
        )

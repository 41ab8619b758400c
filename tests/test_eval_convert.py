"""Converting SQuAD-style benchmarks into a corpus folder and an eval JSONL file."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from bs4 import BeautifulSoup

from eval.convert import (
    check_parallel,
    convert_benchmark,
    convert_squad,
    document_id,
    find_datasets_dir,
    read_squad,
    render_document,
)
from eval.dataset import load_items
from eval.errors import ConversionError
from index.readers import read_document

REPO = Path(__file__).resolve().parents[1]
DATASETS = find_datasets_dir(REPO)


def qa(qid: str, question: str, *answers: str) -> dict[str, Any]:
    return {"id": qid, "question": question, "answers": [{"text": a, "answer_start": 0} for a in answers]}


def squad(contexts: list[list[tuple[str, list[dict[str, Any]]]]], titles: list[str]) -> dict[str, Any]:
    return {
        "version": "1.1",
        "data": [
            {"title": title, "paragraphs": [{"context": c, "qas": qas} for c, qas in paras]}
            for title, paras in zip(titles, contexts, strict=True)
        ],
    }


ZH = squad(
    [
        [
            ("黑豹队的防守只丢了 308分。", [qa("a1", "丢了多少分？", "308", "308", " 308分 ")]),
            ("标签 <b>粗体</b> & “引号”\n第二行。", [qa("a2", "有什么符号？", "&", "不在文中")]),
        ],
        [("丹佛野马队赢得了比赛。", [qa("b1", "谁赢了？", "丹佛野马队")])],
    ],
    ["Super_Bowl_50", "Denver: Broncos"],
)
EN = squad(
    [
        [
            ("The Panthers defense gave up just 308 points.", [qa("a1", "How many points?", "308")]),
            ("Tags <b>bold</b> & quotes.", [qa("a2", "Which symbol?", "&")]),
        ],
        [("The Denver Broncos won the game.", [qa("b1", "Who won?", "Denver Broncos")])],
    ],
    ["Super_Bowl_50", "Denver: Broncos"],
)


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_document_id_from_position() -> None:
    assert document_id("xquad-zh", 1) == "xquad-zh-0001"
    assert document_id("cmrc2018", 848) == "cmrc2018-0848"


def test_read_squad_numbers_paragraphs_in_order(tmp_path: Path) -> None:
    paragraphs = read_squad(write_json(tmp_path / "zh.json", ZH))
    assert [(p.number, p.article_index, p.paragraph_index) for p in paragraphs] == [
        (1, 0, 0),
        (2, 0, 1),
        (3, 1, 0),
    ]
    # Stripped and de-duplicated in order.
    assert paragraphs[0].questions[0].answers == ("308", "308分")


def test_render_document_escapes_html_and_quotes_the_title() -> None:
    text = render_document("Denver: Broncos #1", "a <b> & c")
    assert text == "---\ntitle: 'Denver: Broncos #1'\n---\n<p>a &lt;b&gt; &amp; c</p>\n"
    front = text.split("---")[1]
    assert yaml.safe_load(front) == {"title": "Denver: Broncos #1"}
    assert BeautifulSoup(text.split("---", 2)[2], "html.parser").p.get_text() == "a <b> & c"  # type: ignore[union-attr]


def test_convert_squad_writes_documents_and_questions(tmp_path: Path) -> None:
    out = tmp_path / "out"
    stats = convert_squad(write_json(tmp_path / "zh.json", ZH), out, "zh", "xquad-zh")
    assert (stats.documents, stats.questions, stats.questions_by_lang, stats.dropped_answers) == (
        3,
        3,
        {"zh": 3},
        1,
    )
    assert sorted(p.name for p in (out / "documents").iterdir()) == [
        "xquad-zh-0001.txt",
        "xquad-zh-0002.txt",
        "xquad-zh-0003.txt",
    ]
    assert "CC BY-SA 4.0" in (out / "NOTICE.txt").read_text(encoding="utf-8")

    # The indexer reads each file back as one paragraph with the original text.
    doc = read_document(out / "documents" / "xquad-zh-0002.txt", out / "documents")
    assert doc.id == "xquad-zh-0002"
    assert doc.title == "Super_Bowl_50 #2"
    assert doc.paragraphs == ("标签 <b>粗体</b> & “引号” 第二行。",)
    assert (
        read_document(out / "documents" / "xquad-zh-0003.txt", out / "documents").title
        == "Denver: Broncos #1"
    )

    items = load_items(out / "questions.jsonl")
    assert [(i.id, i.lang, i.answers, i.gold_passages, i.gold_quotes, i.answerable) for i in items] == [
        ("zh-a1", "zh", ("308", "308分"), ("xquad-zh-0001:1",), (), True),
        ("zh-a2", "zh", ("&",), ("xquad-zh-0002:1",), (), True),  # "不在文中" is not in the context
        ("zh-b1", "zh", ("丹佛野马队",), ("xquad-zh-0003:1",), (), True),
    ]


def test_parallel_questions_point_at_the_same_documents(tmp_path: Path) -> None:
    zh, en = write_json(tmp_path / "zh.json", ZH), write_json(tmp_path / "en.json", EN)
    stats = convert_squad(zh, tmp_path / "out", "zh", "xquad-zh", parallel_questions=[(en, "en")])
    assert stats.questions_by_lang == {"zh": 3, "en": 3}
    items = load_items(tmp_path / "out" / "questions.jsonl")
    gold = {i.id: i.gold_passages for i in items}
    assert gold["en-a2"] == gold["zh-a2"] == ("xquad-zh-0002:1",)
    assert gold["en-b1"] == gold["zh-b1"] == ("xquad-zh-0003:1",)
    assert len(list((tmp_path / "out" / "documents").iterdir())) == 3  # only the zh corpus
    # English questions over Chinese text: the Chinese answers (quoted) and the English ones (written).
    by_id = {i.id: i for i in items}
    assert by_id["en-b1"].answers == ("丹佛野马队",)
    assert by_id["en-b1"].question_lang_answers == ("Denver Broncos",)
    assert by_id["en-a1"].question_lang_answers == ("308",)
    assert all(by_id[f"zh-{k}"].question_lang_answers == () for k in ("a1", "a2", "b1"))


def test_refuses_files_that_are_not_parallel(tmp_path: Path) -> None:
    shifted = squad([[("x", [])], [("y", []), ("z", [])]], ["A", "B"])  # 1 + 2 paragraphs, not 2 + 1
    zh, other = write_json(tmp_path / "zh.json", ZH), write_json(tmp_path / "other.json", shifted)
    with pytest.raises(ConversionError, match="are not parallel"):
        convert_squad(zh, tmp_path / "out", "zh", "x", parallel_questions=[(other, "en")])
    with pytest.raises(ConversionError, match=r"a\.json \(3 paragraphs\) and b\.json \(3 paragraphs\)"):
        check_parallel(read_squad(zh), read_squad(other), ("a.json", "b.json"))


def test_refuses_a_non_empty_output_unless_overwrite(tmp_path: Path) -> None:
    zh = write_json(tmp_path / "zh.json", ZH)
    out = tmp_path / "out"
    convert_squad(zh, out, "zh", "old")
    with pytest.raises(ConversionError, match="already holds 3 file"):
        convert_squad(zh, out, "zh", "new")
    convert_squad(zh, out, "zh", "new", overwrite=True)
    assert sorted(p.name for p in (out / "documents").iterdir())[0] == "new-0001.txt"
    (out / "documents" / "keep.md").write_text("mine", encoding="utf-8")
    with pytest.raises(ConversionError, match="keep.md, which is not an article file"):
        convert_squad(zh, out, "zh", "new", overwrite=True)
    assert (out / "documents" / "keep.md").exists()


def test_bad_inputs_have_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="benchmark file not found"):
        read_squad(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(ConversionError, match="not valid JSON"):
        read_squad(tmp_path / "broken.json")
    with pytest.raises(ConversionError, match="not SQuAD-style JSON"):
        read_squad(write_json(tmp_path / "odd.json", {"data": [{"title": "t"}]}))
    with pytest.raises(ConversionError, match="no gold answer occurs in the context"):
        convert_squad(
            write_json(tmp_path / "q.json", squad([[("ctx", [qa("q", "?", "zzz")])]], ["t"])),
            tmp_path / "out",
            "zh",
            "p",
        )
    with pytest.raises(ConversionError, match="unknown benchmark 'squad'; choose one of xquad-zh, xquad-en"):
        convert_benchmark("squad", tmp_path, tmp_path / "out")
    with pytest.raises(ConversionError, match="needs .*xquad.zh.json; point datasets_dir"):
        convert_benchmark("xquad-zh", tmp_path, tmp_path / "out")


@pytest.mark.skipif(DATASETS is None, reason="shared datasets folder (../shared/datasets) is absent")
@pytest.mark.parametrize(
    ("name", "documents", "by_lang"),
    [
        ("xquad-zh", 240, {"zh": 1190, "en": 1190}),
        ("xquad-en", 240, {"en": 1190}),
        ("cmrc2018", 848, {"zh": 3219}),
    ],
)
def test_real_benchmarks_have_the_published_counts(
    tmp_path: Path, name: str, documents: int, by_lang: dict[str, int]
) -> None:
    assert DATASETS is not None
    stats = convert_benchmark(name, DATASETS, tmp_path)
    assert stats.documents == documents
    assert stats.questions_by_lang == by_lang
    files = sorted((tmp_path / "documents").iterdir())
    assert len(files) == documents
    assert files[0].name == f"{name}-0001.txt"
    items = load_items(tmp_path / "questions.jsonl")
    assert Counter(i.lang for i in items) == by_lang
    doc_ids = {f.stem for f in files}
    assert all(i.gold_passages[0].removesuffix(":1") in doc_ids for i in items)
    if name == "xquad-zh":
        # Cross-lingual: translated questions share an original id and a gold document.
        gold = {i.id: i.gold_passages for i in items}
        assert all(gold[f"en-{i.id[3:]}"] == i.gold_passages for i in items if i.lang == "zh")


def test_holdout_leaves_paragraphs_out_and_makes_their_questions_unanswerable(tmp_path: Path) -> None:
    zh, en = write_json(tmp_path / "zh.json", ZH), write_json(tmp_path / "en.json", EN)
    stats = convert_squad(
        zh, tmp_path / "out", "zh", "xquad-zh", parallel_questions=[(en, "en")], holdout_every=2
    )
    assert stats.documents == 2  # paragraph 2 of 3 is left out
    docs = sorted(p.stem for p in (tmp_path / "out" / "documents").iterdir())
    assert docs == ["xquad-zh-0001", "xquad-zh-0003"]
    items = {i.id: i for i in load_items(tmp_path / "out" / "questions.jsonl")}
    for qid in ("zh-a2", "en-a2"):  # the questions about the missing paragraph
        assert not items[qid].answerable
        assert items[qid].answers == items[qid].gold_passages == ()
    assert items["en-b1"].answerable and items["en-b1"].gold_passages == ("xquad-zh-0003:1",)
    assert items["en-b1"].answers == ("丹佛野马队",)  # the corpus-language answer, as without holdout
    assert "left out" in (tmp_path / "out" / "NOTICE.txt").read_text(encoding="utf-8")


@pytest.mark.skipif(DATASETS is None, reason="shared datasets folder (../shared/datasets) is absent")
def test_real_holdout_benchmark_leaves_out_paragraphs_and_articles(tmp_path: Path) -> None:
    assert DATASETS is not None
    stats = convert_benchmark("xquad-zh-holdout", DATASETS, tmp_path)
    # 240 paragraphs in 48 articles of 5: articles 8, 16, ..., 48 (30 paragraphs) and every 4th
    # paragraph of the rest (48) are left out.
    assert stats.documents == 162
    items = load_items(tmp_path / "questions.jsonl")
    unanswerable = [i for i in items if not i.answerable]
    assert Counter(i.lang for i in unanswerable) == {"zh": 383, "en": 383}
    doc_ids = {f.stem for f in (tmp_path / "documents").iterdir()}
    assert all(i.gold_passages[0].removesuffix(":1") in doc_ids for i in items if i.answerable)


def test_mixed_corpus_alternates_articles_and_answers_in_the_gold_language(tmp_path: Path) -> None:
    zh, en = write_json(tmp_path / "zh.json", ZH), write_json(tmp_path / "en.json", EN)
    stats = convert_squad(
        zh, tmp_path / "out", "zh", "mixed", parallel_questions=[(en, "en")], alternate_corpus=[(en, "en")]
    )
    assert stats.documents == 3 and stats.questions_by_lang == {"zh": 3, "en": 3}
    docs = tmp_path / "out" / "documents"
    # Article 0 (paragraphs 1-2) in Chinese, article 1 (paragraph 3) in English.
    assert "黑豹队" in (docs / "mixed-0001.txt").read_text(encoding="utf-8")
    assert "Denver Broncos" in (docs / "mixed-0003.txt").read_text(encoding="utf-8")
    items = {i.id: i for i in load_items(tmp_path / "out" / "questions.jsonl")}
    # Both languages' questions point at the one gold paragraph; answers are in its language.
    assert items["zh-a1"].answers == items["en-a1"].answers == ("308", "308分")
    assert items["zh-b1"].answers == items["en-b1"].answers == ("Denver Broncos",)
    assert items["zh-b1"].gold_passages == items["en-b1"].gold_passages == ("mixed-0003:1",)
    # The question's own answers where its gold paragraph is in the other language.
    assert items["en-a1"].question_lang_answers == ("308",) and items["zh-a1"].question_lang_answers == ()
    assert items["zh-b1"].question_lang_answers == ("丹佛野马队",)
    assert items["en-b1"].question_lang_answers == ()


def test_parallel_questions_alone(tmp_path: Path) -> None:
    zh, en = write_json(tmp_path / "zh.json", ZH), write_json(tmp_path / "en.json", EN)
    stats = convert_squad(
        en, tmp_path / "out", "en", "xq", parallel_questions=[(zh, "zh")], own_questions=False
    )
    assert stats.questions_by_lang == {"zh": 3}
    items = {i.id: i for i in load_items(tmp_path / "out" / "questions.jsonl")}
    assert items["zh-b1"].answers == ("Denver Broncos",)  # the English corpus's answer
    assert items["zh-b1"].question_lang_answers == ("丹佛野马队",)


@pytest.mark.skipif(DATASETS is None, reason="shared datasets folder (../shared/datasets) is absent")
def test_real_mixed_and_cross_benchmarks(tmp_path: Path) -> None:
    assert DATASETS is not None
    mixed = convert_benchmark("xquad-mixed", DATASETS, tmp_path / "mixed")
    assert mixed.documents == 240 and mixed.questions_by_lang == {"zh": 1190, "en": 1190}
    texts = [p.read_text(encoding="utf-8") for p in sorted((tmp_path / "mixed" / "documents").iterdir())]
    chinese = sum(1 for t in texts if any("\u4e00" <= c <= "\u9fff" for c in t.split("---", 2)[2]))
    assert chinese == 120  # the even-indexed articles' paragraphs
    cross = convert_benchmark("xquad-en-zhq", DATASETS, tmp_path / "cross")
    assert cross.documents == 240 and cross.questions_by_lang == {"zh": 1190}

from pathlib import Path

import pytest

from index.chunk import chunk_document, split_paragraph, split_sentences
from index.errors import EmptyCorpusError, UnreadableDocumentError
from index.ingest import scan_folder, update_index
from index.readers import read_document
from index.types import Block, Document
from tests.conftest import SEED_DOCS, SEED_ID
from tests.fakes import HashingEncoder


def test_seed_article_is_parsed_into_paragraphs_with_metadata() -> None:
    doc = read_document(SEED_DOCS / f"{SEED_ID}.txt", SEED_DOCS)
    assert doc.id == SEED_ID
    assert doc.title == "《安全应急数智化转型白皮书》发布"
    assert doc.date == "2022-01-28 19:44:08 +0800"
    assert doc.categories == ("dongfangwang",) and doc.tags == ("东方网新闻",)
    assert len(doc.paragraphs) == 17
    assert doc.paragraphs[1].startswith("2021年夏天，河南遭遇罕见特大暴雨。")
    assert "<" not in "".join(doc.paragraphs[:16])
    # The source line and the source URL form the last passage; navigation links are dropped.
    assert doc.source_url == "http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202201282266100668"
    assert doc.paragraphs[-1] == f"（文章来源：东方网） {doc.source_url}"
    assert not any("返回首页" in p for p in doc.paragraphs)


def test_html_entities_are_unescaped_and_tags_dropped(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text(
        '---\ntitle: "T &amp; U"\n---\n<p>A &amp; B <b>bold</b>&nbsp;x</p><p>  </p><p>第二段&lt;</p>', "utf-8"
    )
    doc = read_document(f, tmp_path)
    assert doc.title == "T &amp; U"  # front matter is YAML, not HTML
    assert doc.paragraphs == ("A & B bold x", "第二段<")


def test_plain_markdown_splits_on_blank_lines(tmp_path: Path) -> None:
    f = tmp_path / "notes.md"
    f.write_text("# Notes\n\nFirst para\nstill first.\n\n\nSecond para.\n", "utf-8")
    doc = read_document(f, tmp_path)
    assert doc.title == "Notes"
    assert doc.paragraphs == ("First para still first.", "Second para.")


def test_invalid_front_matter_is_refused_with_its_reason(tmp_path: Path) -> None:
    f = tmp_path / "bad.txt"
    f.write_text("---\ntitle: [unclosed\n---\n<p>x</p>", "utf-8")
    with pytest.raises(UnreadableDocumentError, match=r"^the front matter is not valid YAML") as info:
        read_document(f, tmp_path)
    assert info.value.code == "invalid_front_matter"
    # The ingest skips the file instead of stopping, and says why.
    report = update_index(tmp_path, tmp_path.parent / f"{tmp_path.name}-index", HashingEncoder())
    assert report.documents == 0
    assert [(s.path, s.code) for s in report.skipped] == [("bad.txt", "invalid_front_matter")]


def test_a_missing_documents_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EmptyCorpusError, match="does not exist"):
        scan_folder(tmp_path / "missing")


def test_sentences_split_at_chinese_and_english_ends() -> None:
    text = "亿元GDP事故死亡率从1.33%降至0.03%。二是“双下降”！Hello world. See http://a.cn/x?y=1 ok"
    parts = [text[s:e] for s, e in split_sentences(text)]
    assert parts == [
        "亿元GDP事故死亡率从1.33%降至0.03%。",
        "二是“双下降”！",
        "Hello world.",
        "See http://a.cn/x?y=1 ok",
    ]
    # "!" or "?" before a lowercase word ends no sentence (a Rust macro's name "format!")
    text = "The format! macro returns a String. Is it fast? Yes! It works; then it stops."
    parts = [text[s:e] for s, e in split_sentences(text)]
    assert parts == [
        "The format! macro returns a String.",
        "Is it fast?",
        "Yes!",
        "It works;",
        "then it stops.",
    ]


def test_long_paragraph_is_split_at_sentence_ends_with_offsets() -> None:
    text = "第一句话比较短。" * 5 + "A longer English sentence here. " * 3
    spans = split_paragraph(text, len, 40)
    assert len(spans) > 1
    for s, e in spans:
        assert e - s <= 40
        assert text[s:e].strip() == text[s:e]
    joined = "".join(text[s:e] for s, e in spans)
    assert joined.replace(" ", "") == text.replace(" ", "")
    # A sentence with no end mark longer than the window is still cut to fit.
    assert all(e - s <= 10 for s, e in split_paragraph("无标点" * 20, len, 10))


def test_passage_ids_and_offsets_are_stable() -> None:
    doc = Document(
        id="d",
        title="t",
        blocks=(
            Block("短段落。", ("第一节",)),
            Block("长" * 30 + "。" + "句" * 30 + "。", ("第二节",), page=2),
        ),
    )
    first = chunk_document(doc, len, 40)
    again = chunk_document(doc, len, 40)
    assert first == again
    assert [p.id for p in first] == ["d:1", "d:2.1", "d:2.2"]
    for p in first:
        assert doc.paragraphs[p.paragraph - 1][p.start : p.end] == p.text
        assert p.section == doc.blocks[p.paragraph - 1].section and p.lang == "zh"
    assert [p.page for p in first] == [None, 2, 2]


def test_passages_carry_the_code_spans_of_their_part_of_the_paragraph() -> None:
    code = "\n".join(f"x{i} = {i}" for i in range(12))
    text = f"先看例子：\n{code}\n说明。说明。"
    cs, ce = text.index(code), text.index(code) + len(code)
    doc = Document(id="d", title="t", blocks=(Block(text, code=((cs, ce),)),))
    passages = chunk_document(doc, len, 40)
    assert len(passages) > 2
    covered = {p.start + i for p in passages for s, e in p.code for i in range(s, e)}
    in_passages = {i for p in passages for i in range(p.start, p.end)}
    assert covered == {i for i in range(cs, ce)} & in_passages  # every code character, no other
    assert passages[0].text.startswith("先看例子：") and passages[0].code[0][0] == len("先看例子：\n")
    assert passages[-1].text.endswith("说明。说明。")


def test_each_line_of_a_list_or_table_is_a_sentence_of_its_own() -> None:
    # Readers reflow wrapped lines, so a line break left in a paragraph separates list items or table
    # rows: an answer quotes the one item, not the whole list.
    text = "Polls every 30 seconds\nStores readings for 400 days. Exports CSV\n\n  电费账单\n身份证复印件。"
    parts = [text[s:e] for s, e in split_sentences(text)]
    assert parts == [
        "Polls every 30 seconds",
        "Stores readings for 400 days.",
        "Exports CSV",
        "电费账单",
        "身份证复印件。",
    ]


def test_a_code_block_is_one_sentence() -> None:
    # Its lines ("rust:", "- stable") say nothing alone: an answer quotes the block whole.
    code = "language: rust\nrust:\n  - stable\nscript:\n  - cargo clippy"
    text = f"Add Clippy to Travis CI. Use this file:\n{code}\nThen push. 构建会失败。"
    start = text.index(code)
    parts = [text[s:e] for s, e in split_sentences(text, [(start, start + len(code))])]
    assert parts == ["Add Clippy to Travis CI.", "Use this file:", code, "Then push.", "构建会失败。"]
    assert len(split_sentences(text)) == 9  # without the span, one sentence per line


def test_an_end_mark_inside_brackets_ends_no_sentence() -> None:
    text = (
        "卫视卡式台（，英文全称为；2012年前身为卫视电影2台）是一条电影频道。香港版本收看；东南亚版本收看。"
        "The tower (see the map; it is 34 m tall.) stands here. A stray ( bracket; ends one."
    )
    parts = [text[s:e] for s, e in split_sentences(text)]
    assert parts == [
        "卫视卡式台（，英文全称为；2012年前身为卫视电影2台）是一条电影频道。",
        "香港版本收看；",
        "东南亚版本收看。",
        "The tower (see the map; it is 34 m tall.) stands here.",
        "A stray ( bracket;",  # never closed: a stray character, not an aside
        "ends one.",
    ]
    aside = "（" + "很长的括注；" * 40 + "）完。"  # closes too far away to be an aside
    assert len(split_sentences(aside)) > 2


def test_a_list_number_or_abbreviation_starts_a_sentence_rather_than_ending_one() -> None:
    text = "1. Inspect the site daily. 2. File the report. Fig. 3 shows the layout.\n(b)\nNext line."
    parts = [text[s:e] for s, e in split_sentences(text)]
    assert parts == [
        "1. Inspect the site daily.",
        "2. File the report.",
        "Fig. 3 shows the layout.",
        "(b)",  # a line of its own stays one: line breaks separate list items
        "Next line.",
    ]


def test_a_period_before_a_lowercase_word_ends_no_sentence() -> None:
    text = "The hotline is open from 8 a.m. to 8 p.m. on working days. Use e.g. the app. 或拨打95598。"
    parts = [text[s:e] for s, e in split_sentences(text)]
    assert parts == [
        "The hotline is open from 8 a.m. to 8 p.m. on working days.",
        "Use e.g. the app.",
        "或拨打95598。",
    ]

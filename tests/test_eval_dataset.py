"""Loading eval JSONL files and judging passage relevance."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from eval.dataset import EvalItem, is_relevant, item_to_json, load_items, parse_lines, write_items
from eval.errors import EvalDataError

GOOD = {
    "id": "q1",
    "lang": "zh",
    "question": "盒马免费提供了多少件生活日用品？",
    "answers": ["45万件"],
    "gold_quotes": ["盒马7000个社区免费提供45万件"],
    "answerable": True,
}


def line(**changes: object) -> str:
    obj = {**GOOD, **changes}
    return json.dumps({k: v for k, v in obj.items() if v is not ...}, ensure_ascii=False)


BASE = EvalItem(
    id="q", lang="en", question="?", answers=("a",), gold_quotes=(), gold_passages=(), answerable=True
)


def item(**changes: Any) -> EvalItem:
    return replace(BASE, **changes)


def test_parses_a_valid_line_into_a_frozen_item() -> None:
    [parsed] = parse_lines([line()])
    assert parsed == EvalItem(
        id="q1",
        lang="zh",
        question="盒马免费提供了多少件生活日用品？",
        answers=("45万件",),
        gold_quotes=("盒马7000个社区免费提供45万件",),
        gold_passages=(),
        answerable=True,
    )
    with pytest.raises(AttributeError):
        parsed.id = "other"  # type: ignore[misc]


def test_accepts_gold_passages_instead_of_quotes_and_skips_blank_lines() -> None:
    items = parse_lines(["", line(gold_quotes=..., gold_passages=["doc-1:1", "doc-2:3.1"]), "   "])
    assert items[0].gold_passages == ("doc-1:1", "doc-2:3.1")
    assert items[0].gold_quotes == ()


def test_unanswerable_item_with_empty_lists() -> None:
    [parsed] = parse_lines([line(answers=[], gold_quotes=[], answerable=False)])
    assert not parsed.answerable


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "seed.jsonl line 2: not valid JSON"),
        ("[1, 2]", "seed.jsonl line 2: expected a JSON object, got list"),
        (line(id=...), "seed.jsonl line 2: missing key(s) id"),
        (line(gold_quote=["x"]), "seed.jsonl line 2: unknown key(s) gold_quote"),
        (line(lang="fr"), "seed.jsonl line 2: 'lang' must be one of zh, en, got 'fr'"),
        (line(question="  "), "seed.jsonl line 2: 'question' must be a non-empty string"),
        (line(answerable="yes"), "seed.jsonl line 2: 'answerable' must be true or false"),
        (line(answers="45万件"), "seed.jsonl line 2: 'answers' must be a list of non-empty strings"),
        (line(gold_quotes=[1]), "seed.jsonl line 2: 'gold_quotes' must be a list of non-empty strings"),
        (line(answers=[]), "seed.jsonl line 2: answerable item 'q1' has no 'answers'"),
        (
            line(gold_quotes=[]),
            "seed.jsonl line 2: answerable item 'q1' needs 'gold_quotes' or 'gold_passages'",
        ),
        (line(answerable=False), "seed.jsonl line 2: unanswerable item 'q1' must have empty"),
        (
            line(answers=[], gold_quotes=[], answerable=False, question_lang_answers=["x"]),
            "seed.jsonl line 2: unanswerable item 'q1' must have empty",
        ),
        (
            line(question_lang_answers="450,000"),
            "seed.jsonl line 2: 'question_lang_answers' must be a list of non-empty strings",
        ),
        (line(gold_passages=["doc-1"]), "seed.jsonl line 2: 'gold_passages' entries must look like"),
        (line(id="q0"), "seed.jsonl line 2: duplicate id 'q0' (first used on line 1)"),
    ],
)
def test_malformed_lines_name_the_line(bad: str, message: str) -> None:
    with pytest.raises(EvalDataError) as info:
        parse_lines([line(id="q0"), bad], source="seed.jsonl")
    assert message in str(info.value)


def test_load_items_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(EvalDataError, match="eval set not found"):
        load_items(missing)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(EvalDataError, match="holds no questions"):
        load_items(empty)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(line() + "\n\n" + "{oops\n", encoding="utf-8")
    with pytest.raises(EvalDataError, match=r"bad\.jsonl line 3: not valid JSON"):
        load_items(bad)


def test_write_then_load_round_trips(tmp_path: Path) -> None:
    items = [
        item(id="a", lang="zh", question="问题", answers=("答",), gold_quotes=("答案",)),
        item(id="b", gold_passages=("doc:1",)),
        item(id="c", answers=(), answerable=False),
    ]
    path = tmp_path / "set.jsonl"
    write_items(path, items)
    assert load_items(path) == items
    assert "问题" in path.read_text(encoding="utf-8")  # written readable, not \u-escaped
    assert list(item_to_json(items[0])) == ["id", "lang", "question", "answers", "gold_quotes", "answerable"]
    assert item_to_json(items[1])["gold_passages"] == ["doc:1"]


def test_answers_in_the_questions_language_are_optional() -> None:
    """English gold answers of an English question over a Chinese passage (XQuAD's parallel answers); a
    file written before the key loads as before."""
    [old] = parse_lines([line(lang="en", question="How many items did Hema give away?")])
    assert old.question_lang_answers == ()
    assert "question_lang_answers" not in item_to_json(old)
    [cross] = parse_lines([line(lang="en", question="How many?", question_lang_answers=["450,000"])])
    assert cross.answers == ("45万件",) and cross.question_lang_answers == ("450,000",)
    assert parse_lines([json.dumps(item_to_json(cross))]) == [cross]
    assert list(item_to_json(cross))[-2:] == ["question_lang_answers", "answerable"]


def test_relevant_by_quote_after_collapsing_whitespace() -> None:
    quoted = item(gold_quotes=("new  generation\ninformation technology",))
    assert is_relevant(quoted, "any:9", "The  new generation information\n technology is here.")
    assert not is_relevant(quoted, "any:9", "A newgeneration information technology.")
    assert is_relevant(item(gold_quotes=("盒马7000个社区",)), "d:2", "阿里。盒马7000个社区免费提供")


def test_relevant_by_passage_id_or_its_split_parts() -> None:
    by_id = item(gold_passages=("doc-1:3",))
    assert is_relevant(by_id, "doc-1:3", "")
    assert is_relevant(by_id, "doc-1:3.2", "")
    assert not is_relevant(by_id, "doc-1:31", "")
    assert not is_relevant(by_id, "doc-1:4", "")
    assert not is_relevant(by_id, "doc-10:3", "")


def test_unanswerable_item_has_no_relevant_passage() -> None:
    assert not is_relevant(item(answers=(), answerable=False), "doc:1", "anything at all")

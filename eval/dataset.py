"""Eval sets: one JSON object per line, loaded into frozen ``EvalItem`` records.

Line format (keys beyond these are rejected, so a misspelt key cannot silently drop evidence)::

    {"id": "seed-zh-01", "lang": "zh", "question": "...", "answers": ["45万件"],
     "gold_quotes": ["盒马7000个社区免费提供45万件蔬菜"], "answerable": true}

``gold_passages`` (``["<document id>:<paragraph>"]``) may stand beside or instead of
``gold_quotes``. An answerable item needs at least one answer and at least one piece of evidence
(a quote or a passage id); an unanswerable item has all three lists empty.

``question_lang_answers`` (optional) are the gold answers in the question's language when the gold passage
is in another: ``answers`` are copied from the passage's text (what an extractive answer quotes), these are
what a generated answer, written in the question's language, states (XQuAD is parallel: an English question
over a Chinese paragraph has its English answers in xquad.en.json). Absent in older files: nothing changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.errors import EvalDataError

LANGS: tuple[str, ...] = ("zh", "en")

_REQUIRED_KEYS = ("id", "lang", "question", "answers", "answerable")
_OPTIONAL_KEYS = ("gold_quotes", "gold_passages", "question_lang_answers")
_PASSAGE_REF = re.compile(r"^\S+:\d+(\.\d+)?$")


@dataclass(frozen=True, slots=True)
class EvalItem:
    """One question with its gold answer spans and the evidence that makes a passage relevant."""

    id: str
    lang: str
    question: str
    answers: tuple[str, ...]
    gold_quotes: tuple[str, ...]
    gold_passages: tuple[str, ...]
    answerable: bool
    question_lang_answers: tuple[str, ...] = ()  # the answers in the question's language (see above)


def normalise_space(text: str) -> str:
    """Collapse every run of whitespace (including newlines and full-width spaces) to one space."""
    return " ".join(text.split())


def is_relevant(item: EvalItem, passage_id: str, passage_text: str) -> bool:
    """Whether a retrieved passage answers ``item``.

    True when the passage text contains any gold quote (both sides whitespace-normalised), or the
    passage id is a gold passage id or a split part of it (``gold + "."`` prefix, so ``doc:3``
    matches ``doc:3.2`` but not ``doc:31``). Unanswerable items have no relevant passages.
    """
    if passage_id in item.gold_passages or any(passage_id.startswith(g + ".") for g in item.gold_passages):
        return True
    if not item.gold_quotes:
        return False
    text = normalise_space(passage_text)
    return any(normalise_space(q) in text for q in item.gold_quotes)


def parse_item(obj: object, where: str) -> EvalItem:
    """Validate one decoded JSON value; ``where`` (e.g. ``"seed.jsonl line 3"``) prefixes errors."""
    if not isinstance(obj, dict):
        raise EvalDataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - set(_REQUIRED_KEYS) - set(_OPTIONAL_KEYS))
    if unknown:
        allowed = ", ".join(_REQUIRED_KEYS + _OPTIONAL_KEYS)
        raise EvalDataError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed keys are {allowed}")
    missing = [k for k in _REQUIRED_KEYS if k not in obj]
    if missing:
        raise EvalDataError(f"{where}: missing key(s) {', '.join(missing)}")

    item_id = _text(obj, "id", where)
    lang = _text(obj, "lang", where)
    if lang not in LANGS:
        raise EvalDataError(f"{where}: 'lang' must be one of {', '.join(LANGS)}, got {lang!r}")
    question = _text(obj, "question", where)
    answerable = obj["answerable"]
    if not isinstance(answerable, bool):
        raise EvalDataError(f"{where}: 'answerable' must be true or false, got {answerable!r}")
    answers = _texts(obj, "answers", where)
    quotes = _texts(obj, "gold_quotes", where)
    passages = _texts(obj, "gold_passages", where)
    question_lang_answers = _texts(obj, "question_lang_answers", where)
    bad_refs = [p for p in passages if not _PASSAGE_REF.match(p)]
    if bad_refs:
        raise EvalDataError(
            f"{where}: 'gold_passages' entries must look like '<document id>:<paragraph>', "
            f"got {bad_refs[0]!r}"
        )
    if answerable:
        if not answers:
            raise EvalDataError(f"{where}: answerable item {item_id!r} has no 'answers'")
        if not quotes and not passages:
            raise EvalDataError(
                f"{where}: answerable item {item_id!r} needs 'gold_quotes' or 'gold_passages'"
            )
    elif answers or quotes or passages or question_lang_answers:
        raise EvalDataError(
            f"{where}: unanswerable item {item_id!r} must have empty 'answers', 'gold_quotes', "
            "'gold_passages' and 'question_lang_answers'"
        )
    return EvalItem(
        id=item_id,
        lang=lang,
        question=question,
        answers=answers,
        gold_quotes=quotes,
        gold_passages=passages,
        answerable=answerable,
        question_lang_answers=question_lang_answers,
    )


def parse_lines(lines: Iterable[str], source: str = "<input>") -> list[EvalItem]:
    """Parse JSONL text lines (blank lines are skipped); errors name ``source`` and the 1-based line."""
    items: list[EvalItem] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source} line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalDataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
        item = parse_item(obj, where)
        if item.id in seen:
            raise EvalDataError(f"{where}: duplicate id {item.id!r} (first used on line {seen[item.id]})")
        seen[item.id] = number
        items.append(item)
    return items


def load_items(path: str | Path) -> list[EvalItem]:
    """Load and validate an eval JSONL file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise EvalDataError(f"eval set not found: {path}") from exc
    except UnicodeDecodeError as exc:
        raise EvalDataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    items = parse_lines(text.splitlines(), source=str(path))
    if not items:
        raise EvalDataError(f"{path}: holds no questions")
    return items


def item_to_json(item: EvalItem) -> dict[str, Any]:
    """The JSONL object for ``item``; ``gold_passages`` and ``question_lang_answers`` are written only when
    present."""
    obj: dict[str, Any] = {
        "id": item.id,
        "lang": item.lang,
        "question": item.question,
        "answers": list(item.answers),
        "gold_quotes": list(item.gold_quotes),
    }
    if item.gold_passages:
        obj["gold_passages"] = list(item.gold_passages)
    if item.question_lang_answers:
        obj["question_lang_answers"] = list(item.question_lang_answers)
    obj["answerable"] = item.answerable
    return obj


def write_items(path: str | Path, items: Sequence[EvalItem]) -> None:
    """Write ``items`` as UTF-8 JSONL (non-ASCII kept readable), one object per line."""
    with Path(path).open("w", encoding="utf-8", newline="\n") as f:
        for item in items:
            f.write(json.dumps(item_to_json(item), ensure_ascii=False) + "\n")


def _text(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj[key]
    if not isinstance(value, str) or not value.strip():
        raise EvalDataError(f"{where}: {key!r} must be a non-empty string, got {value!r}")
    return value


def _texts(obj: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise EvalDataError(f"{where}: {key!r} must be a list of non-empty strings, got {value!r}")
    return tuple(value)

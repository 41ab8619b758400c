"""Chunking: one passage per paragraph; paragraphs over the model's window split at sentence ends.

Pure functions. Every passage keeps ``start``/``end`` offsets into its original paragraph.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from index.lexical import script_of
from index.types import Document, Passage

LANG_OF_SCRIPT = {"han": "zh", "latin": "en"}


_ADDRESS = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.)\S+|[\w.+-]+@[\w-]+\.[\w.]+", re.IGNORECASE)


def language_of(text: str) -> str:
    """A passage's language as its script tells: "zh" (Han), "en" (Latin) or "und". Web and mail
    addresses are Latin in every language, so they do not count."""
    return LANG_OF_SCRIPT.get(script_of(_ADDRESS.sub(" ", text)), "und")


TokenCounter = Callable[[str], int]

# A sentence ends at a CJK end mark (。！？；…), or at a Latin ";" followed by whitespace, or at a Latin
# "!", "?" or "." followed by whitespace or the end of the text (so "1.33%" and URLs with ?query stay whole),
# but not by a lowercase word (so "8 a.m. to 8 p.m.", "e.g. the" and "The format! macro works ..." stay
# whole: an English sentence starts with a capital); closing quotes/brackets stay with their sentence.
_SENTENCE_END = re.compile(
    r"(?:[。！？；]+|…+|;+(?=\s|$)|(?:[!?]+|\.)(?=\s*$|\s+(?![a-z])))[”’\"'」』）)\]】]*",
)
_OPENING = {"（": "）", "(": ")", "【": "】", "[": "]", "〔": "〕"}
MAX_BRACKETED = 200  # characters: a longer "bracketed" stretch is a stray bracket, not an aside
_CLAUSE_END = re.compile(r"[，,、：:]")
_LINE_BREAK = re.compile(r"\n")
# A "sentence" that is only a list number or a short abbreviation ("1.", "(b)", "IV.", "No.", "Fig.").
_ENUMERATOR = re.compile(r"\(?(?:\d{1,3}|[A-Za-z]{1,4})[.)]")


def same_text_key(text: str) -> str:
    """``text`` without its whitespace: two copies of one text compare equal however they were spaced (a
    manual's PDF puts spaces around quotes and between CJK and Latin letters where its HTML has none)."""
    return "".join(text.split())


def split_sentences(text: str, code: Sequence[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` covering ``text``; surrounding whitespace is excluded.

    A line break also ends a sentence: readers reflow wrapped lines, so the breaks left in a paragraph
    are the lines of a list or a table (an item, a row), each a unit of its own that an answer can quote
    without the rest of the list. A ``code`` span (a code block, ``Passage.code``) is one unit: its lines
    ("rust:", "- stable") say nothing alone, and an answer quotes the block whole."""
    if code:
        parts: list[tuple[int, int]] = []
        at = 0
        for cs, ce in sorted(code):
            parts += [(at + s, at + e) for s, e in split_sentences(text[at:cs])]
            parts += _trimmed(text, cs, ce)
            at = max(at, ce)
        return parts + [(at + s, at + e) for s, e in split_sentences(text[at:])]
    spans: list[tuple[int, int]] = []
    start = 0
    inside = _bracketed(text)
    for m in _SENTENCE_END.finditer(text):
        if m.start() in inside:
            continue
        spans.append((start, m.end()))
        start = m.end()
    spans.append((start, len(text)))
    spans = [line for s, e in spans for line in _lines_of(text, s, e)]
    out: list[tuple[int, int]] = []
    for s, e in (trimmed for span in spans for trimmed in _trimmed(text, *span)):
        if out and _ENUMERATOR.fullmatch(text, *out[-1]) and "\n" not in text[out[-1][1] : s]:
            out[-1] = (out[-1][0], e)  # "1." or "Fig." ends no sentence: it starts the next one
        else:
            out.append((s, e))
    return out


def _trimmed(text: str, s: int, e: int) -> list[tuple[int, int]]:
    """``(s, e)`` without surrounding whitespace, or nothing when only whitespace."""
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return [(s, e)] if e > s else []


def _bracketed(text: str) -> set[int]:
    """Positions inside brackets that close within ``MAX_BRACKETED`` characters: an end mark there ends no
    sentence ("卫视卡式台（，英文全称为；2012年前身为卫视电影2台）是..." is one sentence; "(see below; it is)"
    too). Brackets that never close, or close too far away, are taken for stray characters."""
    inside: set[int] = set()
    opened: list[tuple[str, int]] = []
    for i, c in enumerate(text):
        if c in _OPENING:
            opened.append((_OPENING[c], i))
        elif opened and c == opened[-1][0]:
            _, start = opened.pop()
            if not opened and i - start <= MAX_BRACKETED:
                inside.update(range(start + 1, i))
        elif c == "\n":
            opened.clear()  # a bracket never spans a line break (list items, table rows)
    return inside


def _lines_of(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The spans of the lines of ``text[start:end]`` (ends excluding the line break)."""
    out = []
    for m in _LINE_BREAK.finditer(text, start, end):
        out.append((start, m.start()))
        start = m.end()
    out.append((start, end))
    return out


def _hard_split(
    text: str, start: int, end: int, count: TokenCounter, max_tokens: int
) -> list[tuple[int, int]]:
    """Split one over-long sentence at clause marks, else by characters, so each piece fits."""
    if count(text[start:end]) <= max_tokens:
        return [(start, end)]
    cuts = [m.end() + start for m in _CLAUSE_END.finditer(text[start:end]) if m.end() + start < end]
    pieces: list[tuple[int, int]] = []
    s = start
    for c in [*cuts, end]:
        pieces.append((s, c))
        s = c
    if len(pieces) == 1:  # no clause marks: halve
        mid = (start + end) // 2
        pieces = [(start, mid), (mid, end)]
    out: list[tuple[int, int]] = []
    for s, e in _pack(text, pieces, count, max_tokens):
        if count(text[s:e]) > max_tokens and e - s > 1:
            mid = (s + e) // 2
            out.extend(_hard_split(text, s, mid, count, max_tokens))
            out.extend(_hard_split(text, mid, e, count, max_tokens))
        else:
            out.append((s, e))
    return out


def _pack(
    text: str, spans: Iterable[tuple[int, int]], count: TokenCounter, max_tokens: int
) -> list[tuple[int, int]]:
    """Greedily merge consecutive spans while the merged text fits in ``max_tokens``."""
    out: list[tuple[int, int]] = []
    for s, e in spans:
        if out and count(text[out[-1][0] : e]) <= max_tokens:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def split_paragraph(text: str, count: TokenCounter, max_tokens: int) -> list[tuple[int, int]]:
    """Spans of the parts of one paragraph; a single span when it fits."""
    if count(text) <= max_tokens:
        return [(0, len(text))]
    pieces: list[tuple[int, int]] = []
    for s, e in split_sentences(text):
        pieces.extend(_hard_split(text, s, e, count, max_tokens))
    return _pack(text, pieces, count, max_tokens)


def chunk_document(doc: Document, count: TokenCounter, max_tokens: int) -> list[Passage]:
    """Passages of one document, in order. Ids: ``<doc>:<paragraph>`` or ``<doc>:<paragraph>.<part>``."""
    passages: list[Passage] = []
    for number, block in enumerate(doc.blocks, start=1):
        text = block.text
        spans = split_paragraph(text, count, max_tokens)
        for part, (s, e) in enumerate(spans, start=1):
            part_no = part if len(spans) > 1 else 0
            code = tuple((max(cs, s) - s, min(ce, e) - s) for cs, ce in block.code if max(cs, s) < min(ce, e))
            passages.append(
                Passage(
                    id=Passage.make_id(doc.id, number, part_no),
                    document_id=doc.id,
                    title=doc.title,
                    paragraph=number,
                    text=text[s:e],
                    start=s,
                    end=e,
                    part=part_no,
                    section=block.section,
                    page=block.page,
                    lang=language_of(text[s:e]),
                    code=code,
                )
            )
    return passages


def chunk_documents(docs: Iterable[Document], count: TokenCounter, max_tokens: int) -> list[Passage]:
    return [p for doc in docs for p in chunk_document(doc, count, max_tokens)]

"""Readers: one per file format, each turning a file into a normalised ``Document`` (ingest stage
"file -> reader -> normalised document"). A reader knows nothing of chunks or vectors.

The reader is chosen by the file's suffix (``FORMATS``); text formats are decoded by ``decode_text``
(BOMs, UTF-8, BOM-less UTF-16, then charset-normalizer for GB18030/GBK, Big5 and the Western code pages).

* ``article``: the delivered article files: YAML front matter, then HTML ``<p>`` paragraphs (and the
  source line and URL as the last paragraph). A ``.txt`` with ``<p>`` paragraphs, or a ``.md``/``.html``
  with front matter and ``<p>`` paragraphs, is an article.
* ``markdown`` (``.md``, ``.markdown``, and ``.txt`` files with an ATX heading such as ``## Inverter``):
  parsed by markdown-it-py; headings become the ``section`` path of the blocks under them, lists and
  tables stay text (items and rows as lines, a row as ``header: value`` pairs, ``table_lines``), inline
  markup is removed.
* ``text``: paragraphs split on blank lines; a short unpunctuated line heads the paragraphs under it. A
  preformatted paragraph (a drawing, a drawn or column-aligned table, code set apart by its indentation or
  indented under a lead-in) keeps its lines and is a code block, as in the Markdown and HTML readers.
* ``html``: trafilatura extracts the main content (dropping navigation, footers, cookie banners) as
  Markdown, which the Markdown reader turns into sections; a page it finds nothing in gives its whole text.
* ``pdf``: pypdfium2's text layer, lines reflowed into paragraphs by their geometry, running headers,
  footers and page numbers dropped, ``page`` on every block; lines split into cells by wide gaps are
  table rows.
* ``docx``: python-docx; heading styles give sections and the title, tables become rows (``header:
  value`` pairs under a header row), list paragraphs are kept as lines.

Every refusal is an ``UnreadableDocumentError`` whose reason a user understands; no other exception
escapes ``read_document`` for bad input.
"""

from __future__ import annotations

import codecs
import ctypes
import functools
import io
import math
import re
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from bs4 import BeautifulSoup, Comment, Tag, XMLParsedAsHTMLWarning
from markdown_it import MarkdownIt
from markdown_it.token import Token

from index.errors import UnreadableDocumentError
from index.types import Block, Document

FORMATS: dict[str, str] = {
    ".txt": "text",
    ".text": "text",
    ".rst": "rst",  # reStructuredText, read by docutils
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_YAML_KEY_LINE = re.compile(r"\A\s*[A-Za-z_][\w-]*[ \t]*:")
_HAS_P = re.compile(r"<p[\s>]", re.IGNORECASE)
_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+\S", re.MULTILINE)
_URL_LINE = re.compile(r"^<?(https?://[^\s<>]+)>?$")
_NAV_LINK = re.compile(r"^\[[^\]]*\]\([^)]*\)")
_SOURCE_HINT = re.compile(r"来源|source", re.IGNORECASE)
_WS = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n\s*\n")
_RULE_LINE = re.compile(r"^[ \t]*([-*=_~])(?:[ \t]*\1){2,}[ \t]*$", re.MULTILINE)
_UNDERLINE = re.compile(r"^[ \t]*([-=~])\1{2,}[ \t]*$")  # under a heading: no spaces between the marks
# A line that ends so may be followed by a list item (a dash opening a line after other text is prose).
_ITEM_BEFORE = frozenset(".!?;:。！？；：)）")

# A block that is only a page number ("3", "- 3 -", "Page 3 of 10", "3/10", "第 3 页", "iv").
_PAGE_NUMBER = re.compile(
    r"^[\s\-–—·•|\[(（]*(?:page|p\.|pg\.?|第)?\s*(?:\d+|[ivxlcdm]+)\s*页?"
    r"\s*(?:(?:of|/|共)\s*\d+\s*页?)?[\s\-–—·•|\])）]*$",
    re.IGNORECASE,
)
# Legal boilerplate a page repeats under every article ("Copyright 2024 ACME", "© 2024", "All rights
# reserved", "版权所有"); only short blocks, so a paragraph that discusses copyright is kept.
_BOILERPLATE = re.compile(
    r"^\s*(?:copyright\s*(?:©|\(c\))?\s*(?:\d{4}|by\b)|©|\(c\)\s*\d{4})"
    r"|all rights reserved|版权所有|保留所有权利|版权归.{0,20}所有",
    re.IGNORECASE,
)
_BOILERPLATE_MAX_CHARS = 200
# A paragraph ending in a colon (full or half width) introduces the one after it.
LEAD_IN_ENDS = (":", "：")
# A sentence that says the next thing is what it speaks of ("You can do the following tasks.", "下面有一些
# 提醒。") introduces it as a colon does: forward references, a closed class in each language ("以下" only
# opening a clause, not "5岁以下"; "下面" as "the following", not "在桌子下面").
_FORWARD = re.compile(
    r"the following|as follows|\bbelow[.!]?$"
    r"|如下|下列|(?:^|[，。；：、\s])以下|下面(?:的|是|有|列|几|这|一些)",
    re.IGNORECASE,
)
_LAST_SENTENCE = re.compile(r"[^.!?。！？\n]*[.!?。！？]?\s*$")


def introduces_next(text: str) -> bool:
    """Whether ``text`` introduces what follows it: it ends in a colon (``LEAD_IN_ENDS``), or its last
    sentence refers forward (``_FORWARD``)."""
    text = text.rstrip()
    if text.endswith(LEAD_IN_ENDS):
        return True
    last = _LAST_SENTENCE.search(text)
    return bool(last and _FORWARD.search(last.group().strip()))


# A code block of at most this many lines (a command, a config file) is quoted whole; a longer one is a
# program, whose lines and comments ("// 1000 转换为 u8 -> 232") answer questions one by one.
MAX_CODE_UNIT_LINES = 20


def code_spans(code: str) -> tuple[tuple[int, int], ...]:
    """A code block's ``Block.code``: the whole block, one unit for the sentence splitter, when it has up to
    ``MAX_CODE_UNIT_LINES`` lines or is a drawing of any size (``_drawing``: a line of a diagram states
    nothing on its own); else none, and its lines are quoted one by one."""
    lines = code.splitlines()
    return ((0, len(code)),) if len(lines) <= MAX_CODE_UNIT_LINES or _drawing(lines) else ()


# Sentence-final punctuation: a PDF paragraph that ends a page without it continues on the next page.
_SENTENCE_FINAL = tuple('.!?。！？…:：;；"”’)）」』')


def document_id_for(path: Path, root: Path) -> str:
    """Stable id from the path relative to the corpus root, without suffix (``:`` is reserved)."""
    rel = path.relative_to(root).with_suffix("")
    return "/".join(rel.parts).replace(":", "_")


def clean(text: str) -> str:
    """Collapse runs of whitespace; strip the ends."""
    return _WS.sub(" ", text).strip()


def supported_suffixes() -> str:
    return ", ".join(sorted(FORMATS))


# ---------------------------------------------------------------------------------------------------
# The entry point


@dataclass(frozen=True, slots=True)
class _Content:
    """What a reader found; ``read_document`` adds the id and path, and the title's fallback."""

    format: str
    blocks: tuple[Block, ...]
    title: str | None = None
    encoding: str | None = None
    pages: int | None = None
    date: str | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    source_url: str | None = None


def read_document(path: Path, root: Path) -> Document:
    """Read one file into a normalised ``Document``; ``UnreadableDocumentError`` says why it cannot be."""
    suffix = path.suffix.lower()
    fmt = FORMATS.get(suffix)
    if fmt is None:
        kind = f"file type {suffix}" if suffix else "file type (no suffix)"
        raise UnreadableDocumentError(
            "unsupported_type", f"unsupported {kind} (supported: {supported_suffixes()})"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableDocumentError("unreadable", f"cannot read the file: {exc.strerror or exc}") from exc
    if not data.strip():
        raise UnreadableDocumentError("empty", "empty file")
    try:
        content = _READERS[fmt](data, suffix)
    except UnreadableDocumentError:
        raise
    except RecursionError as exc:
        raise UnreadableDocumentError("corrupt", f"the {fmt} file is nested too deeply to read") from exc
    except Exception as exc:  # a parser of untrusted input failed: the file is skipped, never the build
        raise UnreadableDocumentError(
            "corrupt", f"cannot read the {fmt} file: {type(exc).__name__}: {exc}"
        ) from exc
    title = content.title or path.stem
    blocks = _final_blocks(content.blocks, title)
    if not blocks:
        raise UnreadableDocumentError("empty", "no text to index: the file holds no paragraphs")
    return Document(
        id=document_id_for(path, root),
        title=title,
        blocks=blocks,
        path="/".join(path.relative_to(root).parts),
        format=content.format,
        encoding=content.encoding,
        pages=content.pages,
        date=content.date,
        categories=content.categories,
        tags=content.tags,
        source_url=content.source_url,
    )


def is_noise(text: str) -> bool:
    """A block with nothing to index: punctuation only, a bare page number, or short legal boilerplate."""
    if not any(ch.isalnum() for ch in text):
        return True
    if _PAGE_NUMBER.match(text):
        return True
    return len(text) <= _BOILERPLATE_MAX_CHARS and bool(_BOILERPLATE.search(text))


def _final_blocks(blocks: Iterable[Block], title: str) -> tuple[Block, ...]:
    """Drop noise blocks and blocks that repeat the title; drop the title from the front of section
    paths (it is shown with every citation already: a Markdown ``# Title`` or a DOCX Heading 1 equal
    to the title is no section)."""
    out = []
    for b in blocks:
        if not b.text or is_noise(b.text):
            continue
        section = b.section[1:] if b.section[:1] == (title,) else b.section
        out.append(Block(b.text, section, b.page, b.code))
    # A block that only repeats the title is the title line (a PDF's first line, an HTML page's
    # heading the extractor kept): dropped, unless it is all the file holds.
    rest = [b for b in out if b.text != title] or out
    return tuple(_join_lead_ins(_without_contents(rest)))


def _without_contents(blocks: Sequence[Block]) -> list[Block]:
    """``blocks`` without a table of contents: a list of two or more lines that are all headings of the
    document's own sections (perhaps numbered, perhaps with a colon), and the short line that heads it
    ("目录", "Contents"). Its lines answer nothing, and "目录" (also "directory") matched questions. A list
    that a sentence introduces ("It has three parts:") is kept: it says something of them."""
    headings = {_heading_key(h) for b in blocks for h in b.section}
    out: list[Block] = []
    for b in blocks:
        lines = b.text.split("\n")
        introduced = bool(out) and introduces_next(out[-1].text)  # "It has three parts:" over them
        if len(lines) >= 2 and not introduced and all(_heading_key(line) in headings for line in lines):
            if (
                out
                and out[-1].section == b.section
                and "\n" not in out[-1].text
                and _heading_like(out[-1].text)
            ):
                out.pop()
            continue
        out.append(b)
    return out


def _heading_key(text: str) -> str:
    """A heading as a table of contents writes it: without the colon or dots after it."""
    return clean(text).rstrip(":：. ")


def _join_lead_ins(blocks: Sequence[Block]) -> list[Block]:
    """A block that ends in a colon introduces the block after it ("The files created are:" above a
    list, "For example:" above code, "Header:" above a table), as does one whose last sentence refers
    forward ("用这个账户，你能够履行下面的系统管理任务。") above a block of lines: the two are one paragraph,
    joined at a line break, so the lead-in and what it introduces are retrieved and quoted together.
    So is a question on its own (``_lone_question``: an FAQ's "如何取消自动续费？") with the answer after it,
    unless that is another question (a list of questions stays one); alone, the question matched a
    question like it better than its answer did, and was quoted as the answer. Never across a section
    boundary."""
    out: list[Block] = []
    previous: Block | None = None  # the block before ``b`` as read, before any join
    for b in blocks:
        last = out[-1] if out else None
        # A forward reference ("the following tasks.") introduces a list, a table or code: a block of lines.
        if (
            last is not None
            and previous is not None
            and last.section == b.section
            and (
                last.text.endswith(LEAD_IN_ENDS)
                or ("\n" in b.text and introduces_next(last.text))
                or (_lone_question(previous.text) and not _lone_question(b.text))
            )
        ):
            shift = len(last.text) + 1
            code = (*last.code, *((s + shift, e + shift) for s, e in b.code))
            out[-1] = Block(f"{last.text}\n{b.text}", last.section, last.page, code)
        else:
            out.append(b)
        previous = b
    return out


_QUESTION_MAX_CHARS = 200
# An end mark inside a text: a Latin one before a space (not "v2.0", "Mr.Smith"), or a CJK one.
_INNER_END = re.compile(r"[.!?](?=\s)|[。！？]")


def _lone_question(text: str) -> bool:
    """A block that is one question and nothing else: one line, one sentence (no end mark before its last),
    ending in a question mark, perhaps inside emphasis or quotes ("**What does Premium cost?**" when the
    reader kept the marks), and short (``_QUESTION_MAX_CHARS``): an FAQ's question, or a heading written as
    a bold paragraph. A paragraph that ends with a question after statements is text of its own."""
    core = text.strip().rstrip("*_\"'”’」』)） ")
    return (
        0 < len(core) <= _QUESTION_MAX_CHARS
        and "\n" not in core
        and core.endswith(("?", "？"))
        and not _INNER_END.search(core[:-1])
    )


# ---------------------------------------------------------------------------------------------------
# Encodings

_BOMS = (  # UTF-32 before UTF-16: the UTF-32 LE BOM starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Decoders named by what charset-normalizer reports, and the name recorded. GBK and GB2312 are subsets of
# GB18030 (decoding their bytes with it gives the same text), so the family is read as GB18030.
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "hz": "gb18030"}
# The legacy encodings detected without a BOM (codec -> what a user calls it): Chinese (Simplified, and
# GBK/GB2312, its subsets; Traditional) and Western European text.
LEGACY_ENCODINGS = {"gb18030": "GB18030/GBK", "big5": "Big5", "cp1252": "Windows-1252/Latin-1"}
# C0 and C1 controls but tab, line breaks, form feed and \x1a (the DOS end-of-file mark some old files
# carry), surrogates and private-use characters.
_BAD_CHARS = re.compile("[\x00-\x08\x0e-\x19\x1b-\x1f\x7f-\x9f\ud800-\udfff\ue000-\uf8ff]")
_CN_SAMPLE = 20_000
_MAX_BAD_SHARE = 0.01
_DECLARED_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{2,40})""", re.I)


def decode_text(data: bytes, declared: str | None = None) -> tuple[str, str]:
    """Decode the bytes of a text file: ``(text, encoding name)``; the BOM is stripped.

    Order: a BOM (UTF-8/16/32) decides; NUL bytes mean UTF-16 without BOM if one of its byte orders
    reads as text (``_bomless_utf16``), else binary data; then UTF-8; then ``declared`` (an HTML page's
    ``<meta charset>``) if it decodes; then charset-normalizer among ``LEGACY_ENCODINGS``. Binary or
    undecodable data raises ``UnreadableDocumentError("undecodable", ...)``, never mojibake.
    """
    for bom, name in _BOMS:
        if data.startswith(bom):
            return _strict(data[len(bom) :], name), name
    if b"\x00" in data:
        utf16 = _bomless_utf16(data)
        if utf16 is None:
            raise UnreadableDocumentError("undecodable", "binary data, not text (it holds NUL bytes)")
        return _strict(data, utf16), utf16
    try:
        return _checked(data.decode("utf-8")), "utf-8"
    except UnicodeDecodeError:
        pass
    if declared:
        codec = _codec_name(declared)
        if codec is not None:
            try:
                return _checked(data.decode(codec)), codec
            except (UnicodeDecodeError, UnreadableDocumentError):
                pass  # a wrong declaration is common: detect instead
    return _detect(data)


def _codec_name(label: str) -> str | None:
    try:
        name = codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None
    if name in ("iso8859-1", "ascii"):  # as browsers do: the label means Windows-1252
        return "cp1252"
    return _SUPERSETS.get(name, name)


def _strict(data: bytes, name: str) -> str:
    try:
        return _checked(data.decode(name))
    except UnicodeDecodeError as exc:
        raise UnreadableDocumentError(
            "undecodable", f"cannot decode the text as {name.upper()} ({exc.reason} at byte {exc.start})"
        ) from exc


def _checked(text: str) -> str:
    """Refuse text with more than 1% control, surrogate, private-use or unassigned characters: binary
    data that happened to decode. (Unassigned code points are counted on an even sample of up to
    _CN_SAMPLE characters: a per-character lookup over a 5 MB file costs seconds.)"""
    if not text:
        return text
    bad = len(_BAD_CHARS.findall(text))
    step = max(1, len(text) // _CN_SAMPLE)
    sample = text[::step]
    unassigned = sum(1 for ch in sample if unicodedata.category(ch) == "Cn") * len(text) / len(sample)
    if bad + unassigned > _MAX_BAD_SHARE * len(text):
        raise UnreadableDocumentError(
            "undecodable", "binary data, not text (control or unassigned characters)"
        )
    return text


def _bomless_utf16(data: bytes) -> str | None:
    """UTF-16 without BOM. Text with line breaks, spaces or digits has NUL high bytes at every other
    offset (odd for LE, even for BE); Han characters have few NULs (only one in 256 a NUL low byte), so
    when the ratio does not settle it charset-normalizer judges the two decodings."""
    if len(data) % 2:
        return None
    even = data[0::2].count(0)
    odd = data[1::2].count(0)
    if odd >= 2 and even * 10 <= odd:
        return "utf-16-le"
    if even >= 2 and odd * 10 <= even:
        return "utf-16-be"
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=["utf_16_le", "utf_16_be"]).best()
    return _codec_name(best.encoding) if best is not None else None


def _detect(data: bytes) -> tuple[str, str]:
    """charset-normalizer, among the legacy encodings of the corpus's languages (measured by
    ``python -m bench.encodings``: unrestricted, it takes short Chinese text for Shift-JIS or a Western
    code page, and English for cp1250 or cp775)."""
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=list(LEGACY_ENCODINGS)).best()
    if best is None:
        tried = ", ".join(("UTF-8", "UTF-16", *LEGACY_ENCODINGS.values()))
        raise UnreadableDocumentError(
            "undecodable", f"cannot detect the text encoding (tried {tried}); save it as UTF-8"
        )
    name = _codec_name(best.encoding) or best.encoding
    return _checked(data.decode(name)), name


# ---------------------------------------------------------------------------------------------------
# Front matter, line joining


def _split_front_matter(raw: str) -> tuple[dict[str, object], str]:
    """YAML front matter between ``---`` lines. A block that is not a YAML mapping is no front matter
    (Markdown uses ``---`` for rules too); one that starts like a mapping but is invalid is refused."""
    match = _FRONT_MATTER.match(raw)
    if not match:
        return {}, raw
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        if not _YAML_KEY_LINE.match(match.group(1)):
            return {}, raw
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UnreadableDocumentError(
            "invalid_front_matter", f"the front matter is not valid YAML ({problem})"
        ) from exc
    if not isinstance(meta, dict):
        return {}, raw
    return meta, raw[match.end() :]


def _as_tuple(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return tuple(str(value).split())


def _meta_str(meta: dict[str, object], key: str) -> str | None:
    value = meta.get(key)
    text = clean(str(value)) if value is not None else ""
    return text or None


def _is_wide(ch: str) -> bool:
    """CJK characters and full-width punctuation: lines of them join without a space (Hangul, which
    separates words with spaces, does not count)."""
    if "\uac00" <= ch <= "\ud7a3" or "\u1100" <= ch <= "\u11ff" or "\u3130" <= ch <= "\u318f":
        return False
    return unicodedata.east_asian_width(ch) in ("W", "F")


def join_lines(lines: Iterable[str], *, dehyphenate: bool = False) -> str:
    """Reflow wrapped lines into one paragraph: CJK lines join without a space, Latin ones with one;
    with ``dehyphenate`` a hyphen ending a line before a lowercase letter is undone (``alter-`` +
    ``nating``), as always are PDFium's mark for a hyphen at a line end (``\\x02``) and the hyphen
    character (U+2010) that typesetters such as groff break words with (a manual page: ``speci‐`` +
    ``fied``)."""
    out = ""
    for raw in lines:
        line = clean(raw)
        if not line:
            continue
        if not out:
            out = line
        elif out.endswith(("\x02", "\u2010")) or (dehyphenate and out.endswith("-") and out[-2:-1].isalpha()):
            # a word broken at the line end: "alter-" + "nating"; "Jean-" + "Pierre" keeps its hyphen
            out = out[:-1] + ("" if line[0].islower() else "-") + line
        elif _is_wide(out[-1]) or _is_wide(line[0]):
            out += line
        else:
            out += " " + line
    return out.replace("\x02", "-")


# ---------------------------------------------------------------------------------------------------
# Text formats: article, Markdown, plain text


def _read_textual(data: bytes, suffix: str) -> _Content:
    text, encoding = decode_text(data)
    return _textual_content(text, encoding, suffix)


def _textual_content(text: str, encoding: str, suffix: str) -> _Content:
    meta, body = _split_front_matter(text)
    if _HAS_P.search(body) and (meta or suffix == ".txt"):
        return _article(meta, body, encoding)
    if suffix in (".md", ".markdown") or _ATX_HEADING.search(body):
        title, blocks = markdown_blocks(body)
        fmt = "markdown"
    else:
        title, blocks = _plain_blocks(_plain_paragraphs(body))
        fmt = "text"
    return _Content(
        format=fmt,
        blocks=tuple(blocks),
        title=_meta_str(meta, "title") or title,
        encoding=encoding,
        date=_meta_str(meta, "date"),
        categories=_as_tuple(meta.get("categories")),
        tags=_as_tuple(meta.get("tags")),
    )


_PLAIN_TITLE_MAX_CHARS = 80
_HANGING_HEAD = 40  # columns: a term or a heading over the lines hung under it (``_hanging_head``)
_SET_IN_SHARE = 0.7  # ... in a text set in from the margin, as a manual page is: this share of its lines
_SENTENCE_END = frozenset(".!?;:,。！？；：，、…")


@dataclass(frozen=True, slots=True)
class _PlainParagraph:
    text: str
    lines: int  # the lines it was written on
    heading: bool = False  # underlined by a rule line, or numbered over its text (``_numbered_heading``)
    code: bool = False  # preformatted (``_preformatted``): its lines kept as written
    # cut from a paragraph by code in it (``_introduced_parts``), or led by a term: no heading
    cut: bool = False


def _plain_paragraphs(body: str) -> list[_PlainParagraph]:
    """Paragraphs split on blank lines; a rule line (``---``, ``***``, ``===``) separates like a blank one,
    and a line it underlines (``Introduction`` over ``------------``: reStructuredText's and setext
    Markdown's heading, and how plain-text manuals have long marked them) is a heading, as is a line that
    numbers a section over its text with no blank line between (``_numbered_heading``).

    A preformatted paragraph (``_preformatted``: a diagram, a drawn table, a command or a program) keeps
    its lines as written, as do the lines indented under a line that introduces them within a paragraph
    (``_introduced_parts``)."""
    chunks = [
        lines
        for raw in _BLANK_LINES.split(body.replace("\r\n", "\n"))
        if (lines := [line for line in raw.split("\n") if line.strip()])
    ]
    out: list[_PlainParagraph] = []
    text_indent = min((_indent(*c) for c in chunks), default=0)  # the indentation of the prose read last
    lead: str | None = None  # the last line of that prose when it ends in a colon: it introduces what follows

    def prose(lines: Sequence[str], cut: bool) -> None:
        nonlocal text_indent, lead
        run: list[str] = []
        for line in [*lines, "---"]:  # a rule line ends the last run
            if not _RULE_LINE.match(line):
                run.append(line)
                continue
            text = "\n".join(join_lines(item) for item in _plain_items(run))
            if text:
                out.append(_PlainParagraph(text, len(run), cut=cut))
            run = []
        text_indent, lead = _indent(*lines), (lines[-1] if _lead_in(lines[-1]) else None)

    lines = [line for chunk in chunks for line in chunk]
    wrap = max((_columns(line.rstrip()) for line in lines), default=0)  # where the text's lines wrap
    set_in = bool(lines) and sum(_indent(line) > 0 for line in lines) >= _SET_IN_SHARE * len(lines)
    for chunk in chunks:
        termed = False  # a term leads the paragraph's first line: no heading
        while set_in and _hanging_head(chunk):
            head = clean(chunk[0])
            if _indent(chunk[0]) > 0:  # "-a, --all" over its indented definition: the term leads it
                sep = "：" if _is_wide(head[-1]) else ": "
                indent = chunk[0][: len(chunk[0]) - len(chunk[0].lstrip())]
                chunk = [indent + head + sep + chunk[1].lstrip(), *chunk[2:]]
                termed = True
                break
            # "NAME" over its indented text: a heading, and that text is the prose's indentation
            out.append(_PlainParagraph(head, 1, heading=True))
            lead, chunk = None, chunk[1:]
            text_indent = _indent(*chunk)
        for segment, heading in _heading_segments(chunk, wrap):
            if _preformatted(segment, text_indent, lead):
                out.append(_code_paragraph(segment))
            elif segment:
                parts = list(_introduced_parts(segment))
                for part, is_code in parts:
                    if is_code:
                        out.append(_code_paragraph(part))
                    else:
                        prose(part, cut=len(parts) > 1 or termed)
            if heading is not None:
                out.append(_PlainParagraph(heading, 1, heading=True))
                lead = None
    return out


def _hanging_head(lines: Sequence[str]) -> bool:
    """Whether a paragraph's first line heads the lines hung under it, as a manual page (and much plain
    text set like one) writes a section heading over its text ("NAME" / "       passwd - change user
    password") and a term over its definition ("-a, --all" / "    Report the status of all accounts."):
    a short line (``_HANGING_HEAD`` columns at most) that ends no sentence or clause and starts no list
    item, over lines all indented at least two columns deeper: no list, and no code under a term or under
    a line of code ("if (n > 9)" over "n = 9;"). Under a long first line, deeper lines are prose wrapped
    with a hanging indent. Only asked of a text set in from the margin (``_SET_IN_SHARE`` of its lines):
    where prose starts at the margin, a short line over indented ones introduces them ("Report bugs" over
    "- in the bug tracker ...")."""
    if len(lines) < 2 or _drawing(lines) or _table(lines) or _LIST_ITEM.match(lines[1].strip()):
        return False
    if _code_like(lines[1:]) and (_marked(lines[0]) or _indent(lines[0]) > 0):  # a program's lines
        return False
    head = clean(lines[0])
    width = sum(map(_width, head))
    return (
        _heading_like(head)
        and width <= _HANGING_HEAD
        and not _LIST_ITEM.match(head)
        and _indent(*lines[1:]) >= _indent(lines[0]) + 2
    )


def _heading_segments(lines: Sequence[str], wrap: int) -> Iterator[tuple[list[str], str | None]]:
    """The lines of a blank-line-separated paragraph cut at the headings in it, underlined or numbered
    (``_numbered_heading``): each run of lines (perhaps none) with the heading after it, the last run with
    None."""
    segment: list[str] = []
    after_heading = True  # the paragraph's start, or just after a heading: a numbered heading may follow
    for i, line in enumerate(lines):
        previous = lines[i - 1] if i else ""
        if (
            segment
            and _UNDERLINE.match(line)
            and not _RULE_LINE.match(previous)
            and _heading_like(clean(previous))
            and not _drawn(previous)
        ):
            yield segment[:-1], clean(previous)
            segment, after_heading = [], True
        elif (after_heading or _ENDS_SENTENCE.search(previous.rstrip())) and _numbered_heading(
            lines, i, wrap
        ):
            yield segment, clean(line)
            segment, after_heading = [], True
        else:
            segment.append(line)
            after_heading = False
    yield segment, None


# A section's number opening a line: "一、", "（一）", "第一章", "第2节", "1.", "1.2", "2、", "(3)", "IV.",
# "Chapter 3", "Part II", "Appendix A". An Arabic or Roman number is one before a capital or a CJK character
# ("3.5 kg of pork" is no section).
_SECTION_NUMBER = re.compile(
    r"^(?:[一二三四五六七八九十百零〇]+[、.．]"
    r"|[（(](?:[一二三四五六七八九十百零〇]{1,4}|\d{1,3})[）)]"
    r"|第[一二三四五六七八九十百零〇\d]{1,4}[章节部篇编卷回讲课]"
    r"|(?:\d{1,3}(?:[.．]\d{1,3})+[.．]?|\d{1,3}[.．、]|[IVXLC]{1,6}\.)(?=\s*[\u3400-\u9fff]|\s+[A-Z])"
    r"|(?i:chapter|part|section|appendix|lesson)\s+(?:\d{1,3}(?:\.\d{1,3})*|[IVXLC]{1,6}|[A-Z])\b)"
)
_NUMERALS = re.compile(r"[一二三四五六七八九十百零〇]+|\d+|[IVXLC]+")


def _numbered_heading(lines: Sequence[str], i: int, wrap: int) -> bool:
    """Whether line ``i`` of a paragraph is a section heading written over its text with no blank line
    between ("一、准备食材" over "猪肉馅500克，..."), not the first line of a paragraph wrapped onto the next:
    it starts with a section number (``_SECTION_NUMBER``), is ``_heading_like`` (short, no sentence end), and
    its line break is the writer's, not a wrap: the next line's first word would have fit on it
    (``wrap``, the text's widest line). The next line is the text, at the same or a lesser indentation (an
    item's wrapped line hangs deeper) and no list item; a numbered line of the same shape after it ("二、"
    under "一、") makes the two a list, as do numbered list items in a run: a number that starts a list item
    ("1. Install") heads a section only when no other line of its paragraph starts an item."""
    if i + 1 >= len(lines):
        return False
    head, text = clean(lines[i]), clean(lines[i + 1])
    number = _SECTION_NUMBER.match(head)
    if number is None or not _heading_like(head) or not text or _RULE_LINE.match(lines[i + 1]):
        return False
    below = _SECTION_NUMBER.match(text)
    if _LIST_ITEM.match(text) or (below and _number_shape(below.group()) == _number_shape(number.group())):
        return False
    if _indent(lines[i + 1]) > _indent(lines[i]):
        return False
    others = (line.strip() for j, line in enumerate(lines) if j != i)
    if _LIST_ITEM.match(head) and any(map(_LIST_ITEM.match, others)):
        return False
    first = text[0] if _is_wide(text[0]) else " " + text.split()[0]
    return _columns(lines[i].rstrip() + first) <= wrap


def _number_shape(number: str) -> str:
    """A section number with its numerals replaced ("（三）" as "（0）", "1.2" as "0.0"): numbers of one
    shape are of one level."""
    return _NUMERALS.sub("0", number)


def _lead_in(line: str) -> bool:
    """A line that ends in a colon introduces the lines after it (``LEAD_IN_ENDS``)."""
    return line.rstrip().endswith(LEAD_IN_ENDS)


def _introduces(lead: str) -> int:
    """How deep the lines a lead-in introduces are indented: two columns past its text (past a list
    item's bullet)."""
    text = lead.rstrip()
    item = _LIST_ITEM.match(text.strip())
    return _indent(text) + (item.end() if item else 0) + 2


def _introduced_parts(lines: Sequence[str]) -> Iterator[tuple[list[str], bool]]:
    """A paragraph's lines as prose and code parts (``True``): the lines indented under a lead-in in it
    (``_introduces``) are code when they are ``_introduced`` ("Activate it with:" over an indented
    command)."""
    start = i = 0
    while i < len(lines) - 1:
        if _lead_in(lines[i]):
            deeper, end = _introduces(lines[i]), i + 1
            while end < len(lines) and _indent(lines[end]) >= deeper:
                end += 1
            tail = lines[i + 1 : end]
            if tail and _introduced(tail, lines[i]):
                yield list(lines[start : i + 1]), False
                yield list(tail), True
                start = i = end
                continue
        i += 1
    if start < len(lines):
        yield list(lines[start:]), False


# Preformatted plain text. A box-drawing character, or an ASCII stroke: a corner, junction or arrowhead
# on a line ("+--", "--+", "|--", "-->", "<=="), or a bar standing alone ("| a | b |").
_BOX_DRAWING = re.compile("[\u2500-\u257f]")
_STROKE = re.compile(r"[+|<>][-=~_]{2,}|[-=~_]{2,}[+|<>]|(?<!\S)\|(?!\S)")
# Characters that draw or write code, not prose (as do the symbols of Unicode's Sm, Sk and So categories);
# "-", "_" and "/" between two letters or digits are part of a word ("dpkg-trigger", "and/or").
_STRUCTURAL = frozenset("-_=+*#~^|/\\<>[]{}@&$%`")
_IN_WORD = frozenset("-_/")
_WORD_EDGES = "\"'`([{<«“‘„*_.,;:!?)]}>»”’"
_CALL = re.compile(r"\w\(")
_COLUMN_GAP = re.compile(r"\s*\t\s*| {2,}")
# A sentence's end at the end of a line: an end mark, perhaps closing quotes; not an ellipsis ("cd ..").
_ENDS_SENTENCE = re.compile(r"(?<!\.)[.!?。！？][\"'”’)）」』]*$")
_SET_APART = 4  # columns deeper than the prose before it: a block set apart (code, a quotation)
_LINE_CACHE = 1 << 16  # lines whose tests are remembered: a paragraph's lines are tested several ways


def _preformatted(lines: Sequence[str], text_indent: int, lead: str | None) -> bool:
    """Whether a plain-text paragraph is preformatted, its line breaks part of what it says: a drawing
    (``_drawing``) or a table (``_table``); or ``_introduced`` by the lead-in that ends the prose before
    it; or set apart by indentation (``_SET_APART`` columns deeper than the prose before it) and
    ``_code_like``. Indented prose (a quotation, a list item's second paragraph) is no code: a false
    positive makes a passage's sentences one unquotable block."""
    if not lines:
        return False
    return (
        _drawing(lines)
        or _table(lines)
        or (lead is not None and _introduced(lines, lead))
        or (_indent(*lines) >= text_indent + _SET_APART and _code_like(lines))
    )


def _introduced(lines: Sequence[str], lead: str) -> bool:
    """Whether lines indented under a lead-in (``_introduces``) keep their line breaks: a drawing or a
    table; or lines that are no list and next to no prose (at most a quarter of them ``_prose_line``),
    with a mark of code (``_marked``) or, over two lines or more, no sentence end (an address). After
    ``::`` (reStructuredText's literal block marker) no mark is needed. One line that ends a sentence is
    prose, wrapped or indented under its lead-in: "Version 1.2: / This is for Linux 0.12." """
    if _indent(*lines) < _introduces(lead):
        return False
    if _drawing(lines) or _table(lines):
        return True
    if _LIST_ITEM.match(lines[0].strip()) or 4 * sum(map(_prose_line, lines)) > len(lines):
        return False
    marked = lead.rstrip().endswith("::") or any(map(_marked, lines))
    if len(lines) == 1:
        return marked and not _ENDS_SENTENCE.search(lines[0].rstrip())
    return marked or not any(_ENDS_SENTENCE.search(line.rstrip()) for line in lines)


def _code_like(lines: Sequence[str]) -> bool:
    """Lines that read as code: at most a quarter of them prose (a ``printf`` of a sentence), at least half
    of them ``_marked``. A title centred by its indentation is neither."""
    prose = [_prose_line(line) for line in lines]
    marked = sum(1 for line, is_prose in zip(lines, prose, strict=True) if not is_prose and _marked(line))
    return 4 * sum(prose) <= len(lines) and 2 * marked >= len(lines)


@functools.lru_cache(maxsize=_LINE_CACHE)
def _marked(line: str) -> bool:
    """A line with a mark of code: a symbol (``_symbols``), a ``;`` at the end, or a call (``name(``)."""
    return bool(_symbols(line) or line.rstrip().endswith(";") or _CALL.search(line))


def _table(lines: Sequence[str]) -> bool:
    """Columns: two or more rows (lines neither rules nor drawn), next to no prose (at most a quarter of
    them with a cell that is a ``_prose_line``), and a column at which every row starts a cell
    (``_cell_starts``): "Status      Pending   Awaited" over "unpacked    never      maybe"."""
    rows = [line for line in lines if not _RULE_LINE.match(line) and not _drawn(line)]
    if len(rows) < 2:
        return False
    base = _indent(*rows)
    common = _cell_starts(rows[0], base)
    for row in rows[1:]:
        if not common:
            return False
        common &= _cell_starts(row, base)
    prose = sum(1 for row in rows if any(map(_prose_line, _COLUMN_GAP.split(row.strip()))))
    return bool(common) and 4 * prose <= len(rows)


def _cell_starts(line: str, base: int) -> set[int]:
    """The columns at which a line's cells start: after a gap of two spaces or more, or a tab (not after
    an end mark, which some put two spaces after), and at its indentation when deeper than ``base``. A tab
    reaches the next multiple of eight, a CJK character is two columns wide."""
    starts: set[int] = set()
    column = 0
    gap = ""  # the spaces since the last character
    previous = ""  # the last character
    for ch in line:
        if ch.isspace():
            gap += ch
            column = (column // 8 + 1) * 8 if ch == "\t" else column + _width(ch)
            continue
        if gap and not previous and column > base:
            starts.add(column)
        elif previous and ("\t" in gap or len(gap) >= 2) and previous not in ".!?":
            starts.add(column)
        gap, previous = "", ch
        column += _width(ch)
    return starts


def _columns(line: str) -> int:
    """Columns a line takes (``_width``), tabs to the next multiple of eight."""
    return sum(map(_width, line.expandtabs()))


def _width(ch: str) -> int:
    """Columns a character takes: two for a CJK one."""
    return 1 if ch.isascii() else 2 if _is_wide(ch) else 1


def _drawing(lines: Sequence[str]) -> bool:
    """Two or more lines, at least half the lines (rule lines aside), are drawn (``_drawn``)."""
    shapes = [line for line in lines if not _RULE_LINE.match(line)]
    needed = max(2, (len(shapes) + 1) // 2)
    drawn = 0
    for seen, line in enumerate(shapes, start=1):
        drawn += _drawn(line)
        if drawn >= needed or drawn + len(shapes) - seen < needed:  # settled either way
            return drawn >= needed
    return False


@functools.lru_cache(maxsize=_LINE_CACHE)
def _drawn(line: str) -> bool:
    """A line of a drawing: no prose line (``_prose_line``), with a box-drawing character, an ASCII
    stroke, or at least as many drawing symbols as letters and digits (``\\_____/``)."""
    if _prose_line(line):
        return False
    if _BOX_DRAWING.search(line) or _STROKE.search(line):
        return True
    symbols = _symbols(line)
    return symbols >= 3 and symbols >= sum(1 for ch in line if ch.isalnum())


@functools.lru_cache(maxsize=_LINE_CACHE)
def _prose_line(line: str) -> bool:
    """A line of prose: five or more words, two thirds or more of its tokens; or a run of six or more CJK
    characters, with CJK letters half or more of its characters (a label in a drawn box is shorter). A
    list item's bullet does not count."""
    text = _LIST_ITEM.sub("", line.strip(), count=1)
    if not text.isascii():
        run = longest = 0
        for ch in text:
            run = run + 1 if _is_wide(ch) and not ch.isspace() else 0
            longest = max(longest, run)
        wide = sum(1 for ch in text if ch.isalpha() and _is_wide(ch))
        if longest >= 6 and 2 * wide >= len(text.replace(" ", "")):
            return True
    tokens = text.split()
    words = sum(1 for token in tokens if _is_word(token))
    return words >= 5 and 3 * words >= 2 * len(tokens)


def _is_word(token: str) -> bool:
    """Letters, perhaps hyphenated or with an apostrophe, perhaps between quotes or punctuation."""
    core = token.strip(_WORD_EDGES)
    return core[:1].isalpha() and core.replace("-", "").replace("'", "").replace("’", "").isalpha()


def _symbols(line: str) -> int:
    """How many characters of a line draw or write code (``_STRUCTURAL``), a list item's bullet aside."""
    text = _LIST_ITEM.sub("", line.strip(), count=1)
    count = 0
    for i, ch in enumerate(text):
        if ch in _STRUCTURAL or unicodedata.category(ch) in ("Sm", "Sk", "So"):
            inside = 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
            count += not (inside and ch in _IN_WORD)
    return count


def _indent(*lines: str) -> int:
    """The indentation of the least indented line, in columns (a tab to the next multiple of eight)."""
    return min(len(expanded) - len(expanded.lstrip()) for expanded in (line.expandtabs() for line in lines))


def _code_paragraph(lines: Sequence[str]) -> _PlainParagraph:
    """Preformatted lines as written, without the indentation they share or trailing spaces."""
    cut = _indent(*lines)
    return _PlainParagraph(
        "\n".join(line.expandtabs()[cut:].rstrip() for line in lines), len(lines), code=True
    )


def _heading_like(text: str) -> bool:
    """Short, and not the end of a sentence or clause: a line that can head text."""
    return 0 < len(text) <= _PLAIN_TITLE_MAX_CHARS and text[-1] not in _SENTENCE_END


def _plain_items(lines: Sequence[str]) -> list[list[str]]:
    """The lines of a plain-text paragraph grouped into the items of the list it holds, each item's
    wrapped lines together: a line that starts like an item (``*``, ``-``, ``•``, ``1.``, ``a)``) starts
    one after a line that ends a sentence or a lead-in, or after another item (a dash that opens a line
    in the middle of a sentence is prose). Bullets are dropped, numbers kept, as in the other readers."""
    items: list[list[str]] = []
    listing = False
    for line in lines:
        text = line.strip()
        ends = bool(items) and (listing or clean(items[-1][-1])[-1:] in _ITEM_BEFORE)
        if _LIST_ITEM.match(text) and (not items or ends):
            items.append([_UNORDERED_ITEM.sub("", text, count=1)])
            listing = True
        elif items:
            items[-1].append(text)
        else:
            items.append([text])
    return items


def _plain_blocks(paragraphs: Sequence[_PlainParagraph]) -> tuple[str | None, list[Block]]:
    """A plain text's title and blocks. Its first paragraph is the title when it is short, with no
    sentence-ending or clause punctuation, and text follows it (the way people head a note), or when it
    is underlined. Further down, an underlined line heads the paragraphs under it, as does such a short
    paragraph written on one line when the paragraph after it ends a sentence or is longer than a heading
    can be (a short unpunctuated line before another is a list or an address): it is their section, not a
    passage. A plain text's sections do not nest (an underline marks no level that all texts share)."""
    title: str | None = None
    section: tuple[str, ...] = ()
    blocks: list[Block] = []
    for i, p in enumerate(paragraphs):
        text, lines = p.text, p.lines
        if p.code:  # quoted whole when short, as the other readers' code blocks are
            blocks.append(Block(text, section, code=code_spans(text)))
            continue
        following = paragraphs[i + 1].text if i + 1 < len(paragraphs) else None
        if p.heading and following is not None:
            if i == 0:
                title = text
            else:
                section = (text,)
            continue
        if following is not None and not p.cut and _heading_like(text):
            if i == 0:  # kept: ``_final_blocks`` drops it if it is the title (front matter may name another)
                title = text
            elif lines == 1 and (following[-1] in _SENTENCE_FINAL or len(following) > _PLAIN_TITLE_MAX_CHARS):
                section = (text,)
                continue
        blocks.append(Block(text, section))
    return title, blocks


def _article(meta: dict[str, object], body: str, encoding: str) -> _Content:
    paragraphs, source_url = _html_paragraphs(body)
    return _Content(
        format="article",
        blocks=tuple(Block(p) for p in paragraphs),
        title=_meta_str(meta, "title"),
        encoding=encoding,
        date=str(meta["date"]) if meta.get("date") is not None else None,
        categories=_as_tuple(meta.get("categories")),
        tags=_as_tuple(meta.get("tags")),
        source_url=source_url,
    )


def _html_paragraphs(body: str) -> tuple[list[str], str | None]:
    # The lines after the last </p> are markdown-ish (``<http://…>`` autolinks, ``[text](url)`` links),
    # which an HTML parser would swallow as tags: read them as plain lines.
    cut = body.lower().rfind("</p>")
    html, tail = (body[: cut + 4], body[cut + 4 :]) if cut >= 0 else (body, "")
    soup = BeautifulSoup(html, "html.parser")
    paragraphs: list[str] = []
    source_index: int | None = None
    for p in soup.find_all("p"):
        text = clean(p.get_text(" "))
        if not text:
            continue
        classes: list[str] = list(p.get("class") or [])
        if "em_media" in classes or (_SOURCE_HINT.search(text) and len(text) < 40):
            source_index = len(paragraphs)
        paragraphs.append(text)
    source_url = None
    for line in tail.splitlines():
        line = line.strip()
        m = _URL_LINE.match(line)
        if m:
            source_url = source_url or m.group(1)
        elif line and not _NAV_LINK.match(line):
            paragraphs.append(clean(BeautifulSoup(line, "html.parser").get_text(" ")))
    if source_url:
        if source_index is not None:
            paragraphs[source_index] = f"{paragraphs[source_index]} {source_url}"
        else:
            paragraphs.append(f"Source: {source_url}")
    return [p for p in paragraphs if p], source_url


@dataclass
class _Sections:
    """The heading path above the current position: (level, text) pairs, outermost first."""

    stack: list[tuple[int, str]] = field(default_factory=list)

    def enter(self, level: int, text: str) -> None:
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        if text:
            self.stack.append((level, text))

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(t for _, t in self.stack)


def table_lines(rows: Sequence[Sequence[str]], header: Sequence[str] | None = None) -> list[str]:
    """A table's rows as lines of text. Under a header row each cell is named by its column's header
    (``Model: Symo 8.2 | Max power: 8.2 kW``), so a row read alone still says what its values are; the
    header row is then no line of its own. Without a header, or for a row whose cells do not line up
    with it, a row is its cells joined by `` | ``. Empty cells are left out."""
    width = len(header) if header else 0
    lines = []
    for row in rows:
        if width > 1 and len(row) == width:
            pairs = [
                (f"{name}{'：' if _is_wide(name[-1]) else ': '}{value}" if name else value)
                for name, value in zip(header or (), row, strict=True)
                if value
            ]
        else:
            pairs = [value for value in row if value]
        if pairs:
            lines.append(" | ".join(pairs))
    if not lines and header:  # a header with no body: it is all the table says
        lines.append(" | ".join(h for h in header if h))
    return [line for line in lines if line]


def markdown_blocks(source: str) -> tuple[str | None, list[Block]]:
    """Parse Markdown into blocks (paragraphs; a whole list or table as lines) under their heading path.

    Returns the first H1 (the title when front matter gives none) and the blocks. Headings are never
    blocks; inline markup is dropped (links keep their text, images go).
    """
    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(source)
    sections = _Sections()
    blocks: list[Block] = []
    first_h1: str | None = None
    lines: list[str] = []  # the lines of the list or table being read
    row: list[str] = []  # the cells of the table row being read, empty ones included
    header: list[str] | None = None  # the table's header row (``th`` cells)
    body: list[list[str]] = []  # its other rows
    cell: list[str] | None = None  # the text of the cell being read
    in_head = False
    container = 0  # depth of open lists and tables
    numbers: list[int | None] = []  # per open list: the next item's number (None for a bullet list)
    number = ""  # the number of the item whose first text comes next ("2. ")
    heading_level = 0

    def emit(text: str) -> None:
        nonlocal number
        if not text:
            return
        text, number = number + text, ""
        if cell is not None:
            cell.append(text)
        elif container:
            lines.append(text)
        else:
            blocks.append(Block(text, sections.path))

    for tok in tokens:
        kind = tok.type
        if kind == "heading_open":
            heading_level = int(tok.tag[1:])
        elif kind == "heading_close":
            heading_level = 0
        elif kind in ("bullet_list_open", "ordered_list_open", "table_open"):
            container += 1
            if kind == "table_open":
                header, body = None, []
            elif kind == "ordered_list_open":
                start = str(tok.attrGet("start") or 1)
                numbers.append(int(start) if start.isdigit() else 1)
            else:
                numbers.append(None)
        elif kind == "list_item_open" and numbers and (n := numbers[-1]) is not None:
            number = f"{n}. "  # an ordered item keeps its number: "the first step" is item 1.
            numbers[-1] = n + 1
        elif kind in ("bullet_list_close", "ordered_list_close", "table_close"):
            container -= 1
            if kind == "table_close":
                lines.extend(table_lines(body, header))
            elif numbers:
                numbers.pop()
            if container == 0 and lines:
                blocks.append(Block("\n".join(lines), sections.path))
                lines = []
        elif kind in ("th_open", "td_open"):
            cell = []
        elif kind in ("th_close", "td_close"):
            row.append(" ".join(cell or ()))
            cell = None
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close":
            if in_head:
                header = row
            else:
                body.append(row)
        elif kind in ("thead_open", "thead_close"):
            in_head = kind == "thead_open"
        elif kind == "inline":
            text = _inline_text(tok.children or [])
            if heading_level:
                if heading_level == 1 and first_h1 is None:
                    first_h1 = text
                sections.enter(heading_level, text)
            elif cell is None and (rows := _pipe_rows(tok.content)):
                emit("\n".join(_pipe_table(rows)))
            else:
                emit(text)
        elif kind in ("fence", "code_block"):
            code = "\n".join(line.rstrip() for line in tok.content.splitlines() if line.strip())
            if code and not container and cell is None and (spans := code_spans(code)):
                blocks.append(Block(code, sections.path, code=spans))
            else:  # a line of a list, or a program whose lines (and comments) are quoted one by one
                emit(code)
        elif kind == "html_block":
            emit(clean(BeautifulSoup(tok.content, "html.parser").get_text(" ")))
    return first_h1, blocks


_PIPE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_CELL_BORDER = re.compile(r"(?<!\\)\|")
_BOLD = re.compile(r"^(\*\*|__).+\1$")
_INLINE = MarkdownIt("commonmark").enable(["strikethrough"])


def _pipe_rows(source: str) -> list[list[str]]:
    """The rows of a paragraph made only of ``| a | b |`` lines: a pipe table without the ``|---|`` line
    under a header (how an extractor writes an HTML table with no ``<th>``, and how people type one),
    which Markdown reads as one paragraph. Each cell is kept with its markup; ``[]`` for other text."""
    lines = source.split("\n")
    if not all(_PIPE_ROW.match(line) and line.count("|") >= 3 for line in lines):
        return []
    return [[c.strip() for c in _CELL_BORDER.split(line.strip()[1:-1])] for line in lines]


def _pipe_table(rows: Sequence[Sequence[str]]) -> list[str]:
    """``table_lines`` of the rows of ``_pipe_rows``; a first row whose every cell is bold is the header."""
    text = [[_cell_text(c) for c in row] for row in rows]
    if len(rows) > 1 and any(rows[0]) and all(_BOLD.match(c) for c in rows[0] if c):
        return table_lines(text[1:], text[0])
    return table_lines(text)


def _cell_text(cell: str) -> str:
    tokens = _INLINE.parseInline(cell.replace("\\|", "|"))
    return _inline_text(tokens[0].children or []) if tokens else cell


def _inline_text(children: Sequence[Token]) -> str:
    parts: list[str] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
    return join_lines("".join(parts).split("\n"))


# ---------------------------------------------------------------------------------------------------
# HTML pages


def _read_html(data: bytes, suffix: str) -> _Content:
    import trafilatura

    declared = _DECLARED_CHARSET.search(data[:4096])
    text, encoding = decode_text(data, declared.group(1).decode("ascii") if declared else None)
    meta, body = _split_front_matter(text)
    if meta and _HAS_P.search(body):
        return _article(meta, body, encoding)
    page = _prepared(text)
    # The main-content algorithm alone first: below min_extracted_size characters (250 by default, a
    # short notice) trafilatura would replace its result by its baseline's whenever that is longer, and
    # the baseline is the page's text with the navigation, as lines run together into one paragraph.
    extracted = _extract_html(page, _main_content_config()) or _extract_html(page, None)
    first_h1, blocks = markdown_blocks(extracted) if extracted else (None, [])
    if not any(not is_noise(b.text) for b in blocks):
        # Nothing the extractor calls main content (a tiny page, a page of links): favour recall.
        whole = clean(trafilatura.html2txt(text) or "")
        blocks = [Block(whole)] if whole else []
    metadata = trafilatura.extract_metadata(text, extensive=False, date_config={"extensive_search": False})
    title = _html_title(text) or _metadata_title(metadata.title if metadata else None) or first_h1
    return _Content(
        format="html",
        blocks=tuple(blocks),
        title=clean(title) if title else None,
        encoding=encoding,
        date=metadata.date if metadata else None,
        source_url=metadata.url if metadata else None,
    )


# docutils for untrusted input: no file inclusion or raw HTML, never a halt on bad markup, no message about
# it in the document (a directive docutils lacks, Sphinx's toctree, leaves nothing; unknown roles keep their
# text), and no title promotion (``_rst_blocks`` takes a lone top section's title as the document's).
_RST_SETTINGS = {
    "report_level": 5,
    "halt_level": 5,
    "file_insertion_enabled": False,
    "raw_enabled": False,
    "_disable_config": True,
    "syntax_highlight": "none",
    "input_encoding": "unicode",
    "doctitle_xform": False,
}


def _read_rst(data: bytes, suffix: str) -> _Content:
    """reStructuredText, parsed by docutils: its document tree gives the sections (under any underline),
    paragraphs, lists, tables, field and definition lists, and literal and code blocks (``_rst_blocks``)."""
    from docutils.core import publish_doctree

    text, encoding = decode_text(data)
    title, blocks = _rst_blocks(publish_doctree(text, settings_overrides=_RST_SETTINGS))
    return _Content(format="rst", blocks=tuple(blocks), title=title, encoding=encoding)


def _rst_blocks(document: Any) -> tuple[str | None, list[Block]]:
    """A docutils document's title and blocks, as the Markdown reader makes them: a paragraph each, a whole
    list, table, field or definition list as lines, a literal block as code (one unit when
    ``code_spans``), and each under its section path."""
    from docutils import nodes

    blocks: list[Block] = []
    # Markup that says nothing to a reader (comments, link targets, messages, raw output); titles are paths.
    skipped: tuple[type, ...] = (nodes.Invisible, nodes.comment, nodes.system_message, nodes.raw)
    skipped += (nodes.substitution_definition, nodes.target, nodes.title, nodes.subtitle)
    listed = (nodes.bullet_list, nodes.enumerated_list, nodes.table, nodes.definition_list, nodes.field_list)

    def lines_of(node: Any) -> list[str]:
        if isinstance(node, nodes.table):
            rows = [
                ([clean(cell.astext()) for cell in row.children], row.parent)
                for row in node.findall(nodes.row)
            ]
            header = next((cells for cells, part in rows if isinstance(part, nodes.thead)), None)
            return table_lines([cells for cells, part in rows if not isinstance(part, nodes.thead)], header)
        if isinstance(node, (nodes.definition_list, nodes.field_list)):  # "term: definition"
            pairs = [item.children for item in node.children if len(item.children) > 1]
            return [
                f"{clean(name.astext())}: {clean(' '.join(b.astext() for b in body))}"
                for name, *body in pairs
            ]
        if isinstance(node, nodes.line_block):
            return [clean(line.astext()) for line in node.findall(nodes.line)]
        start = int(node.get("start", 1)) if isinstance(node, nodes.enumerated_list) else None
        return [
            clean(item.astext()) if start is None else f"{start + i}. {clean(item.astext())}"
            for i, item in enumerate(node.children)
        ]

    def silent(node: Any) -> bool:
        """Markup that says nothing, or a paragraph of badges (substituted images: only their alt texts)."""
        if not isinstance(node, nodes.Element) or isinstance(node, skipped):
            return True
        return isinstance(node, nodes.TextElement) and not "".join(node.findall(nodes.Text)).strip()

    def walk(node: Any, path: tuple[str, ...]) -> None:
        for child in node.children:
            if silent(child) or "contents" in child.get("classes", ()):  # or a table of contents it generated
                continue
            if isinstance(child, nodes.section):
                heading = child.next_node(nodes.title)
                walk(child, (*path, clean(heading.astext())) if heading is not None else path)
            elif isinstance(child, (nodes.literal_block, nodes.doctest_block)):
                code = "\n".join(line.rstrip() for line in child.astext().splitlines() if line.strip())
                if code:
                    blocks.append(Block(code, path, code=code_spans(code)))
            elif isinstance(child, (*listed, nodes.line_block)):
                text = "\n".join(line for line in lines_of(child) if line)
                if text:
                    blocks.append(Block(text, path))
            elif isinstance(child, nodes.TextElement):  # a paragraph, a rubric
                blocks.append(Block(clean(child.astext()), path))
            else:  # an admonition, a block quote, a container: what it holds
                walk(child, path)

    walk(document, ())
    # A document that opens with a section is titled by it, as a Markdown file by its first "# " heading
    # (``_final_blocks`` takes the title off the front of the section paths).
    first = next((c for c in document.children if not silent(c)), None)
    heading = first.next_node(nodes.title) if isinstance(first, nodes.section) else None
    return (clean(heading.astext()) if heading is not None else None), blocks


def _extract_html(page: str, config: Any) -> str | None:
    import trafilatura

    return trafilatura.extract(
        page,
        output_format="markdown",
        include_formatting=True,  # keeps headings as #, which become sections
        include_tables=True,
        include_comments=False,
        include_images=False,
        include_links=False,
        favor_recall=True,
        config=config,
    )


@functools.cache
def _main_content_config() -> Any:
    from trafilatura.settings import use_config

    config = use_config()
    config.set("DEFAULT", "MIN_EXTRACTED_SIZE", "0")
    return config


def _prepared(html: str) -> str:
    """The page as the main-content extractor should read it: parsed once (by lxml, which closes an open
    ``<p>`` where a block starts, as browsers do), definition terms moved into their definitions and
    blocks made explicit."""
    with warnings.catch_warnings():  # an XHTML page is read as HTML on purpose, as the extractor reads it
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(html, "lxml")
    _terms_with_definitions(soup)
    _explicit_blocks(soup)
    _introduced_lists_as_text(soup)
    _inline_code_as_text(soup)
    for anchor in soup.find_all("a", href=False):  # a link target ("<h2><a id=x/>2.1. Setup</h2>")
        anchor.unwrap()  # the extractor drops a heading that holds one, and the section with it
    _marked_main_content(soup)
    return str(soup)


def _inline_code_as_text(soup: BeautifulSoup) -> None:
    """Inline ``<code>`` (outside ``<pre>``) as one line of plain text: the extractor writes a ``<code>``
    whose text breaks a line, or that holds other tags (DocBook's ``<code>dpkg -i <em>pkg</em></code>``),
    as a fenced code block in the middle of its sentence, which split it into pieces."""
    for code in soup.find_all("code"):
        if code.find_parent("pre") is None and (code.find(True) or "\n" in code.get_text()):
            code.string = " ".join(code.get_text().split())


def _marked_main_content(soup: BeautifulSoup) -> None:
    """A page that marks no main content (no ``<main>``, ``<article>`` or ``role="main"``: DocBook and
    other generated manuals, hand-written pages) has its body's content marked as ``<main>``: the
    extractor's fallback for such pages drops every heading, and with it the sections. Navigation,
    headers and footers inside are still pruned by the extractor."""
    body = soup.body
    if body is None or soup.find(["main", "article"]) or soup.find(True, role="main"):
        return
    main = soup.new_tag("main")
    for child in list(body.children):
        main.append(child.extract())
    body.append(main)


def _terms_with_definitions(soup: BeautifulSoup) -> None:
    """Each definition list's terms moved into their definitions (``<dt>COP</dt><dd>The coefficient…</dd>``
    -> ``<dd>COP: The coefficient…</dd>``): the extractor makes a term and its definition two list items,
    and a definition alone no longer says what it defines."""
    for dl in soup.find_all("dl"):
        terms: list[Any] = []  # the <dt>s of the current group
        names = ""
        for child in dl.find_all(["dt", "dd"]):
            if child.find_parent("dl") is not dl:  # a nested list's (HTML allows a <div> around a group)
                continue
            if child.name == "dt":
                if names or not terms:  # a <dt> after a <dd> starts the next group
                    names = ""
                terms.append(child)
                continue
            if terms and not names:
                names = ", ".join(t for t in (clean(t.get_text(" ")) for t in terms) if t)
                for term in terms:
                    term.decompose()
                terms = []
            if names:
                child.insert(0, names + ("：" if _is_wide(names[-1]) else ": "))


# Elements that start a block of their own; text and inline elements between them run together.
_BLOCK_TAGS = frozenset(
    "address article aside blockquote center details dd div dl dt fieldset figure footer form h1 h2 h3 h4 "
    "h5 h6 header hr li main nav ol p pre section table ul".split()
)
# Containers whose loose text (beside block children) would be lost, and formatting inside code.
_MIXED_CONTAINERS = ("body", "div", "td", "blockquote", "section", "article", "main", "center", "li", "dd")
_FORMATTING = ("b", "i", "em", "strong", "u", "span", "font")


def _explicit_blocks(soup: BeautifulSoup) -> None:
    """Two things made explicit that the main-content extractor otherwise misreads, as old hand-written
    pages have them: text set directly in ``<body>`` (or a ``<div>``...) between block
    elements, without ``<p>``, becomes paragraphs (else it is dropped: 60% of a page such as zlib's
    usage example); and ``<pre>`` is code (``<pre><b>`` came out as bold Markdown whose ``#  define``
    lines read as headings)."""
    for pre in soup.find_all("pre"):
        for tag in pre.find_all(_FORMATTING):
            tag.unwrap()
        if pre.find("code") is None:
            code = soup.new_tag("code")
            for child in list(pre.contents):
                code.append(child.extract())
            pre.append(code)
    for container in soup.find_all(_MIXED_CONTAINERS):
        if not any(getattr(child, "name", None) in _BLOCK_TAGS for child in container.children):
            continue
        run: list[Any] = []
        for child in list(container.children):
            if getattr(child, "name", None) in _BLOCK_TAGS:
                _as_paragraph(soup, run)
                run = []
            elif not isinstance(child, Comment):
                run.append(child)
        _as_paragraph(soup, run)


def _introduced_lists_as_text(soup: BeautifulSoup) -> None:
    """A list that a paragraph introduces ("测试分为三种类型：", "The options are:") with its links made
    plain text: the extractor drops a list of links as navigation (link density), and an index page's
    "three kinds: unit tests, doc tests, integration tests", each a link to its own page, left only the
    lead-in. Menus and link farms introduce nothing, so they are still dropped."""
    for listing in soup.find_all(("ul", "ol")):
        before = listing.find_previous_sibling(True)
        if before is None or before.name in ("ul", "ol"):
            continue
        if not before.get_text().strip().endswith(LEAD_IN_ENDS):
            continue
        for link in listing.find_all("a"):
            link.unwrap()


def _as_paragraph(soup: BeautifulSoup, run: Sequence[Any]) -> None:
    """Wrap a run of text and inline elements in a ``<p>``, unless it is only whitespace."""
    if not any((node.get_text() if isinstance(node, Tag) else str(node)).strip() for node in run):
        return
    paragraph = soup.new_tag("p")
    run[0].insert_before(paragraph)
    for node in run:
        paragraph.append(node.extract())


_TITLE_SEPARATOR = re.compile(r"\s+[-|–—·»]\s+")


def _html_title(html: str) -> str | None:
    """The title the page's author marked: the part of ``<title>`` ("Page - Site") that is also an
    ``<h1>``, else the only ``<h1>``, else ``<title>``'s first part unless it is a placeholder
    (``_metadata_title``); None when the page has neither.

    Marked-up titles come before an extractor's guess, which may take any element with "title" in its
    class (a help dialog's heading, say)."""
    soup = BeautifulSoup(html, "html.parser")
    h1s = [t for t in (clean(h.get_text(" ")) for h in soup.find_all("h1")) if t]
    tag = soup.find("title")
    whole = clean(tag.get_text(" ")) if tag is not None else ""
    pieces = [p for p in map(clean, _TITLE_SEPARATOR.split(whole)) if p]
    for part in (whole, *pieces):
        if part in h1s:
            return part
    if len(h1s) == 1:
        return h1s[0]
    return _metadata_title(pieces[0]) if pieces else None  # not an editor's "Untitled Document"


# ---------------------------------------------------------------------------------------------------
# PDF


@dataclass(frozen=True, slots=True)
class _Line:
    """One line of a PDF page: its text, box (PDF units, y grows upwards), baseline and font size, and
    its cells and their left and right edges when wide gaps split it (a table row: ``_CELL_GAP``)."""

    text: str
    left: float
    right: float
    baseline: float
    size: float
    cells: tuple[str, ...] = ()
    edges: tuple[tuple[float, float], ...] = ()
    spaced_end: bool = True  # its text ended in a space in PDFium's text: a word ends there


# A running header or footer is a line among the first or last _EDGE_LINES of a page whose text, digits
# normalised, recurs on at least _RUNNING_SHARE of the pages (and at least two), or on two or more pages
# with the page number at its start or end.
_EDGE_LINES = 2
_RUNNING_SHARE = 0.5
_DIGITS = re.compile(r"\d+")
# The number a running line carries at its start or end ("3 | Chapter 1", "Chapter 4: Function reference 12").
_EDGE_NUMBER = re.compile(r"^(?P<start>\d{1,4})\D|\D(?P<end>\d{1,4})$")
# Layout thresholds, in units of the font size or of the usual line pitch.
_PARAGRAPH_GAP = 1.3  # a baseline gap this many usual line pitches apart starts a paragraph
_SIZE_STEP = 1.15  # a font size change of this ratio starts a paragraph
_HEADING_SIZE = 1.15  # lines this much larger than the body text, short and unpunctuated, are headings
_HEADING_MAX_CHARS = 120
_LABEL_RUN = 3  # headings of one size one after another, with no text between: a drawing's labels
_TITLE_PITCH = 1.5  # a title's wrapped lines are at most this many font sizes apart (a heading is further)
# A gap wider than this many font sizes between two pieces of a line separates table cells (word spaces
# are about a quarter of it); a table is two or more such lines in a row.
_CELL_GAP = 1.0
# Pieces of one line join with a space where PDFium's text has one at their edge, or where they stand this
# many font sizes apart; else they are one word: a browser's PDF sets letter-spaced headings and code glyph by
# glyph, and ligatures ("ﬁ", "ﬀ") as pieces of their own ("T h e S t a c k", "di ff erent" otherwise).
_WORD_GAP = 0.5
# A list item starts with a bullet glyph, a dash, or "1." / "a)": it starts a paragraph, and its wrapped
# lines (a hanging indent) continue it. Bullet glyphs are dropped from the text.
# A bullet glyph needs no space after it (a CJK item is often set "•新装电表"), a dash or a number does.
_GLYPH = "[•◦▪▫●○■□►▸‣⁃·]"
_LIST_ITEM = re.compile(rf"^(?:{_GLYPH}\s*(?=\S)|(?:[\-–—*]|\(?\d{{1,3}}[.)]|\(?[a-z][.)])\s+)")
_UNORDERED_ITEM = re.compile(rf"^(?:{_GLYPH}\s*(?=\S)|[\-–—*]\s+)")
_BULLET = re.compile(rf"^{_GLYPH}\s*")
_TOC_LINE = re.compile(r"(?:\.\s*){4,}\s*(?:\d+|[ivxlcdm]+)\s*$", re.IGNORECASE)


def _read_pdf(data: bytes, suffix: str) -> _Content:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise UnreadableDocumentError("encrypted", "encrypted PDF: it needs a password to open") from exc
        raise UnreadableDocumentError("corrupt", f"corrupt PDF: {_pdfium_reason(exc)}") from exc
    try:
        pages = [_pdf_lines(pdf[i]) for i in range(len(pdf))]
        meta_title = _metadata_title(pdf.get_metadata_dict().get("Title"))
    finally:
        pdf.close()
    if not pages:
        raise UnreadableDocumentError("corrupt", "corrupt PDF: it has no pages")
    if not any(pages):
        raise UnreadableDocumentError("no_text", "no text layer: scanned PDF? OCR is not supported")
    title = meta_title or _pdf_title(next(page for page in pages if page))
    pages = _drop_running_lines(pages)
    first_line = next((line.text for page in pages for line in page), None)
    return _Content(
        format="pdf", blocks=tuple(_pdf_blocks(pages)), title=title or first_line, pages=len(pages)
    )


def _pdf_title(lines: Sequence[_Line]) -> str | None:
    """The title a first page sets in its largest type, when that stands out from its body text (the size
    of most of its characters) as a heading does; its lines joined when it wraps (``_title_wraps``). Read
    before running headers are dropped: a title repeated atop every page is still the title."""
    sizes: Counter[float] = Counter()
    for line in lines:
        sizes[round(line.size, 1)] += len(line.text)
    body = max(sizes, key=lambda size: sizes[size])
    top = max(range(len(lines)), key=lambda i: lines[i].size)
    if lines[top].size < body * _HEADING_SIZE:
        return None
    end = top + 1
    while end < len(lines) and end - top < 3 and _title_wraps(lines[end - 1], lines[end]):
        end += 1
    return join_lines(line.text for line in lines[top:end])


def _title_wraps(line: _Line, below: _Line) -> bool:
    """Whether ``below`` is the next line of a title wrapped from ``line``: the same size, one line pitch
    down (``_TITLE_PITCH``), and lined up with it on the left, the right or the centre. A section heading
    set in the title's size right under it ("Overview" under a centred title) has space before it and
    starts at the text's margin."""
    size = line.size
    return (
        abs(below.size - size) < 0.1
        and 0 < line.baseline - below.baseline <= _TITLE_PITCH * size
        and (
            abs(line.left - below.left) < size
            or abs(line.right - below.right) < size
            or abs(line.left + line.right - below.left - below.right) < 2 * size
        )
    )


# Titles that writers put in a file's metadata when the author gave none: ReportLab's "untitled" (its
# canvas) and "(anonymous)" (its document templates), Dreamweaver's "Untitled Document", Word's "Document1",
# "Untitled-1", "无标题", "新建 Microsoft Word 文档". A closed class of words, perhaps bracketed, perhaps
# numbered; no title at all, so the text's own title (a PDF's largest type on page 1) is taken instead.
_PLACEHOLDER_TITLE = re.compile(
    r"^(?:untitled(?: document)?|unknown|unspecified|anonymous|none|null|no title|title"
    r"|(?:new |blank )?document|(?:powerpoint )?presentation"
    r"|无标题(?:文档)?|未命名(?:文档)?|新建.{0,20}?文档|文档|演示文稿)[\s\d_-]*$",
    re.IGNORECASE,
)
# A file's name stands in for a title where a driver that prints a file to PDF writes it: the file name
# ("report.docx", "C:\\Temp\\notes.txt"), or Office's "Microsoft Word - report.doc". It names the file,
# which the document's id already does, and says nothing of the text; an extension needs a character
# other than a space or a dot before it ("Why .docx?" and "ASP.NET" are titles).
_FILE_NAME_TITLE = re.compile(
    r"[^\s.]\.(?:docx?|dotx?|rtf|odt|odp|ods|pdf|txt|text|md|markdown|rst|html?|xhtml|tex|dvi|e?ps|xps"
    r"|pptx?|xlsx?|csv|pages|key|numbers|indd|wpd|wps)$"
    r"|^microsoft (?:office )?(?:word|powerpoint|excel|publisher|visio) - ",
    re.IGNORECASE,
)


def _metadata_title(value: str | None) -> str | None:
    """The title a file's metadata gives, or None when it gives none or a writer's stand-in for one
    (``_PLACEHOLDER_TITLE``, ``_FILE_NAME_TITLE``): a stand-in would name every such document alike,
    or after its file, while the text's own title (the caller's fallback) says what it is about."""
    title = clean(value or "")
    core = title.strip("()[]<>（）【】 ")
    if not core or _PLACEHOLDER_TITLE.match(core) or _FILE_NAME_TITLE.search(core):
        return None
    return title


def _pdfium_reason(exc: Exception) -> str:
    match = re.search(r"\(PDFium: ([^)]*)\)", str(exc))
    return match.group(1) if match else str(exc)


def _pdf_lines(page: Any) -> list[_Line]:
    """The page's text lines in PDFium's reading order: its text rectangles, merged where they share a
    baseline, each with the baseline and font size of its first character."""
    import pypdfium2.raw as pdfium_c

    textpage = page.get_textpage()
    x, y = ctypes.c_double(), ctypes.c_double()
    try:
        lines: list[_Line] = []
        for i in range(textpage.count_rects()):
            left, bottom, right, top = textpage.get_rect(i)
            raw = textpage.get_text_bounded(left, bottom, right, top)
            text = clean(raw)
            if not text:
                continue
            middle = (bottom + top) / 2
            index = pdfium_c.FPDFText_GetCharIndexAtPos(textpage.raw, left + 0.5, middle, 2.0, 2.0)
            if index < 0:  # no character right at the left edge (rotated or odd glyph boxes): look wider
                index = pdfium_c.FPDFText_GetCharIndexAtPos(
                    textpage.raw, (left + right) / 2, middle, 9.0, 9.0
                )
            size = float(pdfium_c.FPDFText_GetFontSize(textpage.raw, index)) if index >= 0 else 0.0
            # A bullet glyph often comes in a smaller font than its text: also probe the line's middle.
            mid_index = pdfium_c.FPDFText_GetCharIndexAtPos(
                textpage.raw, (left + right) / 2, middle, 4.0, 4.0
            )
            if mid_index >= 0:
                size = max(size, float(pdfium_c.FPDFText_GetFontSize(textpage.raw, mid_index)))
            if index < 0 or not pdfium_c.FPDFText_GetCharOrigin(textpage.raw, index, x, y):
                y.value = bottom
            size = size if size > 0 else top - bottom
            prev = lines[-1] if lines else None
            spaced_end = raw[-1:].isspace()
            if prev is not None and abs(prev.baseline - y.value) < 0.5 * min(prev.size, size):
                gap = left - prev.right
                space = prev.spaced_end or raw[:1].isspace() or gap > _WORD_GAP * min(prev.size, size)
                if gap > _CELL_GAP * min(prev.size, size) and not _BULLET.fullmatch(prev.text):
                    cells = (*(prev.cells or (prev.text,)), text)
                    edges = (*(prev.edges or ((prev.left, prev.right),)), (left, right))
                elif prev.cells:
                    cells = (*prev.cells[:-1], join_words(prev.cells[-1], text, space=space))
                    edges = (*prev.edges[:-1], (prev.edges[-1][0], right))
                else:
                    cells, edges = (), ()
                lines[-1] = _Line(
                    join_words(prev.text, text, space=space),
                    prev.left,
                    max(prev.right, right),
                    prev.baseline,
                    max(prev.size, size),
                    cells,
                    edges,
                    spaced_end,
                )
            else:
                lines.append(_Line(text, left, right, y.value, size, spaced_end=spaced_end))
        return lines
    finally:
        textpage.close()


def join_words(a: str, b: str, *, space: bool = True) -> str:
    """Join two pieces of one line: with a space if a word ends between them (``space``) and neither side
    is CJK."""
    a, b = a.rstrip(), b.lstrip()
    if not a or not b or not space:
        return a + b
    return a + b if _is_wide(a[-1]) or _is_wide(b[0]) else f"{a} {b}"


def _running_key(text: str) -> str:
    return _DIGITS.sub("#", clean(text).lower())


def _drop_running_lines(pages: list[list[_Line]]) -> list[list[_Line]]:
    """Drop running headers/footers (edge lines repeated across pages, digits normalised), bare page
    numbers at the top or bottom of a page, and table-of-contents lines (dot leaders, a page number):
    the headings they list come again with their text."""

    def edges(lines: list[_Line]) -> set[int]:
        n = len(lines)
        return {*range(min(_EDGE_LINES, n)), *range(max(0, n - _EDGE_LINES), n)}

    counts: Counter[str] = Counter()
    # Per key, the (page index, number at the line's start or end) of each page it heads or foots.
    numbered: dict[str, list[tuple[int, int]]] = {}
    for index, lines in enumerate(pages):
        keys = {_running_key(lines[i].text): clean(lines[i].text) for i in edges(lines)}
        counts.update(keys.keys())
        for key, text in keys.items():
            if number := _EDGE_NUMBER.search(text):
                page = int(number.group("start") or number.group("end"))
                numbered.setdefault(key, []).append((index, page))
    needed = max(2, math.ceil(_RUNNING_SHARE * len(pages)))
    # A chapter's own header ("Chapter 4: Function reference 12") runs over that chapter's pages only, but
    # its number is the page number: it goes up with the page, one for one.
    paged = {key for key, seen in numbered.items() if len(seen) >= 2 and len({n - i for i, n in seen}) == 1}
    out = []
    for lines in pages:
        drop = {
            i
            for i in edges(lines)
            if counts[key := _running_key(lines[i].text)] >= needed
            or key in paged
            or _PAGE_NUMBER.match(lines[i].text)
        }
        drop.update(i for i, line in enumerate(lines) if _TOC_LINE.search(line.text))
        out.append([line for i, line in enumerate(lines) if i not in drop])
    return out


def _pdf_blocks(pages: list[list[_Line]]) -> list[Block]:
    """Reflow each page's lines into paragraphs; a paragraph cut by a page break (no sentence-final
    punctuation at the end of the page, no indent on the next) is joined and keeps its first page.
    Short unpunctuated paragraphs in a larger font are headings: they give the section path."""
    sizes: Counter[float] = Counter()
    for lines in pages:
        for line in lines:
            sizes[round(line.size, 1)] += len(line.text)
    body = sizes.most_common(1)[0][0] if sizes else 0.0
    pitch = _usual_pitch(pages)
    paragraphs: list[tuple[int, list[_Line]]] = []
    for number, lines in enumerate(pages, 1):
        page_paragraphs = _paragraph_lines(lines, pitch)
        if paragraphs and page_paragraphs and _continues(paragraphs[-1][1], page_paragraphs[0], lines, body):
            paragraphs[-1][1].extend(page_paragraphs.pop(0))
        paragraphs.extend((number, para) for para in page_paragraphs)
    kinds = _pdf_headings([para for _, para in paragraphs], body)
    sized = zip(paragraphs, kinds, strict=True)
    heading_sizes = sorted({round(p[0].size, 1) for (_, p), kind in sized if kind == "heading"}, reverse=True)
    sections = _Sections()
    blocks: list[Block] = []
    in_list = False  # consecutive bulleted items form one block, an item a line (as in Markdown, DOCX)
    rows: list[tuple[int, _Line]] = []  # consecutive table rows: one-line paragraphs with aligned cells
    margin = _text_margin(pages, body)
    set_in_at: float | None = None  # where the last paragraph was set in from the margin (None: it was not)

    def flush_rows() -> None:
        if len(rows) > 1:
            cells = [list(line.cells) for _, line in rows]
            header = cells[0] if _pdf_header(cells) else None
            lines = table_lines(cells[1:], header) if header else table_lines(cells)
            blocks.append(Block("\n".join(lines), sections.path, rows[0][0]))
        elif rows:  # one line with a wide gap is no table
            blocks.append(Block(rows[0][1].text, sections.path, rows[0][0]))
        rows.clear()

    for (number, para), kind in zip(paragraphs, kinds, strict=True):
        if kind == "label":
            continue
        heading = kind == "heading"
        if len(para) == 1 and para[0].cells and not heading:
            if rows and not _aligned(rows[-1][1], para[0]):  # another table, or a stray line
                flush_rows()
            rows.append((number, para[0]))
            in_list = False
            continue
        flush_rows()
        text = join_lines((line.text for line in para), dehyphenate=True)
        if heading:
            sections.enter(heading_sizes.index(round(para[0].size, 1)) + 1, text)
            in_list = False
            continue
        # Numbered items stay paragraphs of their own: in PDFs they are as often numbered clauses.
        item = bool(_UNORDERED_ITEM.match(text))
        text = _BULLET.sub("", text)
        # One-line paragraphs set in from the margin, one under the other or under a lead-in, are the
        # items of a list whose bullets are drawn, not written (a browser's PDF), or the lines of a code
        # block; a set-in paragraph of several lines is prose (a quotation, a definition's text).
        whole = _set_in(para, margin)
        at = whole if len(para) == 1 else None
        under = bool(blocks) and blocks[-1].section == sections.path and not in_list
        run = (
            at is not None
            and under
            and (
                (set_in_at is not None and abs(at - set_in_at) < 0.5 * para[0].size)
                or introduces_next(blocks[-1].text)
            )
        )
        if (item and in_list and blocks[-1].section == sections.path) or run:
            blocks[-1] = Block(f"{blocks[-1].text}\n{text}", blocks[-1].section, blocks[-1].page)
        else:
            blocks.append(Block(text, sections.path, number))
        in_list = item
        # A list goes on under a one-line item, or under a paragraph whose last line alone is set in (a
        # lead-in joined across a page break with the first item), not under set-in prose.
        set_in_at = at if len(para) == 1 else _set_in(para[-1:], margin) if whole is None else None
    flush_rows()
    return blocks


def _text_margin(pages: Sequence[Sequence[_Line]], body: float) -> float:
    """The left edge that most of the body text starts at (by characters, in body-size lines)."""
    lefts: Counter[int] = Counter()
    for lines in pages:
        for line in lines:
            if abs(line.size - body) < 0.5:
                lefts[round(line.left)] += len(line.text)
    return float(lefts.most_common(1)[0][0]) if lefts else 0.0


def _set_in(para: Sequence[_Line], margin: float) -> float | None:
    """Where a paragraph's lines start when all of them start at one place set in from the margin by a
    font size or more, else None."""
    left = para[0].left
    if left < margin + para[0].size or any(abs(line.left - left) > 0.5 * line.size for line in para):
        return None
    return left


def _aligned(a: _Line, b: _Line) -> bool:
    """Whether two lines' cells are the same columns: as many, each pair aligned left, right or centre
    (prose whose word gaps happen to be wide on two lines does not line up)."""
    tolerance = max(a.size, b.size)
    return len(a.edges) == len(b.edges) and all(
        abs(al - bl) < tolerance or abs(ar - br) < tolerance or abs(al + ar - bl - br) < 2 * tolerance
        for (al, ar), (bl, br) in zip(a.edges, b.edges, strict=True)
    )


def _pdf_header(rows: Sequence[Sequence[str]]) -> bool:
    """Whether a PDF table's first row is its header (a PDF marks none): three or more cells, all labels
    (none a bare number), and every row with as many cells."""
    first = rows[0]
    return (
        len(first) >= 3
        and all(len(r) == len(first) for r in rows)
        and not any(_NUMBER.fullmatch(c) for c in first)
    )


def _usual_pitch(pages: list[list[_Line]]) -> float:
    """The usual distance between consecutive baselines of same-size lines (the lower quartile, so that
    paragraph gaps do not count)."""
    pitches = sorted(
        a.baseline - b.baseline
        for lines in pages
        for a, b in zip(lines, lines[1:], strict=False)
        if abs(a.size - b.size) < 0.5 and a.baseline - b.baseline > 0.8 * a.size
    )
    if not pitches:
        return 0.0
    return pitches[len(pitches) // 4]


def _paragraph_lines(lines: list[_Line], pitch: float) -> list[list[_Line]]:
    """Split a page's lines where the baseline gap is wider than the usual line pitch, where the font
    size changes, where a line is indented past the text's left edge (a first-line indent), or after a
    short line that ends a sentence."""
    if not lines:
        return []
    left_edge = min(line.left for line in lines)
    right_edge = max(line.right for line in lines)
    paragraphs: list[list[_Line]] = [[lines[0]]]
    for prev, line in zip(lines, lines[1:], strict=False):
        gap = prev.baseline - line.baseline
        reference = pitch or 1.2 * line.size
        size_change = max(prev.size, line.size) > _SIZE_STEP * max(1e-6, min(prev.size, line.size))
        first = paragraphs[-1][0]
        hanging = bool(_LIST_ITEM.match(first.text)) and line.left > first.left  # a list item's wrap
        indented = (
            not hanging and line.left > left_edge + line.size and prev.left <= left_edge + 0.5 * prev.size
        )
        short_end = prev.right < right_edge - 2 * prev.size and prev.text.endswith(_SENTENCE_FINAL)
        item = bool(_LIST_ITEM.match(line.text))
        row = bool(line.cells or prev.cells)  # a table row is a paragraph of its own
        if (
            gap <= 0
            or gap > _PARAGRAPH_GAP * reference
            or size_change
            or indented
            or short_end
            or item
            or row
        ):
            paragraphs.append([line])
        else:
            paragraphs[-1].append(line)
    return paragraphs


def _pdf_headings(paragraphs: Sequence[list[_Line]], body: float) -> list[Literal["heading", "label"] | None]:
    """Which paragraphs are headings (``_is_pdf_heading``), but for ``_LABEL_RUN`` or more among
    paragraphs in a row set in one size larger than the body's, no body text between them: those are the
    labels of a drawing ("ptr", "len 5", "capacity 5" in a browser's PDF of a diagram), left out; as
    headings they headed the rest of the document, the real headings after them nested under them."""
    kinds: list[Literal["heading", "label"] | None] = [
        "heading" if _is_pdf_heading(para, body) else None for para in paragraphs
    ]
    start = 0
    while start < len(kinds):
        end = start
        size = round(paragraphs[start][0].size, 1)
        while end < len(kinds) and round(paragraphs[end][0].size, 1) == size:
            end += 1
        if size > body and kinds[start:end].count("heading") >= _LABEL_RUN:
            kinds[start:end] = ["label" if kind else None for kind in kinds[start:end]]
        start = end
    return kinds


def _is_pdf_heading(para: list[_Line], body: float) -> bool:
    text = " ".join(line.text for line in para)
    return (
        body > 0
        and len(para) <= 2
        and all(line.size >= _HEADING_SIZE * body for line in para)
        and len(text) <= _HEADING_MAX_CHARS
        and not text.endswith(_SENTENCE_FINAL)
    )


def _continues(previous: list[_Line], head: list[_Line], lines: list[_Line], body: float) -> bool:
    """Whether the first paragraph of a page continues the last one of the previous page."""
    last, first = previous[-1], head[0]
    left_edge = min(line.left for line in lines)
    return (
        not last.text.endswith(_SENTENCE_FINAL)
        and not (last.cells or first.cells)
        and abs(last.size - first.size) < 0.5
        and first.left <= left_edge + 0.5 * first.size
        and not _is_pdf_heading(previous, body)
    )


# ---------------------------------------------------------------------------------------------------
# DOCX

_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _read_docx(data: bytes, suffix: str) -> _Content:
    import docx
    from docx.table import Table

    if data.startswith(_OLE_MAGIC):
        raise UnreadableDocumentError(
            "encrypted", "encrypted DOCX (password-protected), or a Word 97-2003 .doc renamed to .docx"
        )
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # zipfile, lxml and python-docx each have their own errors for a bad file
        raise UnreadableDocumentError("corrupt", f"corrupt DOCX: {type(exc).__name__}: {exc}") from exc
    sections = _Sections()
    blocks: list[Block] = []
    items: list[str] = []  # consecutive list paragraphs, one block
    numbers = _ListNumbers(document)
    title: str | None = None
    first_h1: str | None = None

    def flush() -> None:
        if items:
            blocks.append(Block("\n".join(items), sections.path))
            items.clear()

    for item in document.iter_inner_content():
        if isinstance(item, Table):
            flush()
            rows = _table_rows(item)
            if rows:
                blocks.append(Block("\n".join(rows), sections.path))
            continue
        text = join_lines(item.text.split("\n"))
        if _is_toc(item):  # a table of contents: the headings it lists come again with their text
            continue
        level = _heading_level(item)
        if level is not None:
            flush()
            if level == 0:
                title = title or text or None
            else:
                if level == 1 and first_h1 is None:
                    first_h1 = text or None
                sections.enter(level, text)
        elif _is_list_paragraph(item):
            label = numbers.label(item)
            if text:
                items.append(f"{label}{'' if _is_wide(label[-1]) else ' '}{text}" if label else text)
        else:
            flush()
            if text:
                blocks.append(Block(text, sections.path))
    flush()
    core_title = _metadata_title(document.core_properties.title)
    return _Content(format="docx", blocks=tuple(blocks), title=title or core_title or first_h1)


def _style_chain(paragraph: object) -> Iterator[object]:
    style = getattr(paragraph, "style", None)
    seen = 0
    while style is not None and seen < 20:  # base styles; bounded against a cyclic definition
        yield style
        style = style.base_style
        seen += 1


def _heading_level(paragraph: object) -> int | None:
    """0 for the Title style, N for Heading N (or a style or paragraph with outline level N-1), else None."""
    own = paragraph._p.xpath("./w:pPr/w:outlineLvl/@w:val")  # type: ignore[attr-defined]
    for style in _style_chain(paragraph):
        name = style.name or ""  # type: ignore[attr-defined]
        if name.lower() == "title":
            return 0
        match = _HEADING_STYLE.match(name)
        if match:
            return int(match.group(1))
        own = own or style.element.xpath("./w:pPr/w:outlineLvl/@w:val")  # type: ignore[attr-defined]
    if own and own[0].isdigit() and int(own[0]) < 9:  # 9 is "body text"
        return int(own[0]) + 1
    return None


class _ListNumbers:
    """The numbers Word shows before numbered list paragraphs ("1.", "b)", "(iii)", "一、"), counted as
    Word counts them: per list (``numId``) and level, a level restarting under its parent. Bullets and
    formats with no plain rendering give no label."""

    def __init__(self, document: Any) -> None:
        try:
            self.numbering: Any = document.part.numbering_part.element
        except (KeyError, NotImplementedError, AttributeError):  # no numbering part
            self.numbering = None
        self.counts: dict[str, list[int]] = {}

    def label(self, paragraph: Any) -> str:
        num_id, level = self._reference(paragraph)
        if self.numbering is None or num_id is None or num_id == "0" or not 0 <= level < 9:
            return ""
        abstract = _wx(self.numbering, f'./w:num[@w:numId="{num_id}"]/w:abstractNumId/@w:val')
        if not abstract or not abstract[0].isdigit():
            return ""
        levels = {}
        for lvl in _wx(self.numbering, f'./w:abstractNum[@w:abstractNumId="{abstract[0]}"]/w:lvl'):
            ilvl = lvl.get(_W + "ilvl", "")
            if ilvl.isdigit():
                levels[int(ilvl)] = lvl
        if level not in levels:
            return ""
        counts = self.counts.setdefault(num_id, [])
        while len(counts) <= level:
            counts.append(_lvl_value(levels.get(len(counts)), "start", "1", int) - 1)
        counts[level] += 1
        del counts[level + 1 :]
        text = _lvl_value(levels[level], "lvlText", "", str)
        if not re.search(r"%[1-9]", text):  # a bullet glyph, or fixed text: decoration, no number
            return ""

        def number(match: re.Match[str]) -> str:
            at = int(match.group(1)) - 1
            if at >= len(counts):
                raise ValueError("a level above the paragraph's")
            return _format_number(counts[at], _lvl_value(levels.get(at), "numFmt", "decimal", str))

        try:
            return clean(re.sub(r"%([1-9])", number, text))
        except ValueError:
            return ""

    @staticmethod
    def _reference(paragraph: Any) -> tuple[str | None, int]:
        """The paragraph's list (``numId``) and level, from its own properties, else its style's."""
        styles: list[Any] = list(_style_chain(paragraph))
        for element in (paragraph._p, *(style.element for style in styles)):
            ids = _wx(element, "./w:pPr/w:numPr/w:numId/@w:val")
            if ids:
                levels = _wx(paragraph._p, "./w:pPr/w:numPr/w:ilvl/@w:val") or _wx(
                    element, "./w:pPr/w:numPr/w:ilvl/@w:val"
                )
                level = int(levels[0]) if levels and levels[0].isdigit() else 0
                return (ids[0] if ids[0].isdigit() else None), level
        return None, 0


def _wx(element: Any, path: str) -> list[Any]:
    """XPath with the WordprocessingML prefix, on python-docx's elements and plain lxml ones alike."""
    from lxml import etree

    return etree._Element.xpath(element, path, namespaces={"w": _W[1:-1]})


def _lvl_value(lvl: Any, name: str, default: str, kind: Callable[[str], Any]) -> Any:
    values = _wx(lvl, f"./w:{name}/@w:val") if lvl is not None else []
    try:
        return kind(values[0]) if values else kind(default)
    except ValueError:
        return kind(default)


_ROMAN = ((1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"), (50, "l"), (40, "xl"),
          (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"))  # fmt: skip
_CHINESE_DIGITS = "零一二三四五六七八九"


def _format_number(n: int, fmt: str) -> str:
    """``n`` in a Word number format; ValueError for a bullet or a format with no plain rendering."""
    if fmt in ("decimal", "decimalFullWidth", "decimalHalfWidth"):
        return str(n)
    if fmt == "decimalZero":
        return f"{n:02d}"
    if fmt in ("lowerLetter", "upperLetter") and n > 0:
        letter = chr(ord("a") + (n - 1) % 26) * ((n - 1) // 26 + 1)
        return letter.upper() if fmt == "upperLetter" else letter
    if fmt in ("lowerRoman", "upperRoman") and 0 < n < 4000:
        out, rest = "", n
        for value, digits in _ROMAN:
            while rest >= value:
                out, rest = out + digits, rest - value
        return out.upper() if fmt == "upperRoman" else out
    if fmt in ("chineseCounting", "chineseCountingThousand", "chineseLegalSimplified") and 0 < n < 100:
        tens, ones = divmod(n, 10)
        head = ("" if tens == 1 else _CHINESE_DIGITS[tens]) + "十" if tens else ""
        return head + (_CHINESE_DIGITS[ones] if ones else "")
    raise ValueError(f"no plain rendering of {fmt}")


def _is_toc(paragraph: Any) -> bool:
    name = (paragraph.style.name or "").lower() if paragraph.style is not None else ""
    return name.startswith("toc") or name.startswith("table of contents")


def _is_list_paragraph(paragraph: object) -> bool:
    if paragraph._p.xpath("./w:pPr/w:numPr"):  # type: ignore[attr-defined]
        return True
    for style in _style_chain(paragraph):
        if (style.name or "").lower().startswith("list") or style.element.xpath("./w:pPr/w:numPr"):  # type: ignore[attr-defined]
            return True
    return False


def _table_rows(table: Any) -> list[str]:
    """The table's rows as lines (``table_lines``), the first row as the header when it is one
    (``_docx_header``). A cell merged across columns counts once, in its first column."""
    rows = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            merged = id(cell._tc) in seen  # a merged cell repeats in every grid column it spans
            seen.add(id(cell._tc))
            cells.append("" if merged else join_lines(cell.text.split("\n")))
        if any(cells):
            rows.append(cells)
    if len(rows) > 1 and _docx_header(table, rows[0]):
        return table_lines(rows[1:], rows[0])
    return table_lines(rows)


_NUMBER = re.compile(r"[\d\s.,%+\-−/:$€£¥]*\d[\d\s.,%+\-−/:$€£¥]*")
_HEX = re.compile(r"[0-9A-Fa-f]{1,4}")
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _docx_header(table: Any, first: Sequence[str]) -> bool:
    """Whether a table's first row is its header: marked as one (Word's "Repeat as header row"), or
    styled as one (the table look's "Header Row", on by default in Word) over three or more columns of
    labels (no cell empty or a bare number). Two columns are more often label | value pairs than
    columns under a header, so a styled header alone does not make one there."""
    tr = table.rows[0]._tr
    if any(v not in ("0", "false", "off") for v in tr.xpath("./w:trPr/w:tblHeader/@w:val")) or (
        tr.xpath("./w:trPr/w:tblHeader[not(@w:val)]")
    ):
        return True
    look = table._tbl.xpath("./w:tblPr/w:tblLook")
    if not look:
        return False
    first_row = look[0].get(_W + "firstRow")
    val = look[0].get(_W + "val")
    if first_row is not None:
        styled = first_row in ("1", "true", "on")
    else:  # the older form: a bit mask, 0x0020 the header row
        styled = bool(val and _HEX.fullmatch(val) and int(val, 16) & 0x20)
    return styled and len(first) >= 3 and all(c and not _NUMBER.fullmatch(c) for c in first)


_READERS: dict[str, Callable[[bytes, str], _Content]] = {
    "text": _read_textual,
    "rst": _read_rst,
    "markdown": _read_textual,
    "html": _read_html,
    "pdf": _read_pdf,
    "docx": _read_docx,
}

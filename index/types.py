"""Frozen records that flow through the pipeline: documents, passages, hits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Block:
    """One paragraph of a normalised document, and where it sits: the heading path above it (outermost
    first) and, for paged formats (PDF), its 1-based page. ``code`` holds the spans of ``text`` that are a
    code block to quote whole (``index.readers.code_spans``), each one unit for the sentence
    splitter: its lines are no sentences of their own."""

    text: str
    section: tuple[str, ...] = ()
    page: int | None = None
    code: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Document:
    """One source file, normalised by its reader (``index.readers``): text blocks plus metadata.

    ``path`` is relative to the documents folder; ``format`` names the reader ("article", "markdown",
    "text", "html", "pdf", "docx"); ``encoding`` is the detected text encoding (None for binary formats);
    ``pages`` the page count of paged formats.
    """

    id: str
    title: str
    blocks: tuple[Block, ...]
    path: str = ""
    format: str = "text"
    encoding: str | None = None
    pages: int | None = None
    date: str | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    source_url: str | None = None

    @property
    def paragraphs(self) -> tuple[str, ...]:
        return tuple(b.text for b in self.blocks)


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrievable unit: a paragraph, or a sentence-aligned part of a long paragraph.

    ``paragraph`` is 1-based. ``start``/``end`` are character offsets of ``text``
    inside the original paragraph (``paragraph_text[start:end] == text``). ``section`` is the heading path
    of its paragraph, ``page`` its 1-based page (PDF), ``lang`` the language of its text as its script
    tells ("zh" for Han, "en" for Latin, "und" otherwise), so that every (question, passage) pair is
    scored for its own languages. ``code``: spans of ``text`` that are code blocks (``Block.code``).
    """

    id: str
    document_id: str
    title: str
    paragraph: int
    text: str
    start: int
    end: int
    part: int = 0
    section: tuple[str, ...] = ()
    page: int | None = None
    lang: str = "und"
    code: tuple[tuple[int, int], ...] = ()

    @staticmethod
    def make_id(document_id: str, paragraph: int, part: int = 0) -> str:
        return f"{document_id}:{paragraph}" + (f".{part}" if part else "")


@dataclass(frozen=True, slots=True)
class Hit:
    """A passage returned for a question, with its fused score and the per-signal scores.

    ``score`` ranks the hits of one question: the calibrated probability of relevance in hybrid and dense
    modes, BM25 in lexical mode; ``dense_score`` mixes the passage's similarity with its best sentence's,
    with a weight that depends on the question's script; ``similarity`` is the plain cosine of the
    question and passage vectors, the one score comparable across questions and modes. ``same_text``
    holds the ids of lower-ranked passages with the same text (a paragraph repeated in this or another
    document), left out of the ranking so that one text fills one place.
    """

    passage: Passage
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None
    similarity: float | None = None
    same_text: tuple[str, ...] = ()

"""Frozen records that flow through the pipeline: documents, passages, hits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Document:
    """One parsed source file."""

    id: str
    title: str
    paragraphs: tuple[str, ...]
    path: str = ""
    date: str | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    source_url: str | None = None


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrievable unit: a paragraph, or a sentence-aligned part of a long paragraph.

    ``paragraph`` is 1-based. ``start``/``end`` are character offsets of ``text``
    inside the original paragraph (``paragraph_text[start:end] == text``).
    """

    id: str
    document_id: str
    title: str
    paragraph: int
    text: str
    start: int
    end: int
    part: int = 0

    @staticmethod
    def make_id(document_id: str, paragraph: int, part: int = 0) -> str:
        return f"{document_id}:{paragraph}" + (f".{part}" if part else "")


@dataclass(frozen=True, slots=True)
class Hit:
    """A passage returned for a question, with its fused score and the per-signal scores.

    ``score`` ranks the hits of one question and is on a different scale per mode (RRF, dense or BM25);
    ``dense_score`` mixes the passage's similarity with its best sentence's, with a weight that depends
    on the question's script; ``similarity`` is the plain cosine of the question and passage vectors,
    the one score comparable across questions and modes.
    """

    passage: Passage
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None
    similarity: float | None = None

"""Readers: one per file format, each turning a file into a normalised ``Document``.

(Placeholder while the full set of readers is written: article files and UTF-8 text, as before.)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from index.documents import SUFFIXES, document_id_for, parse_document
from index.errors import DocumentError, UnreadableDocumentError
from index.types import Document

__all__ = ["FORMATS", "document_id_for", "read_document"]

FORMATS: dict[str, str] = {s: "markdown" if s in (".md", ".markdown") else s.lstrip(".") for s in SUFFIXES}


def read_document(path: Path, root: Path) -> Document:
    """The document in ``path``; ``UnreadableDocumentError`` (with a reason) when no reader can use it."""
    if path.suffix.lower() not in SUFFIXES:
        supported = ", ".join(SUFFIXES)
        raise UnreadableDocumentError(
            "unsupported_type", f"unsupported file type {path.suffix or '(none)'} (supported: {supported})"
        )
    try:
        doc = parse_document(path, root)
    except DocumentError as exc:
        raise UnreadableDocumentError("unreadable", str(exc)) from exc
    if not doc.blocks:
        raise UnreadableDocumentError("empty", "the file holds no text")
    return replace(doc, path=path.relative_to(root).as_posix())

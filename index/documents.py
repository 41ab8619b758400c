"""The corpus folder: which files it holds, reading them all, and its content hash.

Reading one file is ``index.readers`` (one reader per format); the names below that moved there are
re-exported so that existing callers keep working.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path

from index.errors import EmptyCorpusError, UnreadableDocumentError
from index.readers import FORMATS, clean, decode_text, document_id_for, read_document
from index.types import Document

__all__ = [
    "FORMATS",
    "SUFFIXES",
    "clean",
    "corpus_hash",
    "decode_text",
    "document_files",
    "document_id_for",
    "load_documents",
    "parse_document",
    "read_document",
]

log = logging.getLogger(__name__)

SUFFIXES = tuple(FORMATS)


def parse_document(path: Path, root: Path | None = None) -> Document:
    """Read one file (``root`` defaults to its folder); ``UnreadableDocumentError`` says why it cannot be."""
    return read_document(path, root or path.parent)


def _hidden(rel: Path) -> bool:
    # dot files and folders, and the "~$name.docx" lock files Word leaves beside an open document
    return any(part.startswith((".", "~$")) for part in rel.parts)


def document_files(root: Path) -> list[Path]:
    """Every file under ``root`` but hidden ones, sorted: files of unknown types are included, so that the
    reader reports them as skipped with a reason instead of ignoring them without a word."""
    if not root.is_dir():
        raise EmptyCorpusError(f"documents folder {root} does not exist; create it and add article files")
    return sorted(p for p in root.rglob("*") if p.is_file() and not _hidden(p.relative_to(root)))


def load_documents(root: Path) -> list[Document]:
    """Read every file of the corpus, skipping (and logging) the ones no reader can read; refuse a corpus
    with nothing to index."""
    docs = []
    for path in document_files(root):
        try:
            docs.append(read_document(path, root))
        except UnreadableDocumentError as exc:
            log.warning("skipped %s: %s", path.relative_to(root), exc.reason)
    if not docs:
        raise EmptyCorpusError(
            f"documents folder {root} holds no paragraphs to index "
            f"(looked for {', '.join(SUFFIXES)} files); add documents and run `citeqa build`"
        )
    return docs


def corpus_hash(files: Iterable[Path], root: Path) -> str:
    """Hash of the corpus content and file names: an index is stale when this changes."""
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(root)).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()

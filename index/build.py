"""Build a saved index from a documents folder: parse -> chunk -> embed -> store (atomic write)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from index.chunk import chunk_documents, split_sentences
from index.documents import corpus_hash, document_files, load_documents
from index.embed import Encoder
from index.errors import CiteQAError
from index.store import (
    FORMAT_VERSION,
    FaissStore,
    IndexType,
    Manifest,
    SentenceSpan,
    expected_index_type,
    make_index,
    read_manifest,
    save_index,
    verify_files,
)
from index.types import Passage

SPLITTER_VERSION = 2  # 2: URLs are left out of the embedded text
_URL = re.compile(r"https?://\S+")
Progress = Callable[[int, int], None]  # (done, total)
Status = Literal["missing", "damaged", "stale", "fresh"]


@dataclass(frozen=True, slots=True)
class BuildReport:
    manifest: Manifest
    documents: int
    passages: int
    sentences: int
    seconds: float
    reason: str = ""  # why an existing index was replaced; set by the caller that decided (``ensure_index``)


@dataclass(frozen=True, slots=True)
class IndexStatus:
    state: Status
    reason: str  # why the index is not fresh, in words ("" when it is)


def chunking_params(max_tokens: int) -> dict[str, int]:
    return {"max_passage_tokens": max_tokens, "splitter_version": SPLITTER_VERSION}


def embedding_text(text: str) -> str:
    """What the model sees of a passage or sentence: URLs carry no meaning for it, and a bare URL embeds
    close to every English question (on the seed, the source line outranked the answer for English
    questions), so they are left out; the stored text keeps them."""
    return _URL.sub(" ", text).strip() or text


def sentence_spans(passages: Sequence[Passage]) -> list[SentenceSpan]:
    return [SentenceSpan(row, s, e) for row, p in enumerate(passages) for s, e in split_sentences(p.text)]


def _encode_in_batches(
    encoder: Encoder, texts: list[str], batch: int, done: int, total: int, progress: Progress | None
) -> np.ndarray:
    parts = []
    for i in range(0, len(texts), batch):
        parts.append(encoder.encode_passages(texts[i : i + batch]))
        done += len(texts[i : i + batch])
        if progress:
            progress(done, total)
    return np.vstack(parts) if parts else np.zeros((0, encoder.dimension), dtype=np.float32)


def build_index(
    documents_dir: Path,
    index_dir: Path,
    encoder: Encoder,
    *,
    max_tokens: int = 480,
    batch_size: int = 64,
    progress: Progress | None = None,
    index_type: IndexType = "auto",
) -> BuildReport:
    """Index every document under ``documents_dir`` into ``index_dir`` (replaced atomically)."""
    import time

    t0 = time.perf_counter()
    files = document_files(documents_dir)
    docs = load_documents(documents_dir)
    digest = corpus_hash(files, documents_dir)
    passages = chunk_documents(docs, encoder.count_tokens, max_tokens)
    sentences = sentence_spans(passages)
    total = len(passages) + len(sentences)
    p_texts = [embedding_text(p.text) for p in passages]
    p_vecs = _encode_in_batches(encoder, p_texts, batch_size, 0, total, progress)
    s_texts = [embedding_text(passages[s.passage_row].text[s.start : s.end]) for s in sentences]
    s_vecs = _encode_in_batches(encoder, s_texts, batch_size, len(passages), total, progress)
    store = FaissStore(encoder.dimension, make_index(encoder.dimension, len(passages), index_type))
    store.add(p_vecs)
    manifest = Manifest(
        model=encoder.name,
        model_fingerprint=encoder.fingerprint,
        dimension=encoder.dimension,
        corpus_hash=digest,
        chunking=chunking_params(max_tokens),
        passages=len(passages),
        sentences=len(sentences),
        index_type=store.index_type,
    )
    save_index(
        index_dir,
        manifest=manifest,
        store=store,
        passages=passages,
        documents=docs,
        sentence_vectors=s_vecs,
        sentences=sentences,
    )
    return BuildReport(manifest, len(docs), len(passages), len(sentences), time.perf_counter() - t0)


def index_status(
    documents_dir: Path, index_dir: Path, *, fingerprint: str, max_tokens: int, index_type: IndexType
) -> IndexStatus:
    """``missing`` (or unreadable manifest), ``damaged`` (a data file fails its checksum), ``stale`` (corpus,
    model, chunking, format or FAISS index type changed) or ``fresh``, with the reason in words."""
    try:
        manifest = read_manifest(index_dir)
    except CiteQAError as exc:
        return IndexStatus("missing", str(exc))
    try:
        verify_files(index_dir, manifest)
    except CiteQAError as exc:
        return IndexStatus("damaged", str(exc))
    reason = _stale_reason(manifest, documents_dir, fingerprint, max_tokens, index_type)
    return IndexStatus("stale", reason) if reason else IndexStatus("fresh", "")


def _stale_reason(
    manifest: Manifest, documents_dir: Path, fingerprint: str, max_tokens: int, index_type: IndexType
) -> str:
    if manifest.format_version != FORMAT_VERSION:
        return f"it has format version {manifest.format_version}, this CiteQA writes {FORMAT_VERSION}"
    if manifest.model_fingerprint != fingerprint:
        return (
            f"it was built with model {manifest.model!r} (fingerprint {manifest.model_fingerprint[:12]}), "
            f"the configured model's fingerprint is {fingerprint[:12]}"
        )
    if manifest.chunking != chunking_params(max_tokens):
        return f"it was chunked with {manifest.chunking}, the settings ask for {chunking_params(max_tokens)}"
    if manifest.corpus_hash != corpus_hash(document_files(documents_dir), documents_dir):
        return f"the documents in {documents_dir} changed since it was built"
    expected = expected_index_type(manifest.passages, index_type)
    if manifest.index_type != expected:
        return (
            f"it is an {manifest.index_type}, but CITEQA_INDEX_TYPE={index_type} makes an {expected} "
            f"for {manifest.passages:,} passages"
        )
    return ""

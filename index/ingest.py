"""Ingest: keep a saved index equal to a documents folder, re-embedding only what changed.

file -> reader (``index.readers``) -> normalised document -> chunks -> vectors -> segment -> manifest

The folder is the source of truth. An update scans it and compares every file with the manifest's record
of it: the same size and mtime (or, when those moved, the same sha256) means unchanged and costs nothing; a
new or changed file is read, chunked and embedded; a file gone from the folder is dropped. A file no reader
can use (unknown type, empty, undecodable, corrupt, encrypted) is recorded as skipped with its reason and
never stops the update.

Vectors are reused by the exact text they embed (under the same model fingerprint): every passage and
sentence of every segment the index holds is a cache entry, so an unchanged paragraph of a changed file, or a
paragraph moved to another file, is not embedded again. Texts to embed are sorted by length and encoded in
batches (less padding), with progress (texts, rate, ETA) reported as it goes. Long updates commit every
``CHECKPOINT_SECONDS`` so a killed process loses little; the next update finds the rest still to do.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np

from index.chunk import chunk_document, split_sentences
from index.embed import Encoder
from index.errors import (
    CiteQAError,
    EmptyCorpusError,
    IndexCorruptError,
    StoreUnavailableError,
    UnreadableDocumentError,
)
from index.lexical import tokenize
from index.readers import document_id_for, read_document
from index.store import (
    FORMAT_VERSION,
    DocumentRecord,
    IndexStore,
    Manifest,
    SegmentData,
    SegmentInfo,
    SentenceSpan,
    SkippedFile,
    as_store,
    sha256_file,
    with_generation,
)
from index.types import Document, Passage

log = logging.getLogger("citeqa.ingest")

# Bumped whenever a reader or the splitter changes the passages or sentences a file gives, so that an index
# built before is re-read (its vectors reused by text). 9: search tokens are the folded text's (traditional
# Chinese in simplified characters: ``index.lexical.fold``); a writer's placeholder title ("(anonymous)", a
# file name) is no title; a plain-text line that opens with a section number over its text heads it; a
# paragraph that is only a question is one passage with its answer. 8: pieces of a PDF line join without a
# space unless PDFium's text has one there or they stand a word's gap apart (a browser's PDF set "T h e S t a
# c k", "di ff erent"), lines 1.15 times the body size are headings (was 1.2) but a drawing's labels are left
# out, one-line paragraphs set in from the margin under a lead-in or one another are one list (bullets drawn
# as shapes); plain text set in from the margin (a manual page) has its headings and definition terms, and
# groff's U+2010 line-end hyphens are undone; a Latin "!" or "?" before a lowercase word ends no sentence
# ("The format! macro works ..."). 7: plain text's preformatted paragraphs (a drawing, a drawn or
# column-aligned table, code set apart by indentation or indented under a lead-in, a literal block after "::")
# keep their lines and are code blocks, no longer reflowed into prose (nor taken for headings); a drawing is
# one unit whatever its length (Markdown too); an HTML page that marks no main content keeps its headings as
# sections, and inline code that breaks a line stays in its sentence; a table of contents is left out; a
# sentence that refers forward ("the following tasks.") is joined with the list after it. 6: an HTML list of
# links that a paragraph introduces is kept (the extractor dropped it as navigation); a code block is one
# sentence, not one per line; a PDF chapter header that carries the page number is a running line; plain
# text's underlined headings and list items. 5: an end mark inside brackets ends no sentence, with the reader
# changes made after 4 without a bump (lead-ins joined with what they introduce, PDF titles and tables, HTML
# blocks and definition lists, list numbers kept, "a.m." inside a sentence). 4: a line break (list item, table
# row) ends a sentence, a list number ("1.") starts one, table rows are "header: value" pairs, plain-text
# heading lines are sections; 3: passages embed their section headings; 2: URLs left out of the embedded text.
SPLITTER_VERSION = 9
CHECKPOINT_SECONDS = 60.0  # a long update commits what it has at least this often
GROUP_TEXTS = 2048  # documents are embedded in groups of about this many texts (a possible commit point)
COMPACT_DEAD_SHARE = 0.5  # rewrite live rows into one segment when more than this share of rows is dead
COMPACT_SEGMENTS = 16  # ... or when the index has more segments than this
DEFAULT_ENCODE_RATE = 1500.0  # characters per second, before an update has measured the encoder
SLOW_FILE_SECONDS = 60.0  # warn before embedding a file estimated to take longer than this
_URL = re.compile(r"https?://\S+")

Stage = Literal["scan", "read", "embed", "commit"]
State = Literal["missing", "damaged", "stale", "fresh"]


@dataclass(frozen=True, slots=True)
class Progress:
    """Where an update is: ``done`` of ``total`` units of its current stage (files read, texts embedded).
    ``rate`` is units per second and ``eta_s`` the seconds left, once measurable."""

    stage: Stage
    done: int
    total: int
    rate: float | None = None
    eta_s: float | None = None


ProgressSink = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class UpdateReport:
    """What an update did. Ids of documents added, changed (``updated``) and removed; files skipped with
    their reasons (all of them, not only new ones); how many texts were embedded and how many reused."""

    manifest: Manifest
    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: int = 0
    skipped: tuple[SkippedFile, ...] = ()
    embedded: int = 0
    reused: int = 0
    seconds: float = 0.0
    reason: str = ""  # why the whole corpus was re-read (another model, chunking, format, damage, --force)
    warnings: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    @property
    def documents(self) -> int:
        return len(self.manifest.documents)

    @property
    def passages(self) -> int:
        return self.manifest.passages

    @property
    def sentences(self) -> int:
        return self.manifest.sentences


@dataclass(frozen=True, slots=True)
class IndexStatus:
    state: State
    reason: str  # why the index is not fresh, in words ("" when it is)


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file found in the documents folder."""

    path: Path
    rel: str
    document_id: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class _Prepared:
    """A document read and chunked, waiting for its vectors."""

    source: SourceFile
    content_hash: str
    document: Document
    passages: tuple[Passage, ...]
    sentences: tuple[SentenceSpan, ...]  # passage_row local to the document
    tokens: tuple[tuple[str, ...], ...]
    passage_texts: tuple[str, ...]
    sentence_texts: tuple[str, ...]

    @property
    def characters(self) -> int:
        return sum(map(len, self.passage_texts)) + sum(map(len, self.sentence_texts))


def chunking_params(max_tokens: int) -> dict[str, int]:
    return {"max_passage_tokens": max_tokens, "splitter_version": SPLITTER_VERSION}


def embedding_text(text: str) -> str:
    """What the model sees of a passage or sentence: URLs carry no meaning for it, and a bare URL embeds
    close to every English question (on the seed, the source line outranked the answer for English
    questions), so they are left out; the stored text keeps them."""
    return _URL.sub(" ", text).strip() or text


def passage_embedding_text(passage: Passage) -> str:
    """A passage as the model and BM25 see it: its section headings, then its text. A paragraph under
    "## Inverter" rarely repeats the word; the heading says what it is about."""
    text = embedding_text(passage.text)
    heading = " / ".join(passage.section)
    return f"{heading}\n{text}" if heading else text


def lexical_text(passage: Passage) -> str:
    """A passage as BM25 sees it: its section headings, then its whole text."""
    heading = " / ".join(passage.section)
    return f"{heading}\n{passage.text}" if heading else passage.text


def scan_folder(root: Path) -> list[SourceFile]:
    """Every regular, non-hidden file under ``root`` (hidden folders skipped), sorted by relative path.
    Files of unknown types are included, so that ingest reports them as skipped with a reason."""
    root = Path(root)
    if not root.is_dir():
        raise EmptyCorpusError(f"documents folder {root} does not exist; create it and add files")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith((".", "~$")):  # hidden files, and the lock files Word leaves beside a .docx
                continue
            path = Path(dirpath) / name
            try:
                st = path.stat()
            except OSError:  # removed while we looked
                continue
            if not path.is_file():
                continue
            rel = path.relative_to(root).as_posix()
            found.append(SourceFile(path, rel, document_id_for(path, root), st.st_size, st.st_mtime_ns))
    return sorted(found, key=lambda f: f.rel)


def folder_signature(root: Path) -> tuple[tuple[str, int, int], ...] | None:
    """Every file's (path, size, mtime): equal signatures mean nothing to look at (None: no folder)."""
    try:
        return tuple((f.rel, f.size, f.mtime_ns) for f in scan_folder(root))
    except CiteQAError:
        return None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unchanged(source: SourceFile, size: int, mtime_ns: int) -> bool:
    return source.size == size and source.mtime_ns == mtime_ns


def folder_changes(root: Path, manifest: Manifest) -> str:
    """Why the folder differs from ``manifest`` in words ("" when it does not). Cheap: files whose size and
    mtime match their record are not read; the others are hashed."""
    try:
        files = scan_folder(root)
    except CiteQAError as exc:
        return str(exc)
    known: dict[str, tuple[int, int, str]] = {
        d.path: (d.size, d.mtime_ns, d.content_hash) for d in manifest.documents
    }
    known |= {s.path: (s.size, s.mtime_ns, s.content_hash) for s in manifest.skipped}
    seen = set()
    for f in files:
        seen.add(f.rel)
        record = known.get(f.rel)
        if record is None:
            return f"{f.rel} is new in {root}"
        if not _unchanged(f, record[0], record[1]):
            try:
                digest = sha256_file(f.path)
            except OSError:
                return f"{f.rel} cannot be read"
            if digest != record[2]:
                return f"{f.rel} changed"
    gone = sorted(set(known) - seen)
    return f"{gone[0]} was removed from {root}" if gone else ""


def index_status(
    documents_dir: Path,
    index_dir: Path | IndexStore,
    *,
    fingerprint: str,
    max_tokens: int,
    verify: bool = True,
) -> IndexStatus:
    """``missing`` (or unreadable manifest), ``damaged`` (a segment fails its checksum), ``stale`` (the
    folder, model, chunking or format changed) or ``fresh``, with the reason in words. A store that cannot
    be reached raises (``StoreUnavailableError``): that is not a missing index."""
    store = as_store(index_dir)
    try:
        manifest = store.read_manifest()
    except StoreUnavailableError:
        raise
    except CiteQAError as exc:
        return IndexStatus("missing", str(exc))
    if verify:
        try:
            for info in manifest.segments:
                store.verify_segment(info)
        except StoreUnavailableError:
            raise
        except CiteQAError as exc:
            return IndexStatus("damaged", str(exc))
    reason = stale_reason(manifest, documents_dir, fingerprint, max_tokens)
    return IndexStatus("stale", reason) if reason else IndexStatus("fresh", "")


def stale_reason(manifest: Manifest, documents_dir: Path, fingerprint: str, max_tokens: int) -> str:
    if manifest.model_fingerprint != fingerprint:
        return (
            f"it was built with model {manifest.model!r} (fingerprint {manifest.model_fingerprint[:12]}), "
            f"the configured model's fingerprint is {fingerprint[:12]}"
        )
    return update_reason(manifest, documents_dir, max_tokens)


def update_reason(manifest: Manifest, documents_dir: Path, max_tokens: int) -> str:
    """Why an update would change ``manifest`` (built with the current model), in words ("" when it would
    not): it was chunked otherwise (another passage size, an older ``SPLITTER_VERSION``) or the folder
    changed. This is what a server's background job fixes while the old index is served; ``stale_reason``
    checks the model first."""
    if manifest.chunking != chunking_params(max_tokens):
        return f"it was chunked with {manifest.chunking}, the settings ask for {chunking_params(max_tokens)}"
    changes = folder_changes(documents_dir, manifest)
    return f"the documents changed since it was built: {changes}" if changes else ""


# -- the update --------------------------------------------------------------------------------------


def update_index(
    documents_dir: Path,
    index_dir: Path | IndexStore,
    encoder: Encoder,
    *,
    max_tokens: int = 480,
    batch_size: int = 64,
    force: bool = False,
    repair: bool = True,
    progress: ProgressSink | None = None,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
    group_texts: int = GROUP_TEXTS,
) -> UpdateReport:
    """Bring the index at ``index_dir`` up to date with ``documents_dir`` (see the module docstring).

    ``force`` re-reads and re-embeds every file. Documents are embedded in groups of about ``group_texts``
    texts; after a group, if ``checkpoint_seconds`` have passed since the last commit, what is done is
    committed (so a killed update loses little). A damaged segment is repaired (its documents re-read and
    re-embedded) with ``repair``; without it the damage is raised as ``IndexCorruptError``. Holds the
    writer lock for the whole update, so concurrent updates of one index run one after the other.
    ``index_dir`` is a directory (the files store) or any ``IndexStore``.
    """
    store = as_store(index_dir)
    with store.writer_lock():
        updater = _Updater(documents_dir, store, encoder, max_tokens, batch_size, progress)
        updater.checkpoint_seconds = checkpoint_seconds
        updater.group_texts = group_texts
        return updater.run(force, repair)


class _Updater:
    def __init__(
        self,
        documents_dir: Path,
        store: IndexStore,
        encoder: Encoder,
        max_tokens: int,
        batch_size: int,
        progress: ProgressSink | None,
    ) -> None:
        self.root = Path(documents_dir)
        self.store = store
        self.encoder = encoder
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.progress = progress
        self.warnings: list[str] = []
        self.embedded = 0
        self.reused = 0
        self.embed_seconds = 0.0
        self.embed_chars = 0
        self.checkpoint_seconds = CHECKPOINT_SECONDS
        self.group_texts = GROUP_TEXTS

    def _emit(self, stage: Stage, done: int, total: int, t0: float | None = None) -> None:
        if self.progress is None:
            return
        rate = eta = None
        if t0 is not None and done:
            elapsed = time.perf_counter() - t0
            rate = done / elapsed if elapsed > 0 else None
            eta = (total - done) / rate if rate else None
        self.progress(Progress(stage, done, total, rate, eta))

    def _previous(self, force: bool, repair: bool) -> tuple[Manifest, str, set[str], bool]:
        """The manifest to update (a fresh empty one when the old cannot be reused), why the corpus is
        re-read in full ("" when it is not), the names of damaged segments, and whether its vectors may be
        reused (same model, and no --force)."""
        empty = Manifest(
            model=self.encoder.name,
            model_fingerprint=self.encoder.fingerprint,
            backend=self.encoder.backend,
            dimension=self.encoder.dimension,
            chunking=chunking_params(self.max_tokens),
        )
        try:
            old = self.store.read_manifest()
        except StoreUnavailableError:
            raise
        except CiteQAError as exc:
            missing = not self.store.has_manifest()
            return empty, "" if missing else f"the index could not be read ({exc})", set(), False
        if old.model_fingerprint != self.encoder.fingerprint:
            return (
                replace(empty, generation=old.generation, segments=old.segments),
                f"it was built with model {old.model!r}, the configured model is {self.encoder.name!r}",
                set(),
                False,
            )
        damaged = set()
        for info in old.segments:
            try:
                self.store.verify_segment(info)
            except IndexCorruptError as exc:
                if not repair:
                    raise
                damaged.add(info.name)
                self.warnings.append(f"repairing: {exc}")
        reason = ""
        if force:
            reason = "a full rebuild was asked for (--force)"
        elif old.chunking != chunking_params(self.max_tokens):
            reason = f"chunking changed from {old.chunking} to {chunking_params(self.max_tokens)}"
        return old, reason, damaged, not force

    def run(self, force: bool, repair: bool) -> UpdateReport:
        t0 = time.perf_counter()
        old, reason, damaged, reuse = self._previous(force, repair)
        full = bool(reason)
        self.current = old  # the manifest on disk (or an empty one): each commit's predecessor
        files = scan_folder(self.root)
        by_path = {d.path: d for d in old.documents if d.segment not in damaged}
        skipped_by_path = {s.path: s for s in old.skipped}
        keep: list[DocumentRecord] = []
        skipped: list[SkippedFile] = []
        todo: list[tuple[SourceFile, str]] = []  # (file, content hash) to read
        self._emit("scan", 0, len(files))
        for i, f in enumerate(files, start=1):
            record = by_path.get(f.rel)
            gone = skipped_by_path.get(f.rel)
            if not full and record is not None and record.id == f.document_id:
                if _unchanged(f, record.size, record.mtime_ns):
                    keep.append(record)
                    continue
                digest = _hash(f)
                if digest == record.content_hash:
                    keep.append(replace(record, size=f.size, mtime_ns=f.mtime_ns))
                    continue
                todo.append((f, digest))
            elif not full and gone is not None and _unchanged(f, gone.size, gone.mtime_ns):
                skipped.append(gone)
            else:
                todo.append((f, _hash(f)))
            if i % 500 == 0:
                self._emit("scan", i, len(files))
        self._emit("scan", len(files), len(files))

        # One file per document id: a second file with the same id (a.md beside a.pdf) is skipped.
        owners: dict[str, str] = {r.id: r.path for r in keep}
        readable: list[tuple[SourceFile, str]] = []
        for f, digest in todo:
            owner = owners.setdefault(f.document_id, f.rel)
            if owner != f.rel:
                why = f"its document id {f.document_id!r} is already taken by {owner}; rename one of them"
                skipped.append(_skip(f, digest, "duplicate_id", why))
            else:
                readable.append((f, digest))

        prepared: list[_Prepared] = []
        t_read = time.perf_counter()
        for i, (f, digest) in enumerate(readable, start=1):
            try:
                doc = read_document(f.path, self.root)
            except UnreadableDocumentError as exc:
                skipped.append(_skip(f, digest, exc.code, exc.reason))
                log.info("skipped %s: %s", f.rel, exc.reason)
            else:
                prepared.append(self._prepare(f, digest, doc))
            self._emit("read", i, len(readable), t_read)

        old_ids = {d.id for d in old.documents}
        new_ids = {p.source.document_id for p in prepared}
        kept_ids = {r.id for r in keep}
        # Until its new version is committed, a changed document keeps its old rows (queries still find
        # it); one that became unreadable, or whose file is gone, leaves at the first commit.
        records = {r.id: r for r in keep}
        if not full:
            records |= {r.id: r for r in old.documents if r.id in new_ids and r.segment not in damaged}
        nothing_to_do = (
            not full
            and not prepared
            and not damaged
            and tuple(sorted(records.values(), key=lambda r: r.path)) == old.documents
            and tuple(sorted(skipped, key=lambda s: s.path)) == old.skipped
            and old.generation > 0
        )
        if not nothing_to_do:  # an update that changes nothing commits nothing
            self._embed_and_commit(old, records, skipped, prepared, damaged, reuse=reuse)
        return UpdateReport(
            manifest=self.current,
            added=tuple(sorted(new_ids - old_ids)),
            updated=tuple(sorted(new_ids & old_ids)),
            removed=tuple(sorted(old_ids - kept_ids - new_ids)),
            unchanged=len(keep),
            skipped=self.current.skipped,
            embedded=self.embedded,
            reused=self.reused,
            seconds=time.perf_counter() - t0,
            reason=reason,
            warnings=tuple(self.warnings),
        )

    def _prepare(self, f: SourceFile, digest: str, doc: Document) -> _Prepared:
        passages = tuple(chunk_document(doc, self.encoder.count_tokens, self.max_tokens))
        sentences = tuple(
            SentenceSpan(row, s, e)
            for row, p in enumerate(passages)
            for s, e in split_sentences(p.text, p.code)
        )
        texts = tuple(passage_embedding_text(p) for p in passages)
        return _Prepared(
            source=f,
            content_hash=digest,
            document=doc,
            passages=passages,
            sentences=sentences,
            tokens=tuple(tuple(tokenize(lexical_text(p))) for p in passages),
            passage_texts=texts,
            sentence_texts=tuple(
                embedding_text(passages[s.passage_row].text[s.start : s.end]) for s in sentences
            ),
        )

    # -- embedding with the cache, in groups, with checkpoints ---------------------------------------

    def _cache(self, manifest: Manifest, damaged: set[str]) -> dict[str, tuple[str, str, int]]:
        """Embedded text -> (segment, "p" or "s", row), over every row of every readable segment."""
        cache: dict[str, tuple[str, str, int]] = {}
        for info in manifest.segments:
            if info.name in damaged:
                continue
            try:
                passages, sentences = self.store.read_segment_texts(info)
                if (len(passages), len(sentences)) != (info.passages, info.sentences):
                    continue  # damaged: its rows are embedded again
                sentence_texts = [
                    embedding_text(passages[s.passage_row].text[s.start : s.end]) for s in sentences
                ]
            except (ValueError, TypeError, KeyError, IndexError, OSError):
                continue
            for row, p in enumerate(passages):
                cache.setdefault(passage_embedding_text(p), (info.name, "p", row))
            for row, text in enumerate(sentence_texts):
                cache.setdefault(text, (info.name, "s", row))
        return cache

    def _vectors(self, texts: Sequence[str], cache: dict[str, tuple[str, str, int]], bar: _Bar) -> np.ndarray:
        """Vectors of ``texts``: reused where the index (or this update) has embedded the same text, else
        embedded in batches of similar length (less padding)."""
        out = np.zeros((len(texts), self.encoder.dimension), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        stored: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for i, text in enumerate(texts):
            if text in self.fresh:
                out[i] = self.fresh[text]
            elif text in cache:
                name, kind, row = cache[text]
                stored.setdefault((name, kind), []).append((i, row))
            else:
                missing.setdefault(text, []).append(i)
        for (name, kind), pairs in stored.items():
            rows = self.store.segment_vectors(name, "p" if kind == "p" else "s", [row for _, row in pairs])
            out[[i for i, _ in pairs]] = rows
        self.reused += len(texts) - sum(len(v) for v in missing.values())
        unique = sorted(missing, key=len)
        for start in range(0, len(unique), self.batch_size):
            batch = unique[start : start + self.batch_size]
            t = time.perf_counter()
            vectors = self.encoder.encode_passages(batch)
            self.embed_seconds += time.perf_counter() - t
            self.embed_chars += sum(map(len, batch))
            for text, vector in zip(batch, vectors, strict=True):
                out[missing[text]] = vector
                self.fresh[text] = vector
            self.embedded += len(batch)
            bar.advance(len(batch))
        return out

    def _embed_and_commit(
        self,
        old: Manifest,
        records: dict[str, DocumentRecord],
        skipped: list[SkippedFile],
        prepared: list[_Prepared],
        damaged: set[str],
        *,
        reuse: bool,
    ) -> None:
        self.fresh: dict[str, np.ndarray] = {}
        cache = self._cache(old, damaged) if reuse and prepared else {}
        to_embed = {t for p in prepared for t in (*p.passage_texts, *p.sentence_texts) if t not in cache}
        rate = old.encode_rate or DEFAULT_ENCODE_RATE
        for p in prepared:
            chars = sum(len(t) for t in {*p.passage_texts, *p.sentence_texts} if t in to_embed)
            if chars / rate > SLOW_FILE_SECONDS:
                message = (
                    f"{p.source.rel} ({p.source.size / 1e6:.1f} MB, {len(p.passages):,} passages) will take "
                    f"about {format_duration(chars / rate)} to embed"
                )
                self.warnings.append(message)
                log.warning("warning: %s", message)
        bar = _Bar(self, len(to_embed))
        unreadable = {s.path for s in skipped}
        for doc_id in [i for i, r in records.items() if r.path in unreadable]:
            del records[doc_id]  # its file is now unreadable: it leaves the index
        segments = [s for s in old.segments if s.name not in damaged]
        last_commit = time.perf_counter()
        pending: list[tuple[_Prepared, np.ndarray, np.ndarray]] = []
        for group in _groups(prepared, self.group_texts):
            texts = [t for p in group for t in p.passage_texts] + [t for p in group for t in p.sentence_texts]
            vectors = self._vectors(texts, cache, bar)
            p_at, s_at = 0, sum(len(p.passages) for p in group)
            for p in group:
                pending.append(
                    (p, vectors[p_at : p_at + len(p.passages)], vectors[s_at : s_at + len(p.sentences)])
                )
                p_at += len(p.passages)
                s_at += len(p.sentences)
            if pending and time.perf_counter() - last_commit > self.checkpoint_seconds:
                segments.append(self._write(pending, records))
                pending = []
                self._commit(records, skipped, segments, final=False)
                last_commit = time.perf_counter()
        if pending:
            segments.append(self._write(pending, records))
        self._commit(records, skipped, segments, final=True)

    def _write(
        self, pending: list[tuple[_Prepared, np.ndarray, np.ndarray]], records: dict[str, DocumentRecord]
    ) -> SegmentInfo:
        """Write the pending documents as one segment and point their records at it."""
        passages: list[Passage] = []
        sentences: list[SentenceSpan] = []
        tokens: list[tuple[str, ...]] = []
        spans: list[tuple[_Prepared, tuple[int, int], tuple[int, int]]] = []
        for p, _, _ in pending:
            p0, s0 = len(passages), len(sentences)
            passages.extend(p.passages)
            tokens.extend(p.tokens)
            sentences.extend(SentenceSpan(s.passage_row + p0, s.start, s.end) for s in p.sentences)
            spans.append((p, (p0, len(passages)), (s0, len(sentences))))
        dim = self.encoder.dimension
        data = SegmentData(
            tuple(passages),
            np.vstack([pv for _, pv, _ in pending]) if pending else np.zeros((0, dim), np.float32),
            tuple(sentences),
            np.vstack([sv for _, _, sv in pending]) if pending else np.zeros((0, dim), np.float32),
            tuple(tokens),
        )
        info = self.store.write_segment(data, self.current.generation + 1)
        now = _now()
        for p, rows, sentence_rows in spans:
            doc = p.document
            previous = records.get(doc.id)
            records[doc.id] = DocumentRecord(
                id=doc.id,
                path=p.source.rel,
                title=doc.title,
                format=doc.format,
                encoding=doc.encoding,
                pages=doc.pages,
                size=p.source.size,
                mtime_ns=p.source.mtime_ns,
                content_hash=p.content_hash,
                added=previous.added if previous is not None else now,
                updated=now,
                segment=info.name,
                rows=rows,
                sentence_rows=sentence_rows,
                date=doc.date,
                categories=doc.categories,
                tags=doc.tags,
                source_url=doc.source_url,
            )
        return info

    def _commit(
        self,
        records: dict[str, DocumentRecord],
        skipped: list[SkippedFile],
        segments: list[SegmentInfo],
        *,
        final: bool,
    ) -> None:
        """Write the next manifest: documents in path order, only the segments that hold their rows."""
        documents = tuple(sorted(records.values(), key=lambda r: r.path))
        live = {r.segment for r in documents}
        rate = self.embed_chars / self.embed_seconds if self.embed_seconds > 0.5 else self.current.encode_rate
        manifest = with_generation(
            self.current,
            model=self.encoder.name,
            model_fingerprint=self.encoder.fingerprint,
            backend=self.encoder.backend,
            dimension=self.encoder.dimension,
            chunking=chunking_params(self.max_tokens),
            format_version=FORMAT_VERSION,
            created=_now(),
            documents=documents,
            skipped=tuple(sorted(skipped, key=lambda s: s.path)),
            segments=tuple(s for s in segments if s.name in live),
            encode_rate=rate,
        )
        if final:
            manifest = self._maybe_compact(manifest)
        self._emit("commit", 0, 1)
        self.store.write_manifest(manifest)
        self.store.collect_garbage(manifest)
        self.current = manifest
        self._emit("commit", 1, 1)

    def _maybe_compact(self, manifest: Manifest) -> Manifest:
        """Rewrite the live rows into one segment when the index holds many segments or many dead rows."""
        total = sum(s.passages for s in manifest.segments)
        dead = (total - manifest.passages) / total if total else 0.0
        if len(manifest.segments) <= COMPACT_SEGMENTS and dead <= COMPACT_DEAD_SHARE:
            return manifest
        return compact(self.store, manifest)


def compact(index_dir: Path | IndexStore, manifest: Manifest) -> Manifest:
    """The same documents with their live rows copied into one new segment (no re-embedding)."""
    from index.store import assemble

    store = as_store(index_dir)
    saved = assemble(store, manifest, index_type="flat", verify=False)
    data = SegmentData(
        tuple(saved.passages),
        saved.passage_vectors,
        saved.sentences,
        np.asarray(saved.sentence_vectors),
        saved.tokens,
    )
    info = store.write_segment(data, manifest.generation)
    documents = []
    p_at = s_at = 0
    for d in manifest.documents:
        documents.append(
            replace(
                d, segment=info.name, rows=(p_at, p_at + d.passages), sentence_rows=(s_at, s_at + d.sentences)
            )
        )
        p_at += d.passages
        s_at += d.sentences
    log.info("compacted %d segments into %s (%d passages)", len(manifest.segments), info.name, p_at)
    return replace(manifest, documents=tuple(documents), segments=(info,))


def _groups(prepared: Sequence[_Prepared], size: int) -> Iterable[list[_Prepared]]:
    group: list[_Prepared] = []
    count = 0
    for p in prepared:
        group.append(p)
        count += len(p.passages) + len(p.sentences)
        if count >= size:
            yield group
            group, count = [], 0
    if group:
        yield group


def _hash(f: SourceFile) -> str:
    try:
        return sha256_file(f.path)
    except OSError:
        return hashlib.sha256(f.rel.encode()).hexdigest()


def _skip(f: SourceFile, digest: str, code: str, reason: str) -> SkippedFile:
    return SkippedFile(f.rel, f.document_id, code, reason, f.size, f.mtime_ns, digest)


def format_duration(seconds: float) -> str:
    """Seconds for people: "40 s", "12 min", "1.5 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class _Bar:
    """Counts embedded texts and reports them with rate and ETA."""

    updater: _Updater
    total: int
    done: int = 0
    t0: float = field(default_factory=time.perf_counter)

    def advance(self, n: int) -> None:
        self.done += n
        self.updater._emit("embed", self.done, self.total, self.t0)

"""The documents folder as a collection: add, replace and remove files safely, by document id.

The folder is the source of truth for the index (``index.ingest`` keeps the index equal to it). Every change
here is checked first and made atomically: a name that would escape the folder or is too long, a type no
reader handles, a file over the size limit, a file no reader can read, an id already taken, or a file or
folder where the new one would go is refused with a domain error and the folder is left as it was; a new
file is written under a hidden temporary name (which ingest ignores), fsynced and renamed into place, so a
crash never leaves half a file where ingest would read it. A temporary file that a crash (kill -9) left
behind is removed once it is an hour old, at the server's start and at the next write.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from index.errors import (
    DocumentExistsError,
    DocumentNotFoundError,
    FileTooLargeError,
    InvalidDocumentNameError,
    PathConflictError,
    UnreadableDocumentError,
    UnsupportedFileTypeError,
)
from index.ingest import scan_folder
from index.readers import FORMATS, document_id_for, read_document
from index.store import fsync_dir

MAX_NAME_CHARS = 255  # a whole relative name, in characters
MAX_PART_BYTES = 255  # one folder or file name, in UTF-8 bytes: NAME_MAX of ext4, XFS, btrfs
STAGING_PREFIX = ".upload-"  # a file being written, before its rename into place
STALE_STAGING_S = 3600.0  # a staging file this old belongs to a write that crashed: no write takes so long
_lock = threading.Lock()  # one folder change at a time within a process
log = logging.getLogger("citeqa.folder")


@dataclass(frozen=True, slots=True)
class StoredFile:
    document_id: str
    path: Path  # absolute
    rel: str
    replaced: tuple[str, ...] = ()  # relative paths of files removed because they held the same id


def check_relative_name(name: str) -> PurePosixPath:
    """``name`` as a safe path inside the folder, or ``InvalidDocumentNameError`` saying why not."""
    if not name or not name.strip():
        raise InvalidDocumentNameError("the file name is empty")
    if "\x00" in name or "\\" in name:
        raise InvalidDocumentNameError(f"the file name {name!r} holds a NUL byte or a backslash")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise InvalidDocumentNameError(f"the file name {name!r} holds control characters")
    path = PurePosixPath(unicodedata.normalize("NFC", name.strip()))
    if path.is_absolute() or any(part in ("..", ".", "") for part in path.parts):
        raise InvalidDocumentNameError(
            f"the file name {name!r} would leave the documents folder; give a relative name without '..'"
        )
    if any(part.startswith(".") for part in path.parts):
        raise InvalidDocumentNameError(
            f"the file name {name!r} is hidden (starts with '.'); it would be ignored"
        )
    check_length(path)
    return path


def check_length(path: PurePosixPath) -> None:
    """``InvalidDocumentNameError`` when ``path`` is longer than a file system takes: a folder or file name
    over ``MAX_PART_BYTES`` UTF-8 bytes (its suffix included), or the whole over ``MAX_NAME_CHARS``."""
    for part in path.parts:
        size = len(part.encode())
        if size > MAX_PART_BYTES:
            raise InvalidDocumentNameError(
                f"the file name {_short(part)} is too long: {size} bytes in UTF-8; a folder or file name may "
                f"be at most {MAX_PART_BYTES} bytes, its suffix included (a Chinese character takes 3)"
            )
    if len(str(path)) > MAX_NAME_CHARS:
        raise InvalidDocumentNameError(
            f"the file name {_short(str(path))} is too long: {len(str(path))} characters; the limit is "
            f"{MAX_NAME_CHARS}, its suffix included"
        )


def _short(name: str, keep: int = 40) -> str:
    return repr(name) if len(name) <= keep else repr(name[:keep]) + f"... ({len(name)} characters)"


def check_document_id(document_id: str) -> str:
    """A document id a file can be stored under: a relative path without suffix, no ':' (reserved)."""
    if ":" in document_id:
        raise InvalidDocumentNameError(
            f"the document id {document_id!r} holds ':', which separates ids from paragraph numbers"
        )
    check_relative_name(document_id)
    return document_id


def check_type(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in FORMATS:
        raise UnsupportedFileTypeError(
            f"{name}: unsupported file type {suffix or '(none)'}; supported: {', '.join(sorted(FORMATS))}"
        )
    return suffix


def target_name(filename: str, document_id: str | None) -> PurePosixPath:
    """Where a file named ``filename`` goes: under its own name, or as ``<document_id><suffix>``."""
    name = check_relative_name(filename)
    suffix = check_type(name.name)
    if document_id is None:
        return name
    target = PurePosixPath(check_document_id(document_id) + suffix)
    check_length(target)  # the id passed alone; with its suffix it may not
    return target


def check_place(root: Path, rel: PurePosixPath) -> None:
    """``PathConflictError`` when something in the folder is where ``rel`` would go: a file where one of
    its folders would be, or a folder (or other non-file) where the file itself would be."""
    for parent in reversed(rel.parents[:-1]):  # outermost first, the folder itself left out
        place = root / parent
        if place.exists() and not place.is_dir():
            raise PathConflictError(
                f"{rel} cannot be stored: {parent} is a file, where a folder is needed; "
                "choose another name or id"
            )
    target = root / rel
    if target.is_dir() or (target.exists() and not target.is_file()):
        raise PathConflictError(
            f"{rel} cannot be stored: {rel} is a folder, where the file would go; choose another name or id"
        )


def files_of(root: Path, document_id: str) -> list[Path]:
    """The files of the folder that hold the document ``document_id`` (one, unless ids collide)."""
    return [f.path for f in scan_folder(root) if f.document_id == document_id]


def store_files(
    root: Path,
    files: Sequence[tuple[str, bytes, str | None]],
    *,
    replace: bool = False,
    max_bytes: int | None = None,
) -> list[StoredFile]:
    """Put files ``(filename, data, document_id or None)`` into the folder, all or none.

    Every file is checked first: its name, type, size, that a reader can read it (a reader's
    ``UnreadableDocumentError`` says why not, after the file's name), and its id: without ``replace`` an id
    that a file of the folder already holds (or that two of the files share) is refused with
    ``DocumentExistsError``; with it, the file holding that id (whatever its suffix) is replaced. Only when
    all pass are they moved into place.
    """
    root = Path(root)
    remove_stale_staging(root)
    planned: list[tuple[PurePosixPath, bytes, str]] = []
    for filename, data, document_id in files:
        rel = target_name(filename, document_id)
        if max_bytes is not None and len(data) > max_bytes:
            raise FileTooLargeError(f"{filename} is {len(data):,} bytes; the limit is {max_bytes:,} per file")
        planned.append((rel, data, document_id_for(root / rel, root)))
    ids = [doc_id for _, _, doc_id in planned]
    if len(set(ids)) != len(ids):
        twice = next(i for i in ids if ids.count(i) > 1)
        raise DocumentExistsError(f"two of the files would both be document {twice!r}; rename one of them")
    rels = {rel for rel, _, _ in planned}
    for rel, _, _ in planned:
        inside = next((other for other in rels if rel in other.parents), None)
        if inside is not None:
            raise PathConflictError(
                f"two of the files collide: {rel} would be a file and {inside} needs it as a folder; "
                "rename one of them"
            )
        check_place(root, rel)
    root.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[PurePosixPath, Path, str]] = []
    try:
        for (filename, _, _), (rel, data, doc_id) in zip(files, planned, strict=True):
            tmp = _stage(root, rel, data)
            staged.append((rel, tmp, doc_id))
            try:
                read_document(tmp, tmp.parent)
            except UnreadableDocumentError as exc:  # the reader's reason, with the file it is about
                raise UnreadableDocumentError(exc.code, f"{filename}: {exc.reason}") from exc
        with _lock:
            existing = {doc_id: files_of(root, doc_id) for _, _, doc_id in staged}
            if not replace:
                for doc_id, held in existing.items():
                    if held:
                        held_by = held[0].relative_to(root).as_posix()
                        raise DocumentExistsError(
                            f"a document with id {doc_id!r} already exists ({held_by}); replace it with "
                            "PUT /api/documents/{id} (or `citeqa add --replace`), or choose another id"
                        )
            for rel, _, _ in staged:
                check_place(root, rel)  # again: a folder may have appeared there since
            stored = []
            for rel, tmp, doc_id in staged:
                target = root / rel
                os.replace(tmp, target)
                fsync_dir(target.parent)
                removed = []
                for other in existing[doc_id]:
                    if other != target:
                        other.unlink(missing_ok=True)
                        removed.append(other.relative_to(root).as_posix())
                stored.append(StoredFile(doc_id, target, str(rel), tuple(removed)))
            return stored
    finally:
        for _, tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def _stage(root: Path, rel: PurePosixPath, data: bytes) -> Path:
    """``data`` written and fsynced under a hidden temporary name beside its target (ingest ignores it)."""
    target_dir = root / rel.parent
    target_dir.mkdir(parents=True, exist_ok=True)
    tmp = target_dir / f"{STAGING_PREFIX}{secrets.token_hex(6)}{rel.suffix}"
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def remove_stale_staging(root: Path, older_than: float = STALE_STAGING_S) -> list[str]:
    """Delete the staging files (``.upload-*``) last written over ``older_than`` seconds ago: left by a
    write that crashed between writing and renaming. A live write renames its file within its request, and
    another process (``citeqa add``, a second server) may be writing one now, so younger ones are kept.
    Returns their paths relative to ``root``."""
    root = Path(root)
    if not root.is_dir():
        return []
    cutoff = time.time() - older_than
    removed = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # staging files are never in there
        for name in filenames:
            if not name.startswith(STAGING_PREFIX):
                continue
            path = Path(dirpath) / name
            try:
                if path.lstat().st_mtime < cutoff and path.is_file():
                    path.unlink()
                    removed.append(path.relative_to(root).as_posix())
            except OSError:  # removed meanwhile, or not ours to remove: leave it
                continue
    if removed:
        log.info("removed %d temporary file(s) left by interrupted uploads: %s", len(removed), removed)
    return removed


def remove_document(root: Path, document_id: str) -> list[str]:
    """Delete the file(s) holding ``document_id``; ``DocumentNotFoundError`` when there is none."""
    root = Path(root)
    with _lock:
        files = files_of(root, document_id)
        if not files:
            raise DocumentNotFoundError(f"no document with id {document_id!r} in {root}")
        for f in files:
            f.unlink(missing_ok=True)
        fsync_dir(root)
    return [f.relative_to(root).as_posix() for f in files]


def copy_into(
    root: Path, sources: Sequence[Path], *, document_id: str | None = None, replace: bool = False
) -> list[StoredFile]:
    """``store_files`` for files on disk (the CLI's ``citeqa add``)."""
    for source in sources:
        if not source.is_file():
            raise InvalidDocumentNameError(f"{source} is not a file")
    return store_files(root, [(s.name, s.read_bytes(), document_id) for s in sources], replace=replace)

"""The vector store seam and the saved index: immutable segments under one manifest.

A saved index is a directory::

    manifest.json          generation, model name + fingerprint, dimension, chunking, format version; every
                           document (its file's size, mtime and sha256, its metadata, and where its rows live:
                           a segment and row ranges), every skipped file with its reason, and the sha256 of
                           every segment file
    segments/<name>/       one immutable segment, written once by one update:
        passages.jsonl     its passages in row order
        passages.npy       their L2-normalised vectors
        sentences.jsonl    [passage row, start, end] per sentence (offsets into the passage text)
        sentences.npy      the sentences' vectors (for the answerer)
        tokens.jsonl       the BM25 tokens of each passage (jieba is the costly part of lexical indexing)
    .lock                  held by the one process that is updating the index

An update (``index.ingest``) writes the rows of new and changed documents into ONE new segment, then
replaces ``manifest.json`` atomically (write, fsync, rename): the manifest is the commit. A reader sees the
old generation or the new one, never a mixture; a process killed at any moment leaves the last committed
manifest and the segments it names intact (segments are never modified, and a segment is deleted only when
neither the current nor the previous manifest names it). Rows of removed documents stay in their segment
until compaction rewrites the live rows into a new segment (no re-embedding).

Loading assembles the live rows of every document, in document order, into one ``SavedIndex`` and builds
the FAISS index over their vectors: exact (IndexFlatIP) below ``ANN_ABOVE`` passages, IVFFlat above.

``IndexStore`` (at the end) is the seam ingest writes through and the loader reads from: ``FilesStore`` is
this directory, ``index.milvus.MilvusStore`` the same segments and manifest in Milvus (``CITEQA_STORE``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol

import faiss
import numpy as np

from index.errors import IndexCorruptError, IndexMismatchError, IndexMissingError
from index.types import Passage

FORMAT_VERSION = 3  # 3: segments + per-document records; 2: one directory per build
MANIFEST = "manifest.json"
SEGMENTS = "segments"
LOCK = ".lock"
SEGMENT_FILES = ("passages.jsonl", "passages.npy", "sentences.jsonl", "sentences.npy", "tokens.jsonl")


IndexType = Literal["auto", "flat", "hnsw", "ivf"]
# "auto": exact search below this many vectors, IVFFlat from here on. Figures from `python -m bench.scale`
# (dim 384, one query on one thread, 2 cores): flat p50 is 0.23 ms at 10k, ~6 ms at 100k, 60-120 ms at 1M,
# i.e. ~0.06 ms per 1,000 vectors, so exact search stays under the 5 ms budget up to ~80k; 50k keeps it
# near 3 ms with headroom for a loaded machine. Below that exact search is both correct and fast enough.
ANN_ABOVE = 50_000
# IVFFlat: nlist = 4 * sqrt(n) lists (4,000 at 1M), trained on a seeded sample of 40 vectors per list.
# At 1M on both e5-like clustered sets (bench "clustered" and "dense", nearest-neighbour cosine ~0.85)
# every nprobe from 8 up gave recall@10 1.000; p50 0.30-0.33 ms at nprobe 8, 0.70-0.74 ms at 32. The
# synthetic sets are easier than real text, so nprobe 32 buys margin well inside the 5 ms target; it is
# a judgement, not a measured optimum. Validate on a real large corpus before trusting it further. On
# isotropic random vectors (no neighbourhood structure, the worst case) no approximate index is usable:
# at 1M, IVF nprobe 32 reaches recall@10 0.05 (0.24 at nprobe 256); at 100k, HNSW M=32 efSearch 512
# reaches 0.66. 1M build (2 cores, loaded machine): IVF 47-109 s, HNSW M=32 199 s.
IVF_LISTS_PER_SQRT_N = 4
IVF_TRAIN_PER_LIST = 40
IVF_NPROBE = 32
# HNSW stays available (`CITEQA_INDEX_TYPE=hnsw`) but loses at 1M on "clustered": M=32 efC=80 gave
# recall@10 0.92 / 0.95 / 0.98 / 0.98 at efSearch 64 / 128 / 256 / 512 (p50 0.19-1.06 ms), where IVF
# gave 1.000 at every nprobe; it is also slower to build and 17% larger (graph links). It degrades more
# gracefully on random vectors (at 100k, 0.66 at efSearch 512 vs IVF 0.49 at nprobe 256).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


def ivf_lists(n: int) -> int:
    """Number of IVF lists for ``n`` vectors: 4 * sqrt(n), never more than there are vectors to train on."""
    return max(1, min(n, round(IVF_LISTS_PER_SQRT_N * n**0.5)))


def make_index(dimension: int, n: int, index_type: IndexType = "auto") -> faiss.Index:
    """An empty inner-product index for ``n`` vectors: exact (flat) for small corpora, IVFFlat for large.

    An IVF index is untrained; ``FaissStore.add`` trains it on the first vectors it is given.
    """
    if index_type == "auto":
        index_type = "ivf" if n >= ANN_ABOVE else "flat"
    if index_type == "flat":
        return faiss.IndexFlatIP(dimension)
    if index_type == "ivf":
        ivf = faiss.IndexIVFFlat(
            faiss.IndexFlatIP(dimension), dimension, ivf_lists(n), faiss.METRIC_INNER_PRODUCT
        )
        ivf.nprobe = IVF_NPROBE
        ivf.cp.seed = 0
        return ivf
    if index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
        return index
    raise ValueError(f"index_type must be auto, flat, hnsw or ivf, got {index_type!r}")


def index_type_name(index: faiss.Index) -> str:
    """The FAISS class name (``IndexFlatIP``, ``IndexIVFFlat``, ...)."""
    return type(faiss.downcast_index(index)).__name__


def expected_index_type(n: int, index_type: IndexType) -> str:
    """The FAISS class name that loading ``n`` passages with this setting makes ("auto" included)."""
    return index_type_name(make_index(1, n, index_type))


class VectorStore(Protocol):
    def add(self, vectors: np.ndarray) -> None: ...

    def search(
        self, vectors: np.ndarray, k: int, rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def save(self, path: Path) -> None: ...

    @property
    def size(self) -> int: ...


class FaissStore:
    """Inner-product search over normalised vectors (cosine similarity); exact unless given an ANN index."""

    def __init__(self, dimension: int, index: faiss.Index | None = None) -> None:
        self.dimension = dimension
        self._index = index if index is not None else faiss.IndexFlatIP(dimension)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        if v.ndim != 2 or v.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of shape (n, {self.dimension}), got {v.shape}")
        if not len(v):
            return
        if not self._index.is_trained:  # IVF: k-means on a seeded sample of the first batch
            nlist = faiss.extract_index_ivf(self._index).nlist
            sample = min(len(v), IVF_TRAIN_PER_LIST * nlist)
            rows = np.sort(np.random.default_rng(0).choice(len(v), sample, replace=False))
            self._index.train(v[rows])
            faiss.extract_index_ivf(self._index).make_direct_map()  # for ``similarity`` (reconstruct)
        self._index.add(v)

    def search(
        self, vectors: np.ndarray, k: int, rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best rows per query vector (ids -1 past the end); with ``rows``, only among those rows
        (a filter inside FAISS, e.g. the passages of one language: nothing is copied)."""
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        size = self.size if rows is None else len(rows)
        if size == 0 or k <= 0:
            return np.zeros((len(v), 0), dtype=np.float32), np.zeros((len(v), 0), dtype=np.int64)
        k = min(k, size)
        if rows is None:
            scores, ids = self._index.search(v, k)
            return scores, ids
        allowed = np.zeros(self.size, dtype=bool)
        allowed[rows] = True
        bits = np.packbits(allowed, bitorder="little")  # kept alive until the search returns
        selector = faiss.IDSelectorBitmap(self.size, faiss.swig_ptr(bits))
        scores, ids = self._index.search(v, k, params=self._filtered(selector))
        return scores, ids

    def _filtered(self, selector: faiss.IDSelector) -> faiss.SearchParameters:
        """Search parameters with ``selector``, keeping the index's own nprobe/efSearch."""
        index = faiss.downcast_index(self._index)
        params: Any
        if isinstance(index, faiss.IndexIVF):
            params = faiss.SearchParametersIVF()
            params.nprobe = index.nprobe
        elif isinstance(index, faiss.IndexHNSW):
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
            params.efSearch = index.hnsw.efSearch
        else:
            params = faiss.SearchParameters()
        params.sel = selector
        return params

    def similarity(self, vector: np.ndarray, row: int) -> float:
        """Inner product of one query vector with the stored vector of ``row``."""
        return float(np.dot(self._index.reconstruct(int(row)), vector))

    @property
    def index_type(self) -> str:
        return index_type_name(self._index)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, dimension: int) -> FaissStore:
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexCorruptError(
                f"{path} is not a readable FAISS index ({exc}); run `citeqa build`"
            ) from exc
        if index.d != dimension:
            raise IndexMismatchError(
                f"{path} holds {index.d}-dimensional vectors, the manifest says {dimension}; "
                "run `citeqa build`"
            )
        return cls(dimension, index)


# -- records -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    """One indexed document as the manifest keeps it: its file, its metadata and where its rows live.

    ``rows`` and ``sentence_rows`` are ``[start, end)`` ranges inside ``segment``. ``added`` is when the
    document was first indexed, ``updated`` when this version was (ISO 8601, UTC).
    """

    id: str
    path: str
    title: str
    format: str
    encoding: str | None
    pages: int | None
    size: int
    mtime_ns: int
    content_hash: str
    added: str
    updated: str
    segment: str
    rows: tuple[int, int]
    sentence_rows: tuple[int, int]
    date: str | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    source_url: str | None = None

    @property
    def passages(self) -> int:
        return self.rows[1] - self.rows[0]

    @property
    def sentences(self) -> int:
        return self.sentence_rows[1] - self.sentence_rows[0]

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> DocumentRecord:
        tuples = {k: tuple(obj.get(k) or ()) for k in ("rows", "sentence_rows", "categories", "tags")}
        return cls(**{**obj, **tuples})


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file of the documents folder that is not indexed, and why (``code`` in one word, ``reason`` in
    words). Its size, mtime and hash are kept so that an unchanged file is not read again."""

    path: str
    document_id: str
    code: str
    reason: str
    size: int
    mtime_ns: int
    content_hash: str

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SkippedFile:
        return cls(**obj)


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    name: str
    passages: int
    sentences: int
    files: dict[str, str]  # file name -> sha256

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SegmentInfo:
        return cls(str(obj["name"]), int(obj["passages"]), int(obj["sentences"]), dict(obj["files"]))


@dataclass(frozen=True, slots=True)
class Manifest:
    model: str
    model_fingerprint: str
    dimension: int
    chunking: dict[str, Any]
    backend: str = ""  # the encoder backend that made the vectors (its fingerprint is model_fingerprint)
    generation: int = 0
    created: str = ""
    documents: tuple[DocumentRecord, ...] = ()
    skipped: tuple[SkippedFile, ...] = ()
    segments: tuple[SegmentInfo, ...] = ()
    previous_segments: tuple[str, ...] = ()  # kept on disk for readers still loading the last generation
    encode_rate: float | None = None  # characters embedded per second in the last update that embedded
    format_version: int = FORMAT_VERSION
    metric: str = "inner_product"
    normalised: bool = True

    @property
    def passages(self) -> int:
        return sum(d.passages for d in self.documents)

    @property
    def sentences(self) -> int:
        return sum(d.sentences for d in self.documents)

    @property
    def corpus_hash(self) -> str:
        """One hash of every file's path and content: equal manifests index the same corpus."""
        h = hashlib.sha256()
        for path, digest in sorted(
            [(d.path, d.content_hash) for d in self.documents]
            + [(s.path, s.content_hash) for s in self.skipped]
        ):
            h.update(f"{path}\0{digest}\0".encode())
        return h.hexdigest()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Manifest:
        return cls(
            **{
                **obj,
                "documents": tuple(DocumentRecord.from_json(d) for d in obj.get("documents", ())),
                "skipped": tuple(SkippedFile.from_json(s) for s in obj.get("skipped", ())),
                "segments": tuple(SegmentInfo.from_json(s) for s in obj.get("segments", ())),
                "previous_segments": tuple(obj.get("previous_segments", ())),
            }
        )


@dataclass(frozen=True, slots=True)
class SentenceSpan:
    passage_row: int
    start: int
    end: int


@dataclass(frozen=True)
class SegmentData:
    """The rows of one segment, in memory."""

    passages: tuple[Passage, ...]
    passage_vectors: np.ndarray
    sentences: tuple[SentenceSpan, ...]  # passage_row is a row of this segment
    sentence_vectors: np.ndarray
    tokens: tuple[tuple[str, ...], ...]


# -- the assembled index -------------------------------------------------------------------------------


class StoredPassages(Sequence[Passage]):
    """Passages that stay in their store and are fetched by row when asked for (``index.milvus`` with
    ``CITEQA_MILVUS_SEARCH=engine``); only their ids and languages are held."""

    @property
    def ids(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def langs(self) -> tuple[str, ...]:
        raise NotImplementedError


class StoredVectors:
    """Vectors that stay in their store: ``vectors[rows]`` fetches those rows (an array (len(rows), dim))."""

    def __getitem__(self, rows: Any) -> np.ndarray:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


@dataclass(frozen=True)
class SavedIndex:
    """Everything a loaded index holds: the live rows of every document, in document order.

    Loaded into memory (``assemble``): the passages, their vectors in ``store`` and the sentence vectors.
    Searched in the store's engine (``index.milvus.load_engine_index``): ``passages`` and
    ``sentence_vectors`` fetch rows on demand, ``store`` and ``passage_vectors`` are empty; ids, languages,
    sentence spans and tokens are held either way."""

    manifest: Manifest
    store: FaissStore
    passages: tuple[Passage, ...] | StoredPassages
    documents: tuple[DocumentRecord, ...]
    sentence_vectors: np.ndarray | StoredVectors
    sentences: tuple[SentenceSpan, ...]
    passage_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    tokens: tuple[tuple[str, ...], ...] = ()

    @cached_property
    def ids(self) -> tuple[str, ...]:
        """Passage id of each row."""
        if isinstance(self.passages, StoredPassages):
            return self.passages.ids
        return tuple(p.id for p in self.passages)

    @cached_property
    def langs(self) -> tuple[str, ...]:
        """Language of each passage row."""
        if isinstance(self.passages, StoredPassages):
            return self.passages.langs
        return tuple(p.lang for p in self.passages)

    @cached_property
    def sentence_passage_rows(self) -> np.ndarray:
        """Passage row of each sentence row."""
        return np.array([s.passage_row for s in self.sentences], dtype=np.int64)

    @cached_property
    def sentences_by_passage(self) -> dict[int, np.ndarray]:
        """Passage row -> its sentence rows, in order (passages without sentences are absent)."""
        rows = self.sentence_passage_rows
        order = np.argsort(rows, kind="stable")
        starts = np.searchsorted(rows[order], np.arange(len(self.passages) + 1))
        return {
            r: order[starts[r] : starts[r + 1]]
            for r in range(len(self.passages))
            if starts[r + 1] > starts[r]
        }

    @cached_property
    def row_of(self) -> dict[str, int]:
        """Passage id -> row."""
        return {pid: row for row, pid in enumerate(self.ids)}


# -- files ---------------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_jsonl(path: Path, rows: Sequence[Any]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (the directory entry itself is flushed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def passage_to_json(p: Passage) -> dict[str, Any]:
    return asdict(p)


def passage_from_json(obj: dict[str, Any]) -> Passage:
    return Passage(**{**obj, **passage_tuples(obj)})


def passage_tuples(obj: dict[str, Any]) -> dict[str, Any]:
    """A passage's list fields as the tuples ``Passage`` holds (JSON has only lists)."""
    return {
        "section": tuple(obj.get("section") or ()),
        "code": tuple((int(s), int(e)) for s, e in obj.get("code") or ()),
    }


def write_segment(index_dir: Path, data: SegmentData, generation: int) -> SegmentInfo:
    """Write ``data`` as a new immutable segment (temporary name, fsync, rename) and describe it."""
    root = Path(index_dir) / SEGMENTS
    root.mkdir(parents=True, exist_ok=True)
    name = f"g{generation:06d}-{secrets.token_hex(4)}"
    tmp = root / f".tmp-{os.getpid()}-{name}"
    tmp.mkdir()
    try:
        _write_jsonl(tmp / "passages.jsonl", [passage_to_json(p) for p in data.passages])
        np.save(tmp / "passages.npy", np.ascontiguousarray(data.passage_vectors, dtype=np.float32))
        _write_jsonl(tmp / "sentences.jsonl", [[s.passage_row, s.start, s.end] for s in data.sentences])
        np.save(tmp / "sentences.npy", np.ascontiguousarray(data.sentence_vectors, dtype=np.float32))
        _write_jsonl(tmp / "tokens.jsonl", [list(t) for t in data.tokens])
        files = {}
        for fname in SEGMENT_FILES:
            with (tmp / fname).open("rb") as f:
                os.fsync(f.fileno())
            files[fname] = sha256_file(tmp / fname)
        fsync_dir(tmp)
        os.rename(tmp, root / name)
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SegmentInfo(name, len(data.passages), len(data.sentences), files)


def verify_segment(index_dir: Path, info: SegmentInfo) -> None:
    """Every file of the segment is present and matches its checksum; else IndexCorruptError naming it."""
    folder = Path(index_dir) / SEGMENTS / info.name
    for fname in SEGMENT_FILES:
        fpath = folder / fname
        if not fpath.is_file():
            raise IndexCorruptError(f"{fpath} is missing; run `citeqa build` to repair the index")
        if info.files.get(fname) != sha256_file(fpath):
            raise IndexCorruptError(
                f"{fpath} does not match its checksum in the manifest (truncated or modified); "
                "run `citeqa build` to repair the index"
            )


def _read_jsonl(path: Path) -> list[Any]:
    """All rows of a JSON-lines file, parsed in one call (several times faster than line by line)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return list(json.loads("[" + ",".join(line for line in lines if line.strip()) + "]"))


def read_segment_texts(
    index_dir: Path, info: SegmentInfo
) -> tuple[tuple[Passage, ...], tuple[SentenceSpan, ...]]:
    """A segment's passages and sentence spans only (what the vector cache needs), unverified.

    Raises ValueError, TypeError, KeyError or OSError on a damaged file."""
    folder = Path(index_dir) / SEGMENTS / info.name
    passages = tuple(passage_from_json(row) for row in _read_jsonl(folder / "passages.jsonl"))
    sentences = tuple(SentenceSpan(*row) for row in _read_jsonl(folder / "sentences.jsonl"))
    return passages, sentences


def read_segment(index_dir: Path, info: SegmentInfo, *, verify: bool = True) -> SegmentData:
    """Load one segment (checksums first unless ``verify`` is false)."""
    if verify:
        verify_segment(index_dir, info)
    folder = Path(index_dir) / SEGMENTS / info.name
    try:
        passages, sentences = read_segment_texts(index_dir, info)
        tokens = tuple(tuple(t) for t in _read_jsonl(folder / "tokens.jsonl"))
        passage_vectors = np.load(folder / "passages.npy")
        sentence_vectors = np.load(folder / "sentences.npy")
    except (ValueError, TypeError, KeyError, OSError) as exc:
        raise IndexCorruptError(f"segment {folder} cannot be read ({exc}); run `citeqa build`") from exc
    if not (
        len(passages) == len(passage_vectors) == len(tokens) == info.passages
        and len(sentences) == len(sentence_vectors) == info.sentences
    ):
        raise IndexCorruptError(f"segment {folder} is inconsistent with the manifest; run `citeqa build`")
    return SegmentData(passages, passage_vectors, sentences, sentence_vectors, tokens)


def write_manifest(index_dir: Path, manifest: Manifest) -> None:
    """Commit: replace manifest.json atomically (temporary file, fsync, rename, fsync the directory)."""
    index_dir = Path(index_dir)
    tmp = index_dir / f".{MANIFEST}.tmp-{os.getpid()}"
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(manifest.to_json(), f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, index_dir / MANIFEST)
    fsync_dir(index_dir)


def read_manifest(path: Path) -> Manifest:
    """Read and check the manifest; refuse another format version with the command that fixes it."""
    path = Path(path)
    mpath = path / MANIFEST
    if not path.is_dir() or not mpath.is_file():
        raise IndexMissingError(f"no index at {path}; run `citeqa build` to create it")
    try:
        data = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"{mpath} is not valid JSON ({exc}); run `citeqa build`") from exc
    if not isinstance(data, dict):
        raise IndexCorruptError(f"{mpath} is not a JSON object; run `citeqa build`")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"the index at {path} has format version {version}, this CiteQA reads version {FORMAT_VERSION}; "
            "run `citeqa build` to rebuild it"
        )
    try:
        return Manifest.from_json(data)
    except (TypeError, KeyError, ValueError) as exc:
        raise IndexCorruptError(f"{mpath} has unexpected fields ({exc}); run `citeqa build`") from exc


def check_compatible(manifest: Manifest, *, model: str, fingerprint: str, path: Path | str) -> None:
    if manifest.model_fingerprint != fingerprint and manifest.model == model:
        made_by = f"the {manifest.backend} encoder backend" if manifest.backend else "another encoder backend"
        raise IndexMismatchError(
            f"the index at {path} holds vectors of model {model!r} made by {made_by} (fingerprint "
            f"{manifest.model_fingerprint[:12]}), not by the configured one (fingerprint "
            f"{fingerprint[:12]}); run `citeqa build` to re-embed it"
            + (f", or set CITEQA_ENCODER_BACKEND={manifest.backend}" if manifest.backend else "")
        )
    if manifest.model_fingerprint != fingerprint:
        raise IndexMismatchError(
            f"the index at {path} was built with model {manifest.model!r} "
            f"(fingerprint {manifest.model_fingerprint[:12]}), but the configured model is {model!r} "
            f"(fingerprint {fingerprint[:12]}); run `citeqa build` to rebuild it with this model, "
            f"or set CITEQA_MODEL={manifest.model} to use the index as it is"
        )


def verify_files(path: Path, manifest: Manifest) -> None:
    """Every segment file the manifest names is present and matches its checksum."""
    for info in manifest.segments:
        verify_segment(path, info)


def collect_garbage(index_dir: Path, manifest: Manifest) -> int:
    """Delete segments neither this manifest nor the previous one names, temporary segments of dead
    processes and stale temporary manifests; return how many were removed."""
    root = Path(index_dir) / SEGMENTS
    keep = {s.name for s in manifest.segments} | set(manifest.previous_segments)
    removed = 0
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name.startswith(".tmp-"):
                pid = entry.name.split("-")[1]
                if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                    shutil.rmtree(entry, ignore_errors=True)
                    removed += 1
            elif entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
    for tmp in Path(index_dir).glob(f".{MANIFEST}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def writer_lock(index_dir: Path, *, wait: bool = True) -> Iterator[None]:
    """Hold the index's writer lock (one updating process at a time, across processes)."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / LOCK).open("a+") as f:
        flags = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
        fcntl.flock(f.fileno(), flags)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def segment_lookup(manifest: Manifest, location: str) -> Callable[[DocumentRecord], SegmentInfo]:
    """The segment that holds a document of ``manifest`` (of the store at ``location``); a manifest that
    names a segment it does not list is corrupt."""
    segments = {info.name: info for info in manifest.segments}

    def segment_of(doc: DocumentRecord) -> SegmentInfo:
        info = segments.get(doc.segment)
        if info is None:
            raise IndexCorruptError(
                f"the manifest of {location} names segment {doc.segment!r} for {doc.id!r} but does "
                "not list it; run `citeqa build`"
            )
        return info

    return segment_of


def assemble(
    index_dir: Path | IndexStore,
    manifest: Manifest,
    *,
    index_type: IndexType = "auto",
    verify: bool = True,
) -> SavedIndex:
    """The live rows of every document of ``manifest``, in document order, with a FAISS index over them
    (read from whichever store holds them: a directory is the files store)."""
    source = as_store(index_dir)
    segment_of = segment_lookup(manifest, source.location)
    loaded: dict[str, SegmentData] = {}
    passages: list[Passage] = []
    tokens: list[tuple[str, ...]] = []
    sentences: list[SentenceSpan] = []
    p_parts: list[np.ndarray] = []
    s_parts: list[np.ndarray] = []
    for doc in manifest.documents:
        info = segment_of(doc)
        if doc.segment not in loaded:
            loaded[doc.segment] = source.read_segment(info, verify=verify)
        seg = loaded[doc.segment]
        (p0, p1), (s0, s1) = doc.rows, doc.sentence_rows
        if not (0 <= p0 <= p1 <= info.passages and 0 <= s0 <= s1 <= info.sentences):
            raise IndexCorruptError(
                f"rows of {doc.id!r} lie outside segment {doc.segment}; run `citeqa build`"
            )
        offset = len(passages) - p0
        passages.extend(seg.passages[p0:p1])
        tokens.extend(seg.tokens[p0:p1])
        p_parts.append(seg.passage_vectors[p0:p1])
        s_parts.append(seg.sentence_vectors[s0:s1])
        sentences.extend(SentenceSpan(s.passage_row + offset, s.start, s.end) for s in seg.sentences[s0:s1])
    dim = manifest.dimension
    passage_vectors = np.ascontiguousarray(np.vstack(p_parts) if p_parts else np.zeros((0, dim)), np.float32)
    sentence_vectors = np.ascontiguousarray(np.vstack(s_parts) if s_parts else np.zeros((0, dim)), np.float32)
    store = FaissStore(dim, make_index(dim, len(passages), index_type))
    store.add(passage_vectors)
    return SavedIndex(
        manifest,
        store,
        tuple(passages),
        manifest.documents,
        sentence_vectors,
        tuple(sentences),
        passage_vectors,
        tuple(tokens),
    )


def load_index(
    path: Path | IndexStore,
    *,
    model: str,
    fingerprint: str,
    index_type: IndexType = "auto",
    verify: bool = True,
) -> SavedIndex:
    """Load a saved index; refuse a mismatch or a damaged file with a message that says what to run."""
    store = as_store(path)
    manifest = store.read_manifest()
    check_compatible(manifest, model=model, fingerprint=fingerprint, path=store.location)
    return assemble(store, manifest, index_type=index_type, verify=verify)


def with_generation(manifest: Manifest, **changes: Any) -> Manifest:
    """The next generation of ``manifest`` with ``changes`` (previous segments recorded for readers)."""
    return replace(
        manifest,
        generation=manifest.generation + 1,
        previous_segments=tuple(s.name for s in manifest.segments),
        **changes,
    )


# -- the store seam ------------------------------------------------------------------------------------


class IndexStore(Protocol):
    """Where segments and manifests live. Ingest and the loader go through this and never ask which one
    they have: ``FilesStore`` (the directory above, the default) and ``index.milvus.MilvusStore``.

    The contract: a segment is written once and never changed; ``write_manifest`` is the commit (atomic: a
    reader sees the previous manifest or this one); readers read only segments a committed manifest names;
    ``collect_garbage`` removes segments neither this manifest nor the previous one names (run after the
    commit, by the writer holding ``writer_lock``).
    """

    @property
    def location(self) -> str:
        """Where the index is, for messages (a directory, or a Milvus URI and collection prefix)."""
        ...

    def has_manifest(self) -> bool: ...

    def read_manifest(self) -> Manifest:
        """The committed manifest; IndexMissingError when there is none."""
        ...

    def committed(self) -> tuple[int, str] | None:
        """The committed generation and model fingerprint, cheaply (None when there is no readable
        manifest); what a server polls to learn that another process committed."""
        ...

    def verify_segment(self, info: SegmentInfo) -> None: ...

    def read_segment_texts(
        self, info: SegmentInfo
    ) -> tuple[tuple[Passage, ...], tuple[SentenceSpan, ...]]: ...

    def read_segment(self, info: SegmentInfo, *, verify: bool = True) -> SegmentData: ...

    def segment_vectors(self, name: str, kind: Literal["p", "s"], rows: Sequence[int]) -> np.ndarray:
        """Stored vectors of passage (``p``) or sentence (``s``) ``rows`` of segment ``name``, in order."""
        ...

    def write_segment(self, data: SegmentData, generation: int) -> SegmentInfo: ...

    def write_manifest(self, manifest: Manifest) -> None: ...

    def collect_garbage(self, manifest: Manifest) -> int: ...

    def writer_lock(self, *, wait: bool = True) -> contextlib.AbstractContextManager[None]: ...


class FilesStore:
    """The index directory described in the module docstring (the functions above, unchanged on disk)."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = Path(index_dir)
        self._seen: tuple[int, tuple[int, str] | None] | None = None  # (manifest mtime, committed)

    @property
    def location(self) -> str:
        return str(self.index_dir)

    def has_manifest(self) -> bool:
        return (self.index_dir / MANIFEST).exists()

    def read_manifest(self) -> Manifest:
        return read_manifest(self.index_dir)

    def committed(self) -> tuple[int, str] | None:
        """Parsed only when the manifest's mtime moved."""
        try:
            mtime = (self.index_dir / MANIFEST).stat().st_mtime_ns
        except OSError:
            return None
        if self._seen is not None and self._seen[0] == mtime:
            return self._seen[1]
        try:
            manifest = read_manifest(self.index_dir)
        except IndexMissingError:
            return None
        except (IndexCorruptError, IndexMismatchError):
            return None
        self._seen = (mtime, (manifest.generation, manifest.model_fingerprint))
        return self._seen[1]

    def verify_segment(self, info: SegmentInfo) -> None:
        verify_segment(self.index_dir, info)

    def read_segment_texts(self, info: SegmentInfo) -> tuple[tuple[Passage, ...], tuple[SentenceSpan, ...]]:
        return read_segment_texts(self.index_dir, info)

    def read_segment(self, info: SegmentInfo, *, verify: bool = True) -> SegmentData:
        return read_segment(self.index_dir, info, verify=verify)

    def segment_vectors(self, name: str, kind: Literal["p", "s"], rows: Sequence[int]) -> np.ndarray:
        fname = "passages.npy" if kind == "p" else "sentences.npy"
        array = np.load(self.index_dir / SEGMENTS / name / fname, mmap_mode="r")
        return np.asarray(array[list(rows)], dtype=np.float32)

    def write_segment(self, data: SegmentData, generation: int) -> SegmentInfo:
        return write_segment(self.index_dir, data, generation)

    def write_manifest(self, manifest: Manifest) -> None:
        write_manifest(self.index_dir, manifest)

    def collect_garbage(self, manifest: Manifest) -> int:
        return collect_garbage(self.index_dir, manifest)

    def writer_lock(self, *, wait: bool = True) -> contextlib.AbstractContextManager[None]:
        return writer_lock(self.index_dir, wait=wait)


def as_store(index: Path | str | IndexStore) -> IndexStore:
    """A directory (``Path`` or ``str``) is the files store; a store is itself."""
    if isinstance(index, (Path, str)):
        return FilesStore(Path(index))
    return index

"""The vector store seam and the saved-index directory.

A saved index is a directory::

    manifest.json      model name + fingerprint, dimension, metric, chunking, corpus hash, format
                       version, and a sha256 of every other file
    passages.faiss     FAISS index over L2-normalised passage vectors (row i = passages[i]): IndexFlatIP,
                       or IndexIVFFlat above ``ANN_ABOVE`` passages
    passages.jsonl     the passages in row order
    sentences.npy      L2-normalised vectors of every sentence of every passage (for the answerer)
    sentences.jsonl    [passage row, start, end] per sentence row, offsets into the passage text
    documents.json     document metadata

Writes are atomic: the directory is built beside the target under a temporary name, then renamed
into place, so a reader never sees a half-written index and a killed build leaves the old one intact.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol

import faiss
import numpy as np

from index.errors import IndexCorruptError, IndexMismatchError, IndexMissingError
from index.types import Block, Document, Passage

FORMAT_VERSION = 2  # 2: passages carry section, page and lang; documents hold blocks
MANIFEST = "manifest.json"
FILES = ("passages.faiss", "passages.jsonl", "sentences.npy", "sentences.jsonl", "documents.json")


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
    """The FAISS class name recorded in the manifest (``IndexFlatIP``, ``IndexIVFFlat``, ...)."""
    return type(faiss.downcast_index(index)).__name__


def expected_index_type(n: int, index_type: IndexType) -> str:
    """The FAISS class name a build of ``n`` passages with this setting records in the manifest.

    Asks ``make_index`` itself (an empty index costs microseconds), so the answer cannot drift from
    what a build would make, "auto" included.
    """
    return index_type_name(make_index(1, n, index_type))


class VectorStore(Protocol):
    def add(self, vectors: np.ndarray) -> None: ...

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

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
        if not self._index.is_trained:  # IVF: k-means on a seeded sample of the first batch
            nlist = faiss.extract_index_ivf(self._index).nlist
            sample = min(len(v), IVF_TRAIN_PER_LIST * nlist)
            rows = np.sort(np.random.default_rng(0).choice(len(v), sample, replace=False))
            self._index.train(v[rows])
            faiss.extract_index_ivf(self._index).make_direct_map()  # for ``similarity`` (reconstruct)
        self._index.add(v)

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        k = max(1, min(k, self.size))
        scores, ids = self._index.search(v, k)
        return scores, ids

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


@dataclass(frozen=True, slots=True)
class Manifest:
    model: str
    model_fingerprint: str
    dimension: int
    corpus_hash: str
    chunking: dict[str, Any]
    passages: int
    sentences: int
    format_version: int = FORMAT_VERSION
    metric: str = "inner_product"
    normalised: bool = True
    index_type: str = "IndexFlatIP"
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SentenceSpan:
    passage_row: int
    start: int
    end: int


@dataclass(frozen=True)
class SavedIndex:
    """Everything a loaded index directory holds."""

    manifest: Manifest
    store: FaissStore
    passages: tuple[Passage, ...]
    documents: tuple[Document, ...]
    sentence_vectors: np.ndarray
    sentences: tuple[SentenceSpan, ...]

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
        return {p.id: row for row, p in enumerate(self.passages)}


def passage_from_json(obj: dict[str, Any]) -> Passage:
    return Passage(**{**obj, "section": tuple(obj.get("section") or ())})


def document_from_json(obj: dict[str, Any]) -> Document:
    blocks = tuple(Block(b["text"], tuple(b.get("section") or ()), b.get("page")) for b in obj["blocks"])
    return Document(
        **{**obj, "blocks": blocks, **{k: tuple(obj.get(k) or ()) for k in ("categories", "tags")}}
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any] | list[int]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def save_index(
    target: Path,
    *,
    manifest: Manifest,
    store: FaissStore,
    passages: Sequence[Passage],
    documents: Sequence[Document],
    sentence_vectors: np.ndarray,
    sentences: Sequence[SentenceSpan],
) -> None:
    """Write the index directory atomically: build a temporary directory, then swap it into place."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-{os.getpid()}-", dir=target.parent))
    try:
        store.save(tmp / "passages.faiss")
        _write_jsonl(tmp / "passages.jsonl", [asdict(p) for p in passages])
        np.save(tmp / "sentences.npy", np.ascontiguousarray(sentence_vectors, dtype=np.float32))
        _write_jsonl(tmp / "sentences.jsonl", [[s.passage_row, s.start, s.end] for s in sentences])
        (tmp / "documents.json").write_text(
            json.dumps([asdict(d) for d in documents], ensure_ascii=False, indent=1), encoding="utf-8"
        )
        files = {name: _sha256(tmp / name) for name in FILES}
        data = asdict(manifest) | {"files": files}
        (tmp / MANIFEST).write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
        for name in (*FILES, MANIFEST):
            with (tmp / name).open("rb") as f:
                os.fsync(f.fileno())
        if target.exists() and _exchange(tmp, target):
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the previous index
            return
        if target.exists():  # no atomic exchange on this system: two renames, a brief gap
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _remove_leftovers(target: Path) -> None:
    """Delete temporary directories left by builds that were killed (their process is gone)."""
    for leftover in target.parent.glob(f".{target.name}.*-*"):
        parts = leftover.name.rsplit(".", 1)[-1].split("-")
        pid = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        if pid is None or pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(leftover, ignore_errors=True)
        except PermissionError:
            pass


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
        return Manifest(**data)
    except TypeError as exc:
        raise IndexCorruptError(f"{mpath} has unexpected fields ({exc}); run `citeqa build`") from exc


def check_compatible(manifest: Manifest, *, model: str, fingerprint: str, path: Path) -> None:
    if manifest.model_fingerprint != fingerprint:
        raise IndexMismatchError(
            f"the index at {path} was built with model {manifest.model!r} "
            f"(fingerprint {manifest.model_fingerprint[:12]}), but the configured model is {model!r} "
            f"(fingerprint {fingerprint[:12]}); run `citeqa build` to rebuild it with this model, "
            f"or set CITEQA_MODEL={manifest.model} to use the index as it is"
        )


def verify_files(path: Path, manifest: Manifest) -> None:
    """Every data file is present and matches its checksum; else IndexCorruptError naming the file."""
    for name in FILES:
        fpath = path / name
        if not fpath.is_file():
            raise IndexCorruptError(f"{fpath} is missing; run `citeqa build` to rebuild the index")
        expected = manifest.files.get(name)
        if expected is None or _sha256(fpath) != expected:
            raise IndexCorruptError(
                f"{fpath} does not match its checksum in the manifest (truncated or modified); "
                "run `citeqa build` to rebuild the index"
            )


def load_index(path: Path, *, model: str, fingerprint: str) -> SavedIndex:
    """Load a saved index; refuse a mismatch or a damaged file with a message that says what to run."""
    path = Path(path)
    manifest = read_manifest(path)
    check_compatible(manifest, model=model, fingerprint=fingerprint, path=path)
    verify_files(path, manifest)
    try:
        store = FaissStore.load(path / "passages.faiss", manifest.dimension)
        with (path / "passages.jsonl").open(encoding="utf-8") as f:
            passages = tuple(passage_from_json(json.loads(line)) for line in f)
        raw_docs = json.loads((path / "documents.json").read_text(encoding="utf-8"))
        documents = tuple(document_from_json(d) for d in raw_docs)
        sentence_vectors = np.load(path / "sentences.npy")
        with (path / "sentences.jsonl").open(encoding="utf-8") as f:
            sentences = tuple(SentenceSpan(*json.loads(line)) for line in f)
    except (ValueError, TypeError, KeyError, OSError) as exc:
        raise IndexCorruptError(f"the index at {path} cannot be read ({exc}); run `citeqa build`") from exc
    if store.size != len(passages) or len(sentences) != len(sentence_vectors):
        raise IndexCorruptError(
            f"the index at {path} is inconsistent ({store.size} vectors for {len(passages)} passages); "
            "run `citeqa build`"
        )
    return SavedIndex(manifest, store, passages, documents, sentence_vectors, sentences)

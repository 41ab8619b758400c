"""The Milvus store: the same segments and manifests as the index directory, in Milvus collections.

``CITEQA_STORE=milvus`` puts a collection's rows in one Milvus (a cluster, or milvus-lite 2.5's engine on
loopback for local use and tests) so that several CiteQA servers serve one collection. Collections, named
``<prefix>passages``, ``<prefix>sentences`` and ``<prefix>meta``:

    passages    pk "<segment>:<row>", segment, row, passage id, document id, lang, text, the passage's other
                fields (title, paragraph, offsets, section, page) as JSON, its BM25 tokens (JSON), and its
                FLOAT_VECTOR
    sentences   pk "<segment>:<row>", segment, row, passage row (in its segment), start, end, FLOAT_VECTOR
    meta        the manifest JSON in parts (a Milvus VARCHAR holds 64 KB) under a key per commit, and one
                ``head`` row naming the committed key, generation and model fingerprint

The unit of change is an immutable segment and the commit is the manifest, exactly as on disk: an update
inserts its segment's rows (segment names are unique), flushes them, writes the new manifest's parts, and
only then upserts ``head`` (the commit: one row, atomic). Readers read ``head`` and then only the segments
that manifest names (``segment == ...`` filters), so a replaced document is never seen twice or not at
all: the old rows stay until a later commit's garbage collection, which deletes rows of segments neither
the committed nor the previous manifest names (a reader still loading the previous generation finds its
rows). Every collection is created with Strong consistency (a committed write is read at once by every
replica) and every call carries the timeout (``CITEQA_MILVUS_TIMEOUT``); a refused connection or a timeout
is ``StoreUnavailableError`` with the URI, never a hang. A manifest of another model fingerprint is refused
by the loader exactly like the files' manifest (``index.store.check_compatible``).

One writer at a time: ``writer_lock`` is a file lock under the data directory (it serialises the updates
of every CiteQA process on one machine). Milvus has no compare-and-swap to build a lease on, so across
machines one writer at a time is the operator's job (e.g. uploads through one replica, or one shared
documents folder that only one replica watches); two concurrent writers would not corrupt a commit
(each commit is one row), but the later one's garbage collection could delete the other's uncommitted
segment, which then fails its row-count check and is re-embedded by the next update.

Lexical search stays beside Milvus, as today (bm25s over the stored jieba tokens, in each server's memory):
Milvus's BM25 function scores the engine's own analyzer tokens against a text query, with statistics per
Milvus segment, while CiteQA's lexical score needs per-language-pool IDF and dictionary-translated, weighted
query terms (``index.lexical``, ``index.translate``), which the function cannot take.

Dense search runs where ``CITEQA_MILVUS_SEARCH`` says. ``memory`` (the default): each server loads the
committed generation (``index.store.assemble``: vectors, texts, tokens) and searches it with FAISS.
``engine``: ``load_engine_index`` reads only what is not a vector or a text (passage ids, languages, BM25
tokens, sentence spans), and ``EngineRows`` (the ``index.search.DenseRows`` seam) searches Milvus per
language pool, filtered to the live rows the committed manifest names (``segment == s and row in [a, b)``
ranges, so rows of replaced documents in an older segment are never found); a question's candidates are then
scored in Milvus too (a ``search`` restricted to their primary keys returns their similarities, not their
vectors, which Milvus returns slowly: see ``READ_WINDOW``), and only its hits' records and sentence vectors
are fetched by id, into small bounded caches. The collections keep their FLAT (exact) index, so the
candidates are those of the in-memory exact search.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import math
import os
import socket
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from index.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, StoreUnavailableError
from index.search import Pool, RowScores
from index.store import (
    FORMAT_VERSION,
    FaissStore,
    Manifest,
    SavedIndex,
    SegmentData,
    SegmentInfo,
    SentenceSpan,
    StoredPassages,
    StoredVectors,
    check_compatible,
    passage_tuples,
    segment_lookup,
    writer_lock,
)
from index.types import Passage

T = TypeVar("T")

HEAD = "head"
MANIFEST_PART_CHARS = 15_000  # at most 4 bytes a character: within a 65,535-byte VARCHAR
TEXT_BYTES = 65_535
ID_BYTES = 4_096
INSERT_BATCH = 1_000
# Rows per query. Reading vectors back costs more than linearly in the rows of one answer (milvus-lite
# 2.5.1 + pymilvus 2.5.18, 384-d: 500 rows 0.05 s, 1,000 0.14 s, 2,000 0.5-0.8 s, 4,000 8 s, 8,192 over
# 120 s; the client only waits on gRPC meanwhile: the time is the engine's), so reads go in small windows.
READ_WINDOW = 500
PK_BATCH = READ_WINDOW


def _text_field(value: str, what: str) -> str:
    if len(value.encode("utf-8")) > TEXT_BYTES:
        raise ValueError(f"{what} is {len(value.encode()):,} bytes; a Milvus VARCHAR holds {TEXT_BYTES:,}")
    return value


class MilvusStore:
    """An ``index.store.IndexStore`` in one Milvus database (see the module docstring)."""

    def __init__(
        self,
        uri: str,
        *,
        token: str | None = None,
        db_name: str = "",
        prefix: str = "citeqa_",
        timeout: float = 10.0,
        lock_dir: Path | None = None,
    ) -> None:
        self.uri = uri
        self.token = token
        self.db_name = db_name
        self.prefix = prefix
        self.timeout = timeout
        # whole seconds: pymilvus bounds its retries by the timeout only when it is an int (a float one
        # is ignored there and the retries run 75 times with back-off, minutes against a stopped server)
        self._timeout = max(1, math.ceil(timeout))
        key = hashlib.sha256(f"{uri}\0{db_name}\0{prefix}".encode()).hexdigest()[:12]
        self.lock_dir = Path(lock_dir or ".citeqa") / "locks" / f"milvus-{key}"
        self.passages = f"{prefix}passages"
        self.sentences = f"{prefix}sentences"
        self.meta = f"{prefix}meta"
        self._client: Any = None
        self._loaded = False
        self._dimension: int | None = None

    @property
    def location(self) -> str:
        db = f" database {self.db_name}," if self.db_name else ""
        return f"Milvus {self.uri}{db} collections {self.prefix}*"

    # -- calls ----------------------------------------------------------------------------------------

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One client call with the timeout; connection failures and timeouts become StoreUnavailableError
        (and the next call reconnects and reloads the collections)."""
        from pymilvus.exceptions import MilvusException

        try:
            return fn(*args, timeout=self._timeout, **kwargs)
        except MilvusException as exc:
            self._client, self._loaded = None, False
            raise StoreUnavailableError(self.uri, _short(exc)) from exc
        except Exception as exc:  # grpc errors that pymilvus does not wrap
            if type(exc).__module__.startswith("grpc"):
                self._client, self._loaded = None, False
                raise StoreUnavailableError(self.uri, _short(exc)) from exc
            raise

    @property
    def client(self) -> Any:
        if self._client is None:
            from pymilvus import MilvusClient
            from pymilvus.exceptions import MilvusException

            try:
                self._client = MilvusClient(
                    uri=self.uri, token=self.token or "", db_name=self.db_name, timeout=self._timeout
                )
            except MilvusException as exc:
                raise StoreUnavailableError(self.uri, _short(exc)) from exc
        return self._client

    def ping(self) -> None:
        """Raise StoreUnavailableError unless the server answers now."""
        self._call(self.client.list_collections)

    def _exists(self) -> bool:
        return bool(self._call(self.client.has_collection, self.meta))

    def _ready(self, *, create: bool = False, dimension: int | None = None) -> bool:
        """Collections loaded (created first with ``create``); False when there are none."""
        if self._loaded and not create:
            return True
        if not self._exists():
            if not create:
                return False
            assert dimension is not None
            self._create(dimension)
        for name in (self.meta, self.passages, self.sentences):
            self._call(self.client.load_collection, name)
        self._loaded = True
        return True

    def _create(self, dimension: int) -> None:
        from pymilvus import DataType, MilvusClient

        def schema(fields: list[tuple[str, Any, dict[str, Any]]]) -> Any:
            s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            s.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=ID_BYTES)
            for name, dtype, params in fields:
                s.add_field(name, dtype, **params)
            return s

        text = {"max_length": TEXT_BYTES}
        specs = {
            self.passages: schema(
                [
                    ("segment", DataType.VARCHAR, {"max_length": 64}),
                    ("row", DataType.INT64, {}),
                    ("passage_id", DataType.VARCHAR, {"max_length": ID_BYTES}),
                    ("document_id", DataType.VARCHAR, {"max_length": ID_BYTES}),
                    ("lang", DataType.VARCHAR, {"max_length": 16}),
                    ("text", DataType.VARCHAR, text),
                    ("fields", DataType.JSON, {}),
                    ("tokens", DataType.VARCHAR, text),
                    ("vector", DataType.FLOAT_VECTOR, {"dim": dimension}),
                ]
            ),
            self.sentences: schema(
                [
                    ("segment", DataType.VARCHAR, {"max_length": 64}),
                    ("row", DataType.INT64, {}),
                    ("passage_row", DataType.INT64, {}),
                    ("start", DataType.INT64, {}),
                    ("end", DataType.INT64, {}),
                    ("vector", DataType.FLOAT_VECTOR, {"dim": dimension}),
                ]
            ),
            self.meta: schema(
                [
                    ("key", DataType.VARCHAR, {"max_length": 64}),
                    ("part", DataType.INT64, {}),
                    ("body", DataType.VARCHAR, text),
                    ("vector", DataType.FLOAT_VECTOR, {"dim": 2}),  # Milvus needs one vector field
                ]
            ),
        }
        # meta last: its existence says the other two are there
        for name in (self.passages, self.sentences, self.meta):
            if self._call(self.client.has_collection, name):
                continue
            index = self.client.prepare_index_params()
            index.add_index("vector", index_type="FLAT", metric_type="IP")
            self._call(
                self.client.create_collection,
                name,
                schema=specs[name],
                index_params=index,
                consistency_level="Strong",
            )

    def _query(self, collection: str, expr: str, fields: list[str], limit: int | None = None) -> list[dict]:
        kwargs: dict[str, Any] = {"filter": expr, "output_fields": fields}
        if limit is not None:
            kwargs["limit"] = limit
        return list(self._call(self.client.query, collection, **kwargs))

    def search(
        self, collection: str, vectors: np.ndarray, expr: str, limit: int
    ) -> list[list[tuple[str, float]]]:
        """Per query vector: the primary keys and inner products of its ``limit`` best rows of
        ``collection`` that match ``expr`` (the collections' FLAT index: exact)."""
        if not self._ready():
            raise IndexMissingError(f"no index in {self.location}; run `citeqa build` to create it")
        found = self._call(
            self.client.search,
            collection,
            data=np.asarray(vectors, np.float32).tolist(),
            filter=expr,
            limit=limit,
            search_params={"metric_type": "IP"},
            anns_field="vector",
        )
        return [[(str(h["id"]), float(h["distance"])) for h in hits] for hits in found]

    def fetch(self, collection: str, pks: Sequence[str], fields: list[str]) -> list[dict]:
        """The rows of ``collection`` with these primary keys (``pk`` and ``fields``; absent keys are
        absent)."""
        if not self._ready():
            raise IndexMissingError(f"no index in {self.location}; run `citeqa build` to create it")
        out: list[dict] = []
        for i in range(0, len(pks), PK_BATCH):
            part = list(pks[i : i + PK_BATCH])
            out.extend(self._query(collection, f"pk in {json.dumps(part)}", ["pk", *fields]))
        return out

    def _vector_dimension(self) -> int:
        if self._dimension is None:
            info = self._call(self.client.describe_collection, self.passages)
            field = next(f for f in info["fields"] if f["name"] == "vector")
            self._dimension = int(field["params"]["dim"])
        return self._dimension

    # -- manifest -------------------------------------------------------------------------------------

    def _head(self) -> dict[str, Any] | None:
        if not self._ready():
            return None
        rows = self._query(self.meta, f'pk == "{HEAD}"', ["body"])
        return json.loads(rows[0]["body"]) if rows else None

    def has_manifest(self) -> bool:
        return self._head() is not None

    def committed(self) -> tuple[int, str] | None:
        head = self._head()
        return None if head is None else (int(head["generation"]), str(head["fingerprint"]))

    def read_manifest(self) -> Manifest:
        head = self._head()
        if head is None:
            raise IndexMissingError(f"no index in {self.location}; run `citeqa build` to create it")
        pks = [f"{head['key']}:{i:05d}" for i in range(int(head["parts"]))]
        rows = self._query(self.meta, f"pk in {json.dumps(pks)}", ["part", "body"])
        if len(rows) != len(pks):
            raise IndexCorruptError(
                f"the manifest in {self.location} is missing {len(pks) - len(rows)} of its {len(pks)} parts; "
                "run `citeqa build`"
            )
        try:
            data = json.loads("".join(r["body"] for r in sorted(rows, key=lambda r: r["part"])))
        except json.JSONDecodeError as exc:
            raise IndexCorruptError(f"the manifest in {self.location} is not valid JSON ({exc})") from exc
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexMismatchError(
                f"the index in {self.location} has format version {version}, this CiteQA reads version "
                f"{FORMAT_VERSION}; run `citeqa build` to rebuild it"
            )
        try:
            return Manifest.from_json(data)
        except (TypeError, KeyError, ValueError) as exc:
            raise IndexCorruptError(f"the manifest in {self.location} has unexpected fields ({exc})") from exc

    def write_manifest(self, manifest: Manifest) -> None:
        """The commit: flush the segments' rows, write the manifest's parts, then upsert ``head``."""
        self._ready(create=True, dimension=manifest.dimension)
        for name in (self.passages, self.sentences):
            self._call(self.client.flush, name)
        text = json.dumps(manifest.to_json(), ensure_ascii=False)
        key = f"m{manifest.generation:09d}-{os.urandom(4).hex()}"
        parts = [text[i : i + MANIFEST_PART_CHARS] for i in range(0, len(text), MANIFEST_PART_CHARS)] or [""]
        rows = [
            {"pk": f"{key}:{i:05d}", "key": key, "part": i, "body": body, "vector": [0.0, 0.0]}
            for i, body in enumerate(parts)
        ]
        self._call(self.client.insert, self.meta, rows)
        self._call(self.client.flush, self.meta)
        previous = self._head()
        head = {
            "key": key,
            "parts": len(parts),
            "generation": manifest.generation,
            "fingerprint": manifest.model_fingerprint,
            "previous": previous["key"] if previous else None,
        }
        self._call(
            self.client.upsert,
            self.meta,
            [{"pk": HEAD, "key": HEAD, "part": 0, "body": json.dumps(head), "vector": [0.0, 0.0]}],
        )

    # -- segments -------------------------------------------------------------------------------------

    def _count(self, collection: str, name: str) -> int:
        rows = self._query(collection, f"segment == {json.dumps(name)}", ["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def verify_segment(self, info: SegmentInfo) -> None:
        """The segment holds the rows its record says (Milvus keeps its own checksums)."""
        if not self._ready():
            raise IndexMissingError(f"no index in {self.location}; run `citeqa build` to create it")
        got = (self._count(self.passages, info.name), self._count(self.sentences, info.name))
        if got != (info.passages, info.sentences):
            raise IndexCorruptError(
                f"segment {info.name} in {self.location} holds {got[0]} passages and {got[1]} sentences, "
                f"the manifest says {info.passages} and {info.sentences}; run `citeqa build` to repair it"
            )

    def _rows(self, collection: str, name: str, n: int, fields: list[str]) -> list[dict]:
        """All ``n`` rows of segment ``name`` in row order."""
        out: list[dict] = []
        for start in range(0, n, READ_WINDOW):
            expr = f"segment == {json.dumps(name)} and row >= {start} and row < {start + READ_WINDOW}"
            out.extend(self._query(collection, expr, fields, limit=READ_WINDOW))
        out.sort(key=lambda r: r["row"])
        if [r["row"] for r in out] != list(range(n)):
            raise IndexCorruptError(
                f"segment {name} in {self.location} has {len(out)} of its {n} rows in {collection}; "
                "run `citeqa build` to repair it"
            )
        return out

    def read_segment_texts(self, info: SegmentInfo) -> tuple[tuple[Passage, ...], tuple[SentenceSpan, ...]]:
        if not self._ready():
            raise IndexMissingError(f"no index in {self.location}; run `citeqa build` to create it")
        p_rows = self._rows(self.passages, info.name, info.passages, ["row", "text", "fields"])
        s_rows = self._rows(self.sentences, info.name, info.sentences, ["row", "passage_row", "start", "end"])
        return _passages(p_rows), tuple(SentenceSpan(r["passage_row"], r["start"], r["end"]) for r in s_rows)

    def read_segment(self, info: SegmentInfo, *, verify: bool = True) -> SegmentData:
        if not self._ready():
            raise IndexMissingError(f"no index in {self.location}; run `citeqa build` to create it")
        fields = ["row", "text", "fields", "tokens", "vector"]
        p_rows = self._rows(self.passages, info.name, info.passages, fields)
        s_rows = self._rows(
            self.sentences, info.name, info.sentences, ["row", "passage_row", "start", "end", "vector"]
        )
        dim = self._vector_dimension()
        return SegmentData(
            _passages(p_rows),
            _vectors(p_rows, dim),
            tuple(SentenceSpan(r["passage_row"], r["start"], r["end"]) for r in s_rows),
            _vectors(s_rows, dim),
            tuple(tuple(json.loads(r["tokens"])) for r in p_rows),
        )

    def segment_vectors(self, name: str, kind: Literal["p", "s"], rows: Sequence[int]) -> np.ndarray:
        collection = self.passages if kind == "p" else self.sentences
        found: dict[int, np.ndarray] = {}
        wanted = sorted(set(rows))
        for i in range(0, len(wanted), PK_BATCH):
            pks = [f"{name}:{r}" for r in wanted[i : i + PK_BATCH]]
            for r in self._query(collection, f"pk in {json.dumps(pks)}", ["row", "vector"]):
                found[int(r["row"])] = np.asarray(r["vector"], dtype=np.float32)
        missing = [r for r in wanted if r not in found]
        if missing:
            raise IndexCorruptError(f"segment {name} in {self.location} lacks rows {missing[:5]}")
        return np.stack([found[r] for r in rows]) if rows else np.zeros((0, 0), np.float32)

    def write_segment(self, data: SegmentData, generation: int) -> SegmentInfo:
        dim = int(data.passage_vectors.shape[1]) if data.passage_vectors.ndim == 2 else 0
        self._ready(create=True, dimension=dim)
        stored = self._vector_dimension()
        if len(data.passages) and dim != stored:
            raise IndexMismatchError(
                f"the collections of {self.location} hold {stored}-dimensional vectors, this model makes "
                f"{dim}; "
                "set another CITEQA_MILVUS_PREFIX for this model, or drop the collections"
            )
        name = f"g{generation:06d}-{os.urandom(4).hex()}"
        passages = [
            {
                "pk": f"{name}:{row}",
                "segment": name,
                "row": row,
                "passage_id": p.id,
                "document_id": p.document_id,
                "lang": p.lang,
                "text": _text_field(p.text, f"passage {p.id}"),
                "fields": {k: v for k, v in asdict(p).items() if k not in ("text",)},
                "tokens": _text_field(json.dumps(list(tokens), ensure_ascii=False), f"tokens of {p.id}"),
                "vector": vector.tolist(),
            }
            for row, (p, tokens, vector) in enumerate(
                zip(data.passages, data.tokens, np.asarray(data.passage_vectors, np.float32), strict=True)
            )
        ]
        sentences = [
            {
                "pk": f"{name}:{row}",
                "segment": name,
                "row": row,
                "passage_row": s.passage_row,
                "start": s.start,
                "end": s.end,
                "vector": vector.tolist(),
            }
            for row, (s, vector) in enumerate(
                zip(data.sentences, np.asarray(data.sentence_vectors, np.float32), strict=True)
            )
        ]
        for collection, rows in ((self.passages, passages), (self.sentences, sentences)):
            for i in range(0, len(rows), INSERT_BATCH):
                self._call(self.client.insert, collection, rows[i : i + INSERT_BATCH])
        return SegmentInfo(name, len(passages), len(sentences), {})

    def collect_garbage(self, manifest: Manifest) -> int:
        """Delete rows of segments neither ``manifest`` nor the previous one names, and the manifest parts
        of older commits; return how many segments were removed."""
        if not self._ready():
            return 0
        keep = sorted({s.name for s in manifest.segments} | set(manifest.previous_segments))
        expr = f"segment not in {json.dumps(keep)}"
        gone = {r["segment"] for r in self._query(self.passages, expr, ["segment"], limit=16_384)}
        gone |= {r["segment"] for r in self._query(self.sentences, expr, ["segment"], limit=16_384)}
        for collection in (self.passages, self.sentences):
            self._call(self.client.delete, collection, filter=expr)
        head = self._head()
        if head is not None:
            keys = [HEAD, head["key"]] + ([head["previous"]] if head.get("previous") else [])
            self._call(self.client.delete, self.meta, filter=f"key not in {json.dumps(keys)}")
        return len(gone)

    def writer_lock(self, *, wait: bool = True) -> contextlib.AbstractContextManager[None]:
        return writer_lock(self.lock_dir, wait=wait)

    def drop(self) -> None:
        """Drop the three collections (tests, and `--force` across a change of dimension)."""
        for name in (self.passages, self.sentences, self.meta):
            if self._call(self.client.has_collection, name):
                self._call(self.client.drop_collection, name)
        self._loaded, self._dimension = False, None

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client, self._loaded = None, False


def _passages(rows: list[dict]) -> tuple[Passage, ...]:
    out = []
    for r in rows:
        fields = dict(r["fields"])
        out.append(Passage(**{**fields, "text": r["text"], **passage_tuples(fields)}))
    return tuple(out)


def _vectors(rows: list[dict], dim: int) -> np.ndarray:
    if not rows:
        return np.zeros((0, dim), dtype=np.float32)
    return np.ascontiguousarray(np.asarray([r["vector"] for r in rows], dtype=np.float32))


def _short(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return " ".join(str(message).split())[:300]


# -- search in the engine (CITEQA_MILVUS_SEARCH=engine) -------------------------------------------------

_NONE = np.zeros(0, np.int64)
SEARCH_LIMIT = 16_384  # Milvus's largest top-k
PASSAGE_CACHE = 1_024  # passage records kept per loaded generation (a question's hits, recently asked)
VECTOR_CACHE = 8_192  # sentence vectors kept per loaded generation (the hits' sentences), 12 MB at 384-d


@dataclass(frozen=True)
class RowMap:
    """Where each row of a loaded generation lives in Milvus: its segment and its row there (the primary
    key is ``"<segment>:<row>"``), and the way back."""

    segments: tuple[str, ...]
    segment: np.ndarray  # row -> index into ``segments``
    row: np.ndarray  # row -> row in its segment
    back: Mapping[str, np.ndarray]  # segment -> (row in segment -> row, -1 when not live)

    @classmethod
    def build(cls, parts: Sequence[tuple[str, int, int, int]]) -> RowMap:
        """From ``(segment, segment size, start, end)`` per document, in row order."""
        segments = tuple(dict.fromkeys(name for name, *_ in parts))
        index = {name: i for i, name in enumerate(segments)}
        segment = np.concatenate([np.full(e - b, index[n], np.int32) for n, _, b, e in parts] + [_NONE])
        row = np.concatenate([np.arange(b, e, dtype=np.int64) for _, _, b, e in parts] + [_NONE])
        back = {name: np.full(size, -1, np.int64) for name, size, *_ in parts}
        at = 0
        for name, _, b, e in parts:
            back[name][b:e] = np.arange(at, at + e - b)
            at += e - b
        return cls(segments, segment.astype(np.int32), row.astype(np.int64), back)

    def __len__(self) -> int:
        return len(self.row)

    def pk(self, r: int) -> str:
        return f"{self.segments[self.segment[r]]}:{self.row[r]}"

    def rows_of(self, pks: Sequence[str]) -> np.ndarray:
        """The rows of these primary keys (-1 for a row this generation does not hold)."""
        out = np.empty(len(pks), np.int64)
        for i, pk in enumerate(pks):
            name, row = pk.rsplit(":", 1)
            back = self.back.get(name)
            out[i] = back[int(row)] if back is not None and int(row) < len(back) else -1
        return out

    def where(self, rows: np.ndarray | None) -> str:
        """A filter matching exactly ``rows`` (all rows when None): per segment, the range of its rows when
        they are contiguous, else the list of them. One clause per segment: milvus-lite 2.5.1 refuses
        ("unsupported expr proto node") a filter of 100 ``or``-ed ranges, and compaction keeps the segments
        of a generation at most ``index.ingest.COMPACT_SEGMENTS`` + 1."""
        picked = np.arange(len(self)) if rows is None else np.asarray(rows, np.int64)
        clauses = []
        for i, name in enumerate(self.segments):
            seg_rows = np.unique(self.row[picked[self.segment[picked] == i]])
            if not len(seg_rows):
                continue
            first, last = int(seg_rows[0]), int(seg_rows[-1])
            if last - first + 1 == len(seg_rows):
                clauses.append(f"(segment == {json.dumps(name)} and row >= {first} and row <= {last})")
            else:
                clauses.append(f"(segment == {json.dumps(name)} and row in {seg_rows.tolist()})")
        return " or ".join(clauses) or "row < 0"


class _Cache:
    """A bounded map (least recently used out), safe across request threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[int, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, keys: Sequence[int]) -> dict[int, Any]:
        with self._lock:
            found = {k: self._items[k] for k in keys if k in self._items}
            for k in found:
                self._items.move_to_end(k)
        return found

    def put(self, items: Mapping[int, Any]) -> None:
        with self._lock:
            self._items.update(items)
            for k in items:
                self._items.move_to_end(k)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class MilvusPassages(StoredPassages):
    """A generation's passages, held as ids and languages; records are fetched by row from
    ``<prefix>passages`` (the rows a question returns are cached, a bounded few)."""

    def __init__(
        self, store: MilvusStore, rows: RowMap, ids: tuple[str, ...], langs: tuple[str, ...]
    ) -> None:
        self.store = store
        self.map = rows
        self._ids = ids
        self._langs = langs
        self.cache = _Cache(PASSAGE_CACHE)

    @property
    def ids(self) -> tuple[str, ...]:
        return self._ids

    @property
    def langs(self) -> tuple[str, ...]:
        return self._langs

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self.fetch(range(len(self))[index])
        row = range(len(self))[index]  # IndexError past the end, negative rows from the end
        return self.fetch([row])[0]

    def __iter__(self) -> Iterator[Passage]:
        """Every passage, read in windows (not cached): for whole-corpus uses (examples, evaluation)."""
        for start in range(0, len(self), READ_WINDOW):
            yield from self.read(range(start, min(len(self), start + READ_WINDOW)))

    def fetch(self, rows: Sequence[int]) -> list[Passage]:
        """The records of ``rows``, in order (one query for those not cached)."""
        found = self.cache.get(rows)
        missing = [r for r in dict.fromkeys(rows) if r not in found]
        if missing:
            fetched = dict(zip(missing, self.read(missing), strict=True))
            self.cache.put(fetched)
            found |= fetched
        return [found[r] for r in rows]

    def read(self, rows: Sequence[int]) -> list[Passage]:
        records = self.store.fetch(self.store.passages, [self.map.pk(r) for r in rows], ["text", "fields"])
        got = dict(
            zip(self.map.rows_of([r["pk"] for r in records]).tolist(), _passages(records), strict=True)
        )
        if missing := [r for r in rows if r not in got]:
            raise IndexCorruptError(
                f"{self.store.location} no longer holds passage rows {[self.map.pk(r) for r in missing[:5]]} "
                "of the served generation; reload (`POST /api/admin/reload`)"
            )
        return [got[r] for r in rows]


class MilvusVectors(StoredVectors):
    """A generation's sentence vectors, left in ``<prefix>sentences``: ``vectors[rows]`` fetches those rows
    (the hits' sentences, fetched with the hits, are cached, a bounded few)."""

    def __init__(self, store: MilvusStore, rows: RowMap, dimension: int) -> None:
        self.store = store
        self.map = rows
        self.dimension = dimension
        self.cache = _Cache(VECTOR_CACHE)

    def __len__(self) -> int:
        return len(self.map)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self), self.dimension)

    def __getitem__(self, rows: Any) -> np.ndarray:
        wanted = [int(r) for r in np.atleast_1d(np.asarray(rows, dtype=np.int64))]
        found = self.prefetch(wanted)
        if not wanted:
            return np.zeros((0, self.dimension), np.float32)
        return np.stack([found[r] for r in wanted])

    def prefetch(self, rows: Sequence[int]) -> dict[int, np.ndarray]:
        """The vectors of ``rows`` (one query for those not cached), cached for the answerer."""
        found = self.cache.get(rows)
        missing = [r for r in dict.fromkeys(rows) if r not in found]
        if missing:
            records = self.store.fetch(self.store.sentences, [self.map.pk(r) for r in missing], ["vector"])
            got = {
                int(row): np.asarray(r["vector"], np.float32)
                for row, r in zip(self.map.rows_of([r["pk"] for r in records]), records, strict=True)
            }
            self.cache.put(got)
            found |= got
        if lost := [r for r in rows if r not in found]:
            raise IndexCorruptError(
                f"{self.store.location} no longer holds sentence rows {[self.map.pk(r) for r in lost[:5]]} "
                "of the served generation; reload (`POST /api/admin/reload`)"
            )
        return found


def load_engine_index(store: MilvusStore, *, model: str, fingerprint: str) -> SavedIndex:
    """The committed generation for search in the engine: ids, languages, tokens and sentence spans are read
    (no vector, no text); ``passages`` and ``sentence_vectors`` fetch rows on demand."""
    manifest = store.read_manifest()
    check_compatible(manifest, model=model, fingerprint=fingerprint, path=store.location)
    segment_of = segment_lookup(manifest, store.location)
    light: dict[str, tuple[list[dict], list[dict]]] = {}
    ids: list[str] = []
    langs: list[str] = []
    tokens: list[tuple[str, ...]] = []
    spans: list[SentenceSpan] = []
    p_parts: list[tuple[str, int, int, int]] = []
    s_parts: list[tuple[str, int, int, int]] = []
    for doc in manifest.documents:
        info = segment_of(doc)
        if doc.segment not in light:
            light[doc.segment] = (
                store._rows(
                    store.passages, info.name, info.passages, ["row", "passage_id", "lang", "tokens"]
                ),
                store._rows(
                    store.sentences, info.name, info.sentences, ["row", "passage_row", "start", "end"]
                ),
            )
        p_rows, s_rows = light[doc.segment]
        (p0, p1), (s0, s1) = doc.rows, doc.sentence_rows
        if not (0 <= p0 <= p1 <= info.passages and 0 <= s0 <= s1 <= info.sentences):
            raise IndexCorruptError(
                f"rows of {doc.id!r} lie outside segment {doc.segment}; run `citeqa build`"
            )
        offset = len(ids) - p0
        ids.extend(r["passage_id"] for r in p_rows[p0:p1])
        langs.extend(r["lang"] for r in p_rows[p0:p1])
        tokens.extend(tuple(json.loads(r["tokens"])) for r in p_rows[p0:p1])
        spans.extend(SentenceSpan(r["passage_row"] + offset, r["start"], r["end"]) for r in s_rows[s0:s1])
        p_parts.append((info.name, info.passages, p0, p1))
        s_parts.append((info.name, info.sentences, s0, s1))
    dim = manifest.dimension
    passages = MilvusPassages(store, RowMap.build(p_parts), tuple(ids), tuple(langs))
    return SavedIndex(
        manifest,
        FaissStore(dim),  # empty: the vectors stay in Milvus
        passages,
        manifest.documents,
        MilvusVectors(store, RowMap.build(s_parts), dim),
        tuple(spans),
        np.zeros((0, dim), np.float32),
        tuple(tokens),
    )


class EngineRows:
    """``index.search.DenseRows`` in Milvus for a generation from ``load_engine_index``: each pool's dense
    and sentence search is one ``search`` per collection (every question of a batch at once), filtered to
    the pool's live rows; a question's candidates are scored by a ``search`` restricted to their primary
    keys (passages missing a similarity, and every candidate's sentences), its hits fetched by id."""

    def __init__(self, store: MilvusStore, saved: SavedIndex) -> None:
        if not isinstance(saved.passages, MilvusPassages) or not isinstance(
            saved.sentence_vectors, MilvusVectors
        ):
            raise TypeError("EngineRows serves an index from load_engine_index")
        self.store = store
        self.saved = saved
        self.passage_rows = saved.passages
        self.sentence_vectors = saved.sentence_vectors
        self._filters: dict[str, tuple[str, str]] = {}

    def _filter(self, pool: Pool) -> tuple[str, str]:
        """The pool's passage and sentence filters (built once per pool)."""
        if pool.lang not in self._filters:
            self._filters[pool.lang] = (
                self.passage_rows.map.where(pool.passage_filter),
                self.sentence_vectors.map.where(pool.sentence_filter),
            )
        return self._filters[pool.lang]

    def _search(
        self, collection: str, rows: RowMap, vectors: np.ndarray, expr: str, limit: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query vector: the rows found (best first) and their inner products."""
        if limit <= 0:
            return [(np.zeros(0, np.int64), np.zeros(0, np.float32)) for _ in vectors]
        out = []
        for hits in self.store.search(collection, vectors, expr, min(limit, SEARCH_LIMIT)):
            got = rows.rows_of([pk for pk, _ in hits])
            scores = np.array([d for _, d in hits], np.float32)
            keep = got >= 0
            out.append((got[keep], scores[keep]))
        return out

    def search(
        self, pool: Pool, vectors: np.ndarray, depth: int, sentence_depth: int
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        p_expr, s_expr = self._filter(pool)
        passages, sentences = _both(
            lambda: self._search(self.store.passages, self.passage_rows.map, vectors, p_expr, depth),
            lambda: self._search(
                self.store.sentences, self.sentence_vectors.map, vectors, s_expr, sentence_depth
            ),
        )
        to_passage = self.saved.sentence_passage_rows
        return [
            (rows, scores, to_passage[s_rows])
            for (rows, scores), (s_rows, _) in zip(passages, sentences, strict=True)
        ]

    def _scores_of(
        self, collection: str, rows: RowMap, vector: np.ndarray, wanted: Sequence[int]
    ) -> dict[int, float]:
        """The inner product of ``vector`` with each of ``wanted`` rows, computed in Milvus."""
        out: dict[int, float] = {}
        for i in range(0, len(wanted), SEARCH_LIMIT):
            part = list(wanted[i : i + SEARCH_LIMIT])
            expr = rows.where(np.asarray(part, np.int64))
            ((got, scores),) = self._search(collection, rows, vector[None, :], expr, len(part))
            out |= dict(zip(got.tolist(), scores.tolist(), strict=True))
        if lost := [r for r in wanted if r not in out]:
            raise IndexCorruptError(
                f"{self.store.location} no longer holds rows {[rows.pk(r) for r in lost[:5]]} of the served "
                "generation; reload (`POST /api/admin/reload`)"
            )
        return out

    def scores(self, vector: np.ndarray, rows: Sequence[int], own: Mapping[int, float]) -> RowScores:
        missing = [r for r in dict.fromkeys(rows) if r not in own]
        by_passage = self.saved.sentences_by_passage
        sentence_rows = [int(s) for r in dict.fromkeys(rows) if r in by_passage for s in by_passage[r]]
        fetched, sims = _both(
            lambda: self._scores_of(self.store.passages, self.passage_rows.map, vector, missing),
            lambda: self._scores_of(self.store.sentences, self.sentence_vectors.map, vector, sentence_rows),
        )
        passage = dict(own) | fetched
        to_passage = self.saved.sentence_passage_rows
        sentence: dict[int, float] = {}
        for s, sim in sims.items():
            r = int(to_passage[s])
            sentence[r] = max(sentence.get(r, sim), sim)
        return RowScores({r: passage[r] for r in rows}, sentence)

    def similarity(self, vector: np.ndarray, rows: Sequence[int], scores: RowScores) -> list[float]:
        return [scores.passage[r] for r in rows]

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        """The hits' records, and their sentences' vectors into the cache the answerer reads."""
        by_passage = self.saved.sentences_by_passage
        sentences = [int(s) for r in rows if r in by_passage for s in by_passage[r]]
        records, _ = _both(
            lambda: self.passage_rows.fetch(rows), lambda: self.sentence_vectors.prefetch(sentences)
        )
        return records


_CALLS: ThreadPoolExecutor | None = None
_CALLS_LOCK = threading.Lock()
A = TypeVar("A")
B = TypeVar("B")


def _both(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """``first()`` and ``second()`` at once (two independent Milvus calls: one round trip of waiting, not
    two), the second on a small shared pool; either's exception is raised here."""
    global _CALLS
    with _CALLS_LOCK:
        if _CALLS is None:
            _CALLS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="milvus-call")
    later = _CALLS.submit(second)
    try:
        a = first()
    finally:
        b = later.result()
    return a, b


# -- the engine for tests and local use -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _engine_binary() -> Path:
    """milvus-lite 2.5's ``milvus`` executable, found without importing the package (whose import warns)."""
    spec = importlib.util.find_spec("milvus_lite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("milvus-lite is not installed: pip install 'milvus-lite==2.5.1'")
    return Path(next(iter(spec.submodule_search_locations))) / "lib" / "milvus"


class MilvusEngine:
    """milvus-lite 2.5.1's real engine (a separate ``milvus`` process) on a ``.db`` file, listening on
    127.0.0.1 only. ``start`` waits until it answers; ``stop`` ends it (data stays in the file)."""

    def __init__(self, db: Path, port: int | None = None) -> None:
        self.db = Path(db).absolute()
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> MilvusEngine:
        binary = _engine_binary()
        self.db.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "LD_LIBRARY_PATH": f"{binary.parent}:{os.environ.get('LD_LIBRARY_PATH', '')}"}
        self.process = subprocess.Popen(
            [str(binary), str(self.db), f"127.0.0.1:{self.port}", os.environ.get("LOG_LEVEL", "ERROR")],
            env=env,
            cwd=self.db.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Milvus engine on {self.db} exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                probe = MilvusStore(self.uri, timeout=2.0, lock_dir=self.db.parent)
                probe.ping()
                probe.close()
                return self
            except (OSError, StoreUnavailableError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"the Milvus engine on {self.db} did not answer in {timeout:.0f} s"
                    ) from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    @contextlib.contextmanager
    def running(self) -> Iterator[MilvusEngine]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

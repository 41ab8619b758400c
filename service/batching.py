"""Micro-batching of question encoding: concurrent requests share one model call.

Each HTTP request encodes one question. The model's forward pass for 16 short questions costs little
more than for one, but ``SentenceTransformerEncoder`` serialises calls behind a lock, so under load the
requests would queue for the model one at a time. ``BatchingEncoder`` puts each caller's texts on a
queue; one worker thread takes everything queued (up to ``max_batch`` texts), encodes it in a single
inner call and hands every caller back its own rows.

Waiting costs latency, so the worker waits (up to ``wait_ms``) for more callers only when the previous
batch merged several callers, i.e. when there is evidence of concurrent load. A lone caller is encoded
at once and pays only the hand-off between threads. Under load, batches form naturally anyway: callers
that arrive while the model is busy are all taken by the next call.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from index.embed import Encoder


class EncoderClosedError(RuntimeError):
    """``encode_queries`` was called after ``close()``."""


@dataclass(eq=False)
class _Request:
    texts: list[str]
    done: threading.Event = field(default_factory=threading.Event)
    result: np.ndarray | None = None
    error: BaseException | None = None


_STOP = None  # the queue sentinel


class BatchingEncoder:
    """An ``Encoder`` that merges concurrent ``encode_queries`` calls into one call of ``inner``.

    ``encode_passages`` and ``count_tokens`` go straight to ``inner`` (index builds batch already).
    """

    def __init__(self, inner: Encoder, *, max_batch: int = 32, wait_ms: float = 3.0) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if wait_ms < 0:
            raise ValueError(f"wait_ms must be >= 0, got {wait_ms}")
        self.inner = inner
        self.max_batch = max_batch
        self.wait_s = wait_ms / 1000
        self.inner_calls = 0  # inner encode_queries calls made (for tests and benchmarks)
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._closing = threading.Lock()
        self._closed = False
        self._concurrent = False  # did the last batch merge more than one caller?
        self._worker = threading.Thread(target=self._run, name="citeqa-batching", daemon=True)
        self._worker.start()

    # -- the Encoder protocol ------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def backend(self) -> str:
        return self.inner.backend

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        request = _Request(list(texts))
        with self._closing:  # no request may slip in behind the stop sentinel
            if self._closed:
                raise EncoderClosedError("the batching encoder is closed")
            self._queue.put(request)
        request.done.wait()
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.encode_passages(texts)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    # -- lifecycle -----------------------------------------------------------------------------------

    def close(self, timeout: float | None = 10.0) -> None:
        """Finish every queued request, then stop the worker. Idempotent."""
        with self._closing:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
        self._worker.join(timeout)

    def __enter__(self) -> BatchingEncoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the worker ----------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stop = self._collect(first)
            self._encode(batch)
            if stop:
                return

    def _collect(self, first: _Request) -> tuple[list[_Request], bool]:
        """``first`` plus whatever is queued (waiting briefly under concurrent load); and whether to stop."""
        batch = [first]
        size = len(first.texts)
        deadline = time.monotonic() + (self.wait_s if self._concurrent else 0.0)
        while size < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
            size += len(item.texts)
        return batch, False

    def _encode(self, batch: list[_Request]) -> None:
        self._concurrent = len(batch) > 1
        texts = [t for r in batch for t in r.texts]
        try:
            self.inner_calls += 1
            vectors = self.inner.encode_queries(texts)
            if len(vectors) != len(texts):
                raise RuntimeError(f"the encoder returned {len(vectors)} vectors for {len(texts)} texts")
        except BaseException as exc:  # every waiting caller gets the error, the worker lives on
            for r in batch:
                r.error = exc
                r.done.set()
            return
        start = 0
        for r in batch:
            r.result = vectors[start : start + len(r.texts)]
            start += len(r.texts)
            r.done.set()

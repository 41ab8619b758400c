"""BatchingEncoder: concurrent question encodes share one inner call, with the same vectors."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from service.batching import BatchingEncoder, EncoderClosedError
from tests.fakes import HashingEncoder

QUESTIONS = [f"question number {i} about 第{i}章" for i in range(40)]


class GatedEncoder(HashingEncoder):
    """The first ``encode_queries`` call blocks until ``release`` is set, so later callers pile up."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[int] = []

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(len(texts))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(10)
        return super().encode_queries(texts)


def test_delegates_the_encoder_protocol() -> None:
    inner = HashingEncoder(dimension=32)
    with BatchingEncoder(inner) as enc:
        assert (enc.name, enc.fingerprint, enc.dimension) == (inner.name, inner.fingerprint, 32)
        assert enc.count_tokens("abc") == 3
        texts = ["a b", "c d"]
        np.testing.assert_array_equal(enc.encode_passages(texts), inner.encode_passages(texts))
        assert enc.encode_queries([]).shape == (0, 32)


def test_results_are_identical_to_unbatched_under_concurrency() -> None:
    reference = HashingEncoder()
    expected = {q: reference.encode_queries([q])[0] for q in QUESTIONS}
    with BatchingEncoder(HashingEncoder(), wait_ms=5) as enc, ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda q: enc.encode_queries([q]), QUESTIONS * 3))
        multi = enc.encode_queries(QUESTIONS[:5])  # a multi-text call keeps its rows in order
    for q, got in zip(QUESTIONS * 3, results, strict=True):
        assert got.shape == (1, 64)
        np.testing.assert_array_equal(got[0], expected[q])
    np.testing.assert_array_equal(multi, reference.encode_queries(QUESTIONS[:5]))


def test_concurrent_callers_are_merged_into_fewer_inner_calls() -> None:
    inner = GatedEncoder()
    with BatchingEncoder(inner, max_batch=32, wait_ms=0) as enc, ThreadPoolExecutor(12) as pool:
        first = pool.submit(enc.encode_queries, ["first"])
        assert inner.entered.wait(10)
        rest = [pool.submit(enc.encode_queries, [q]) for q in QUESTIONS[:10]]
        # the ten callers queue while the first call is in the model
        while enc._queue.qsize() < 10:
            threading.Event().wait(0.005)
        inner.release.set()
        results = [f.result(10) for f in rest]
        first.result(10)
    assert inner.batches == [1, 10]
    assert enc.inner_calls == 2
    for q, got in zip(QUESTIONS[:10], results, strict=True):
        np.testing.assert_array_equal(got, HashingEncoder().encode_queries([q]))


def test_a_batch_holds_at_most_max_batch_texts() -> None:
    inner = GatedEncoder()
    with BatchingEncoder(inner, max_batch=4, wait_ms=0) as enc, ThreadPoolExecutor(12) as pool:
        first = pool.submit(enc.encode_queries, ["first"])
        assert inner.entered.wait(10)
        rest = [pool.submit(enc.encode_queries, [q]) for q in QUESTIONS[:10]]
        while enc._queue.qsize() < 10:
            threading.Event().wait(0.005)
        inner.release.set()
        for f in [first, *rest]:
            f.result(10)
    assert inner.batches == [1, 4, 4, 2]


def test_an_inner_error_reaches_every_waiting_caller_and_the_worker_survives() -> None:
    inner = GatedEncoder()
    inner.fail_after = 1  # the first call succeeds, the second (the merged one) raises
    with BatchingEncoder(inner, wait_ms=0) as enc, ThreadPoolExecutor(8) as pool:
        first = pool.submit(enc.encode_queries, ["first"])
        assert inner.entered.wait(10)
        rest = [pool.submit(enc.encode_queries, [q]) for q in QUESTIONS[:5]]
        while enc._queue.qsize() < 5:
            threading.Event().wait(0.005)
        inner.release.set()
        assert first.result(10).shape == (1, 64)
        for f in rest:
            with pytest.raises(RuntimeError, match="encoder failed on purpose"):
                f.result(10)
        inner.fail_after = None
        assert enc.encode_queries(["after the error"]).shape == (1, 64)
    assert inner.batches[:2] == [1, 5]


def test_close_finishes_queued_requests_and_stops_the_worker() -> None:
    inner = GatedEncoder()
    enc = BatchingEncoder(inner, wait_ms=0)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(enc.encode_queries, ["first"])
        assert inner.entered.wait(10)
        queued = pool.submit(enc.encode_queries, ["queued before close"])
        while enc._queue.qsize() < 1:
            threading.Event().wait(0.005)
        closer = pool.submit(enc.close)
        inner.release.set()
        closer.result(10)
        assert first.result(10).shape == (1, 64)
        assert queued.result(10).shape == (1, 64)
    assert not enc._worker.is_alive()
    with pytest.raises(EncoderClosedError, match="the batching encoder is closed"):
        enc.encode_queries(["too late"])
    enc.close()  # idempotent


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch must be >= 1"):
        BatchingEncoder(HashingEncoder(), max_batch=0)
    with pytest.raises(ValueError, match="wait_ms must be >= 0"):
        BatchingEncoder(HashingEncoder(), wait_ms=-1)

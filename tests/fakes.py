"""A deterministic stand-in encoder for unit tests of one piece (passed in, never monkeypatched)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from index.embed import normalise


class HashingEncoder:
    """Character-bigram hashing vectors: similar texts get similar vectors, no model needed."""

    def __init__(
        self, dimension: int = 64, name: str = "test/hashing", fail_after: int | None = None
    ) -> None:
        self._dim = dimension
        self._name = name
        self.calls = 0
        self.fail_after = fail_after

    @property
    def name(self) -> str:
        return self._name

    @property
    def backend(self) -> str:
        return "hashing"

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self._name}/{self._dim}".encode()).hexdigest()

    @property
    def dimension(self) -> int:
        return self._dim

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self._dim, dtype=np.float32)
        for a, b in zip(text, text[1:], strict=False):
            h = int.from_bytes(hashlib.blake2b((a + b).encode(), digest_size=4).digest(), "little")
            v[h % self._dim] += 1.0
        return v

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("encoder failed on purpose")
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return normalise(np.stack([self._vec(t) for t in texts]))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def count_tokens(self, text: str) -> int:
        return len(text)

"""The encoder seam: questions and passages to L2-normalised float32 vectors.

``SentenceTransformerEncoder`` is the real one. The e5 ``query: ``/``passage: `` prefixes come from the
model's own prompts (``config_sentence_transformers.json``), never from string concatenation here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from index.errors import ModelError
from index.model import load_sentence_transformer, model_fingerprint

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class Encoder(Protocol):
    """What the index and the answerer need from an embedding model."""

    @property
    def name(self) -> str: ...

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


class SentenceTransformerEncoder:
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
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def dimension(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return int(self._model.max_seq_length or 512)

    def _encode(self, texts: Sequence[str], prompt_name: str | None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        with self._lock:  # torch already uses every core; serialising calls avoids oversubscription
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

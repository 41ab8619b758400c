import json
from pathlib import Path

import numpy as np
import pytest

from index.build import build_index, embedding_text, index_status
from index.errors import EmptyCorpusError, IndexCorruptError, IndexMismatchError, IndexMissingError
from index.search import FEATURES, Calibration, CalibrationError, Retriever, pair_of, rrf_fuse
from index.store import IndexType, load_index
from service.pipeline import ensure_index
from tests.conftest import SEED_DOCS, SEED_ID, make_settings
from tests.fakes import HashingEncoder


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, HashingEncoder]:
    enc = HashingEncoder()
    build_index(SEED_DOCS, tmp_path / "index", enc, max_tokens=480)
    return tmp_path / "index", enc


def _load(path: Path, enc: HashingEncoder):  # type: ignore[no-untyped-def]
    return load_index(path, model=enc.name, fingerprint=enc.fingerprint)


def _state(
    docs: Path, index: Path, enc: HashingEncoder, max_tokens: int = 480, index_type: IndexType = "auto"
) -> str:
    status = index_status(
        docs, index, fingerprint=enc.fingerprint, max_tokens=max_tokens, index_type=index_type
    )
    return status.state


def test_round_trip_keeps_passages_in_row_order(built: tuple[Path, HashingEncoder]) -> None:
    path, enc = built
    saved = _load(path, enc)
    assert saved.manifest.passages == len(saved.passages) == saved.store.size == 17
    assert saved.passages[1].id == f"{SEED_ID}:2"
    manifest = json.loads((path / "manifest.json").read_text())
    assert {"model", "model_fingerprint", "dimension", "corpus_hash", "chunking", "format_version"} <= set(
        manifest
    )
    # row i of the FAISS index is passage i
    vecs = enc.encode_passages([saved.passages[3].text])
    scores, rows = saved.store.search(vecs, 1)
    assert rows[0][0] == 3 and scores[0][0] == pytest.approx(1.0, abs=1e-5)


def test_index_built_with_another_model_is_refused_with_the_fix(built: tuple[Path, HashingEncoder]) -> None:
    path, _ = built
    other = HashingEncoder(name="test/other")
    with pytest.raises(IndexMismatchError, match=r"built with model 'test/hashing'.*run `citeqa build`"):
        _load(path, other)


def test_other_format_version_is_refused(built: tuple[Path, HashingEncoder]) -> None:
    path, enc = built
    m = json.loads((path / "manifest.json").read_text())
    m["format_version"] = 99
    (path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexMismatchError, match=r"format version 99.*run `citeqa build`"):
        _load(path, enc)


@pytest.mark.parametrize("name", ["passages.faiss", "passages.jsonl", "sentences.npy"])
def test_truncated_or_corrupted_files_are_detected(built: tuple[Path, HashingEncoder], name: str) -> None:
    path, enc = built
    f = path / name
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(IndexCorruptError, match=rf"{name} does not match its checksum.*run `citeqa build`"):
        _load(path, enc)


def test_missing_file_and_missing_index_are_explained(
    built: tuple[Path, HashingEncoder], tmp_path: Path
) -> None:
    path, enc = built
    (path / "passages.jsonl").unlink()
    with pytest.raises(IndexCorruptError, match=r"passages.jsonl is missing; run `citeqa build`"):
        _load(path, enc)
    with pytest.raises(IndexMissingError, match=r"no index at .*run `citeqa build`"):
        _load(tmp_path / "nowhere", enc)


def test_failed_build_leaves_the_previous_index_intact(built: tuple[Path, HashingEncoder]) -> None:
    path, enc = built
    before = (path / "manifest.json").read_bytes()
    with pytest.raises(RuntimeError, match="on purpose"):
        build_index(SEED_DOCS, path, HashingEncoder(fail_after=1), max_tokens=480, batch_size=8)
    assert (path / "manifest.json").read_bytes() == before
    assert _load(path, enc).store.size == 17
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".index.building")]


def test_status_tracks_corpus_changes(tmp_path: Path, docs_copy: Path) -> None:
    enc = HashingEncoder()
    index = tmp_path / "idx"
    assert _state(docs_copy, index, enc) == "missing"
    build_index(docs_copy, index, enc, max_tokens=480)
    assert _state(docs_copy, index, enc) == "fresh"
    (docs_copy / "extra.md").write_text("A new paragraph.\n", "utf-8")
    assert _state(docs_copy, index, enc) == "stale"
    assert _state(docs_copy, index, enc, max_tokens=200) == "stale"


@pytest.mark.parametrize(
    ("setting", "state"), [("hnsw", "stale"), ("ivf", "stale"), ("flat", "fresh"), ("auto", "fresh")]
)
def test_status_tracks_the_index_type_setting(tmp_path: Path, setting: IndexType, state: str) -> None:
    enc = HashingEncoder()
    index = tmp_path / "idx"
    build_index(SEED_DOCS, index, enc, max_tokens=480, index_type="flat")
    status = index_status(SEED_DOCS, index, fingerprint=enc.fingerprint, max_tokens=480, index_type=setting)
    assert status.state == state
    if state == "stale":
        expected = {"hnsw": "IndexHNSWFlat", "ivf": "IndexIVFFlat"}[setting]
        assert status.reason == (
            f"it is an IndexFlatIP, but CITEQA_INDEX_TYPE={setting} makes an {expected} for 17 passages"
        )
    else:
        assert status.reason == ""


def test_a_changed_index_type_setting_rebuilds_at_the_next_build(tmp_path: Path) -> None:
    enc = HashingEncoder()
    flat = make_settings(tmp_path, index_type="flat")
    assert ensure_index(flat, enc) is not None
    assert ensure_index(flat, enc) is None
    hnsw = make_settings(tmp_path, index_type="hnsw")
    report = ensure_index(hnsw, enc)
    assert report is not None and report.manifest.index_type == "IndexHNSWFlat"
    assert report.reason == (
        "the index was stale: it is an IndexFlatIP, but CITEQA_INDEX_TYPE=hnsw makes an IndexHNSWFlat "
        "for 17 passages"
    )
    assert ensure_index(hnsw, enc) is None
    assert _load(hnsw.resolved_index_dir, enc).store.index_type == "IndexHNSWFlat"
    assert ensure_index(make_settings(tmp_path, index_type="auto"), enc) is not None  # auto: flat at 17


def test_empty_corpus_cannot_be_built(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    with pytest.raises(EmptyCorpusError, match="holds no paragraphs"):
        build_index(tmp_path / "docs", tmp_path / "idx", HashingEncoder())


def test_rrf_fusion_and_deterministic_ties() -> None:
    fused = rrf_fuse([[1, 2, 3], [3, 1]], k=60)
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[2] == pytest.approx(1 / 62)


def test_lexical_evidence_per_question_and_passage_language(built: tuple[Path, HashingEncoder]) -> None:
    """Each passage language is its own pool: a question gets its own tokens as lexical evidence over
    passages in its language and their dictionary translation over the others (index.translate)."""
    path, enc = built
    r = Retriever(_load(path, enc), enc)
    assert set(r.pools) == {"zh", "en"}  # the seed article and the English test article
    zh = r.search("盒马提供了多少件生活日用品", 5, "hybrid")
    en = r.search("How many items did Hema give away", 5, "hybrid")
    assert zh.lexical_used and en.lexical_used
    assert {t.source for t in zh.terms["zh"]} >= {"盒马", "生活"}
    assert any("件" in t.tokens or "物品" in t.tokens for t in en.terms["zh"])  # "items", translated
    assert {t.source for t in en.terms["en"]} >= {"items", "hema"}
    assert zh.hits[0].passage.id == f"{SEED_ID}:2"
    assert all(h.lexical_score is not None for h in en.hits)
    lexical = r.search("盒马", 5, "lexical")
    assert [h.passage.id for h in lexical.hits] == [f"{SEED_ID}:2"]  # zero-score hits dropped
    ranked = r.search("安全应急", 10, "dense").hits
    keys = [(-h.score, h.passage.id) for h in ranked]
    assert keys == sorted(keys)
    assert np.isfinite([h.score for h in ranked]).all()


def test_pairs_and_calibration_files() -> None:
    assert pair_of("en", "zh") == "en->zh" and pair_of("zh", "und") == "zh->zh"
    shipped = Calibration.load()
    assert set(shipped.models) >= {"zh->zh", "en->en", "en->zh", "zh->en"}
    assert "command" in shipped.fitted_on
    with pytest.raises(CalibrationError, match="no model for zh->en"):
        Calibration.from_json({"features": list(FEATURES), "models": {p: {"weights": [0, 0, 0], "bias": 0}
                               for p in ("zh->zh", "en->en", "en->zh")}})  # fmt: skip
    with pytest.raises(CalibrationError, match="not a score calibration"):
        Calibration.from_json({"features": ["dense"], "models": {}})


def test_similarity_is_the_passage_cosine_in_every_mode(built: tuple[Path, HashingEncoder]) -> None:
    path, enc = built
    saved = _load(path, enc)
    r = Retriever(saved, enc)
    question = "盒马提供了多少件生活日用品"
    q = enc.encode_queries([question])[0]
    cosine = enc.encode_passages([embedding_text(p.text) for p in saved.passages]) @ q
    for mode in ("hybrid", "dense", "lexical"):
        hits = r.search(question, 10, mode).hits
        assert hits
        for h in hits:
            assert h.similarity == pytest.approx(float(cosine[saved.row_of[h.passage.id]]), abs=1e-6)
    # dense_score is another thing: the passage's similarity mixed with its best sentence's
    dense = r.search(question, 10, "dense").hits
    assert any(h.dense_score != pytest.approx(h.similarity, abs=1e-6) for h in dense)


def test_damaged_index_is_reported_and_leftovers_of_killed_builds_are_removed(
    built: tuple[Path, HashingEncoder],
) -> None:
    path, enc = built
    (path / "sentences.npy").write_bytes(b"garbage")
    assert _state(SEED_DOCS, path, enc) == "damaged"
    dead = path.parent / ".index.building-999999999-abc"  # no such process
    dead.mkdir()
    build_index(SEED_DOCS, path, enc, max_tokens=480)
    assert _state(SEED_DOCS, path, enc) == "fresh"
    assert not dead.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == ["index"]


def test_index_type_is_chosen_by_corpus_size() -> None:
    import faiss

    from index.store import ANN_ABOVE, expected_index_type, make_index

    assert isinstance(make_index(8, 17), faiss.IndexFlatIP)
    assert isinstance(make_index(8, ANN_ABOVE - 1), faiss.IndexFlatIP)
    assert isinstance(make_index(8, ANN_ABOVE), faiss.IndexIVFFlat)
    assert isinstance(make_index(8, 17, "hnsw"), faiss.IndexHNSWFlat)
    assert isinstance(make_index(8, ANN_ABOVE, "flat"), faiss.IndexFlatIP)
    assert expected_index_type(ANN_ABOVE - 1, "auto") == "IndexFlatIP"
    assert expected_index_type(ANN_ABOVE, "auto") == "IndexIVFFlat"
    assert expected_index_type(ANN_ABOVE, "flat") == "IndexFlatIP"
    assert expected_index_type(17, "hnsw") == "IndexHNSWFlat"


def test_ivf_store_trains_on_add_and_keeps_exact_self_matches(tmp_path: Path) -> None:
    import numpy as np

    from index.embed import normalise
    from index.store import FaissStore, make_index

    rng = np.random.default_rng(0)
    centres = normalise(rng.standard_normal((20, 32), dtype=np.float32))
    vectors = normalise(centres[rng.integers(0, 20, 4000)] + 0.05 * rng.standard_normal((4000, 32)))
    store = FaissStore(32, make_index(32, len(vectors), "ivf"))
    store.add(vectors)
    _, ids = store.search(vectors[:5], 1)
    assert ids[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert abs(store.similarity(vectors[7], 7) - 1.0) < 1e-5
    store.save(tmp_path / "p.faiss")
    loaded = FaissStore.load(tmp_path / "p.faiss", 32)
    assert loaded.index_type == "IndexIVFFlat"
    assert abs(loaded.similarity(vectors[7], 7) - 1.0) < 1e-5

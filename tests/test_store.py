import json
from pathlib import Path

import numpy as np
import pytest

from index.errors import IndexCorruptError, IndexMismatchError, IndexMissingError
from index.ingest import embedding_text, index_status, update_index
from index.lexical import pair_of
from index.search import FEATURES, Calibration, CalibrationError, Retriever
from index.store import MANIFEST, SEGMENTS, load_index, read_manifest
from index.translate import translator_for
from tests.conftest import DICTIONARIES, MIXED_SEED_DOCS, SEED_ID
from tests.fakes import HashingEncoder


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, HashingEncoder]:
    enc = HashingEncoder()
    update_index(MIXED_SEED_DOCS, tmp_path / "index", enc, max_tokens=480)
    return tmp_path / "index", enc


def _load(path: Path, enc: HashingEncoder):  # type: ignore[no-untyped-def]
    return load_index(path, model=enc.name, fingerprint=enc.fingerprint)


def _state(docs: Path, index: Path, enc: HashingEncoder, max_tokens: int = 480) -> str:
    return index_status(docs, index, fingerprint=enc.fingerprint, max_tokens=max_tokens).state


def _segment_file(path: Path, name: str) -> Path:
    (segment,) = read_manifest(path).segments
    return path / SEGMENTS / segment.name / name


def test_round_trip_keeps_passages_in_row_order(built: tuple[Path, HashingEncoder]) -> None:
    path, enc = built
    saved = _load(path, enc)
    # 17 passages of the seed article, 6 of the English seed document
    assert saved.manifest.passages == len(saved.passages) == saved.store.size == 23
    assert len(saved.tokens) == 23 and "盒马" in saved.tokens[1]
    assert saved.passages[1].id == f"{SEED_ID}:2" and saved.passages[1].lang == "zh"
    manifest = json.loads((path / MANIFEST).read_text())
    assert {"model", "model_fingerprint", "dimension", "chunking", "format_version", "generation"} <= set(
        manifest
    )
    doc, english = manifest["documents"]
    assert english["rows"] == [17, 23] and saved.passages[17].lang == "en"
    assert doc["id"] == SEED_ID and doc["format"] == "article" and doc["rows"] == [0, 17]
    assert len(doc["content_hash"]) == 64
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
    m = json.loads((path / MANIFEST).read_text())
    m["format_version"] = 99
    (path / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(IndexMismatchError, match=r"format version 99.*run `citeqa build`"):
        _load(path, enc)


@pytest.mark.parametrize("name", ["passages.npy", "passages.jsonl", "sentences.npy", "tokens.jsonl"])
def test_truncated_or_corrupted_files_are_detected(built: tuple[Path, HashingEncoder], name: str) -> None:
    path, enc = built
    f = _segment_file(path, name)
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(IndexCorruptError, match=rf"{name} does not match its checksum.*run `citeqa build`"):
        _load(path, enc)


def test_missing_file_and_missing_index_are_explained(
    built: tuple[Path, HashingEncoder], tmp_path: Path
) -> None:
    path, enc = built
    _segment_file(path, "passages.jsonl").unlink()
    with pytest.raises(IndexCorruptError, match=r"passages.jsonl is missing; run `citeqa build`"):
        _load(path, enc)
    with pytest.raises(IndexMissingError, match=r"no index at .*run `citeqa build`"):
        _load(tmp_path / "nowhere", enc)


def test_failed_update_leaves_the_previous_index_intact(built: tuple[Path, HashingEncoder]) -> None:
    path, enc = built
    before = (path / MANIFEST).read_bytes()
    with pytest.raises(RuntimeError, match="on purpose"):
        update_index(
            MIXED_SEED_DOCS, path, HashingEncoder(fail_after=1), max_tokens=480, batch_size=8, force=True
        )
    assert (path / MANIFEST).read_bytes() == before
    assert _load(path, enc).store.size == 23


def test_status_tracks_corpus_changes(tmp_path: Path, docs_copy: Path) -> None:
    enc = HashingEncoder()
    index = tmp_path / "idx"
    assert _state(docs_copy, index, enc) == "missing"
    update_index(docs_copy, index, enc, max_tokens=480)
    assert _state(docs_copy, index, enc) == "fresh"
    (docs_copy / "extra.md").write_text("A new paragraph.\n", "utf-8")
    assert _state(docs_copy, index, enc) == "stale"
    assert (
        "extra.md is new"
        in index_status(docs_copy, index, fingerprint=enc.fingerprint, max_tokens=480).reason
    )
    assert _state(docs_copy, index, enc, max_tokens=200) == "stale"


def test_an_empty_folder_gives_an_empty_index_that_answers_nothing(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    enc = HashingEncoder()
    report = update_index(tmp_path / "docs", tmp_path / "idx", enc)
    assert report.documents == 0 and report.passages == 0
    saved = _load(tmp_path / "idx", enc)
    assert saved.store.size == 0
    assert Retriever(saved, enc).search("anything", 5).hits == ()


def test_lexical_evidence_per_question_and_passage_language(built: tuple[Path, HashingEncoder]) -> None:
    """Each passage language is its own pool: a question gets its own tokens as lexical evidence over
    passages in its language and their dictionary translation over the others (index.translate)."""
    path, enc = built
    saved = _load(path, enc)
    translator = translator_for({t for tokens in saved.tokens for t in tokens}, DICTIONARIES)
    r = Retriever(saved, enc, translator=translator)
    assert set(r.pools) == {"zh", "en"}  # the seed article and the English test article
    zh = r.search("盒马提供了多少件生活日用品", 5, "hybrid")
    en = r.search("How many vegetables did Hema provide for free", 5, "hybrid")
    assert zh.lexical_used and en.lexical_used
    assert {t.source for t in zh.terms["zh"]} >= {"盒马", "生活"}
    translated = {t.source: t.tokens for t in en.terms["zh"]}
    assert "蔬菜" in translated["vegetables"] and "免费" in translated["free"]  # by CC-CEDICT
    assert {t.source for t in en.terms["en"]} >= {"vegetables", "hema"}  # its own words over English
    assert zh.hits[0].passage.id == f"{SEED_ID}:2"
    assert all(h.lexical_score is not None for h in en.hits)
    untranslated = Retriever(saved, enc).search("How many vegetables did Hema provide for free", 5, "hybrid")
    assert untranslated.terms["zh"] == ()  # without a dictionary, no lexical evidence across languages
    lexical = r.search("盒马", 5, "lexical")
    assert [h.passage.id for h in lexical.hits] == [f"{SEED_ID}:2"]  # zero-score hits dropped
    ranked = r.search("安全应急", 10, "dense").hits
    keys = [(-h.score, h.passage.id) for h in ranked]
    assert keys == sorted(keys)
    assert np.isfinite([h.score for h in ranked]).all()


def test_pairs_and_calibration_files() -> None:
    assert pair_of("en", "zh") == "en-zh" and pair_of("zh", "und") == "zh-zh"
    shipped = Calibration.load()
    assert set(shipped.models) >= {"zh-zh", "en-en", "en-zh", "zh-en"}
    assert "command" in shipped.fitted_on
    # Fitted (never hand-set), with what it was fitted on and how it did on the held-out articles.
    assert "INTERIM" not in json.dumps(shipped.fitted_on) and shipped.fitted_on["questions"]["held_out"] > 0
    assert set(shipped.fitted_on["recall@1 per pair (fit / held out)"]) == set(shipped.models)
    with pytest.raises(CalibrationError, match="no model for zh-en"):
        Calibration.from_json({"features": list(FEATURES), "models": {p: {"weights": [0, 0, 0], "bias": 0}
                               for p in ("zh-zh", "en-en", "en-zh")}})  # fmt: skip
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


def test_damaged_index_is_reported_and_repaired_and_leftovers_of_killed_updates_are_removed(
    built: tuple[Path, HashingEncoder],
) -> None:
    path, enc = built
    _segment_file(path, "sentences.npy").write_bytes(b"garbage")
    assert _state(MIXED_SEED_DOCS, path, enc) == "damaged"
    with pytest.raises(IndexCorruptError, match="sentences.npy does not match its checksum"):
        update_index(MIXED_SEED_DOCS, path, enc, repair=False)
    dead = path / SEGMENTS / ".tmp-999999999-g000009-abc"  # a killed update's half-written segment
    dead.mkdir()
    report = update_index(MIXED_SEED_DOCS, path, enc, max_tokens=480)
    assert report.updated == (SEED_ID, "001_kettleby_tidal_mill") and any(
        "repairing" in w for w in report.warnings
    )
    assert _state(MIXED_SEED_DOCS, path, enc) == "fresh"
    assert not dead.exists()
    assert _load(path, enc).store.size == 23


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


@pytest.mark.parametrize(("setting", "kind"), [("hnsw", "IndexHNSWFlat"), ("flat", "IndexFlatIP")])
def test_the_faiss_type_is_chosen_at_load_without_re_embedding(
    built: tuple[Path, HashingEncoder], setting: str, kind: str
) -> None:
    path, enc = built
    saved = load_index(path, model=enc.name, fingerprint=enc.fingerprint, index_type=setting)  # type: ignore[arg-type]
    assert saved.store.index_type == kind and saved.store.size == 23


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

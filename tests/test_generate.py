"""Generated answers, through the real app, the real model and a real FAISS index, against a scripted
OpenAI-compatible server on loopback (tests/llm_server.py: real HTTP, real server-sent events).

The guard must keep the faithful sentences and drop exactly the bad ones; every fault of the LLM must give
the extractive answer with ``generation_error``, never a 5xx and never unguarded text.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from eval.dataset import EvalItem
from eval.metrics import generation_summary, record_from_json, record_to_json, summarise_group
from eval.run import evaluate
from service.app import create_app
from service.generate import LLMClient, build_messages
from service.pipeline import Pipeline
from service.settings import Settings
from tests.conftest import SEED_ID, make_settings
from tests.llm_server import FAITHFUL, Reply, ScriptedLLM

HEMA = f"{SEED_ID}:2"
QUESTION = "盒马提供了多少件生活日用品？"
HEMA_EN = "Hema provided 450,000 items of vegetables, grain and oil free of charge in 7,000 communities"
OFF_TOPIC = "What is the boiling point of liquid nitrogen on Mars?"
TIMEOUT = 1.5


def llm_settings(seed_settings: Settings, url: str, **overrides: object) -> Settings:
    """The session's seed settings (same index) with an LLM configured."""
    assert seed_settings.index_dir is not None
    return make_settings(seed_settings.index_dir.parent, llm_url=url, llm_timeout=TIMEOUT, **overrides)


@pytest.fixture(scope="module")
def gen(llm: ScriptedLLM, seed_settings: Settings, pipeline: Pipeline) -> Iterator[TestClient]:
    """The real app over the session's pipeline (its retriever and answerer), with the scripted LLM."""
    settings = llm_settings(seed_settings, llm.url)
    with TestClient(create_app(settings, Pipeline(settings, pipeline.retriever, pipeline.answerer))) as c:
        yield c


def ask(client: TestClient, question: str = QUESTION, **extra: object) -> dict:
    r = client.post("/api/ask", json={"question": question, "top_k": 3, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_faithful_answer_is_kept_with_its_citations(gen: TestClient, llm: ScriptedLLM) -> None:
    llm.script(Reply(FAITHFUL))
    body = ask(gen)
    assert body["answer_mode"] == "generated"
    assert body["generation_error"] is None and body["dropped"] == []
    assert body["answer"]["sentences"] == [
        {"text": "盒马在7000个社区免费提供了45万件蔬菜、粮油等生活日用品。", "citations": [1]}
    ]
    assert body["answer"]["text"] == "盒马在7000个社区免费提供了45万件蔬菜、粮油等生活日用品。[1]"
    assert body["grounded"] is True and body["abstained"] is False
    assert body["passages"][0]["id"] == HEMA
    top = body["passages"][0]
    assert any("45万件" in top["text"][h["start"] : h["end"]] for h in top["highlight"])
    assert {"generate", "guard"} <= set(body["timings_ms"])
    # The prompt: numbered passages in rank order, the question, streamed (server-sent events).
    (request,) = llm.requests
    assert request["stream"] is True and request["model"] == "default"
    prompt = request["messages"][-1]["content"]
    assert prompt.index("[1] ") < prompt.index("[2] ") < prompt.index("[3] ") < prompt.index(QUESTION)
    assert body["passages"][0]["text"][:30] in prompt.split("[2] ")[0]


def test_the_guard_drops_exactly_the_bad_sentences(gen: TestClient, llm: ScriptedLLM) -> None:
    llm.script(
        Reply(
            FAITHFUL
            + "盒马还在7000个社区免费提供了90万件生活日用品[1]。"  # a made-up number
            + "马化腾宣布盒马在7000个社区免费提供了45万件生活日用品[1]。"  # a name the passage lacks
            + "今天的天空非常蓝，海水也很咸[1]。"  # cited, but says nothing the passage says
            + "这些物资都来自于盒马的仓库。"  # no citation at all
        )
    )
    body = ask(gen)
    assert body["answer_mode"] == "generated"
    assert [s["text"] for s in body["answer"]["sentences"]] == [
        "盒马在7000个社区免费提供了45万件蔬菜、粮油等生活日用品。"
    ]
    assert [(d["reason"], d["citations"]) for d in body["dropped"]] == [
        ("unsupported_number", [1]),
        ("unsupported_name", [1]),
        ("not_similar", [1]),
        ("uncited", []),
    ]
    assert body["dropped"][0]["text"] == "盒马还在7000个社区免费提供了90万件生活日用品。"


def test_citations_to_passages_not_returned_are_removed(gen: TestClient, llm: ScriptedLLM) -> None:
    llm.script(Reply("盒马在7000个社区免费提供了45万件蔬菜、粮油等生活日用品[1][7]。盒马还提供了粮油[9]。"))
    body = ask(gen)  # top_k 3: [7] and [9] point at nothing
    assert body["answer"]["sentences"][0]["citations"] == [1]
    assert body["dropped"] == [{"text": "盒马还提供了粮油。", "reason": "uncited", "citations": [9]}]


def test_an_english_answer_over_chinese_passages_is_checked_across_languages(
    gen: TestClient, llm: ScriptedLLM
) -> None:
    llm.script(Reply(f"{HEMA_EN} [1]. Hema provided 460,000 items in 7,000 communities [1]."))
    body = ask(gen, "How many communities did Hema supply?")
    if body["abstained"]:
        pytest.fail(f"the extractive answer abstained ({body['abstained_reason']}): nothing to generate from")
    assert body["answer_mode"] == "generated", body
    assert body["answer"]["sentences"] == [{"text": f"{HEMA_EN}.", "citations": [1]}]
    assert [d["reason"] for d in body["dropped"]] == ["unsupported_number"]


def test_not_in_the_documents_gives_the_extractive_answer(
    gen: TestClient, llm: ScriptedLLM, client: TestClient
) -> None:
    llm.script(Reply("NOT_IN_DOCUMENTS"))
    body = ask(gen)
    extractive = ask(client)
    assert body["answer_mode"] == "extractive" and body["generation_error"] is None
    assert body["answer"] == extractive["answer"] and body["abstained"] == extractive["abstained"]
    assert "45万件" in body["answer"]["text"]


def test_when_every_sentence_is_dropped_the_extractive_answer_stays(
    gen: TestClient, llm: ScriptedLLM
) -> None:
    llm.script(Reply("盒马提供了99万件生活日用品[1]。"))
    body = ask(gen)
    assert body["answer_mode"] == "extractive" and body["generation_error"] is None
    assert "45万件" in body["answer"]["text"] and "99万" not in body["answer"]["text"]
    assert [d["reason"] for d in body["dropped"]] == ["unsupported_number"]


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(status=500), "HTTP 500"),
        (Reply(status=429, raw=b'{"error": "rate limited"}'), "HTTP 429"),
        (Reply(raw=b"this is not json"), "not a chat completion"),
        (Reply(raw=b'{"choices": []}'), "not a chat completion"),
        (Reply(""), "empty"),
        (Reply("   [1]  "), "no sentence"),
        (Reply(FAITHFUL, cut=True), "ended before"),
    ],
)
def test_faults_fall_back_to_the_extractive_answer(
    gen: TestClient, llm: ScriptedLLM, client: TestClient, reply: Reply, message: str
) -> None:
    llm.script(reply)
    body = ask(gen)
    assert body["answer_mode"] == "extractive"
    assert message in body["generation_error"]
    assert body["answer"] == ask(client)["answer"]
    assert body["grounded"] is True


def test_a_slow_llm_falls_back_within_the_timeout(gen: TestClient, llm: ScriptedLLM) -> None:
    llm.script(Reply(FAITHFUL, delay=8.0))
    t0 = time.perf_counter()
    body = ask(gen)
    took = time.perf_counter() - t0
    assert body["answer_mode"] == "extractive"
    assert f"within {TIMEOUT:g} s" in body["generation_error"]
    assert took < 6.0  # the timeout (1.5 s) plus the extractive answer, well before the reply's 8 s


def test_an_unreachable_llm_falls_back(seed_settings: Settings, pipeline: Pipeline) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    settings = llm_settings(seed_settings, f"http://127.0.0.1:{port}")
    with TestClient(create_app(settings, Pipeline(settings, pipeline.retriever, pipeline.answerer))) as c:
        body = ask(c)
    assert body["answer_mode"] == "extractive"
    assert "cannot be reached" in body["generation_error"]


def test_extractive_mode_does_not_call_the_llm(gen: TestClient, llm: ScriptedLLM) -> None:
    llm.script(Reply(FAITHFUL))
    body = ask(gen, answer_mode="extractive")
    assert body["answer_mode"] == "extractive" and body["generation_error"] is None
    assert llm.requests == []


def test_an_abstention_is_not_sent_to_the_llm(gen: TestClient, llm: ScriptedLLM, client: TestClient) -> None:
    question = OFF_TOPIC
    llm.script(Reply("The boiling point is 77 K [1]."))
    body = ask(gen, question)
    assert body["abstained"] is True and body["answer_mode"] == "extractive"
    assert body["answer"] == ask(client, question)["answer"]
    assert llm.requests == []


def test_healthz_lists_the_answer_modes(gen: TestClient, client: TestClient) -> None:
    """The chat page offers the mode control only when the server lists `generated`."""
    assert gen.get("/healthz").json()["answer_modes"] == ["generated", "extractive"]
    assert client.get("/healthz").json()["answer_modes"] == ["extractive"]


def test_the_example_questions_do_not_ask_the_llm(gen: TestClient, llm: ScriptedLLM) -> None:
    llm.script()
    r = gen.get("/api/examples")
    assert r.status_code == 200 and r.json()["examples"], r.text
    assert llm.requests == []


def test_generated_without_an_llm_is_a_422(client: TestClient) -> None:
    r = client.post("/api/ask", json={"question": QUESTION, "answer_mode": "generated"})
    assert r.status_code == 422
    assert r.json()["error"] == "llm_not_configured"
    assert "CITEQA_LLM_URL" in r.json()["detail"]
    r = client.post("/api/ask", json={"question": QUESTION, "answer_mode": "poetic"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    default = ask(client)
    assert default["answer_mode"] == "extractive" and default["dropped"] == []


def test_the_stream_carries_the_guarded_answer(gen: TestClient, llm: ScriptedLLM) -> None:
    llm.script(Reply(FAITHFUL + "盒马还提供了90万件生活日用品[1]。"))
    with gen.stream("POST", "/api/ask/stream", json={"question": QUESTION, "top_k": 3}) as r:
        assert r.status_code == 200
        text = "".join(r.iter_text())
    deltas = [line for line in text.splitlines() if line.startswith("data:")]
    assert "90万" not in text.split("event: done")[0]  # no unguarded text before the end ...
    assert '"answer_mode":"generated"' in deltas[-1]  # ... and the dropped sentence is listed in `done`
    assert '"reason":"unsupported_number"' in deltas[-1]


def test_the_client_reads_plain_completions_too(llm: ScriptedLLM) -> None:
    client = LLMClient(llm.url + "/v1", timeout=TIMEOUT, api_key="sk-test")
    try:
        llm.script(Reply("Hello [1]."))
        assert client.complete(build_messages("How?", ["a passage"])) == "Hello [1]."
        assert llm.requests[0]["stream"] is False
    finally:
        client.close()


def test_the_settings_refuse_a_url_that_is_not_http(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CITEQA_LLM_URL must be an http"):
        make_settings(tmp_path, llm_url="localhost:11434")


def test_eval_reports_the_share_of_generated_sentences_dropped(
    llm: ScriptedLLM, seed_settings: Settings, pipeline: Pipeline
) -> None:
    settings = llm_settings(seed_settings, llm.url)
    generating = Pipeline(settings, pipeline.retriever, pipeline.answerer)
    item = EvalItem("q1", "zh", QUESTION, ("45万件",), (), (HEMA,), True)
    unanswerable = EvalItem(
        "q2", "en", "What is the boiling point of liquid nitrogen on Mars?", (), (), (), False
    )
    llm.script(Reply(FAITHFUL + "盒马还提供了90万件生活日用品[1]。今天的天空非常蓝，海水也很咸[1]。"))
    records = evaluate([item, unanswerable], generating, top_k=3, answer_mode="generated")
    assert [r.answer_mode for r in records] == ["generated", "extractive"]
    assert records[0].answer == "盒马在7000个社区免费提供了45万件蔬菜、粮油等生活日用品。[1]"
    assert record_from_json(record_to_json(records[0])) == records[0]
    assert generation_summary(records) == {
        "generated_answers": 1,
        "llm_errors": 0,
        "sentences": 3,
        "dropped": 2,
        "dropped_share": 2 / 3,
        "dropped_by": {"not_similar": 1, "unsupported_number": 1},
    }
    summary = summarise_group(records)
    assert summary["answer_hit"] == 1.0 and summary["grounded"] == 1.0

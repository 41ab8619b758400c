"""Generated answers streamed sentence by sentence (POST /api/ask/stream in generated mode), over real HTTP
on loopback at both ends: the real app served by uvicorn in a thread, and the scripted OpenAI-compatible
server (tests/llm_server.py) streaming its completion slowly. The model, the index and the guard are real.

No generated text may reach the client before the guard has kept it; a kept sentence must arrive while the
LLM is still writing; what stands at the end is always ``done``'s answer."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from service.app import create_app
from service.generate import complete_sentences
from service.pipeline import Pipeline
from service.settings import Settings
from tests.conftest import make_settings
from tests.llm_server import FAITHFUL, MADE_UP, SECOND, Reply, ScriptedLLM

QUESTION = "盒马提供了多少件生活日用品？"
CHUNK_DELAY = 0.1  # seconds between the scripted LLM's chunks of 4 characters


@pytest.fixture(scope="module")
def base_url(llm: ScriptedLLM, seed_settings: Settings, pipeline: Pipeline) -> Iterator[str]:
    """The real app over the session's pipeline with the scripted LLM (a generous timeout: it is slow on
    purpose), served by uvicorn on a free loopback port."""
    assert seed_settings.index_dir is not None
    settings = make_settings(seed_settings.index_dir.parent, llm_url=llm.url, llm_timeout=30.0)
    app = create_app(settings, Pipeline(settings, pipeline.retriever, pipeline.answerer))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def stream(base_url: str, **body: Any) -> list[tuple[str, Any, float]]:
    """The events of one streamed answer as they arrive: (name, data, time.monotonic() on arrival)."""
    events: list[tuple[str, Any, float]] = []
    name = ""
    with httpx.stream(
        "POST", f"{base_url}/api/ask/stream", json={"question": QUESTION, "top_k": 3, **body}, timeout=60
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:]), time.monotonic()))
    return events


def deltas_after_last_reset(events: list[tuple[str, Any, float]]) -> str:
    names = [n for n, _, _ in events]
    start = len(names) - names[::-1].index("reset") if "reset" in names else 0
    return "".join(d["text"] for n, d, _ in events[start:] if n == "delta")


def test_kept_sentences_arrive_while_the_llm_is_still_writing(base_url: str, llm: ScriptedLLM) -> None:
    llm.script(Reply(FAITHFUL + MADE_UP + SECOND, chunk_chars=4, chunk_delay=CHUNK_DELAY))
    t0 = time.monotonic()
    events = stream(base_url)
    (asked,) = llm.received_at
    (finished,) = llm.finished_at
    names = [n for n, _, _ in events]
    assert names == ["passages", "delta", "delta", "done"]
    first, second, done = events[1], events[2], events[3][1]
    # The first sentence was sent when the LLM had written about a third of its completion.
    assert first[1]["text"] == "盒马在7000个社区免费提供了45万件蔬菜、粮油等生活日用品。[1]"
    assert first[2] < finished - 5 * CHUNK_DELAY, (first[2] - t0, finished - t0)
    assert second[1]["text"] == "2021年夏天，河南遭遇罕见特大暴雨。[1]"
    print(
        f"after the LLM was asked: first sentence at the client {first[2] - asked:.2f} s, completion written"
        f" {finished - asked:.2f} s; after the request: {first[2] - t0:.2f} s, {finished - t0:.2f} s;"
        f" timings_ms first_sentence {events[3][1]['timings_ms']['first_sentence']:.0f}"
    )
    # The made-up number in the middle was never sent; it is listed in `done`.
    assert all("90万" not in json.dumps(d, ensure_ascii=False) for n, d, _ in events if n != "done")
    assert done["answer_mode"] == "generated" and done["generation_error"] is None
    assert [(d["reason"], d["text"]) for d in done["dropped"]] == [
        ("unsupported_number", "盒马还在7000个社区免费提供了90万件生活日用品。")
    ]
    assert first[1]["text"] + second[1]["text"] == done["answer"]["text"]
    assert [s["text"] for s in done["answer"]["sentences"]] == [
        "盒马在7000个社区免费提供了45万件蔬菜、粮油等生活日用品。",
        "2021年夏天，河南遭遇罕见特大暴雨。",
    ]
    assert {"generate", "guard", "first_sentence"} <= set(done["timings_ms"])


@pytest.mark.parametrize(
    ("reply", "reason", "error"),
    [
        (Reply(FAITHFUL + "盒马还", cut=True, chunk_delay=0.02), "generation_error", "ended before"),
        (Reply(FAITHFUL + "NOT_IN_DOCUMENTS", chunk_delay=0.02), "not_in_documents", None),
    ],
)
def test_a_fault_after_a_kept_sentence_withdraws_it_for_the_extractive_answer(
    base_url: str, llm: ScriptedLLM, reply: Reply, reason: str, error: str | None
) -> None:
    llm.script(reply)
    events = stream(base_url)
    names = [n for n, _, _ in events]
    assert names[:3] == ["passages", "delta", "reset"] and names[-1] == "done"
    assert set(names[3:-1]) == {"delta"}
    assert events[1][1]["text"] == "盒马在7000个社区免费提供了45万件蔬菜、粮油等生活日用品。[1]"
    done = events[-1][1]
    assert events[2][1]["reason"] == reason
    assert done["answer_mode"] == "extractive"
    if error is None:
        assert done["generation_error"] is None and events[2][1]["detail"] is None
    else:
        assert error in done["generation_error"] and events[2][1]["detail"] == done["generation_error"]
    # What stands is the extractive answer, spelled by the deltas after the reset.
    extractive = httpx.post(
        f"{base_url}/api/ask", json={"question": QUESTION, "top_k": 3, "answer_mode": "extractive"}
    ).json()
    assert done["answer"] == extractive["answer"]
    assert deltas_after_last_reset(events) == done["answer"]["text"]


def test_not_in_the_documents_streams_nothing_generated(base_url: str, llm: ScriptedLLM) -> None:
    llm.script(Reply("NOT_IN_DOCUMENTS", chunk_chars=3, chunk_delay=0.02))
    events = stream(base_url)
    names = [n for n, _, _ in events]
    assert names[0] == "passages" and names[-1] == "done" and set(names[1:-1]) == {"delta"}
    done = events[-1][1]
    assert done["answer_mode"] == "extractive" and done["generation_error"] is None
    assert "".join(d["text"] for n, d, _ in events if n == "delta") == done["answer"]["text"]
    assert "45万件" in done["answer"]["text"]
    assert len(llm.requests) == 1


def test_the_plain_endpoint_answers_as_before(base_url: str, llm: ScriptedLLM) -> None:
    llm.script(Reply(FAITHFUL + MADE_UP + SECOND))
    body = httpx.post(f"{base_url}/api/ask", json={"question": QUESTION, "top_k": 3}, timeout=60).json()
    assert body["answer_mode"] == "generated"
    assert body["answer"]["text"] == FAITHFUL.replace("[1]。", "。[1]") + SECOND.replace("[1]。", "。[1]")
    assert [d["reason"] for d in body["dropped"]] == ["unsupported_number"]
    assert "first_sentence" not in body["timings_ms"]


def test_a_sentence_is_complete_once_the_next_has_begun() -> None:
    assert complete_sentences("盒马提供了45万件[1]。") == []  # it may go on: "[2]" could follow
    (s,) = complete_sentences("盒马提供了45万件。[1][2] 2021年")
    assert (s.text, s.citations) == ("盒马提供了45万件。", (1, 2))
    assert complete_sentences("Hema gave 450,000 items [1]. It") == complete_sentences(
        "Hema gave 450,000 items [1]. It rained [2]"
    )
    assert [s.text for s in complete_sentences("One [1]. Two [2]. Thr")] == ["One.", "Two."]

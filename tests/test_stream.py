"""The streaming answer (POST /api/ask/stream) and the chat page's routes, through the real app."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from service.schemas import AnswerOut, AnswerSentenceOut, AskResponse
from service.web import answer_deltas, answer_events, chunks

QUESTIONS = [
    "盒马提供了多少件生活日用品？",
    "How many items did Hema give away?",
    "What is the capital of Australia?",
]


def parse_sse(body: str) -> list[tuple[str, Any]]:
    events = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def without_timings(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "timings_ms"}


@pytest.mark.parametrize("question", QUESTIONS)
def test_stream_sends_passages_then_deltas_then_the_ask_response(client: TestClient, question: str) -> None:
    r = client.post("/api/ask/stream", json={"question": question, "top_k": 4})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    events = parse_sse(r.text)
    names = [name for name, _ in events]
    assert names[0] == "passages" and names[-1] == "done"
    assert set(names[1:-1]) == {"delta"}
    done = events[-1][1]

    # The done payload is exactly what /api/ask answers (timings aside, which differ per run).
    plain = client.post("/api/ask", json={"question": question, "top_k": 4}).json()
    assert without_timings(done) == without_timings(plain)
    assert set(done["timings_ms"]) == set(plain["timings_ms"])

    assert events[0][1] == {"passages": done["passages"]}
    assert all(isinstance(p["similarity"], float) for p in done["passages"])
    assert "".join(data["text"] for name, data in events if name == "delta") == done["answer"]["text"]


def test_stream_deltas_follow_the_answer_sentences(client: TestClient) -> None:
    events = parse_sse(client.post("/api/ask/stream", json={"question": QUESTIONS[0]}).text)
    done = events[-1][1]
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert not done["abstained"]
    # Every answer sentence starts a delta: the page can show the answer sentence by sentence.
    starts = {d[:8] for d in deltas}
    assert all(s["text"][:8] in starts for s in done["answer"]["sentences"])
    assert any("45万件" in d for d in deltas)


@pytest.mark.parametrize(
    ("body", "status", "error", "detail"),
    [
        ({"question": ""}, 422, "empty_question", "the question is empty"),
        ({"question": "  \n "}, 422, "empty_question", "the question is empty"),
        ({"question": "？？？"}, 422, "question_without_words", "only punctuation or symbols"),
        ({"question": "问" * 1001}, 422, "question_too_long", "the limit is 1000"),
        ({"question": "盒马", "top_k": 0}, 422, "invalid_request", "top_k"),
        ({}, 422, "invalid_request", "question"),
    ],
)
def test_bad_questions_get_a_json_error_not_a_stream(
    client: TestClient, body: dict[str, Any], status: int, error: str, detail: str
) -> None:
    r = client.post("/api/ask/stream", json=body)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"] == error
    assert detail in r.json()["detail"]


def test_stream_wants_a_json_body(client: TestClient) -> None:
    r = client.post("/api/ask/stream", content="question=盒马", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert r.json() == {
        "error": "unsupported_media_type",
        "detail": "send the body as application/json (got 'text/plain')",
    }


def test_chat_page_and_its_static_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'href="/static/style.css"' in page.text
    for script in ("app.js", "documents.js"):
        assert f'<script type="module" src="/static/{script}">' in page.text
    for script in ("app.js", "documents.js", "dom.js"):  # modules need a JavaScript content type
        js = client.get(f"/static/{script}")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/missing.js").status_code == 404
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and "/api/ask/stream" in paths


# ---- the pure pieces --------------------------------------------------------------------------


def response_with(sentences: list[str], text: str | None = None) -> AskResponse:
    out = [AnswerSentenceOut(text=s, citations=[1]) for s in sentences]
    return AskResponse(
        answer=AnswerOut(
            text=text if text is not None else "".join(s + "[1]" for s in sentences), sentences=out
        ),
        passages=[],
        grounded=True,
        abstained=False,
        timings_ms={},
    )


def test_chunks_join_back_and_prefer_soft_breaks() -> None:
    text = (
        "阿里1688平台和淘特联合上线防汛物资直供专区，"
        "紧急调度山东临沂编织袋产业带和青岛皮划艇产业带等9500家工厂库存直供河南"
    )
    pieces = chunks(text, 24)
    assert "".join(pieces) == text
    assert len(pieces) > 1 and all(len(p) <= 24 for p in pieces)
    assert pieces[0].endswith("，")  # cut after the comma, not mid-phrase
    assert chunks("short", 20) == ["short"]
    assert chunks("", 20) == []


def test_answer_deltas_split_per_sentence_and_keep_markers() -> None:
    response = response_with(["第一句。", "第二句很长，" * 10 + "。"])
    deltas = answer_deltas(response, size=24)
    assert "".join(deltas) == response.answer.text
    assert deltas[0] == "第一句。[1]"
    assert len(deltas) > 2  # the long second sentence comes in several chunks


def test_answer_deltas_fall_back_to_chunks_when_a_sentence_is_not_in_the_text() -> None:
    response = response_with(["not there"], text="I could not find enough evidence. " * 3)
    deltas = answer_deltas(response, size=40)
    assert "".join(deltas) == response.answer.text and len(deltas) >= 2


class BrokenResponse(AskResponse):
    """A response that fails to serialise half-way, as a stand-in for a mid-stream failure."""

    def model_dump(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("boom")


def test_a_failure_mid_stream_ends_with_an_error_event() -> None:
    response = BrokenResponse(**response_with(["第一句。"]).__dict__)
    app = FastAPI()

    @app.get("/broken")
    async def broken() -> StreamingResponse:
        return StreamingResponse(answer_events(response), media_type="text/event-stream")

    with TestClient(app) as client:
        r = client.get("/broken")
    assert r.status_code == 200  # the status line had gone out: the failure is reported in-band
    events = parse_sse(r.text)
    assert [name for name, _ in events] == ["passages", "delta", "error"]
    assert events[-1][1] == {
        "error": "internal_error",
        "detail": "the answer stream failed; see the server log",
    }

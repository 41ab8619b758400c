"""Request hardening through the real app: body limits, hostile JSON, Unicode edge cases, the API key,
and index reload / freshness. The model is irrelevant to most of these, so a module-scoped pipeline
over the seed corpus uses the HashingEncoder; the Unicode cases also run through the real model."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from index.ingest import update_index
from index.store import SEGMENTS, read_manifest
from service.app import create_app
from service.pipeline import Pipeline
from service.security import MAX_JSON_DEPTH, json_depth_exceeds
from service.settings import Settings
from tests.conftest import NEW_ARTICLE, SEED_DOCS, make_settings
from tests.fakes import HashingEncoder

KEY = "test-key-0123456789"
JSON = {"content-type": "application/json"}
ROUTES = ["/api/ask", "/api/retrieve"]


@pytest.fixture(scope="module")
def hashing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Pipeline]:
    settings = make_settings(tmp_path_factory.mktemp("hardening"))
    return settings, Pipeline.load(settings, encoder=HashingEncoder())


def client_for(settings: Settings, pipeline: Pipeline) -> TestClient:
    return TestClient(create_app(settings, pipeline), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def plain(hashing: tuple[Settings, Pipeline]) -> Iterator[TestClient]:
    with client_for(*hashing) as c:
        yield c


@pytest.fixture(scope="module")
def keyed(hashing: tuple[Settings, Pipeline]) -> Iterator[TestClient]:
    settings, pipeline = hashing
    with client_for(settings.model_copy(update={"api_key": KEY}), pipeline) as c:
        yield c


# --- body size ------------------------------------------------------------------------------------


def test_a_declared_oversized_body_is_refused_before_parsing(plain: TestClient) -> None:
    body = json.dumps({"question": "盒" * 40_000}).encode()
    r = plain.post("/api/ask", content=body, headers=JSON)
    assert r.status_code == 413
    assert r.json() == {
        "error": "body_too_large",
        "detail": f"the request body is {len(body)} bytes; the limit is 65536 (CITEQA_MAX_BODY_BYTES)",
    }


def test_a_chunked_body_without_content_length_is_counted(plain: TestClient) -> None:
    sent = []

    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            sent.append(1)
            yield b" " * 1024

    r = plain.post("/api/retrieve", content=chunks(), headers=JSON)
    assert r.request.headers.get("content-length") is None
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 413
    assert r.json() == {
        "error": "body_too_large",
        "detail": "the request body is more than 65536 bytes; the limit is 65536 (CITEQA_MAX_BODY_BYTES)",
    }


def test_a_chunked_body_under_the_limit_reaches_the_route(plain: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"question": '
        yield json.dumps("盒马提供了多少件生活日用品？").encode()
        yield b', "top_k": 2}'

    r = plain.post("/api/retrieve", content=chunks(), headers=JSON)
    assert r.status_code == 200
    assert len(r.json()["passages"]) == 2


def test_the_limit_is_a_setting(hashing: tuple[Settings, Pipeline]) -> None:
    settings, pipeline = hashing
    with client_for(settings.model_copy(update={"max_body_bytes": 1024}), pipeline) as c:
        r = c.post("/api/ask", json={"question": "盒马" * 300})
        assert r.status_code == 413
        assert "the limit is 1024 (CITEQA_MAX_BODY_BYTES)" in r.json()["detail"]
        r = c.post("/api/ask", json={"question": ""})
        assert r.status_code == 422 and r.json()["error"] == "empty_question"


def test_a_bad_content_length_is_a_400(plain: TestClient) -> None:
    r = plain.post("/api/ask", content=b"{}", headers={**JSON, "content-length": "lots"})
    assert r.status_code == 400
    assert r.json() == {"error": "bad_request", "detail": "the Content-Length header is not a number"}


# --- hostile JSON -----------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_100k_nested_lists_get_a_4xx(
    plain: TestClient, hashing: tuple[Settings, Pipeline], route: str
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    r = plain.post(route, content=deep, headers=JSON)
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"
    # With a limit big enough to let it through, the depth check answers, not a RecursionError.
    settings, pipeline = hashing
    with client_for(settings.model_copy(update={"max_body_bytes": 1 << 20}), pipeline) as c:
        for body in (deep, b'{"question": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"):
            r = c.post(route, content=body, headers=JSON)
            assert r.status_code == 400
            assert r.json() == {
                "error": "json_too_deep",
                "detail": f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels; "
                "send a flat request object",
            }


def test_brackets_inside_strings_do_not_count_as_nesting(plain: TestClient) -> None:
    assert not json_depth_exceeds(json.dumps({"question": "[" * 100 + '\\"{' * 100}).encode())
    assert json_depth_exceeds(b"[" * (MAX_JSON_DEPTH + 1))
    r = plain.post("/api/retrieve", json={"question": "盒马[[[[" * 50})
    assert r.status_code == 200


def test_moderately_nested_values_get_a_validation_error(plain: TestClient) -> None:
    r = plain.post("/api/ask", json={"question": [[[["盒马"]]]]})
    assert r.status_code == 422
    assert r.json() == {"error": "invalid_request", "detail": "question: Input should be a valid string"}


# --- Unicode, through the real model ----------------------------------------------------------------

ACCEPTED = [
    "盒马提供了多少件生活日用品？😀🎉",
    "盒马\u200b提供\u200d了多少件\ufeff生活日用品？",
    "How many 生活日用品 did Hema (盒马) give? Сколько? كم؟",
    "盒马\x00\x07\x1b[31m提供了多少件生活日用品？",
    "e\u0301\u0301\u0301 👨‍👩‍👧‍👦 🇨🇳",
    "\U0010ffff\ue000 盒马",
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("question", ACCEPTED)
def test_unicode_edge_cases_are_answered(client: TestClient, route: str, question: str) -> None:
    r = client.post(route, json={"question": question})
    assert r.status_code == 200, r.text
    assert r.json()["passages"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "raw", [rb'"\udfff\u76d2\u9a6c"', rb'"\u76d2\u9a6c\ud83d"', rb'"\ud83d\ude00 \u76d2\u9a6c"']
)
def test_lone_surrogates_sent_as_json_escapes_are_answered(
    client: TestClient, route: str, raw: bytes
) -> None:
    r = client.post(route, content=b'{"question": ' + raw + b"}", headers=JSON)
    assert r.status_code == 200, r.text
    assert r.json()["passages"]


@pytest.mark.parametrize("route", ROUTES)
def test_a_lone_surrogate_alone_has_no_words(client: TestClient, route: str) -> None:
    """It reads as U+FFFD, a symbol: a question of no letter or digit (as "???" is)."""
    r = client.post(route, content=b'{"question": "\\ud800"}', headers=JSON)
    assert r.status_code == 422
    assert r.json()["error"] == "question_without_words"


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "question", ["\u200b", "\u200b\u200c\u200d\u2060\ufeff", "\x00\x01\x7f", "\u3000\xa0\t\u2028"]
)
def test_invisible_only_questions_are_empty(client: TestClient, route: str, question: str) -> None:
    r = client.post(route, json={"question": question})
    assert r.status_code == 422
    assert r.json() == {
        "error": "empty_question",
        "detail": "the question is empty; send a question in Chinese or English",
    }


# --- API key ------------------------------------------------------------------------------------------

UNAUTHORIZED = {
    "error": "unauthorized",
    "detail": "this server needs an API key: send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`",
}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/ask"),
        ("post", "/api/retrieve"),
        ("post", "/api/ask/stream"),
        ("get", "/api/documents"),
        ("post", "/api/admin/reload"),
        ("get", "/openapi.json"),
        ("get", "/docs"),
        ("get", "/api/nothing"),
    ],
)
def test_with_a_key_protected_routes_need_it(keyed: TestClient, method: str, path: str) -> None:
    kwargs = {"json": {"question": "盒马"}} if method == "post" else {}
    r = keyed.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert r.status_code == 401
    assert r.json() == UNAUTHORIZED
    assert r.headers["www-authenticate"] == "Bearer"
    for headers in ({"X-API-Key": "wrong-key-0123456789"}, {"Authorization": "Bearer nope"}):
        r = keyed.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        assert r.status_code == 401
        assert r.json() == {"error": "unauthorized", "detail": "the API key is not valid"}


@pytest.mark.parametrize(
    "headers", [{"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"}, {"authorization": f"bearer  {KEY}"}]
)
def test_with_a_key_the_right_key_opens_the_api(keyed: TestClient, headers: dict[str, str]) -> None:
    r = keyed.post("/api/retrieve", json={"question": "盒马", "top_k": 1}, headers=headers)
    assert r.status_code == 200 and len(r.json()["passages"]) == 1
    assert keyed.get("/api/documents", headers=headers).status_code == 200
    assert keyed.post("/api/admin/reload", headers=headers).json()["status"] == "reloaded"
    r = keyed.post("/api/ask", json={"question": ""}, headers=headers)  # errors pass through as usual
    assert r.status_code == 422 and r.json()["error"] == "empty_question"


@pytest.mark.parametrize("path", ["/healthz", "/", "/static/app.js", "/static/style.css"])
def test_with_a_key_health_and_the_page_stay_public(keyed: TestClient, path: str) -> None:
    assert keyed.get(path).status_code == 200


def test_the_key_check_runs_before_the_body_is_read(keyed: TestClient) -> None:
    r = keyed.post("/api/ask", content=b"x" * 100_000, headers=JSON)
    assert r.status_code == 401 and r.json() == UNAUTHORIZED


def test_without_a_key_everything_is_open(plain: TestClient) -> None:
    assert plain.get("/api/documents").status_code == 200
    assert plain.post("/api/retrieve", json={"question": "盒马"}).status_code == 200
    assert plain.get("/openapi.json").status_code == 200


def test_the_key_is_read_from_the_environment_and_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITEQA_API_KEY", KEY)
    settings = Settings()
    assert settings.api_key == KEY
    assert KEY not in repr(settings)
    monkeypatch.setenv("CITEQA_API_KEY", "short")
    with pytest.raises(ValidationError, match="api_key\n  String should have at least 8 characters"):
        Settings()
    monkeypatch.setenv("CITEQA_API_KEY", " padded-key-123 ")
    with pytest.raises(ValidationError, match="CITEQA_API_KEY must not start or end with whitespace"):
        Settings()
    monkeypatch.delenv("CITEQA_API_KEY")
    monkeypatch.setenv("CITEQA_MAX_BODY_BYTES", "10")
    with pytest.raises(
        ValidationError, match="max_body_bytes\n  Input should be greater than or equal to 1024"
    ):
        Settings()


# --- reload and freshness --------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> tuple[Settings, HashingEncoder]:
    docs = tmp_path / "documents"
    shutil.copytree(SEED_DOCS, docs)
    settings = make_settings(tmp_path, documents_dir=docs)
    return settings, HashingEncoder()


def test_reload_serves_a_rebuilt_index_and_health_reports_freshness(
    local: tuple[Settings, HashingEncoder],
) -> None:
    settings, encoder = local
    pipeline = Pipeline.load(settings, encoder=encoder)
    app = create_app(settings, pipeline)
    with TestClient(app) as c:
        assert c.get("/healthz").json()["index_fresh"] is True
        (settings.documents_dir / "zz_new.txt").write_text(NEW_ARTICLE, encoding="utf-8")
        health = c.get("/healthz").json()
        assert health["index_fresh"] is False and health["passages"] == 17
        update_index(
            settings.documents_dir,
            settings.resolved_index_dir,
            encoder,
            max_tokens=settings.max_passage_tokens,
        )
        assert c.get("/healthz").json()["passages"] == 17  # nothing changes until the reload
        r = c.post("/api/admin/reload")
        assert r.status_code == 200
        assert r.json() == {
            "status": "reloaded",
            "passages": 19,
            "model": "test/hashing",
            "index_fresh": True,
        }
        assert c.get("/healthz").json()["status"] == "ok"
        assert app.state.pipeline is not pipeline
        assert app.state.pipeline.retriever.encoder is encoder  # the model is reused, not reloaded
        assert c.get("/healthz").json()["index_fresh"] is True
        ids = [
            p["id"]
            for p in c.post("/api/retrieve", json={"question": "lighthouse keeper ships"}).json()["passages"]
        ]
        assert "zz_new:1" in ids
        # Editing a file in place (same name) is noticed too.
        edited = NEW_ARTICLE.replace("312", "313")
        (settings.documents_dir / "zz_new.txt").write_text(edited, encoding="utf-8")
        assert c.get("/healthz").json()["index_fresh"] is False


def test_a_failed_reload_is_a_503_and_keeps_serving_the_old_index(
    local: tuple[Settings, HashingEncoder],
) -> None:
    settings, encoder = local
    pipeline = Pipeline.load(settings, encoder=encoder)
    app = create_app(settings, pipeline)
    (segment,) = read_manifest(settings.resolved_index_dir).segments
    vectors = settings.resolved_index_dir / SEGMENTS / segment.name / "passages.npy"
    with TestClient(app) as c:
        vectors.write_bytes(vectors.read_bytes()[:100])
        r = c.post("/api/admin/reload")
        assert r.status_code == 503
        assert r.json() == {
            "error": "index_corrupt",
            "detail": f"{vectors} does not match its checksum in the manifest (truncated or modified); "
            "run `citeqa build` to repair the index",
        }
        assert app.state.pipeline is pipeline
        r = c.post("/api/retrieve", json={"question": "盒马提供了多少件生活日用品？"})
        assert r.status_code == 200 and r.json()["passages"]
        shutil.rmtree(settings.resolved_index_dir)
        r = c.post("/api/admin/reload")
        assert r.status_code == 503
        assert r.json()["error"] == "index_missing"
        assert "run `citeqa build` to create it" in r.json()["detail"]
        assert c.get("/healthz").json()["passages"] == 17


def test_health_is_not_fresh_when_the_documents_folder_is_gone(
    local: tuple[Settings, HashingEncoder],
) -> None:
    settings, encoder = local
    with TestClient(create_app(settings, Pipeline.load(settings, encoder=encoder))) as c:
        shutil.rmtree(settings.documents_dir)
        health = c.get("/healthz").json()
        assert health["index_fresh"] is False and health["status"] == "degraded"
        assert health["reason"].startswith("the index does not match the documents folder: ")
        assert "does not exist" in health["reason"]

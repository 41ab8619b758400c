"""Property-based fuzzing of every documented operation with schemathesis, against the app's own OpenAPI.

In process (ASGI transport), over the session pipeline (the real model and index). Each operation gets a
bounded, derandomized run; a response must never be a 5xx and must conform to the documented schema.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from service.app import create_app
from service.pipeline import Pipeline
from service.settings import Settings
from tests.conftest import SEED_DOCS, make_settings

# The operations, read at collection time from an app with no pipeline (its routes only; nothing loads).
# Reloading would swap the shared session pipeline, so that one is left to tests/test_hardening.py.
SPEC = create_app(make_settings(Path("unused"))).openapi()
OPERATIONS = [
    (method.upper(), path)
    for path, ops in SPEC["paths"].items()
    for method in ops
    if path != "/api/admin/reload"
]
# Negative (schema-invalid) cases exist only where there is input to break: the request bodies.
CASES = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode.value}")
    for method, path in OPERATIONS
    for mode in schemathesis.GenerationMode
    if mode is schemathesis.GenerationMode.POSITIVE or "requestBody" in SPEC["paths"][path][method.lower()]
]


@pytest.fixture(scope="module")
def api_schema(
    tmp_path_factory: pytest.TempPathFactory, seed_settings: Settings, pipeline: Pipeline
) -> schemathesis.BaseSchema:
    """The app over copies of the seed folder and index: the write routes are fuzzed too, and must never
    touch the repository's documents/ or the session index."""
    tmp = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(SEED_DOCS, tmp / "documents")
    shutil.copytree(seed_settings.resolved_index_dir, tmp / "index")
    settings = make_settings(tmp, documents_dir=tmp / "documents", index_dir=tmp / "index")
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(settings, pipeline))


def test_every_route_is_fuzzed() -> None:
    assert {("POST", "/api/ask"), ("POST", "/api/retrieve"), ("GET", "/healthz")} <= set(OPERATIONS)


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_no_5xx_and_responses_match_the_schema(
    api_schema: schemathesis.BaseSchema, method: str, path: str, mode: schemathesis.GenerationMode
) -> None:
    """Positive cases (schema-valid requests) and negative ones (schema-invalid: wrong types, missing
    fields, extra fields)."""
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=30,
        derandomize=True,  # the same examples on every run
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        # A schema-valid question may still be empty in meaning (only spaces or zero-width characters),
        # have no words (only punctuation or symbols) or be longer than CITEQA_MAX_QUESTION_CHARS: a
        # documented 422 that JSON Schema cannot express, so "valid data must be accepted" does not apply.
        # Every other check (no 5xx, status code, content type, headers and body conform to the schema)
        # does.
        response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
        assert response.status_code < 500, response.text

    check()

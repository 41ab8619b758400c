"""The FastAPI application: routes, error mapping, start-up loading (lifespan)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from index.errors import (
    CiteQAError,
    DocumentError,
    DocumentExistsError,
    DocumentNotFoundError,
    EmptyCorpusError,
    EmptyQuestionError,
    FileTooLargeError,
    GenerationUnavailableError,
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
    InvalidDocumentNameError,
    ModelError,
    PathConflictError,
    QuestionTooLongError,
    StoreUnavailableError,
    UnreadableDocumentError,
    UnsupportedFileTypeError,
    WordlessQuestionError,
)
from service import web
from service.collection import Collection, install_collection
from service.deps import PipelineDep, require_json
from service.pipeline import Pipeline
from service.reload import Freshness, install_reload
from service.schemas import (
    AskRequest,
    AskResponse,
    ErrorResponse,
    HealthResponse,
    RetrieveRequest,
    RetrieveResponse,
)
from service.security import install_security
from service.settings import Settings, get_settings
from service.views import ask_response, retrieve_response

log = logging.getLogger("citeqa")

ERROR_STATUS: dict[type[CiteQAError], tuple[int, str]] = {
    EmptyQuestionError: (422, "empty_question"),
    WordlessQuestionError: (422, "question_without_words"),
    QuestionTooLongError: (422, "question_too_long"),
    GenerationUnavailableError: (422, "llm_not_configured"),
    IndexMissingError: (503, "index_missing"),
    IndexMismatchError: (503, "index_mismatch"),
    IndexCorruptError: (503, "index_corrupt"),
    EmptyCorpusError: (503, "empty_corpus"),
    ModelError: (503, "model_unavailable"),
    StoreUnavailableError: (503, "store_unavailable"),
    InvalidDocumentNameError: (422, "invalid_name"),
    UnreadableDocumentError: (422, "unreadable_document"),
    UnsupportedFileTypeError: (415, "unsupported_type"),
    DocumentExistsError: (409, "duplicate_document"),
    PathConflictError: (409, "path_conflict"),
    DocumentNotFoundError: (404, "document_not_found"),
    FileTooLargeError: (413, "file_too_large"),
    DocumentError: (503, "document_error"),
}
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (400, 415, 422)}


def error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": code, "detail": detail})


def _describe_validation(exc: RequestValidationError) -> tuple[int, str, str]:
    problems = []
    for e in exc.errors():
        if e.get("type") == "json_invalid":
            return (
                400,
                "malformed_json",
                f"the request body is not valid JSON ({e.get('ctx', {}).get('error', e['msg'])})",
            )
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        problems.append(f"{loc}: {e['msg']}")
    return 422, "invalid_request", "; ".join(problems)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CiteQAError)
    async def _domain(request: Request, exc: CiteQAError) -> JSONResponse:
        status, code = next(
            (v for t, v in ERROR_STATUS.items() if isinstance(exc, t)), (500, "internal_error")
        )
        return error(status, code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(*_describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {
            400: "bad_request",
            404: "not_found",
            405: "method_not_allowed",
            413: "body_too_large",
            415: "unsupported_media_type",
        }
        return error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error(500, "internal_error", "an unexpected error occurred; see the server log")


def load_for_serving(settings: Settings) -> Pipeline:
    """The pipeline a server starts with: a missing index is built first (with progress in the log); a
    stale one is served as it is while a background job brings it up to date (``Collection.start``)."""
    from index.ingest import index_status
    from service.pipeline import encoder_for, store_for
    from service.progress import ProgressReporter

    encoder = encoder_for(settings)
    store = store_for(settings)
    state = index_status(
        settings.documents_dir,
        store,
        fingerprint=encoder.fingerprint,
        max_tokens=settings.max_passage_tokens,
        verify=False,
    ).state
    build = state == "missing"
    if build:
        log.info("no index at %s yet: building it from %s", store.location, settings.documents_dir)
    elif state == "stale" and store.read_manifest().model_fingerprint != encoder.fingerprint:
        # Vectors of another model or backend cannot answer this encoder's queries: re-embed first.
        build = True
        log.info(
            "the index at %s holds vectors of another model or encoder backend: re-embedding it for %s (%s)",
            store.location,
            encoder.name,
            encoder.backend,
        )
    return Pipeline.load(settings, encoder=encoder, build=build, progress=ProgressReporter(bars=False))


def create_app(settings: Settings | None = None, pipeline: Pipeline | None = None) -> FastAPI:
    """The app. With no ``pipeline``, the model and index load once at start-up (lifespan)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = getattr(app.state, "pipeline", None) is None
        if owned:
            app.state.pipeline = await run_in_threadpool(load_for_serving, settings)
        collection: Collection = app.state.collection
        await run_in_threadpool(collection.start)
        yield
        await run_in_threadpool(collection.close)
        # Stop the micro-batching worker after the last request. A pipeline passed in belongs to the
        # caller (tests share one across apps), who closes it; reloads share this same encoder.
        if owned:
            await run_in_threadpool(app.state.pipeline.close)

    app = FastAPI(
        title="CiteQA",
        version="0.1.0",
        summary="Cited, grounded answers from your documents, in Chinese or English.",
        lifespan=lifespan,
        docs_url=None,  # served from local assets by web.mount_static
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.pipeline = pipeline
    install_error_handlers(app)
    install_security(app, settings)
    json_body = [Depends(require_json)]

    @app.post("/api/retrieve", response_model=RetrieveResponse, responses=ERRORS, dependencies=json_body)
    async def retrieve(body: RetrieveRequest, pipeline: PipelineDep) -> RetrieveResponse:
        """The passages that best match the question, ranked, with the best-matching sentences marked."""
        result = await run_in_threadpool(pipeline.retrieve, body.question, body.top_k)
        return retrieve_response(result)

    @app.post("/api/ask", response_model=AskResponse, responses=ERRORS, dependencies=json_body)
    async def ask(body: AskRequest, pipeline: PipelineDep) -> AskResponse:
        """A grounded answer whose sentences cite the returned passages as [n], or an abstention."""
        result = await run_in_threadpool(
            pipeline.ask, body.question, body.top_k, answer_mode=body.answer_mode
        )
        return ask_response(result)

    @app.get("/healthz", response_model=HealthResponse)
    async def healthz(request: Request, pipeline: PipelineDep) -> HealthResponse:
        freshness: Freshness = request.app.state.freshness
        collection: Collection = request.app.state.collection
        stale = await run_in_threadpool(freshness.reason, pipeline)
        failed = collection.jobs.last_failure
        reasons = []
        if stale:
            working = " (a job is updating it)" if collection.jobs.busy else ""
            reasons.append(f"the index does not match the documents folder{working}: {stale}")
        if failed is not None:
            reasons.append(f"job {failed.id} failed: {failed.error}")
        if collection.store_error is not None:
            generation = pipeline.retriever.saved.manifest.generation
            reasons.append(f"{collection.store_error}; answering from generation {generation} held in memory")
        manifest = pipeline.retriever.saved.manifest
        return HealthResponse(
            status="degraded" if reasons else "ok",
            reason="; ".join(reasons) or None,
            index_loaded=True,
            passages=len(pipeline.retriever.saved.passages),
            documents=len(manifest.documents),
            generation=manifest.generation,
            model=pipeline.model_name,
            index_fresh=not stale,
            jobs=sum(1 for j in collection.jobs.jobs() if j.status in ("queued", "running")),
            answer_modes=["generated", "extractive"] if pipeline.generator is not None else ["extractive"],
        )

    install_reload(app, settings)
    install_collection(app, settings)
    app.include_router(web.router)
    web.mount_static(app)
    return app

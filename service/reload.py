"""Switch the served index atomically, and tell whether it still matches the documents folder.

``reload_pipeline`` builds nothing: it loads the index now on disk (a job or ``citeqa build`` committed it)
into a new ``Pipeline`` that shares the loaded encoder, then swaps ``app.state.pipeline`` in one attribute
store. A request already running keeps the object it started with; a failed load (missing, corrupt or
mismatched index) raises the loader's domain error, which the app maps to 503, and the old index stays in
service. ``POST /api/admin/reload`` exposes it.
"""

from __future__ import annotations

import threading

from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from index.ingest import folder_signature, stale_reason
from service.deps import SettingsDep
from service.pipeline import Pipeline
from service.schemas import ErrorResponse, ReloadResponse
from service.settings import Settings


class Freshness:
    """Why the served index differs from the folder ("" when it does not). The answer is cached per served
    index and folder signature (every file's path, size and mtime): a check costs one stat per file, and
    files are hashed only when their size or mtime moved."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._cached: tuple[int, object, str] | None = None  # (id of the pipeline, signature, reason)

    def reason(self, pipeline: Pipeline) -> str:
        signature = folder_signature(self.settings.documents_dir)
        key = id(pipeline)
        with self._lock:
            if self._cached and self._cached[:2] == (key, signature):
                return self._cached[2]
        why = stale_reason(
            pipeline.retriever.saved.manifest,
            self.settings.documents_dir,
            pipeline.retriever.encoder.fingerprint,
            self.settings.max_passage_tokens,
        )
        with self._lock:
            self._cached = (key, signature, why)
        return why

    def is_fresh(self, pipeline: Pipeline) -> bool:
        return not self.reason(pipeline)


_swap_lock = threading.Lock()  # one reload at a time, across apps in this process


def reload_pipeline(app: FastAPI, settings: Settings) -> Pipeline:
    """Load the index on disk with the current encoder and swap it in; raise (and keep the old) on failure."""
    with _swap_lock:
        current: Pipeline = app.state.pipeline
        fresh = Pipeline.load(settings, encoder=current.retriever.encoder, build=False)
        app.state.pipeline = fresh  # one attribute store: in-flight requests hold the old object
        return fresh


router = APIRouter()


@router.post(
    "/api/admin/reload",
    response_model=ReloadResponse,
    responses={code: {"model": ErrorResponse} for code in (401, 503)},
)
async def reload_index(request: Request, settings: SettingsDep) -> ReloadResponse:
    """Serve the index now on disk (after `citeqa build`) without a restart; 503 keeps the old one."""
    pipeline = await run_in_threadpool(reload_pipeline, request.app, settings)
    freshness: Freshness = request.app.state.freshness
    return ReloadResponse(
        status="reloaded",
        passages=len(pipeline.retriever.saved.passages),
        model=pipeline.model_name,
        index_fresh=await run_in_threadpool(freshness.is_fresh, pipeline),
    )


def install_reload(app: FastAPI, settings: Settings) -> None:
    app.state.freshness = Freshness(settings)
    app.include_router(router)

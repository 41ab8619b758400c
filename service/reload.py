"""Serve a rebuilt index without a restart, and tell whether the served index still matches the corpus.

``POST /api/admin/reload`` builds nothing: it loads the index now on disk (``citeqa build`` writes it)
into a new ``Pipeline`` that shares the loaded encoder, then swaps ``app.state.pipeline``. A request
already running keeps the object it started with; a failed load (missing, corrupt or mismatched index)
raises the loader's domain error, which the app maps to 503, and the old index stays in service.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from index.build import chunking_params
from index.documents import corpus_hash, document_files
from index.errors import CiteQAError
from service.deps import PipelineDep, SettingsDep
from service.pipeline import Pipeline
from service.schemas import ErrorResponse, ReloadResponse
from service.settings import Settings

Signature = tuple[tuple[str, int, int], ...]


class CorpusWatch:
    """The corpus hash of a documents folder, recomputed only when a file's mtime or size changes."""

    def __init__(self, documents_dir: Path) -> None:
        self.root = Path(documents_dir)
        self._lock = threading.Lock()
        self._cached: tuple[Signature, str] | None = None

    def current_hash(self) -> str | None:
        """The hash ``citeqa build`` would record now, or None when the folder cannot be read."""
        try:
            files = document_files(self.root)
            signature = tuple(
                (str(p.relative_to(self.root)), st.st_mtime_ns, st.st_size)
                for p in files
                for st in (os.stat(p),)
            )
            with self._lock:
                if self._cached is not None and self._cached[0] == signature:
                    return self._cached[1]
            digest = corpus_hash(files, self.root)
        except (CiteQAError, OSError):  # folder gone, or a file removed while we looked
            return None
        with self._lock:
            self._cached = (signature, digest)
        return digest

    def is_fresh(self, pipeline: Pipeline) -> bool:
        manifest = pipeline.retriever.saved.manifest
        return (
            manifest.chunking == chunking_params(pipeline.settings.max_passage_tokens)
            and manifest.corpus_hash == self.current_hash()
        )


def index_fresh(request: Request, pipeline: PipelineDep) -> bool:
    watch: CorpusWatch = request.app.state.corpus_watch
    return watch.is_fresh(pipeline)


IndexFreshDep = Annotated[bool, Depends(index_fresh)]
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
    watch: CorpusWatch = request.app.state.corpus_watch
    return ReloadResponse(
        status="reloaded",
        passages=pipeline.retriever.saved.store.size,
        model=pipeline.model_name,
        index_fresh=await run_in_threadpool(watch.is_fresh, pipeline),
    )


def install_reload(app: FastAPI, settings: Settings) -> None:
    app.state.corpus_watch = CorpusWatch(settings.documents_dir)
    app.include_router(router)

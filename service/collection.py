"""The collection through the service: list, upload, replace and delete documents; follow their jobs.

    GET    /api/documents                   every document (indexed, skipped with its reason, pending)
    POST   /api/documents                   multipart ``files`` (one or more), optional ``document_id``
    PUT    /api/documents/{document_id}     multipart ``files`` (exactly one): replace (or create) it
    DELETE /api/documents/{document_id}     remove its file and its passages
    GET    /api/jobs, /api/jobs/{id}        background jobs: status, progress, per-file results

A write is checked and stored in the documents folder before the response (``index.folder``: a bad name is
422, a duplicate id or a file or folder in the way 409, an unsupported type 415, a file or request over the
limits 413, an unreadable file 422 with the reader's reason; nothing is stored then), and answered
``202 {"job": ...}``: the indexing runs in the background (``service.jobs``) while queries keep being
answered from the current index, which is swapped for the new one when the job commits. An accepted file
is on disk before the 202, so a restart during its job loses nothing: the next start indexes it. At
start-up and in the watcher, a served index that an update would change (the folder changed, or it was
chunked otherwise than the settings ask) is updated by a "sync" job.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from index.errors import CiteQAError, FileTooLargeError, StoreUnavailableError
from index.folder import remove_document, remove_stale_staging, store_files
from index.ingest import ProgressSink, UpdateReport, folder_signature, scan_folder, update_reason
from index.store import DocumentRecord, Manifest
from service.deps import PipelineDep, SettingsDep
from service.jobs import FileResult, Job, JobKind, JobManager
from service.pipeline import Pipeline, store_for, update
from service.reload import reload_pipeline
from service.schemas import (
    DocumentOut,
    DocumentsResponse,
    ErrorResponse,
    FileResultOut,
    JobOut,
    JobResponse,
    JobsResponse,
)
from service.settings import Settings

log = logging.getLogger("citeqa.collection")

router = APIRouter()
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 409, 413, 415, 422)
}


class Collection:
    """The app's side of the collection: runs updates as jobs and swaps the served index after each."""

    def __init__(self, app: FastAPI, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        # The last update failed (and the folder's signature then, None without a folder): the watcher
        # waits for the folder to change before it tries again.
        self._failed = False
        self._failed_signature: tuple[tuple[str, int, int], ...] | None = None
        self.store = store_for(settings)
        self.store_error: str | None = None  # why the store did not answer the last poll (None: it did)
        self.jobs = JobManager(
            self._update,
            self._committed,
            check=self._check,
            on_reload=self._reload,
            interval=watch_interval(settings),
        )

    @property
    def pipeline(self) -> Pipeline:
        pipeline: Pipeline = self.app.state.pipeline
        return pipeline

    def _update(self, progress: ProgressSink) -> UpdateReport:
        try:
            return update(self.settings, self.pipeline.retriever.encoder, progress=progress)
        except Exception:
            self._failed, self._failed_signature = True, self._signature()
            raise

    def _committed(self, report: UpdateReport) -> None:
        self._failed = False
        reload_pipeline(self.app, self.settings)

    def _reload(self) -> None:
        log.info("a newer index is in %s (committed by another process); loading it", self.store.location)
        reload_pipeline(self.app, self.settings)

    def _signature(self) -> tuple[tuple[str, int, int], ...] | None:
        return folder_signature(self.settings.documents_dir)

    def _outdated(self, served: Manifest) -> str:
        """Why a sync job would change the served index ("" when it would not): the folder changed, or it
        was chunked otherwise than the settings ask (another passage size, an older splitter)."""
        return update_reason(served, self.settings.documents_dir, self.settings.max_passage_tokens)

    def _check(self) -> Literal["sync", "reload"] | None:
        served = self.pipeline.retriever.saved.manifest
        try:
            newer = self._newer_index_on_disk(served)
        except StoreUnavailableError as exc:
            if self.store_error is None:
                log.warning("%s; serving generation %d from memory until it answers", exc, served.generation)
            self.store_error = str(exc)
            return None
        if self.store_error is not None:
            log.info("%s answers again", self.store.location)
            self.store_error = None
        if newer:
            return "reload"
        if self.settings.watch_interval == 0:
            return None  # only the store is polled (CITEQA_MILVUS_POLL), not the folder
        if not self._outdated(served):
            return None
        if self._failed and self._signature() == self._failed_signature:
            return None  # the last update of this very folder failed: wait for a change before retrying
        return "sync"

    def _newer_index_on_disk(self, served: Manifest) -> bool:
        """Another process committed a generation this server does not serve (on disk the manifest is
        parsed only when its mtime moved; in Milvus one row is read). Raises StoreUnavailableError."""
        committed = self.store.committed()
        if committed is None:
            return False
        generation, fingerprint = committed
        return generation != served.generation and fingerprint == served.model_fingerprint

    def require_store(self) -> None:
        """Raise StoreUnavailableError now rather than accept a write that no job could index."""
        self.store.committed()

    def start(self) -> None:
        remove_stale_staging(self.settings.documents_dir)  # left by uploads a crash interrupted
        self.jobs.start()
        why = self._outdated(self.pipeline.retriever.saved.manifest)
        if why:
            log.info("the index is out of date (%s): serving it while a job updates it", why)
            self.jobs.submit("sync")

    def close(self) -> None:
        self.jobs.close()


def watch_interval(settings: Settings) -> float:
    """The watcher's period: ``CITEQA_WATCH_INTERVAL``, or more often with Milvus (``CITEQA_MILVUS_POLL``),
    whose committed generation a replica must notice within a poll."""
    if settings.store != "milvus" or settings.milvus_poll == 0:
        return settings.watch_interval
    if settings.watch_interval == 0:
        return settings.milvus_poll
    return min(settings.watch_interval, settings.milvus_poll)


def get_collection(request: Request) -> Collection:
    collection: Collection = request.app.state.collection
    return collection


CollectionDep = Annotated[Collection, Depends(get_collection)]


def job_out(job: Job) -> JobOut:
    return JobOut(
        id=job.id,
        kind=job.kind,
        status=job.status,
        created=job.created,
        started=job.started,
        finished=job.finished,
        stage=job.stage,
        progress={"done": job.done, "total": job.total},
        rate=None if job.rate is None else round(job.rate, 2),
        eta_s=None if job.eta_s is None else round(job.eta_s, 1),
        error=job.error,
        generation=job.generation,
        files=[
            FileResultOut(
                path=f.path, document_id=f.document_id, status=f.status, reason=f.reason, passages=f.passages
            )
            for f in job.files
        ],
        summary={"added": job.added, "updated": job.updated, "removed": job.removed, "skipped": job.skipped},
    )


def accepted(job: Job) -> JSONResponse:
    return JSONResponse(
        status_code=202,
        content=JobResponse(job=job_out(job)).model_dump(mode="json"),
        headers={"Location": f"/api/jobs/{job.id}"},
    )


def require_multipart(request: Request) -> None:
    ctype = request.headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() != "multipart/form-data":
        raise HTTPException(
            415,
            "send the files as multipart/form-data in the field `files` "
            f"(got {ctype or 'no content type'!r})",
        )


async def _read_uploads(files: list[UploadFile], limit: int) -> list[tuple[str, bytes]]:
    out = []
    for f in files:
        name = f.filename or ""
        if f.size is not None and f.size > limit:
            raise FileTooLargeError(f"{name} is {f.size:,} bytes; the limit is {limit:,} per file")
        data = await f.read()
        if len(data) > limit:
            raise FileTooLargeError(f"{name} is {len(data):,} bytes; the limit is {limit:,} per file")
        out.append((name, data))
    return out


def _submit(collection: Collection, kind: JobKind, stored: list[tuple[str, str]]) -> Job:
    return collection.jobs.submit(kind, [FileResult(path=rel, document_id=doc_id) for rel, doc_id in stored])


@router.get("/api/documents", response_model=DocumentsResponse)
async def list_documents(pipeline: PipelineDep, settings: SettingsDep) -> DocumentsResponse:
    """Every document of the collection: indexed (with its passages), skipped (with the reason), or pending
    (in the folder but not yet in the served index)."""
    return await run_in_threadpool(
        documents_listing, pipeline.retriever.saved.manifest, settings.documents_dir
    )


def documents_listing(manifest: Manifest, root: Path) -> DocumentsResponse:
    """The documents of ``manifest`` and of the folder ``root``, each with its status."""
    indexed = {d.path: d for d in manifest.documents}
    skipped = {s.path: s for s in manifest.skipped}
    out: list[DocumentOut] = []
    try:
        files = scan_folder(root)
    except CiteQAError:
        files = []
    on_disk = set()
    for f in files:
        on_disk.add(f.rel)
        d = indexed.get(f.rel)
        s = skipped.get(f.rel)
        if d is not None and (d.size, d.mtime_ns) == (f.size, f.mtime_ns):
            out.append(record_out(d, "indexed"))
        elif s is not None and (s.size, s.mtime_ns) == (f.size, f.mtime_ns):
            out.append(
                DocumentOut(
                    id=s.document_id,
                    path=s.path,
                    title=Path(s.path).name,
                    status="skipped",
                    reason=s.reason,
                    size=s.size,
                )
            )
        elif d is not None:
            out.append(record_out(d, "pending"))
        else:
            out.append(
                DocumentOut(
                    id=f.document_id, path=f.rel, title=Path(f.rel).name, status="pending", size=f.size
                )
            )
    out.extend(record_out(d, "removing") for path, d in indexed.items() if path not in on_disk)
    counts = {
        status: sum(1 for d in out if d.status == status) for status in ("indexed", "skipped", "pending")
    }
    return DocumentsResponse(
        documents=out, generation=manifest.generation, passages=manifest.passages, counts=counts
    )


def record_out(d: DocumentRecord, status: str) -> DocumentOut:
    return DocumentOut(
        id=d.id,
        path=d.path,
        title=d.title,
        status=status,
        format=d.format,
        encoding=d.encoding,
        passages=d.passages,
        pages=d.pages,
        size=d.size,
        added=d.added,
        updated=d.updated,
        date=d.date,
        source_url=d.source_url,
    )


@router.post(
    "/api/documents",
    status_code=202,
    response_model=JobResponse,
    responses=WRITE_ERRORS,
    dependencies=[Depends(require_multipart)],
)
async def add_documents(
    collection: CollectionDep,
    settings: SettingsDep,
    files: Annotated[list[UploadFile], File(description="One or more files to add.")],
    document_id: Annotated[
        str | None, Form(description="The id for a single file (default: its name).")
    ] = None,
) -> JSONResponse:
    """Add files to the collection: stored at once, indexed by a background job (202 with the job)."""
    if document_id is not None and len(files) != 1:
        raise HTTPException(422, "`document_id` names one document: send exactly one file with it")
    return await _store_and_index(collection, settings, files, document_id, replace=False)


@router.put(
    "/api/documents/{document_id:path}",
    status_code=202,
    response_model=JobResponse,
    responses=WRITE_ERRORS,
    dependencies=[Depends(require_multipart)],
)
async def replace_document(
    document_id: str,
    collection: CollectionDep,
    settings: SettingsDep,
    files: Annotated[list[UploadFile], File(description="The new version (one file).")],
) -> JSONResponse:
    """Replace the document (or create it) with the uploaded file, whatever its format was before."""
    if len(files) != 1:
        raise HTTPException(422, f"send exactly one file to replace {document_id!r} (got {len(files)})")
    return await _store_and_index(collection, settings, files, document_id, replace=True)


async def _store_and_index(
    collection: Collection,
    settings: Settings,
    files: list[UploadFile],
    document_id: str | None,
    *,
    replace: bool,
) -> JSONResponse:
    """Read the uploads within the limits, store them all or none, and submit the job that indexes them."""
    uploads = await _read_uploads(files, settings.max_upload_bytes)
    await run_in_threadpool(collection.require_store)
    stored = await run_in_threadpool(
        store_files,
        settings.documents_dir,
        [(name, data, document_id) for name, data in uploads],
        replace=replace,
    )
    entries = [(s.rel, s.document_id) for s in stored]
    return accepted(_submit(collection, "replace" if replace else "upload", entries))


@router.delete(
    "/api/documents/{document_id:path}", status_code=202, response_model=JobResponse, responses=WRITE_ERRORS
)
async def delete_document(document_id: str, collection: CollectionDep, settings: SettingsDep) -> JSONResponse:
    """Remove the document's file; its passages leave the index when the job commits."""
    await run_in_threadpool(collection.require_store)
    removed = await run_in_threadpool(remove_document, settings.documents_dir, document_id)
    return accepted(_submit(collection, "delete", [(rel, document_id) for rel in removed]))


@router.get("/api/jobs", response_model=JobsResponse)
async def list_jobs(collection: CollectionDep) -> JobsResponse:
    """Recent jobs, oldest first."""
    return JobsResponse(jobs=[job_out(j) for j in collection.jobs.jobs()])


@router.get("/api/jobs/{job_id}", response_model=JobOut, responses={404: {"model": ErrorResponse}})
async def get_job(job_id: str, collection: CollectionDep) -> JobOut:
    job = collection.jobs.get(job_id)
    if job is None:
        raise HTTPException(
            404, f"no job {job_id!r} (jobs are kept in memory, the last 200, until a restart)"
        )
    return job_out(job)


def install_collection(app: FastAPI, settings: Settings) -> None:
    app.state.collection = Collection(app, settings)
    app.include_router(router)

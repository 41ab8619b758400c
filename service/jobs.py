"""Background work on the collection: index updates as jobs, run one at a time, and a folder watcher.

A job is an update of the index from the documents folder (``index.ingest``), started by an upload, a
replacement, a deletion, a change the watcher noticed, or the server's start on an out-of-date index. Jobs
run one after another on one worker thread (an update holds the index's writer lock anyway), report their
progress (texts embedded of the total, rate, ETA) while they run, and end ``done`` or ``failed``. When a
job commits, ``on_commit`` swaps the served pipeline to the new index in one step; until then every query is
answered from the previous index.

The watcher checks, every ``interval`` seconds while no job is queued or running, whether the served index
is out of date (a file added, changed or removed by hand, or chunking other than the settings ask: a "sync"
job is queued, but not again after a failed update until the folder changes) and whether another process
(``citeqa build``/``add``/``remove``) committed a newer index (it is loaded).
"""

from __future__ import annotations

import itertools
import logging
import queue
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

from index.ingest import Progress, ProgressSink, UpdateReport
from index.store import Manifest

log = logging.getLogger("citeqa.jobs")

JobStatus = Literal["queued", "running", "done", "failed"]
JobKind = Literal["upload", "replace", "delete", "sync"]
FileStatus = Literal["pending", "indexed", "skipped", "removed", "failed"]
KEEP_JOBS = 200


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class FileResult:
    """One file of a job: what was asked (``path`` relative to the folder) and what became of it."""

    path: str
    document_id: str
    status: FileStatus = "pending"
    reason: str | None = None
    passages: int | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """A snapshot of a job (jobs change on the worker thread; readers get copies)."""

    id: str
    kind: JobKind
    status: JobStatus
    created: str
    files: tuple[FileResult, ...] = ()
    started: str | None = None
    finished: str | None = None
    stage: str | None = None
    done: int = 0
    total: int = 0
    rate: float | None = None
    eta_s: float | None = None
    error: str | None = None
    generation: int | None = None
    added: int = 0
    updated: int = 0
    removed: int = 0
    skipped: int = 0


def file_results(files: Sequence[FileResult], manifest: Manifest, kind: JobKind) -> tuple[FileResult, ...]:
    """What became of each file of a job, read off the committed manifest."""
    documents = {d.path: d for d in manifest.documents}
    ids = {d.id for d in manifest.documents}
    skipped = {s.path: s for s in manifest.skipped}
    out = []
    for f in files:
        if kind == "delete":
            gone = f.document_id not in ids
            out.append(
                replace(f, status="removed" if gone else "failed", reason=None if gone else "still indexed")
            )
        elif f.path in documents:
            out.append(replace(f, status="indexed", passages=documents[f.path].passages, reason=None))
        elif f.path in skipped:
            out.append(replace(f, status="skipped", reason=skipped[f.path].reason))
        else:
            out.append(replace(f, status="failed", reason="the file is no longer in the documents folder"))
    return tuple(out)


@dataclass
class _Entry:
    job: Job
    lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, **changes: object) -> None:
        with self.lock:
            self.job = replace(self.job, **changes)  # type: ignore[arg-type]


class JobManager:
    """Queues jobs, runs them one at a time on a worker thread, and watches the folder.

    ``run(progress)`` performs an update and returns its report (the caller's ``update``); ``on_commit``
    receives the report after every successful update (the app swaps its pipeline there). ``check`` is the
    watcher's probe: it returns "sync" when an update would change the served index, "reload" when a newer
    index is on disk, or None.
    """

    def __init__(
        self,
        run: Callable[[ProgressSink], UpdateReport],
        on_commit: Callable[[UpdateReport], None],
        *,
        check: Callable[[], Literal["sync", "reload"] | None] | None = None,
        on_reload: Callable[[], None] | None = None,
        interval: float = 5.0,
    ) -> None:
        self._run = run
        self._on_commit = on_commit
        self._check = check
        self._on_reload = on_reload
        self.interval = interval
        self._jobs: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._pending = 0
        self._ids = itertools.count(1)
        self._stop = threading.Event()
        self.last_failure: Job | None = None
        self.last_commit: float | None = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the worker (and the watcher); a manager closed before can be started again (an app's
        lifespan may run more than once)."""
        if any(t.is_alive() for t in self._threads):
            return
        self._stop.clear()
        self._threads = [threading.Thread(target=self._work, name="citeqa-jobs", daemon=True)]
        if self._check is not None and self.interval > 0:
            self._threads.append(threading.Thread(target=self._watch, name="citeqa-watch", daemon=True))
        for thread in self._threads:
            thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking jobs; wait for the running one to finish (an update cannot be interrupted safely
        mid-commit, but it can be abandoned before: the next start finishes it). Jobs still queued stay
        queued for the next ``start``."""
        self._stop.set()
        self._queue.put(None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    # -- queue -------------------------------------------------------------------------------------

    def submit(self, kind: JobKind, files: Sequence[FileResult] = ()) -> Job:
        job_id = f"{next(self._ids):04d}-{secrets.token_hex(3)}"
        job = Job(id=job_id, kind=kind, status="queued", created=_now(), files=tuple(files))
        with self._lock:
            self._jobs[job_id] = _Entry(job)
            self._pending += 1
            while len(self._jobs) > KEEP_JOBS:
                oldest = next(iter(self._jobs))
                if self._jobs[oldest].job.status in ("queued", "running"):
                    break
                del self._jobs[oldest]
        self._queue.put(job_id)
        log.info("job %s queued: %s %s", job_id, kind, ", ".join(f.path for f in files) or "(whole folder)")
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            entry = self._jobs.get(job_id)
        return None if entry is None else entry.job

    def jobs(self) -> list[Job]:
        with self._lock:
            return [e.job for e in self._jobs.values()]

    @property
    def busy(self) -> bool:
        """A job is queued or running."""
        with self._lock:
            return self._pending > 0

    def wait_idle(self, timeout: float) -> bool:
        """Block until no job is queued or running (for tests and the CLI); False on timeout."""
        deadline = time.monotonic() + timeout
        while self.busy:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    # -- worker ------------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                if self._stop.is_set():
                    return
                continue
            if self._stop.is_set():
                self._queue.put(job_id)  # keep it for the next start
                return
            with self._lock:
                entry = self._jobs.get(job_id)
            if entry is not None:
                self._execute(entry)
            with self._lock:
                self._pending -= 1

    def _execute(self, entry: _Entry) -> None:
        entry.update(status="running", started=_now())
        job = entry.job
        log.info("job %s running", job.id)

        def progress(p: Progress) -> None:
            entry.update(stage=p.stage, done=p.done, total=p.total, rate=p.rate, eta_s=p.eta_s)
            if p.stage == "embed" and (p.done == p.total or p.done % 256 == 0):
                log.info("job %s embedding: %d/%d texts", job.id, p.done, p.total)

        try:
            report = self._run(progress)
            self._on_commit(report)
        except Exception as exc:  # any failure: the job says why, the old index keeps serving
            log.exception("job %s failed", job.id)
            entry.update(status="failed", finished=_now(), error=f"{type(exc).__name__}: {exc}")
            self.last_failure = entry.job
            return
        self.last_commit = time.monotonic()
        self.last_failure = None
        entry.update(
            status="done",
            finished=_now(),
            files=file_results(job.files, report.manifest, job.kind),
            generation=report.manifest.generation,
            added=len(report.added),
            updated=len(report.updated),
            removed=len(report.removed),
            skipped=len(report.skipped),
        )
        log.info(
            "job %s done: generation %d, %d added, %d changed, %d removed, %d skipped, %d texts embedded "
            "in %.1f s",
            job.id,
            report.manifest.generation,
            len(report.added),
            len(report.updated),
            len(report.removed),
            len(report.skipped),
            report.embedded,
            report.seconds,
        )

    # -- watcher -----------------------------------------------------------------------------------

    def _watch(self) -> None:
        assert self._check is not None
        while not self._stop.wait(self.interval):
            if self.busy:
                continue
            try:
                action = self._check()
                if action == "sync":
                    self.submit("sync")
                elif action == "reload" and self._on_reload is not None:
                    self._on_reload()
            except Exception:  # the watcher must never die; the next round tries again
                log.exception("the folder watcher failed")

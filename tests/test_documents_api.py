"""The documents API: upload, replace, delete, jobs, limits and errors; the folder watcher; a restart.

Most tests run the real app through TestClient with the HashingEncoder (the model does not matter to the
job machinery); the load test at the end runs the real server with the real model.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from index.ingest import SPLITTER_VERSION, chunking_params, update_index
from index.store import read_manifest, write_manifest
from service.app import create_app
from service.pipeline import Pipeline
from service.settings import Settings
from tests.conftest import NEW_ARTICLE, SEED_DOCS, SEED_ID, make_settings
from tests.fakes import HashingEncoder

MARKDOWN = "# Harbour guide\n\nThe ferry leaves at seven. Tickets cost six euros.\n"


class GatedEncoder(HashingEncoder):
    """Passages wait for ``gate`` (to hold a job mid-update); ``fail`` makes them raise."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not self.gate.wait(timeout=30):
            raise RuntimeError("the gate stayed closed")
        if self.fail:
            raise RuntimeError("the encoder failed on purpose")
        return super().encode_passages(texts)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    target = tmp_path / "documents"
    shutil.copytree(SEED_DOCS, target)
    return target


def settings_for(tmp_path: Path, docs: Path, **overrides: object) -> Settings:
    return make_settings(tmp_path, documents_dir=docs, **overrides)


@pytest.fixture
def served(tmp_path: Path, docs: Path) -> Iterator[tuple[TestClient, GatedEncoder, Settings]]:
    settings = settings_for(tmp_path, docs)
    encoder = GatedEncoder()
    app = create_app(settings, Pipeline.load(settings, encoder=encoder))
    with TestClient(app) as client:
        yield client, encoder, settings


def wait_job(client: TestClient, job_id: str, timeout: float = 30) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return dict(job)
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish within {timeout} s")


def upload(client: TestClient, *files: tuple[str, bytes], **form: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/documents",
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
        data=form,
    )


def passage_ids(client: TestClient, question: str) -> list[str]:
    return [
        p["id"]
        for p in client.post("/api/retrieve", json={"question": question, "top_k": 50}).json()["passages"]
    ]


def test_an_upload_is_stored_at_once_and_indexed_by_a_job(
    served: tuple[TestClient, GatedEncoder, Settings],
) -> None:
    client, _, settings = served
    r = upload(client, ("harbour.md", MARKDOWN.encode()), ("news/article.txt", NEW_ARTICLE.encode()))
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    assert r.headers["location"] == f"/api/jobs/{job['id']}"
    assert job["kind"] == "upload" and job["status"] in ("queued", "running")
    assert (settings.documents_dir / "harbour.md").read_text() == MARKDOWN
    assert (settings.documents_dir / "news" / "article.txt").is_file()
    done = wait_job(client, job["id"])
    assert done["status"] == "done" and done["error"] is None
    assert done["summary"] == {"added": 2, "updated": 0, "removed": 0, "skipped": 0}
    assert [(f["path"], f["document_id"], f["status"]) for f in done["files"]] == [
        ("harbour.md", "harbour", "indexed"),
        ("news/article.txt", "news/article", "indexed"),
    ]
    assert done["files"][1]["passages"] == 2 and done["progress"]["done"] == done["progress"]["total"]
    listing = client.get("/api/documents").json()
    assert listing["counts"] == {"indexed": 3, "skipped": 0, "pending": 0}
    assert {d["id"] for d in listing["documents"]} == {SEED_ID, "harbour", "news/article"}
    assert "news/article:1" in passage_ids(client, "lighthouse keeper ships")
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["documents"] == 3 and health["passages"] == 17 + 2 + 1


def test_an_upload_can_name_its_document_id(served: tuple[TestClient, GatedEncoder, Settings]) -> None:
    client, _, settings = served
    r = upload(client, ("whatever.md", MARKDOWN.encode()), document_id="guides/harbour")
    assert r.status_code == 202
    assert wait_job(client, r.json()["job"]["id"])["files"][0]["document_id"] == "guides/harbour"
    assert (settings.documents_dir / "guides" / "harbour.md").is_file()
    r = upload(client, ("a.md", b"x"), ("b.md", b"y"), document_id="two")
    assert r.status_code == 422 and "exactly one file" in r.json()["detail"]


@pytest.mark.parametrize(
    ("name", "data", "status", "error", "detail"),
    [
        ("../escape.md", MARKDOWN.encode(), 422, "invalid_name", "would leave the documents folder"),
        ("/etc/passwd.md", MARKDOWN.encode(), 422, "invalid_name", "would leave the documents folder"),
        (".hidden.md", MARKDOWN.encode(), 422, "invalid_name", "is hidden"),
        ("photo.bmp", b"BM\x00", 415, "unsupported_type", "unsupported file type .bmp"),
        ("empty.txt", b"", 422, "unreadable_document", "empty.txt: empty file"),
        ("junk.pdf", b"%PDF-1.4 junk", 422, "unreadable_document", "junk.pdf: corrupt PDF: "),
        (f"{SEED_ID}.md", MARKDOWN.encode(), 409, "duplicate_document", f"id '{SEED_ID}' already exists"),
    ],
)
def test_bad_uploads_are_refused_and_store_nothing(
    served: tuple[TestClient, GatedEncoder, Settings],
    name: str,
    data: bytes,
    status: int,
    error: str,
    detail: str,
) -> None:
    client, _, settings = served
    before = sorted(p.relative_to(settings.documents_dir) for p in settings.documents_dir.rglob("*"))
    r = upload(client, ("good.md", MARKDOWN.encode()), (name, data))
    assert r.status_code == status, r.text
    assert r.json()["error"] == error and detail in r.json()["detail"]
    after = sorted(p.relative_to(settings.documents_dir) for p in settings.documents_dir.rglob("*"))
    assert after == before  # all or nothing: the good file was not stored either
    assert client.get("/api/jobs").json()["jobs"] == []


def test_a_name_too_long_for_the_file_system_is_refused(
    served: tuple[TestClient, GatedEncoder, Settings],
) -> None:
    """The limit is on each stored name, suffix included, in UTF-8 bytes: an id that passes alone can
    still be too long once its file's suffix is added (it was an OSError, a 500, at the rename)."""
    client, _, settings = served
    before = sorted(settings.documents_dir.rglob("*"))
    for document_id, detail in [
        ("f" * 252, "is too long: 256 bytes in UTF-8; a folder or file name may be at most 255 bytes"),
        ("长" * 84, "is too long: 256 bytes in UTF-8"),
    ]:
        r = upload(client, ("esc.txt", NEW_ARTICLE.encode()), document_id=document_id)
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "invalid_name" and detail in r.json()["detail"]
    r = client.put(f"/api/documents/{'f' * 251}", files=[("files", ("new.markdown", MARKDOWN.encode()))])
    assert r.status_code == 422 and "260 bytes in UTF-8" in r.json()["detail"], r.text
    assert sorted(settings.documents_dir.rglob("*")) == before
    assert upload(client, ("esc.txt", NEW_ARTICLE.encode()), document_id="f" * 251).status_code == 202
    assert (settings.documents_dir / ("f" * 251 + ".txt")).is_file()


def test_citeqa_add_names_a_bad_name_without_a_traceback(tmp_path: Path, docs: Path) -> None:
    from typer.testing import CliRunner

    from service.cli import app

    source = tmp_path / "esc.txt"
    source.write_text(NEW_ARTICLE, encoding="utf-8")
    result = CliRunner().invoke(app, ["add", str(source), "--id", "f" * 253, "--documents", str(docs)])
    assert result.exit_code == 1, result.output
    assert "error: the file name 'ffff" in result.output and "at most 255 bytes" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert sorted(p.name for p in docs.iterdir()) == [f"{SEED_ID}.txt"]


def test_a_file_or_folder_in_the_way_is_a_conflict(served: tuple[TestClient, GatedEncoder, Settings]) -> None:
    """A file where the target needs a folder, or a folder where the file would go: 409 naming it (they
    were a FileExistsError or IsADirectoryError, a 500)."""
    client, _, settings = served
    text = NEW_ARTICLE.encode()
    assert upload(client, ("maple.txt", text)).status_code == 202
    assert upload(client, ("esc.txt", text), document_id="dir.txt/a").status_code == 202
    before = sorted(settings.documents_dir.rglob("*"))
    file_in_the_way = (
        "maple.txt/inner.txt cannot be stored: maple.txt is a file, where a folder is needed; "
        "choose another name or id"
    )
    for r in [
        upload(client, ("esc.txt", text), document_id="maple.txt/inner"),
        upload(client, ("maple.txt/inner.txt", text)),
        client.put("/api/documents/maple.txt/inner", files=[("files", ("esc.txt", text))]),
    ]:
        assert r.status_code == 409, r.text
        assert r.json() == {"error": "path_conflict", "detail": file_in_the_way}
    r = upload(client, ("dir.txt", text))
    assert r.status_code == 409 and r.json()["error"] == "path_conflict", r.text
    assert "dir.txt cannot be stored: dir.txt is a folder, where the file would go" in r.json()["detail"]
    r = upload(client, ("x.txt", text), ("x.txt/y.txt", text))
    assert r.status_code == 409 and r.json()["error"] == "path_conflict", r.text
    assert "x.txt would be a file and x.txt/y.txt needs it as a folder" in r.json()["detail"]
    assert sorted(settings.documents_dir.rglob("*")) == before


def test_citeqa_add_names_what_is_in_the_way(tmp_path: Path, docs: Path) -> None:
    from typer.testing import CliRunner

    from service.cli import app

    source = tmp_path / "esc.txt"
    source.write_text(NEW_ARTICLE, encoding="utf-8")
    add = ["add", str(source), "--id", f"{SEED_ID}.txt/inner", "--documents", str(docs)]
    result = CliRunner().invoke(app, add)
    assert result.exit_code == 1, result.output
    assert f"error: {SEED_ID}.txt/inner.txt cannot be stored: {SEED_ID}.txt is a file" in result.output
    assert sorted(p.name for p in docs.iterdir()) == [f"{SEED_ID}.txt"]


def test_temporary_files_left_by_a_crash_are_removed(tmp_path: Path, docs: Path) -> None:
    """An upload is written as ``.upload-<hex><suffix>`` and renamed; a kill -9 in between left it forever.
    One over an hour old is removed at start-up and at the next write; a younger one may be a live write's
    (another process's), so it stays. The scanner never sees them."""
    import os

    (docs / "news").mkdir()
    stale = [docs / ".upload-0123456789ab.pdf", docs / "news" / ".upload-ba9876543210.txt"]
    fresh = docs / ".upload-00000000000f.txt"
    for path in [*stale, fresh]:
        path.write_bytes(b"%PDF-1.7 half of a file")
    hours_ago = time.time() - 2 * 3600
    for path in stale:
        os.utime(path, (hours_ago, hours_ago))
    settings = settings_for(tmp_path, docs)
    with TestClient(create_app(settings, Pipeline.load(settings, encoder=HashingEncoder()))) as client:
        assert not any(p.exists() for p in stale) and fresh.is_file()
        assert [d["id"] for d in client.get("/api/documents").json()["documents"]] == [SEED_ID]
        assert client.get("/healthz").json()["status"] == "ok"  # hidden files are not staleness
        os.utime(fresh, (hours_ago, hours_ago))  # as if the server had run for two hours since
        assert upload(client, ("harbour.md", MARKDOWN.encode())).status_code == 202
        assert not fresh.exists()
        assert not list(docs.rglob(".upload-*"))  # nor one of this upload's


def test_an_unreadable_file_is_named_in_the_error(
    served: tuple[TestClient, GatedEncoder, Settings], tmp_path: Path
) -> None:
    """Of several files, the message says which one no reader could read; of one, too (as 413 and 415 do)."""
    from typer.testing import CliRunner

    from service.cli import app

    client, _, settings = served
    r = upload(client, ("good.txt", NEW_ARTICLE.encode()), ("empty.txt", b""))
    assert r.status_code == 422
    assert r.json() == {"error": "unreadable_document", "detail": "empty.txt: empty file"}
    r = client.put("/api/documents/harbour", files=[("files", ("harbour.txt", b"", "text/plain"))])
    assert r.json() == {"error": "unreadable_document", "detail": "harbour.txt: empty file"}
    (tmp_path / "a.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    (tmp_path / "junk.pdf").write_bytes(b"%PDF-1.4 junk")
    add = [
        "add",
        str(tmp_path / "a.txt"),
        str(tmp_path / "junk.pdf"),
        "--documents",
        str(settings.documents_dir),
    ]
    result = CliRunner().invoke(app, add)
    assert result.exit_code == 1 and "error: junk.pdf: corrupt PDF: " in result.output, result.output
    assert sorted(p.name for p in settings.documents_dir.iterdir()) == [f"{SEED_ID}.txt"]


def test_size_limits_and_the_content_type_are_checked(tmp_path: Path, docs: Path) -> None:
    settings = settings_for(tmp_path, docs, max_upload_bytes=1000, max_upload_request_bytes=5000)
    with TestClient(create_app(settings, Pipeline.load(settings, encoder=HashingEncoder()))) as client:
        r = upload(client, ("big.md", b"# x\n\n" + b"word " * 400))
        assert r.status_code == 413 and r.json()["error"] == "file_too_large"
        assert "big.md is 2,005 bytes; the limit is 1,000 per file" in r.json()["detail"]
        r = upload(client, *[(f"f{i}.md", b"# x\n\n" + b"word " * 150) for i in range(8)])
        assert r.status_code == 413 and r.json()["error"] == "body_too_large"
        assert "CITEQA_MAX_UPLOAD_REQUEST_BYTES" in r.json()["detail"]
        r = client.post("/api/documents", json={"files": "x"})
        assert r.status_code == 415 and "multipart/form-data" in r.json()["detail"]
        r = client.post(
            "/api/documents",
            content=b"--b\r\nnot a part header--b--\r\n",
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert r.status_code == 400 and r.json()["error"] == "bad_request", r.text
        part = (
            b'--XYZ\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n\r\nhello world\r\n'
        )
        multipart = {"content-type": "multipart/form-data; boundary=XYZ"}
        r = client.post("/api/documents", content=part, headers=multipart)  # cut short: no closing boundary
        assert r.status_code == 400, r.text
        assert r.json() == {
            "error": "bad_request",
            "detail": "the multipart body ends before its closing boundary (--XYZ--): the upload was cut "
            "short; send it again",
        }
        r = client.put("/api/documents/a", content=part + b"--XY", headers=multipart)
        assert r.status_code == 400 and "closing boundary" in r.json()["detail"], r.text

        def chunks() -> Iterator[bytes]:  # the close delimiter split across two chunks of a streamed body
            yield part + b"--X"
            yield b"YZ--\r\n"

        r = client.post("/api/documents", content=chunks(), headers=multipart)
        assert r.status_code == 202, r.text
        assert sorted(p.name for p in settings.documents_dir.iterdir()) == [f"{SEED_ID}.txt", "a.txt"]


def test_replace_and_delete(served: tuple[TestClient, GatedEncoder, Settings]) -> None:
    client, _, settings = served
    wait_job(client, upload(client, ("harbour.md", MARKDOWN.encode())).json()["job"]["id"])
    # PUT replaces whatever file held the id, even in another format.
    new = b"The ferry now leaves at eight.\n\nTickets cost seven euros.\n"
    r = client.put("/api/documents/harbour", files=[("files", ("harbour.txt", new, "text/plain"))])
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["job"]["id"])
    assert job["kind"] == "replace" and job["summary"]["updated"] == 1
    assert [(f["path"], f["status"], f["passages"]) for f in job["files"]] == [("harbour.txt", "indexed", 2)]
    assert not (settings.documents_dir / "harbour.md").exists()
    texts = [
        p["text"]
        for p in client.post("/api/retrieve", json={"question": "ferry", "top_k": 50}).json()["passages"]
    ]
    assert "The ferry now leaves at eight." in texts and not any("seven." in t for t in texts)
    # A PUT of an unreadable file keeps the old version.
    r = client.put("/api/documents/harbour", files=[("files", ("harbour.txt", b"", "text/plain"))])
    assert r.status_code == 422 and (settings.documents_dir / "harbour.txt").read_bytes() == new
    # DELETE removes the file, then the passages.
    r = client.delete("/api/documents/harbour")
    assert r.status_code == 202
    job = wait_job(client, r.json()["job"]["id"])
    assert job["files"] == [
        {
            "path": "harbour.txt",
            "document_id": "harbour",
            "status": "removed",
            "reason": None,
            "passages": None,
        }
    ]
    assert not any(i.startswith("harbour:") for i in passage_ids(client, "ferry"))
    r = client.delete("/api/documents/harbour")
    assert r.status_code == 404 and r.json() == {
        "error": "document_not_found",
        "detail": f"no document with id 'harbour' in {settings.documents_dir}",
    }
    assert client.get("/api/jobs/nope").status_code == 404


def test_queries_are_answered_from_the_old_index_until_the_job_commits(
    served: tuple[TestClient, GatedEncoder, Settings],
) -> None:
    client, encoder, _ = served
    encoder.gate.clear()  # hold the job inside its embedding step
    r = upload(client, ("news.txt", NEW_ARTICLE.encode()))
    job_id = r.json()["job"]["id"]
    deadline = time.monotonic() + 10
    while client.get(f"/api/jobs/{job_id}").json()["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    for _ in range(5):
        r = client.post("/api/retrieve", json={"question": "盒马提供了多少件生活日用品？"})
        assert r.status_code == 200 and all(not p["id"].startswith("news:") for p in r.json()["passages"])
    listing = client.get("/api/documents").json()
    assert {d["id"]: d["status"] for d in listing["documents"]}["news"] == "pending"
    health = client.get("/healthz").json()
    assert (
        health["jobs"] == 1 and health["status"] == "degraded" and "a job is updating it" in health["reason"]
    )
    encoder.gate.set()
    assert wait_job(client, job_id)["status"] == "done"
    assert "news:1" in passage_ids(client, "lighthouse keeper ships")


def test_a_failed_job_is_reported_and_the_old_index_keeps_serving(
    served: tuple[TestClient, GatedEncoder, Settings],
) -> None:
    client, encoder, settings = served
    encoder.fail = True
    job = wait_job(client, upload(client, ("news.txt", NEW_ARTICLE.encode())).json()["job"]["id"])
    assert job["status"] == "failed" and job["error"] == "RuntimeError: the encoder failed on purpose"
    health = client.get("/healthz").json()
    assert health["status"] == "degraded" and f"job {job['id']} failed" in health["reason"]
    assert client.post("/api/ask", json={"question": "盒马提供了多少件生活日用品？"}).status_code == 200
    assert (settings.documents_dir / "news.txt").is_file()  # the accepted file is kept for the next try
    encoder.fail = False
    retry = wait_job(client, upload(client, ("more.md", MARKDOWN.encode())).json()["job"]["id"])
    assert retry["status"] == "done" and retry["summary"]["added"] == 2
    assert client.get("/healthz").json()["status"] == "ok"


def test_skipped_files_are_listed_with_their_reason(tmp_path: Path, docs: Path) -> None:
    (docs / "notes.bmp").write_bytes(b"BM")
    (docs / "blank.txt").write_text("   \n")
    settings = settings_for(tmp_path, docs)
    with TestClient(create_app(settings, Pipeline.load(settings, encoder=HashingEncoder()))) as client:
        listing = client.get("/api/documents").json()
        skipped = {d["path"]: d for d in listing["documents"] if d["status"] == "skipped"}
        assert set(skipped) == {"notes.bmp", "blank.txt"}
        assert "unsupported file type .bmp" in skipped["notes.bmp"]["reason"]
        assert listing["counts"] == {"indexed": 1, "skipped": 2, "pending": 0}
        assert client.get("/healthz").json()["status"] == "ok"  # skipped files are not staleness


def test_the_watcher_indexes_files_dropped_into_the_folder(tmp_path: Path, docs: Path) -> None:
    settings = settings_for(tmp_path, docs, watch_interval=0.1)
    with TestClient(create_app(settings, Pipeline.load(settings, encoder=HashingEncoder()))) as client:
        (docs / "dropped.txt").write_text(NEW_ARTICLE, encoding="utf-8")
        deadline = time.monotonic() + 20
        while client.get("/healthz").json()["passages"] != 19 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/healthz").json() | {"generation": 0} == client.get("/healthz").json() | {
            "generation": 0,
            "status": "ok",
            "passages": 19,
            "index_fresh": True,
        }
        jobs = client.get("/api/jobs").json()["jobs"]
        assert [j["kind"] for j in jobs] == ["sync"] and jobs[0]["status"] == "done"


def test_an_index_committed_by_another_process_is_loaded(tmp_path: Path, docs: Path) -> None:
    settings = settings_for(tmp_path, docs, watch_interval=0.1)
    encoder = HashingEncoder()
    with TestClient(create_app(settings, Pipeline.load(settings, encoder=encoder))) as client:
        before = client.get("/healthz").json()["generation"]
        (docs / "other.txt").write_text(NEW_ARTICLE, encoding="utf-8")
        update_index(docs, settings.resolved_index_dir, encoder)  # as `citeqa add` in another process would
        deadline = time.monotonic() + 20
        while client.get("/healthz").json()["generation"] == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/healthz").json()["passages"] == 19


def test_a_restart_during_a_job_loses_no_accepted_upload(tmp_path: Path, docs: Path) -> None:
    settings = settings_for(tmp_path, docs)
    encoder = GatedEncoder()
    pipeline = Pipeline.load(settings, encoder=encoder)
    snapshot = tmp_path / "index-before-commit"
    with TestClient(create_app(settings, pipeline)) as client:
        encoder.gate.clear()
        job_id = upload(client, ("news.txt", NEW_ARTICLE.encode())).json()["job"]["id"]
        assert (docs / "news.txt").is_file()  # on disk before the 202
        shutil.copytree(settings.resolved_index_dir, snapshot)  # the index as a crash would leave it
        encoder.gate.set()
        wait_job(client, job_id)
    # The "restarted" server finds the old index and the accepted file, and indexes it.
    restarted = settings.model_copy(update={"index_dir": snapshot})
    with TestClient(
        create_app(restarted, Pipeline.load(restarted, encoder=HashingEncoder(), build=False))
    ) as c:
        assert c.get("/healthz").json()["passages"] == 17
        (job,) = c.get("/api/jobs").json()["jobs"]
        assert job["kind"] == "sync"
        assert wait_job(c, job["id"])["summary"]["added"] == 1
        assert c.get("/healthz").json()["passages"] == 19


def wait_health(client: TestClient, ok: Callable[[dict], bool], timeout: float = 20) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = client.get("/healthz").json()
        if ok(health):
            return dict(health)
        time.sleep(0.05)
    raise AssertionError(f"/healthz did not get there within {timeout} s: {health}")


@pytest.mark.parametrize("change", ["max_passage_tokens", "splitter_version"])
def test_an_index_chunked_otherwise_is_served_while_a_job_rechunks_it_at_start_up(
    tmp_path: Path, docs: Path, change: str
) -> None:
    settings = settings_for(tmp_path, docs)
    encoder = HashingEncoder()
    update_index(docs, settings.resolved_index_dir, encoder, max_tokens=480)  # `citeqa build`
    if change == "max_passage_tokens":  # then `CITEQA_MAX_PASSAGE_TOKENS=200 citeqa serve`
        settings = settings_for(tmp_path, docs, max_passage_tokens=200)
    else:  # an index built before the splitter changed, served by this version
        built = read_manifest(settings.resolved_index_dir)
        older = built.chunking | {"splitter_version": SPLITTER_VERSION - 1}
        write_manifest(settings.resolved_index_dir, replace(built, chunking=older))
    with TestClient(create_app(settings, Pipeline.load(settings, encoder=encoder, build=False))) as client:
        (job,) = client.get("/api/jobs").json()["jobs"]
        assert job["kind"] == "sync" and wait_job(client, job["id"])["status"] == "done"
        health = client.get("/healthz").json()
        assert health["status"] == "ok" and health["index_fresh"] is True and health["jobs"] == 0
    assert read_manifest(settings.resolved_index_dir).chunking == chunking_params(settings.max_passage_tokens)


def test_the_watcher_rechunks_an_index_committed_with_other_chunking(tmp_path: Path, docs: Path) -> None:
    settings = settings_for(tmp_path, docs, watch_interval=0.1)
    encoder = HashingEncoder()
    with TestClient(create_app(settings, Pipeline.load(settings, encoder=encoder))) as client:
        before = client.get("/healthz").json()["generation"]
        # `CITEQA_MAX_PASSAGE_TOKENS=200 citeqa build` in another process: loaded, found stale, re-chunked.
        update_index(docs, settings.resolved_index_dir, encoder, max_tokens=200)
        health = wait_health(client, lambda h: h["generation"] == before + 2 and h["status"] == "ok")
        assert health["index_fresh"] is True and health["passages"] == 17
        jobs = client.get("/api/jobs").json()["jobs"]
        assert [(j["kind"], j["status"]) for j in jobs] == [("sync", "done")]
    assert read_manifest(settings.resolved_index_dir).chunking == chunking_params(480)


def test_a_failed_sync_is_not_retried_until_the_folder_changes(tmp_path: Path, docs: Path) -> None:
    settings = settings_for(tmp_path, docs, watch_interval=0.05)
    encoder = GatedEncoder()
    update_index(docs, settings.resolved_index_dir, encoder, max_tokens=200)
    pipeline = Pipeline.load(settings, encoder=encoder, build=False)
    encoder.fail = True
    with TestClient(create_app(settings, pipeline)) as client:
        (job,) = client.get("/api/jobs").json()["jobs"]
        assert wait_job(client, job["id"])["status"] == "failed"
        time.sleep(0.5)  # ten rounds of the watcher
        assert len(client.get("/api/jobs").json()["jobs"]) == 1
        health = client.get("/healthz").json()
        assert health["status"] == "degraded" and health["jobs"] == 0
        assert f"job {job['id']} failed" in health["reason"] and "the settings ask for" in health["reason"]
        encoder.fail = False
        (docs / "dropped.txt").write_text(NEW_ARTICLE, encoding="utf-8")  # a change: the watcher tries again
        health = wait_health(client, lambda h: h["status"] == "ok")
        assert health["passages"] == 19 and len(client.get("/api/jobs").json()["jobs"]) == 2
        # Without its folder a sync fails too, and once: the watcher waits for the folder to come back.
        shutil.rmtree(docs)
        health = wait_health(client, lambda h: "failed" in (h["reason"] or ""))
        assert "does not exist" in health["reason"]
        time.sleep(0.5)
        assert [j["status"] for j in client.get("/api/jobs").json()["jobs"]] == ["failed", "done", "failed"]


def test_write_routes_need_the_api_key(tmp_path: Path, docs: Path) -> None:
    settings = settings_for(tmp_path, docs, api_key="k" * 16)
    with TestClient(create_app(settings, Pipeline.load(settings, encoder=HashingEncoder()))) as client:
        assert upload(client, ("a.md", MARKDOWN.encode())).status_code == 401
        assert client.delete(f"/api/documents/{SEED_ID}").status_code == 401
        assert client.get("/api/documents").status_code == 401
        assert client.get("/api/jobs").status_code == 401
        r = client.post(
            "/api/documents",
            files=[("files", ("a.md", MARKDOWN.encode(), "text/markdown"))],
            headers={"X-API-Key": "k" * 16},
        )
        assert r.status_code == 202

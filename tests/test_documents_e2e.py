"""The documents collection end to end with the real model: an upload to the real server under a query load
(no query may fail), and `citeqa add` / `documents` / `remove` as a user types them.

Servers bind loopback only; loads and waits are bounded in count and time.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from service.pipeline import Pipeline
from tests.test_faults import (
    CITEQA,
    REPO,
    QueryLoad,
    copy_index,
    env_for,
    start_server,
    stop_server,
    wait_healthy,
)

QUESTION = "盒马提供了多少件生活日用品？"
GUIDE = """# Harbour guide

## Ferries

The ferry to the island leaves at seven every morning. Tickets cost six euros.

## Lighthouse

The lighthouse on the cape was built in 1874. The tower is 34 metres tall.
"""
# A longer upload (150 paragraphs, about 300 texts to embed), so that the job runs for a while under the
# query load.
LOG = "# Harbour log\n\n" + "\n\n".join(
    f"On day {i} the harbour master counted {i * 7} boats and {i + 3} ferries in the bay."
    for i in range(1, 151)
)


@pytest.mark.slow
def test_an_upload_under_query_load_fails_no_query(
    pipeline: Pipeline, tmp_path: Path, docs_copy: Path
) -> None:
    index = copy_index(pipeline, tmp_path / "index")
    log = (tmp_path / "server.log").open("wb")
    server, base = start_server(env_for(docs_copy, index), log)
    load = QueryLoad(base, ["/api/retrieve", "/api/ask"], limit=400, pause=0.05, timeout=60)
    try:
        wait_healthy(base, server)
        load.start()
        files = [
            ("files", ("harbour.md", GUIDE.encode(), "text/markdown")),
            ("files", ("log.md", LOG.encode())),
        ]
        r = httpx.post(f"{base}/api/documents", files=files, timeout=60)
        submitted = time.monotonic()
        assert r.status_code == 202, r.text
        job_id = r.json()["job"]["id"]
        assert (docs_copy / "harbour.md").is_file()
        deadline = time.monotonic() + 300
        job = r.json()["job"]
        while job["status"] not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(0.2)
            job = httpx.get(f"{base}/api/jobs/{job_id}", timeout=30).json()
        committed = time.monotonic()
        assert job["status"] == "done", job
        assert [(f["status"], f["passages"]) for f in job["files"]] == [("indexed", 2), ("indexed", 150)]
        during = sum(1 for t in load.finished_at if submitted <= t <= committed)
        assert during >= 3, f"only {during} queries were answered while the job ran"
        load.wait_for(10, timeout=60)
        answer = httpx.post(
            f"{base}/api/ask", json={"question": "How tall is the lighthouse?"}, timeout=60
        ).json()
        cited = {p["id"] for p in answer["passages"][:1]}
        assert cited == {"harbour:2"}, answer
        health = httpx.get(f"{base}/healthz", timeout=30).json()
        jobs = httpx.get(f"{base}/api/jobs", timeout=30).json()["jobs"]
        assert health["status"] == "ok" and health["documents"] == 3 and health["passages"] == 17 + 2 + 150, (
            health,
            jobs,
        )
    finally:
        load.stop()
        stop_server(server)
        log.close()
    load.check(at_least=15)


@pytest.mark.slow
def test_citeqa_add_documents_and_remove(pipeline: Pipeline, tmp_path: Path, docs_copy: Path) -> None:
    index = copy_index(pipeline, tmp_path / "index")
    env = env_for(docs_copy, index)
    guide = tmp_path / "harbour.md"
    guide.write_text(GUIDE, encoding="utf-8")

    def citeqa(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CITEQA), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
        )

    added = citeqa("add", str(guide), "--id", "guides/harbour")
    assert added.returncode == 0, added.stderr
    assert "stored guides/harbour.md as document guides/harbour" in added.stdout
    assert "1 added, 0 changed, 0 removed, 1 unchanged" in added.stdout
    assert "embedding:" in added.stderr  # progress goes to stderr even when it is not a terminal
    again = citeqa("add", str(guide), "--id", "guides/harbour")
    assert again.returncode == 1 and "a document with id 'guides/harbour' already exists" in again.stderr
    listing = citeqa("documents")
    assert listing.returncode == 0, listing.stderr
    assert "indexed   guides/harbour  [Harbour guide]  markdown, 2 passages" in listing.stdout
    removed = citeqa("remove", "guides/harbour")
    assert removed.returncode == 0, removed.stderr
    assert "removed guides/harbour.md" in removed.stdout and "0 added, 0 changed, 1 removed" in removed.stdout
    missing = citeqa("remove", "guides/harbour")
    assert missing.returncode == 1 and "no document with id 'guides/harbour'" in missing.stderr

"""Browser tests: the real server in a subprocess, driven through Debian's Chromium by Playwright.

Needs ``apt-get install chromium fonts-noto-cjk`` and ``pip install playwright`` (the dev extras);
Playwright never downloads a browser here. Each server serves a private copy of the documents folder (tests
upload and remove documents; the repository's ``documents/`` is never written), builds its own index in a
temporary folder and listens on loopback only.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]
SCREENSHOTS = REPO / "tests" / "artifacts" / "screenshots"
STARTUP_SECONDS = 300  # the model loads and the index builds first, on a shared 2-core machine
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}

_server_logs: list[Path] = []


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _log_tail(log: Path, limit: int = 6000) -> str:
    if not log.exists():
        return "(no server log)"
    text = log.read_text(encoding="utf-8", errors="replace")
    return text[-limit:]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A failing browser test shows the servers' logs beside its own output."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for log in _server_logs:
            report.sections.append((f"citeqa server log (tail) {log.parent.name}", _log_tail(log)))


def private_documents(tmp: Path) -> Path:
    """A copy of the repository's documents folder that a server may change."""
    target = tmp / "documents"
    shutil.copytree(REPO / "documents", target)
    return target


@contextmanager
def running_server(tmp: Path, documents: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """``citeqa serve`` on a free loopback port over ``documents``, with an index of its own in ``tmp``
    (and ``env``: more settings); yields its base URL and stops it afterwards."""
    log_path = tmp / "server.log"
    _server_logs.append(log_path)
    port = _free_port()
    environ = os.environ | {
        "CITEQA_INDEX_DIR": str(tmp / "index"),
        "CITEQA_DOCUMENTS_DIR": str(documents),
        "PYTHONUNBUFFERED": "1",
    }
    cmd = [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=environ | (env or {}), stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"the server exited with {proc.returncode} during start-up:\n{_log_tail(log_path)}"
                )
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the server did not answer /healthz within {STARTUP_SECONDS} s:\n{_log_tail(log_path)}"
                )
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        _server_logs.remove(log_path)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The chat tests' server: the seed corpus (a private copy); yields its base URL."""
    tmp = tmp_path_factory.mktemp("browser-server")
    with running_server(tmp, private_documents(tmp)) as base:
        yield base


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "Playwright is missing: run `.venv/bin/pip install -e '.[dev]'` (or `pip install playwright`)"
        )
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install -y chromium fonts-noto-cjk`")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def chat_page(browser: Browser, base: str, viewport: dict[str, int] = DESKTOP) -> Iterator[Page]:
    """A fresh page (own localStorage) at the chat page of ``base``; uncaught JS errors and CSP violations
    fail the test."""
    context = browser.new_context(viewport=viewport, base_url=base, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    response = page.goto("/")
    assert response is not None and response.ok, f"GET / answered {response and response.status}"
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    """A fresh desktop-sized chat page on the chat tests' server."""
    with chat_page(browser, server) as page:
        yield page


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS

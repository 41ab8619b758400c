"""The Documents panel as a person uses it, on a desktop and a phone: real server (its own private copy of the
documents folder, plus a file it skips), real model, real Chromium.

Uploads go through the file picker and through a real drop event carrying a DataTransfer; progress is
followed to the end, the new document answers a question and its citation shows where the passage sits;
a refused file shows the server's reason; removal goes through the confirmation dialog, by mouse and by
keyboard alone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, Route, expect

from tests.browser.conftest import DESKTOP, PHONE, chat_page, private_documents, running_server
from tests.browser.test_chat import ask, no_horizontal_scroll, tab_until

pytestmark = pytest.mark.browser

JOB_SECONDS = 240  # an upload's job embeds on a loaded 2-core machine
JOB_MS = JOB_SECONDS * 1000
ANSWER_MS = 90_000
SEED_ID = "000_df1882c45adb6c58"
SKIPPED = "empty.txt"  # in the served folder from the start: the index skips it

HARBOUR = """# Harbour almanac

## Lighthouse

The lighthouse keeper counted 312 ships in the winter of the storm. The lamp was rebuilt in 1898.

## Ferries

The ferry to the island leaves at 7:40 every morning and carries 90 passengers.
"""
TEAHOUSE = """# 山城茶馆

## 营业时间

山城茶馆每天早上6点开门，晚上10点关门。

## 招牌茶

茶馆的招牌是盖碗茶，每壶3元，用的是本地的绿茶。
"""
# Per viewport: the question asked of the uploaded documents, what the answer must hold, whose title it cites.
FLOWS = {
    "desktop": ("How many ships did the lighthouse keeper count?", "312", "Harbour almanac"),
    "phone": ("山城茶馆每天几点开门？", "6点", "山城茶馆"),
}
RECORD_PHASES = """() => {
  window.__phases = {};
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (!node.dataset || !node.dataset.phase) continue;
        const name = node.querySelector(".upload-name").textContent;
        (window.__phases[name] ||= []).push(node.dataset.phase);
      }
    }
  }).observe(document.getElementById("uploads"), { childList: true });
}"""


@pytest.fixture(scope="module")
def collection_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server of its own (the tests change its collection): the seed article and a file it skips."""
    tmp = tmp_path_factory.mktemp("documents-panel-server")
    documents = private_documents(tmp)
    (documents / SKIPPED).write_bytes(b"")
    with running_server(tmp, documents) as base:
        yield base


def wait_idle(base: str, timeout: float = JOB_SECONDS) -> None:
    """Until no job is queued or running."""
    deadline = time.monotonic() + timeout
    while any(j["status"] in ("queued", "running") for j in httpx.get(f"{base}/api/jobs").json()["jobs"]):
        assert time.monotonic() < deadline, "the server's jobs did not finish"
        time.sleep(0.3)


def listing(base: str) -> dict[str, dict[str, Any]]:
    return {d["id"]: d for d in httpx.get(f"{base}/api/documents").json()["documents"]}


@pytest.fixture
def base(collection_server: str) -> Iterator[str]:
    """The server, left as it was found: documents a test added are removed afterwards."""
    wait_idle(collection_server)
    yield collection_server
    wait_idle(collection_server)
    for doc_id in set(listing(collection_server)) - {SEED_ID, "empty"}:
        httpx.delete(f"{collection_server}/api/documents/{doc_id}")
    wait_idle(collection_server)


Files = dict[str, Path]
VIEWPORTS = pytest.mark.parametrize(("name", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])


@pytest.fixture
def files(tmp_path: Path) -> Files:
    out = {
        "harbour.md": HARBOUR.encode(),
        "teahouse.md": TEAHOUSE.encode(),
        "blank.txt": b"",
        "notes.xyz": b"not a format the server reads",
        "很长的文件名" * 12 + ".xyz": b"a long name",
    }
    for name, data in out.items():
        (tmp_path / name).write_bytes(data)
    return {name: tmp_path / name for name in out}


def open_panel(page: Page) -> Locator:
    toggle = page.locator("#documents-toggle")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    panel = page.locator("#documents-panel")
    expect(panel).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    return panel


def drop_file(page: Page, target: Locator, name: str, text: str, mime: str = "text/markdown") -> None:
    """A real drop: dragenter, dragover and drop events carrying a DataTransfer that holds the file."""
    data = page.evaluate_handle(
        """([name, text, type]) => {
            const data = new DataTransfer();
            data.items.add(new File([text], name, { type }));
            return data;
        }""",
        [name, text, mime],
    )
    for event in ("dragenter", "dragover", "drop"):
        target.dispatch_event(event, {"dataTransfer": data})


def upload_item(page: Page, name: str) -> Locator:
    named = page.locator(".upload-name", has_text=re.compile(f"^{re.escape(name)}$"))
    return page.locator(".upload-item").filter(has=named)


def doc_item(page: Page, doc_id: str) -> Locator:
    return page.locator(f'#documents-list .doc[data-id="{doc_id}"]')


def expected_meta(doc: dict[str, Any]) -> str:
    """The panel's line for a document, from the API's listing of it."""
    parts = [doc["path"], f"{doc['passages']} passage{'' if doc['passages'] == 1 else 's'}"]
    if doc["pages"] is not None:
        parts.append(f"{doc['pages']} pages")
    parts += [p for p in (doc["format"], doc["encoding"]) if p]
    return " · ".join(parts)


def place(passage: dict[str, Any]) -> str:
    """Where a passage sits, as the page writes it: section path, page, paragraph."""
    parts = [" › ".join(passage["section"])] if passage["section"] else []
    if passage["page"] is not None:
        parts.append(f"Page {passage['page']}")
    return " · ".join([*parts, f"Paragraph {passage['paragraph']}"])


@VIEWPORTS
def test_upload_by_picker_and_by_drop_then_ask_and_remove(
    browser: Browser, base: str, files: Files, screenshots: Path, name: str, viewport: dict[str, int]
) -> None:
    question, answer_holds, cited_title = FLOWS[name]
    with chat_page(browser, base, viewport) as page:
        panel = open_panel(page)
        before = listing(base)
        expect(doc_item(page, SEED_ID).locator(".status")).to_have_text("Indexed")
        skipped = doc_item(page, "empty")
        expect(skipped.locator(".status")).to_have_text("Skipped")
        expect(skipped.locator(".doc-reason")).to_have_text(f"Skipped: {before['empty']['reason']}")
        no_horizontal_scroll(page)

        page.evaluate(RECORD_PHASES)
        page.locator("#file-input").set_input_files(files["harbour.md"])
        drop_file(page, page.locator("#drop-zone"), "teahouse.md", TEAHOUSE)
        for upload in ("harbour.md", "teahouse.md"):
            expect(upload_item(page, upload)).to_have_attribute("data-phase", "indexed", timeout=JOB_MS)
        page.screenshot(path=screenshots / f"documents-{name}-uploaded.png")

        after = listing(base)
        for upload, doc_id in (("harbour.md", "harbour"), ("teahouse.md", "teahouse")):
            doc = after[doc_id]
            assert doc["status"] == "indexed" and doc["passages"] > 0, doc
            expect(upload_item(page, upload).locator(".upload-state")).to_have_text(
                f"Indexed: {doc['passages']} passage{'' if doc['passages'] == 1 else 's'}"
            )
            item = doc_item(page, doc_id)
            expect(item.locator(".status")).to_have_text("Indexed")
            expect(item.locator(".doc-meta")).to_contain_text(expected_meta(doc))
            # Seen on the way: waiting, the bytes going up, the job, then the result.
            phases = page.evaluate("(n) => window.__phases[n]", upload)
            assert phases[0] == "waiting" and phases[-1] == "indexed", phases
            assert phases.index("uploading") < phases.index("indexing"), phases
        expect(page.locator("#documents-live")).to_contain_text("indexed")
        served = httpx.get(f"{base}/api/documents").json()
        expect(page.locator("#documents-summary")).to_have_text(
            f"{served['counts']['indexed']} documents indexed · {served['counts']['skipped']} skipped · "
            f"{served['passages']} passages served"
        )
        no_horizontal_scroll(page)

        # Escape closes the panel and gives the focus back to its toggle.
        page.keyboard.press("Escape")
        expect(panel).to_be_hidden()
        expect(page.locator("#documents-toggle")).to_be_focused()

        # The examples follow the served collection.
        examples = httpx.get(f"{base}/api/examples", timeout=120).json()["examples"]
        expect(page.locator("#examples button.suggestion")).to_have_text(
            [e["question"] for e in examples], timeout=ANSWER_MS
        )

        # The new document answers, and the citation says where the passage sits.
        expected = httpx.post(f"{base}/api/ask", json={"question": question}, timeout=120).json()
        cited = {c for s in expected["answer"]["sentences"] for c in s["citations"]}
        first = min((p for p in expected["passages"] if p["rank"] in cited), key=lambda p: p["rank"])
        assert first["title"] == cited_title, first
        turn = ask(page, question)
        expect(turn.locator(".answer-text")).to_contain_text(answer_holds)
        card = turn.locator(".source-card.cited").first
        expect(card.locator(".source-title")).to_have_text(cited_title)
        meta = re.compile(f"^{re.escape(place(first))} · similarity 0\\.\\d{{3}}$")
        expect(card.locator(".source-meta")).to_have_text(meta)
        card.click()
        dialog = page.locator("#passage-dialog")
        expect(dialog.locator("#passage-title")).to_have_text(cited_title)
        expect(dialog.locator("#passage-paragraph")).to_have_text(f"Paragraph {first['paragraph']}")
        section = dialog.locator("#passage-section")
        if first["section"]:
            expect(section).to_have_text(" › ".join(first["section"]))
        else:
            expect(section).to_be_hidden()
        page.screenshot(path=screenshots / f"documents-{name}-citation.png")
        page.keyboard.press("Escape")

        # Remove one through the confirmation dialog.
        open_panel(page)
        doc_item(page, "harbour").get_by_role("button", name="Remove Harbour almanac").click()
        confirm = page.locator("#remove-dialog")
        expect(confirm).to_be_visible()
        expect(confirm).to_have_attribute("role", "alertdialog")
        expect(confirm.locator("#remove-text")).to_contain_text("“Harbour almanac”")
        expect(page.locator("#remove-cancel")).to_be_focused()
        no_horizontal_scroll(page)
        page.screenshot(path=screenshots / f"documents-{name}-confirm.png")
        confirm.get_by_role("button", name="Remove", exact=True).click()
        expect(confirm).to_be_hidden()
        expect(doc_item(page, "harbour")).to_have_count(0, timeout=JOB_MS)
        expect(page.locator("#documents-live")).to_have_text("Harbour almanac removed.", timeout=JOB_MS)
        assert "harbour" not in listing(base)
        expect(doc_item(page, "teahouse").locator(".status")).to_have_text("Indexed")


@VIEWPORTS
def test_a_refused_file_shows_the_servers_reason(
    browser: Browser, base: str, files: Files, screenshots: Path, name: str, viewport: dict[str, int]
) -> None:
    long_name = next(n for n in files if n.startswith("很长"))
    expected = {}
    for upload in ("blank.txt", "notes.xyz", long_name):
        response = httpx.post(f"{base}/api/documents", files={"files": (upload, files[upload].read_bytes())})
        expected[upload] = (response.status_code, response.json())
    assert expected["blank.txt"][0] == 422 and expected["blank.txt"][1]["error"] == "unreadable_document"
    assert expected["notes.xyz"][0] == 415 and expected["notes.xyz"][1]["error"] == "unsupported_type"

    with chat_page(browser, base, viewport) as page:
        # A file dropped anywhere on the page opens the panel and uploads it.
        drop_file(page, page.locator("main"), "notes.xyz", files["notes.xyz"].read_text(), "text/plain")
        expect(page.locator("#documents-panel")).to_be_visible()
        page.locator("#file-input").set_input_files([files["blank.txt"], files[long_name]])
        for upload, (status, body) in expected.items():
            item = upload_item(page, upload)
            expect(item).to_have_attribute("data-phase", "rejected", timeout=JOB_MS)
            expect(item.locator(".upload-state")).to_have_text(f"Not accepted: {body['detail']}")
            expect(item.locator(".error-code")).to_have_text(f"{body['error']} · HTTP {status}")
        expect(page.locator("#documents-live")).to_contain_text("was not accepted")
        no_horizontal_scroll(page)
        page.screenshot(path=screenshots / f"documents-{name}-refused.png")

        page.get_by_role("button", name="Clear finished uploads").click()
        expect(page.locator(".upload-item")).to_have_count(0)
        expect(page.locator("#file-input")).to_be_focused()
    assert set(listing(base)) == {SEED_ID, "empty"}  # nothing was stored


def test_remove_with_the_keyboard_alone(browser: Browser, base: str) -> None:
    response = httpx.post(f"{base}/api/documents", files={"files": ("harbour.md", HARBOUR.encode())})
    assert response.status_code == 202, response.text
    wait_idle(base)
    with chat_page(browser, base) as page:
        tab_until(page, "#documents-toggle")
        page.keyboard.press("Enter")
        expect(page.locator("#documents-panel")).to_be_visible()
        tab_until(page, "#file-input")  # the file picker is reachable (its dialog cannot open headless)
        remove = doc_item(page, "harbour").locator("button.remove")
        tab_until(page, '#documents-list .doc[data-id="harbour"] button.remove')
        page.keyboard.press("Enter")
        confirm = page.locator("#remove-dialog")
        expect(confirm).to_be_visible()
        expect(page.locator("#remove-cancel")).to_be_focused()

        page.keyboard.press("Escape")  # changed my mind: nothing happens, the focus goes back
        expect(confirm).to_be_hidden()
        expect(remove).to_be_focused()
        assert "harbour" in listing(base)

        page.keyboard.press("Enter")
        expect(page.locator("#remove-cancel")).to_be_focused()
        page.keyboard.press("Tab")
        expect(page.locator("#remove-confirm")).to_be_focused()
        page.keyboard.press("Enter")
        expect(confirm).to_be_hidden()
        expect(page.locator("#collection-title")).to_be_focused()
        expect(doc_item(page, "harbour")).to_have_count(0, timeout=JOB_MS)
        expect(page.locator("#documents-live")).to_have_text("Harbour almanac removed.", timeout=JOB_MS)
        assert "harbour" not in listing(base)
        page.keyboard.press("Escape")
        expect(page.locator("#documents-toggle")).to_be_focused()


def test_the_jobs_progress_is_shown_while_it_runs(browser: Browser, base: str, files: Files) -> None:
    """The job's stage, done/total and ETA as the page gets them (the page is shown a job held at a known
    point of its embedding, then the real one)."""
    stub = True

    def running(route: Route) -> None:
        if not stub:
            route.continue_()
            return
        job_id = route.request.url.rsplit("/", 1)[1]
        route.fulfill(
            json={
                "id": job_id, "kind": "upload", "status": "running", "stage": "embed",
                "progress": {"done": 12, "total": 40}, "rate": 3.5, "eta_s": 3.2, "error": None,
                "files": [{"path": "harbour.md", "document_id": "harbour", "status": "pending"}],
            }
        )  # fmt: skip

    with chat_page(browser, base) as page:
        open_panel(page)
        page.route("**/api/jobs/*", running)
        page.locator("#file-input").set_input_files(files["harbour.md"])
        item = upload_item(page, "harbour.md")
        expect(item.locator(".upload-state")).to_have_text(
            "Embedding: 12 of 40 texts · about 3 s left", timeout=JOB_MS
        )
        bar = item.locator("progress")
        expect(bar).to_have_attribute("max", "40")
        expect(bar).to_have_attribute("value", "12")
        expect(page.locator("#documents-badge")).to_have_text(" (1 indexing)")

        stub = False  # now the real job, which has long finished
        expect(item).to_have_attribute("data-phase", "indexed", timeout=JOB_MS)
        expect(item.locator("progress")).to_have_count(0)
        expect(page.locator("#documents-badge")).to_be_hidden()


def test_an_api_error_is_shown_with_its_detail(browser: Browser, base: str) -> None:
    detail = "this server needs an API key: send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`"
    with chat_page(browser, base) as page:
        page.route(
            "**/api/documents",
            lambda route: route.fulfill(status=401, json={"error": "unauthorized", "detail": detail}),
        )
        open_panel(page)
        error = page.locator("#documents-error")
        expect(error).to_be_visible()
        expect(error).to_have_attribute("role", "alert")
        expect(error).to_contain_text(detail)
        expect(error).to_contain_text("unauthorized · HTTP 401")

        page.unroute("**/api/documents")
        page.get_by_role("button", name="Refresh").click()
        expect(error).to_be_hidden()
        expect(doc_item(page, SEED_ID)).to_be_visible()


def test_the_api_docs_render_offline(browser: Browser, base: str) -> None:
    """/docs with every request off the loopback interface refused: Swagger UI is served locally."""
    context = browser.new_context(viewport=DESKTOP, base_url=base)
    outside: list[str] = []

    def loopback_only(route: Route) -> None:
        host = httpx.URL(route.request.url).host
        if host in ("127.0.0.1", "localhost", "::1"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", loopback_only)
    try:
        page = context.new_page()
        response = page.goto("/docs")
        assert response is not None and response.ok
        upload = page.locator(".opblock-post").filter(
            has=page.locator(".opblock-summary-path", has_text=re.compile(r"^/api/documents$"))
        )
        expect(upload).to_be_visible(timeout=30_000)
        expect(page.locator(".opblock-summary-path", has_text="/api/examples")).to_be_visible()
        assert outside == [], f"/docs asked for resources off the machine: {outside}"
    finally:
        context.close()

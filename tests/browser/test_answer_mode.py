"""The chat page's answer mode: offered only when the server has an LLM. The generated answers come from the
scripted OpenAI-compatible server (tests/llm_server.py) that a real ``citeqa serve`` posts to over loopback;
the guard, the model and the index are real."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Request, expect

from tests.browser.conftest import chat_page, private_documents, running_server
from tests.browser.test_chat import HEMA_ZH, PHONE, TITLE, ask, no_horizontal_scroll
from tests.llm_server import FAITHFUL, MADE_UP, SECOND, Reply, ScriptedLLM

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLM) -> Iterator[str]:
    """A server over the seed corpus with the scripted LLM configured."""
    tmp = tmp_path_factory.mktemp("browser-llm-server")
    env = {"CITEQA_LLM_URL": llm.url, "CITEQA_LLM_TIMEOUT": "20"}
    with running_server(tmp, private_documents(tmp), env=env) as base:
        yield base


def modes_loaded(page: Page) -> None:
    """Wait until the page has read the server's answer modes (so a hidden control means something)."""
    expect(page.locator("#ask-form")).to_have_attribute("data-answer-modes", re.compile(r"extractive"))


def sent_bodies(page: Page) -> list[dict]:
    """The JSON bodies the page sends to the ask endpoint from now on."""
    bodies: list[dict] = []

    def record(request: Request) -> None:
        if request.url.endswith("/api/ask/stream"):
            bodies.append(json.loads(request.post_data or "{}"))

    page.on("request", record)
    return bodies


def test_a_generated_answer_shows_its_citations_and_what_the_guard_removed(
    browser: Browser, llm_server: str, llm: ScriptedLLM, screenshots: Path
) -> None:
    with chat_page(browser, llm_server) as page:
        modes_loaded(page)
        control = page.locator("#answer-mode")
        expect(control).to_be_visible()
        expect(control).to_have_value("generated")  # the server's default when it has an LLM
        bodies = sent_bodies(page)

        llm.script(Reply(FAITHFUL + MADE_UP))
        control.select_option("generated")
        turn = ask(page, HEMA_ZH)
        assert bodies[-1]["answer_mode"] == "generated"
        assert len(llm.requests) == 1
        answer = turn.locator(".answer")
        expect(answer.locator(".answer-label")).to_have_attribute("data-mode", "generated")
        expect(answer.locator(".answer-label")).to_contain_text("generated")
        expect(answer.locator(".answer-text")).to_contain_text("45万件蔬菜、粮油等生活日用品")
        expect(answer.locator(".answer-text")).not_to_contain_text("90万件")
        expect(answer.locator(".answer-text button.cite")).to_have_text(["[1]"])
        expect(answer.locator(".source-card.cited").first).to_contain_text(TITLE)
        expect(answer.locator(".generation-error")).to_have_count(0)

        # What the guard removed: collapsed, each sentence with its reason.
        dropped = answer.locator("details.dropped")
        summary = "1 generated sentence removed: not supported by the passages"
        expect(dropped.locator("summary")).to_have_text(summary)
        expect(dropped.locator("li")).to_be_hidden()
        dropped.locator("summary").click()
        item = dropped.locator("li")
        expect(item).to_have_attribute("data-reason", "unsupported_number")
        expect(item.locator(".dropped-text")).to_have_text("盒马还在7000个社区免费提供了90万件生活日用品。")
        expect(item.locator(".dropped-reason")).to_contain_text("number or date")
        page.screenshot(path=str(screenshots / "generated-answer.png"), full_page=True)

        # The citation opens the passage, as for a quoted answer.
        answer.locator(".answer-text button.cite").first.click()
        expect(page.locator("#passage-dialog #passage-title")).to_have_text(TITLE)
        page.keyboard.press("Escape")

        # A fault of the LLM: the quoted answer, saying why.
        llm.script(Reply(status=500))
        turn = ask(page, HEMA_ZH)
        answer = turn.locator(".answer")
        expect(answer.locator(".answer-label")).to_have_attribute("data-mode", "extractive")
        expect(answer.locator(".generation-error")).to_contain_text("quoted from the passages")
        expect(answer.locator(".generation-error")).to_contain_text("500")
        expect(answer.locator(".answer-text")).to_contain_text("45万件")

        # Extractive chosen: the LLM is not asked, and the choice survives a reload.
        control.select_option("extractive")
        llm.script()
        turn = ask(page, HEMA_ZH)
        assert bodies[-1]["answer_mode"] == "extractive"
        assert llm.requests == []
        expect(turn.locator(".answer-label")).to_have_attribute("data-mode", "extractive")
        expect(turn.locator("details.dropped")).to_have_count(0)
        page.reload()
        modes_loaded(page)
        expect(page.locator("#answer-mode")).to_have_value("extractive")
        # The saved conversation renders the generated turn the same way.
        expect(page.locator(".answer-label[data-mode=generated]")).to_have_count(1)
        page.set_viewport_size(PHONE)
        expect(page.locator("#answer-mode")).to_be_visible()
        no_horizontal_scroll(page)


def test_a_generated_answer_appears_sentence_by_sentence(
    browser: Browser, llm_server: str, llm: ScriptedLLM, screenshots: Path
) -> None:
    with chat_page(browser, llm_server) as page:
        modes_loaded(page)
        page.locator("#answer-mode").select_option("generated")
        turns = page.locator("#conversation > .turn")

        # A slow LLM: its first sentence is on the page, guarded, while it is still writing the rest.
        llm.script(Reply(FAITHFUL + MADE_UP + SECOND, chunk_chars=4, chunk_delay=0.15))
        before = turns.count()
        page.locator("#question").fill(HEMA_ZH)
        page.locator("#question").press("Enter")
        turn = turns.nth(before)
        streaming = turn.locator(".answer.pending .answer-text.streaming")
        expect(streaming).to_contain_text("45万件蔬菜、粮油等生活日用品", timeout=15_000)
        assert llm.finished_at == []  # the LLM has not finished its completion
        page.screenshot(path=str(screenshots / "generated-streaming.png"), full_page=True)
        expect(turn).not_to_have_attribute("data-state", "pending", timeout=30_000)
        answer = turn.locator(".answer")
        expect(answer.locator(".answer-label")).to_have_attribute("data-mode", "generated")
        expect(answer.locator(".answer-text")).to_contain_text("河南遭遇罕见特大暴雨")
        expect(answer.locator(".answer-text")).not_to_contain_text("90万件")
        expect(answer.locator("details.dropped li")).to_have_count(1)

        # The LLM fails after a kept sentence: shown at first, then replaced by the quoted answer.
        llm.script(Reply(FAITHFUL + "盒马还在7000个社区免费", cut=True, chunk_chars=4, chunk_delay=0.4))
        before = turns.count()
        page.locator("#question").fill(HEMA_ZH)
        page.locator("#question").press("Enter")
        turn = turns.nth(before)
        expect(turn.locator(".answer.pending .answer-text.streaming")).to_contain_text(
            "盒马在7000个社区", timeout=15_000
        )
        expect(turn).not_to_have_attribute("data-state", "pending", timeout=30_000)
        answer = turn.locator(".answer")
        expect(answer.locator(".answer-label")).to_have_attribute("data-mode", "extractive")
        expect(answer.locator(".generation-error")).to_contain_text("ended before")
        expect(answer.locator(".answer-text")).to_contain_text("45万件")
        expect(answer.locator(".answer-text")).not_to_contain_text("盒马在7000个社区")


def test_without_an_llm_the_page_offers_no_answer_mode(page: Page) -> None:
    modes_loaded(page)
    expect(page.locator("#ask-form")).to_have_attribute("data-answer-modes", "extractive")
    expect(page.locator("#answer-mode")).to_be_hidden()
    expect(page.locator("#mode-row")).to_be_hidden()
    bodies = sent_bodies(page)
    turn = ask(page, HEMA_ZH)
    assert "answer_mode" not in bodies[-1]
    expect(turn.locator(".answer-label")).to_have_attribute("data-mode", "extractive")
    expect(turn.locator(".answer-label")).to_have_text("Answer")

"""Generated answers from an OpenAI-compatible LLM: the prompt, the HTTP client, the completion's sentences.

Optional (``CITEQA_LLM_URL``). The LLM sees the response's passages numbered ``[1]..[n]`` in rank order and
is asked to answer in the question's language with ``[n]`` after every sentence, or to say exactly
``NOT_IN_DOCUMENTS`` when the passages do not answer. Nothing it writes reaches a client before
``service.guard`` has checked every sentence against the passages it cites.

The client speaks ``POST <url>/v1/chat/completions`` (Ollama, vLLM, llama.cpp's server, OpenAI), plain or
streamed as server-sent events (``"stream": true``). Every fault (unreachable, an error status, slower than
``llm_timeout``, malformed or empty output) raises ``GenerationError``, which the caller turns into the
extractive answer with ``generation_error`` set.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import httpx

from index.chunk import split_sentences
from index.errors import GenerationError, GenerationUnavailableError
from index.lexical import question_lang
from index.types import Hit
from service.answer import Answer, AnswerSentence, join_with_citations, streamed_piece
from service.guard import DroppedSentence, Guard, GuardedSentence
from service.guard import Passage as GuardPassage
from service.settings import Settings

log = logging.getLogger("citeqa")

NOT_ANSWERED = "NOT_IN_DOCUMENTS"

# "[1]", "[1, 2]", "[1][3]", full-width "【1】" / "［1］": the model's citations.
_CITATION = re.compile(r"\s*[\[［【]\s*(\d+(?:\s*[,，、]\s*\d+)*)\s*[\]］】]")
_LEADING_CITATIONS = re.compile(r"^(?:\s*[\[［【]\s*\d+(?:\s*[,，、]\s*\d+)*\s*[\]］】])+")
_SPACE = re.compile(r"\s+")

SYSTEM_PROMPT = {
    "en": (
        "You answer questions using only the numbered passages you are given. Answer in English, in a few "
        "short sentences. After every sentence write the numbers of the passages that state it, like [1] "
        "or [1][2]. Use only facts, numbers, dates and names that the passages state; do not add anything "
        f"else. If the passages do not answer the question, reply with exactly {NOT_ANSWERED} and nothing "
        "else."
    ),
    "zh": (
        "你只根据给出的编号段落回答问题。用中文回答，写几句简短的话。每句话后面写出陈述该内容的段落编号，"
        "例如 [1] 或 [1][2]。只使用段落中写明的事实、数字、日期和名称，不要添加任何其他内容。"
        f"如果这些段落不能回答问题，只回复 {NOT_ANSWERED}，不要写别的。"
    ),
}


@dataclass(frozen=True, slots=True)
class GeneratedSentence:
    text: str  # without its citation markers
    citations: tuple[int, ...]  # as the model wrote them (ranks), in order, without repeats


@dataclass(frozen=True, slots=True)
class Completion:
    raw: str
    sentences: tuple[GeneratedSentence, ...]
    not_answered: bool  # the model said the documents do not answer


def build_messages(question: str, passages: Sequence[str]) -> list[dict[str, str]]:
    """The chat messages: the instructions in the question's language, then the passages numbered in the
    order given (the response's rank order) and the question."""
    lang = question_lang(question)
    numbered = "\n\n".join(f"[{i}] {' '.join(text.split())}" for i, text in enumerate(passages, start=1))
    label = ("段落", "问题") if lang == "zh" else ("Passages", "Question")
    user = f"{label[0]}:\n{numbered}\n\n{label[1]}: {question}"
    return [{"role": "system", "content": SYSTEM_PROMPT[lang]}, {"role": "user", "content": user}]


def _numbers(group: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", group)]


def parse_completion(raw: str) -> Completion:
    """The completion's sentences with the citations each ends with (index.chunk's sentence splitter: Chinese
    and English sentence ends). Markers that open a sentence belong to the one before it ("... 2021. [1]
    Then ..."). Raises ``GenerationError`` when there is no text at all."""
    text = raw.strip()
    if not text:
        raise GenerationError("the LLM returned an empty answer")
    if not_answered(text):
        return Completion(raw, (), True)
    sentences = _sentences(text)
    if not sentences:
        raise GenerationError(f"the LLM's answer has no sentence: {raw[:200]!r}")
    return Completion(raw, tuple(GeneratedSentence(t, tuple(dict.fromkeys(c))) for t, c in sentences), False)


def not_answered(text: str) -> bool:
    """Whether the model said the documents do not answer (``NOT_IN_DOCUMENTS``, spaced or not)."""
    return NOT_ANSWERED in text.replace(" ", "_").upper()


def _sentences(text: str) -> list[tuple[str, list[int]]]:
    """The text's sentences (without their markers) and the citations each ends with."""
    pieces = [text[s:e] for s, e in split_sentences(text)]
    sentences: list[tuple[str, list[int]]] = []
    for piece in pieces:
        lead = _LEADING_CITATIONS.match(piece)
        if lead and sentences:
            sentences[-1][1].extend(n for g in _CITATION.findall(lead.group()) for n in _numbers(g))
            piece = piece[lead.end() :]
        cites = [n for g in _CITATION.findall(piece) for n in _numbers(g)]
        body = _SPACE.sub(" ", _CITATION.sub("", piece)).strip()
        if re.search(r"\w", body):
            sentences.append((body, cites))
        elif sentences:  # markers alone (after a split): the sentence before
            sentences[-1][1].extend(cites)
    return sentences


def complete_sentences(text: str) -> list[GeneratedSentence]:
    """The sentences of a completion still being written that are complete: every one but the last, which
    may go on (a sentence is complete once the next one has begun; its citations, written before the next
    sentence's words, are all there)."""
    return [GeneratedSentence(t, tuple(dict.fromkeys(c))) for t, c in _sentences(text.strip())[:-1]]


def chat_url(base: str) -> str:
    """``<base>/v1/chat/completions``; a base that already ends in ``/v1`` is taken as it is."""
    base = base.rstrip("/")
    return f"{base}/chat/completions" if base.endswith("/v1") else f"{base}/v1/chat/completions"


class LLMClient:
    """One HTTP connection pool to an OpenAI-compatible server; thread-safe (httpx.Client)."""

    def __init__(
        self,
        url: str,
        *,
        model: str = "default",
        api_key: str | None = None,
        timeout: float = 30.0,
        max_tokens: int = 512,
        temperature: float = 0.0,
    ) -> None:
        self.url = chat_url(url)
        self.model = model
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.temperature = temperature
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(timeout=httpx.Timeout(timeout), headers=headers)

    def close(self) -> None:
        self._http.close()

    def _body(self, messages: list[dict[str, str]], stream: bool) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stream": stream,
        }

    def complete(self, messages: list[dict[str, str]]) -> str:
        """One non-streamed completion's text, within ``timeout`` seconds in all."""
        return "".join(self._chunks(messages, stream=False))

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """The completion's text as the server streams it (server-sent events), within ``timeout`` in all."""
        return self._chunks(messages, stream=True)

    def _chunks(self, messages: list[dict[str, str]], *, stream: bool) -> Iterator[str]:
        deadline = time.monotonic() + self.timeout
        try:
            with self._http.stream("POST", self.url, json=self._body(messages, stream)) as response:
                if response.status_code != 200:
                    detail = response.read()[:200].decode("utf-8", "replace")
                    raise GenerationError(f"the LLM server answered HTTP {response.status_code}: {detail}")
                if stream and "text/event-stream" in response.headers.get("content-type", ""):
                    yield from _events(response, deadline, self.timeout)
                    return
                body = bytearray()
                for chunk in response.iter_bytes():
                    _check_deadline(deadline, self.timeout)
                    body += chunk
                yield _message_text(bytes(body))
        except httpx.TimeoutException as exc:
            raise GenerationError(f"the LLM server did not answer within {self.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise GenerationError(f"the LLM server cannot be reached at {self.url}: {exc}") from exc


def _check_deadline(deadline: float, timeout: float) -> None:
    if time.monotonic() > deadline:
        raise GenerationError(f"the LLM server did not finish within {timeout:g} s")


def _message_text(body: bytes) -> str:
    """The text of a non-streamed chat completion (``choices[0].message.content``)."""
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise GenerationError(f"the LLM server's reply is not a chat completion: {body[:200]!r}") from exc
    if not isinstance(content, str):
        raise GenerationError("the LLM server's reply holds no text")
    return content


def _events(response: httpx.Response, deadline: float, timeout: float) -> Iterator[str]:
    """The text deltas of a streamed chat completion (``data: {...}`` lines, ``data: [DONE]`` last); a
    stream cut before a ``finish_reason`` or ``[DONE]`` is a fault (the answer may be cut short)."""
    done = False
    for line in response.iter_lines():
        _check_deadline(deadline, timeout)
        if not line.startswith("data:"):
            continue  # comments, event names, ids, blank separators
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            break
        try:
            choice = json.loads(data)["choices"][0]
            delta = choice.get("delta", {}).get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise GenerationError(f"the LLM server streamed a malformed event: {data[:200]!r}") from exc
        if isinstance(delta, str) and delta:
            yield delta
        done = done or bool(choice.get("finish_reason"))
    if not done:
        raise GenerationError("the LLM server's stream ended before [DONE]")


# -- generating a guarded answer ----------------------------------------------------------------------


@lru_cache(maxsize=4)
def _client(
    url: str, model: str, api_key: str | None, timeout: float, max_tokens: int, temperature: float
) -> LLMClient:
    return LLMClient(
        url, model=model, api_key=api_key, timeout=timeout, max_tokens=max_tokens, temperature=temperature
    )


def llm_client(settings: Settings) -> LLMClient:
    """The process's client for the configured server (reloaded pipelines share its connections)."""
    if settings.llm_url is None:
        raise GenerationUnavailableError(
            "no LLM is configured: set CITEQA_LLM_URL to an OpenAI-compatible server to get generated answers"
        )
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return _client(
        settings.llm_url,
        settings.llm_model,
        key,
        settings.llm_timeout,
        settings.llm_max_tokens,
        settings.llm_temperature,
    )


@dataclass(frozen=True, slots=True)
class Generation:
    """A guarded generated answer, or why there is none (then the caller keeps the extractive answer)."""

    answer: Answer | None  # None: fall back
    kept: tuple[GuardedSentence, ...]
    dropped: tuple[DroppedSentence, ...]
    error: str | None  # a fault of the LLM (GenerationError's message)
    not_answered: bool  # the model said the documents do not answer
    timings_ms: dict[str, float]


class Generator:
    """The LLM client and the guard: one per pipeline."""

    def __init__(self, client: LLMClient, guard: Guard) -> None:
        self.client = client
        self.guard = guard

    def answer(self, question: str, hits: Sequence[Hit], extractive: Answer) -> Generation:
        """Ask the LLM about the passages ``hits`` (numbered by rank), keep what the guard supports."""
        t0 = time.perf_counter()
        try:
            raw = "".join(self.client.stream(build_messages(question, [h.passage.text for h in hits])))
            completion = parse_completion(raw)
        except GenerationError as exc:
            took = {"generate": (time.perf_counter() - t0) * 1000}
            return Generation(None, (), (), str(exc), False, took)
        t1 = time.perf_counter()
        passages = {i: GuardPassage(h.passage.text, h.passage.lang) for i, h in enumerate(hits, start=1)}
        try:
            verdict = self.guard.check(completion.sentences, passages)
        except Exception:  # never unguarded text, never a 5xx: the extractive answer
            log.exception("the generation guard failed")
            took = {"generate": (t1 - t0) * 1000}
            return Generation(None, (), (), "the grounding guard failed; see the server log", False, took)
        timings = {"generate": (t1 - t0) * 1000, "guard": (time.perf_counter() - t1) * 1000}
        if completion.not_answered or not verdict.kept:
            return Generation(None, (), verdict.dropped, None, completion.not_answered, timings)
        sentences = tuple(AnswerSentence(s.text, s.citations) for s in verdict.kept)
        answer = replace(
            extractive,
            text=join_with_citations(sentences),
            sentences=sentences,
            lang=question_lang(question),
        )
        return Generation(answer, verdict.kept, verdict.dropped, None, False, timings)

    def stream(
        self, question: str, hits: Sequence[Hit], extractive: Answer
    ) -> Iterator[StreamedSentence | Generation]:
        """``answer`` sentence by sentence: as the LLM's tokens arrive, each sentence is guarded as soon as
        it is complete and, if kept, yielded at once; the last item is the ``Generation``. Its answer is
        the kept sentences exactly as streamed (their ``text`` pieces concatenated), or None: the model
        said the documents do not answer, nothing was kept, or the LLM or the guard failed, possibly after
        sentences were yielded (then the caller withdraws them)."""
        t0 = time.perf_counter()
        passages = {i: GuardPassage(h.passage.text, h.passage.lang) for i, h in enumerate(hits, start=1)}
        kept: list[GuardedSentence] = []
        dropped: list[DroppedSentence] = []
        pieces: list[str] = []
        guard_s = 0.0
        first_ms: float | None = None
        checked = 0  # sentences of the completion guarded so far

        def timings() -> dict[str, float]:
            total = (time.perf_counter() - t0) * 1000
            out = {"generate": total - guard_s * 1000, "guard": guard_s * 1000}
            return out | ({"first_sentence": first_ms} if first_ms is not None else {})

        def fallback(error: str | None, said_not_answered: bool = False) -> Generation:
            return Generation(None, tuple(kept), tuple(dropped), error, said_not_answered, timings())

        def guard(sentences: Sequence[GeneratedSentence]) -> Iterator[StreamedSentence]:
            nonlocal guard_s, first_ms
            for s in sentences:
                t = time.perf_counter()
                verdict = self.guard.check([s], passages)
                guard_s += time.perf_counter() - t
                dropped.extend(verdict.dropped)
                for g in verdict.kept:
                    previous = AnswerSentence(kept[-1].text, kept[-1].citations) if kept else None
                    piece = streamed_piece(AnswerSentence(g.text, g.citations), previous)
                    kept.append(g)
                    pieces.append(piece)
                    if first_ms is None:
                        first_ms = (time.perf_counter() - t0) * 1000
                    yield StreamedSentence(g, piece)

        raw = ""
        try:
            for delta in self.client.stream(build_messages(question, [h.passage.text for h in hits])):
                raw += delta
                if not_answered(raw):
                    continue  # read to the end (a fault still counts), send nothing more
                done = complete_sentences(raw)
                if len(done) > checked:
                    yield from guard(done[checked:])
                    checked = len(done)
            completion = parse_completion(raw)
            if completion.not_answered:
                yield fallback(None, True)
                return
            yield from guard(completion.sentences[checked:])
        except GenerationError as exc:
            yield fallback(str(exc))
            return
        except Exception:  # never unguarded text, never a 5xx: the extractive answer
            log.exception("the generation guard failed")
            yield fallback("the grounding guard failed; see the server log")
            return
        if not kept:
            yield fallback(None)
            return
        sentences = tuple(AnswerSentence(s.text, s.citations) for s in kept)
        answer = replace(extractive, text="".join(pieces), sentences=sentences, lang=question_lang(question))
        yield Generation(answer, tuple(kept), tuple(dropped), None, False, timings())


@dataclass(frozen=True, slots=True)
class StreamedSentence:
    """A generated sentence the guard kept, and the piece of the answer text it adds (its markers, and a
    space before it when the answer's text needs one)."""

    sentence: GuardedSentence
    text: str

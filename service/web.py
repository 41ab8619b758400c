"""The chat page: ``GET /``, its static files, its example questions ``GET /api/examples``, the offline API
docs ``/docs``, and the streaming answer ``POST /api/ask/stream``.

The stream is a text/event-stream of

    event: passages   data: {"passages": [PassageOut, ...]}
    event: delta      data: {"text": "..."}        (repeated; the deltas concatenate to ``answer.text``)
    event: reset      data: {"reason": ..., "detail": ...}   (rare: withdraw the deltas sent so far)
    event: done       data: AskResponse            (what ``POST /api/ask`` returns; it is what stands)
    event: error      data: {"error": ..., "detail": ...}   (only if something fails mid-stream)

The question is validated and answered extractively *before* the response starts, so a bad question gets
the app's ordinary JSON 4xx error rather than a 200 stream. The extractive answerer produces the whole
answer at once; the deltas replay it sentence by sentence (long sentences in a few chunks) so the page can
show it progressively, with no artificial delay.

A generated answer (``answer_mode``) is streamed sentence by sentence as the LLM writes it: each sentence
is guarded as soon as it is complete (the next one has begun, or the completion ended) and a kept one is
sent at once, as one delta with its ``[n]`` markers; a dropped one is never sent, only listed in ``done``'s
``dropped``. The LLM's tokens themselves are never forwarded. If the answer that stands is not the one the
deltas spelled (the LLM failed, ``reason`` ``generation_error``, or said ``NOT_IN_DOCUMENTS``, reason
``not_in_documents``, after sentences had been sent), a ``reset`` event withdraws them and the fallback
answer follows in deltas; so the deltas after the last ``reset`` always concatenate to ``done``'s
``answer.text``, and a client that ignores ``reset`` still gets the right answer in ``done``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from service.deps import PipelineDep, require_json
from service.examples import ExampleCache
from service.generate import StreamedSentence
from service.pipeline import AskResult
from service.schemas import AskRequest, AskResponse, ErrorResponse, ExampleOut, ExamplesResponse
from service.views import ask_response

log = logging.getLogger("citeqa")

STATIC_DIR = Path(__file__).with_name("static")
CHUNK_CHARS = 40
# Where a long sentence may be cut: after clause punctuation or a space.
SOFT_BREAK = re.compile(r"(?<=[，、；：,;:\s])")


router = APIRouter()


@router.get("/", include_in_schema=False)
async def index_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


_examples_lock = threading.Lock()


def get_examples(request: Request) -> ExampleCache:
    """The app's example cache, made on first use."""
    with _examples_lock:
        cache: ExampleCache | None = getattr(request.app.state, "examples", None)
        if cache is None:
            cache = request.app.state.examples = ExampleCache()
    return cache


@router.get("/api/examples", response_model=ExamplesResponse)
async def examples(
    pipeline: PipelineDep, cache: Annotated[ExampleCache, Depends(get_examples)]
) -> ExamplesResponse:
    """Example questions for the chat page, made from the served documents' titles and section headings
    and kept only if CiteQA answers them (grounded, citing the document they came from); possibly none.
    Computed once per index generation: the first request after a change waits for them."""
    generation, found = await run_in_threadpool(cache.get, pipeline)
    return ExamplesResponse(
        examples=[
            ExampleOut(
                question=e.question,
                lang=e.lang,
                document_id=e.document_id,
                title=e.title,
                section=list(e.section),
            )
            for e in found
        ],
        generation=generation,
    )


def mount_static(app: FastAPI) -> None:
    """Serve ``service/static`` under ``/static`` (a router cannot mount, so the app factory calls this),
    and the API docs at ``/docs`` from a local copy of Swagger UI, so that they work offline: FastAPI's own
    page loads Swagger UI from a CDN. The copy is the one the fastapi-offline package ships (Swagger UI 5);
    swagger-ui-bundle's (Swagger UI 4.15) cannot read FastAPI's OpenAPI 3.1 ("Unable to render this
    definition")."""
    from importlib.resources import as_file, files

    with as_file(files("fastapi_offline") / "static") as docs_assets:  # a plain folder once installed
        app.mount("/static/docs", StaticFiles(directory=docs_assets), name="docs-assets")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/docs", include_in_schema=False)
    async def docs_page() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/static/docs/swagger-ui-bundle.js",
            swagger_css_url="/static/docs/swagger-ui.css",
            swagger_favicon_url="/static/docs/favicon.png",
        )


def chunks(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """Cut ``text`` into pieces of at most ``size`` characters, preferring soft breaks.

    The pieces concatenate to ``text``.
    """
    pieces: list[str] = []
    rest = text
    while len(rest) > size:
        breaks = [m.start() for m in SOFT_BREAK.finditer(rest, size // 2, size + 1) if m.start() > 0]
        cut = breaks[-1] if breaks else size
        pieces.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        pieces.append(rest)
    return pieces


def answer_deltas(response: AskResponse, size: int = CHUNK_CHARS) -> list[str]:
    """``answer.text`` split at its sentences (each keeping its [n] markers), long ones in chunks.

    The pieces always concatenate to ``answer.text``; if a sentence cannot be found in the text, the
    rest of it is simply chunked.
    """
    text = response.answer.text
    starts = [0]
    at = 0
    for sentence in response.answer.sentences:
        found = text.find(sentence.text, at) if sentence.text else -1
        if found < 0:
            break
        if found > 0:
            starts.append(found)
        at = found + len(sentence.text)
    bounds = sorted(set(starts)) + [len(text)]
    return [piece for a, b in zip(bounds, bounds[1:], strict=False) for piece in chunks(text[a:b], size)]


def sse(event: str, data: Any) -> str:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n"


def answer_events(response: AskResponse) -> AsyncIterator[str]:
    """The events of a response that is complete: its passages, its answer in deltas, the response."""
    return stream_events(response, iter([response]))


async def stream_events(
    first: AskResponse, rest: Iterator[StreamedSentence | AskResponse]
) -> AsyncIterator[str]:
    """The passages of ``first`` (the extractive result), then a ``delta`` per item of ``rest`` that is a
    sentence (a generated sentence the guard kept, sent as soon as it is), then the final response: its
    answer in deltas if none were sent, or, when the sentences sent are not its answer (the LLM failed or
    said the documents do not answer after some had been sent), a ``reset`` event and then its answer in
    deltas; last ``done``. So the deltas after the last ``reset`` always concatenate to ``answer.text``.
    ``rest`` is read in the thread pool (it waits on the LLM)."""
    try:
        passages = [p.model_dump(mode="json") for p in first.passages]
        yield sse("passages", {"passages": passages})
        sent: list[str] = []
        async for item in iterate_in_threadpool(rest):
            if isinstance(item, StreamedSentence):
                sent.append(item.text)
                yield sse("delta", {"text": item.text})
                continue
            if sent and "".join(sent) != item.answer.text:
                reason = "generation_error" if item.generation_error else "not_in_documents"
                yield sse("reset", {"reason": reason, "detail": item.generation_error})
                sent = []
            if not sent:
                for piece in answer_deltas(item):
                    await asyncio.sleep(0)  # let the server flush and serve others; no artificial delay
                    yield sse("delta", {"text": piece})
            yield sse("done", item.model_dump(mode="json"))
    except Exception:  # the status line has gone out: report in-band, never a traceback
        log.exception("the answer stream failed")
        yield sse(
            "error", {"error": "internal_error", "detail": "the answer stream failed; see the server log"}
        )


def _responses(items: Iterator[StreamedSentence | AskResult]) -> Iterator[StreamedSentence | AskResponse]:
    for item in items:
        yield ask_response(item) if isinstance(item, AskResult) else item


@router.post(
    "/api/ask/stream",
    response_class=StreamingResponse,
    dependencies=[Depends(require_json)],
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "passages, delta…, (reset,) done events"},
        **{code: {"model": ErrorResponse} for code in (400, 415, 422)},
    },
)
async def ask_stream(body: AskRequest, pipeline: PipelineDep) -> StreamingResponse:
    """``/api/ask`` as server-sent events: the passages, the answer progressively, then the whole response."""
    # Run (and so validate) before streaming: errors become the app's JSON 4xx/5xx responses.
    result, rest = await run_in_threadpool(
        pipeline.ask_streamed, body.question, body.top_k, answer_mode=body.answer_mode
    )
    return StreamingResponse(
        stream_events(ask_response(result), _responses(rest)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

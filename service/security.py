"""Request hardening as plain ASGI middleware: an optional API key and a request-body size limit.

Both answer with the app's JSON error shape ``{"error": ..., "detail": ...}`` and act *before* the
route runs, so an oversized, too-deeply nested or unauthenticated body is never parsed.

The body limit reads the body into memory (it is at most ``max_body_bytes``), counting the streamed
chunks, so a chunked upload without ``Content-Length`` is bounded too; the route then receives the
buffered body. A ``Content-Length`` over the limit is refused without reading anything.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable

from fastapi import FastAPI, HTTPException
from python_multipart.multipart import parse_options_header
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.settings import Settings

# The request schemas are flat objects; anything nested deeper than this is not a CiteQA request,
# and refusing it up front keeps the JSON decoder away from its recursion limit.
MAX_JSON_DEPTH = 32
PUBLIC_PATHS = frozenset({"/", "/healthz"})
PUBLIC_PREFIXES = ("/static/",)


async def send_error(
    send: Send, status: int, code: str, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps({"error": code, "detail": detail}, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when the brackets of ``body`` (outside strings) nest deeper than ``limit``.

    A linear scan, not a parse: malformed JSON is left for the real parser to report.
    """
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


class BodySizeLimit:
    """Refuse bodies over ``max_bytes`` (413) and JSON nested deeper than ``MAX_JSON_DEPTH`` (400).

    Uploads (POST/PUT under ``/api/documents``) have their own, larger limit, ``upload_bytes``: their body
    is streamed to the route (the multipart parser spools files to disk), counting as it goes, and a body
    that passes the limit ends with a 413 at that point. A multipart body that ends without its closing
    boundary (a cut-short upload) ends with a 400: the parser would drop its unfinished part without a word,
    and the route would report the field it held as missing.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, upload_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes if upload_bytes is not None else max_bytes

    def _too_large(
        self, size: int | str, limit: int | None = None, setting: str = "CITEQA_MAX_BODY_BYTES"
    ) -> str:
        return f"the request body is {size} bytes; the limit is {limit or self.max_bytes} ({setting})"

    @staticmethod
    def is_upload(scope: Scope) -> bool:
        path: str = scope["path"]
        return scope["method"] in ("POST", "PUT") and (
            path == "/api/documents" or path.startswith("/api/documents/")
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = self.is_upload(scope)
        limit = self.upload_bytes if upload else self.max_bytes
        setting = "CITEQA_MAX_UPLOAD_REQUEST_BYTES" if upload else "CITEQA_MAX_BODY_BYTES"
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await send_error(send, 400, "bad_request", "the Content-Length header is not a number")
                return
            if length > limit:
                await send_error(send, 413, "body_too_large", self._too_large(length, limit, setting))
                return
        if upload:
            await self._stream(scope, receive, send, limit, setting)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await send_error(send, 413, "body_too_large", self._too_large(f"more than {self.max_bytes}"))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        ctype = (_header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
        if ctype == b"application/json" and json_depth_exceeds(body):
            await send_error(
                send,
                400,
                "json_too_deep",
                f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels; send a flat request object",
            )
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: disconnect notices, as usual

        await self.app(scope, replay, send)

    async def _stream(self, scope: Scope, receive: Receive, send: Send, limit: int, setting: str) -> None:
        """Pass the body through, counting; over ``limit``, stop reading and answer 413; at the end of a
        multipart body that never closed, answer 400."""
        size = 0
        close = close_delimiter(scope)
        closed = close is None
        tail = b"\r\n"  # the last bytes seen: the delimiter may span two chunks (or open a body of no parts)

        async def counted() -> Message:
            nonlocal size, closed, tail
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                size += len(chunk)
                # FastAPI passes an HTTPException raised while it reads the body on to the app's handler
                # (any other exception there becomes a 400), which answers with the JSON error.
                if size > limit:
                    raise HTTPException(413, self._too_large(f"more than {limit}", limit, setting))
                if close is not None and not closed:
                    keep = len(close) - 1
                    closed = close in tail + chunk[: len(close)] or close in chunk
                    tail = (tail + chunk)[-keep:] if len(chunk) < keep else chunk[-keep:]
                    if not closed and not message.get("more_body", False):
                        raise HTTPException(
                            400,
                            "the multipart body ends before its closing boundary "
                            f"({close.strip().decode('latin-1')}): the upload was cut short; send it again",
                        )
            return message

        await self.app(scope, counted, send)


def close_delimiter(scope: Scope) -> bytes | None:
    """The bytes that close a multipart/form-data body (``CRLF--boundary--``, RFC 2046), or None for another
    body or a multipart one without a boundary (the parser refuses that one itself)."""
    ctype, params = parse_options_header(_header(scope, b"content-type"))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        return None
    return b"\r\n--" + boundary + b"--"


class ApiKeyGuard:
    """With a key configured, every route but the health check, the chat page and its static files
    needs ``X-API-Key: <key>`` or ``Authorization: Bearer <key>`` (compared in constant time)."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.key = api_key.encode()

    @staticmethod
    def is_public(path: str) -> bool:
        return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)

    def presented(self, scope: Scope) -> bytes | None:
        key = _header(scope, b"x-api-key")
        if key is not None:
            return key.strip()
        auth = _header(scope, b"authorization")
        if auth is not None:
            scheme, _, token = auth.strip().partition(b" ")
            if scheme.lower() == b"bearer":
                return token.strip()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        key = self.presented(scope)
        if key is None or not hmac.compare_digest(key, self.key):
            detail = (
                "this server needs an API key: send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`"
                if key is None
                else "the API key is not valid"
            )
            await send_error(send, 401, "unauthorized", detail, [(b"www-authenticate", b"Bearer")])
            return
        await self.app(scope, receive, send)


def install_security(app: FastAPI, settings: Settings) -> None:
    """Add the middleware to the app; the key check runs first (the last added is outermost)."""
    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_body_bytes, upload_bytes=settings.max_upload_request_bytes
    )
    if settings.api_key is not None:
        app.add_middleware(ApiKeyGuard, api_key=settings.api_key)

"""A scripted OpenAI-compatible chat server for the tests: real HTTP on 127.0.0.1 (a free port), answering
each ``POST /v1/chat/completions`` with the next prepared reply: a completion (streamed as server-sent
events when the request says ``"stream": true``, else one JSON body), an error status, a raw body, or a
stream cut short; optionally after a delay, and streamed slowly (a delay between chunks). Every request
body is recorded, with the times each request arrived and each streamed reply was finished."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Generated sentences about the seed's Hema passage, citing it as [1]: faithful, with a made-up number, and
# another faithful one.
FAITHFUL = "盒马在7000个社区免费提供了45万件蔬菜、粮油等生活日用品[1]。"
MADE_UP = "盒马还在7000个社区免费提供了90万件生活日用品[1]。"  # a number the passage does not state
SECOND = "2021年夏天，河南遭遇罕见特大暴雨[1]。"


@dataclass(frozen=True, slots=True)
class Reply:
    content: str = ""
    status: int = 200
    delay: float = 0.0  # seconds before the status line
    raw: bytes | None = None  # a body sent as it is (application/json), instead of a completion
    cut: bool = False  # stream: stop before the finish_reason and [DONE]
    chunk_chars: int = 6
    chunk_delay: float = 0.0  # stream: seconds before each chunk after the first (a slow model)


class ScriptedLLM:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.received_at: list[float] = []  # time.monotonic() when each request arrived
        self.finished_at: list[float] = []  # time.monotonic() when each streamed reply had been written
        self._lock = threading.Lock()
        handler = _handler(self)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True  # a slow reply never holds up shutdown
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ScriptedLLM:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.clear()
            self.replies.extend(replies)
            self.requests.clear()
            self.received_at.clear()
            self.finished_at.clear()

    def next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.received_at.append(time.monotonic())
            if self.replies:
                return self.replies.popleft()
            return Reply(status=500, raw=b'{"error":"unscripted"}')


def _handler(llm: ScriptedLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path != "/v1/chat/completions":
                self._send(404, b'{"error":"not found"}', "application/json")
                return
            reply = llm.next_reply(body)
            if reply.delay:
                time.sleep(reply.delay)
            if reply.status != 200 or reply.raw is not None:
                self._send(reply.status, reply.raw or b'{"error":"scripted failure"}', "application/json")
                return
            if not body.get("stream"):
                message = {"role": "assistant", "content": reply.content}
                message = {"choices": [{"index": 0, "message": message}]}
                self._send(200, json.dumps(message).encode(), "application/json")
                return
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("connection", "close")
            self.end_headers()
            text = reply.content
            for i in range(0, len(text), reply.chunk_chars):
                if i and reply.chunk_delay:
                    time.sleep(reply.chunk_delay)
                delta = {"choices": [{"index": 0, "delta": {"content": text[i : i + reply.chunk_chars]}}]}
                self.wfile.write(f"data: {json.dumps(delta, ensure_ascii=False)}\n\n".encode())
                self.wfile.flush()
            if not reply.cut:
                end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            self.wfile.flush()
            llm.finished_at.append(time.monotonic())
            self.close_connection = True

        def _send(self, status: int, payload: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler

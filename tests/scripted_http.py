"""A real HTTP server on 127.0.0.1 that answers from a script: statuses, bodies, headers, delays,
or a dropped connection. For testing the HTTP client side of a model backend at the socket level."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inference_app.llm.openai_backend import OpenAIBackend


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes -> sent as is
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering
    drop: bool = False  # close the connection without answering


@dataclass(frozen=True)
class Received:
    path: str
    headers: Mapping[str, str]
    body: Any
    at: float  # time.monotonic() when the request arrived


def completion(
    content: str, *, prompt_tokens: int = 42, completion_tokens: int = 7, model: str = "m"
) -> Reply:
    """A 200 chat completion as vLLM sends it."""
    return Reply(
        body={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


class ScriptedServer:
    """Answers each POST with the next scripted reply (500 once the script runs out)."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.received: list[Received] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw
                reply = server._next(Received(self.path, dict(self.headers), body, time.monotonic()))
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    return
                payload = reply.body
                if isinstance(payload, dict | list):
                    data = json.dumps(payload).encode()
                    content_type = "application/json"
                else:
                    data = payload.encode() if isinstance(payload, str) else (payload or b"")
                    content_type = "text/plain"
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def _next(self, request: Received) -> Reply:
        with self._lock:
            self.received.append(request)
            if self.replies:
                return self.replies.pop(0)
        return Reply(status=500, body={"message": "the test script ran out of replies"})

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()


def scripted_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer().start()
    try:
        yield server
    finally:
        server.stop()


def openai_backend(server: ScriptedServer, **overrides: Any) -> OpenAIBackend:
    """The OpenAI-compatible backend pointed at ``server``: no retries, a breaker that never opens."""
    from inference_app.llm.circuit import CircuitBreaker
    from inference_app.llm.openai_backend import OpenAIBackend

    options: dict[str, Any] = {
        "base_url": server.base_url,
        "model": "m",
        "timeout": 5,
        "max_retries": 0,
        "breaker": CircuitBreaker(failure_threshold=100),
    }
    options.update(overrides)
    return OpenAIBackend(**options)

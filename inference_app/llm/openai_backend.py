"""The ``openai`` backend: any OpenAI-compatible chat server, first of all vLLM.

One call is ``POST {base_url}/chat/completions`` with ``response_format`` json_schema (strict), so
the server constrains the output to the schema (vLLM's structured output; its old ``guided_*``
fields are gone). Transient failures (connection refused or reset, timeouts, 408, 429, 5xx) are
retried a bounded number of times with exponential backoff and jitter, honouring ``Retry-After``
(capped). Every attempt reports to a circuit breaker shared per (base_url, model) in the process:
once it opens, calls fail fast with ModelUnavailable instead of waiting on a dead server.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from inference_app.llm.circuit import CircuitBreaker, shared_breaker
from inference_app.llm.types import (
    ChatResult,
    Message,
    ModelRequestRejected,
    ModelResponseInvalid,
    ModelUnavailable,
)

logger = logging.getLogger(__name__)

# Statuses worth another try: the server is busy, restarting or overloaded, not refusing the request.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Transport errors worth another try: refused, reset, timed out. (A malformed URL is not.)
TRANSIENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
)
MAX_REASON_CHARS = 500
MAX_RAW_CHARS = 4000


class OpenAIBackend:
    """A chat model behind an OpenAI-compatible ``/chat/completions`` endpoint (see ChatBackend)."""

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = "",
        timeout: float = 30.0,
        max_retries: int = 2,
        breaker: CircuitBreaker | None = None,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        retry_after_cap: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_retries = max_retries
        self.breaker = breaker if breaker is not None else shared_breaker(self.base_url, model)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.retry_after_cap = retry_after_cap
        self._sleep = sleep
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # Connecting to a live server on the network takes milliseconds: don't wait the whole read
        # timeout for one that is gone.
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self._client_lock = threading.Lock()
        self._client_pid = 0
        self._client: httpx.Client | None = None

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None and self._client_pid == os.getpid():
                self._client.close()
            self._client = None

    def _http(self) -> httpx.Client:
        """This process's HTTP client (thread-safe, pooled). A forked worker (Celery prefork) makes its
        own instead of sharing the parent's open connections."""
        client = self._client
        if client is not None and self._client_pid == os.getpid():
            return client
        with self._client_lock:
            if self._client is None or self._client_pid != os.getpid():
                self._client = httpx.Client(
                    base_url=self.base_url, headers=self._headers, timeout=self._timeout
                )
                self._client_pid = os.getpid()
            return self._client

    def chat_json(
        self,
        *,
        messages: Sequence[Message],
        schema: Mapping[str, Any],
        max_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> ChatResult:
        """Complete ``messages`` as JSON matching ``schema``. ``latency_ms`` covers retries too.

        Raises ModelUnavailable (unreachable, kept failing, or circuit open), ModelRequestRejected
        (a 4xx other than 408/429, with the server's reason) or ModelResponseInvalid (not JSON).
        """
        payload = self._payload(messages, schema, max_tokens, temperature, seed)
        started = time.perf_counter()
        attempt = 0
        while True:
            if not self.breaker.allow():
                raise ModelUnavailable(
                    f"circuit open for {self.model} at {self.base_url}: the server kept failing; "
                    f"next probe in {self.breaker.retry_in():.1f} s"
                )
            response, failure, retry_after = self._attempt(payload)
            if response is not None:
                return self._result(response, started)
            if attempt >= self.max_retries:
                tries = f"{attempt + 1} attempt{'s' if attempt else ''}"
                raise ModelUnavailable(f"{self.model} at {self.base_url}: {failure} ({tries})")
            delay = self._delay(attempt, retry_after)
            logger.warning("%s at %s: %s; retrying in %.2f s", self.model, self.base_url, failure, delay)
            self._sleep(delay)
            attempt += 1

    def _attempt(self, payload: dict[str, Any]) -> tuple[httpx.Response | None, str, float | None]:
        """One POST, reported to the breaker. Returns (the response, "", None) when the server dealt
        with the request, else (None, why it failed transiently, the server's Retry-After or None)."""
        try:
            response = self._http().post("/chat/completions", json=payload)
        except TRANSIENT_ERRORS as exc:
            self.breaker.record_failure()
            return None, f"{type(exc).__name__}: {exc or 'no detail'}", None
        except httpx.HTTPError as exc:
            self.breaker.record_failure()
            raise ModelUnavailable(f"{self.model} at {self.base_url}: {type(exc).__name__}: {exc}") from exc
        except BaseException:
            # Interrupted (a task time limit, a signal): still settle a half-open probe.
            self.breaker.record_failure()
            raise
        if response.status_code in TRANSIENT_STATUSES:
            self.breaker.record_failure()
            reason = _server_reason(response)
            return None, f"HTTP {response.status_code}: {reason}", _retry_after(response)
        # The server is alive and answered this request: a refusal or bad output is not an outage.
        self.breaker.record_success()
        return response, "", None

    def _payload(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any],
        max_tokens: int,
        temperature: float,
        seed: int | None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(message) for message in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": _schema_name(schema), "schema": dict(schema), "strict": True},
            },
        }
        if seed is not None:
            payload["seed"] = seed
        return payload

    def _result(self, response: httpx.Response, started: float) -> ChatResult:
        if response.status_code >= 400:
            raise ModelRequestRejected(
                f"{self.model} at {self.base_url} refused the request: HTTP {response.status_code}: "
                f"{_server_reason(response)}"
            )
        try:
            body = response.json()
            choice = body["choices"][0]
            content = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ModelResponseInvalid(
                f"{self.model} at {self.base_url} answered HTTP {response.status_code} without a chat "
                "completion in the body",
                raw=response.text[:MAX_RAW_CHARS],
            ) from None
        if not isinstance(content, str):
            raise ModelResponseInvalid(f"{self.model} returned no text content", raw=repr(content))
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
        latency_ms = (time.perf_counter() - started) * 1000
        try:
            json.loads(content)
        except ValueError as exc:
            finish = choice.get("finish_reason")
            hint = " (cut off at max_tokens)" if finish == "length" else ""
            raise ModelResponseInvalid(
                f"{self.model} returned content that is not JSON{hint}: {exc}", raw=content[:MAX_RAW_CHARS]
            ).with_usage(
                latency_ms=latency_ms, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
            ) from None
        return ChatResult(
            content=content,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=latency_ms,
            backend=self.name,
            model=str(body.get("model") or self.model),
        )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter, or the server's Retry-After (capped), whichever is longer."""
        backoff = min(self.backoff_cap, self.backoff_base * 2.0**attempt)
        delay = backoff * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.retry_after_cap))
        return delay


def _schema_name(schema: Mapping[str, Any]) -> str:
    """The schema's name as the API wants it (letters, digits, _ and -, at most 64)."""
    title = str(schema.get("title") or "response")
    return re.sub(r"[^A-Za-z0-9_-]+", "_", title)[:64] or "response"


def _server_reason(response: httpx.Response) -> str:
    """The error message the server gave: OpenAI's {"error": {"message"}}, vLLM's {"message"},
    FastAPI's {"detail"}, or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    reason: object = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            reason = error.get("message")
        elif isinstance(error, str):
            reason = error
        reason = reason or body.get("message") or body.get("detail")
    text = str(reason) if reason else (response.text.strip() or response.reason_phrase)
    return text[:MAX_REASON_CHARS]


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())

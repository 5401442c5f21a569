"""The openai backend against a real HTTP server on 127.0.0.1 that answers from a script.

Retries, Retry-After, timeouts, refusals and bad output at the socket level. The same backend
against the real vLLM server is in tests/test_llm_vllm.py.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from inference_app.llm.circuit import CircuitBreaker, CircuitState
from inference_app.llm.openai_backend import OpenAIBackend
from inference_app.llm.types import (
    ChatBackend,
    ModelRequestRejected,
    ModelResponseInvalid,
    ModelUnavailable,
)
from tests.scripted_http import Reply, ScriptedServer, completion, openai_backend, scripted_server

SCHEMA = {
    "title": "ticket decision",
    "type": "object",
    "properties": {"category": {"type": "string", "enum": ["billing", "login"]}},
    "required": ["category"],
    "additionalProperties": False,
}
MESSAGES = [{"role": "system", "content": "Classify."}, {"role": "user", "content": "I can't log in"}]
ANSWER = '{"category": "login"}'


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    yield from scripted_server()


def make_backend(server: ScriptedServer, **overrides: object) -> OpenAIBackend:
    """:func:`openai_backend` with two quick retries (the retry tests' default)."""
    return openai_backend(server, **{"max_retries": 2, "backoff_base": 0.01, **overrides})


def call(backend: OpenAIBackend, **overrides: object) -> object:
    options: dict[str, object] = {"messages": MESSAGES, "schema": SCHEMA, "max_tokens": 32}
    options.update(overrides)
    return backend.chat_json(**options)  # type: ignore[arg-type]


def test_a_call_sends_the_schema_and_reads_content_and_token_counts(server: ScriptedServer) -> None:
    server.script(completion(ANSWER, prompt_tokens=120, completion_tokens=9, model="served-name"))
    backend: ChatBackend = make_backend(server, api_key="sk-test")

    result = backend.chat_json(messages=MESSAGES, schema=SCHEMA, max_tokens=32, temperature=0.2, seed=7)

    assert json.loads(result.content) == {"category": "login"}
    assert (result.prompt_tokens, result.completion_tokens) == (120, 9)
    assert (result.backend, result.model) == ("openai", "served-name")
    assert result.latency_ms > 0
    [request] = server.received
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-test"
    assert request.body["model"] == "m"
    assert request.body["messages"] == MESSAGES
    assert (request.body["max_tokens"], request.body["temperature"], request.body["seed"]) == (32, 0.2, 7)
    assert request.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "ticket_decision", "schema": SCHEMA, "strict": True},
    }


def test_no_seed_and_no_key_send_neither(server: ScriptedServer) -> None:
    server.script(completion(ANSWER))
    call(make_backend(server))
    [request] = server.received
    assert "seed" not in request.body
    assert "Authorization" not in request.headers


def test_503_is_retried_then_succeeds(server: ScriptedServer) -> None:
    busy = Reply(status=503, body={"object": "error", "message": "engine is restarting"})
    server.script(busy, busy, completion(ANSWER))
    result = call(make_backend(server, max_retries=2))
    assert len(server.received) == 3
    assert result.content == ANSWER  # type: ignore[attr-defined]


def test_retries_are_bounded_and_the_last_reason_is_reported(server: ScriptedServer) -> None:
    busy = Reply(status=503, body={"object": "error", "message": "engine is restarting"})
    server.script(*[busy] * 5)
    with pytest.raises(ModelUnavailable, match=r"HTTP 503: engine is restarting \(3 attempts\)"):
        call(make_backend(server, max_retries=2))
    assert len(server.received) == 3


def test_backoff_grows_exponentially(server: ScriptedServer) -> None:
    busy = Reply(status=502, body="bad gateway")
    server.script(busy, busy, busy, completion(ANSWER))
    call(make_backend(server, max_retries=3, backoff_base=0.2))
    gaps = [
        later.at - earlier.at for earlier, later in zip(server.received, server.received[1:], strict=False)
    ]
    # base * 2**attempt, jittered down to no less than half: >= 0.1, 0.2, 0.4 s
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and gaps[2] >= 0.4, gaps
    assert gaps[2] < 1.5, gaps


def test_429_waits_for_retry_after(server: ScriptedServer) -> None:
    server.script(Reply(status=429, body={"message": "slow down"}, headers={"Retry-After": "1"}))
    server.script(completion(ANSWER))
    call(make_backend(server, backoff_base=0.01))
    first, second = server.received
    assert second.at - first.at >= 0.95


def test_retry_after_as_http_date(server: ScriptedServer) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    server.script(Reply(status=429, headers={"Retry-After": when}), completion(ANSWER))
    call(make_backend(server, backoff_base=0.01))
    first, second = server.received
    assert second.at - first.at >= 0.9  # the date has one-second resolution


def test_a_long_retry_after_is_capped(server: ScriptedServer) -> None:
    server.script(Reply(status=429, headers={"Retry-After": "3600"}), completion(ANSWER))
    started = time.monotonic()
    call(make_backend(server, retry_after_cap=0.3))
    assert 0.29 <= time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (
            400,
            {"object": "error", "message": "max_tokens is too large", "code": 400},
            "max_tokens is too large",
        ),
        (404, {"error": {"message": "The model `m` does not exist."}}, "The model `m` does not exist."),
        (422, {"detail": [{"msg": "field required"}]}, "field required"),
        (401, "Unauthorized", "Unauthorized"),
    ],
)
def test_other_4xx_is_rejected_at_once_with_the_servers_reason(
    server: ScriptedServer, status: int, body: object, reason: str
) -> None:
    breaker = CircuitBreaker(failure_threshold=1)
    server.script(Reply(status=status, body=body), completion(ANSWER))
    with pytest.raises(ModelRequestRejected, match=f"HTTP {status}") as caught:
        call(make_backend(server, breaker=breaker))
    assert reason in str(caught.value)
    assert len(server.received) == 1  # not retried
    # The server answered: a refusal is not an outage, so the circuit stays closed.
    assert breaker.state is CircuitState.CLOSED


def test_a_read_timeout_is_retried_then_reported(server: ScriptedServer) -> None:
    slow = Reply(delay=1.5, body=completion(ANSWER).body)
    server.script(slow, slow)
    started = time.monotonic()
    with pytest.raises(ModelUnavailable, match="ReadTimeout"):
        call(make_backend(server, timeout=0.3, max_retries=1))
    assert time.monotonic() - started < 1.4
    assert len(server.received) == 2


def test_a_slow_answer_within_the_timeout_is_fine(server: ScriptedServer) -> None:
    server.script(Reply(delay=0.3, body=completion(ANSWER).body))
    assert call(make_backend(server, timeout=2.0)).latency_ms >= 300  # type: ignore[attr-defined]


def test_a_dropped_connection_is_retried(server: ScriptedServer) -> None:
    server.script(Reply(drop=True), completion(ANSWER))
    assert call(make_backend(server)).content == ANSWER  # type: ignore[attr-defined]
    assert len(server.received) == 2


def test_connection_refused_is_unavailable_after_retries() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = OpenAIBackend(
        base_url=f"http://127.0.0.1:{port}/v1",
        model="m",
        max_retries=2,
        backoff_base=0.01,
        breaker=CircuitBreaker(failure_threshold=100),
    )
    started = time.monotonic()
    with pytest.raises(ModelUnavailable, match=r"ConnectError.*\(3 attempts\)"):
        call(backend)
    assert time.monotonic() - started < 2
    assert backend.breaker.consecutive_failures == 3


def test_content_that_is_not_json_is_invalid_with_the_raw_text(server: ScriptedServer) -> None:
    server.script(completion("Sure! The category is login."))
    with pytest.raises(ModelResponseInvalid, match="not JSON") as caught:
        call(make_backend(server))
    assert caught.value.raw == "Sure! The category is login."
    assert len(server.received) == 1


def test_json_cut_off_at_max_tokens_says_so(server: ScriptedServer) -> None:
    reply = completion('{"category": "lo')
    reply.body["choices"][0]["finish_reason"] = "length"
    server.script(reply)
    with pytest.raises(ModelResponseInvalid, match="cut off at max_tokens") as caught:
        call(make_backend(server))
    assert caught.value.raw == '{"category": "lo'


@pytest.mark.parametrize("body", ["<html>proxy page</html>", {"choices": []}, {"object": "list"}])
def test_a_200_without_a_completion_is_invalid(server: ScriptedServer, body: object) -> None:
    server.script(Reply(status=200, body=body))
    with pytest.raises(ModelResponseInvalid, match="without a chat completion") as caught:
        call(make_backend(server))
    assert caught.value.raw


def test_missing_usage_counts_zero_tokens(server: ScriptedServer) -> None:
    reply = completion(ANSWER)
    del reply.body["usage"]
    server.script(reply)
    result = call(make_backend(server))
    assert (result.prompt_tokens, result.completion_tokens) == (0, 0)  # type: ignore[attr-defined]


def test_a_forked_worker_opens_its_own_connections(server: ScriptedServer) -> None:
    server.script(completion(ANSWER), completion(ANSWER), completion(ANSWER))
    backend = make_backend(server)
    call(backend)  # the parent now holds a pooled keep-alive connection
    parent_client = backend._http()
    pid = os.fork()
    if pid == 0:  # a Celery prefork child: must not write into the parent's socket
        try:
            ok = backend._http() is not parent_client and call(backend).content == ANSWER  # type: ignore[attr-defined]
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert call(backend).content == ANSWER  # type: ignore[attr-defined]
    assert backend._http() is parent_client
    assert len(server.received) == 3


def test_bad_constructor_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        OpenAIBackend(base_url="http://127.0.0.1:1/v1", model="m", max_retries=-1)

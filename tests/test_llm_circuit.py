"""The circuit breaker alone (with a clock the test moves) and in the openai backend against a real
HTTP server: open after N failures, fail fast, one probe when half-open, closed again on success."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from inference_app.llm.circuit import CircuitBreaker, CircuitState, forget_shared_breakers, shared_breaker
from inference_app.llm.openai_backend import OpenAIBackend
from inference_app.llm.types import ModelRequestRejected, ModelUnavailable
from tests.scripted_http import Reply, ScriptedServer, completion, scripted_server

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
MESSAGES = [{"role": "user", "content": "ping"}]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    yield from scripted_server()


def state_of(circuit: CircuitBreaker) -> CircuitState:
    return circuit.state  # a call each time: the state changes between checks


def breaker(clock: Clock, threshold: int = 3, reset: float = 30.0) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=threshold, reset_timeout=reset, clock=clock, name="test")


def test_opens_after_consecutive_failures_only(clock: Clock) -> None:
    circuit = breaker(clock, threshold=3)
    circuit.record_failure()
    circuit.record_failure()
    circuit.record_success()  # the run of failures is broken
    circuit.record_failure()
    circuit.record_failure()
    assert state_of(circuit) is CircuitState.CLOSED and circuit.allow()
    circuit.record_failure()
    assert state_of(circuit) is CircuitState.OPEN
    assert not circuit.allow()
    assert circuit.retry_in() == pytest.approx(30.0)


def test_half_open_after_cool_down_lets_one_probe_through(clock: Clock) -> None:
    circuit = breaker(clock, threshold=1, reset=30)
    circuit.record_failure()
    clock.now += 29.9
    assert not circuit.allow()
    clock.now += 0.1
    assert state_of(circuit) is CircuitState.HALF_OPEN
    assert circuit.retry_in() == 0
    assert circuit.allow()  # the probe
    assert not circuit.allow()  # everyone else while it is out
    circuit.record_success()
    assert state_of(circuit) is CircuitState.CLOSED
    assert circuit.allow() and circuit.allow()


def test_a_failed_probe_opens_the_circuit_for_another_cool_down(clock: Clock) -> None:
    circuit = breaker(clock, threshold=2, reset=10)
    circuit.record_failure()
    circuit.record_failure()
    clock.now += 10
    assert circuit.allow()
    circuit.record_failure()
    assert state_of(circuit) is CircuitState.OPEN
    clock.now += 9
    assert not circuit.allow()
    clock.now += 1
    assert circuit.allow()


def test_a_probe_that_never_reports_is_given_up_after_a_cool_down(clock: Clock) -> None:
    circuit = breaker(clock, threshold=1, reset=10)
    circuit.record_failure()
    clock.now += 10
    assert circuit.allow()
    clock.now += 5
    assert not circuit.allow()
    clock.now += 5
    assert circuit.allow()


def test_exactly_one_of_many_threads_gets_the_probe(clock: Clock) -> None:
    circuit = breaker(clock, threshold=1, reset=1)
    circuit.record_failure()
    clock.now += 1
    start = threading.Barrier(16)
    allowed: list[bool] = []

    def ask() -> None:
        start.wait()
        allowed.append(circuit.allow())

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(allowed) == [False] * 15 + [True]


def test_failures_from_many_threads_are_all_counted(clock: Clock) -> None:
    circuit = breaker(clock, threshold=10_000)

    def fail_500_times() -> None:
        for _ in range(500):
            circuit.record_failure()

    threads = [threading.Thread(target=fail_500_times) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert circuit.consecutive_failures == 4000


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError, match="reset_timeout"):
        CircuitBreaker(reset_timeout=-1)


def test_one_shared_breaker_per_server_and_model() -> None:
    forget_shared_breakers()
    first = shared_breaker("http://vllm:8000/v1", "a")
    assert shared_breaker("http://vllm:8000/v1/", "a") is first
    assert shared_breaker("http://vllm:8000/v1", "b") is not first
    assert shared_breaker("http://other:8000/v1", "a") is not first
    backend = OpenAIBackend(base_url="http://vllm:8000/v1/", model="a")
    assert backend.breaker is first
    forget_shared_breakers()


def test_a_forked_child_starts_with_closed_breakers() -> None:
    forget_shared_breakers()
    parent = shared_breaker("http://vllm:8000/v1", "a", failure_threshold=1)
    parent.record_failure()
    assert state_of(parent) is CircuitState.OPEN
    pid = os.fork()
    if pid == 0:  # the child: a fresh breaker, closed
        child = shared_breaker("http://vllm:8000/v1", "a")
        os._exit(0 if child is not parent and state_of(child) is CircuitState.CLOSED else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    forget_shared_breakers()


def test_the_backend_fails_fast_while_open_and_closes_after_a_good_probe(
    server: ScriptedServer, clock: Clock
) -> None:
    circuit = breaker(clock, threshold=3, reset=30)
    backend = OpenAIBackend(
        base_url=server.base_url, model="m", max_retries=5, backoff_base=0.01, breaker=circuit
    )
    down = Reply(status=503, body={"message": "down"})
    server.script(down, down, down, down)

    # Three failed attempts open the circuit in the middle of the first call's retries.
    with pytest.raises(ModelUnavailable, match="circuit open"):
        backend.chat_json(messages=MESSAGES, schema=SCHEMA, max_tokens=8)
    assert len(server.received) == 3
    assert state_of(circuit) is CircuitState.OPEN

    # While open: no request reaches the server.
    with pytest.raises(ModelUnavailable, match=r"circuit open .* next probe in 30\.0 s"):
        backend.chat_json(messages=MESSAGES, schema=SCHEMA, max_tokens=8)
    assert len(server.received) == 3

    # After the cool-down one probe goes; it fails (503), so the circuit opens again at once.
    clock.now += 30
    with pytest.raises(ModelUnavailable, match="circuit open"):
        backend.chat_json(messages=MESSAGES, schema=SCHEMA, max_tokens=8)
    assert len(server.received) == 4
    assert state_of(circuit) is CircuitState.OPEN

    # The server is back: the next probe succeeds and closes the circuit.
    server.script(completion('{"ok": true}'), completion('{"ok": true}'))
    clock.now += 30
    assert backend.chat_json(messages=MESSAGES, schema=SCHEMA, max_tokens=8).content == '{"ok": true}'
    assert state_of(circuit) is CircuitState.CLOSED
    backend.chat_json(messages=MESSAGES, schema=SCHEMA, max_tokens=8)
    assert len(server.received) == 6


def test_a_refusal_counts_as_the_server_being_up(server: ScriptedServer, clock: Clock) -> None:
    circuit = breaker(clock, threshold=1, reset=5)
    circuit.record_failure()
    clock.now += 5
    server.script(Reply(status=400, body={"message": "bad schema"}))
    backend = OpenAIBackend(base_url=server.base_url, model="m", breaker=circuit)
    with pytest.raises(ModelRequestRejected, match="bad schema"):
        backend.chat_json(messages=MESSAGES, schema=SCHEMA, max_tokens=8)
    assert state_of(circuit) is CircuitState.CLOSED

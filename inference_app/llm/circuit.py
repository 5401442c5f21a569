"""A circuit breaker: stop calling a model server that keeps failing, and probe it now and then.

closed     every call goes through; ``failure_threshold`` consecutive failures open the circuit.
open       calls fail fast (the caller raises ModelUnavailable) until ``reset_timeout`` seconds pass.
half-open  one probe call goes through, the rest still fail fast; its success closes the circuit,
           its failure opens it again for another ``reset_timeout``.

One breaker per (base_url, model) per process (:func:`shared_breaker`), so every backend object
that talks to the same server shares what is known about it. Thread-safe; the clock is injectable.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from enum import StrEnum

logger = logging.getLogger(__name__)

DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_RESET_TIMEOUT = 30.0


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Counts consecutive failures of calls to one server and decides whether the next may go."""

    def __init__(
        self,
        *,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        reset_timeout: float = DEFAULT_RESET_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_timeout < 0:
            raise ValueError("reset_timeout must not be negative")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started_at: float | None = None

    @property
    def state(self) -> CircuitState:
        """The state a call made now would meet (open turns half-open once the cool-down is over)."""
        with self._lock:
            if self._state is CircuitState.OPEN and self._cooled_down():
                return CircuitState.HALF_OPEN
            return self._state

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            return self._failures

    def retry_in(self) -> float:
        """Seconds until a probe call may go through (0 when calls may go now)."""
        with self._lock:
            if self._state is not CircuitState.OPEN:
                return 0.0
            return max(0.0, self._opened_at + self.reset_timeout - self._clock())

    def allow(self) -> bool:
        """May a call go now? In half-open, True for the one probe only: its caller must then report
        :meth:`record_success` or :meth:`record_failure`."""
        with self._lock:
            if self._state is CircuitState.CLOSED:
                return True
            if self._state is CircuitState.OPEN:
                if not self._cooled_down():
                    return False
                self._state = CircuitState.HALF_OPEN
                logger.info("circuit %s half-open: letting one probe call through", self.name)
            # Half-open: one probe at a time. A probe that never reported (its caller died) is
            # given up after another cool-down, so the circuit cannot stay stuck half-open.
            now = self._clock()
            if self._probe_started_at is not None and now - self._probe_started_at < self.reset_timeout:
                return False
            self._probe_started_at = now
            return True

    def record_success(self) -> None:
        with self._lock:
            if self._state is not CircuitState.CLOSED:
                logger.info("circuit %s closed: the server answered again", self.name)
            self._state = CircuitState.CLOSED
            self._failures = 0
            self._probe_started_at = None

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state is CircuitState.HALF_OPEN:
                self._open("the probe call failed")
            elif self._state is CircuitState.CLOSED and self._failures >= self.failure_threshold:
                self._open(f"{self._failures} consecutive failures")

    def _open(self, reason: str) -> None:
        self._state = CircuitState.OPEN
        self._opened_at = self._clock()
        self._probe_started_at = None
        logger.warning("circuit %s open (%s): failing fast for %.1f s", self.name, reason, self.reset_timeout)

    def _cooled_down(self) -> bool:
        return self._clock() - self._opened_at >= self.reset_timeout


_breakers: dict[tuple[str, str], CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def shared_breaker(
    base_url: str,
    model: str,
    *,
    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
    reset_timeout: float = DEFAULT_RESET_TIMEOUT,
) -> CircuitBreaker:
    """This process's breaker for ``model`` at ``base_url``; the first call's parameters stick."""
    key = (base_url.rstrip("/"), model)
    with _breakers_lock:
        breaker = _breakers.get(key)
        if breaker is None:
            breaker = CircuitBreaker(
                failure_threshold=failure_threshold,
                reset_timeout=reset_timeout,
                name=f"{model}@{key[0]}",
            )
            _breakers[key] = breaker
        return breaker


def forget_shared_breakers() -> None:
    """Drop every shared breaker (a forked child starts with none; tests start clean)."""
    global _breakers_lock
    _breakers_lock = threading.Lock()
    _breakers.clear()


# A Celery prefork child must not inherit a lock another thread held at fork time, nor the parent's
# view of the server: it starts with fresh breakers.
os.register_at_fork(after_in_child=forget_shared_breakers)

"""Per-client rate limits in the shared cache (Redis), so every web process counts together.

A fixed one-minute window per client (:mod:`tickets.api.rate_window`): one ``INCR`` per request (plus
an ``EXPIRE`` when a window opens). A token's request was already counted with its lookup, in the same
Redis round trip (the principal carries the count); the throttle counts the others. Over the limit the
answer is 429 with ``Retry-After``: the seconds left in the window.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from tickets.api.authentication import Principal
from tickets.api.rate_window import COUNTER_SECONDS, WINDOW_SECONDS, counter_key, now_and_window
from tickets.api.shared_cache import shared_redis


def _hit(key: str) -> int:
    """Count one request in this window; the first of a window sets the counter's expiry."""
    client = shared_redis()
    if client is not None:
        count = int(client.incr(key))
        if count == 1:
            client.expire(key, COUNTER_SECONDS)
        return count
    try:
        return int(cache.incr(key))
    except ValueError:  # no counter yet in this window
        if cache.add(key, 1, timeout=COUNTER_SECONDS):
            return 1
        return int(cache.incr(key))


class ClientRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        principal = request.auth
        if not isinstance(principal, Principal):
            return True  # unauthenticated requests are refused before they cost anything
        now, window = now_and_window()
        if principal.counted is not None:  # with the token lookup
            window, count = principal.counted
        else:
            count = _hit(counter_key(principal.client_key, window))
        if count <= principal.rate_limit_per_minute:
            return True
        self.retry_after = max(1.0, (window + 1) * WINDOW_SECONDS - now)
        return False

    def wait(self) -> float | None:
        return self.retry_after

"""Per-client rate limits in the shared cache (Redis), so every web process counts together.

A fixed one-minute window per client: one ``INCR`` per request (plus an ``EXPIRE`` when a window
opens). Over the limit the answer is 429 with ``Retry-After``: the seconds left in the window.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from tickets.api.authentication import Principal
from tickets.api.shared_cache import shared_redis

WINDOW_SECONDS = 60
_clock = time.time  # tests pin it


def _hit(key: str) -> int:
    """Count one request in this window; the first of a window sets the counter's expiry."""
    client = shared_redis()
    if client is not None:
        count = int(client.incr(key))
        if count == 1:
            client.expire(key, WINDOW_SECONDS + 5)
        return count
    try:
        return int(cache.incr(key))
    except ValueError:  # no counter yet in this window
        if cache.add(key, 1, timeout=WINDOW_SECONDS + 5):
            return 1
        return int(cache.incr(key))


class ClientRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        principal = request.auth
        if not isinstance(principal, Principal):
            return True  # unauthenticated requests are refused before they cost anything
        now = _clock()
        window = int(now // WINDOW_SECONDS)
        count = _hit(f"ratelimit:{principal.client_key}:{window}")
        if count <= principal.rate_limit_per_minute:
            return True
        self.retry_after = (window + 1) * WINDOW_SECONDS - now
        return False

    def wait(self) -> float | None:
        return self.retry_after

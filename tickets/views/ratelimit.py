"""A fixed-window rate limit per client address, counted in the shared cache (Redis in production)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The client's address: the connection's peer, or the one ``TRUSTED_PROXY_HOPS`` proxies saw."""
    hops: int = settings.TRUSTED_PROXY_HOPS
    if hops:
        forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return str(request.META.get("REMOTE_ADDR", "unknown"))


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    count: int
    limit: int
    retry_after_seconds: int


def hit(*, scope: str, key: str, limit: int, window_seconds: int) -> RateDecision:
    """Count one attempt of ``key`` in ``scope``; allowed while the window's count is within ``limit``."""
    now = int(time.time())
    window_start = now - now % window_seconds
    cache_key = f"sb:rate:{scope}:{key}:{window_start}"
    cache.add(cache_key, 0, timeout=window_seconds + 5)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # evicted between add and incr
        cache.set(cache_key, 1, timeout=window_seconds + 5)
        count = 1
    return RateDecision(
        allowed=count <= limit,
        count=count,
        limit=limit,
        retry_after_seconds=window_start + window_seconds - now,
    )

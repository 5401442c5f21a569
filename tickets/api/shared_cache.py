"""The shared Redis for the API's hot path: token lookups and rate-limit counters.

Django's Redis cache builds a new ``redis.Redis`` for every operation (about half a millisecond of
CPU each, measured with benchmarks/bench_api.py --profile); this keeps one client per process on
the same ``REDIS_URL`` database. Without Redis (the one-machine default) callers use Django's
cache instead.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}


def shared_redis() -> redis.Redis | None:
    url = settings.REDIS_URL
    if not url:
        return None
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.setdefault(url, redis.Redis.from_url(url, health_check_interval=30))
    return client

"""The rate limit's fixed one-minute windows, shared by the throttle and the token lookup.

A token's request is counted in the same Redis round trip as its lookup
(:func:`tickets.services.api_tokens.token_authenticate`); the throttle counts the others (signed-in
people, and every client without Redis) itself. Both read the time here.
"""

from __future__ import annotations

import time

WINDOW_SECONDS = 60
COUNTER_SECONDS = WINDOW_SECONDS + 5  # a counter outlives its window a little, then goes
_clock = time.time  # tests pin it


def now_and_window() -> tuple[float, int]:
    now = _clock()
    return now, int(now // WINDOW_SECONDS)


def counter_key(client: str, window: int) -> str:
    return f"ratelimit:{client}:{window}"

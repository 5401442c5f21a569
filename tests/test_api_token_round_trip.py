"""A token's lookup and its rate-limit count share one Redis round trip (real Redis), the limit still
holds, a revoked token stops at once, and without Redis the throttle counts on its own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIRequestFactory

from tests import test_api_fixtures as fixtures
from tests.test_api_fixtures import World, bearer, error_of
from tickets.api.authentication import BearerTokenAuthentication, Principal
from tickets.api.shared_cache import shared_redis
from tickets.api.throttling import ClientRateThrottle
from tickets.services.api_tokens import token_create, token_revoke

pytestmark = pytest.mark.django_db
world = fixtures.world
fresh_cache = fixtures.fresh_cache


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every connection the shared Redis client takes from its pool: one per command or pipeline sent."""
    client = shared_redis()
    assert client is not None
    pool = client.connection_pool
    taken: list[str] = []
    original = pool.get_connection

    def counting(*args: Any, **kwargs: Any) -> Any:
        taken.append(str(args[0]) if args else "pipeline")
        return original(*args, **kwargs)

    monkeypatch.setattr(pool, "get_connection", counting)
    yield taken


def _authenticate_and_throttle(secret: str) -> tuple[Principal, bool]:
    from rest_framework.request import Request

    request = Request(APIRequestFactory().get("/api/v1/tickets", HTTP_AUTHORIZATION=f"Bearer {secret}"))
    result = BearerTokenAuthentication().authenticate(request)
    assert result is not None
    request.auth = result[1]
    return result[1], ClientRateThrottle().allow_request(request, view=None)


def test_a_known_token_costs_one_redis_round_trip_with_its_rate_count(
    world: World, round_trips: list[str]
) -> None:
    _token, secret = token_create(name="zendesk", scopes=["read"], rate_limit_per_minute=1000)
    _authenticate_and_throttle(secret)  # the first: a cache miss reads the database and caches
    round_trips.clear()
    principal, allowed = _authenticate_and_throttle(secret)
    assert allowed and len(round_trips) == 1
    assert principal.counted is not None and principal.counted[1] == 2  # counted twice in this window


def test_the_limit_holds_and_a_revoked_token_stops_at_the_next_request(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen = (time.time() // 60) * 60 + 20
    monkeypatch.setattr("tickets.api.rate_window._clock", lambda: frozen)
    token, secret = token_create(name="tight", scopes=["read"], rate_limit_per_minute=2)
    client = bearer(secret)
    assert [client.get("/api/v1/tickets").status_code for _ in range(3)] == [200, 200, 429]
    limited = client.get("/api/v1/tickets")
    assert error_of(limited)["code"] == "rate_limited" and int(limited["Retry-After"]) == 40
    token_revoke(token_id=token.pk)
    assert client.get("/api/v1/tickets").status_code == 401  # cached a moment ago: still refused


def test_without_redis_the_throttle_counts_on_its_own(
    world: World, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.REDIS_URL = ""  # Django's cache for lookups and counters (the one-machine default)
    frozen = (time.time() // 60) * 60 + 20
    monkeypatch.setattr("tickets.api.rate_window._clock", lambda: frozen)
    _token, secret = token_create(name="local", scopes=["read"], rate_limit_per_minute=2)
    principal, _ = _authenticate_and_throttle(secret)
    assert principal.counted is None
    assert [bearer(secret).get("/api/v1/tickets").status_code for _ in range(2)] == [200, 429]

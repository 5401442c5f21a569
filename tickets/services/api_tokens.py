"""API tokens for helpdesk integrations: created and revoked by admins, kept only as a SHA-256.

A token looks like ``sb_<43 url-safe characters>`` (256 random bits). It is shown once, when it is
made; the database keeps its SHA-256 (a fast hash is right for a random secret of this size: there
is nothing to guess) and its first characters, to recognise it in lists.

Looking a token up costs one Redis round trip on the hot path, which also counts the request against
the token's rate limit (:mod:`tickets.api.rate_window`); the database is read on a miss and
``last_used_at`` is written at most once a minute per token. Revoking drops the cached entry, so a
revoked token stops working on the next request in every process (no process keeps its own copy).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils import timezone

from tickets.api.rate_window import COUNTER_SECONDS, counter_key
from tickets.api.shared_cache import shared_redis
from tickets.models import ApiToken

TOKEN_PREFIX = "sb_"  # noqa: S105 (a marker, not a secret)
SCOPES = frozenset(ApiToken.Scope.values)
_CACHE_SECONDS = 300
_TOUCH_EVERY_SECONDS = 60
_MISSING = "-"
_touched_at: dict[int, float] = {}  # token id -> monotonic time this process last recorded a use


@dataclass(frozen=True)
class TokenInfo:
    """What a request needs to know about the token it came with."""

    id: int
    name: str
    scopes: frozenset[str]
    rate_limit_per_minute: int
    requests_in_window: int | None = None
    """This request's number in the rate window it was counted in with the lookup (None: not counted)."""


def token_sha256(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", errors="surrogatepass")).hexdigest()


def _cache_key(digest: str) -> str:
    return f"apitoken:{digest}"


def _clean_scopes(scopes: Iterable[str]) -> list[str]:
    wanted = sorted(set(scopes))
    unknown = [scope for scope in wanted if scope not in SCOPES]
    if unknown or not wanted:
        raise ValidationError({"scopes": [f"Choose one or more of {', '.join(sorted(SCOPES))}."]})
    return wanted


def token_create(
    *,
    name: str,
    scopes: Iterable[str],
    created_by: Any = None,
    rate_limit_per_minute: int | None = None,
) -> tuple[ApiToken, str]:
    """A new token and its secret. The secret is not stored: show it to the admin now, once."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name.strip(),
        prefix=raw[:10],
        secret_sha256=token_sha256(raw),
        scopes=_clean_scopes(scopes),
        rate_limit_per_minute=rate_limit_per_minute,
        created_by=created_by if getattr(created_by, "pk", None) else None,
    )
    token.full_clean()
    token.save(force_insert=True)
    return token, raw


def token_revoke(*, token_id: int) -> ApiToken:
    """Revoke a token at once, in every process (its cache entry goes too)."""
    token = ApiToken.objects.get(pk=token_id)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    token_forget_cached(token)
    return token


def token_forget_cached(token: ApiToken) -> None:
    """Drop a token's cached entry (revoked, or its scopes or limit changed)."""
    key = _cache_key(token.secret_sha256)
    client = shared_redis()
    if client is not None:
        client.delete(key)
    cache.delete(key)


def _cached(key: str, *, count_in: str | None = None) -> tuple[Any, int | None]:
    """The cached entry, and with Redis and ``count_in`` (a rate counter's key) the counter after
    this request's increment: one round trip for both."""
    client = shared_redis()
    if client is None:
        return cache.get(key), None
    if count_in is None:
        raw = client.get(key)
        return None if raw is None else json.loads(raw), None
    pipe = client.pipeline(transaction=False)
    # EXPIRE on every request (not only the window's first): still one round trip, and the counter's
    # key names its window, so it goes soon after the window ends either way.
    pipe.get(key)
    pipe.incr(count_in)
    pipe.expire(count_in, COUNTER_SECONDS)
    raw, count, _ = pipe.execute()
    return None if raw is None else json.loads(raw), int(count)


def _remember(key: str, value: Any, seconds: int) -> None:
    client = shared_redis()
    if client is None:
        cache.set(key, value, timeout=seconds)
    else:
        client.set(key, json.dumps(value), ex=seconds)


def token_authenticate(*, raw: str, count_window: int | None = None) -> TokenInfo | None:
    """The active token with this secret, or None. One Redis round trip when warm, which with
    ``count_window`` also counts the request in that rate window (the counter is the secret's, one
    for one with the token: its id is not known before the lookup)."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 100:
        return None
    digest = token_sha256(raw)
    key = _cache_key(digest)
    count_in = None if count_window is None else counter_key(f"token-sha256:{digest}", count_window)
    cached, requests = _cached(key, count_in=count_in)
    if cached is None:
        row = (
            ApiToken.objects.filter(secret_sha256=digest, revoked_at__isnull=True)
            .values("id", "name", "scopes", "rate_limit_per_minute")
            .first()
        )
        cached = _MISSING if row is None else dict(row)
        # A miss is cached briefly, so a flood of bad tokens does not reach the database.
        _remember(key, cached, _CACHE_SECONDS if row else 10)
    if cached == _MISSING:
        return None
    info = TokenInfo(
        id=cached["id"],
        name=cached["name"],
        scopes=frozenset(cached["scopes"]),
        rate_limit_per_minute=cached["rate_limit_per_minute"] or settings.API_RATE_LIMIT_PER_MINUTE,
        requests_in_window=requests,
    )
    _touch(info.id)
    return info


def _touch(token_id: int) -> None:
    """Record use, at most once a minute per token (an atomic add elects the one writer)."""
    now = time.monotonic()
    if now - _touched_at.get(token_id, -_TOUCH_EVERY_SECONDS) < _TOUCH_EVERY_SECONDS:
        return
    _touched_at[token_id] = now
    key = f"apitoken-used:{token_id}"
    client = shared_redis()
    elected = (
        cache.add(key, 1, timeout=_TOUCH_EVERY_SECONDS)
        if client is None
        else bool(client.set(key, 1, nx=True, ex=_TOUCH_EVERY_SECONDS))
    )
    if elected:
        ApiToken.objects.filter(pk=token_id).update(last_used_at=timezone.now())

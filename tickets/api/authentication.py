"""Who is calling: an integration with ``Authorization: Bearer sb_...``, or a signed-in person.

Either way the request ends up with a :class:`Principal` (``request.auth``) that says who acts, as
whom the audit trail names them, and what they may do (scopes). A token acts with its own scopes
and sees every ticket; a person acts with their role (admin, lead, agent) like in the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from tickets.api.rate_window import now_and_window
from tickets.models import AuditEvent
from tickets.permissions import is_admin, is_lead, team_ids
from tickets.services.api_tokens import token_authenticate

READ, WRITE, ADMIN = "read", "write", "admin"


@dataclass(frozen=True)
class Principal:
    """The caller, whatever the authentication."""

    actor: str  # as the audit trail and feedback name them
    actor_type: str
    scopes: frozenset[str]
    rate_limit_per_minute: int
    client_key: str  # "token:<id>" or "user:<id>": rate limits and idempotency keys are per client
    user: Any = None  # the Django user, None for a token
    token_id: int | None = None
    role: str = ""  # admin, lead, agent or "" (no team): session users only
    counted: tuple[int, int] | None = None
    """(rate window, requests in it) where this request was counted with the token lookup."""

    @property
    def sees_all_tickets(self) -> bool:
        return self.token_id is not None or self.role == "admin"


class ApiClientUser(AnonymousUser):
    """``request.user`` for a token: authenticated, but no Django user and no Django permissions."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.username = name  # type: ignore[assignment]

    @property
    def is_anonymous(self) -> bool:  # type: ignore[override]
        return False

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True

    def __str__(self) -> str:
        return self.username


def user_role(user: AbstractBaseUser | Any) -> str:
    """The dashboard's roles (``tickets.permissions``): admin, lead, agent, or "" for none."""
    if is_admin(user):
        return "admin"
    if is_lead(user):
        return "lead"
    return "agent" if team_ids(user) else ""


def principal_for_user(user: Any) -> Principal:
    role = user_role(user)
    scopes = {"admin": {READ, WRITE, ADMIN}, "lead": {READ, WRITE}, "agent": {READ, WRITE}}.get(role, set())
    return Principal(
        actor=user.get_username(),
        actor_type=AuditEvent.ActorType.AGENT,
        scopes=frozenset(scopes),
        rate_limit_per_minute=settings.API_RATE_LIMIT_PER_MINUTE,
        client_key=f"user:{user.pk}",
        user=user,
        role=role,
    )


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, Principal] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        keyword, _, raw = header.partition(" ")
        if keyword.lower() != "bearer":
            return None
        raw = raw.strip()
        if not raw or " " in raw:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: Bearer <token>.")
        _now, window = now_and_window()
        info = token_authenticate(raw=raw, count_window=window)
        if info is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API token.")
        principal = Principal(
            actor=info.name,
            actor_type=AuditEvent.ActorType.API_CLIENT,
            scopes=info.scopes,
            rate_limit_per_minute=info.rate_limit_per_minute,
            client_key=f"token:{info.id}",
            token_id=info.id,
            counted=None if info.requests_in_window is None else (window, info.requests_in_window),
        )
        return ApiClientUser(info.name), principal

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class SessionAuthentication(authentication.SessionAuthentication):
    """The dashboard's own calls: the session cookie, with CSRF checked on unsafe methods."""

    def authenticate(self, request: Request) -> tuple[Any, Principal] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        return user, principal_for_user(user)


def principal_of(request: Request) -> Principal:
    auth = request.auth
    if not isinstance(auth, Principal):
        raise exceptions.NotAuthenticated()
    return auth

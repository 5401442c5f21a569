"""Scopes and roles. A token has scopes (read, write, admin) and sees every ticket; a person has the
dashboard's role: admin everything, lead and agent read and act on their teams' and triage tickets,
analytics for admins and leads (their teams), nobody without a team sees anything."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from tickets import permissions as roles
from tickets.api.authentication import ADMIN, READ, WRITE, Principal
from tickets.models import Ticket


class _ScopePermission(BasePermission):
    scope = READ
    message = "This needs the {scope} scope."

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.auth
        if not isinstance(principal, Principal):
            return False
        if self.scope not in principal.scopes:
            self.message = f"This needs the {self.scope} scope."
            return False
        return True


class ReadScope(_ScopePermission):
    scope = READ


class WriteScope(_ScopePermission):
    scope = WRITE


class AdminScope(_ScopePermission):
    scope = ADMIN


class ReadOrWriteScope(BasePermission):
    """Read scope for GET/HEAD/OPTIONS, write scope for the rest."""

    message = "This needs the read scope (GET) or the write scope (changes)."

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.auth
        if not isinstance(principal, Principal):
            return False
        return (READ if request.method in SAFE_METHODS else WRITE) in principal.scopes


def visible_tickets(principal: Principal) -> QuerySet[Ticket]:
    """Tickets the caller may see (and, with the write scope, act on)."""
    if principal.sees_all_tickets:
        return Ticket.objects.all()
    return roles.visible_tickets(principal.user)


def analytics_tickets(principal: Principal) -> QuerySet[Ticket]:
    """Tickets whose figures the caller may see: all for tokens with read scope and admins."""
    if principal.sees_all_tickets:
        return Ticket.objects.all()
    return roles.analytics_tickets(principal.user)


def may_view_analytics(principal: Principal) -> bool:
    return principal.sees_all_tickets or roles.can_view_analytics(principal.user)

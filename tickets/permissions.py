"""Who may see and act on which tickets. Deny by default.

Roles come from the data: an admin is a Django superuser; everyone else is what her
``TeamMembership`` rows say (agent or lead of a team). Agents and leads see their teams' tickets,
the triage queue and tickets assigned to them; leads also see their teams' analytics. A signed-in
user with no membership sees nothing.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from tickets.models import TeamMembership, Ticket, TicketStatus


def _signed_in(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active)


def is_admin(user: Any) -> bool:
    return _signed_in(user) and bool(user.is_superuser)


def team_ids(user: Any, *, role: str | None = None) -> list[int]:
    """The teams the user belongs to (as ``role`` when given); every team's id is not implied for admins."""
    if not _signed_in(user):
        return []
    memberships = TeamMembership.objects.filter(user_id=user.pk)
    if role is not None:
        memberships = memberships.filter(role=role)
    return list(memberships.values_list("team_id", flat=True))


def is_lead(user: Any) -> bool:
    return bool(team_ids(user, role=TeamMembership.Role.LEAD))


def has_role(user: Any) -> bool:
    """Admin, or member of at least one team: may use the dashboard at all."""
    return is_admin(user) or bool(team_ids(user))


def can_view_analytics(user: Any) -> bool:
    return is_admin(user) or is_lead(user)


def triage_filter() -> Q:
    return Q(status=TicketStatus.NEEDS_TRIAGE)


def visible_tickets(user: Any) -> QuerySet[Ticket]:
    """The tickets ``user`` may see: admin all; agent or lead her teams, triage and her own."""
    if is_admin(user):
        return Ticket.objects.all()
    teams = team_ids(user)
    if not teams:
        return Ticket.objects.none()
    return Ticket.objects.filter(Q(team_id__in=teams) | triage_filter() | Q(assignee_id=user.pk))


def analytics_tickets(user: Any) -> QuerySet[Ticket]:
    """The tickets whose figures ``user`` may see: admin all, a lead the teams she leads."""
    if is_admin(user):
        return Ticket.objects.all()
    led = team_ids(user, role=TeamMembership.Role.LEAD)
    if not led:
        return Ticket.objects.none()
    return Ticket.objects.filter(team_id__in=led)


def can_act_on(user: Any, ticket: Ticket) -> bool:
    """May ``user`` take agent actions (accept, reassign, resolve, ...) on ``ticket``?"""
    if not _signed_in(user) or ticket.pk is None:
        return False
    return visible_tickets(user).filter(pk=ticket.pk).exists()

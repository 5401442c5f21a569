"""Shared setup of the API tests: a small company with people in every role, tickets in every
queue, and a token per scope. Imported by tests/test_api*.py (holds no tests itself)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.test import APIClient

from tickets.models import (
    AuditEvent,
    Category,
    Suggestion,
    Team,
    TeamMembership,
    Ticket,
    TicketStatus,
)
from tickets.services.api_tokens import token_create
from tickets.services.lifecycle import ticket_create, ticket_resolve, ticket_transition

User = get_user_model()


@dataclass
class World:
    billing: Team
    tech: Team
    invoices: Category
    outage: Category
    admin: Any
    lead: Any
    agent: Any
    tech_agent: Any
    nobody: Any
    billing_ticket: Ticket
    tech_ticket: Ticket
    triage_ticket: Ticket
    resolved_ticket: Ticket
    suggestion: Suggestion
    tokens: dict[str, str]


def routed_ticket(
    *, subject: str, team: Team, category: Category, status: str = TicketStatus.ROUTED
) -> Ticket:
    ticket = ticket_create(subject=subject, body=f"{subject}: details of the problem.", channel="web")
    ticket_transition(ticket_id=ticket.pk, to_status=TicketStatus.PROCESSING, stage=AuditEvent.Stage.INPUT)
    fields: dict[str, Any] = {}
    if status == TicketStatus.ROUTED:
        fields = {"team_id": team.pk, "category_id": category.pk, "priority": "normal"}
    return ticket_transition(ticket_id=ticket.pk, to_status=status, stage=AuditEvent.Stage.ROUTING, **fields)


def make_world() -> World:
    billing = Team.objects.create(name="Billing")
    tech = Team.objects.create(name="Tech")
    invoices = Category.objects.create(name="Invoices", default_team=billing)
    outage = Category.objects.create(name="Outage", default_team=tech, default_priority="high")
    admin = User.objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    lead = User.objects.create_user("lead", "lead@example.com", "pw-lead-123")
    agent = User.objects.create_user("agent", "agent@example.com", "pw-agent-123")
    tech_agent = User.objects.create_user("techie", "techie@example.com", "pw-techie-123")
    nobody = User.objects.create_user("nobody", "nobody@example.com", "pw-nobody-123")
    TeamMembership.objects.create(team=billing, user=lead, role=TeamMembership.Role.LEAD)
    TeamMembership.objects.create(team=billing, user=agent, role=TeamMembership.Role.AGENT)
    TeamMembership.objects.create(team=tech, user=tech_agent, role=TeamMembership.Role.AGENT)
    resolved = routed_ticket(subject="Invoice shows the wrong VAT", team=billing, category=invoices)
    resolved = ticket_resolve(
        ticket_id=resolved.pk, resolution="Corrected the VAT rate and re-sent the invoice."
    )
    billing_ticket = routed_ticket(subject="Charged twice this month", team=billing, category=invoices)
    tech_ticket = routed_ticket(subject="Site is down", team=tech, category=outage)
    triage_ticket = routed_ticket(
        subject="Something odd", team=billing, category=invoices, status=TicketStatus.NEEDS_TRIAGE
    )
    suggestion = Suggestion.objects.create(
        ticket=billing_ticket,
        category=invoices,
        team=billing,
        priority="normal",
        confidence=0.82,
        resolution_text="Refund the duplicate charge.",
        citations=[{"ticket_id": resolved.pk, "score": 0.91}],
        backend="llamacpp",
        model_name="smollm2",
    )
    tokens = {
        scope: token_create(name=f"{scope}-token", scopes=scopes)[1]
        for scope, scopes in {
            "read": ["read"],
            "write": ["read", "write"],
            "admin": ["read", "write", "admin"],
        }.items()
    }
    return World(
        billing, tech, invoices, outage, admin, lead, agent, tech_agent, nobody,
        billing_ticket, tech_ticket, triage_ticket, resolved, suggestion, tokens,
    )  # fmt: skip


@pytest.fixture
def world(db: Any) -> World:
    return make_world()


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    """Token lookups and rate-limit counters live in the cache (this run's private Redis database)."""
    cache.clear()
    yield


def bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def session(user: Any, *, csrf: bool = False) -> APIClient:
    client = APIClient(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def error_of(response: Any) -> dict[str, Any]:
    """The error object, after checking the one error format."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error

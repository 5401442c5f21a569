"""Ticket creation and the status life cycle, against PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from tickets.models import AuditEvent, Category, Channel, Team, Ticket, TicketStatus
from tickets.services.lifecycle import InvalidTransition, ticket_create, ticket_transition

pytestmark = pytest.mark.django_db


def test_database_is_postgresql() -> None:
    assert connection.vendor == "postgresql"


def test_ticket_create_saves_a_received_ticket_with_its_first_audit_event() -> None:
    ticket = ticket_create(
        subject="  Card declined  ",
        body="My card ending 4242 was declined twice.",
        requester_email="ana@example.com",
        channel=Channel.API,
        external_id="ZD-1001",
        actor_type=AuditEvent.ActorType.API_CLIENT,
        actor="zendesk",
    )
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RECEIVED
    assert ticket.subject == "Card declined"
    assert ticket.reference.startswith("SB-") and len(ticket.status_token) >= 30
    [event] = ticket.audit_events.all()
    assert (event.sequence, event.stage, event.action, event.actor) == (
        1,
        "intake",
        "ticket.created",
        "zendesk",
    )
    assert event.details["external_id"] == "ZD-1001"
    # The trail keeps a fingerprint of the text, never the text itself.
    assert "4242" not in str(event.details)
    assert len(event.details["body_sha256"]) == 64


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"subject": " ", "body": "text"}, "subject"),
        ({"subject": "s", "body": ""}, "body"),
        ({"subject": "s" * 301, "body": "text"}, "subject"),
        ({"subject": "s", "body": "x" * 50_001}, "body"),
        ({"subject": "s", "body": "a\x00b"}, "body"),
        ({"subject": "s", "body": "text", "requester_email": "not-an-address"}, "requester_email"),
    ],
)
def test_ticket_create_rejects_bad_input_with_reasons(fields: dict[str, Any], error_field: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        ticket_create(**fields)
    assert error_field in excinfo.value.message_dict
    assert Ticket.objects.count() == 0


def test_external_id_is_unique_per_channel() -> None:
    ticket_create(subject="a", body="b", channel=Channel.API, external_id="X-1")
    ticket_create(subject="a", body="b", channel=Channel.EMAIL, external_id="X-1")
    with pytest.raises(ValidationError):
        ticket_create(subject="a", body="b", channel=Channel.API, external_id="X-1")
    assert Ticket.objects.count() == 2


def test_transitions_follow_the_life_cycle() -> None:
    team = Team.objects.create(name="Billing")
    category = Category.objects.create(name="Refund", default_team=team)
    ticket = ticket_create(subject="Refund please", body="I was charged twice.")
    ticket = ticket_transition(ticket_id=ticket.pk, to_status=TicketStatus.PROCESSING, stage="input")
    ticket = ticket_transition(
        ticket_id=ticket.pk, to_status=TicketStatus.ROUTED, stage="routing", team=team, category=category
    )
    assert (ticket.status, ticket.team, ticket.category) == (TicketStatus.ROUTED, team, category)
    with pytest.raises(InvalidTransition, match="cannot go from routed to processing"):
        ticket_transition(ticket_id=ticket.pk, to_status=TicketStatus.PROCESSING, stage="input")
    ticket = ticket_transition(ticket_id=ticket.pk, to_status=TicketStatus.RESOLVED, stage="agent")
    assert ticket.resolved_at is not None
    actions = list(ticket.audit_events.values_list("action", flat=True))
    assert actions == ["ticket.created", "status.processing", "status.routed", "status.resolved"]


@pytest.mark.django_db(transaction=True)
def test_only_one_of_two_racing_workers_claims_a_ticket() -> None:
    ticket = ticket_create(subject="Race", body="Two workers want me.")
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def claim() -> None:
        barrier.wait()
        try:
            ticket_transition(ticket_id=ticket.pk, to_status=TicketStatus.PROCESSING, stage="input")
            outcomes.append("won")
        except InvalidTransition:
            outcomes.append("lost")
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["lost", "lost", "lost", "won"]
    assert AuditEvent.objects.filter(ticket=ticket, action="status.processing").count() == 1

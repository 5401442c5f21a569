"""A resolved ticket joins the knowledge base at once; a reopened one leaves it."""

from __future__ import annotations

from typing import Any

import pytest

from retrieval.models import KnowledgeEntry
from tickets.models import Category, Team, TicketStatus
from tickets.services.knowledge import similar_resolved_tickets
from tickets.services.lifecycle import ticket_create, ticket_reopen, ticket_resolve, ticket_transition

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("knowledge_dir", "eager_celery")]


def _routed_ticket(subject: str, body: str, category: Category) -> int:
    ticket = ticket_create(subject=subject, body=body)
    ticket_transition(ticket_id=ticket.pk, to_status=TicketStatus.PROCESSING, stage="input")
    ticket_transition(
        ticket_id=ticket.pk,
        to_status=TicketStatus.ROUTED,
        stage="routing",
        category=category,
        team=category.default_team,
    )
    return ticket.pk


def test_resolving_makes_a_ticket_retrievable_without_a_rebuild(
    django_capture_on_commit_callbacks: Any,
) -> None:
    billing = Team.objects.create(name="Billing")
    refund = Category.objects.create(name="Refund", default_team=billing)
    other = Category.objects.create(name="Invoice address", default_team=billing)
    with django_capture_on_commit_callbacks(execute=True):
        first = _routed_ticket("Charged twice", "I was billed two times for my March subscription.", refund)
        second = _routed_ticket(
            "Wrong address", "Please change the postal address printed on my invoice.", other
        )
        ticket_resolve(ticket_id=first, resolution="Refunded the duplicate charge.", actor="agent.ana")
        ticket_resolve(ticket_id=second, resolution="Updated the billing address.", actor="agent.ana")
    # The search happens immediately after resolution; no rebuild in between.
    [best, *_] = similar_resolved_tickets(text="you took the money from my card twice this month", k=2)
    assert (best.ticket_id, best.category, best.resolution) == (
        first,
        "Refund",
        "Refunded the duplicate charge.",
    )

    with django_capture_on_commit_callbacks(execute=True):
        ticket_reopen(ticket_id=first, reason="customer says the refund never arrived", actor="agent.ana")
    assert KnowledgeEntry.objects.get(doc_id=first).deleted
    remaining = similar_resolved_tickets(text="you took the money from my card twice this month", k=2)
    assert [hit.ticket_id for hit in remaining] == [second]


def test_resolve_needs_a_resolution() -> None:
    from django.core.exceptions import ValidationError

    ticket = ticket_create(subject="s", body="b")
    with pytest.raises(ValidationError):
        ticket_resolve(ticket_id=ticket.pk, resolution="  ")

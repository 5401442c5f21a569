"""The demo company loads completely and idempotently."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from retrieval.models import KnowledgeEntry
from tickets.demo import content as demo_content
from tickets.demo.generator import PAST_TICKETS, load_demo
from tickets.models import AuditEvent, Category, Channel, Team, Ticket, TicketStatus
from tickets.services.knowledge import similar_resolved_tickets

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("knowledge_dir")]


def test_demo_content_is_consistent() -> None:
    assert demo_content.check_content() == []


def test_load_demo_builds_a_company_and_a_second_load_adds_nothing(tmp_path: Path) -> None:
    first = load_demo(data_dir=tmp_path)
    assert 5 <= Team.objects.count() <= 8
    assert 15 <= Category.objects.count() <= 30
    resolved = Ticket.objects.filter(channel=Channel.DEMO, status=TicketStatus.RESOLVED)
    assert resolved.count() == first.past_created == PAST_TICKETS
    assert not resolved.filter(resolution="").exists()
    assert not resolved.filter(category__isnull=True).exists()
    # Every category shows up in the history, so each can be learned from it.
    assert resolved.values("category").distinct().count() == Category.objects.count()
    incoming = Ticket.objects.filter(channel=Channel.DEMO, status=TicketStatus.RECEIVED)
    assert incoming.count() == first.incoming_created == len(demo_content.INCOMING)
    assert AuditEvent.objects.count() == PAST_TICKETS + len(demo_content.INCOMING)
    # Templates were filled in: no placeholder is left in any text.
    assert not Ticket.objects.filter(body__contains="{").exists()
    assert get_user_model().objects.filter(username="admin", is_superuser=True).exists()
    assert Team.objects.get(name="Billing").members.exists()
    assert first.indexed == PAST_TICKETS == KnowledgeEntry.objects.filter(deleted=False).count()

    counts = (
        Team.objects.count(),
        Category.objects.count(),
        Ticket.objects.count(),
        AuditEvent.objects.count(),
    )
    second = load_demo(data_dir=tmp_path)
    assert (second.past_created, second.incoming_created, second.users_created, second.indexed) == (
        0,
        0,
        0,
        0,
    )
    assert second.admin_password == first.admin_password
    assert counts == (
        Team.objects.count(),
        Category.objects.count(),
        Ticket.objects.count(),
        AuditEvent.objects.count(),
    )


def test_demo_history_answers_the_demo_incoming_tickets(tmp_path: Path) -> None:
    """The demo is worth showing: retrieval alone finds the right category for most new tickets."""
    load_demo(data_dir=tmp_path)
    right = 0
    for subject, body, category in demo_content.INCOMING:
        [best] = similar_resolved_tickets(text=f"{subject}\n{body}", k=1)
        right += best.category == category
    assert right >= 6, f"only {right} of {len(demo_content.INCOMING)} incoming tickets matched"

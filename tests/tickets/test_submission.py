"""ticket_submit, the one way a new ticket comes in (web form, API, demo): saved even when the broker
fails at commit, and started by the sweeper later."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from tickets.models import AuditEvent, PipelineStage, Ticket, TicketStatus
from tickets.pipeline import flow
from tickets.services.submission import ticket_submit

pytestmark = pytest.mark.django_db


def test_a_broker_error_at_commit_loses_no_ticket_and_the_sweeper_starts_it(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broker_down(stage: str, ticket_id: int) -> None:
        raise BrokerError("Error 111 connecting to the broker. Connection refused.")

    monkeypatch.setattr(flow, "enqueue_stage", broker_down)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        ticket = ticket_submit(subject="VPN down", body="The VPN drops every minute.")
    assert len(callbacks) == 1
    assert "Connection refused" in caplog.text
    saved = Ticket.objects.get(pk=ticket.pk)
    assert (saved.status, saved.stage) == (TicketStatus.RECEIVED, PipelineStage.QUEUED)
    assert AuditEvent.objects.filter(ticket=saved, action="ticket.created").exists()

    started: list[tuple[str, int]] = []
    monkeypatch.setattr(
        flow, "enqueue_stage", lambda stage, ticket_id, others=(): started.append((stage, ticket_id))
    )
    Ticket.objects.filter(pk=ticket.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert flow.sweep_stuck_tickets() == 1
    assert started == [(PipelineStage.INPUT, ticket.pk)]

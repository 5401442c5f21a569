"""ticket_submit, the one way a new ticket comes in (web form, API, demo): saved even when the broker
fails at commit, and started by the sweeper later."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from tickets.models import AuditEvent, PipelineStage, Ticket, TicketStatus
from tickets.pipeline import flow, starter
from tickets.services.submission import ticket_submit

pytestmark = pytest.mark.django_db


def test_a_broker_error_at_commit_loses_no_ticket_and_the_sweeper_starts_it(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broker_down(stage: str, ticket_id: int, others: Any = ()) -> None:
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


@pytest.mark.django_db(transaction=True)
def test_tickets_created_within_the_linger_enter_the_pipeline_as_one_message(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three requests' tickets, committed one after the other, reach the real Redis broker as one
    message for the first stage, sent by the web process's starter thread."""
    settings.PIPELINE_ENQUEUE_LINGER_MS = 300
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("ingest")
    try:
        tickets = [
            ticket_submit(subject=f"VPN down {n}", body="The VPN drops every minute.") for n in range(3)
        ]
        deadline = time.monotonic() + 10
        while not broker.llen("ingest") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # anything else would have come by now
        messages = broker.lrange("ingest", 0, -1)
        assert len(messages) == 1
        args = json.loads(base64.b64decode(json.loads(messages[0])["body"]))[0]
        assert sorted([args[0], *args[1]]) == sorted(t.pk for t in tickets)
    finally:
        broker.delete("ingest")


@pytest.mark.django_db(transaction=True)
def test_a_broker_error_in_the_starter_thread_leaves_the_tickets_to_the_sweeper(
    settings: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The real broker at a closed port is tested through the API (tests/test_api_broker_down.py)."""
    settings.PIPELINE_ENQUEUE_LINGER_MS = 60_000  # the thread waits: flush() sends them, here

    def broker_down(stage: str, ticket_id: int, others: Any = ()) -> None:
        raise BrokerError("Error 111 connecting to the broker. Connection refused.")

    monkeypatch.setattr(flow, "enqueue_stage", broker_down)
    ticket = ticket_submit(subject="Mail down", body="No mail since noon.")
    starter.flush()
    assert "could not start the pipeline for 1 tickets" in caplog.text
    saved = Ticket.objects.get(pk=ticket.pk)
    assert (saved.status, saved.stage) == (TicketStatus.RECEIVED, PipelineStage.QUEUED)
    Ticket.objects.filter(pk=ticket.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    started: list[tuple[str, int]] = []
    monkeypatch.setattr(
        flow, "enqueue_stage", lambda stage, ticket_id, others=(): started.append((stage, ticket_id))
    )
    assert flow.sweep_stuck_tickets() == 1
    assert started == [(PipelineStage.INPUT, ticket.pk)]

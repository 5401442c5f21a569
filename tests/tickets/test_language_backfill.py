"""Migration 0007 records the language of resolved tickets imported before imports detected it."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps

from tickets.models import Channel, PipelineStage, Ticket, TicketStatus

pytestmark = pytest.mark.django_db

backfill = importlib.import_module("tickets.migrations.0007_backfill_history_language").backfill


def _ticket(subject: str, body: str, status: str, **fields: Any) -> Ticket:
    return Ticket.objects.create(
        subject=subject, body=body, channel=Channel.IMPORT, status=status, stage=PipelineStage.DONE, **fields
    )


def test_resolved_tickets_without_a_language_get_one_and_the_rest_are_left_alone() -> None:
    german = _ticket(
        "Rechnung doppelt", "Bitte erstatten Sie die zweite Zahlung vom März.", TicketStatus.RESOLVED
    )
    english = _ticket(
        "VPN down", "The tunnel drops every few seconds since this morning.", TicketStatus.CLOSED
    )
    short = _ticket("Hi", "ok", TicketStatus.RESOLVED)
    kept = _ticket(
        "Rechnung", "Bitte erstatten Sie die zweite Zahlung vom März.", TicketStatus.RESOLVED, language="fr"
    )
    open_one = _ticket("Rechnung doppelt", "Bitte erstatten Sie die zweite Zahlung.", TicketStatus.ROUTED)

    backfill(apps, None)

    found = dict(Ticket.objects.values_list("pk", "language"))
    assert found == {german.pk: "de", english.pk: "en", short.pk: "", kept.pk: "fr", open_one.pk: ""}

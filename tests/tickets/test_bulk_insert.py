"""insert_all against PostgreSQL: rows written by COPY read back exactly as bulk_create writes them,
primary keys set, constraints enforced as for an INSERT, in the caller's transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from tickets.audit import first_event, verify_chain
from tickets.bulk_insert import insert_all
from tickets.models import AuditEvent, Channel, Ticket

pytestmark = pytest.mark.django_db(transaction=True)


def tickets(prefix: str, count: int, now: Any = None) -> list[Ticket]:
    now = now or timezone.now()
    return [
        Ticket(
            subject=f"Subject {n} \u00e9\u00e8 'quoted' \\ tab\there",
            body=f"Line one\nline two {n}\r\nwith a NUL-free \N{SNOWMAN} and a backslash \\N",
            requester_email=f"user{n}@example.com" if n % 2 else "",
            channel=Channel.API,
            external_id=f"{prefix}-{n}",
            created_at=now - timedelta(seconds=n),
            status_changed_at=now,
        )
        for n in range(count)
    ]


def stored(ticket: Ticket, now: Any) -> dict[str, Any]:
    row = dict(Ticket.objects.filter(pk=ticket.pk).values().get())
    for own in ("id", "reference", "external_id", "status_token"):  # unique or random per ticket
        assert row.pop(own)
    assert row.pop("updated_at") >= now  # auto_now: the time of the insert
    return row


def test_rows_read_back_as_bulk_create_writes_them() -> None:
    assert connection.vendor == "postgresql"
    now = timezone.now()
    copied = insert_all(tickets("copy", 5, now))
    reference = Ticket.objects.bulk_create(tickets("orm", 5, now))
    assert all(t.pk and not t._state.adding for t in copied)
    assert len({t.pk for t in copied + reference}) == 10
    for ours, theirs in zip(copied, reference, strict=True):
        assert Ticket.objects.get(pk=ours.pk).external_id == ours.external_id
        assert stored(ours, now) == stored(theirs, now)
    assert Ticket.objects.create(subject="s", body="b").pk > max(t.pk for t in copied + reference)


def test_json_details_and_the_audit_hash_survive_the_copy() -> None:
    [ticket] = insert_all(tickets("json", 1))
    details = {"nested": {"list": [1, 2.5, None, True]}, "text": 'quote " and \\ backslash \n newline'}
    [event] = insert_all(
        [first_event(ticket_id=ticket.pk, stage="intake", action="ticket.created", details=details)]
    )
    saved = AuditEvent.objects.get(pk=event.pk)
    assert saved.details == details
    assert list(verify_chain([saved])) == []


def test_a_unique_violation_is_an_integrity_error_and_writes_nothing() -> None:
    [first] = insert_all(tickets("dup", 1))
    clash = tickets("dup", 2)  # dup-0 is taken, dup-1 is new
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_all(clash)
    assert list(Ticket.objects.filter(external_id__startswith="dup-").values_list("pk", flat=True)) == [
        first.pk
    ]


def test_nothing_to_insert() -> None:
    assert insert_all([]) == []

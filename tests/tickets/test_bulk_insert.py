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


def test_rows_of_several_models_written_together_in_one_statement() -> None:
    from django.test.utils import CaptureQueriesContext

    from tickets.bulk_insert import insert_together, next_id
    from tickets.models import IdempotencyKey

    [ticket] = tickets("together", 1)
    ticket.pk = next_id(Ticket)
    event = first_event(ticket_id=ticket.pk, stage="intake", action="ticket.created", details={"n": 1})
    key = IdempotencyKey(client="token:1", key="k-together", request_sha256="0" * 64, ticket=ticket)
    assert not connection.in_atomic_block
    with CaptureQueriesContext(connection) as queries:
        insert_together([ticket, event, key])
    assert len(queries) == 1, [q["sql"] for q in queries]  # no BEGIN or COMMIT either
    assert event.pk and key.pk and not key._state.adding
    saved = AuditEvent.objects.get(pk=event.pk)
    assert saved.ticket_id == ticket.pk and list(verify_chain([saved])) == []
    assert IdempotencyKey.objects.get(pk=key.pk).ticket_id == ticket.pk
    assert IdempotencyKey.objects.get(pk=key.pk).created_at is not None  # auto_now_add prepared
    assert stored(Ticket.objects.get(pk=ticket.pk), timezone.now() - timedelta(minutes=1))["subject"] == (
        ticket.subject
    )


def test_rows_written_together_are_all_or_none() -> None:
    from tickets.bulk_insert import insert_together, next_id
    from tickets.models import IdempotencyKey

    [first] = tickets("whole", 1)
    IdempotencyKey.objects.create(client="token:1", key="taken", request_sha256="0" * 64)
    [ticket] = tickets("whole-new", 1)
    ticket.pk = next_id(Ticket)
    event = first_event(ticket_id=ticket.pk, stage="intake", action="ticket.created")
    clash = IdempotencyKey(client="token:1", key="taken", request_sha256="1" * 64, ticket=ticket)
    with pytest.raises(IntegrityError):
        insert_together([ticket, event, clash])  # the last row clashes: the first two are not kept
    assert not Ticket.objects.filter(pk=ticket.pk).exists()
    assert not AuditEvent.objects.filter(ticket_id=ticket.pk).exists()
    insert_together([first])  # the connection is usable afterwards, outside any transaction
    assert Ticket.objects.filter(pk=first.pk).exists()

"""The append-only, hash-chained audit trail, against PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from tickets.audit import record_event, record_events_many, verify_chain
from tickets.models import AuditEvent
from tickets.services.lifecycle import ticket_create

pytestmark = pytest.mark.django_db


def _trail(ticket_id: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(ticket_id=ticket_id).order_by("sequence"))


def test_events_chain_to_their_predecessor() -> None:
    ticket = ticket_create(subject="s", body="b")
    record_event(ticket_id=ticket.pk, stage="input", action="input.validated", details={"chars": 1})
    first, second = _trail(ticket.pk)
    assert first.prev_hash == "0" * 64
    assert second.prev_hash == first.hash and second.sequence == 2
    assert list(verify_chain(iter(_trail(ticket.pk)))) == []


def test_events_cannot_be_changed_or_deleted_through_the_orm() -> None:
    ticket = ticket_create(subject="s", body="b")
    [event] = _trail(ticket.pk)
    event.action = "something.else"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()


def test_verify_audit_finds_a_row_edited_in_the_database(capsys: pytest.CaptureFixture[str]) -> None:
    ticket = ticket_create(subject="s", body="b")
    record_event(ticket_id=ticket.pk, stage="routing", action="ticket.routed", details={"team": "Billing"})
    record_event(ticket_id=ticket.pk, stage="agent", action="suggestion.accepted")
    call_command("verify_audit")
    assert "Audit trail intact: 3 events checked" in capsys.readouterr().out

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tickets_auditevent SET details = %s WHERE ticket_id = %s AND sequence = 2",
            ['{"team": "Executive"}', ticket.pk],
        )
    with pytest.raises(CommandError, match="1 break"):
        call_command("verify_audit")
    assert f"ticket {ticket.pk} event #2: content was changed" in capsys.readouterr().err


def test_verify_audit_finds_a_deleted_event() -> None:
    ticket = ticket_create(subject="s", body="b")
    for number in range(3):
        record_event(ticket_id=ticket.pk, stage="system", action=f"step.{number}")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tickets_auditevent WHERE ticket_id = %s AND sequence = 2", [ticket.pk])
    breaks = list(verify_chain(iter(_trail(ticket.pk))))
    assert [(item.sequence, item.reason) for item in breaks] == [
        (3, "expected event #2 (one is missing)"),
        (3, "does not link to the previous event"),
    ]


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_gapless_chain() -> None:
    ticket = ticket_create(subject="s", body="b")
    barrier = threading.Barrier(4)

    def write(worker: int) -> None:
        barrier.wait()
        try:
            for number in range(5):
                record_event(ticket_id=ticket.pk, stage="system", action=f"w{worker}.{number}")
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    trail = _trail(ticket.pk)
    assert [event.sequence for event in trail] == list(range(1, 22))
    assert list(verify_chain(iter(trail))) == []


@pytest.mark.django_db(transaction=True)
def test_batch_writers_and_single_writers_keep_every_chain_gapless() -> None:
    """record_events_many (a pipeline stage's batch) racing with record_event on the same tickets."""
    tickets = [ticket_create(subject=f"s{n}", body="b") for n in range(3)]
    barrier = threading.Barrier(4)

    def batch_writer(worker: int) -> None:
        barrier.wait()
        try:
            for number in range(4):
                with transaction.atomic():
                    record_events_many(
                        events_by_ticket={
                            t.pk: [
                                {"stage": "system", "action": f"b{worker}.{number}.1"},
                                {"stage": "system", "action": f"b{worker}.{number}.2"},
                            ]
                            for t in reversed(tickets)  # the locks are taken in id order all the same
                        }
                    )
        finally:
            connection.close()

    def single_writer() -> None:
        barrier.wait()
        try:
            for number in range(4):
                for ticket in tickets:
                    record_event(ticket_id=ticket.pk, stage="system", action=f"s.{number}")
        finally:
            connection.close()

    threads = [threading.Thread(target=batch_writer, args=(w,)) for w in range(3)]
    threads.append(threading.Thread(target=single_writer))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for ticket in tickets:
        trail = _trail(ticket.pk)
        assert [event.sequence for event in trail] == list(range(1, 1 + 1 + 3 * 4 * 2 + 4))
        assert list(verify_chain(iter(trail))) == []
        actions = [event.action for event in trail]
        for worker in range(3):  # a batch's two events for a ticket stay together, in order
            for number in range(4):
                first = actions.index(f"b{worker}.{number}.1")
                assert actions[first + 1] == f"b{worker}.{number}.2"

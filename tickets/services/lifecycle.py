"""A ticket's life cycle: create, move between statuses, resolve, reopen. Views, the API, the pipeline and
tasks call these; they never write ticket models directly. Submitting a new ticket (create, then start
the pipeline) is :func:`tickets.services.submission.ticket_submit`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from datetime import datetime
from typing import Any

from celery import current_app
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from tickets.audit import first_event, record_event, text_fingerprint
from tickets.bulk_insert import insert_together, next_id
from tickets.models import ALLOWED_TRANSITIONS, AuditEvent, Channel, Ticket, TicketStatus

MAX_SUBJECT_CHARS = 300
MAX_BODY_CHARS = 50_000
SYNC_KNOWLEDGE_TASK = "tickets.sync_ticket_knowledge"


class InvalidTransition(Exception):
    """The ticket is not in a status from which the requested move is allowed."""


def _clean_ticket_text(*, subject: str, body: str) -> tuple[str, str]:
    errors: dict[str, list[str]] = {}
    subject, body = subject.strip(), body.strip()
    if not subject:
        errors.setdefault("subject", []).append("A subject is required.")
    elif len(subject) > MAX_SUBJECT_CHARS:
        errors.setdefault("subject", []).append(f"At most {MAX_SUBJECT_CHARS} characters.")
    if not body:
        errors.setdefault("body", []).append("A description is required.")
    elif len(body) > MAX_BODY_CHARS:
        errors.setdefault("body", []).append(f"At most {MAX_BODY_CHARS} characters.")
    for field, value in (("subject", subject), ("body", body)):
        if "\x00" in value:
            errors.setdefault(field, []).append("Contains a NUL character.")
    if errors:
        raise ValidationError(errors)
    return subject, body


def ticket_create(
    *,
    subject: str,
    body: str,
    requester_email: str = "",
    requester_name: str = "",
    channel: str = Channel.WEB,
    external_id: str = "",
    actor_type: str = AuditEvent.ActorType.REQUESTER,
    actor: str = "",
    created_at: datetime | None = None,
    linked_rows: Callable[[Ticket], Sequence[models.Model]] | None = None,
) -> Ticket:
    """Save a new ticket in status ``received`` and record its arrival in the audit trail.

    ``linked_rows`` gives rows written with the ticket, all or none (the API's idempotency key).
    Inside a caller's transaction a duplicate external id rolls back only this ticket (a savepoint).
    On PostgreSQL outside a transaction it costs two round trips: the ticket's id, then one
    statement writing the ticket, its first event and the linked rows (``insert_together``)."""
    subject, body = _clean_ticket_text(subject=subject, body=body)
    now = timezone.now()
    ticket = Ticket(
        subject=subject,
        body=body,
        requester_email=requester_email,
        requester_name=requester_name,
        channel=channel,
        external_id=external_id,
        created_at=created_at or now,
        status_changed_at=now,
    )
    # Checked before anything is written (it needs no query): a bad ticket costs no round trip.
    # The partial unique index on (channel, external_id) is left to the database: asking first
    # would cost a query and ~2 ms per ticket; a duplicate is reported the same way.
    ticket.full_clean(exclude=["reference", "status_token"], validate_constraints=False)
    one_statement = connection.vendor == "postgresql"
    try:
        # One statement is all or none by itself; otherwise an atomic block (a savepoint when nested:
        # a duplicate rolls back only this ticket, and the caller may go on in its transaction).
        with nullcontext() if one_statement and not connection.in_atomic_block else transaction.atomic():
            if one_statement:
                ticket.pk = next_id(Ticket)  # first: the first event's hash covers the ticket's id
            else:
                ticket.save(force_insert=True)
            rows = [
                intake_event(ticket, actor_type=actor_type, actor=actor),
                *(linked_rows(ticket) if linked_rows else ()),
            ]
            insert_together([ticket, *rows] if one_statement else rows)
    except IntegrityError as error:
        if not external_id:
            raise
        message = f"A ticket from {channel} with this external id ({external_id}) exists already."
        raise ValidationError({NON_FIELD_ERRORS: [message]}) from error
    return ticket


def intake_event(ticket: Ticket, *, actor_type: str, actor: str, **details: Any) -> AuditEvent:
    """The unsaved first event of a new ticket's trail (``details`` adds to what it records). The trail
    was just created: no lock, no lookup needed."""
    return first_event(
        ticket_id=ticket.pk,
        stage=AuditEvent.Stage.INTAKE,
        action="ticket.created",
        actor_type=actor_type,
        actor=actor or ticket.requester_email,
        details={
            "channel": ticket.channel,
            "external_id": ticket.external_id,
            **details,
            "subject_sha256": text_fingerprint(ticket.subject),
            "body_sha256": text_fingerprint(ticket.body),
            "body_chars": len(ticket.body),
        },
    )


def ticket_transition(
    *,
    ticket_id: int,
    to_status: str,
    stage: str,
    actor_type: str = AuditEvent.ActorType.SYSTEM,
    actor: str = "",
    details: dict[str, Any] | None = None,
    **changes: Any,
) -> Ticket:
    """Move a ticket to ``to_status`` if its life cycle allows it, with an audit event.

    The move is one conditional UPDATE (``WHERE status IN <allowed sources>``): of two workers
    racing for the same ticket exactly one wins; the other gets :class:`InvalidTransition`.
    ``changes`` sets other fields in the same UPDATE (team, category, priority, due_at, ...).
    """
    sources = [status for status, targets in ALLOWED_TRANSITIONS.items() if to_status in targets]
    now = timezone.now()
    with transaction.atomic():
        previous = Ticket.objects.filter(pk=ticket_id).values_list("status", flat=True).first()
        if previous is None:
            raise Ticket.DoesNotExist(f"no ticket {ticket_id}")
        updated = Ticket.objects.filter(pk=ticket_id, status=previous, status__in=sources).update(
            status=to_status,
            status_changed_at=now,
            updated_at=now,
            **({"resolved_at": now} if to_status == TicketStatus.RESOLVED else {}),
            **changes,
        )
        if updated != 1:
            raise InvalidTransition(f"ticket {ticket_id} cannot go from {previous} to {to_status}")
        record_event(
            ticket_id=ticket_id,
            stage=stage,
            action=f"status.{to_status}",
            actor_type=actor_type,
            actor=actor,
            details={"from": previous, "to": to_status, **(details or {})},
        )
    return Ticket.objects.get(pk=ticket_id)


def _enqueue_knowledge_sync(ticket_id: int) -> None:
    # By the task's name (tickets/tasks.py): the tasks module imports the services, not the reverse.
    transaction.on_commit(lambda: current_app.signature(SYNC_KNOWLEDGE_TASK, args=(ticket_id,)).apply_async())


def ticket_resolve(
    *,
    ticket_id: int,
    resolution: str,
    actor_type: str = AuditEvent.ActorType.AGENT,
    actor: str = "",
) -> Ticket:
    """Resolve a ticket with its final resolution; it then joins the knowledge base (via a worker)."""
    resolution = resolution.strip()
    if not resolution:
        raise ValidationError({"resolution": ["A resolution is required to resolve a ticket."]})
    with transaction.atomic():
        ticket = ticket_transition(
            ticket_id=ticket_id,
            to_status=TicketStatus.RESOLVED,
            stage=AuditEvent.Stage.AGENT,
            actor_type=actor_type,
            actor=actor,
            details={"resolution_sha256": text_fingerprint(resolution)},
            resolution=resolution,
        )
        _enqueue_knowledge_sync(ticket_id)
    return ticket


def ticket_reopen(
    *, ticket_id: int, reason: str = "", actor_type: str = AuditEvent.ActorType.AGENT, actor: str = ""
) -> Ticket:
    """Reopen a resolved or closed ticket; it leaves the knowledge base until resolved again."""
    with transaction.atomic():
        ticket = ticket_transition(
            ticket_id=ticket_id,
            to_status=TicketStatus.ROUTED,
            stage=AuditEvent.Stage.AGENT,
            actor_type=actor_type,
            actor=actor,
            details={"reopened": True, "reason": reason[:500]},
            resolved_at=None,
        )
        _enqueue_knowledge_sync(ticket_id)
    return ticket

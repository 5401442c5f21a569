"""The append-only, hash-chained audit trail of every ticket.

Each event's hash covers its own fields and the previous event's hash, so editing or deleting any
past event (even straight in the database) breaks the chain from there on, and ``verify_chain``
names the first broken link.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from tickets.models import AuditEvent, Ticket

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def text_fingerprint(text: str) -> str:
    """What the audit trail keeps of a text: its SHA-256, never the text itself."""
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


def event_hash(event: AuditEvent) -> str:
    """SHA-256 over every field of the event that matters, and the previous event's hash."""
    payload = canonical_json(
        {
            "ticket": event.ticket_id,
            "sequence": event.sequence,
            "stage": event.stage,
            "action": event.action,
            "actor_type": event.actor_type,
            "actor": event.actor,
            "details": event.details,
            "created_at": event.created_at.astimezone(UTC).isoformat(),
            "prev_hash": event.prev_hash,
        }
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def build_event(
    *,
    ticket_id: int,
    sequence: int,
    prev_hash: str,
    stage: str,
    action: str,
    actor_type: str = AuditEvent.ActorType.SYSTEM,
    actor: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """An unsaved event with its hash; ``record_event`` and bulk imports save it."""
    # Store exactly what is hashed: JSON round-tripping turns dates and decimals into strings.
    clean_details: dict[str, Any] = json.loads(canonical_json(details or {}))
    event = AuditEvent(
        ticket_id=ticket_id,
        sequence=sequence,
        stage=stage,
        action=action,
        actor_type=actor_type,
        actor=actor,
        details=clean_details,
        created_at=timezone.now(),
        prev_hash=prev_hash,
    )
    event.hash = event_hash(event)
    return event


def first_event(*, ticket_id: int, stage: str, action: str, **fields: Any) -> AuditEvent:
    """The unsaved first event of a new ticket's trail (for bulk creation)."""
    return build_event(
        ticket_id=ticket_id, sequence=1, prev_hash=GENESIS_HASH, stage=stage, action=action, **fields
    )


def record_event(
    *,
    ticket_id: int,
    stage: str,
    action: str,
    actor_type: str = AuditEvent.ActorType.SYSTEM,
    actor: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to a ticket's trail, chained to the previous one."""
    [event] = record_events(
        ticket_id=ticket_id,
        events=[
            {"stage": stage, "action": action, "actor_type": actor_type, "actor": actor, "details": details}
        ],
    )
    return event


def record_events(*, ticket_id: int, events: Sequence[dict[str, Any]]) -> list[AuditEvent]:
    """Append several events (dicts of stage, action, actor_type, actor, details) in one go, in order."""
    # On PostgreSQL the row lock makes writers to one trail take turns, so the insert cannot collide
    # and needs no savepoint (two round trips saved); elsewhere a collision is retried.
    retry_collisions = connection.vendor != "postgresql"
    for _attempt in range(5):
        try:
            with transaction.atomic(savepoint=retry_collisions):
                # Lock the ticket row so concurrent writers to one trail take turns (PostgreSQL);
                # SQLite serialises writers itself and the unique sequence catches the rest.
                Ticket.objects.select_for_update().only("id").get(pk=ticket_id)
                last = (
                    AuditEvent.objects.filter(ticket_id=ticket_id)
                    .order_by("-sequence")
                    .values_list("sequence", "hash")
                    .first()
                )
                sequence, prev_hash = (last[0], last[1]) if last else (0, GENESIS_HASH)
                built = []
                for fields in events:
                    sequence += 1
                    event = build_event(ticket_id=ticket_id, sequence=sequence, prev_hash=prev_hash, **fields)
                    prev_hash = event.hash
                    built.append(event)
                return AuditEvent.objects.bulk_create(built)
        except IntegrityError:
            continue
    raise RuntimeError(f"could not append to the audit trail of ticket {ticket_id}")


def record_events_many(*, events_by_ticket: Mapping[int, Sequence[dict[str, Any]]]) -> list[AuditEvent]:
    """:func:`record_events` for several tickets at once (a pipeline stage's batch), in the caller's
    transaction: on PostgreSQL one locking query, one lookup of the trails' ends and one INSERT for
    all, instead of three round trips per ticket; elsewhere ticket by ticket."""
    ids = sorted(ticket_id for ticket_id, events in events_by_ticket.items() if events)
    if not ids:
        return []
    if connection.vendor != "postgresql":
        return [
            e
            for ticket_id in ids
            for e in record_events(ticket_id=ticket_id, events=events_by_ticket[ticket_id])
        ]
    with transaction.atomic(savepoint=False):
        # The same row locks as record_events takes, in id order so two batches cannot deadlock.
        list(
            Ticket.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True)
        )
        ends = {
            ticket_id: (sequence, hash_)
            for ticket_id, sequence, hash_ in AuditEvent.objects.filter(ticket_id__in=ids)
            .order_by("ticket_id", "-sequence")
            .distinct("ticket_id")
            .values_list("ticket_id", "sequence", "hash")
        }
        built = []
        for ticket_id in ids:
            sequence, prev_hash = ends.get(ticket_id, (0, GENESIS_HASH))
            for fields in events_by_ticket[ticket_id]:
                sequence += 1
                event = build_event(ticket_id=ticket_id, sequence=sequence, prev_hash=prev_hash, **fields)
                prev_hash = event.hash
                built.append(event)
        return AuditEvent.objects.bulk_create(built)


@dataclass(frozen=True)
class ChainBreak:
    ticket_id: int
    sequence: int
    reason: str


def verify_chain(events: Iterable[AuditEvent]) -> Iterator[ChainBreak]:
    """Check events ordered by (ticket, sequence); yield every break found."""
    current_ticket: int | None = None
    expected_prev = GENESIS_HASH
    expected_sequence = 1
    for event in events:
        if event.ticket_id != current_ticket:
            current_ticket, expected_prev, expected_sequence = event.ticket_id, GENESIS_HASH, 1
        if event.sequence != expected_sequence:
            yield ChainBreak(
                event.ticket_id, event.sequence, f"expected event #{expected_sequence} (one is missing)"
            )
        if event.prev_hash != expected_prev:
            yield ChainBreak(event.ticket_id, event.sequence, "does not link to the previous event")
        recomputed = event_hash(event)
        if recomputed != event.hash:
            yield ChainBreak(event.ticket_id, event.sequence, "content was changed after it was written")
        expected_prev, expected_sequence = event.hash, event.sequence + 1

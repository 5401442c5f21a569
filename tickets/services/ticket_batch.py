"""Bulk ticket creation for helpdesk sync (``POST /api/v1/tickets/batch``).

Each item is idempotent: by its ``idempotency_key`` (per client, like the single create's
Idempotency-Key header: the same key with another body is refused) and by its ``external_id`` (unique
among API tickets: a repeat with the same subject and body is a replay, with another text a
refusal). An item needs one of the two, so a batch retried after a timeout never makes a ticket twice.

Every item gets a result: created, replayed (the existing ticket) or rejected (with a code, the reason
and the fields at fault); one item's problem never stops the others. The new tickets, their first
audit events and their keys are written in one transaction (``insert_all``: COPY on PostgreSQL); a
concurrent batch that inserts the same external id or key first makes this one look again (those
items are then replays). Once committed, the pipeline gets one message per ``PIPELINE_BATCH_SIZE`` tickets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from tickets.bulk_insert import insert_all
from tickets.models import AuditEvent, Channel, IdempotencyKey, Ticket
from tickets.pipeline import flow
from tickets.services.api_submission import IDEMPOTENCY_KEY_RE, api_ticket_fields, request_fingerprint
from tickets.services.lifecycle import _clean_ticket_text, intake_event

CREATED, REPLAYED, REJECTED = "created", "replayed", "rejected"
_ATTEMPTS = 3


@dataclass
class ItemResult:
    index: int
    result: str
    ticket: Ticket | None = None
    code: str = ""
    message: str = ""
    fields: dict[str, list[str]] = field(default_factory=dict)


def rejected(index: int, code: str, message: str, fields: dict[str, list[str]] | None = None) -> ItemResult:
    return ItemResult(index=index, result=REJECTED, code=code, message=message, fields=fields or {})


@dataclass
class _Item:
    index: int
    data: dict[str, Any]
    key: str
    external_id: str
    fingerprint: str


def _checked(index: int, data: dict[str, Any]) -> _Item | ItemResult:
    """The item's text cleaned (as a single create would) and its identity, or its rejection."""
    key = data.pop("idempotency_key", "") or ""
    external_id = data.get("external_id", "")
    if not key and not external_id:
        return rejected(
            index,
            "idempotency_required",
            "A batch item needs an external_id or an idempotency_key, so a retry never makes it twice.",
            {"external_id": ["Give external_id or idempotency_key."]},
        )
    if key and not IDEMPOTENCY_KEY_RE.match(key):
        return rejected(
            index,
            "invalid_idempotency_key",
            "idempotency_key must be 1 to 200 printable ASCII characters without spaces.",
            {"idempotency_key": ["Not a valid key."]},
        )
    fingerprint = request_fingerprint(data)
    try:
        data["subject"], data["body"] = _clean_ticket_text(subject=data["subject"], body=data["body"])
    except ValidationError as exc:
        return rejected(index, "validation_error", "The item is not valid.", exc.message_dict)
    return _Item(index=index, data=data, key=key, external_id=external_id, fingerprint=fingerprint)


def ticket_batch_create(
    *, items: Sequence[dict[str, Any] | ItemResult], actor: str, client_key: str
) -> list[ItemResult]:
    """Create the valid ``items`` (serializer-validated dicts; an :class:`ItemResult` is an item already
    rejected by the caller) in one transaction; one result per item, in order."""
    results: dict[int, ItemResult] = {}
    todo: list[_Item] = []
    for index, item in enumerate(items):
        checked = item if isinstance(item, ItemResult) else _checked(index, dict(item))
        if isinstance(checked, ItemResult):
            results[index] = checked
        else:
            todo.append(checked)
    created: list[int] = []
    for attempt in range(_ATTEMPTS):
        try:
            with transaction.atomic():
                outcome = _write(todo, actor=actor, client_key=client_key)
                created = [r.ticket.pk for r in outcome if r.result == CREATED and r.ticket]
                flow.enqueue_tickets(created)
            break
        except IntegrityError:  # a concurrent request took an external id or key first: look again
            if attempt == _ATTEMPTS - 1:
                raise
    results.update((r.index, r) for r in outcome)
    return [results[index] for index in range(len(items))]


def _write(todo: list[_Item], *, actor: str, client_key: str) -> list[ItemResult]:
    keys = {
        row.key: row
        for row in IdempotencyKey.objects.filter(client=client_key, key__in=[i.key for i in todo if i.key])
    }
    by_external_id = {
        t.external_id: t
        for t in Ticket.objects.filter(
            channel=Channel.API, external_id__in=[i.external_id for i in todo if i.external_id]
        ).only("id", "reference", "status", "external_id", "subject", "body", "created_at")
    }
    replayed_ids = [row.ticket_id for row in keys.values() if row.ticket_id]
    replayed = {t.pk: t for t in Ticket.objects.filter(pk__in=replayed_ids).only("id", "reference", "status")}
    results: list[ItemResult] = []
    new: list[tuple[_Item, Ticket]] = []
    seen_keys: dict[str, int] = {}
    seen_external_ids: dict[str, int] = {}
    now = timezone.now()
    for item in todo:
        first = seen_keys.get(item.key) if item.key else None
        if first is None and item.external_id:
            first = seen_external_ids.get(item.external_id)
        if first is not None:
            results.append(
                rejected(
                    item.index,
                    "duplicate_in_batch",
                    f"Item {first} of this batch has the same idempotency_key or external_id.",
                )
            )
            continue
        if item.key:
            seen_keys[item.key] = item.index
        if item.external_id:
            seen_external_ids[item.external_id] = item.index
        previous = keys.get(item.key) if item.key else None
        if previous is not None:
            if previous.request_sha256 != item.fingerprint:
                results.append(
                    rejected(
                        item.index,
                        "idempotency_key_reused",
                        "This idempotency_key was used with a different item.",
                        {"idempotency_key": ["Used with a different item."]},
                    )
                )
            elif previous.ticket_id in replayed:
                results.append(ItemResult(item.index, REPLAYED, replayed[previous.ticket_id]))
            else:
                results.append(rejected(item.index, "conflict", "The first request with this key failed."))
            continue
        existing = by_external_id.get(item.external_id) if item.external_id else None
        if existing is not None:
            if (existing.subject, existing.body) == (item.data["subject"], item.data["body"]):
                results.append(ItemResult(item.index, REPLAYED, existing))
            else:
                results.append(
                    rejected(
                        item.index,
                        "duplicate_external_id",
                        f"A ticket with this external_id exists already ({existing.reference}, id "
                        f"{existing.pk}) with another subject or body.",
                        {"external_id": [f"Already used by ticket {existing.pk}."]},
                    )
                )
            continue
        new.append((item, _new_ticket(item.data, now)))
    insert_all([ticket for _, ticket in new])
    insert_all(
        [
            intake_event(ticket, actor_type=AuditEvent.ActorType.API_CLIENT, actor=actor, batch=True)
            for _, ticket in new
        ]
    )
    insert_all(
        [
            IdempotencyKey(
                client=client_key,
                key=item.key,
                request_sha256=item.fingerprint,
                ticket=ticket,
                response_status=201,
            )
            for item, ticket in new
            if item.key
        ]
    )
    results.extend(ItemResult(item.index, CREATED, ticket) for item, ticket in new)
    return results


def _new_ticket(data: dict[str, Any], now: Any) -> Ticket:
    return Ticket(**api_ticket_fields(data), created_at=now, status_changed_at=now)

"""Ticket creation through the REST API: ``ticket_submit`` made idempotent (Idempotency-Key) and
its conflicts answered in the API's error format. The API's reads are in ``tickets.api.selectors``."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError

from tickets.api.errors import ApiError
from tickets.models import AuditEvent, Channel, IdempotencyKey, Ticket
from tickets.services.submission import ticket_submit

IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")


def _duplicate_external_id(external_id: str) -> ApiError:
    existing = (
        Ticket.objects.filter(channel=Channel.API, external_id=external_id).values("id", "reference").first()
    )
    where = f" ({existing['reference']}, id {existing['id']})" if existing else ""
    return ApiError(
        status_code=409,
        code="duplicate_external_id",
        message=f"A ticket with this external_id exists already{where}.",
        fields={"external_id": [f"Already used by ticket {existing['id'] if existing else '?'}."]},
    )


def api_ticket_fields(data: dict[str, Any]) -> dict[str, Any]:
    """A validated API item's ticket fields, as the single and the batch create store them."""
    return {
        "subject": data["subject"],
        "body": data["body"],
        "requester_email": data.get("requester_email", ""),
        "requester_name": data.get("requester_name", ""),
        "channel": Channel.API,
        "external_id": data.get("external_id", ""),
    }


def _create(data: dict[str, Any], *, actor: str, key: IdempotencyKey | None = None) -> Ticket:
    """The ticket, and with ``key`` its idempotency key row, written together (all or none)."""

    def key_row(ticket: Ticket) -> list[IdempotencyKey]:
        if key is None:
            return []
        key.ticket = ticket
        return [key]

    return ticket_submit(
        **api_ticket_fields(data),
        actor_type=AuditEvent.ActorType.API_CLIENT,
        actor=actor,
        linked_rows=key_row,
    )


def _is_conflict(error: Exception) -> bool:
    """A unique index refused the ticket: its external id (reported by ``ticket_create`` as a
    non-field error) or, with no external id, the idempotency key."""
    if isinstance(error, ValidationError):
        return NON_FIELD_ERRORS in getattr(error, "error_dict", {})
    return isinstance(error, IntegrityError)


@dataclass(frozen=True)
class Created:
    ticket: Ticket
    replayed: bool


def request_fingerprint(data: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")
    ).hexdigest()


def api_ticket_create(
    *, data: dict[str, Any], actor: str, client_key: str, idempotency_key: str | None
) -> Created:
    """Create a ticket from the API; with an Idempotency-Key, a repeat gets the first answer.

    The key row is inserted with the ticket, in the same statement (no extra round trip on the hot
    path). A concurrent repeat blocks on a unique index (the key's, or the external id's) until the
    first commits, then fails whole and replays the first answer. The same key with another body is
    refused (422), so a client bug cannot silently drop a ticket.
    """
    if idempotency_key is None:
        try:
            return Created(_create(data, actor=actor), replayed=False)
        except (ValidationError, IntegrityError) as error:
            if data.get("external_id") and _is_conflict(error):
                raise _duplicate_external_id(data["external_id"]) from None
            raise
    if not IDEMPOTENCY_KEY_RE.match(idempotency_key):
        raise ApiError(
            status_code=400,
            code="invalid_idempotency_key",
            message="Idempotency-Key must be 1 to 200 printable ASCII characters without spaces.",
        )
    fingerprint = request_fingerprint(data)
    key = IdempotencyKey(
        client=client_key, key=idempotency_key, request_sha256=fingerprint, response_status=201
    )
    try:  # the key row is written with the ticket: a conflict on either writes nothing
        return Created(_create(data, actor=actor, key=key), replayed=False)
    except (ValidationError, IntegrityError) as error:
        if not _is_conflict(error):
            raise
    previous = (
        IdempotencyKey.objects.filter(client=client_key, key=idempotency_key).select_related("ticket").first()
    )
    if previous is None:  # the key was free: the conflict was the external id
        if data.get("external_id"):
            raise _duplicate_external_id(data["external_id"])
        raise ApiError(status_code=409, code="conflict", message="The ticket conflicts with an existing one.")
    if previous.request_sha256 != fingerprint:
        raise ApiError(
            status_code=422,
            code="idempotency_key_reused",
            message="This Idempotency-Key was used with a different request body.",
        )
    if previous.ticket is None:
        raise ApiError(status_code=409, code="conflict", message="The first request with this key failed.")
    return Created(previous.ticket, replayed=True)

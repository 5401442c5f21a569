"""Signed webhooks: the pipeline emits events, a worker delivers them, with retries, never blocking.

``webhook_emit`` writes one delivery row per subscribed endpoint inside the caller's transaction
(so an event exists exactly when the change that caused it was committed) and enqueues
``deliver_webhook`` on commit. A stage that runs twice emits twice, but the unique
(endpoint, event, ticket, occurrence) row makes the second emit a no-op: a receiver gets each event
once. Each attempt is recorded on the row; failures are retried with exponential backoff and jitter
until ``WEBHOOK_MAX_ATTEMPTS``.

A receiver checks ``X-Switchboard-Signature: sha256=<hex>``, the HMAC-SHA256 with its endpoint's
secret of ``"<X-Switchboard-Timestamp>.<raw body>"`` (``webhook_verify`` does it), rejects old
timestamps, and uses ``X-Switchboard-Delivery`` to drop a repeat should a worker die mid-delivery.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tickets.models import Ticket, WebhookDelivery, WebhookEndpoint, WebhookEvent

logger = logging.getLogger(__name__)

EVENTS = tuple(WebhookEvent.values)
SIGNATURE_HEADER = "X-Switchboard-Signature"
TIMESTAMP_HEADER = "X-Switchboard-Timestamp"
EVENT_HEADER = "X-Switchboard-Event"
DELIVERY_HEADER = "X-Switchboard-Delivery"
_RESPONSE_KEPT_CHARS = 2000
_ATTEMPT_LOG_KEPT = 20


# --- signing -------------------------------------------------------------------------------------


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``b"<timestamp>." + body`` with the endpoint's secret."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def webhook_verify(
    *, secret: str, headers: Mapping[str, str], body: bytes, tolerance_seconds: int = 300
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        timestamp = int(lowered.get(TIMESTAMP_HEADER.lower(), ""))
    except ValueError:
        return False
    if abs(time.time() - timestamp) > tolerance_seconds:
        return False
    expected = webhook_signature(secret=secret, timestamp=timestamp, body=body)
    return hmac.compare_digest(expected, lowered.get(SIGNATURE_HEADER.lower(), ""))


# --- emitting (called by the pipeline and the agent actions, inside their transaction) -----------


def webhook_subscriptions() -> dict[str, list[int]]:
    """The active endpoints subscribed to each event (one query): read once for a batch of emits."""
    subscribed: dict[str, list[int]] = {}
    for endpoint_id, events in WebhookEndpoint.objects.filter(is_active=True).values_list("id", "events"):
        for event in events if isinstance(events, list) else ():
            subscribed.setdefault(event, []).append(endpoint_id)
    return subscribed


def webhook_emit(
    *,
    event: str,
    ticket_id: int,
    payload: dict[str, Any],
    occurrence: str = "",
    subscriptions: Mapping[str, list[int]] | None = None,
) -> int:
    """Record ``event`` for every active endpoint subscribed to it; deliver after commit.

    Returns how many deliveries were created: 0 when nobody subscribed or when this
    (event, ticket, occurrence) was already emitted. ``occurrence`` tells apart legitimate repeats of
    an event for one ticket (resolved, reopened, resolved again: pass e.g. the resolution's time).
    ``subscriptions``: :func:`webhook_subscriptions`, read once by a caller that emits for a batch
    (in the same transaction); read here without it.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}; one of {', '.join(EVENTS)}")
    if subscriptions is None:
        subscriptions = webhook_subscriptions()
    endpoint_ids = list(dict.fromkeys(subscriptions.get(event, ())))
    if not endpoint_ids:
        return 0
    ticket = Ticket.objects.values("id", "reference", "external_id", "channel").get(pk=ticket_id)
    now = timezone.now()
    rows = []
    for endpoint_id in endpoint_ids:
        delivery_uuid = uuid.uuid4()
        body = {
            "id": str(delivery_uuid),
            "event": event,
            "created_at": now.isoformat(),
            "ticket": ticket,
            "data": payload,
        }
        rows.append(
            WebhookDelivery(
                uuid=delivery_uuid,
                endpoint_id=endpoint_id,
                event=event,
                ticket_id=ticket_id,
                occurrence=occurrence,
                body=json.dumps(body, sort_keys=True, separators=(",", ":"), default=str),
                next_attempt_at=now,
            )
        )
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    created = list(
        WebhookDelivery.objects.filter(uuid__in=[row.uuid for row in rows]).values_list("id", flat=True)
    )
    for delivery_id in created:
        transaction.on_commit(functools.partial(_enqueue, delivery_id), robust=True)
    return len(created)


def emit_resolved(ticket: Ticket, *, actor: str) -> int:
    """``ticket.resolved`` for a ticket just resolved; one per resolution (its time tells them apart)."""
    resolved_at = ticket.resolved_at.isoformat() if ticket.resolved_at else ""
    return webhook_emit(
        event=WebhookEvent.TICKET_RESOLVED,
        ticket_id=ticket.pk,
        payload={
            "status": ticket.status,
            "resolved_at": resolved_at,
            "resolution_chars": len(ticket.resolution),
            "team": ticket.team.name if ticket.team else None,
            "category": ticket.category.name if ticket.category else None,
            "actor": actor,
        },
        occurrence=resolved_at,
    )


def _enqueue(delivery_id: int, countdown: float = 0) -> None:
    try:
        deliver_webhook.apply_async((delivery_id,), countdown=countdown)
    except Exception:  # the broker is down: the row stays pending and the sweeper re-sends it
        logger.exception("could not enqueue webhook delivery %s", delivery_id)


# --- delivering (in a worker) --------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptOutcome:
    status: str
    retry_in: float | None = None


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with jitter: base * 2^(attempts-1), capped, times 0.5..1."""
    ceiling = min(
        settings.WEBHOOK_RETRY_MAX_SECONDS, settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempts - 1)
    )
    return float(ceiling * random.uniform(0.5, 1.0))


def _claim(delivery_id: int) -> bool:
    """Take the delivery for one attempt; False when it is done, not due, or another worker has it."""
    now = timezone.now()
    lease = timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + 30)
    return (
        WebhookDelivery.objects.filter(
            pk=delivery_id,
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at__lte=now + timedelta(seconds=1),  # an ETA may fire a little early
        )
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=now + lease)
        == 1
    )


def webhook_attempt(*, delivery_id: int) -> AttemptOutcome:
    """Send one delivery once and record the attempt; say whether and when to try again."""
    if not _claim(delivery_id):
        return AttemptOutcome("skipped")
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    started = time.monotonic()
    status_code: int | None = None
    response_text = ""
    error = ""
    if not endpoint.is_active:
        error = "the endpoint was disabled"
    else:
        body = delivery.body.encode("utf-8")
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Switchboard-Webhooks/1",
            SIGNATURE_HEADER: webhook_signature(secret=endpoint.secret, timestamp=timestamp, body=body),
            TIMESTAMP_HEADER: str(timestamp),
            EVENT_HEADER: delivery.event,
            DELIVERY_HEADER: str(delivery.uuid),
        }
        try:
            response = httpx.post(
                endpoint.url,
                content=body,
                headers=headers,
                timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
                follow_redirects=False,
            )
            status_code = response.status_code
            response_text = response.text[:_RESPONSE_KEPT_CHARS]
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
    return _record(delivery, status_code, response_text, error, time.monotonic() - started)


def _record(
    delivery: WebhookDelivery, status_code: int | None, response_text: str, error: str, seconds: float
) -> AttemptOutcome:
    now = timezone.now()
    delivery.attempts += 1
    delivery.attempt_log = [
        *delivery.attempt_log,
        {"at": now.isoformat(), "status_code": status_code, "error": error, "ms": round(seconds * 1000, 1)},
    ][-_ATTEMPT_LOG_KEPT:]
    delivery.last_status_code = status_code
    delivery.last_response = response_text
    delivery.last_error = error
    delivery.locked_until = None
    retry_in: float | None = None
    if not error:
        delivery.status = WebhookDelivery.Status.SUCCEEDED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS or not delivery.endpoint.is_active:
        delivery.status = WebhookDelivery.Status.FAILED
        delivery.next_attempt_at = None
    else:
        retry_in = backoff_seconds(delivery.attempts)
        delivery.next_attempt_at = now + timedelta(seconds=retry_in)
    delivery.save(
        update_fields=[
            "attempts",
            "attempt_log",
            "last_status_code",
            "last_response",
            "last_error",
            "locked_until",
            "status",
            "delivered_at",
            "next_attempt_at",
        ]
    )
    if error:
        logger.info("webhook delivery %s attempt %s failed: %s", delivery.pk, delivery.attempts, error)
    return AttemptOutcome(delivery.status, retry_in)


@shared_task(name="tickets.deliver_webhook", acks_late=True, ignore_result=True)
def deliver_webhook(delivery_id: int) -> str:
    """One attempt at one delivery; a failure schedules the next attempt as a new message."""
    outcome = webhook_attempt(delivery_id=delivery_id)
    if outcome.retry_in is not None:
        _enqueue(delivery_id, countdown=outcome.retry_in)
    return outcome.status


@shared_task(name="tickets.webhook_requeue_stale", ignore_result=True)
def webhook_requeue_stale(older_than_seconds: int = 120) -> int:
    """Re-enqueue pending deliveries whose message was lost (broker down at commit, worker gone).

    Safe to run any time: an attempt claims its row first, so a delivery is never sent twice at once.
    """
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stale = list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lt=cutoff)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=timezone.now()))
        .values_list("id", flat=True)[:1000]
    )
    for delivery_id in stale:
        _enqueue(delivery_id)
    return len(stale)


# --- endpoints (the admin API and Django admin call these) --------------------------------------


def webhook_endpoint_create(
    *, name: str, url: str, events: list[str], created_by: Any = None, is_active: bool = True
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        name=name.strip(),
        url=url.strip(),
        events=sorted(set(events)),
        is_active=is_active,
        created_by=created_by if getattr(created_by, "pk", None) else None,
    )
    endpoint.full_clean()
    endpoint.save(force_insert=True)
    return endpoint


def webhook_endpoint_update(*, endpoint: WebhookEndpoint, changes: dict[str, Any]) -> WebhookEndpoint:
    """Change an endpoint's name, URL, events or active flag (validated as on creation)."""
    for field, value in changes.items():
        setattr(endpoint, field, sorted(set(value)) if field == "events" else value)
    endpoint.full_clean()
    endpoint.save()
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Remove an endpoint (its deliveries go with it)."""
    endpoint.delete()

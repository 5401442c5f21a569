"""Read-side queries of the REST API: the views read through these and write through the services.

Every ticket query starts from a queryset the caller already limited to what the client may see
(``tickets.api.permissions.visible_tickets``), so a filter here can never widen access. A missing
object is the API's 404 (``ApiError``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings
from django.db.models import QuerySet

from tickets.api.errors import ApiError
from tickets.models import (
    ApiToken,
    AuditEvent,
    ImportJob,
    Suggestion,
    Ticket,
    WebhookDelivery,
    WebhookEndpoint,
)

logger = logging.getLogger("tickets.api")


REFERENCE_RE = re.compile(r"^SB-[A-Z0-9]{4}-[A-Z0-9]{4}$")


MAX_BIGINT = 2**63 - 1


def find_ticket(tickets: QuerySet[Ticket], lookup: str) -> Ticket:
    """The ticket with this id (digits) or reference (SB-XXXX-XXXX) among ``tickets``; else 404."""
    if lookup.isdigit() and 0 < int(lookup) <= MAX_BIGINT:
        ticket = tickets.filter(pk=int(lookup)).first()
    elif REFERENCE_RE.match(lookup.upper()):
        ticket = tickets.filter(reference=lookup.upper()).first()
    else:
        ticket = None
    if ticket is None:
        raise ApiError(status_code=404, code="not_found", message="No such ticket (or not visible to you).")
    return ticket


def search_similar(*, text: str, k: int, team: str, category: str) -> list[dict[str, Any]]:
    """Similar resolved tickets, searched by a worker (the web process holds no index)."""
    from tickets.api.tasks import api_search

    try:
        result = api_search.apply_async((text, k, team or None, category or None))
        hits: list[dict[str, Any]] = result.get(timeout=settings.API_SEARCH_TIMEOUT_SECONDS)
    except CeleryTimeoutError:
        raise ApiError(
            status_code=503, code="search_unavailable", message="The search workers did not answer in time."
        ) from None
    except ApiError:
        raise
    except Exception:
        logger.exception("search failed")
        raise ApiError(
            status_code=503, code="search_unavailable", message="The search failed; try again."
        ) from None
    known: dict[int, dict[str, Any]] = {
        row["id"]: dict(row)
        for row in Ticket.objects.filter(pk__in=[hit["ticket_id"] for hit in hits]).values(
            "id", "reference", "subject", "resolution"
        )
    }
    return [
        {
            **hit,
            "reference": known.get(hit["ticket_id"], {}).get("reference"),
            "subject": known.get(hit["ticket_id"], {}).get("subject"),
            "resolution": known.get(hit["ticket_id"], {}).get("resolution"),
        }
        for hit in hits
    ]


def ticket_payload_parts(ticket_id: int) -> tuple[Ticket, Suggestion | None, dict[int, dict[str, Any]]]:
    """A ticket, its latest suggestion and the cited tickets' id, reference and subject, in a few
    queries."""
    ticket = Ticket.objects.select_related("team", "category", "assignee").get(pk=ticket_id)
    suggestion = (
        Suggestion.objects.filter(ticket_id=ticket_id)
        .select_related("team", "category")
        .order_by("-created_at", "-id")
        .first()
    )
    cited: dict[int, dict[str, Any]] = {}
    if suggestion is not None and isinstance(suggestion.citations, list):
        ids = [int(item.get("ticket_id", 0)) for item in suggestion.citations if isinstance(item, dict)]
        cited = {
            row["id"]: dict(row)
            for row in Ticket.objects.filter(pk__in=ids).values("id", "reference", "subject")
        }
    return ticket, suggestion, cited


def ticket_suggestion(ticket_id: int, suggestion_id: int | None = None) -> Suggestion:
    """The ticket's suggestion ``suggestion_id``, or its latest; 404 when there is none."""
    suggestions = Suggestion.objects.filter(ticket_id=ticket_id).order_by("-created_at", "-id")
    suggestion = (suggestions.filter(pk=suggestion_id) if suggestion_id is not None else suggestions).first()
    if suggestion is None:
        raise ApiError(status_code=404, code="not_found", message="This ticket has no such suggestion.")
    return suggestion


def audit_events(ticket: Ticket) -> list[AuditEvent]:
    return list(ticket.audit_events.order_by("sequence"))


def import_jobs() -> QuerySet[ImportJob]:
    return ImportJob.objects.all()


def import_job(job_id: int) -> ImportJob:
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        raise ApiError(status_code=404, code="not_found", message="No such import job.")
    return job


def webhook_endpoints() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.all()


def webhook_endpoint(endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise ApiError(status_code=404, code="not_found", message="No such webhook endpoint.")
    return endpoint


def webhook_endpoint_name_taken(name: str) -> bool:
    return WebhookEndpoint.objects.filter(name=name.strip()).exists()


def webhook_deliveries(endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(endpoint=endpoint)


def api_tokens() -> QuerySet[ApiToken]:
    return ApiToken.objects.all()


def api_token_name_taken(name: str) -> bool:
    return ApiToken.objects.filter(name=name.strip()).exists()


def api_token_id(token_id: int) -> int:
    """``token_id`` when such a token exists; 404 otherwise."""
    if not ApiToken.objects.filter(pk=token_id).exists():
        raise ApiError(status_code=404, code="not_found", message="No such token.")
    return token_id

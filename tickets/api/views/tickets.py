"""/tickets: list, create, read, update, resolve, reopen, judge the suggestion, read the audit trail.

The API's views parse, check who may, call a service, answer; business logic lives in
``tickets.services``. One module per resource in this package; ``base`` holds what they share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from tickets.api import analytics, schema  # noqa: F401 (schema registers the auth extensions)
from tickets.api.filters import TicketFilter
from tickets.api.pagination import CursorListMixin
from tickets.api.permissions import ReadOrWriteScope, ReadScope, WriteScope
from tickets.api.selectors import (
    audit_events,
    find_ticket,
    ticket_payload_parts,
    ticket_suggestion,
)
from tickets.api.serializers.tickets import (
    AuditEventSerializer,
    AuditTrailSerializer,
    FeedbackSerializer,
    ReopenSerializer,
    ResolveSerializer,
    TicketCreateSerializer,
    TicketSerializer,
    TicketSummarySerializer,
    TicketUpdateSerializer,
    new_ticket_representation,
)
from tickets.api.views.base import IDEMPOTENCY_PARAM, TICKET_PARAM, ApiView, error_response
from tickets.audit import verify_chain
from tickets.services import agent_actions as actions
from tickets.services.api_submission import api_ticket_create


def ticket_payload(ticket_id: int) -> dict[str, Any]:
    """A ticket with its latest suggestion and the cited tickets' references, in a few queries."""
    ticket, suggestion, cited = ticket_payload_parts(ticket_id)
    return dict(TicketSerializer(ticket, context={"suggestion": suggestion, "cited_tickets": cited}).data)


@contextmanager
def _input_names(renames: dict[str, str]) -> Iterator[None]:
    """Name the API's inputs in errors a service raised with its own names (team -> team_id)."""
    try:
        yield
    except DjangoValidationError as exc:
        if not hasattr(exc, "error_dict"):
            raise
        raise DjangoValidationError(
            {renames.get(field, field): messages for field, messages in exc.message_dict.items()}
        ) from None


# --- tickets -------------------------------------------------------------------------------------


class TicketCollectionView(CursorListMixin, ApiView):
    permission_classes = [ReadOrWriteScope]
    filterset_class = TicketFilter

    @extend_schema(
        operation_id="tickets_list",
        responses={200: TicketSummarySerializer(many=True)},
        summary="List and filter tickets (newest first, cursor pages)",
    )
    def get(self, request: Request) -> Response:
        return self.cursor_page(self.tickets().select_related("team", "category"), TicketSummarySerializer)

    @extend_schema(
        operation_id="tickets_create",
        request=TicketCreateSerializer,
        parameters=[IDEMPOTENCY_PARAM],
        responses={
            201: TicketSerializer,
            200: OpenApiResponse(TicketSerializer, description="A repeat with the same Idempotency-Key."),
            409: error_response("external_id is taken by another ticket"),
            422: error_response("the Idempotency-Key was used with another body"),
        },
        summary="Create a ticket (it enters the pipeline)",
    )
    def post(self, request: Request) -> Response:
        data = self.data(TicketCreateSerializer)
        principal = self.principal
        created = api_ticket_create(
            data=data,
            actor=principal.actor,
            client_key=principal.client_key,
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        if created.replayed:
            return Response(ticket_payload(created.ticket.pk), headers={"Idempotent-Replayed": "true"})
        # Just made: no suggestion yet, nothing to look up.
        body = new_ticket_representation(created.ticket)
        return Response(
            body, status=status.HTTP_201_CREATED, headers={"Location": f"/api/v1/tickets/{created.ticket.pk}"}
        )


class TicketDetailView(ApiView):
    permission_classes = [ReadOrWriteScope]

    @extend_schema(
        operation_id="tickets_retrieve", parameters=[TICKET_PARAM], responses={200: TicketSerializer}
    )
    def get(self, request: Request, ticket: str) -> Response:
        return Response(ticket_payload(find_ticket(self.tickets(), ticket).pk))

    @extend_schema(
        operation_id="tickets_update",
        parameters=[TICKET_PARAM],
        request=TicketUpdateSerializer,
        responses={200: TicketSerializer, 409: error_response("the ticket's status does not allow it")},
        summary="Reassign (team, category) and/or set the priority",
    )
    def patch(self, request: Request, ticket: str) -> Response:
        found = find_ticket(self.tickets(), ticket)
        data = self.data(TicketUpdateSerializer)
        with transaction.atomic(), _input_names({"team": "team_id", "category": "category_id"}):
            if "team_id" in data or "category_id" in data:
                actions.ticket_reassign(
                    ticket_id=found.pk,
                    team_id=data.get("team_id"),
                    category_id=data.get("category_id"),
                    reason=data.get("reason", ""),
                    **self.actor(),
                )
            if "priority" in data:
                actions.ticket_set_priority(ticket_id=found.pk, priority=data["priority"], **self.actor())
        return Response(ticket_payload(found.pk))


class TicketResolveView(ApiView):
    permission_classes = [WriteScope]

    @extend_schema(
        operation_id="tickets_resolve",
        parameters=[TICKET_PARAM],
        request=ResolveSerializer,
        responses={200: TicketSerializer, 409: error_response("the ticket's status does not allow it")},
        summary="Resolve with the final resolution (it joins the knowledge base)",
    )
    def post(self, request: Request, ticket: str) -> Response:
        found = find_ticket(self.tickets(), ticket)
        data = self.data(ResolveSerializer)
        actions.ticket_resolve_with_feedback(
            ticket_id=found.pk, resolution=data["resolution"], **self.actor()
        )
        return Response(ticket_payload(found.pk))


class TicketReopenView(ApiView):
    permission_classes = [WriteScope]

    @extend_schema(
        operation_id="tickets_reopen",
        parameters=[TICKET_PARAM],
        request=ReopenSerializer,
        responses={200: TicketSerializer, 409: error_response("the ticket is not resolved or closed")},
        summary="Reopen a resolved or closed ticket",
    )
    def post(self, request: Request, ticket: str) -> Response:
        found = find_ticket(self.tickets(), ticket)
        data = self.data(ReopenSerializer)
        actions.ticket_reopen_with_feedback(ticket_id=found.pk, reason=data["reason"], **self.actor())
        return Response(ticket_payload(found.pk))


class TicketFeedbackView(ApiView):
    permission_classes = [WriteScope]

    @extend_schema(
        operation_id="tickets_feedback",
        parameters=[TICKET_PARAM],
        request=FeedbackSerializer,
        responses={200: TicketSerializer, 409: error_response("the suggestion or ticket does not allow it")},
        summary="Accept, edit or reject the ticket's suggestion",
    )
    def post(self, request: Request, ticket: str) -> Response:
        found = find_ticket(self.tickets(), ticket)
        data = self.data(FeedbackSerializer)
        suggestion = ticket_suggestion(found.pk, data.get("suggestion_id"))
        if data["action"] == "accept":
            actions.suggestion_accept(suggestion_id=suggestion.pk, **self.actor())
        elif data["action"] == "edit":
            actions.suggestion_edit(
                suggestion_id=suggestion.pk, resolution_text=data["resolution_text"], **self.actor()
            )
        else:
            actions.suggestion_reject(suggestion_id=suggestion.pk, reason=data["reason"], **self.actor())
        return Response(ticket_payload(found.pk))


class TicketAuditView(ApiView):
    permission_classes = [ReadScope]

    @extend_schema(
        operation_id="tickets_audit", parameters=[TICKET_PARAM], responses={200: AuditTrailSerializer}
    )
    def get(self, request: Request, ticket: str) -> Response:
        found = find_ticket(self.tickets(), ticket)
        events = audit_events(found)
        breaks = [f"#{item.sequence}: {item.reason}" for item in verify_chain(events)]
        return Response(
            {
                "ticket_id": found.pk,
                "reference": found.reference,
                "chain_valid": not breaks,
                "breaks": breaks,
                "events": AuditEventSerializer(events, many=True).data,
            }
        )

"""The REST API's views: parse, check who may, call a service, answer. Business logic lives in
``tickets.services``, ``tickets.actions``, ``tickets.api.services`` and friends."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import parsers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tickets import actions
from tickets.api import analytics, schema  # noqa: F401 (schema registers the auth extensions)
from tickets.api import serializers as s
from tickets.api.authentication import (
    BearerTokenAuthentication,
    Principal,
    SessionAuthentication,
    principal_of,
)
from tickets.api.errors import ApiError, PayloadTooLarge, exception_handler
from tickets.api.filters import ImportJobFilter, TicketFilter, WebhookDeliveryFilter
from tickets.api.imports import import_job_create, import_options
from tickets.api.pagination import CursorListMixin
from tickets.api.permissions import (
    AdminScope,
    ReadOrWriteScope,
    ReadScope,
    WriteScope,
    analytics_tickets,
    may_view_analytics,
    visible_tickets,
)
from tickets.api.services import api_ticket_create, find_ticket, search_similar
from tickets.api.throttling import ClientRateThrottle
from tickets.audit import verify_chain
from tickets.models import ApiToken, ImportJob, Suggestion, Ticket, WebhookDelivery, WebhookEndpoint
from tickets.tokens import token_create, token_forget_cached, token_revoke
from tickets.webhooks import webhook_endpoint_create

TICKET_PARAM = OpenApiParameter(
    "ticket",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The ticket's id or its reference (SB-XXXX-XXXX).",
    pattern=r"^([1-9][0-9]{0,17}|SB-[A-Z0-9]{4}-[A-Z0-9]{4})$",
)
ID_PARAM = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)
IDEMPOTENCY_PARAM = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Any unique string per logical request (a UUID): a retry with it never makes a second "
    "ticket and gets the first answer; reusing it with another body is refused (422).",
    pattern=r"^[\x21-\x7e]{1,200}$",
)


def _error(description: str) -> OpenApiResponse:
    """An error answer; its body is the Error component (tickets.api.schema sets it)."""
    return OpenApiResponse(OpenApiTypes.OBJECT, description=description)


class LimitedJSONParser(parsers.JSONParser):
    """JSON, refused with 413 past ``API_MAX_BODY_BYTES`` even without a Content-Length."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge(limit)
        return super().parse(io.BytesIO(raw), media_type, parser_context)


class ApiView(APIView):
    """Bearer tokens or the session; per-client rate limits; JSON in and out; one error format."""

    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    throttle_classes = [ClientRateThrottle]
    parser_classes = [LimitedJSONParser]
    renderer_classes = [JSONRenderer]
    permission_classes = [ReadScope]
    max_body_bytes_setting = "API_MAX_BODY_BYTES"

    def get_exception_handler(self) -> Any:
        return exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        limit = int(getattr(settings, self.max_body_bytes_setting))
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            raise PayloadTooLarge(limit)
        super().initial(request, *args, **kwargs)

    @property
    def principal(self) -> Principal:
        return principal_of(self.request)

    def tickets(self) -> QuerySet[Ticket]:
        return visible_tickets(self.principal)

    def data(self, serializer_class: type[s.StrictSerializer], data: Any = None) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data if data is None else data)
        serializer.is_valid(raise_exception=True)
        validated: dict[str, Any] = dict(serializer.validated_data)
        return validated

    def query(self, serializer_class: type[s.StrictSerializer]) -> dict[str, Any]:
        return self.data(
            serializer_class, {key: self.request.query_params.get(key) for key in self.request.query_params}
        )

    def actor(self) -> dict[str, Any]:
        principal = self.principal
        return {"user": principal.user, "actor": principal.actor, "actor_type": principal.actor_type}


def ticket_payload(ticket_id: int) -> dict[str, Any]:
    """A ticket with its latest suggestion and the cited tickets' references, in a few queries."""
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
    return dict(s.TicketSerializer(ticket, context={"suggestion": suggestion, "cited_tickets": cited}).data)


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
        responses={200: s.TicketSummarySerializer(many=True)},
        summary="List and filter tickets (newest first, cursor pages)",
    )
    def get(self, request: Request) -> Response:
        return self.cursor_page(self.tickets().select_related("team", "category"), s.TicketSummarySerializer)

    @extend_schema(
        operation_id="tickets_create",
        request=s.TicketCreateSerializer,
        parameters=[IDEMPOTENCY_PARAM],
        responses={
            201: s.TicketSerializer,
            200: OpenApiResponse(s.TicketSerializer, description="A repeat with the same Idempotency-Key."),
            409: _error("external_id is taken by another ticket"),
            422: _error("the Idempotency-Key was used with another body"),
        },
        summary="Create a ticket (it enters the pipeline)",
    )
    def post(self, request: Request) -> Response:
        data = self.data(s.TicketCreateSerializer)
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
        body = s.new_ticket_representation(created.ticket)
        return Response(
            body, status=status.HTTP_201_CREATED, headers={"Location": f"/api/v1/tickets/{created.ticket.pk}"}
        )


class TicketDetailView(ApiView):
    permission_classes = [ReadOrWriteScope]

    @extend_schema(
        operation_id="tickets_retrieve", parameters=[TICKET_PARAM], responses={200: s.TicketSerializer}
    )
    def get(self, request: Request, ticket: str) -> Response:
        return Response(ticket_payload(find_ticket(self.tickets(), ticket).pk))

    @extend_schema(
        operation_id="tickets_update",
        parameters=[TICKET_PARAM],
        request=s.TicketUpdateSerializer,
        responses={200: s.TicketSerializer, 409: _error("the ticket's status does not allow it")},
        summary="Reassign (team, category) and/or set the priority",
    )
    def patch(self, request: Request, ticket: str) -> Response:
        found = find_ticket(self.tickets(), ticket)
        data = self.data(s.TicketUpdateSerializer)
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
        request=s.ResolveSerializer,
        responses={200: s.TicketSerializer, 409: _error("the ticket's status does not allow it")},
        summary="Resolve with the final resolution (it joins the knowledge base)",
    )
    def post(self, request: Request, ticket: str) -> Response:
        found = find_ticket(self.tickets(), ticket)
        data = self.data(s.ResolveSerializer)
        actions.ticket_resolve_with_feedback(
            ticket_id=found.pk, resolution=data["resolution"], **self.actor()
        )
        return Response(ticket_payload(found.pk))


class TicketReopenView(ApiView):
    permission_classes = [WriteScope]

    @extend_schema(
        operation_id="tickets_reopen",
        parameters=[TICKET_PARAM],
        request=s.ReopenSerializer,
        responses={200: s.TicketSerializer, 409: _error("the ticket is not resolved or closed")},
        summary="Reopen a resolved or closed ticket",
    )
    def post(self, request: Request, ticket: str) -> Response:
        found = find_ticket(self.tickets(), ticket)
        data = self.data(s.ReopenSerializer)
        actions.ticket_reopen_with_feedback(ticket_id=found.pk, reason=data["reason"], **self.actor())
        return Response(ticket_payload(found.pk))


class TicketFeedbackView(ApiView):
    permission_classes = [WriteScope]

    @extend_schema(
        operation_id="tickets_feedback",
        parameters=[TICKET_PARAM],
        request=s.FeedbackSerializer,
        responses={200: s.TicketSerializer, 409: _error("the suggestion or ticket does not allow it")},
        summary="Accept, edit or reject the ticket's suggestion",
    )
    def post(self, request: Request, ticket: str) -> Response:
        found = find_ticket(self.tickets(), ticket)
        data = self.data(s.FeedbackSerializer)
        suggestions = Suggestion.objects.filter(ticket_id=found.pk).order_by("-created_at", "-id")
        suggestion = (
            suggestions.filter(pk=data["suggestion_id"]).first()
            if "suggestion_id" in data
            else suggestions.first()
        )
        if suggestion is None:
            raise ApiError(status_code=404, code="not_found", message="This ticket has no such suggestion.")
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
        operation_id="tickets_audit", parameters=[TICKET_PARAM], responses={200: s.AuditTrailSerializer}
    )
    def get(self, request: Request, ticket: str) -> Response:
        found = find_ticket(self.tickets(), ticket)
        events = list(found.audit_events.order_by("sequence"))
        breaks = [f"#{item.sequence}: {item.reason}" for item in verify_chain(events)]
        return Response(
            {
                "ticket_id": found.pk,
                "reference": found.reference,
                "chain_valid": not breaks,
                "breaks": breaks,
                "events": s.AuditEventSerializer(events, many=True).data,
            }
        )


# --- search, analytics ---------------------------------------------------------------------------


class SearchView(ApiView):
    permission_classes = [ReadScope]

    @extend_schema(
        operation_id="search",
        request=s.SearchSerializer,
        responses={200: s.SearchResultSerializer, 503: _error("no search worker answered in time")},
        summary="Resolved tickets most similar to a text (hybrid FAISS + BM25, in a worker)",
    )
    def post(self, request: Request) -> Response:
        data = self.data(s.SearchSerializer)
        if not data["text"].strip():
            raise ApiError(
                status_code=400,
                code="validation_error",
                message="The request is not valid.",
                fields={"text": ["This field may not be blank."]},
            )
        hits = search_similar(text=data["text"], k=data["k"], team=data["team"], category=data["category"])
        return Response({"results": hits})


class _AnalyticsView(ApiView):
    permission_classes = [ReadScope]

    def window(self) -> tuple[Any, Any, QuerySet[Ticket]]:
        params = self.query(s.AnalyticsFilterSerializer)
        principal = self.principal
        if not may_view_analytics(principal):
            raise ApiError(
                status_code=403, code="permission_denied", message="Analytics are for admins and team leads."
            )
        until = params.get("until") or timezone.now()
        since = params.get("since") or until - timedelta(days=30)
        if since >= until:
            raise ApiError(
                status_code=400,
                code="validation_error",
                message="since must be before until.",
                fields={"since": ["Must be before until."]},
            )
        return since, until, analytics_tickets(principal)


class AnalyticsCostsView(_AnalyticsView):
    @extend_schema(
        operation_id="analytics_costs",
        parameters=[s.AnalyticsFilterSerializer],
        responses={200: s.CostsSerializer},
    )
    def get(self, request: Request) -> Response:
        since, until, tickets = self.window()
        return Response(
            s.CostsSerializer(analytics.cost_figures(since=since, until=until, tickets=tickets)).data
        )


class AnalyticsAccuracyView(_AnalyticsView):
    @extend_schema(
        operation_id="analytics_accuracy",
        parameters=[s.AnalyticsFilterSerializer],
        responses={200: s.AccuracySerializer},
    )
    def get(self, request: Request) -> Response:
        since, until, tickets = self.window()
        return Response(
            s.AccuracySerializer(analytics.accuracy_figures(since=since, until=until, tickets=tickets)).data
        )


# --- imports -------------------------------------------------------------------------------------


class ImportCollectionView(CursorListMixin, ApiView):
    permission_classes = [AdminScope]
    parser_classes = [parsers.MultiPartParser]
    max_body_bytes_setting = "API_MAX_IMPORT_BYTES"
    filterset_class = ImportJobFilter

    @extend_schema(operation_id="imports_list", responses={200: s.ImportJobSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return self.cursor_page(ImportJob.objects.all(), s.ImportJobSerializer)

    @extend_schema(
        operation_id="imports_create",
        request={"multipart/form-data": s.ImportCreateSerializer},
        responses={202: s.ImportJobSerializer},
        summary="Upload resolved history (CSV or JSONL); a worker imports it; poll the job",
    )
    def post(self, request: Request) -> Response:
        data = self.data(
            s.ImportCreateSerializer,
            {key: request.data.get(key) for key in request.data}
            | {key: request.FILES.get(key) for key in request.FILES},
        )
        upload = data["file"]
        name = str(upload.name or "upload")
        file_format, columns = import_options(
            file_name=name,
            file_format=data.get("format"),
            options={key: value for key, value in data.items() if key.endswith("_column")},
        )
        with transaction.atomic():
            job = import_job_create(
                upload=upload,
                file_name=name,
                file_format=file_format,
                columns=columns,
                created_by=self.principal.actor,
            )
        return Response(
            s.ImportJobSerializer(job).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/api/v1/imports/{job.pk}"},
        )


class ImportDetailView(ApiView):
    permission_classes = [AdminScope]

    @extend_schema(
        operation_id="imports_retrieve", parameters=[ID_PARAM], responses={200: s.ImportJobSerializer}
    )
    def get(self, request: Request, id: int) -> Response:
        job = ImportJob.objects.filter(pk=id).first()
        if job is None:
            raise ApiError(status_code=404, code="not_found", message="No such import job.")
        return Response(s.ImportJobSerializer(job).data)


# --- webhooks and tokens (admin) -----------------------------------------------------------------


class WebhookCollectionView(ApiView):
    permission_classes = [AdminScope]

    @extend_schema(operation_id="webhooks_list", responses={200: s.WebhookEndpointSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(s.WebhookEndpointSerializer(WebhookEndpoint.objects.all(), many=True).data)

    @extend_schema(
        operation_id="webhooks_create",
        request=s.WebhookEndpointCreateSerializer,
        responses={201: s.WebhookEndpointWithSecretSerializer, 409: _error("the name is taken")},
        summary="Register an endpoint; the answer holds its signing secret",
    )
    def post(self, request: Request) -> Response:
        data = self.data(s.WebhookEndpointCreateSerializer)
        if WebhookEndpoint.objects.filter(name=data["name"].strip()).exists():
            raise ApiError(
                status_code=409,
                code="conflict",
                message="An endpoint with this name exists.",
                fields={"name": ["Already taken."]},
            )
        endpoint = webhook_endpoint_create(created_by=self.principal.user, **data)
        return Response(s.WebhookEndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class _WebhookEndpointView(ApiView):
    permission_classes = [AdminScope]

    def endpoint(self, id: int) -> WebhookEndpoint:
        endpoint = WebhookEndpoint.objects.filter(pk=id).first()
        if endpoint is None:
            raise ApiError(status_code=404, code="not_found", message="No such webhook endpoint.")
        return endpoint


class WebhookDetailView(_WebhookEndpointView):
    @extend_schema(
        operation_id="webhooks_retrieve", parameters=[ID_PARAM], responses={200: s.WebhookEndpointSerializer}
    )
    def get(self, request: Request, id: int) -> Response:
        return Response(s.WebhookEndpointSerializer(self.endpoint(id)).data)

    @extend_schema(
        operation_id="webhooks_update",
        parameters=[ID_PARAM],
        request=s.WebhookEndpointUpdateSerializer,
        responses={200: s.WebhookEndpointSerializer},
    )
    def patch(self, request: Request, id: int) -> Response:
        endpoint = self.endpoint(id)
        data = self.data(s.WebhookEndpointUpdateSerializer)
        for field, value in data.items():
            setattr(endpoint, field, sorted(set(value)) if field == "events" else value)
        endpoint.full_clean()
        endpoint.save()
        return Response(s.WebhookEndpointSerializer(endpoint).data)

    @extend_schema(operation_id="webhooks_destroy", parameters=[ID_PARAM], responses={204: None})
    def delete(self, request: Request, id: int) -> Response:
        self.endpoint(id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveriesView(CursorListMixin, _WebhookEndpointView):
    filterset_class = WebhookDeliveryFilter

    @extend_schema(
        operation_id="webhooks_deliveries",
        parameters=[ID_PARAM],
        responses={200: s.WebhookDeliverySerializer(many=True)},
        summary="The endpoint's deliveries, newest first, with every attempt",
    )
    def get(self, request: Request, id: int) -> Response:
        deliveries = WebhookDelivery.objects.filter(endpoint=self.endpoint(id))
        return self.cursor_page(deliveries, s.WebhookDeliverySerializer)


class TokenCollectionView(ApiView):
    permission_classes = [AdminScope]

    @extend_schema(operation_id="tokens_list", responses={200: s.ApiTokenSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(s.ApiTokenSerializer(ApiToken.objects.all(), many=True).data)

    @extend_schema(
        operation_id="tokens_create",
        request=s.TokenCreateSerializer,
        responses={201: s.ApiTokenWithSecretSerializer, 409: _error("the name is taken")},
        summary="Make a token; its secret is in this answer only",
    )
    def post(self, request: Request) -> Response:
        data = self.data(s.TokenCreateSerializer)
        if ApiToken.objects.filter(name=data["name"].strip()).exists():
            raise ApiError(
                status_code=409,
                code="conflict",
                message="A token with this name exists.",
                fields={"name": ["Already taken."]},
            )
        token, secret = token_create(created_by=self.principal.user, **data)
        body = dict(s.ApiTokenSerializer(token).data) | {"token": secret}
        return Response(body, status=status.HTTP_201_CREATED)


class TokenDetailView(ApiView):
    permission_classes = [AdminScope]

    @extend_schema(
        operation_id="tokens_revoke",
        parameters=[ID_PARAM],
        responses={200: s.ApiTokenSerializer},
        summary="Revoke a token at once",
    )
    def delete(self, request: Request, id: int) -> Response:
        if not ApiToken.objects.filter(pk=id).exists():
            raise ApiError(status_code=404, code="not_found", message="No such token.")
        token = token_revoke(token_id=id)
        token_forget_cached(token)
        return Response(s.ApiTokenSerializer(token).data)

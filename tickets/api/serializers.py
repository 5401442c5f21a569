"""Request and response shapes of the API. Requests are strict: an unknown field is an error, and
a string field takes only a JSON string (no silent coercion of numbers or booleans)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tickets.models import (
    ApiToken,
    AuditEvent,
    ImportJob,
    Priority,
    Suggestion,
    Ticket,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from tickets.services import MAX_BODY_CHARS, MAX_SUBJECT_CHARS

MAX_REASON_CHARS = 1000
MAX_SEARCH_CHARS = 10_000

# --- strict building blocks ----------------------------------------------------------------------


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": "A whole number is required (not a string)."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictSerializer(serializers.Serializer[Any]):
    """Rejects fields it does not know, naming each."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            known = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(str(key) for key in data if key not in known)
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown})
        return super().to_internal_value(data)


# --- tickets in ----------------------------------------------------------------------------------


class TicketCreateSerializer(StrictSerializer):
    subject = StrictCharField(max_length=MAX_SUBJECT_CHARS)
    body = StrictCharField(max_length=MAX_BODY_CHARS)
    requester_email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    requester_name = StrictCharField(required=False, allow_blank=True, max_length=200, default="")
    external_id = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=200,
        default="",
        help_text="The ticket's id in your helpdesk; unique among API tickets.",
    )

    def to_internal_value(self, data: Any) -> Any:
        if (
            isinstance(data, Mapping)
            and "requester_email" in data
            and not isinstance(data["requester_email"], str)
        ):
            raise serializers.ValidationError({"requester_email": ["Enter a valid email address."]})
        return super().to_internal_value(data)


class TicketUpdateSerializer(StrictSerializer):
    team_id = StrictIntegerField(required=False, min_value=1, max_value=2**63 - 1)
    category_id = StrictIntegerField(required=False, min_value=1, max_value=2**63 - 1)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    reason = StrictCharField(required=False, allow_blank=True, max_length=MAX_REASON_CHARS, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not {"team_id", "category_id", "priority"} & set(attrs):
            raise serializers.ValidationError("Give team_id, category_id and/or priority.")
        return attrs


class ResolveSerializer(StrictSerializer):
    resolution = StrictCharField(max_length=MAX_BODY_CHARS)


class ReopenSerializer(StrictSerializer):
    reason = StrictCharField(required=False, allow_blank=True, max_length=MAX_REASON_CHARS, default="")


class FeedbackSerializer(StrictSerializer):
    action = serializers.ChoiceField(choices=[("accept", "accept"), ("edit", "edit"), ("reject", "reject")])
    suggestion_id = StrictIntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="Default: the ticket's latest suggestion."
    )
    resolution_text = StrictCharField(
        required=False, max_length=MAX_BODY_CHARS, help_text="Required for edit: the text as sent."
    )
    reason = StrictCharField(
        required=False, allow_blank=True, max_length=MAX_REASON_CHARS, help_text="Required for reject."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["action"] == "edit" and not attrs.get("resolution_text", "").strip():
            raise serializers.ValidationError({"resolution_text": ["Required to edit a suggestion."]})
        if attrs["action"] == "reject" and not attrs.get("reason", "").strip():
            raise serializers.ValidationError({"reason": ["Say why the suggestion is rejected."]})
        return attrs


class SearchSerializer(StrictSerializer):
    text = StrictCharField(max_length=MAX_SEARCH_CHARS)
    k = StrictIntegerField(required=False, min_value=1, max_value=50, default=5)
    team = StrictCharField(required=False, allow_blank=True, max_length=100, default="")
    category = StrictCharField(required=False, allow_blank=True, max_length=100, default="")


class AnalyticsFilterSerializer(StrictSerializer):
    since = serializers.DateTimeField(required=False, help_text="ISO 8601; default: 30 days ago.")
    until = serializers.DateTimeField(required=False, help_text="ISO 8601; default: now.")


# --- tickets out ---------------------------------------------------------------------------------


class NamedRefSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()


class CitationSerializer(serializers.Serializer[Any]):
    ticket_id = serializers.IntegerField()
    score = serializers.FloatField()
    reference = serializers.CharField(allow_null=True)
    subject = serializers.CharField(allow_null=True)


class SuggestionSerializer(serializers.ModelSerializer[Suggestion]):
    category = serializers.SerializerMethodField()
    team = serializers.SerializerMethodField()
    citations = serializers.SerializerMethodField()

    class Meta:
        model = Suggestion
        fields = [
            "id",
            "category",
            "team",
            "priority",
            "confidence",
            "resolution_text",
            "citations",
            "decision",
            "degraded",
            "model_used",
            "backend",
            "model_name",
            "prompt_version",
            "created_at",
        ]

    @extend_schema_field(NamedRefSerializer(allow_null=True))
    def get_category(self, obj: Suggestion) -> dict[str, Any] | None:
        return {"id": obj.category.pk, "name": obj.category.name} if obj.category else None

    @extend_schema_field(NamedRefSerializer(allow_null=True))
    def get_team(self, obj: Suggestion) -> dict[str, Any] | None:
        return {"id": obj.team.pk, "name": obj.team.name} if obj.team else None

    @extend_schema_field(CitationSerializer(many=True))
    def get_citations(self, obj: Suggestion) -> list[dict[str, Any]]:
        cited: dict[int, dict[str, Any]] = self.context.get("cited_tickets", {})
        out = []
        for item in obj.citations if isinstance(obj.citations, list) else []:
            ticket_id = int(item.get("ticket_id", 0))
            known = cited.get(ticket_id, {})
            out.append(
                {
                    "ticket_id": ticket_id,
                    "score": float(item.get("score", 0.0)),
                    "reference": known.get("reference"),
                    "subject": known.get("subject"),
                }
            )
        return out


class TicketSummarySerializer(serializers.ModelSerializer[Ticket]):
    team = serializers.SerializerMethodField()
    category = serializers.SerializerMethodField()

    class Meta:
        model = Ticket
        fields = [
            "id",
            "reference",
            "external_id",
            "subject",
            "channel",
            "status",
            "stage",
            "team",
            "category",
            "priority",
            "escalated",
            "auto_routed",
            "due_at",
            "created_at",
            "updated_at",
            "resolved_at",
        ]

    @extend_schema_field(NamedRefSerializer(allow_null=True))
    def get_team(self, obj: Ticket) -> dict[str, Any] | None:
        return {"id": obj.team_id, "name": obj.team.name} if obj.team_id and obj.team else None

    @extend_schema_field(NamedRefSerializer(allow_null=True))
    def get_category(self, obj: Ticket) -> dict[str, Any] | None:
        return (
            {"id": obj.category_id, "name": obj.category.name} if obj.category_id and obj.category else None
        )


class ClassificationSerializer(serializers.Serializer[Any]):
    category = NamedRefSerializer(allow_null=True)
    team = NamedRefSerializer(allow_null=True)
    priority = serializers.CharField()
    confidence = serializers.FloatField()


class TicketSerializer(TicketSummarySerializer):
    assignee = serializers.SerializerMethodField()
    classification = serializers.SerializerMethodField()
    suggestion = serializers.SerializerMethodField()

    class Meta(TicketSummarySerializer.Meta):
        fields = [
            *TicketSummarySerializer.Meta.fields,
            "body",
            "requester_email",
            "requester_name",
            "language",
            "resolution",
            "assignee",
            "duplicate_of",
            "injection_suspected",
            "pipeline_error",
            "validation_errors",
            "classification",
            "suggestion",
        ]

    @extend_schema_field(serializers.CharField(allow_null=True, help_text="The assignee's username."))
    def get_assignee(self, obj: Ticket) -> str | None:
        return obj.assignee.get_username() if obj.assignee_id and obj.assignee else None

    def _suggestion(self, obj: Ticket) -> Suggestion | None:
        value: Suggestion | None = self.context.get("suggestion")
        return value

    @extend_schema_field(ClassificationSerializer(allow_null=True))
    def get_classification(self, obj: Ticket) -> dict[str, Any] | None:
        suggestion = self._suggestion(obj)
        if suggestion is None:
            return None
        data = SuggestionSerializer(suggestion, context=self.context).data
        return {key: data[key] for key in ("category", "team", "priority", "confidence")}

    @extend_schema_field(SuggestionSerializer(allow_null=True))
    def get_suggestion(self, obj: Ticket) -> dict[str, Any] | None:
        suggestion = self._suggestion(obj)
        return dict(SuggestionSerializer(suggestion, context=self.context).data) if suggestion else None


_datetime = serializers.DateTimeField()


def new_ticket_representation(ticket: Ticket) -> dict[str, Any]:
    """``TicketSerializer``'s output for a ticket just created (no team, decision or assignee yet),
    built directly: the hot path of POST /tickets skips ModelSerializer's per-call field building.
    tests/test_api.py holds the two equal."""

    def when(value: Any) -> Any:
        return _datetime.to_representation(value) if value is not None else None

    return {
        "id": ticket.pk,
        "reference": ticket.reference,
        "external_id": ticket.external_id,
        "subject": ticket.subject,
        "channel": ticket.channel,
        "status": ticket.status,
        "stage": ticket.stage,
        "team": None,
        "category": None,
        "priority": ticket.priority,
        "escalated": ticket.escalated,
        "auto_routed": ticket.auto_routed,
        "due_at": when(ticket.due_at),
        "created_at": when(ticket.created_at),
        "updated_at": when(ticket.updated_at),
        "resolved_at": when(ticket.resolved_at),
        "body": ticket.body,
        "requester_email": ticket.requester_email,
        "requester_name": ticket.requester_name,
        "language": ticket.language,
        "resolution": ticket.resolution,
        "assignee": None,
        "duplicate_of": ticket.duplicate_of_id,
        "injection_suspected": ticket.injection_suspected,
        "pipeline_error": ticket.pipeline_error,
        "validation_errors": ticket.validation_errors,
        "classification": None,
        "suggestion": None,
    }


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    class Meta:
        model = AuditEvent
        fields = [
            "sequence",
            "stage",
            "action",
            "actor_type",
            "actor",
            "details",
            "created_at",
            "prev_hash",
            "hash",
        ]


class AuditTrailSerializer(serializers.Serializer[Any]):
    ticket_id = serializers.IntegerField()
    reference = serializers.CharField()
    chain_valid = serializers.BooleanField(help_text="Every event's hash recomputes and links to the last.")
    breaks = serializers.ListField(child=serializers.CharField())
    events = AuditEventSerializer(many=True)


class SearchHitSerializer(serializers.Serializer[Any]):
    ticket_id = serializers.IntegerField()
    reference = serializers.CharField(allow_null=True)
    subject = serializers.CharField(allow_null=True)
    resolution = serializers.CharField(allow_null=True)
    category = serializers.CharField(allow_null=True)
    team = serializers.CharField(allow_null=True)
    score = serializers.FloatField()
    dense_score = serializers.FloatField(allow_null=True)
    lexical_score = serializers.FloatField(allow_null=True)


class SearchResultSerializer(serializers.Serializer[Any]):
    results = SearchHitSerializer(many=True)


# --- imports -------------------------------------------------------------------------------------


class ImportCreateSerializer(StrictSerializer):
    """multipart/form-data: the file and which columns hold what (like ``import_tickets``).

    An empty column field counts as not given (HTML forms and some clients send every field)."""

    file = serializers.FileField()
    format = serializers.ChoiceField(choices=[("csv", "csv"), ("jsonl", "jsonl")], required=False)
    text_column = serializers.CharField(required=False, max_length=100, allow_blank=True)
    subject_column = serializers.CharField(required=False, max_length=100, allow_blank=True)
    body_column = serializers.CharField(required=False, max_length=100, allow_blank=True)
    category_column = serializers.CharField(required=False, max_length=100, allow_blank=True)
    team_column = serializers.CharField(required=False, max_length=100, allow_blank=True)
    priority_column = serializers.CharField(required=False, max_length=100, allow_blank=True)
    resolution_column = serializers.CharField(required=False, max_length=100, allow_blank=True)
    created_column = serializers.CharField(required=False, max_length=100, allow_blank=True)
    id_column = serializers.CharField(required=False, max_length=100, allow_blank=True)


class ImportJobSerializer(serializers.ModelSerializer[ImportJob]):
    progress = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "status",
            "file_name",
            "file_format",
            "columns",
            "total_rows",
            "rows_processed",
            "progress",
            "imported",
            "already_present",
            "skipped",
            "skipped_examples",
            "error",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]

    @extend_schema_field(OpenApiTypes.FLOAT)
    def get_progress(self, obj: ImportJob) -> float:
        if obj.status in (ImportJob.Status.SUCCEEDED, ImportJob.Status.FAILED):
            return 1.0
        return round(min(1.0, obj.rows_processed / obj.total_rows), 4) if obj.total_rows else 0.0


# --- webhooks and tokens (admin) -----------------------------------------------------------------


class WebhookEndpointCreateSerializer(StrictSerializer):
    name = StrictCharField(max_length=100)
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices),
        min_length=1,
        max_length=len(WebhookEvent),
    )
    is_active = StrictBooleanField(required=False, default=True)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping) and "url" in data and not isinstance(data["url"], str):
            raise serializers.ValidationError({"url": ["Enter a valid URL."]})
        return super().to_internal_value(data)


class WebhookEndpointUpdateSerializer(StrictSerializer):
    url = serializers.URLField(max_length=500, required=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices),
        min_length=1,
        max_length=len(WebhookEvent),
        required=False,
    )
    is_active = StrictBooleanField(required=False)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping) and "url" in data and not isinstance(data["url"], str):
            raise serializers.ValidationError({"url": ["Enter a valid URL."]})
        return super().to_internal_value(data)


class WebhookEndpointSerializer(serializers.ModelSerializer[WebhookEndpoint]):
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEvent.choices))

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "name", "url", "events", "is_active", "created_at"]


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookDeliverySerializer(serializers.ModelSerializer[WebhookDelivery]):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "uuid",
            "event",
            "ticket",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
            "attempt_log",
            "created_at",
            "delivered_at",
            "next_attempt_at",
        ]


class TokenCreateSerializer(StrictSerializer):
    name = StrictCharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiToken.Scope.choices), min_length=1, max_length=3
    )
    rate_limit_per_minute = StrictIntegerField(required=False, min_value=1, max_value=10_000_000)


class ApiTokenSerializer(serializers.ModelSerializer[ApiToken]):
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ApiToken.Scope.choices))

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "rate_limit_per_minute",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]


class ApiTokenWithSecretSerializer(ApiTokenSerializer):
    token = serializers.CharField(help_text="The secret. Shown this once; only its SHA-256 is kept.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


# --- analytics -----------------------------------------------------------------------------------


class CostRowSerializer(serializers.Serializer[Any]):
    key = serializers.CharField(help_text='"all", or a team\'s name ("(none)" for no team).')
    tickets = serializers.IntegerField()
    calls = serializers.IntegerField()
    tokens = serializers.IntegerField(help_text="Prompt and completion tokens.")
    cost_usd = serializers.FloatField()
    cost_per_ticket_usd = serializers.FloatField(allow_null=True)
    tokens_per_ticket = serializers.FloatField(allow_null=True)


class CostsSerializer(serializers.Serializer[Any]):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    total = CostRowSerializer()
    by_team = CostRowSerializer(many=True)


class AccuracyRowSerializer(serializers.Serializer[Any]):
    key = serializers.CharField(help_text='"all", or a team\'s name.')
    judged = serializers.IntegerField(help_text="Tickets whose routing an agent judged (latest judgement).")
    routing_correct = serializers.IntegerField()
    routing_accuracy = serializers.FloatField(allow_null=True)
    suggestions_decided = serializers.IntegerField()
    accepted = serializers.IntegerField()
    edited = serializers.IntegerField()
    rejected = serializers.IntegerField()
    pending = serializers.IntegerField()
    acceptance_rate = serializers.FloatField(allow_null=True, help_text="Accepted as is / decided.")
    used_rate = serializers.FloatField(
        allow_null=True, help_text="(Accepted + edited) / decided: the page's acceptance rate."
    )
    finished = serializers.IntegerField(help_text="Tickets the pipeline finished.")
    auto_routed = serializers.IntegerField()
    auto_routing_rate = serializers.FloatField(allow_null=True)


class AccuracySerializer(serializers.Serializer[Any]):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    total = AccuracyRowSerializer()
    by_team = AccuracyRowSerializer(many=True)

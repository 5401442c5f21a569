"""Request and response shapes of /tickets. Requests are strict (see ``fields``); the other resources
have a module each beside this one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tickets.api.serializers.fields import StrictCharField, StrictIntegerField, StrictSerializer
from tickets.models import (
    AuditEvent,
    Priority,
    Suggestion,
    Ticket,
)
from tickets.services.lifecycle import MAX_BODY_CHARS, MAX_SUBJECT_CHARS

MAX_REASON_CHARS = 1000

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
    suggestion_confidence = serializers.FloatField(
        allow_null=True,
        read_only=True,
        help_text="Calibrated chance (0-1) that the suggested reply is usable; null when uncalibrated.",
    )
    abstained = serializers.BooleanField(
        read_only=True,
        help_text="No reply was good enough to suggest (confidence below the company's threshold): "
        "resolution_text and citations are then empty.",
    )

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
            "suggestion_confidence",
            "abstained",
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

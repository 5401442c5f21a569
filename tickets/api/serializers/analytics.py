"""Request and response shapes of /analytics."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from tickets.api.serializers.fields import StrictSerializer


class AnalyticsFilterSerializer(StrictSerializer):
    since = serializers.DateTimeField(required=False, help_text="ISO 8601; default: 30 days ago.")
    until = serializers.DateTimeField(required=False, help_text="ISO 8601; default: now.")


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


class BandAcceptanceSerializer(serializers.Serializer[Any]):
    band = serializers.ChoiceField(
        choices=["low", "medium", "high", "very_high", "uncalibrated"],
        help_text="Answer-confidence band of the judged suggestions (uncalibrated: no confidence).",
    )
    lower = serializers.FloatField(allow_null=True, help_text="Inclusive lower bound; null for uncalibrated.")
    upper = serializers.FloatField(
        allow_null=True, help_text="Exclusive upper bound (1.0 is in the last band); null for uncalibrated."
    )
    accepted = serializers.IntegerField(help_text="Feedback: accepted as is.")
    edited = serializers.IntegerField()
    rejected = serializers.IntegerField()
    used_rate = serializers.FloatField(
        allow_null=True, help_text="(Accepted + edited) / judged in this band."
    )


class AccuracySerializer(serializers.Serializer[Any]):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    total = AccuracyRowSerializer()
    by_team = AccuracyRowSerializer(many=True)
    suggestion_acceptance_by_band = BandAcceptanceSerializer(
        many=True,
        help_text="Agents' feedback on shown suggestions (not abstentions) by answer-confidence band.",
    )

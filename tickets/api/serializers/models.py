"""Request and response shapes of /models: decision model versions, their comparison, their moves."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from tickets.api.serializers.fields import StrictBooleanField, StrictCharField, StrictSerializer
from tickets.decision_models import DecisionModel


class DecisionModelOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=DecisionModel.Kind.choices)
    state = serializers.ChoiceField(choices=DecisionModel.State.choices)
    canary_share = serializers.FloatField()
    artefact_hash = serializers.CharField()
    format_version = serializers.IntegerField()
    config = serializers.DictField(help_text="LLM: endpoint, model, prompt version; retrain: its origin.")
    trained_from = serializers.DateTimeField(allow_null=True)
    trained_until = serializers.DateTimeField(allow_null=True)
    training_entries = serializers.IntegerField()
    evaluation = serializers.DictField(help_text="The evaluate report on held-back recent history.")
    replaced = serializers.IntegerField(source="replaced_id", allow_null=True)
    created_by = serializers.CharField(source="created_by_name")
    created_at = serializers.DateTimeField()
    state_changed_at = serializers.DateTimeField(allow_null=True)


class ProportionSerializer(serializers.Serializer[Any]):
    successes = serializers.IntegerField()
    tickets = serializers.IntegerField(help_text="The tickets behind the figure.")
    value = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True, help_text="95% Wilson interval, low end.")
    high = serializers.FloatField(allow_null=True, help_text="95% Wilson interval, high end.")


class MeanSerializer(serializers.Serializer[Any]):
    tickets = serializers.IntegerField()
    value = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True, help_text="Mean - 1.96 standard errors.")
    high = serializers.FloatField(allow_null=True, help_text="Mean + 1.96 standard errors.")


class CalibrationSerializer(serializers.Serializer[Any]):
    tickets = serializers.IntegerField()
    ece = serializers.FloatField(allow_null=True, help_text="Expected calibration error (15 bins).")


class SideSerializer(serializers.Serializer[Any]):
    category_accuracy = ProportionSerializer()
    team_accuracy = ProportionSerializer()
    calibration = CalibrationSerializer()
    latency_ms = MeanSerializer()
    cost_usd = MeanSerializer()


class ComparisonOutputSerializer(serializers.Serializer[Any]):
    candidate_id = serializers.IntegerField()
    active_id = serializers.IntegerField(allow_null=True)
    paired_tickets = serializers.IntegerField(help_text="Tickets the candidate decided in shadow.")
    category_agreement = ProportionSerializer()
    team_agreement = ProportionSerializer()
    candidate = SideSerializer()
    active = SideSerializer()
    differing_active_used = ProportionSerializer(
        help_text="Where the two differ: the active suggestion used (accepted or edited) by agents."
    )
    differing_candidate_right = ProportionSerializer(
        help_text="Where the two differ: the agents' final category is the candidate's."
    )
    canary = ProportionSerializer(help_text="The candidate's own canary decisions: category right.")
    evaluation = serializers.DictField()


class PromoteInputSerializer(StrictSerializer):
    to = serializers.ChoiceField(choices=["shadow", "canary", "active"])
    canary_share = serializers.FloatField(required=False, min_value=0.001, max_value=1.0)
    reason = StrictCharField(required=False, default="", allow_blank=True, max_length=2000)
    override = StrictBooleanField(
        required=False, default=False, help_text="Promote although the gate fails (needs a reason)."
    )


class RollBackInputSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=DecisionModel.Kind.choices, default=DecisionModel.Kind.LABEL_MODEL)
    reason = StrictCharField(required=False, default="", allow_blank=True, max_length=2000)


class RetireInputSerializer(StrictSerializer):
    reason = StrictCharField(required=False, default="", allow_blank=True, max_length=2000)


class LlmRegisterInputSerializer(StrictSerializer):
    name = StrictCharField(max_length=100)
    config = serializers.DictField(
        help_text="backend (openai | llamacpp), base_url (openai), model, prompt_version (a classify-* "
        "prompt), api_key_env (the environment variable holding the key; never the key itself)."
    )
    evaluation = serializers.DictField(
        required=False,
        default=dict,
        help_text="Its evaluate report on held-back history (the gate reads it).",
    )
    reason = StrictCharField(required=False, default="", allow_blank=True, max_length=2000)

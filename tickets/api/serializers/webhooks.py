"""Request and response shapes of /webhooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

from tickets.api.serializers.fields import StrictBooleanField, StrictCharField, StrictSerializer
from tickets.models import WebhookDelivery, WebhookEndpoint, WebhookEvent


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

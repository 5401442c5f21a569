"""Request and response shapes of /tokens."""

from __future__ import annotations

from rest_framework import serializers

from tickets.api.serializers.fields import StrictCharField, StrictIntegerField, StrictSerializer
from tickets.models import ApiToken


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

"""Request and response shapes of POST /search."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from tickets.api.serializers.fields import StrictCharField, StrictIntegerField, StrictSerializer

MAX_SEARCH_CHARS = 10_000


class SearchSerializer(StrictSerializer):
    text = StrictCharField(max_length=MAX_SEARCH_CHARS)
    k = StrictIntegerField(required=False, min_value=1, max_value=50, default=5)
    team = StrictCharField(required=False, allow_blank=True, max_length=100, default="")
    category = StrictCharField(required=False, allow_blank=True, max_length=100, default="")


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

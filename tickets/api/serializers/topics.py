"""Request and response shapes of /topics/emerging."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from tickets.api.serializers.fields import StrictSerializer


class EmergingTopicsInputSerializer(StrictSerializer):
    days = serializers.IntegerField(
        required=False,
        default=14,
        min_value=1,
        max_value=90,
        help_text="Clusters computed in the last N days.",
    )


class TopicExampleSerializer(serializers.Serializer[Any]):
    reference = serializers.CharField()
    subject = serializers.CharField()


class EmergingTopicOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    suggested_name = serializers.CharField(
        help_text="The cluster's distinctive terms (TF-IDF against the rest)."
    )
    terms = serializers.ListField(child=serializers.CharField())
    size = serializers.IntegerField(help_text="Tickets in the cluster.")
    open_tickets = serializers.IntegerField()
    recent = serializers.IntegerField(help_text="Members from the second half of the clustering window.")
    earlier = serializers.IntegerField(help_text="Members from its first half.")
    growth = serializers.FloatField(allow_null=True, help_text="recent / earlier; null when earlier is 0.")
    window_days = serializers.IntegerField()
    computed_at = serializers.DateTimeField()
    examples = TopicExampleSerializer(many=True, help_text="Up to 3, nearest the cluster's centre first.")
    category = serializers.CharField(allow_null=True, help_text="The category created from it, if any.")

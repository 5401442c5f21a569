"""GET /topics/emerging (admin): clusters of tickets sent to triage as of no known category."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from tickets.api.permissions import AdminScope
from tickets.api.serializers.topics import EmergingTopicOutputSerializer, EmergingTopicsInputSerializer
from tickets.api.views.base import ApiView
from tickets.topic_selectors import emerging_topics_list


class EmergingTopicsView(ApiView):
    permission_classes = [AdminScope]

    @extend_schema(
        operation_id="topics_emerging",
        parameters=[EmergingTopicsInputSerializer],
        responses={200: EmergingTopicOutputSerializer(many=True)},
        summary="Clusters of unknown-topic triage tickets, with a suggested category name",
    )
    def get(self, request: Request) -> Response:
        params = self.query(EmergingTopicsInputSerializer)
        rows = emerging_topics_list(days=params["days"])
        return Response(EmergingTopicOutputSerializer(rows, many=True).data)

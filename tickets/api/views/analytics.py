"""GET /analytics/costs and /analytics/accuracy: the analytics page's figures, for admins and leads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from tickets.api import analytics
from tickets.api.errors import ApiError
from tickets.api.permissions import ReadScope, analytics_tickets, may_view_analytics
from tickets.api.serializers.analytics import AccuracySerializer, AnalyticsFilterSerializer, CostsSerializer
from tickets.api.views.base import ApiView
from tickets.models import Ticket


class _AnalyticsView(ApiView):
    permission_classes = [ReadScope]

    def window(self) -> tuple[Any, Any, QuerySet[Ticket]]:
        params = self.query(AnalyticsFilterSerializer)
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
        parameters=[AnalyticsFilterSerializer],
        responses={200: CostsSerializer},
    )
    def get(self, request: Request) -> Response:
        since, until, tickets = self.window()
        return Response(
            CostsSerializer(analytics.cost_figures(since=since, until=until, tickets=tickets)).data
        )


class AnalyticsAccuracyView(_AnalyticsView):
    @extend_schema(
        operation_id="analytics_accuracy",
        parameters=[AnalyticsFilterSerializer],
        responses={200: AccuracySerializer},
    )
    def get(self, request: Request) -> Response:
        since, until, tickets = self.window()
        return Response(
            AccuracySerializer(analytics.accuracy_figures(since=since, until=until, tickets=tickets)).data
        )

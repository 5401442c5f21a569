"""The analytics page: volumes, routing, acceptance, latency, cost, confidence and drift, as SVG charts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from tickets import analytics, analytics_suggestions
from tickets.models import Ticket
from tickets.permissions import analytics_tickets, can_view_analytics, is_admin, team_ids
from tickets.views import charts
from tickets.views.common import role_required

WINDOWS = {"7": 7, "30": 30, "90": 90}


CACHE_SECONDS = 60  # the figures take about a second on 50,000 tickets (benchmarks/bench_ui.py)


@role_required(can_view_analytics, what="the analytics (team leads and admins)")
def analytics_page(request: HttpRequest) -> HttpResponse:
    days = WINDOWS.get(request.GET.get("days", "30"), 30)
    scope = (
        "all" if is_admin(request.user) else ",".join(map(str, sorted(team_ids(request.user, role="lead"))))
    )
    key = f"sb:analytics:{scope}:{days}"
    context: dict[str, Any] | None = cache.get(key)
    if context is None:
        context = _figures(analytics_tickets(request.user), days=days)
        cache.set(key, context, CACHE_SECONDS)
    return render(request, "tickets/analytics.html", context)


def _figures(tickets: QuerySet[Ticket], *, days: int) -> dict[str, Any]:
    """Everything the page shows; the same for everyone with the same scope (no user data in it)."""
    now = timezone.now()
    since = now - timedelta(days=days)

    by_team = analytics.tickets_per_day(tickets=tickets, since=since, until=now, by="team")
    by_category = analytics.tickets_per_day(tickets=tickets, since=since, until=now, by="category")
    day_labels = [day.isoformat() for day in by_team.days]
    latency = analytics.stage_latency(tickets=tickets, since=since, until=now)
    overall_cost, team_cost = analytics.model_cost(tickets=tickets, since=since, until=now)
    histogram = analytics.confidence_histogram(tickets=tickets, since=since, until=now)
    bins = [f"{index / 10:.1f}" for index in range(len(histogram))]
    drift = analytics.drift(tickets=tickets, now=now)
    by_band = analytics_suggestions.acceptance_by_band(tickets=tickets, since=since, until=now)
    return {
        "days": days,
        "computed_at": now,
        "windows": list(WINDOWS),
        "total_tickets": sum(sum(values) for values in by_team.series.values()),
        "auto_routing": analytics.auto_routing_rate(tickets=tickets, since=since, until=now),
        "accuracy": analytics.routing_accuracy(tickets=tickets, since=since, until=now),
        "acceptance": analytics.suggestion_acceptance(tickets=tickets, since=since, until=now),
        "latency": latency,
        "overall_cost": overall_cost,
        "team_cost": team_cost,
        "histogram": list(zip(bins, histogram, strict=True)),
        "acceptance_by_band": by_band,
        "chart_acceptance_band": charts.stacked_columns(
            title="Suggestion feedback by answer-confidence band",
            columns=[row.band.label for row in by_band],
            series={
                "accepted as is": [row.accepted for row in by_band],
                "edited": [row.edited for row in by_band],
                "rejected": [row.rejected for row in by_band],
            },
        ),
        "drift": drift,
        "chart_team": charts.stacked_columns(
            title="Tickets per day by team", columns=day_labels, series=by_team.series
        ),
        "chart_category": charts.stacked_columns(
            title="Tickets per day by category", columns=day_labels, series=by_category.series
        ),
        "chart_latency": charts.horizontal_bars(
            title="Latency per pipeline stage, milliseconds",
            labels=[item.stage for item in latency],
            groups={"p50": [item.p50_ms for item in latency], "p95": [item.p95_ms for item in latency]},
            value_format=lambda value: f"{value:,.0f} ms",
        ),
        "chart_cost": charts.horizontal_bars(
            title="Model tokens per ticket, by team",
            labels=[item.label for item in team_cost],
            groups={"tokens per ticket": [item.tokens_per_ticket for item in team_cost]},
            value_format=lambda value: f"{value:,.0f}",
        ),
        "chart_confidence": charts.columns(
            title="Suggestions by confidence", labels=bins, values=histogram, highlight_from=6
        ),
        "chart_drift": charts.horizontal_bars(
            title="Category share: this week against the four weeks before",
            labels=[item.category for item in drift.categories[:10]],
            groups={
                "last 4 weeks": [item.baseline_share * 100 for item in drift.categories[:10]],
                "this week": [item.recent_share * 100 for item in drift.categories[:10]],
            },
            value_format=lambda value: f"{value:.0f}%",
        ),
    }

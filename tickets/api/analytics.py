"""The cost and accuracy figures of the analytics page (``tickets.analytics``), as plain data for the API.

The same functions compute the page and these answers, so the numbers agree: costs from ``ModelCall``
(every model call is accounted for), routing accuracy from agents' judgements in ``Feedback`` (a
ticket's latest judgement counts), acceptance from the decisions on ``Suggestion`` rows, the automatic
routing rate from the tickets the pipeline finished.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from tickets import analytics, analytics_suggestions
from tickets.models import Team, Ticket
from tickets.suggestion_bands import UNCALIBRATED


def _cost_row(cost: analytics.ModelCost) -> dict[str, Any]:
    return {
        "key": cost.label,
        "tickets": cost.tickets,
        "calls": cost.calls,
        "tokens": cost.tokens,
        "cost_usd": float(cost.cost_usd),
        "cost_per_ticket_usd": float(cost.cost_per_ticket) if cost.tickets else None,
        "tokens_per_ticket": round(cost.tokens_per_ticket, 2) if cost.tickets else None,
    }


def cost_figures(*, since: datetime, until: datetime, tickets: QuerySet[Ticket]) -> dict[str, Any]:
    overall, per_team = analytics.model_cost(tickets=tickets, since=since, until=until)
    return {
        "since": since,
        "until": until,
        "total": _cost_row(overall),
        "by_team": [_cost_row(team) for team in per_team],
    }


def _rate(rate: analytics.Rate) -> float | None:
    return round(rate.value, 4) if rate.value is not None else None


def _accuracy_row(key: str, tickets: QuerySet[Ticket], since: datetime, until: datetime) -> dict[str, Any]:
    routing = analytics.routing_accuracy(tickets=tickets, since=since, until=until)
    acceptance = analytics.suggestion_acceptance(tickets=tickets, since=since, until=until)
    auto = analytics.auto_routing_rate(tickets=tickets, since=since, until=until)
    decided = acceptance.decided
    return {
        "key": key,
        "judged": routing.denominator,
        "routing_correct": routing.numerator,
        "routing_accuracy": _rate(routing),
        "suggestions_decided": decided,
        "accepted": acceptance.accepted,
        "edited": acceptance.edited,
        "rejected": acceptance.rejected,
        "pending": acceptance.pending,
        "acceptance_rate": round(acceptance.accepted / decided, 4) if decided else None,
        "used_rate": _rate(acceptance.rate),
        "finished": auto.denominator,
        "auto_routed": auto.numerator,
        "auto_routing_rate": _rate(auto),
    }


def accuracy_figures(*, since: datetime, until: datetime, tickets: QuerySet[Ticket]) -> dict[str, Any]:
    teams = Team.objects.filter(pk__in=tickets.values("team_id")).order_by("name")
    return {
        "since": since,
        "until": until,
        "total": _accuracy_row("all", tickets, since, until),
        "by_team": [_accuracy_row(team.name, tickets.filter(team=team), since, until) for team in teams],
        "suggestion_acceptance_by_band": [
            {
                "band": row.band.key,
                "lower": row.band.lower if row.band is not UNCALIBRATED else None,
                "upper": row.band.upper if row.band is not UNCALIBRATED else None,
                "accepted": row.accepted,
                "edited": row.edited,
                "rejected": row.rejected,
                "used_rate": _rate(row.used),
            }
            for row in analytics_suggestions.acceptance_by_band(tickets=tickets, since=since, until=until)
        ],
    }

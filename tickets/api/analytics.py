"""The cost and accuracy figures of the analytics page, as plain data for the API.

Costs come from ``ModelCall`` (every model call is accounted for), accuracy from ``Feedback`` (what
agents did with each decision): routing accuracy is the share of judged decisions whose team the
agents kept; the acceptance rate is the share of decided suggestions accepted as they were.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from tickets.models import Feedback, ModelCall, Ticket


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _cost_row(key: str | None, row: dict[str, Any]) -> dict[str, Any]:
    tickets = row["tickets"] or 0
    cost = float(row["cost"] or 0)
    tokens = (row["prompt"] or 0) + (row["completion"] or 0)
    return {
        "key": key,
        "calls": row["calls"] or 0,
        "tickets": tickets,
        "prompt_tokens": row["prompt"] or 0,
        "completion_tokens": row["completion"] or 0,
        "cost_usd": round(cost, 8),
        "cost_per_ticket_usd": round(cost / tickets, 8) if tickets else None,
        "tokens_per_ticket": round(tokens / tickets, 2) if tickets else None,
        "energy_wh": round(float(row["energy"] or 0), 6),
    }


_COST_AGGREGATES = {
    "calls": Count("id"),
    "tickets": Count("ticket", distinct=True),
    "prompt": Sum("prompt_tokens"),
    "completion": Sum("completion_tokens"),
    "cost": Sum("cost_usd"),
    "energy": Sum("energy_wh"),
}


def cost_figures(*, since: datetime, until: datetime, tickets: QuerySet[Ticket] | None) -> dict[str, Any]:
    calls = ModelCall.objects.filter(created_at__gte=since, created_at__lt=until)
    if tickets is not None:
        calls = calls.filter(ticket__in=tickets.values("id"))
    total = calls.aggregate(**_COST_AGGREGATES)
    by_team = calls.values("ticket__team__name").annotate(**_COST_AGGREGATES).order_by("ticket__team__name")
    by_model = (
        calls.values("backend", "model_name").annotate(**_COST_AGGREGATES).order_by("backend", "model_name")
    )
    return {
        "since": since,
        "until": until,
        "total": _cost_row(None, total),
        "by_team": [_cost_row(row["ticket__team__name"], row) for row in by_team],
        "by_model": [_cost_row(f"{row['backend']}/{row['model_name']}", row) for row in by_model],
    }


_ACCURACY_AGGREGATES = {
    "judged": Count("id", filter=Q(routing_correct__isnull=False)),
    "correct": Count("id", filter=Q(routing_correct=True)),
    "accepted": Count("id", filter=Q(kind=Feedback.Kind.ACCEPTED)),
    "edited": Count("id", filter=Q(kind=Feedback.Kind.EDITED)),
    "rejected": Count("id", filter=Q(kind=Feedback.Kind.REJECTED)),
}


def _accuracy_row(key: str | None, row: dict[str, Any]) -> dict[str, Any]:
    decided = row["accepted"] + row["edited"] + row["rejected"]
    return {
        "key": key,
        "judged": row["judged"],
        "routing_correct": row["correct"],
        "routing_accuracy": _ratio(row["correct"], row["judged"]),
        "suggestions_decided": decided,
        "accepted": row["accepted"],
        "edited": row["edited"],
        "rejected": row["rejected"],
        "acceptance_rate": _ratio(row["accepted"], decided),
        "used_rate": _ratio(row["accepted"] + row["edited"], decided),
    }


def accuracy_figures(*, since: datetime, until: datetime, tickets: QuerySet[Ticket] | None) -> dict[str, Any]:
    feedback = Feedback.objects.filter(created_at__gte=since, created_at__lt=until)
    created = Ticket.objects.filter(created_at__gte=since, created_at__lt=until)
    if tickets is not None:
        feedback = feedback.filter(ticket__in=tickets.values("id"))
        created = created.filter(pk__in=tickets.values("id"))
    total = feedback.aggregate(**_ACCURACY_AGGREGATES)
    by_team = (
        feedback.values("ticket__team__name").annotate(**_ACCURACY_AGGREGATES).order_by("ticket__team__name")
    )
    counts = created.aggregate(tickets=Count("id"), auto=Count("id", filter=Q(auto_routed=True)))
    return {
        "since": since,
        "until": until,
        "tickets": counts["tickets"],
        "auto_routed": counts["auto"],
        "auto_routing_rate": _ratio(counts["auto"], counts["tickets"]),
        "total": _accuracy_row(None, total),
        "by_team": [_accuracy_row(row["ticket__team__name"], row) for row in by_team],
    }

"""Figures for the analytics page, computed in the database from the tickets a user may see.

Every function takes ``tickets`` (already limited by ``tickets.permissions.analytics_tickets``) and
a time window, and returns plain dataclasses the page turns into charts and tables.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Count,
    F,
    FloatField,
    IntegerField,
    Model,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Floor, Least, TruncDate
from django.utils import timezone

from tickets.models import AuditEvent, Feedback, ModelCall, PipelineStage, Suggestion, Ticket

UNASSIGNED = "(none)"


_Row = TypeVar("_Row", bound=Model)


def _of(model: type[_Row], tickets: QuerySet[Ticket]) -> QuerySet[_Row]:
    """``model``'s rows that belong to ``tickets``; no subquery when ``tickets`` is every ticket (admins)."""
    rows: QuerySet[_Row] = model._default_manager.all()
    return rows if not tickets.query.where else rows.filter(ticket__in=tickets)


@dataclass(frozen=True)
class Rate:
    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


@dataclass(frozen=True)
class DailySeries:
    days: list[date]
    series: dict[str, list[int]]  # label -> count per day, aligned with ``days``


def tickets_per_day(*, tickets: QuerySet[Ticket], since: datetime, until: datetime, by: str) -> DailySeries:
    """New tickets per day, split by ``by`` ("team" or "category")."""
    if by not in ("team", "category"):
        raise ValueError(f"by must be team or category, not {by!r}")
    tz = timezone.get_current_timezone()
    rows = (
        tickets.filter(created_at__gte=since, created_at__lt=until)
        .annotate(day=TruncDate("created_at", tzinfo=tz), label=F(f"{by}__name"))
        .values("day", "label")
        .annotate(count=Count("pk"))
    )
    first, last = timezone.localtime(since, tz).date(), timezone.localtime(until, tz).date()
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    index = {day: position for position, day in enumerate(days)}
    series: dict[str, list[int]] = {}
    for row in rows:
        label = row["label"] or UNASSIGNED
        counts = series.setdefault(label, [0] * len(days))
        if row["day"] in index:
            counts[index[row["day"]]] += row["count"]
    return DailySeries(days=days, series=dict(sorted(series.items(), key=lambda item: -sum(item[1]))))


def auto_routing_rate(*, tickets: QuerySet[Ticket], since: datetime, until: datetime) -> Rate:
    """Of the tickets the pipeline finished, how many it routed without a person."""
    finished = tickets.filter(
        created_at__gte=since, created_at__lt=until, stage__in=[PipelineStage.DONE, PipelineStage.FAILED]
    )
    counts = finished.aggregate(total=Count("pk"), auto=Count("pk", filter=Q(auto_routed=True)))
    return Rate(counts["auto"], counts["total"])


def routing_accuracy(*, tickets: QuerySet[Ticket], since: datetime, until: datetime) -> Rate:
    """Of the tickets agents judged (accepted, reassigned, resolved), how many the pipeline routed right.

    A ticket's latest judgement counts: reassigned away and back again is right.
    """
    judgements = (
        _of(Feedback, tickets)
        .filter(created_at__gte=since, created_at__lt=until, routing_correct__isnull=False)
        .order_by("ticket_id", "created_at", "id")
        .values_list("ticket_id", "routing_correct")
    )
    latest: dict[int, bool] = {}
    for ticket_id, correct in judgements.iterator(chunk_size=5000):
        latest[ticket_id] = bool(correct)
    return Rate(sum(latest.values()), len(latest))


@dataclass(frozen=True)
class Acceptance:
    accepted: int
    edited: int
    rejected: int
    pending: int

    @property
    def decided(self) -> int:
        return self.accepted + self.edited + self.rejected

    @property
    def rate(self) -> Rate:
        """Suggestions used (as is or edited) among those an agent decided on."""
        return Rate(self.accepted + self.edited, self.decided)


def suggestion_acceptance(*, tickets: QuerySet[Ticket], since: datetime, until: datetime) -> Acceptance:
    counts = Counter(
        dict(
            _of(Suggestion, tickets)
            .filter(created_at__gte=since, created_at__lt=until)
            .values_list("decision")
            .annotate(n=Count("pk"))
            .values_list("decision", "n")
        )
    )
    return Acceptance(
        accepted=counts[Suggestion.Decision.ACCEPTED],
        edited=counts[Suggestion.Decision.EDITED],
        rejected=counts[Suggestion.Decision.REJECTED],
        pending=counts[Suggestion.Decision.PENDING],
    )


class _Percentile(Aggregate):
    """PostgreSQL's ``percentile_cont(p) WITHIN GROUP (ORDER BY x)``."""

    function = "percentile_cont"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, percentile: float) -> None:
        super().__init__(expression, percentile=float(percentile))


@dataclass(frozen=True)
class StageLatency:
    stage: str
    count: int
    p50_ms: float
    p95_ms: float


def stage_latency(*, tickets: QuerySet[Ticket], since: datetime, until: datetime) -> list[StageLatency]:
    """p50 and p95 of the ``latency_ms`` the pipeline records on its audit event per stage."""
    events = (
        _of(AuditEvent, tickets)
        .filter(created_at__gte=since, created_at__lt=until, details__has_key="latency_ms")
        .annotate(latency=Cast(KeyTextTransform("latency_ms", "details"), FloatField()))
    )
    order = {value: position for position, value in enumerate(AuditEvent.Stage.values)}
    if connection.vendor == "postgresql":
        rows = events.values("stage").annotate(
            count=Count("pk"), p50=_Percentile("latency", 0.5), p95=_Percentile("latency", 0.95)
        )
        result = [StageLatency(row["stage"], row["count"], row["p50"], row["p95"]) for row in rows]
    else:  # SQLite (the one-machine demo): the same figures in Python
        samples: dict[str, list[float]] = defaultdict(list)
        for stage, latency in events.values_list("stage", "latency"):
            samples[stage].append(float(latency))
        result = [
            StageLatency(stage, len(values), _quantile(values, 0.5), _quantile(values, 0.95))
            for stage, values in samples.items()
        ]
    return sorted(result, key=lambda item: order.get(item.stage, 99))


def _quantile(values: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks, as ``percentile_cont`` does."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class ModelCost:
    label: str
    tickets: int
    calls: int
    tokens: int
    cost_usd: Decimal

    @property
    def tokens_per_ticket(self) -> float:
        return self.tokens / self.tickets if self.tickets else 0.0

    @property
    def cost_per_ticket(self) -> Decimal:
        return self.cost_usd / self.tickets if self.tickets else Decimal(0)


def model_cost(
    *, tickets: QuerySet[Ticket], since: datetime, until: datetime
) -> tuple[ModelCost, list[ModelCost]]:
    """Tokens and cost of the model calls: over all tickets, and per team."""
    calls = _of(ModelCall, tickets).filter(created_at__gte=since, created_at__lt=until, shadow=False)
    sums = {
        "tickets": Count("ticket_id", distinct=True),
        "calls": Count("pk"),
        "tokens": Coalesce(Sum(F("prompt_tokens") + F("completion_tokens")), 0, output_field=IntegerField()),
        "cost": Coalesce(Sum("cost_usd"), Decimal(0)),
    }
    total = calls.aggregate(**sums)
    overall = ModelCost("all", total["tickets"], total["calls"], total["tokens"], Decimal(total["cost"]))
    per_team = [
        ModelCost(
            row["team"] or UNASSIGNED, row["tickets"], row["calls"], row["tokens"], Decimal(row["cost"])
        )
        for row in calls.values(team=F("ticket__team__name")).annotate(**sums).order_by("-cost", "-tokens")
    ]
    return overall, per_team


def confidence_histogram(
    *, tickets: QuerySet[Ticket], since: datetime, until: datetime, bins: int = 10
) -> list[int]:
    """How many suggestions fell in each confidence bin [0, 0.1), ..., [0.9, 1.0]."""
    rows = (
        _of(Suggestion, tickets)
        .filter(created_at__gte=since, created_at__lt=until)
        .annotate(bin=Least(Cast(Floor(F("confidence") * bins), IntegerField()), bins - 1))
        .values("bin")
        .annotate(n=Count("pk"))
    )
    counts = [0] * bins
    for row in rows:
        counts[max(0, min(bins - 1, int(row["bin"])))] += row["n"]
    return counts


@dataclass(frozen=True)
class CategoryShift:
    category: str
    recent_share: float
    baseline_share: float

    @property
    def change(self) -> float:
        return self.recent_share - self.baseline_share


@dataclass(frozen=True)
class Drift:
    recent_tickets: int
    baseline_tickets: int
    categories: list[CategoryShift]
    recent_confidence: float | None
    baseline_confidence: float | None

    @property
    def category_distance(self) -> float | None:
        """Total variation distance between the two category mixes: 0 same, 1 disjoint."""
        if not self.recent_tickets or not self.baseline_tickets:
            return None
        return round(sum(abs(item.change) for item in self.categories) / 2, 4)

    @property
    def confidence_change(self) -> float | None:
        if self.recent_confidence is None or self.baseline_confidence is None:
            return None
        return self.recent_confidence - self.baseline_confidence


def drift(
    *, tickets: QuerySet[Ticket], now: datetime, recent_days: int = 7, baseline_days: int = 28
) -> Drift:
    """This week's category mix and mean confidence against the four weeks before it."""
    recent_start = now - timedelta(days=recent_days)
    baseline_start = recent_start - timedelta(days=baseline_days)

    def mix(start: datetime, end: datetime) -> tuple[Counter[str], int]:
        rows = (
            tickets.filter(created_at__gte=start, created_at__lt=end)
            .values_list("category__name")
            .annotate(n=Count("pk"))
            .values_list("category__name", "n")
        )
        counter = Counter({name or UNASSIGNED: n for name, n in rows})
        return counter, sum(counter.values())

    def mean_confidence(start: datetime, end: datetime) -> float | None:
        value = (
            _of(Suggestion, tickets)
            .filter(created_at__gte=start, created_at__lt=end)
            .aggregate(mean=Avg("confidence"))["mean"]
        )
        return float(value) if value is not None else None

    recent, recent_total = mix(recent_start, now)
    baseline, baseline_total = mix(baseline_start, recent_start)
    shifts = [
        CategoryShift(
            category=name,
            recent_share=recent[name] / recent_total if recent_total else 0.0,
            baseline_share=baseline[name] / baseline_total if baseline_total else 0.0,
        )
        for name in set(recent) | set(baseline)
    ]
    shifts.sort(key=lambda item: -abs(item.change))
    return Drift(
        recent_tickets=recent_total,
        baseline_tickets=baseline_total,
        categories=shifts,
        recent_confidence=mean_confidence(recent_start, now),
        baseline_confidence=mean_confidence(baseline_start, recent_start),
    )

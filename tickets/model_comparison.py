"""Reads of the decision model registry: the versions, and a candidate compared with the active one.

The comparison rests on the tickets the candidate decided in shadow beside the active decision (the
pairs): agreement with the active decision; accuracy of each against the agents' final category and
team (tickets an agent judged: feedback of kind accepted, edited, rejected, reassigned or resolved;
the truth is the ticket's category and team now); where the two differ, how often the agents used the
active suggestion and how often the final category is the candidate's; calibration (expected
calibration error of each one's confidence against its category being right); latency and model cost
per ticket. Every figure carries its ticket count and a 95% interval: Wilson's for proportions
(SciPy's ``binomtest``), mean +- 1.96 standard errors for means. The candidate's own decisions as a
canary are counted apart (``canary``). For an LLM candidate, latency and cost are its model calls'
(``ModelCall`` rows tagged with it, in shadow) against the active path's classification calls on the
same tickets. Reads only: the page and the API show these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db.models import QuerySet, Sum

from tickets.decision_models import DecisionModel, DecisionStamp, ShadowDecision
from tickets.models import Feedback, ModelCall, Suggestion, Ticket

JUDGED = (
    Feedback.Kind.ACCEPTED,
    Feedback.Kind.EDITED,
    Feedback.Kind.REJECTED,
    Feedback.Kind.REASSIGNED,
    Feedback.Kind.RESOLVED,
)
USED = (Suggestion.Decision.ACCEPTED, Suggestion.Decision.EDITED)
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Proportion:
    successes: int
    tickets: int
    value: float | None
    low: float | None
    high: float | None

    @classmethod
    def of(cls, successes: int, tickets: int) -> Proportion:
        if tickets == 0:
            return cls(0, 0, None, None, None)
        from scipy.stats import binomtest

        interval = binomtest(successes, tickets).proportion_ci(confidence_level=0.95, method="wilson")
        return cls(successes, tickets, successes / tickets, float(interval.low), float(interval.high))


@dataclass(frozen=True)
class Mean:
    tickets: int
    value: float | None
    low: float | None
    high: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Mean:
        n = len(values)
        if n == 0:
            return cls(0, None, None, None)
        mean = sum(values) / n
        if n == 1:
            return cls(1, mean, None, None)
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        half = Z95 * sd / math.sqrt(n)
        return cls(n, mean, mean - half, mean + half)


@dataclass(frozen=True)
class Calibration:
    tickets: int
    ece: float | None


@dataclass(frozen=True)
class Side:
    """One version's figures on the paired tickets."""

    category_accuracy: Proportion
    team_accuracy: Proportion
    calibration: Calibration
    latency_ms: Mean
    cost_usd: Mean


@dataclass(frozen=True)
class Comparison:
    candidate_id: int
    active_id: int | None
    paired_tickets: int
    category_agreement: Proportion
    team_agreement: Proportion
    candidate: Side
    active: Side
    differing_active_used: Proportion
    """Where the categories differ: the active suggestion used (accepted or edited) by the agents."""
    differing_candidate_right: Proportion
    """Where the categories differ: the final category is the candidate's."""
    canary: Proportion
    """The candidate's own decisions as a canary: category right (judged tickets)."""
    evaluation: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Tally:
    category: int = 0
    team: int = 0
    confidence: list[float] = field(default_factory=list)
    right: list[bool] = field(default_factory=list)


def decision_models_list() -> QuerySet[DecisionModel]:
    return DecisionModel.objects.order_by("-created_at", "-pk")


def decision_model_get(*, decision_model_id: int) -> DecisionModel | None:
    return DecisionModel.objects.filter(pk=decision_model_id).first()


def decision_model_events(*, decision_model_id: int) -> QuerySet[Any]:
    from tickets.decision_models import DecisionModelEvent

    return DecisionModelEvent.objects.filter(decision_model_id=decision_model_id).order_by(
        "-created_at", "-pk"
    )


def _ece(confidence: list[float], correct: list[bool]) -> Calibration:
    if not confidence:
        return Calibration(0, None)
    import numpy as np

    from retrieval.calibration import calibration_error

    return Calibration(len(confidence), round(calibration_error(np.array(confidence), np.array(correct)), 6))


def model_comparison(*, candidate: DecisionModel) -> Comparison:
    """The candidate against the active version of its kind on the tickets it shadowed."""
    active = DecisionModel.objects.filter(kind=candidate.kind, state=DecisionModel.State.ACTIVE).first()
    pairs = list(
        ShadowDecision.objects.filter(decision_model=candidate, active_suggestion__isnull=False).values_list(
            "ticket_id",
            "category_id",
            "team_id",
            "confidence",
            "latency_ms",
            "cost_usd",
            "active_suggestion_id",
        )
    )
    suggestions = Suggestion.objects.in_bulk([row[6] for row in pairs])
    ticket_ids = [row[0] for row in pairs]
    judged = set(
        Feedback.objects.filter(ticket_id__in=ticket_ids, kind__in=JUDGED).values_list("ticket_id", flat=True)
    )
    truth = {
        pk: (category, team)
        for pk, category, team in Ticket.objects.filter(pk__in=judged).values_list(
            "pk", "category_id", "team_id"
        )
    }
    latency = _active_latency([row[6] for row in pairs])
    costs = {ticket_id: cost for ticket_id, (_, cost) in _call_figures(ticket_ids).items()}
    candidate_latency = [float(row[4]) for row in pairs]
    candidate_cost = [float(row[5]) for row in pairs]
    active_latency = [latency[row[6]] for row in pairs if row[6] in latency]
    if candidate.kind == DecisionModel.Kind.LLM:  # the model calls alone: classification, both sides
        mine = _call_figures(ticket_ids, candidate=candidate)
        theirs = _call_figures(ticket_ids, purpose="classify")
        candidate_latency = [mine[t][0] for t in ticket_ids if t in mine]
        candidate_cost = [mine[t][1] for t in ticket_ids if t in mine]
        active_latency = [theirs[t][0] for t in ticket_ids if t in theirs]
        costs = {ticket_id: cost for ticket_id, (_, cost) in theirs.items()}
    same_category = same_team = 0
    cand, act = _Tally(), _Tally()
    differing_judged = differing_used = differing_decided = differing_candidate_right = 0
    for ticket_id, category, team, confidence, _lat, _cost, suggestion_id in pairs:
        active_suggestion = suggestions[suggestion_id]
        same_category += category == active_suggestion.category_id
        same_team += team == active_suggestion.team_id
        differ = category != active_suggestion.category_id
        if differ and active_suggestion.decision != Suggestion.Decision.PENDING:
            differing_decided += 1
            differing_used += active_suggestion.decision in USED
        if ticket_id not in truth:
            continue
        true_category, true_team = truth[ticket_id]
        for side, (c, t, p) in (
            (cand, (category, team, confidence)),
            (act, (active_suggestion.category_id, active_suggestion.team_id, active_suggestion.confidence)),
        ):
            side.category += c == true_category
            side.team += t == true_team
            side.confidence.append(float(p))
            side.right.append(c == true_category)
        if differ:
            differing_judged += 1
            differing_candidate_right += category == true_category
    n, judged_n = len(pairs), len([p for p in pairs if p[0] in truth])
    return Comparison(
        candidate_id=candidate.pk,
        active_id=active.pk if active else None,
        paired_tickets=n,
        category_agreement=Proportion.of(same_category, n),
        team_agreement=Proportion.of(same_team, n),
        candidate=Side(
            category_accuracy=Proportion.of(cand.category, judged_n),
            team_accuracy=Proportion.of(cand.team, judged_n),
            calibration=_ece(cand.confidence, cand.right),
            latency_ms=Mean.of(candidate_latency),
            cost_usd=Mean.of(candidate_cost),
        ),
        active=Side(
            category_accuracy=Proportion.of(act.category, judged_n),
            team_accuracy=Proportion.of(act.team, judged_n),
            calibration=_ece(act.confidence, act.right),
            latency_ms=Mean.of(active_latency),
            cost_usd=Mean.of([float(costs.get(ticket_id) or 0) for ticket_id in ticket_ids]),
        ),
        differing_active_used=Proportion.of(differing_used, differing_decided),
        differing_candidate_right=Proportion.of(differing_candidate_right, differing_judged),
        canary=_canary_accuracy(candidate),
        evaluation=dict(candidate.evaluation),
    )


def _call_figures(
    ticket_ids: list[int], *, candidate: DecisionModel | None = None, purpose: str = ""
) -> dict[int, tuple[float, float]]:
    """Per ticket, the model calls' total latency (ms) and cost (USD): the tickets' own calls, or a
    shadow candidate's (tagged with it)."""
    calls = ModelCall.objects.filter(ticket_id__in=ticket_ids, shadow=candidate is not None)
    if candidate is not None:
        calls = calls.filter(decision_model=candidate)
    if purpose:
        calls = calls.filter(purpose=purpose)
    rows = calls.values("ticket_id").annotate(latency=Sum("latency_ms"), cost=Sum("cost_usd"))
    return {row["ticket_id"]: (float(row["latency"] or 0), float(row["cost"] or 0)) for row in rows}


def _active_latency(suggestion_ids: list[int]) -> dict[int, float]:
    """The active decision's latency (its audit event's ``latency_ms``) per suggestion."""
    rows = DecisionStamp.objects.filter(
        suggestion_id__in=suggestion_ids, audit_event__isnull=False
    ).values_list("suggestion_id", "audit_event__details")
    return {
        sid: float(details.get("latency_ms") or 0.0) for sid, details in rows if isinstance(details, dict)
    }


def _canary_accuracy(candidate: DecisionModel) -> Proportion:
    rows = list(
        DecisionStamp.objects.filter(
            **{"llm_model": candidate, "llm_canary": True}
            if candidate.kind == DecisionModel.Kind.LLM
            else {"decision_model": candidate, "canary": True}
        ).values_list("suggestion__ticket_id", "suggestion__category_id")
    )
    judged = set(
        Feedback.objects.filter(ticket_id__in=[r[0] for r in rows], kind__in=JUDGED).values_list(
            "ticket_id", flat=True
        )
    )
    final = dict(Ticket.objects.filter(pk__in=judged).values_list("pk", "category_id"))
    right = sum(1 for ticket_id, category in rows if ticket_id in final and final[ticket_id] == category)
    return Proportion.of(right, len(final))

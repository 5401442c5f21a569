"""Output processing: routing rules, per-team confidence thresholds, priority and SLA due time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count

from tickets.models import Category, Priority, RoutingRule, Team, Ticket, TicketStatus

# An SLA is set per category for normal priority; other priorities scale it.
SLA_FACTOR = {Priority.URGENT: 0.25, Priority.HIGH: 0.5, Priority.NORMAL: 1.0, Priority.LOW: 2.0}
_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}


@dataclass
class RoutingOutcome:
    """Where a ticket goes, and why."""

    team: Team | None
    category: Category | None
    priority: str
    due_at: datetime | None
    to_triage: bool
    escalated: bool = False
    threshold: float | None = None
    rules: list[str] = field(default_factory=list)  # names of the rules that applied, in order
    reasons: list[str] = field(default_factory=list)

    def details(self) -> dict[str, object]:
        return {
            "team": self.team.name if self.team else None,
            "category": self.category.name if self.category else None,
            "priority": self.priority,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "to_triage": self.to_triage,
            "escalated": self.escalated,
            "threshold": self.threshold,
            "rules": self.rules,
            "reasons": self.reasons,
        }


def due_at_for(*, created_at: datetime, category: Category | None, priority: str) -> datetime | None:
    if category is None:
        return None
    return created_at + timedelta(
        hours=category.sla_hours * SLA_FACTOR.get(Priority(priority or "normal"), 1.0)
    )


def active_rules() -> list[RoutingRule]:
    return list(RoutingRule.objects.filter(is_active=True).select_related("set_team"))


def history_language_counts() -> dict[str, int]:
    """Resolved (or closed) labelled tickets per detected language: what routing in a language rests on.
    Tickets whose language was never recorded (or could not be told) are not counted."""
    rows = (
        Ticket.objects.filter(status__in=(TicketStatus.RESOLVED, TicketStatus.CLOSED), category__isnull=False)
        .exclude(language="")
        .values("language")
        .annotate(n=Count("id"))
    )
    return {str(row["language"]): int(row["n"]) for row in rows}


def rule_matches(
    rule: RoutingRule, *, ticket: Ticket, text: str, category: Category | None, priority: str
) -> bool:
    if rule.match_category_id is not None and (category is None or category.pk != rule.match_category_id):
        return False
    if rule.match_channel and rule.match_channel != ticket.channel:
        return False
    if rule.match_priority and rule.match_priority != priority:
        return False
    if rule.match_keywords:
        lowered = text.lower()
        if not any(
            word.strip().lower() in lowered for word in rule.match_keywords.split(",") if word.strip()
        ):
            return False
    if rule.match_requesters:
        email = ticket.requester_email.lower()
        wanted = [item.strip().lower() for item in rule.match_requesters.split(",") if item.strip()]
        if not email or not any(
            email == item or (item.startswith("@") and email.endswith(item)) for item in wanted
        ):
            return False
    return True


def route(
    *,
    ticket: Ticket,
    text: str,
    category: Category | None,
    priority: str,
    confidence: float,
    very_negative: bool = False,
    failed_reason: str = "",
    injection_reason: str = "",
    language_reason: str = "",
    rules: Sequence[RoutingRule] | None = None,
) -> RoutingOutcome:
    """Apply the admins' rules to the decision, then the team's threshold: routed or human triage.

    ``rules`` are the active rules in order (:func:`active_rules`), read once for a batch."""
    team = category.default_team if category else None
    priority = priority or (category.default_priority if category else Priority.NORMAL)
    outcome = RoutingOutcome(team=team, category=category, priority=priority, due_at=None, to_triage=False)
    for rule in active_rules() if rules is None else rules:
        if not rule_matches(rule, ticket=ticket, text=text, category=category, priority=outcome.priority):
            continue
        outcome.rules.append(rule.name)
        if rule.set_team is not None:
            outcome.team = rule.set_team
        if rule.set_priority:
            outcome.priority = rule.set_priority
        if rule.escalate:
            outcome.escalated = True
            outcome.reasons.append(f"rule {rule.name!r} escalates")
        if rule.force_triage:
            outcome.to_triage = True
            outcome.reasons.append(f"rule {rule.name!r} sends it to triage")
        if rule.stop:
            break
    if outcome.priority == Priority.URGENT:
        outcome.escalated = True
        outcome.reasons.append("urgent priority")
    if very_negative:
        outcome.escalated = True
        outcome.reasons.append("very negative tone")
        if _RANK[Priority(outcome.priority)] < _RANK[Priority.HIGH]:
            outcome.priority = Priority.HIGH
    if failed_reason:
        outcome.to_triage = True
        outcome.reasons.append(failed_reason)
    if injection_reason:
        outcome.to_triage = True
        outcome.reasons.append(injection_reason)
    if language_reason:
        outcome.to_triage = True
        outcome.reasons.append(language_reason)
    if outcome.team is None:
        outcome.to_triage = True
        outcome.reasons.append("no team")
    else:
        outcome.threshold = outcome.team.auto_route_threshold
        if confidence < outcome.threshold:
            outcome.to_triage = True
            outcome.reasons.append(
                f"confidence {confidence:.2f} below the team's threshold {outcome.threshold:.2f}"
            )
    outcome.due_at = due_at_for(created_at=ticket.created_at, category=category, priority=outcome.priority)
    return outcome

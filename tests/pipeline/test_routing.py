"""Routing rules, per-team thresholds and SLA due times."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tickets.models import Category, Priority, RoutingRule, Team, Ticket
from tickets.pipeline.output import due_at_for, route

pytestmark = pytest.mark.django_db


@pytest.fixture
def billing() -> Category:
    team = Team.objects.create(name="Billing", auto_route_threshold=0.7)
    return Category.objects.create(name="Refund", default_team=team, sla_hours=24)


def _ticket(email: str = "ann@customer.example", channel: str = "web") -> Ticket:
    return Ticket.objects.create(subject="s", body="b", requester_email=email, channel=channel)


def test_confident_decisions_go_to_the_categorys_team(billing: Category) -> None:
    outcome = route(ticket=_ticket(), text="refund", category=billing, priority="", confidence=0.9)
    assert (outcome.team, outcome.to_triage, outcome.priority) == (billing.default_team, False, "normal")
    assert outcome.threshold == 0.7


def test_below_the_teams_threshold_goes_to_triage_with_the_reason(billing: Category) -> None:
    outcome = route(ticket=_ticket(), text="refund", category=billing, priority="", confidence=0.69)
    assert outcome.to_triage
    assert outcome.reasons == ["confidence 0.69 below the team's threshold 0.70"]


def test_no_category_or_a_failure_goes_to_triage(billing: Category) -> None:
    assert route(ticket=_ticket(), text="?", category=None, priority="", confidence=1.0).to_triage
    failed = route(
        ticket=_ticket(), text="x", category=billing, priority="", confidence=1.0, failed_reason="bad"
    )
    assert failed.to_triage and "bad" in failed.reasons


def test_rules_apply_in_order_and_stop(billing: Category) -> None:
    vip_team = Team.objects.create(name="Key accounts")
    RoutingRule.objects.create(
        name="VIP customers",
        position=1,
        match_requesters="@bigcorp.example, boss@else.example",
        set_team=vip_team,
        set_priority=Priority.HIGH,
    )
    RoutingRule.objects.create(name="never reached", position=2, set_priority=Priority.LOW)
    outcome = route(
        ticket=_ticket("cfo@bigcorp.example"), text="refund", category=billing, priority="", confidence=0.9
    )
    assert (outcome.team, outcome.priority, outcome.rules) == (vip_team, Priority.HIGH, ["VIP customers"])
    other = route(
        ticket=_ticket("ann@small.example"), text="refund", category=billing, priority="", confidence=0.9
    )
    assert (other.team, other.priority, other.rules) == (
        billing.default_team,
        Priority.LOW,
        ["never reached"],
    )


def test_keyword_and_channel_conditions_must_all_hold(billing: Category) -> None:
    security = Team.objects.create(name="Security")
    RoutingRule.objects.create(
        name="breach",
        match_keywords="data breach, hacked",
        match_channel="api",
        set_team=security,
        escalate=True,
    )
    text = "I think my account was HACKED yesterday"
    via_web = route(ticket=_ticket(channel="web"), text=text, category=billing, priority="", confidence=0.9)
    via_api = route(ticket=_ticket(channel="api"), text=text, category=billing, priority="", confidence=0.9)
    assert via_web.team == billing.default_team and not via_web.escalated
    assert via_api.team == security and via_api.escalated


def test_force_triage_rule(billing: Category) -> None:
    RoutingRule.objects.create(name="legal", match_keywords="lawyer", force_triage=True)
    outcome = route(ticket=_ticket(), text="my lawyer", category=billing, priority="", confidence=0.99)
    assert outcome.to_triage and "rule 'legal' sends it to triage" in outcome.reasons


def test_urgent_or_very_negative_escalates(billing: Category) -> None:
    urgent = route(ticket=_ticket(), text="x", category=billing, priority="urgent", confidence=0.9)
    assert urgent.escalated
    angry = route(
        ticket=_ticket(), text="x", category=billing, priority="low", confidence=0.9, very_negative=True
    )
    assert angry.escalated and angry.priority == Priority.HIGH


def test_due_time_scales_the_categorys_sla_with_priority(billing: Category) -> None:
    ticket = _ticket()
    assert due_at_for(created_at=ticket.created_at, category=billing, priority="normal") == (
        ticket.created_at + timedelta(hours=24)
    )
    assert due_at_for(created_at=ticket.created_at, category=billing, priority="urgent") == (
        ticket.created_at + timedelta(hours=6)
    )
    assert due_at_for(created_at=ticket.created_at, category=None, priority="urgent") is None

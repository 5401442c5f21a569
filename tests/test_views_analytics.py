"""The analytics figures (tickets.analytics) against PostgreSQL, and the page that charts them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from tests.ui_factories import make_category, make_suggestion, make_team, make_ticket, make_user
from tickets import analytics
from tickets.audit import record_event
from tickets.models import Feedback, ModelCall, PipelineStage, Suggestion, Ticket
from tickets.services.lifecycle import ticket_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    cache.clear()  # the page's figures are cached for a minute (private, per-helper Redis cache)
    yield
    cache.clear()


def _window() -> dict[str, object]:
    now = timezone.now()
    return {
        "tickets": Ticket.objects.all(),
        "since": now - timedelta(days=30),
        "until": now + timedelta(seconds=1),
    }


def test_tickets_per_day_by_team() -> None:
    billing, tech = make_team("Billing"), make_team("Tech")
    now = timezone.now()
    for days_ago, team in ((0, billing), (0, billing), (1, tech), (40, tech)):
        ticket = ticket_create(subject="s", body="b", created_at=now - timedelta(days=days_ago))
        Ticket.objects.filter(pk=ticket.pk).update(team=team)
    ticket_create(subject="no team yet", body="b")
    daily = analytics.tickets_per_day(
        tickets=Ticket.objects.all(),
        since=now - timedelta(days=2),
        until=now + timedelta(seconds=1),
        by="team",
    )
    assert len(daily.days) == 3
    assert daily.series["Billing"] == [0, 0, 2]
    assert daily.series["Tech"] == [0, 1, 0]
    assert daily.series["(none)"] == [0, 0, 1]
    with pytest.raises(ValueError):
        analytics.tickets_per_day(tickets=Ticket.objects.all(), since=now, until=now, by="body")


def test_auto_routing_rate_counts_only_tickets_the_pipeline_finished() -> None:
    team = make_team("Billing")
    tickets = [make_ticket(team=team) for _ in range(4)]
    Ticket.objects.filter(pk__in=[t.pk for t in tickets[:3]]).update(stage=PipelineStage.DONE)
    Ticket.objects.filter(pk=tickets[0].pk).update(auto_routed=True)
    Ticket.objects.filter(pk__in=[t.pk for t in tickets[1:]]).update(auto_routed=False)
    rate = analytics.auto_routing_rate(**_window())  # type: ignore[arg-type]
    assert (rate.numerator, rate.denominator) == (1, 3)


def test_routing_accuracy_takes_each_tickets_latest_judgement() -> None:
    team = make_team("Billing")
    a, b, c = (make_ticket(team=team) for _ in range(3))
    now = timezone.now()
    for ticket, correct, minutes_ago in ((a, False, 10), (a, True, 5), (b, True, 5), (c, False, 5)):
        Feedback.objects.create(
            ticket=ticket,
            kind="reassigned",
            routing_correct=correct,
            created_at=now - timedelta(minutes=minutes_ago),
        )
    Feedback.objects.create(ticket=c, kind="priority", routing_correct=None)
    rate = analytics.routing_accuracy(**_window())  # type: ignore[arg-type]
    assert (rate.numerator, rate.denominator) == (2, 3)


def test_suggestion_acceptance() -> None:
    ticket = make_ticket()
    for decision in ("accepted", "accepted", "edited", "rejected", "pending"):
        suggestion = make_suggestion(ticket)
        Suggestion.objects.filter(pk=suggestion.pk).update(decision=decision)
    result = analytics.suggestion_acceptance(**_window())  # type: ignore[arg-type]
    assert (result.accepted, result.edited, result.rejected, result.pending) == (2, 1, 1, 1)
    assert (result.rate.numerator, result.rate.denominator) == (3, 4)


def test_stage_latency_percentiles_match_percentile_cont() -> None:
    ticket = make_ticket()
    for latency in (100, 200, 300, 400, 1000):
        record_event(ticket_id=ticket.pk, stage="model", action="model.done", details={"latency_ms": latency})
    record_event(ticket_id=ticket.pk, stage="input", action="input.done", details={"latency_ms": 12.5})
    record_event(ticket_id=ticket.pk, stage="routing", action="no.latency", details={})
    rows = analytics.stage_latency(**_window())  # type: ignore[arg-type]
    assert [(row.stage, row.count) for row in rows] == [("input", 1), ("model", 5)]
    model = rows[1]
    assert model.p50_ms == pytest.approx(300)
    assert model.p95_ms == pytest.approx(880)  # 400 + 0.8 * (1000 - 400), linear between ranks
    assert analytics._quantile([100, 200, 300, 400, 1000], 0.95) == pytest.approx(880)


def test_model_cost_per_ticket_and_team() -> None:
    billing, tech = make_team("Billing"), make_team("Tech")
    b1, b2, t1 = make_ticket(team=billing), make_ticket(team=billing), make_ticket(team=tech)
    for ticket, tokens, cost in (
        (b1, 100, "0.002"),
        (b1, 50, "0.001"),
        (b2, 150, "0.003"),
        (t1, 400, "0.010"),
    ):
        ModelCall.objects.create(
            ticket=ticket,
            purpose="classify",
            backend="llamacpp",
            model_name="m",
            prompt_tokens=tokens - 10,
            completion_tokens=10,
            outcome="ok",
            cost_usd=Decimal(cost),
        )
    overall, per_team = analytics.model_cost(**_window())  # type: ignore[arg-type]
    assert (overall.tickets, overall.calls, overall.tokens) == (3, 4, 700)
    assert overall.cost_usd == Decimal("0.016")
    by_team = {row.label: row for row in per_team}
    assert by_team["Billing"].tokens_per_ticket == 150 and by_team["Billing"].cost_per_ticket == Decimal(
        "0.003"
    )
    assert by_team["Tech"].tokens_per_ticket == 400


def test_confidence_histogram() -> None:
    ticket = make_ticket()
    for confidence in (0.05, 0.55, 0.95, 0.95, 1.0, 0.0):
        make_suggestion(ticket, confidence=confidence)
    assert analytics.confidence_histogram(**_window()) == [2, 0, 0, 0, 0, 1, 0, 0, 0, 3]  # type: ignore[arg-type]


def test_drift_compares_this_week_with_the_four_weeks_before() -> None:
    team = make_team("Billing")
    new, old = make_category("New product", team), make_category("Old product", team)
    now = timezone.now()
    for days_ago, category, confidence in (
        (1, new, 0.4),
        (2, new, 0.6),
        (10, old, 0.9),
        (20, old, 0.9),
        (60, new, 0.1),
    ):
        ticket = ticket_create(subject="s", body="b", created_at=now - timedelta(days=days_ago))
        Ticket.objects.filter(pk=ticket.pk).update(category=category)
        suggestion = make_suggestion(ticket, confidence=confidence)
        Suggestion.objects.filter(pk=suggestion.pk).update(created_at=now - timedelta(days=days_ago))
    result = analytics.drift(tickets=Ticket.objects.all(), now=now)
    assert (result.recent_tickets, result.baseline_tickets) == (2, 2)
    assert result.category_distance == 1.0  # nothing in common
    assert result.recent_confidence == pytest.approx(0.5) and result.baseline_confidence == pytest.approx(0.9)
    assert result.confidence_change == pytest.approx(-0.4)
    shares = {item.category: (item.recent_share, item.baseline_share) for item in result.categories}
    assert shares == {"New product": (1.0, 0.0), "Old product": (0.0, 1.0)}


def test_the_analytics_page_charts_the_figures_and_escapes_names() -> None:
    evil = make_team("<b>Evil</b> team")
    ticket = make_ticket(team=evil, category=make_category("Payments", evil))
    Ticket.objects.filter(pk=ticket.pk).update(stage=PipelineStage.DONE, auto_routed=True)
    make_suggestion(ticket, confidence=0.72)
    record_event(ticket_id=ticket.pk, stage="model", action="model.done", details={"latency_ms": 850})
    ModelCall.objects.create(
        ticket=ticket,
        purpose="classify",
        backend="llamacpp",
        model_name="m",
        prompt_tokens=300,
        completion_tokens=20,
        outcome="ok",
        cost_usd=Decimal("0.0005"),
    )
    client = Client()
    client.force_login(make_user("root", superuser=True))
    response = client.get("/analytics/?days=7")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<svg") >= 5
    assert "<b>Evil</b>" not in html and "&lt;b&gt;Evil&lt;/b&gt; team" in html
    assert response.context["auto_routing"].numerator == 1
    assert "850.0" in html  # p50 of the model stage in the table
    assert response.context["days"] == 7
    assert client.get("/analytics/?days=bogus").context["days"] == 30


def test_a_lead_sees_only_her_teams_figures() -> None:
    billing, tech = make_team("Billing"), make_team("Tech")
    make_ticket(team=billing)
    make_ticket(team=tech)
    client = Client()
    client.force_login(make_user("lee", teams={billing: "lead"}))
    response = client.get("/analytics/")
    assert response.context["total_tickets"] == 1


def test_figures_are_cached_per_scope_for_a_minute() -> None:
    billing, tech = make_team("Billing"), make_team("Tech")
    make_ticket(team=billing)
    make_ticket(team=tech)
    admin, lead = Client(), Client()
    admin.force_login(make_user("root", superuser=True))
    lead.force_login(make_user("lee", teams={billing: "lead"}))
    assert admin.get("/analytics/").context["total_tickets"] == 2
    assert lead.get("/analytics/").context["total_tickets"] == 1  # not the admin's cached figures
    make_ticket(team=billing)
    assert admin.get("/analytics/").context["total_tickets"] == 2  # cached
    cache.clear()
    assert admin.get("/analytics/").context["total_tickets"] == 3

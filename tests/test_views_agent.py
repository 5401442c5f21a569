"""The signed-in pages: sign-in, roles (deny by default, no access by URL), the dashboard, the ticket page."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from tests.ui_factories import PASSWORD, make_category, make_suggestion, make_team, make_ticket, make_user
from tickets.models import AuditEvent, Category, Feedback, Suggestion, Team, Ticket, TicketStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    cache.clear()  # sign-in attempts are counted in the (private, per-helper) Redis cache
    yield
    cache.clear()


@dataclass
class Desk:
    billing: Team
    tech: Team
    payments: Category
    login: Category
    billing_ticket: Ticket
    tech_ticket: Ticket
    triage_ticket: Ticket
    suggestion: Suggestion
    agent: Any
    past: Ticket


@pytest.fixture
def desk() -> Desk:
    billing, tech = make_team("Billing"), make_team("Tech")
    payments, login = make_category("Payments", billing, sla_hours=8), make_category("Login", tech)
    past = make_ticket(
        subject="Refund for double charge", team=billing, category=payments, status=TicketStatus.RESOLVED
    )
    billing_ticket = make_ticket(subject="Card declined at checkout", team=billing, category=payments)
    suggestion = make_suggestion(
        billing_ticket,
        team=billing,
        category=payments,
        confidence=0.83,
        citations=[{"ticket_id": past.pk, "score": 0.91}],
    )
    return Desk(
        billing=billing,
        tech=tech,
        payments=payments,
        login=login,
        billing_ticket=billing_ticket,
        tech_ticket=make_ticket(subject="Cannot log in", team=tech, category=login),
        triage_ticket=make_ticket(subject="Something odd", status=TicketStatus.NEEDS_TRIAGE),
        suggestion=suggestion,
        agent=make_user("ann", teams={billing: "agent"}),
        past=past,
    )


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _hx(client: Client, url: str, data: dict[str, Any]) -> Any:
    return client.post(url, data, HTTP_HX_REQUEST="true")


# --- sign-in and roles ---------------------------------------------------------------------------


def test_anonymous_users_are_sent_to_sign_in_and_can_sign_in(client: Client, desk: Desk) -> None:
    for url in ("/dashboard/", f"/tickets/{desk.billing_ticket.pk}/", "/analytics/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")
    assert client.post(f"/tickets/{desk.billing_ticket.pk}/actions/accept/", {}).status_code == 302
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and 'name="password"' in page.content.decode()
    bad = client.post("/accounts/login/", {"username": "ann", "password": "wrong"})
    assert bad.status_code == 200 and "Please enter a correct username and password" in bad.content.decode()
    good = client.post("/accounts/login/", {"username": "ann", "password": PASSWORD})
    assert good.status_code == 302 and good["Location"] == "/dashboard/"


def test_a_user_without_a_role_is_denied_with_a_reason(desk: Desk) -> None:
    client = _client(make_user("nobody"))
    for url in ("/dashboard/", f"/tickets/{desk.triage_ticket.pk}/"):
        response = client.get(url)
        assert response.status_code == 403
        assert "no role" in response.content.decode()


def test_an_agent_cannot_open_or_act_on_another_teams_ticket_by_url(desk: Desk) -> None:
    client = _client(desk.agent)
    assert client.get(f"/tickets/{desk.billing_ticket.pk}/").status_code == 200
    assert client.get(f"/tickets/{desk.triage_ticket.pk}/").status_code == 200
    assert client.get(f"/tickets/{desk.tech_ticket.pk}/").status_code == 404
    assert client.get(f"/tickets/{desk.tech_ticket.pk}/progress/").status_code == 404
    assert (
        client.post(f"/tickets/{desk.tech_ticket.pk}/actions/priority/", {"priority": "urgent"}).status_code
        == 404
    )
    desk.tech_ticket.refresh_from_db()
    assert desk.tech_ticket.priority == "normal"
    assert client.get("/tickets/999999/").status_code == 404


def test_analytics_is_for_leads_and_admins(desk: Desk) -> None:
    assert _client(desk.agent).get("/analytics/").status_code == 403
    lead = make_user("lee", teams={desk.billing: "lead"})
    assert _client(lead).get("/analytics/").status_code == 200
    assert _client(make_user("root", superuser=True)).get("/analytics/").status_code == 200


# --- the dashboard -------------------------------------------------------------------------------


def test_the_dashboard_lists_what_the_agent_may_see_with_counts(desk: Desk) -> None:
    page = _client(desk.agent).get("/dashboard/")
    html = page.content.decode()
    assert desk.billing_ticket.reference in html and desk.triage_ticket.reference in html
    assert desk.tech_ticket.reference not in html
    queues = {queue.key: queue.count for queue in page.context["queues"]}
    assert queues == {"all": 2, "triage": 1, "mine": 0, f"team-{desk.billing.pk}": 1}
    assert "Tech" not in [queue.label for queue in page.context["queues"]]


def test_an_admin_sees_every_team_queue(desk: Desk) -> None:
    page = _client(make_user("root", superuser=True)).get(f"/dashboard/?queue=team-{desk.tech.pk}")
    assert desk.tech_ticket.reference in page.content.decode()
    assert desk.billing_ticket.reference not in page.content.decode()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("queue=triage", {"triage_ticket"}),
        ("q=card DECLINED at", {"billing_ticket"}),
        ("q=checkout", {"billing_ticket", "triage_ticket"}),
        ("priority=urgent", set()),
        ("confidence=high", {"billing_ticket"}),
        ("confidence=low", set()),
        ("status=needs_triage", {"triage_ticket"}),
        ("status=", {"billing_ticket", "triage_ticket", "past"}),
        ("status=resolved", {"past"}),
        ("due_soon=on", set()),
        ("language=en", set()),
    ],
)
def test_dashboard_filters(desk: Desk, params: str, expected: set[str]) -> None:
    page = _client(desk.agent).get(f"/dashboard/?{params}")
    assert page.status_code == 200
    shown = {ticket.pk for ticket in page.context["page"]}
    assert shown == {getattr(desk, name).pk for name in expected}


def test_category_status_and_due_soon_filters(desk: Desk) -> None:
    Ticket.objects.filter(pk=desk.billing_ticket.pk).update(due_at=timezone.now() + timedelta(hours=1))
    client = _client(desk.agent)
    due = client.get("/dashboard/?due_soon=on").context["page"]
    assert [ticket.pk for ticket in due] == [desk.billing_ticket.pk]
    assert 'class="badge warn">overdue' not in client.get("/dashboard/").content.decode()
    Ticket.objects.filter(pk=desk.billing_ticket.pk).update(due_at=timezone.now() - timedelta(minutes=5))
    assert 'class="badge warn">overdue' in client.get("/dashboard/?due_soon=on").content.decode()
    by_category = client.get(f"/dashboard/?category={desk.payments.pk}").context["page"]
    assert [ticket.pk for ticket in by_category] == [desk.billing_ticket.pk]


def test_bad_filter_values_show_an_error_not_a_500(desk: Desk) -> None:
    client = _client(desk.agent)
    for params in (
        "priority=bogus",
        "page=abc",
        "category=nope",
        f"queue=team-{desk.tech.pk}",
        "queue=team-x",
        "sort=evil",
        "status=<script>",
    ):
        page = client.get(f"/dashboard/?{params}")
        assert page.status_code == 200, params
        assert 'class="errors"' in page.content.decode(), params
        assert desk.tech_ticket.reference not in page.content.decode()


def test_sort_pagination_and_the_live_refresh_partial(desk: Desk) -> None:
    for number in range(30):
        make_ticket(subject=f"Invoice question {number:02d}", team=desk.billing, category=desk.payments)
    client = _client(desk.agent)
    first = client.get(f"/dashboard/?queue=team-{desk.billing.pk}&sort=oldest")
    assert first.context["page"].paginator.count == 31
    assert first.context["page"][0].pk == desk.billing_ticket.pk
    second = client.get(f"/dashboard/?queue=team-{desk.billing.pk}&sort=oldest&page=2")
    assert len(second.context["page"]) == 6
    lowest_confidence = client.get("/dashboard/?sort=confidence").context["page"][0]
    assert (
        lowest_confidence.pk == desk.billing_ticket.pk
    )  # the only one with a suggestion; others are null (last)
    partial = client.get("/dashboard/?queue=triage", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and 'hx-trigger="every 15s"' in partial and "queue=triage" in partial


# --- the ticket page -----------------------------------------------------------------------------


def test_the_ticket_page_shows_the_suggestion_citations_progress_and_timeline(desk: Desk) -> None:
    html = _client(desk.agent).get(f"/tickets/{desk.billing_ticket.pk}/").content.decode()
    assert "Card declined at checkout" in html
    assert 'id="confidence">83%' in html
    assert "Ask the customer to retry with 3-D Secure enabled." in html
    assert "Refund for double charge" in html and "Done it." in html  # the cited ticket, with its resolution
    assert 'id="pipeline"' in html and "ticket.created" in html and "status.routed" in html
    for action in ("accept", "edit", "reject", "reassign", "priority", "resolve", "take"):
        assert f'id="action-{action}"' in html


def test_ticket_text_is_escaped_everywhere_it_is_shown(desk: Desk) -> None:
    evil = make_ticket(
        subject="<img src=x onerror=alert(1)>",
        body="<script>alert('body')</script>\n<a href=\"javascript:alert(2)\">click</a>",
        team=desk.billing,
        category=desk.payments,
    )
    make_suggestion(evil, team=desk.billing, text="<script>alert('suggestion')</script>")
    client = _client(desk.agent)
    for url in (f"/tickets/{evil.pk}/", "/dashboard/"):
        html = client.get(url).content.decode()
        assert "<script>alert(" not in html and "<img src=x" not in html and 'href="javascript:' not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
    ticket_page = client.get(f"/tickets/{evil.pk}/").content.decode()
    assert "&lt;script&gt;alert(&#x27;body&#x27;)&lt;/script&gt;" in ticket_page
    # An agent's reason lands in the audit timeline's details: escaped there too.
    suggestion = evil.suggestions.get()
    rejected = _hx(
        client,
        f"/tickets/{evil.pk}/actions/reject/",
        {"suggestion_id": suggestion.pk, "reason": "<script>alert('reason')</script>"},
    ).content.decode()
    assert "<script>alert('reason')" not in rejected and "&lt;script&gt;alert(" in rejected


def test_accept_with_htmx_returns_the_updated_page_part(desk: Desk) -> None:
    client = _client(desk.agent)
    url = f"/tickets/{desk.billing_ticket.pk}/actions/accept/"
    response = _hx(client, url, {"suggestion_id": desk.suggestion.pk})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and 'id="ticket-main"' in html and "Suggestion accepted." in html
    assert "suggestion.accepted" in html  # in the audit timeline
    # The resolve form now carries the accepted reply.
    assert response.context["forms"]["resolve"].initial["resolution"] == desk.suggestion.resolution_text
    feedback = Feedback.objects.get(ticket=desk.billing_ticket)
    assert (feedback.kind, feedback.user, feedback.routing_correct) == ("accepted", desk.agent, True)
    event = AuditEvent.objects.filter(ticket=desk.billing_ticket).order_by("-sequence")[0]
    assert (event.actor, event.actor_type) == ("ann", "agent")
    again = _hx(client, url, {"suggestion_id": desk.suggestion.pk})
    assert again.status_code == 409 and "already accepted" in again.content.decode()


def test_actions_without_script_redirect_back_to_the_ticket(desk: Desk) -> None:
    client = _client(desk.agent)
    response = client.post(
        f"/tickets/{desk.billing_ticket.pk}/actions/resolve/",
        {"resolution": "Retried with 3-D Secure; it worked."},
    )
    assert response.status_code == 302 and response["Location"] == f"/tickets/{desk.billing_ticket.pk}/"
    desk.billing_ticket.refresh_from_db()
    assert desk.billing_ticket.status == "resolved"
    page = client.get(response["Location"]).content.decode()
    assert "Ticket resolved" in page and 'id="action-reopen"' in page and 'id="action-resolve"' not in page


def test_bad_action_input_is_shown_next_to_the_field(desk: Desk) -> None:
    client = _client(desk.agent)
    base = f"/tickets/{desk.billing_ticket.pk}/actions"
    reject = _hx(client, f"{base}/reject/", {"suggestion_id": desk.suggestion.pk, "reason": ""})
    assert reject.status_code == 422 and "This field is required." in reject.content.decode()
    resolve = _hx(client, f"{base}/resolve/", {"resolution": "x" * 20_001})
    assert resolve.status_code == 422 and "at most 20000 characters" in resolve.content.decode()
    priority = _hx(client, f"{base}/priority/", {"priority": "asap"})
    assert priority.status_code == 422 and "Select a valid choice" in priority.content.decode()
    reassign = _hx(client, f"{base}/reassign/", {"team": "", "category": ""})
    assert reassign.status_code == 422 and "Choose a team or a category." in reassign.content.decode()
    other = make_suggestion(desk.tech_ticket)
    foreign = _hx(client, f"{base}/accept/", {"suggestion_id": other.pk})
    assert foreign.status_code == 422 and "not this ticket" in foreign.content.decode()
    assert not Feedback.objects.exists()
    assert client.post(f"{base}/explode/", {}).status_code == 404
    assert client.get(f"{base}/accept/").status_code == 405


def test_reassigning_a_ticket_away_takes_it_out_of_the_agents_view(desk: Desk) -> None:
    client = _client(desk.agent)
    response = _hx(
        client,
        f"/tickets/{desk.billing_ticket.pk}/actions/reassign/",
        {"team": desk.tech.pk, "reason": "login issue"},
    )
    assert response.status_code == 200 and "left your queues" in response.content.decode()
    assert client.get(f"/tickets/{desk.billing_ticket.pk}/").status_code == 404
    assert Feedback.objects.get().routing_correct is False


def test_triage_edit_priority_take_and_reopen(desk: Desk) -> None:
    client = _client(desk.agent)
    base = f"/tickets/{desk.billing_ticket.pk}/actions"
    assert _hx(client, f"{base}/take/", {}).status_code == 200
    assert client.get("/dashboard/?queue=mine").context["page"][0].pk == desk.billing_ticket.pk
    edited = _hx(
        client, f"{base}/edit/", {"suggestion_id": desk.suggestion.pk, "resolution_text": "Refunded."}
    )
    assert edited.status_code == 200
    assert edited.context["forms"]["resolve"].initial["resolution"] == "Refunded."
    assert _hx(client, f"{base}/priority/", {"priority": "high"}).status_code == 200
    desk.billing_ticket.refresh_from_db()
    assert desk.billing_ticket.priority == "high"
    assert desk.billing_ticket.due_at == desk.billing_ticket.created_at + timedelta(hours=4)
    assert _hx(client, f"{base}/resolve/", {"resolution": "Refunded."}).status_code == 200
    reopened = _hx(client, f"{base}/reopen/", {"reason": "Customer wrote back"})
    assert reopened.status_code == 200 and "Ticket reopened." in reopened.content.decode()
    kinds = list(Feedback.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["edited", "priority", "resolved", "reopened"]
    triage = _hx(
        client, f"/tickets/{desk.triage_ticket.pk}/actions/reassign/", {"category": desk.payments.pk}
    )
    assert triage.status_code == 200
    desk.triage_ticket.refresh_from_db()
    assert (desk.triage_ticket.status, desk.triage_ticket.team) == ("routed", desk.billing)


def test_the_pipeline_progress_polls_until_done_then_reloads_the_page(desk: Desk) -> None:
    client = _client(make_user("root", superuser=True))
    ticket = make_ticket(status=TicketStatus.PROCESSING)
    Ticket.objects.filter(pk=ticket.pk).update(stage="model")
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert f'hx-get="/tickets/{ticket.pk}/progress/"' in page
    assert 'aria-current="step">Model' in page
    polling = client.get(f"/tickets/{ticket.pk}/progress/", HTTP_HX_REQUEST="true")
    assert "HX-Refresh" not in polling
    Ticket.objects.filter(pk=ticket.pk).update(stage="done")
    finished = client.get(f"/tickets/{ticket.pk}/progress/", HTTP_HX_REQUEST="true")
    assert finished["HX-Refresh"] == "true"
    assert (
        "hx-get" not in client.get(f"/tickets/{ticket.pk}/").content.decode().split('id="pipeline"')[1][:200]
    )


def test_sign_in_attempts_are_throttled_per_address(client: Client, desk: Desk) -> None:
    from tickets.views.auth import SIGN_IN_ATTEMPTS

    for _ in range(SIGN_IN_ATTEMPTS):
        wrong = client.post(
            "/accounts/login/", {"username": "ann", "password": "guess"}, REMOTE_ADDR="192.0.2.9"
        )
        assert wrong.status_code == 200
    blocked = client.post(
        "/accounts/login/", {"username": "ann", "password": PASSWORD}, REMOTE_ADDR="192.0.2.9"
    )
    assert blocked.status_code == 429 and "sign-in attempts" in blocked.content.decode()
    allowed = client.post(
        "/accounts/login/", {"username": "ann", "password": PASSWORD}, REMOTE_ADDR="192.0.2.10"
    )
    assert allowed.status_code == 302

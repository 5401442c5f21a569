"""Issue 13 on the web pages: the answer confidence and its band on the ticket page, the abstained state
with the similar tickets instead of a reply, and suggestion acceptance by confidence band on analytics."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from tests.ui_factories import make_category, make_suggestion, make_team, make_ticket, make_user
from tickets.analytics_suggestions import acceptance_by_band
from tickets.models import Feedback, Suggestion, Ticket, TicketStatus
from tickets.suggestion_bands import band_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_bands_have_closed_lower_and_open_upper_bounds() -> None:
    keys = [band_of(value).key for value in (None, 0.0, 0.4999, 0.5, 0.6999, 0.7, 0.8999, 0.9, 1.0)]
    assert keys == [
        "uncalibrated",
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
        "very_high",
        "very_high",
    ]


def test_a_shown_suggestion_carries_its_answer_confidence_and_band() -> None:
    billing = make_team("Billing")
    refunds = make_category("Refunds", billing)
    agent = make_user("ann", teams={billing: "agent"})
    ticket = make_ticket(subject="Charged twice", team=billing, category=refunds)
    make_suggestion(
        ticket,
        team=billing,
        category=refunds,
        text="We refunded the duplicate charge.",
        suggestion_confidence=0.934,
    )
    html = _client(agent).get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="suggestion-confidence">93%' in html
    assert 'id="suggestion-band">very high<' in html
    assert "We refunded the duplicate charge." in html and "No suggestion good enough" not in html
    for action in ("accept", "edit", "reject"):
        assert f'id="action-{action}"' in html


def test_an_uncalibrated_suggestion_says_so() -> None:
    billing = make_team("Billing")
    agent = make_user("ann", teams={billing: "agent"})
    ticket = make_ticket(team=billing, category=make_category("Refunds", billing))
    make_suggestion(ticket, team=billing, suggestion_confidence=None)
    html = _client(agent).get(f"/tickets/{ticket.pk}/").content.decode()
    assert 'id="suggestion-confidence">not calibrated<' in html and 'id="suggestion-band"' not in html


def test_an_abstained_suggestion_shows_the_similar_tickets_escaped_and_no_reply_buttons() -> None:
    billing = make_team("Billing")
    refunds = make_category("Refunds", billing)
    agent = make_user("ann", teams={billing: "agent"})
    near = make_ticket(
        subject="<b>Double</b> charge on March invoice",
        team=billing,
        category=refunds,
        status=TicketStatus.RESOLVED,
    )
    far = make_ticket(
        subject="Refund after cancelling", team=billing, category=refunds, status=TicketStatus.RESOLVED
    )
    ticket = make_ticket(subject="Charged twice", team=billing, category=refunds)
    make_suggestion(
        ticket,
        team=billing,
        category=refunds,
        text="",
        suggestion_confidence=0.31,
        abstained=True,
        evidence={
            "neighbours": [
                {"doc_id": near.pk, "category": "Refunds", "score": 0.88},
                {"doc_id": near.pk, "category": "Refunds", "score": 0.80},  # a second chunk: listed once
                {"doc_id": far.pk, "category": "Refunds", "score": 0.61},
                {"doc_id": 10**9, "category": "Refunds", "score": 0.5},  # deleted since: skipped
            ]
        },
    )
    response = _client(agent).get(f"/tickets/{ticket.pk}/")
    html = response.content.decode()
    assert "No suggestion good enough" in html
    assert 'id="suggestion-confidence">31%' in html and 'id="suggestion-band">low<' in html
    assert [found.ticket_id for found in response.context["similar"]] == [near.pk, far.pk]
    assert f'href="/tickets/{near.pk}/"' in html and f'href="/tickets/{far.pk}/"' in html
    assert "<b>Double</b>" not in html and "&lt;b&gt;Double&lt;/b&gt; charge" in html
    assert 'id="suggestion-text"' not in html
    for action in ("accept", "edit", "reject"):
        assert f'id="action-{action}"' not in html
    assert 'id="action-resolve"' in html  # the agent still writes and sends the reply herself
    assert _client(agent).get(f"/tickets/{near.pk}/").status_code == 200  # she can open them


def _judged(ticket: Ticket, confidence: float | None, kind: str, *, abstained: bool = False) -> None:
    suggestion = make_suggestion(ticket, suggestion_confidence=confidence, abstained=abstained)
    Feedback.objects.create(ticket=ticket, suggestion=suggestion, kind=kind)


def _band_fixture() -> None:
    ticket = make_ticket()
    for confidence, kind in (
        (0.2, "rejected"),
        (0.49, "rejected"),
        (0.3, "edited"),
        (0.5, "accepted"),
        (0.65, "rejected"),
        (0.7, "edited"),
        (0.85, "accepted"),
        (0.89, "accepted"),
        (0.9, "accepted"),
        (0.97, "accepted"),
        (1.0, "edited"),
        (None, "rejected"),
    ):
        _judged(ticket, confidence, kind)
    _judged(ticket, 0.2, "rejected", abstained=True)  # nothing was shown: not counted
    reassigned = make_suggestion(ticket, suggestion_confidence=0.95)
    Feedback.objects.create(ticket=ticket, suggestion=reassigned, kind="reassigned")  # not a judgement
    old = make_suggestion(ticket, suggestion_confidence=0.95)
    Feedback.objects.create(
        ticket=ticket, suggestion=old, kind="accepted", created_at=timezone.now() - timedelta(days=60)
    )  # outside the window


EXPECTED = {  # band: (accepted, edited, rejected)
    "low": (0, 1, 2),
    "medium": (1, 0, 1),
    "high": (2, 1, 0),
    "very_high": (2, 1, 0),
    "uncalibrated": (0, 0, 1),
}


def test_acceptance_by_band_counts_feedback_on_shown_suggestions() -> None:
    _band_fixture()
    now = timezone.now()
    rows = acceptance_by_band(
        tickets=Ticket.objects.all(), since=now - timedelta(days=30), until=now + timedelta(seconds=1)
    )
    assert {row.band.key: (row.accepted, row.edited, row.rejected) for row in rows} == EXPECTED
    assert [row.band.key for row in rows] == ["low", "medium", "high", "very_high", "uncalibrated"]
    high = rows[2]
    assert (high.used.numerator, high.used.denominator, high.as_is.numerator) == (3, 3, 2)


def test_the_analytics_page_tables_and_charts_acceptance_by_band() -> None:
    _band_fixture()
    client = _client(make_user("root", superuser=True))
    response = client.get("/analytics/?days=30")
    assert response.status_code == 200
    html = response.content.decode()
    section = html[html.index('id="acceptance-by-band"') :]
    section = section[: section.index("</section>")]
    assert section.count('<svg class="chart"') == 1
    assert "<title>Suggestion feedback by answer-confidence band</title>" in section
    assert ">accepted as is</li>" in section and ">edited</li>" in section  # the legend
    assert '<tr data-band="low"><td>&lt; 0.5</td><td>0</td><td>1</td><td>2</td><td>33%</td></tr>' in section
    assert (
        '<tr data-band="very_high"><td>≥ 0.9</td><td>2</td><td>1</td><td>0</td><td>100%</td></tr>' in section
    )
    assert (
        '<tr data-band="uncalibrated"><td>uncalibrated</td><td>0</td><td>0</td><td>1</td><td>0%</td></tr>'
        in section
    )
    assert Suggestion.objects.count() == 15

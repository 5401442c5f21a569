"""Tickets in a language the history lacks go to triage with that reason (LANGUAGE_MIN_HISTORY_TICKETS),
end to end: PostgreSQL, the real embedder and knowledge base, the real language identifier."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings
from django.urls import reverse

from tests.ui_factories import make_user
from tickets.models import Category, Ticket, TicketStatus
from tickets.pipeline.text import prepare
from tickets.services.submission import ticket_submit

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]

GERMAN_VPN = {
    "subject": "VPN bricht ständig ab",
    "body": "Seit gestern trennt sich der VPN-Tunnel nach wenigen Sekunden, wenn ich von zu Hause arbeite.",
}
ENGLISH_VPN = {
    "subject": "VPN keeps dropping",
    "body": "Since yesterday the VPN tunnel disconnects after a few seconds when I work from home.",
}


def _languages_recorded() -> None:
    """What imports do now: the history's language recorded (the fixture's history is all English)."""
    for ticket in Ticket.objects.filter(status=TicketStatus.RESOLVED):
        ticket.language = prepare(subject=ticket.subject, body=ticket.body).language
        ticket.save(update_fields=["language"])


def _submit(capture: Any, fields: dict[str, str]) -> Ticket:
    with capture(execute=True):
        ticket = ticket_submit(**fields, requester_email="mia@customer.example")
    return Ticket.objects.get(pk=ticket.pk)


def _routing(ticket: Ticket) -> dict[str, Any]:
    event = ticket.audit_events.filter(action__startswith="routing.").get()
    return dict(event.details)


@override_settings(PIPELINE_USE_MODEL="never", LANGUAGE_MIN_HISTORY_TICKETS=5)
def test_a_ticket_in_a_language_the_history_lacks_goes_to_triage_with_the_reason(
    company: dict[str, Category], django_capture_on_commit_callbacks: Any, client: Any
) -> None:
    _languages_recorded()
    assert set(Ticket.objects.filter(status="resolved").values_list("language", flat=True)) == {"en"}

    german = _submit(django_capture_on_commit_callbacks, GERMAN_VPN)
    english = _submit(django_capture_on_commit_callbacks, ENGLISH_VPN)

    assert german.language == "de" and english.language == "en"
    assert german.status == TicketStatus.NEEDS_TRIAGE and not german.auto_routed
    reason = (
        "written in German (de), a language the history barely covers: 0 resolved tickets in it, fewer than 5"
    )
    assert reason in _routing(german)["reasons"]
    assert english.status == TicketStatus.ROUTED and english.category == company["VPN"]
    assert not any("language" in r for r in _routing(english)["reasons"])

    client.force_login(make_user("admin", superuser=True))
    page = client.get(reverse("tickets:ticket", args=[german.pk])).content.decode()
    assert 'id="triage-reasons"' in page and "written in German (de)" in page
    english_page = client.get(reverse("tickets:ticket", args=[english.pk])).content.decode()
    assert 'id="triage-reasons"' not in english_page
    trail = client.get(f"/api/v1/tickets/{german.pk}/audit").json()
    assert any(reason in e["details"].get("reasons", []) for e in trail["events"])


@override_settings(PIPELINE_USE_MODEL="never", LANGUAGE_MIN_HISTORY_TICKETS=5)
def test_enough_history_in_the_language_or_the_rule_off_lets_it_route(
    company: dict[str, Category], django_capture_on_commit_callbacks: Any
) -> None:
    _languages_recorded()
    Ticket.objects.filter(status="resolved", category=company["Refund"]).update(language="de")  # 7 of them
    enough = _submit(django_capture_on_commit_callbacks, GERMAN_VPN)
    assert not any("language" in r for r in _routing(enough)["reasons"])

    Ticket.objects.filter(status="resolved").update(language="en")
    with override_settings(LANGUAGE_MIN_HISTORY_TICKETS=0):
        rule_off = _submit(django_capture_on_commit_callbacks, GERMAN_VPN)
    assert rule_off.language == "de"
    assert not any("language" in r for r in _routing(rule_off)["reasons"])


@override_settings(PIPELINE_USE_MODEL="never", LANGUAGE_MIN_HISTORY_TICKETS=5)
def test_while_no_history_language_is_recorded_the_rule_stays_off(
    company: dict[str, Category], django_capture_on_commit_callbacks: Any
) -> None:
    assert set(Ticket.objects.filter(status="resolved").values_list("language", flat=True)) == {""}
    ticket = _submit(django_capture_on_commit_callbacks, GERMAN_VPN)
    assert ticket.language == "de"
    assert not any("language" in r for r in _routing(ticket)["reasons"])

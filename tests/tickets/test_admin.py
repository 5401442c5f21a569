"""The admin lists every domain model; the audit trail is read-only there."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from retrieval.models import KnowledgeEntry
from tickets.models import Feedback, ModelCall
from tickets.services.lifecycle import ticket_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client() -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("model", ["team", "category", "ticket", "suggestion", "auditevent"])
def test_admin_lists_each_model(admin_client: Client, model: str) -> None:
    ticket_create(subject="Printer on fire", body="It is literally smoking.")
    response = admin_client.get(f"/admin/tickets/{model}/")
    assert response.status_code == 200


def test_audit_events_cannot_be_added_or_changed_in_the_admin(admin_client: Client) -> None:
    ticket = ticket_create(subject="s", body="b")
    event = ticket.audit_events.get()
    assert admin_client.get("/admin/tickets/auditevent/add/").status_code == 403
    response = admin_client.post(f"/admin/tickets/auditevent/{event.pk}/change/", {"action": "forged"})
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.action == "ticket.created"


def test_ticket_text_is_escaped_in_the_admin(admin_client: Client) -> None:
    ticket_create(subject="<script>alert(1)</script>", body="<img src=x onerror=alert(2)>")
    page = admin_client.get("/admin/tickets/ticket/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def _records() -> dict[str, Any]:
    """One model call, one feedback row and one knowledge entry, with their admin URLs."""
    ticket = ticket_create(subject="Refund twice", body="I was charged twice.")
    call = ModelCall.objects.create(
        ticket=ticket, purpose="classify", backend="llamacpp", model_name="smollm2", outcome="invalid"
    )
    feedback = Feedback.objects.create(
        ticket=ticket, kind=Feedback.Kind.REJECTED, actor="ana", reason="wrong"
    )
    entry = KnowledgeEntry.objects.create(
        doc_id=ticket.pk, text="Refund the duplicate.", team="Billing", version=7
    )
    return {
        "tickets/modelcall": (call, "outcome", "ok", {"outcome__exact": "invalid", "q": ticket.reference}),
        "tickets/feedback": (feedback, "reason", "forged", {"kind__exact": "rejected", "q": "ana"}),
        "retrieval/knowledgeentry": (entry, "text", "forged", {"deleted__exact": "0", "q": "duplicate"}),
    }


@pytest.mark.parametrize("name", ["tickets/modelcall", "tickets/feedback", "retrieval/knowledgeentry"])
def test_records_are_listed_searchable_and_read_only(admin_client: Client, name: str) -> None:
    record, field, forged, query = _records()[name]
    listing = admin_client.get(f"/admin/{name}/", query)
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [record]  # the filter and the search find it
    assert admin_client.get(f"/admin/{name}/", {"q": "no such thing"}).context["cl"].result_count == 0
    view = admin_client.get(f"/admin/{name}/{record.pk}/change/")
    assert view.status_code == 200 and b'name="_save"' not in view.content  # view only, no Save
    assert admin_client.get(f"/admin/{name}/add/").status_code == 403
    assert admin_client.post(f"/admin/{name}/{record.pk}/change/", {field: forged}).status_code == 403
    assert admin_client.post(f"/admin/{name}/{record.pk}/delete/", {"post": "yes"}).status_code == 403
    record.refresh_from_db()
    assert getattr(record, field) != forged

"""The admin lists every domain model; the audit trail is read-only there."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

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

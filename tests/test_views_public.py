"""The requester's pages: the submission form, its confirmation, the status page, the rate limit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from kombu.exceptions import OperationalError as BrokerError

from tests.ui_factories import make_category, make_team, make_ticket
from tickets.models import AuditEvent, Channel, Ticket, TicketStatus
from tickets.pipeline import flow

pytestmark = pytest.mark.django_db

GOOD = {"subject": "Card declined", "body": "My card was declined twice.", "email": "ana@example.com"}


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    cache.clear()  # the rate limit counts in the (private, per-helper) Redis cache
    yield
    cache.clear()


def test_a_submission_is_saved_even_when_the_broker_fails_at_commit(
    client: Client, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broker_down(stage: str, ticket_id: int) -> None:
        raise BrokerError("Error 111 connecting to the broker. Connection refused.")

    monkeypatch.setattr(flow, "enqueue_stage", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/submit/", GOOD)
    ticket = Ticket.objects.get()
    assert response.status_code == 302
    assert response.url == f"/submit/sent/{ticket.status_token}/"  # type: ignore[attr-defined]
    assert ticket.status == TicketStatus.RECEIVED  # the sweeper starts it once the broker is back


def test_the_form_renders_with_its_fields_and_a_csrf_token(client: Client) -> None:
    page = client.get("/submit/")
    assert page.status_code == 200
    html = page.content.decode()
    for name in ("subject", "body", "email", "category_hint", "attachments", "csrfmiddlewaretoken"):
        assert f'name="{name}"' in html
    assert client.get("/").url == "/submit/"  # type: ignore[attr-defined]


def test_a_submission_saves_the_ticket_enqueues_it_and_confirms_with_the_reference(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("ingest")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post("/submit/", GOOD)
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert (ticket.subject, ticket.requester_email, ticket.channel) == (
        "Card declined",
        "ana@example.com",
        Channel.WEB,
    )
    assert response.url == f"/submit/sent/{ticket.status_token}/"  # type: ignore[attr-defined]
    # The pipeline's first stage was queued on the broker once the ticket was committed.
    assert len(callbacks) == 1
    assert broker.llen("ingest") == 1
    broker.delete("ingest")
    confirmation = client.get(response.url).content.decode()  # type: ignore[attr-defined]
    assert ticket.reference in confirmation
    assert f"/status/{ticket.status_token}/" in confirmation


def test_the_category_hint_is_kept_in_the_audit_trail(client: Client) -> None:
    billing = make_team("Billing")
    payments = make_category("Payments", billing)
    client.post("/submit/", {**GOOD, "category_hint": payments.pk})
    ticket = Ticket.objects.get()
    hint = AuditEvent.objects.get(ticket=ticket, action="ticket.category_hint")
    assert hint.details == {"category_id": payments.pk, "category": "Payments"}


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({}, "subject", "This field is required."),
        ({**GOOD, "body": ""}, "body", "This field is required."),
        ({**GOOD, "email": "not-an-address"}, "email", "Enter a valid email address."),
        ({**GOOD, "subject": "s" * 301}, "subject", "at most 300 characters"),
        ({**GOOD, "body": "b" * 50_001}, "body", "at most 50000 characters"),
        ({**GOOD, "body": "a\x00b"}, "body", "Null characters are not allowed."),
        ({**GOOD, "category_hint": "999999"}, "category_hint", "Select a valid choice"),
        ({**GOOD, "subject": "   "}, "subject", "This field is required."),
    ],
)
def test_bad_input_is_refused_with_the_error_next_to_the_field(
    client: Client, data: dict[str, str], field: str, message: str
) -> None:
    response = client.post("/submit/", data)
    assert response.status_code == 422
    html = response.content.decode()
    assert f'id="id_{field}_errors"' in html
    assert message in html
    assert not Ticket.objects.exists()


def test_a_post_without_the_csrf_token_is_refused() -> None:
    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/submit/", GOOD).status_code == 403
    assert not Ticket.objects.exists()


def test_submissions_are_rate_limited_per_client_address(client: Client, settings: Any) -> None:
    settings.SUBMIT_RATE_LIMIT_PER_HOUR = 3
    for _ in range(3):
        assert client.post("/submit/", GOOD, REMOTE_ADDR="203.0.113.7").status_code == 302
    refused = client.post("/submit/", GOOD, REMOTE_ADDR="203.0.113.7")
    assert refused.status_code == 429
    assert "3 tickets within the hour" in refused.content.decode()
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert Ticket.objects.count() == 3
    # Another client is not affected; a forged X-Forwarded-For is ignored without trusted proxies.
    assert client.post("/submit/", GOOD, REMOTE_ADDR="203.0.113.8").status_code == 302
    spoofed = client.post("/submit/", GOOD, REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert spoofed.status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_counts(client: Client, settings: Any) -> None:
    settings.SUBMIT_RATE_LIMIT_PER_HOUR = 1
    settings.TRUSTED_PROXY_HOPS = 1

    def post(forwarded_for: str) -> int:
        return client.post(
            "/submit/", GOOD, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded_for
        ).status_code

    assert (post("198.51.100.1"), post("198.51.100.2"), post("198.51.100.1")) == (302, 302, 429)


def test_the_status_page_polls_while_processing_and_names_the_team_once_routed(client: Client) -> None:
    ticket = make_ticket(status=TicketStatus.PROCESSING)
    url = f"/status/{ticket.status_token}/"
    page = client.get(url)
    assert page.status_code == 200 and ticket.reference in page.content.decode()
    partial = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and 'hx-trigger="every 2s"' in partial
    assert 'aria-current="step">Being read and classified' in partial

    billing = make_team("Billing")
    routed = make_ticket(team=billing, category=make_category("Payments", billing))
    partial = client.get(f"/status/{routed.status_token}/", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in partial  # finished: the page stops polling
    assert "<strong>Billing</strong>" in partial


def test_the_status_page_shows_the_resolution_and_unknown_tokens_get_404(client: Client) -> None:
    ticket = make_ticket(status=TicketStatus.RESOLVED)
    page = client.get(f"/status/{ticket.status_token}/").content.decode()
    assert "Done it." in page
    assert client.get("/status/not-a-token/").status_code == 404
    assert client.get("/submit/sent/not-a-token/").status_code == 404


def test_ticket_text_is_escaped_on_the_status_page(client: Client) -> None:
    ticket = make_ticket(subject="<script>alert(1)</script>", status=TicketStatus.RECEIVED)
    page = client.get(f"/status/{ticket.status_token}/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_attachment_names_and_sizes_are_kept_not_their_content(client: Client) -> None:
    files = [
        SimpleUploadedFile("screenshot.png", b"\x89PNG" + b"0" * 1000, content_type="image/png"),
        SimpleUploadedFile("<b>log.txt", b"error 42", content_type="text/plain"),
    ]
    assert client.post("/submit/", {**GOOD, "attachments": files}).status_code == 302
    event = AuditEvent.objects.get(action="ticket.attachments")
    assert event.details == {
        "attachments": [
            {"name": "screenshot.png", "bytes": 1004, "content_type": "image/png"},
            {"name": "<b>log.txt", "bytes": 8, "content_type": "text/plain"},
        ]
    }
    assert "error 42" not in str(event.details)


def test_too_many_or_too_large_attachments_are_refused(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    many = [SimpleUploadedFile(f"f{n}.txt", b"x") for n in range(6)]
    response = client.post("/submit/", {**GOOD, "attachments": many})
    assert response.status_code == 422 and "At most 5 files." in response.content.decode()
    monkeypatch.setattr("tickets.forms.MAX_ATTACHMENT_BYTES", 1024)
    big = SimpleUploadedFile("big.bin", b"x" * 2048)
    response = client.post("/submit/", {**GOOD, "attachments": [big]})
    assert response.status_code == 422 and "big.bin is larger than" in response.content.decode()
    assert not Ticket.objects.exists()

"""The REST API against PostgreSQL and Redis: every endpoint, permission and error."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests import test_api_fixtures as fixtures
from tests.test_api_fixtures import World, bearer, error_of, session
from tickets.models import (
    ApiToken,
    AuditEvent,
    Channel,
    Feedback,
    ModelCall,
    Suggestion,
    Ticket,
    WebhookDelivery,
    WebhookEndpoint,
)
from tickets.services.api_tokens import token_create
from tickets.services.webhooks import webhook_endpoint_create

pytestmark = pytest.mark.django_db
world = fixtures.world
fresh_cache = fixtures.fresh_cache

NEW_TICKET = {
    "subject": "Cannot log in",
    "body": "The login page says my password is wrong.",
    "external_id": "ZD-1",
}


# --- authentication ------------------------------------------------------------------------------


def test_without_credentials_the_answer_is_401_in_the_error_format(world: World) -> None:
    from rest_framework.test import APIClient

    response = APIClient().get("/api/v1/tickets")
    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer sb_nope", "Bearer ", "Bearer two words", "Bearer x" * 50])
def test_unknown_or_malformed_tokens_are_refused(world: World, header: str) -> None:
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/tickets")
    assert response.status_code == 401
    assert error_of(response)["code"] in {"authentication_failed", "not_authenticated"}


def test_a_token_is_stored_as_its_sha256_only_and_records_its_use(world: World) -> None:
    token, secret = token_create(name="zendesk", scopes=["read"])
    assert secret.startswith("sb_") and len(secret) > 40
    row = ApiToken.objects.get(pk=token.pk)
    assert row.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in json.dumps(list(ApiToken.objects.values()), default=str)
    assert row.last_used_at is None
    assert bearer(secret).get("/api/v1/tickets").status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


def test_a_revoked_token_stops_working_at_once_even_when_cached(world: World) -> None:
    admin = bearer(world.tokens["admin"])
    created = admin.post("/api/v1/tokens", {"name": "freshdesk", "scopes": ["read"]}, format="json")
    assert created.status_code == 201
    secret, token_id = created.json()["token"], created.json()["id"]
    assert bearer(secret).get("/api/v1/tickets").status_code == 200  # now cached
    listed = admin.get("/api/v1/tokens").json()
    assert all("token" not in item for item in listed)  # the secret is shown once
    assert admin.delete(f"/api/v1/tokens/{token_id}").json()["revoked_at"] is not None
    assert bearer(secret).get("/api/v1/tickets").status_code == 401


def test_session_users_act_as_themselves_and_need_csrf_for_changes(world: World) -> None:
    response = session(world.agent).get(f"/api/v1/tickets/{world.billing_ticket.pk}")
    assert response.status_code == 200
    refused = session(world.agent, csrf=True).post("/api/v1/tickets", NEW_TICKET, format="json")
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "permission_denied"


# --- scopes and roles ----------------------------------------------------------------------------


def test_scopes_limit_what_a_token_may_do(world: World) -> None:
    read, write = bearer(world.tokens["read"]), bearer(world.tokens["write"])
    assert read.get("/api/v1/tickets").status_code == 200
    refused = read.post("/api/v1/tickets", NEW_TICKET, format="json")
    assert refused.status_code == 403 and "write" in error_of(refused)["message"]
    assert (
        read.post(
            f"/api/v1/tickets/{world.billing_ticket.pk}/resolve", {"resolution": "x"}, format="json"
        ).status_code
        == 403
    )
    assert write.get("/api/v1/webhooks").status_code == 403
    assert write.get("/api/v1/imports").status_code == 403
    assert write.get("/api/v1/tokens").status_code == 403
    assert bearer(world.tokens["admin"]).get("/api/v1/webhooks").status_code == 200


def test_agents_see_their_teams_and_triage_only(world: World) -> None:
    agent = session(world.agent)
    ids = {item["id"] for item in agent.get("/api/v1/tickets").json()["results"]}
    assert world.billing_ticket.pk in ids and world.triage_ticket.pk in ids
    assert world.tech_ticket.pk not in ids
    assert agent.get(f"/api/v1/tickets/{world.tech_ticket.pk}").status_code == 404
    patched = agent.patch(f"/api/v1/tickets/{world.tech_ticket.pk}", {"priority": "high"}, format="json")
    assert patched.status_code == 404
    assert Ticket.objects.get(pk=world.tech_ticket.pk).priority == "normal"
    assert agent.get("/api/v1/webhooks").status_code == 403
    assert agent.get("/api/v1/analytics/costs").status_code == 403


def test_a_user_without_a_team_may_do_nothing(world: World) -> None:
    response = session(world.nobody).get("/api/v1/tickets")
    assert response.status_code == 403


def test_leads_and_admins_see_analytics(world: World) -> None:
    assert session(world.lead).get("/api/v1/analytics/accuracy").status_code == 200
    assert session(world.admin).get("/api/v1/analytics/costs").status_code == 200
    assert session(world.admin).get("/api/v1/webhooks").status_code == 200


# --- creating tickets ----------------------------------------------------------------------------


def test_creating_a_ticket_goes_through_the_service_and_starts_the_pipeline(
    world: World, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[int] = []
    monkeypatch.setattr("tickets.pipeline.flow.enqueue_ticket", started.append)
    with django_capture_on_commit_callbacks(execute=True):
        response = bearer(world.tokens["write"]).post("/api/v1/tickets", NEW_TICKET, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "received" and body["stage"] == "queued" and body["suggestion"] is None
    assert response["Location"] == f"/api/v1/tickets/{body['id']}"
    ticket = Ticket.objects.get(pk=body["id"])
    assert (ticket.channel, ticket.external_id, ticket.subject) == (Channel.API, "ZD-1", "Cannot log in")
    event = AuditEvent.objects.get(ticket=ticket, sequence=1)
    assert (event.action, event.actor_type, event.actor) == ("ticket.created", "api_client", "write-token")
    assert started == [ticket.pk]


def test_the_fast_answer_to_a_new_ticket_equals_the_serializers(world: World) -> None:
    from tickets.api.serializers.tickets import TicketSerializer, new_ticket_representation

    response = bearer(world.tokens["write"]).post("/api/v1/tickets", NEW_TICKET, format="json")
    ticket = Ticket.objects.get(pk=response.json()["id"])
    assert new_ticket_representation(ticket) == TicketSerializer(ticket, context={"suggestion": None}).data
    assert response.json()["id"] == ticket.pk and set(response.json()) == set(TicketSerializer().fields)


def test_a_retried_post_with_the_same_idempotency_key_makes_one_ticket(world: World) -> None:
    client = bearer(world.tokens["write"])
    first = client.post("/api/v1/tickets", NEW_TICKET, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post("/api/v1/tickets", NEW_TICKET, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] and again["Idempotent-Replayed"] == "true"
    assert Ticket.objects.filter(external_id="ZD-1").count() == 1
    other = client.post(
        "/api/v1/tickets", {**NEW_TICKET, "subject": "Changed"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert other.status_code == 422 and error_of(other)["code"] == "idempotency_key_reused"
    bad = client.post("/api/v1/tickets", NEW_TICKET, format="json", HTTP_IDEMPOTENCY_KEY="has space")
    assert bad.status_code == 400 and error_of(bad)["code"] == "invalid_idempotency_key"


def test_idempotency_keys_belong_to_one_client(world: World) -> None:
    body = {**NEW_TICKET, "external_id": ""}
    first = bearer(world.tokens["write"]).post(
        "/api/v1/tickets", body, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    second = bearer(world.tokens["admin"]).post(
        "/api/v1/tickets", body, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]


def test_a_taken_external_id_is_a_conflict(world: World) -> None:
    client = bearer(world.tokens["write"])
    assert client.post("/api/v1/tickets", NEW_TICKET, format="json").status_code == 201
    response = client.post("/api/v1/tickets", {**NEW_TICKET, "subject": "Other"}, format="json")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "duplicate_external_id" and "external_id" in error["fields"]
    assert Ticket.objects.filter(external_id="ZD-1").count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**NEW_TICKET, "status": "resolved"}, "status"),
        ({**NEW_TICKET, "subject": 12}, "subject"),
        ({**NEW_TICKET, "subject": True}, "subject"),
        ({"subject": "No body"}, "body"),
        ({**NEW_TICKET, "body": "   "}, "body"),
        ({**NEW_TICKET, "body": "x" * 50_001}, "body"),
        ({**NEW_TICKET, "subject": "nul \x00 here"}, "subject"),
        ({**NEW_TICKET, "requester_email": "not-an-address"}, "requester_email"),
        ({**NEW_TICKET, "requester_email": 5}, "requester_email"),
        ({**NEW_TICKET, "external_id": "x" * 201}, "external_id"),
        ({**NEW_TICKET, "external_id": None}, "external_id"),
    ],
)
def test_bad_tickets_are_refused_with_the_field_named(world: World, body: dict[str, Any], field: str) -> None:
    response = bearer(world.tokens["write"]).post("/api/v1/tickets", body, format="json")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "validation_error" and field in error["fields"], error
    assert not Ticket.objects.filter(channel=Channel.API).exists()


def test_bodies_that_are_not_a_json_object_are_refused(world: World) -> None:
    client = bearer(world.tokens["write"])
    malformed = client.generic("POST", "/api/v1/tickets", "{not json", content_type="application/json")
    assert malformed.status_code == 400 and error_of(malformed)["code"] == "malformed_request"
    listed = client.post("/api/v1/tickets", [NEW_TICKET], format="json")
    assert listed.status_code == 400 and error_of(listed)["code"] == "validation_error"
    form = client.post("/api/v1/tickets", NEW_TICKET)  # multipart
    assert form.status_code == 415 and error_of(form)["code"] == "unsupported_media_type"


def test_a_body_over_the_limit_is_413(world: World, settings: Any) -> None:
    settings.API_MAX_BODY_BYTES = 2048
    response = bearer(world.tokens["write"]).post(
        "/api/v1/tickets", {**NEW_TICKET, "body": "y" * 4000}, format="json"
    )
    assert response.status_code == 413 and error_of(response)["code"] == "payload_too_large"


# --- errors everywhere ---------------------------------------------------------------------------


def test_unknown_paths_methods_and_crashes_answer_in_the_error_format(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = bearer(world.tokens["admin"])
    missing = client.get("/api/v1/nothing/here")
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    newline = client.post("/api/v1/models/4%0A/retire", {}, format="json")  # found by the fuzz run
    assert newline.status_code == 404 and error_of(newline)["code"] == "not_found"
    wrong = client.delete("/api/v1/tickets")
    assert wrong.status_code == 405 and error_of(wrong)["code"] == "method_not_allowed"
    assert "POST" in wrong["Allow"]
    assert client.get("/api/v1/tickets/SB-NOPE").status_code == 404
    assert client.get("/api/v1/tickets/99999999999999999999999").status_code == 404

    def explode(**kwargs: Any) -> None:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr("tickets.api.views.tickets.api_ticket_create", explode)
    crashed = client.post("/api/v1/tickets", NEW_TICKET, format="json")
    assert crashed.status_code == 500 and error_of(crashed)["code"] == "server_error"
    assert b"internals" not in crashed.content and b"Traceback" not in crashed.content


def test_rate_limits_answer_429_with_retry_after(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    frozen = (time.time() // 60) * 60 + 30  # mid-window: the four requests share one minute
    monkeypatch.setattr("tickets.api.rate_window._clock", lambda: frozen)
    _token, secret = token_create(name="tight", scopes=["read"], rate_limit_per_minute=3)
    client = bearer(secret)
    codes = [client.get("/api/v1/tickets").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = client.get("/api/v1/tickets")
    assert error_of(limited)["code"] == "rate_limited"
    assert int(limited["Retry-After"]) == 30
    # another client is not affected
    assert bearer(world.tokens["read"]).get("/api/v1/tickets").status_code == 200


# --- reading tickets -----------------------------------------------------------------------------


def test_a_ticket_by_id_or_reference_with_its_decision_and_citations(world: World) -> None:
    client = bearer(world.tokens["read"])
    by_id = client.get(f"/api/v1/tickets/{world.billing_ticket.pk}").json()
    by_reference = client.get(f"/api/v1/tickets/{world.billing_ticket.reference.lower()}").json()
    assert by_id == by_reference
    assert by_id["status"] == "routed" and by_id["team"] == {"id": world.billing.pk, "name": "Billing"}
    assert by_id["classification"] == {
        "category": {"id": world.invoices.pk, "name": "Invoices"},
        "team": {"id": world.billing.pk, "name": "Billing"},
        "priority": "normal",
        "confidence": 0.82,
    }
    suggestion = by_id["suggestion"]
    assert (
        suggestion["resolution_text"] == "Refund the duplicate charge."
        and suggestion["decision"] == "pending"
    )
    assert suggestion["suggestion_confidence"] is None and suggestion["abstained"] is False  # uncalibrated
    Suggestion.objects.filter(ticket=world.billing_ticket).update(suggestion_confidence=0.425, abstained=True)
    calibrated = client.get(f"/api/v1/tickets/{world.billing_ticket.pk}").json()["suggestion"]
    assert calibrated["suggestion_confidence"] == 0.425 and calibrated["abstained"] is True
    Suggestion.objects.filter(ticket=world.billing_ticket).update(suggestion_confidence=None, abstained=False)
    assert suggestion["citations"] == [
        {
            "ticket_id": world.resolved_ticket.pk,
            "score": 0.91,
            "reference": world.resolved_ticket.reference,
            "subject": "Invoice shows the wrong VAT",
        }
    ]


def test_listing_filters_and_pages(world: World) -> None:
    client = bearer(world.tokens["read"])

    def ids(**params: Any) -> set[int]:
        response = client.get("/api/v1/tickets", params)
        assert response.status_code == 200, response.content
        return {item["id"] for item in response.json()["results"]}

    assert ids(status="needs_triage") == {world.triage_ticket.pk}
    assert ids(team=world.tech.pk) == {world.tech_ticket.pk}
    assert ids(category=world.invoices.pk, status="routed") == {world.billing_ticket.pk}
    assert ids(priority="normal") == {world.billing_ticket.pk, world.tech_ticket.pk, world.resolved_ticket.pk}
    assert ids(created_after=(timezone.now() + timedelta(hours=1)).isoformat()) == set()
    assert len(ids(created_before=(timezone.now() + timedelta(hours=1)).isoformat())) == 4
    Ticket.objects.filter(pk=world.tech_ticket.pk).update(external_id="JIRA-7")
    assert ids(external_id="JIRA-7") == {world.tech_ticket.pk}
    assert ids(status="routed", team=world.billing.pk) == {world.billing_ticket.pk}
    first_page = client.get("/api/v1/tickets", {"page_size": 3}).json()
    assert set(first_page) == {"next", "previous", "results"} and first_page["previous"] is None
    second_page = client.get(first_page["next"]).json()
    assert (len(second_page["results"]), second_page["next"]) == (1, None)
    first = first_page["results"]
    assert [item["created_at"] for item in first] == sorted(
        (item["created_at"] for item in first), reverse=True
    )
    for params in (
        {"status": "bogus"},
        {"team": "x"},
        {"created_after": "yesterday"},
        {"page_size": 0},
        {"page_size": 201},
        {"colour": "red"},
        {"page": 2},
        {"status": ""},
        {"cursor": "not-a-cursor"},
    ):
        response = client.get("/api/v1/tickets", params)
        assert response.status_code == 400 and error_of(response)["code"] == "validation_error", params


# --- changing tickets ----------------------------------------------------------------------------


def test_reassign_and_priority_through_patch(world: World) -> None:
    client = bearer(world.tokens["write"])
    url = f"/api/v1/tickets/{world.billing_ticket.pk}"
    response = client.patch(url, {"team_id": world.tech.pk, "reason": "it is an outage"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["team"]["name"] == "Tech"
    feedback = Feedback.objects.get(ticket=world.billing_ticket, kind=Feedback.Kind.REASSIGNED)
    assert feedback.routing_correct is False and feedback.actor == "write-token"
    assert client.patch(url, {"priority": "urgent"}, format="json").json()["priority"] == "urgent"
    actions = list(AuditEvent.objects.filter(ticket=world.billing_ticket).values_list("action", flat=True))
    assert "ticket.reassigned" in actions and "ticket.priority_changed" in actions
    for body, field in (
        ({"status": "resolved"}, "status"),
        ({}, "non_field_errors"),
        ({"team_id": "2"}, "team_id"),
        ({"priority": "whenever"}, "priority"),
        ({"team_id": 999_999}, "team_id"),
    ):
        refused = client.patch(url, body, format="json")
        assert refused.status_code == 400 and field in error_of(refused)["fields"], (body, refused.json())


def test_resolve_then_reopen_and_the_resolved_webhook(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    webhook_endpoint_create(name="hd", url="http://127.0.0.1:9/hook", events=["ticket.resolved"])
    client = bearer(world.tokens["write"])
    url = f"/api/v1/tickets/{world.billing_ticket.reference}"
    assert client.post(f"{url}/resolve", {"resolution": ""}, format="json").status_code == 400
    with django_capture_on_commit_callbacks(execute=False):
        resolved = client.post(f"{url}/resolve", {"resolution": "Refunded the duplicate."}, format="json")
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    delivery = WebhookDelivery.objects.get(ticket=world.billing_ticket, event="ticket.resolved")
    assert json.loads(delivery.body)["ticket"]["reference"] == world.billing_ticket.reference
    again = client.post(f"{url}/resolve", {"resolution": "Again"}, format="json")
    assert again.status_code == 409 and error_of(again)["code"] == "invalid_transition"
    reopened = client.post(f"{url}/reopen", {"reason": "customer wrote back"}, format="json")
    assert reopened.status_code == 200 and reopened.json()["status"] == "routed"
    assert client.post(f"{url}/reopen", {}, format="json").status_code == 409
    kinds = set(Feedback.objects.filter(ticket=world.billing_ticket).values_list("kind", flat=True))
    assert {"resolved", "reopened"} <= kinds


def test_feedback_on_the_suggestion(world: World) -> None:
    client = bearer(world.tokens["write"])
    url = f"/api/v1/tickets/{world.billing_ticket.pk}/feedback"
    assert client.post(url, {"action": "edit"}, format="json").status_code == 400
    assert client.post(url, {"action": "reject"}, format="json").status_code == 400
    assert client.post(url, {"action": "praise"}, format="json").status_code == 400
    missing = client.post(url, {"action": "accept", "suggestion_id": 987654}, format="json")
    assert missing.status_code == 404
    edited = client.post(url, {"action": "edit", "resolution_text": "Refund, and apologise."}, format="json")
    assert edited.status_code == 200 and edited.json()["suggestion"]["decision"] == "edited"
    assert Suggestion.objects.get(pk=world.suggestion.pk).resolution_text == "Refund, and apologise."
    accepted = client.post(url, {"action": "accept"}, format="json")
    assert accepted.status_code == 409  # an edited suggestion is no longer pending
    no_suggestion = client.post(
        f"/api/v1/tickets/{world.tech_ticket.pk}/feedback", {"action": "accept"}, format="json"
    )
    assert no_suggestion.status_code == 404


def test_reject_records_the_reason(world: World) -> None:
    response = bearer(world.tokens["write"]).post(
        f"/api/v1/tickets/{world.billing_ticket.pk}/feedback",
        {"action": "reject", "reason": "wrong customer"},
        format="json",
    )
    assert response.status_code == 200
    assert Feedback.objects.get(kind=Feedback.Kind.REJECTED).reason == "wrong customer"


def test_the_audit_trail_with_its_chain_checked(world: World) -> None:
    response = bearer(world.tokens["read"]).get(f"/api/v1/tickets/{world.resolved_ticket.pk}/audit")
    assert response.status_code == 200
    body = response.json()
    assert body["chain_valid"] is True and body["breaks"] == []
    assert [event["sequence"] for event in body["events"]] == list(range(1, len(body["events"]) + 1))
    assert body["events"][0]["action"] == "ticket.created"
    assert body["events"][-1]["action"] == "status.resolved"
    assert body["events"][1]["prev_hash"] == body["events"][0]["hash"]


# --- analytics -----------------------------------------------------------------------------------


def test_cost_and_accuracy_figures_as_the_analytics_page_computes_them(world: World) -> None:
    for ticket, cost in (
        (world.billing_ticket, "0.002"),
        (world.billing_ticket, "0.001"),
        (world.tech_ticket, "0.004"),
    ):
        ModelCall.objects.create(
            ticket=ticket, purpose="classify", backend="openai", model_name="m", prompt_tokens=100,
            completion_tokens=20, outcome="ok", cost_usd=cost, energy_wh=0.5,
        )  # fmt: skip
    Ticket.objects.filter(pk=world.billing_ticket.pk).update(stage="done", auto_routed=True)
    Ticket.objects.filter(pk=world.tech_ticket.pk).update(stage="done")
    Suggestion.objects.create(ticket=world.tech_ticket, confidence=0.4, decision="rejected")
    client = bearer(world.tokens["write"])
    accepted = client.post(
        f"/api/v1/tickets/{world.billing_ticket.pk}/feedback", {"action": "accept"}, format="json"
    )
    assert accepted.status_code == 200
    Feedback.objects.create(ticket=world.tech_ticket, kind="reassigned", routing_correct=False)
    costs = client.get("/api/v1/analytics/costs").json()
    assert costs["total"]["calls"] == 3 and costs["total"]["tickets"] == 2 and costs["total"]["tokens"] == 360
    assert costs["total"]["cost_usd"] == pytest.approx(0.007)
    assert costs["total"]["cost_per_ticket_usd"] == pytest.approx(0.0035)
    by_team = {row["key"]: row for row in costs["by_team"]}
    assert by_team["Billing"]["cost_usd"] == pytest.approx(0.003) and by_team["Tech"]["calls"] == 1
    accuracy = client.get("/api/v1/analytics/accuracy").json()
    total = accuracy["total"]
    assert (total["judged"], total["routing_correct"], total["routing_accuracy"]) == (2, 1, 0.5)
    assert (total["accepted"], total["rejected"], total["suggestions_decided"]) == (1, 1, 2)
    assert total["acceptance_rate"] == 0.5 and total["used_rate"] == 0.5
    assert (total["finished"], total["auto_routed"], total["auto_routing_rate"]) == (2, 1, 0.5)
    bands = {row["band"]: row for row in accuracy["suggestion_acceptance_by_band"]}
    assert list(bands) == ["low", "medium", "high", "very_high", "uncalibrated"]
    # The accepted suggestion has no calibrated confidence; the rejected one carries no Feedback row.
    assert (bands["uncalibrated"]["accepted"], bands["uncalibrated"]["used_rate"]) == (1, 1.0)
    assert sum(row["accepted"] + row["edited"] + row["rejected"] for row in bands.values()) == 1
    assert (bands["high"]["lower"], bands["high"]["upper"], bands["high"]["used_rate"]) == (0.7, 0.9, None)
    teams = {row["key"]: row for row in accuracy["by_team"]}
    assert teams["Billing"]["routing_accuracy"] == 1.0 and teams["Tech"]["routing_accuracy"] == 0.0
    lead_view = session(world.lead).get("/api/v1/analytics/costs").json()
    assert [row["key"] for row in lead_view["by_team"]] == ["Billing"]  # a lead sees her teams
    long_ago = (timezone.now() - timedelta(days=40)).isoformat()
    assert client.get("/api/v1/analytics/costs", {"until": long_ago}).json()["total"]["calls"] == 0
    backwards = client.get(
        "/api/v1/analytics/costs", {"since": timezone.now().isoformat(), "until": "2020-01-01T00:00:00Z"}
    )
    assert backwards.status_code == 400


# --- webhooks and tokens (admin) -----------------------------------------------------------------


def test_webhook_endpoints_are_managed_by_admins(world: World) -> None:
    client = bearer(world.tokens["admin"])
    created = client.post(
        "/api/v1/webhooks",
        {
            "name": "zendesk",
            "url": "https://hooks.example.com/sb",
            "events": ["ticket.routed", "ticket.resolved"],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_")
    assert "secret" not in client.get("/api/v1/webhooks").json()[0]
    duplicate = client.post(
        "/api/v1/webhooks",
        {"name": "zendesk", "url": "https://x.example.com", "events": ["ticket.routed"]},
        format="json",
    )
    assert duplicate.status_code == 409
    for body, field in (
        ({"name": "a", "url": "https://x.example.com", "events": ["ticket.exploded"]}, "events.0"),
        ({"name": "a", "url": "ftp://x", "events": ["ticket.routed"]}, "url"),
        ({"name": "a", "url": "https://x.example.com", "events": []}, "events"),
        (
            {"name": "a", "url": "https://x.example.com", "events": ["ticket.routed"], "secret": "mine"},
            "secret",
        ),
    ):
        refused = client.post("/api/v1/webhooks", body, format="json")
        assert refused.status_code == 400 and field in error_of(refused)["fields"], refused.json()
    url = f"/api/v1/webhooks/{endpoint['id']}"
    patched = client.patch(url, {"is_active": False, "events": ["suggestion.ready"]}, format="json")
    assert patched.json()["is_active"] is False and patched.json()["events"] == ["suggestion.ready"]
    assert client.get(f"{url}/deliveries").json() == {"next": None, "previous": None, "results": []}
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404


# --- the contract --------------------------------------------------------------------------------


def test_the_openapi_schema_is_valid_and_the_docs_are_served_locally(client: Any) -> None:
    from openapi_spec_validator import validate

    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate(schema)
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/tickets" in schema["paths"] and "/api/v1/tickets/{ticket}/feedback" in schema["paths"]
    assert set(schema["components"]["securitySchemes"]) == {"bearerAuth", "sessionCookie"}
    suggestion_schema = schema["components"]["schemas"]["Suggestion"]["properties"]
    assert suggestion_schema["suggestion_confidence"]["type"] == "number"
    assert suggestion_schema["suggestion_confidence"]["nullable"] is True
    assert suggestion_schema["abstained"]["type"] == "boolean"
    band_schema = schema["components"]["schemas"]["Accuracy"]["properties"]["suggestion_acceptance_by_band"]
    assert band_schema["type"] == "array"
    webhook_data = schema["components"]["schemas"]["SuggestionReadyWebhookData"]["properties"]
    assert webhook_data["suggestion_confidence"]["nullable"] is True
    assert webhook_data["suggestion_abstained"]["type"] == "boolean"
    for page in ("/api/v1/docs/", "/api/v1/redoc/"):
        html = client.get(page).content.decode()
        assert "cdn" not in html.lower() and "unpkg" not in html.lower()
        scripts = [part.split('"')[0] for part in html.split('src="')[1:]]
        # our static files, and Swagger UI's start-up script (drf-spectacular's split view)
        assert scripts and all(src.startswith(("/static/", f"{page}?script")) for src in scripts), scripts
        for src in scripts:
            assert client.get(src).status_code == 200, src


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_make_one_ticket() -> None:
    """Eight clients race with one Idempotency-Key (and eight with one external id) on PostgreSQL."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    _token, secret = token_create(name="racer", scopes=["read", "write"])
    barrier = threading.Barrier(8)

    def post(body: dict[str, Any], key: str | None) -> tuple[int, int | None]:
        try:
            client = bearer(secret)
            barrier.wait()
            extra: dict[str, Any] = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
            response = client.post("/api/v1/tickets", body, format="json", **extra)
            return response.status_code, response.json().get("id")
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        keyed = list(pool.map(lambda _: post({**NEW_TICKET, "external_id": "RACE-1"}, "same-key"), range(8)))
    assert sorted(code for code, _ in keyed) == [200] * 7 + [201]
    assert len({ticket_id for _, ticket_id in keyed}) == 1
    with ThreadPoolExecutor(8) as pool:
        unkeyed = list(pool.map(lambda _: post({**NEW_TICKET, "external_id": "RACE-2"}, None), range(8)))
    assert sorted(code for code, _ in unkeyed) == [201] + [409] * 7
    assert Ticket.objects.filter(external_id__startswith="RACE-").count() == 2


def test_admins_make_a_token_in_the_django_admin_and_see_its_secret_once(world: World) -> None:
    from django.test import Client

    client = Client()
    client.force_login(world.admin)
    response = client.post(
        "/admin/tickets/apitoken/add/",
        {"name": "jira", "scopes": ["read", "write"], "rate_limit_per_minute": ""},
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(message) for message in response.context["messages"]]
    secret = next(word for text in shown for word in text.split() if word.startswith("sb_"))
    token = ApiToken.objects.get(name="jira")
    assert token.scopes == ["read", "write"] and token.created_by == world.admin
    assert token.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert bearer(secret).get("/api/v1/tickets").status_code == 200
    page = client.get(f"/admin/tickets/apitoken/{token.pk}/change/").content.decode()
    assert secret not in page
    client.post(
        "/admin/tickets/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
        follow=True,
    )
    assert bearer(secret).get("/api/v1/tickets").status_code == 401
    hooks = client.post(
        "/admin/tickets/webhookendpoint/add/",
        {"name": "jira-hook", "url": "https://jira.example.com/hook", "events": ["ticket.routed"],
         "is_active": "on", "secret": "whsec_admin_chosen"},
        follow=True,
    )  # fmt: skip
    assert hooks.status_code == 200
    assert WebhookEndpoint.objects.get(name="jira-hook").events == ["ticket.routed"]


@pytest.mark.django_db(transaction=True)
def test_a_keyed_create_is_two_round_trips_and_a_clash_leaves_nothing_behind() -> None:
    """Outside a transaction (as in production) the ticket, its first event and its key are one
    statement after the ticket's id; a second key with a taken external id writes nothing."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tickets.api.errors import ApiError
    from tickets.models import AuditEvent, IdempotencyKey
    from tickets.services.api_submission import api_ticket_create

    data = {**NEW_TICKET, "external_id": "TRIPS-1"}
    with CaptureQueriesContext(connection) as queries:
        created = api_ticket_create(data=data, actor="token:1", client_key="token:1", idempotency_key="k-1")
    assert not created.replayed
    assert [q["sql"].split()[0] for q in queries] == ["SELECT", "WITH"], [q["sql"] for q in queries]
    ticket = created.ticket
    assert IdempotencyKey.objects.get(client="token:1", key="k-1").ticket_id == ticket.pk
    assert list(AuditEvent.objects.filter(ticket=ticket).values_list("action", flat=True)) == [
        "ticket.created"
    ]
    again = api_ticket_create(data=data, actor="token:1", client_key="token:1", idempotency_key="k-1")
    assert again.replayed and again.ticket.pk == ticket.pk
    with pytest.raises(ApiError) as taken:
        api_ticket_create(data=data, actor="token:1", client_key="token:1", idempotency_key="k-2")
    assert taken.value.status_code == 409 and taken.value.error_code == "duplicate_external_id"
    assert not IdempotencyKey.objects.filter(key="k-2").exists()
    assert Ticket.objects.filter(external_id="TRIPS-1").count() == 1
    assert AuditEvent.objects.filter(action="ticket.created").count() == 1

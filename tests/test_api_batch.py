"""POST /api/v1/tickets/batch against PostgreSQL and Redis: per-item results, idempotency, partial
failure, limits, authentication and rate limits, and the pipeline enqueued one message per batch."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings

from tests import test_api_fixtures as fixtures
from tests.test_api_fixtures import World, bearer, error_of
from tickets.audit import verify_chain
from tickets.models import AuditEvent, Channel, IdempotencyKey, PipelineStage, Ticket, TicketStatus
from tickets.services.api_tokens import token_create

pytestmark = pytest.mark.django_db
world = fixtures.world
fresh_cache = fixtures.fresh_cache
URL = "/api/v1/tickets/batch"


def item(number: int, **fields: Any) -> dict[str, Any]:
    return {
        "subject": f"Printer {number} jams",
        "body": f"Printer {number} jams on every second page.",
        "external_id": f"ZD-{number}",
        **fields,
    }


def post(client: Any, items: Any) -> Any:
    return client.post(URL, {"items": items}, format="json")


def test_a_batch_creates_every_ticket_with_its_audit_trail(world: World) -> None:
    response = post(bearer(world.tokens["write"]), [item(n) for n in range(5)])
    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["replayed"], body["rejected"]) == (5, 0, 0)
    assert [r["index"] for r in body["results"]] == list(range(5))
    assert all(r["result"] == "created" and r["error"] is None for r in body["results"])
    tickets = Ticket.objects.filter(external_id__startswith="ZD-").order_by("external_id")
    assert [t.external_id for t in tickets] == [f"ZD-{n}" for n in range(5)]
    for result, ticket in zip(body["results"], tickets, strict=True):
        assert result["ticket"] == {
            "id": ticket.pk,
            "reference": ticket.reference,
            "external_id": ticket.external_id,
            "status": "received",
        }
        assert (ticket.channel, ticket.status, ticket.stage) == (
            Channel.API,
            TicketStatus.RECEIVED,
            PipelineStage.QUEUED,
        )
        [event] = AuditEvent.objects.filter(ticket=ticket)
        assert event.action == "ticket.created" and event.actor_type == "api_client"
        assert event.details["batch"] is True and event.details["channel"] == Channel.API
        assert event.details["external_id"] == ticket.external_id and event.details["body_chars"] == len(
            ticket.body
        )
        assert list(verify_chain([event])) == []


def test_the_same_batch_twice_is_replayed_not_duplicated(world: World) -> None:
    client = bearer(world.tokens["write"])
    items = [item(1), item(2, external_id="", idempotency_key="key-2")]
    first = post(client, items).json()
    second = post(client, items).json()
    assert (second["created"], second["replayed"], second["rejected"]) == (0, 2, 0)
    assert [r["ticket"]["id"] for r in first["results"]] == [r["ticket"]["id"] for r in second["results"]]
    assert Ticket.objects.filter(subject__in=["Printer 1 jams", "Printer 2 jams"]).count() == 2


def test_overlapping_batches_create_only_the_new_items(world: World) -> None:
    client = bearer(world.tokens["write"])
    post(client, [item(1), item(2)])
    body = post(client, [item(2), item(3)]).json()
    assert [r["result"] for r in body["results"]] == ["replayed", "created"]
    assert Ticket.objects.filter(external_id__in=["ZD-1", "ZD-2", "ZD-3"]).count() == 3


def test_a_single_create_and_a_batch_share_the_external_id(world: World) -> None:
    client = bearer(world.tokens["write"])
    single = client.post("/api/v1/tickets", item(7), format="json")
    assert single.status_code == 201
    [result] = post(client, [item(7)]).json()["results"]
    assert result["result"] == "replayed" and result["ticket"]["id"] == single.json()["id"]


def test_some_items_invalid_the_others_are_created_with_reasons_given(world: World) -> None:
    client = bearer(world.tokens["write"])
    post(client, [item(9)])
    items = [
        item(1),
        item(2, subject="   "),  # blank once stripped
        item(3, priority="high"),  # unknown field
        item(4, external_id="", idempotency_key=""),  # no way to deduplicate a retry
        item(5, requester_email="not-an-email"),
        item(9, body="Another text for an external id already used."),
        item(6, external_id="ZD-1"),  # twice in this batch
        item(8, body="x\x00y"),
        item(10, idempotency_key="has space"),
        item(11),
    ]
    response = post(client, items)
    assert response.status_code == 200
    body = response.json()
    results = body["results"]
    assert (body["created"], body["rejected"]) == (2, 8)
    assert [r["index"] for r in results] == list(range(10))
    assert [results[0]["result"], results[9]["result"]] == ["created", "created"]
    expected = {
        1: ("validation_error", "subject"),
        2: ("validation_error", "priority"),
        3: ("idempotency_required", "external_id"),
        4: ("validation_error", "requester_email"),
        5: ("duplicate_external_id", "external_id"),
        7: ("validation_error", "body"),
        8: ("invalid_idempotency_key", "idempotency_key"),
    }
    for index, (code, field) in expected.items():
        assert results[index]["result"] == "rejected" and results[index]["ticket"] is None
        assert results[index]["error"]["code"] == code, results[index]
        assert field in results[index]["error"]["fields"] and results[index]["error"]["message"]
    assert results[6]["error"]["code"] == "duplicate_in_batch" and "Item 0" in results[6]["error"]["message"]
    assert set(Ticket.objects.filter(channel=Channel.API).values_list("external_id", flat=True)) == {
        "ZD-1",
        "ZD-9",
        "ZD-11",
    }


def test_a_lone_surrogate_is_rejected_with_its_code_point(world: World) -> None:
    # json.dumps writes the lone surrogate as the escape \\ud800, which the server's parser turns back
    # into one; the body is checked with one regular expression, not character by character.
    items = [item(1), item(2, body="Printer jams " * 100 + "\ud800 on page 2")]
    response = bearer(world.tokens["write"]).post(
        URL, data=json.dumps({"items": items}), content_type="application/json"
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["result"] == "created"
    assert results[1]["result"] == "rejected"
    assert results[1]["error"]["fields"]["body"] == ["Surrogate characters are not allowed: U+D800."]


def test_an_idempotency_key_reused_with_another_item_is_rejected(world: World) -> None:
    client = bearer(world.tokens["write"])
    post(client, [item(1, external_id="", idempotency_key="k1")])
    [result] = post(client, [item(2, external_id="", idempotency_key="k1")]).json()["results"]
    assert result["result"] == "rejected" and result["error"]["code"] == "idempotency_key_reused"
    assert IdempotencyKey.objects.filter(key="k1").count() == 1


@pytest.mark.parametrize(
    ("items", "field"),
    [([], "items"), ("not a list", "items"), ([item(1), "not an object"], "items.1")],
)
def test_a_malformed_batch_is_refused_as_a_whole(world: World, items: Any, field: str) -> None:
    response = post(bearer(world.tokens["write"]), items)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_error" and field in error["fields"]
    assert not Ticket.objects.filter(channel=Channel.API).exists()


def test_too_many_items_is_400_with_the_reason(world: World, settings: Any) -> None:
    settings.API_BATCH_MAX_ITEMS = 3
    response = post(bearer(world.tokens["write"]), [item(n) for n in range(4)])
    assert response.status_code == 400
    assert "At most 3 items per batch" in error_of(response)["fields"]["items"][0]
    assert not Ticket.objects.filter(channel=Channel.API).exists()
    assert post(bearer(world.tokens["write"]), [item(n) for n in range(3)]).json()["created"] == 3


def test_an_oversized_body_is_413(world: World, settings: Any) -> None:
    settings.API_BATCH_MAX_BODY_BYTES = 2048
    response = post(bearer(world.tokens["write"]), [item(n, body="x" * 500) for n in range(5)])
    assert response.status_code == 413 and error_of(response)["code"] == "payload_too_large"
    assert not Ticket.objects.filter(channel=Channel.API).exists()


def test_authentication_scope_and_rate_limits_apply(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from rest_framework.test import APIClient

    assert post(APIClient(), [item(1)]).status_code == 401
    assert post(bearer(world.tokens["read"]), [item(1)]).status_code == 403
    frozen = 1_000_000 * 60 + 30
    monkeypatch.setattr("tickets.api.rate_window._clock", lambda: frozen)
    _token, secret = token_create(name="tight", scopes=["read", "write"], rate_limit_per_minute=2)
    client = bearer(secret)
    codes = [post(client, [item(n)]).status_code for n in range(3)]
    assert codes == [200, 200, 429]
    assert Ticket.objects.filter(channel=Channel.API).count() == 2


def test_the_pipeline_gets_one_message_per_batch_of_tickets(
    world: World, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """The real broker (Redis): the new tickets go to the first stage's queue in PIPELINE_BATCH_SIZE
    groups, each message naming its tickets."""
    settings.PIPELINE_BATCH_SIZE = 4
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    broker.delete("ingest")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            body = post(bearer(world.tokens["write"]), [item(n) for n in range(10)]).json()
        ids = [r["ticket"]["id"] for r in body["results"]]
        messages = [json.loads(raw) for raw in broker.lrange("ingest", 0, -1)]
    finally:
        broker.delete("ingest")
    assert len(messages) == 3
    batches = []
    for message in reversed(messages):  # kombu pushes on the left
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        batches.append([args[0], *(args[1] if len(args) > 1 else [])])
    assert batches == [ids[0:4], ids[4:8], ids[8:10]]


@pytest.mark.django_db(transaction=True)
def test_identical_batches_posted_at_once_make_each_ticket_once() -> None:
    """Four clients race with one batch (keys and external ids) on PostgreSQL: every ticket is made
    once, every answer names the same tickets, and the items that lost the race are replays."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    _token, secret = token_create(name="batch-racer", scopes=["read", "write"])
    items = [item(n, idempotency_key=f"race-{n}") for n in range(20)]
    barrier = threading.Barrier(4)

    def race(_: int) -> dict[str, Any]:
        try:
            client = bearer(secret)
            barrier.wait()
            response = post(client, items)
            assert response.status_code == 200, response.content
            return dict(response.json())
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(race, range(4)))
    assert sum(a["created"] for a in answers) == 20
    assert all(a["rejected"] == 0 and a["created"] + a["replayed"] == 20 for a in answers)
    ids = {tuple(r["ticket"]["id"] for r in a["results"]) for a in answers}
    assert len(ids) == 1
    assert Ticket.objects.filter(external_id__startswith="ZD-").count() == 20
    assert IdempotencyKey.objects.filter(key__startswith="race-").count() == 20

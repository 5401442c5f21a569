"""Cursor pages on the API's list endpoints (PostgreSQL): rows arriving between two page fetches
are neither skipped nor repeated, the filters keep their names, and a bad cursor is a 400."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests import test_api_fixtures as fixtures
from tests.test_api_fixtures import World, bearer, error_of
from tickets.models import ImportJob, Ticket, WebhookDelivery, WebhookEvent
from tickets.services.lifecycle import ticket_create
from tickets.services.webhooks import webhook_endpoint_create

pytestmark = pytest.mark.django_db
world = fixtures.world
fresh_cache = fixtures.fresh_cache


def walk(client: Any, url: str, params: dict[str, Any], between_pages: Any = None) -> list[int]:
    """Every id, following ``next`` to the end; ``between_pages()`` runs after each page."""
    ids: list[int] = []
    response = client.get(url, params)
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        ids += [item["id"] for item in body["results"]]
        if body["next"] is None:
            return ids
        if between_pages is not None:
            between_pages()
        response = client.get(body["next"])


def test_tickets_created_between_page_fetches_are_neither_skipped_nor_repeated(world: World) -> None:
    client = bearer(world.tokens["read"])
    for number in range(9):
        ticket_create(subject=f"Older ticket {number}", body="Something is broken.")
    before = list(Ticket.objects.order_by("-created_at", "-id").values_list("id", flat=True))
    arrived: list[int] = []

    def new_tickets_arrive() -> None:
        for _ in range(2):
            arrived.append(ticket_create(subject="A newer ticket", body="Me too.").pk)

    seen = walk(client, "/api/v1/tickets", {"page_size": 3}, between_pages=new_tickets_arrive)
    assert len(arrived) >= 6
    assert seen == before  # in order, each once; with offsets the arrivals shift rows into repeats
    # The arrivals are at the head of a fresh walk.
    fresh = walk(client, "/api/v1/tickets", {"page_size": 50})
    assert fresh == sorted(arrived, reverse=True) + before


def test_rows_sharing_a_creation_time_are_each_listed_once(world: World) -> None:
    client = bearer(world.tokens["read"])
    same = [ticket_create(subject=f"Imported {number}", body="From history.").pk for number in range(7)]
    Ticket.objects.filter(pk__in=same).update(created_at=timezone.now() - timedelta(days=3))

    def another_arrives() -> None:
        ticket_create(subject="New", body="Arrived while paging.")

    before = list(Ticket.objects.order_by("-created_at", "-id").values_list("id", flat=True))
    seen = walk(client, "/api/v1/tickets", {"page_size": 2}, between_pages=another_arrives)
    assert seen == before
    assert [pk for pk in seen if pk in same] == sorted(same, reverse=True)  # the id breaks the tie


def test_previous_walks_back_over_the_same_rows(world: World) -> None:
    client = bearer(world.tokens["read"])
    for number in range(5):
        ticket_create(subject=f"T{number}", body="b")
    first = client.get("/api/v1/tickets", {"page_size": 4}).json()
    second = client.get(first["next"]).json()
    ticket_create(subject="Arrives meanwhile", body="b")
    back = client.get(second["previous"]).json()
    assert [item["id"] for item in back["results"]] == [item["id"] for item in first["results"]]


def test_filters_apply_with_the_cursor(world: World) -> None:
    client = bearer(world.tokens["read"])
    for number in range(5):
        ticket = ticket_create(subject=f"Tech {number}", body="b")
        Ticket.objects.filter(pk=ticket.pk).update(team=world.tech, priority="urgent")
    urgent = set(Ticket.objects.filter(priority="urgent").values_list("id", flat=True))
    seen = walk(client, "/api/v1/tickets", {"priority": "urgent", "team": world.tech.pk, "page_size": 2})
    assert set(seen) == urgent and len(seen) == 5
    first = client.get("/api/v1/tickets", {"priority": "urgent", "page_size": "2"}).json()
    assert "priority=urgent" in first["next"]  # the next link keeps the filters


def test_time_filters_take_any_offset_and_refuse_times_off_the_calendar(world: World) -> None:
    """PostgreSQL refuses offsets past +-15:59: the filter turns times into UTC first (the fuzz run
    found a 500 with created_before=3151-02-16T07:18:52-21:16)."""
    client = bearer(world.tokens["read"])
    ticket_create(subject="Now", body="b")
    far = client.get("/api/v1/tickets", {"created_before": "3151-02-16T07:18:52-21:16"})
    assert far.status_code == 200 and len(far.json()["results"]) == Ticket.objects.count()
    past = client.get("/api/v1/tickets", {"created_after": "3151-02-16T07:18:52+21:16"})
    assert past.status_code == 200 and past.json()["results"] == []
    off = client.get("/api/v1/tickets", {"created_before": "9999-12-31T23:00:00-21:00"})
    assert off.status_code == 400 and "created_before" in off.json()["error"]["fields"]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        base64.b64encode(b"p=not-a-date").decode(),
        base64.b64encode(b"o=-1").decode(),
        base64.b64encode(b"p=2026-01-01T00:00:00\x00").decode(),
        base64.b64encode(b"r=x").decode(),
        base64.b64encode(b"p=2026-01-01T00:00:00").decode(),  # we only write aware times
    ],
)
def test_an_invalid_cursor_is_a_400(world: World, cursor: str) -> None:
    response = bearer(world.tokens["read"]).get("/api/v1/tickets", {"cursor": cursor})
    assert response.status_code == 400, response.content
    assert error_of(response)["fields"] == {"cursor": ["Invalid cursor."]}


def test_the_old_page_parameter_is_refused_with_a_hint(world: World) -> None:
    response = bearer(world.tokens["read"]).get("/api/v1/tickets", {"page": 2})
    assert response.status_code == 400
    assert "cursor" in error_of(response)["fields"]["page"][0]


def test_imports_and_deliveries_page_with_a_cursor_and_filter_by_status(world: World) -> None:
    client = bearer(world.tokens["admin"])
    jobs = [
        ImportJob.objects.create(file_path="/x", file_name=f"h{n}.csv", file_format="csv", status=status)
        for n, status in enumerate(["queued", "succeeded", "failed", "succeeded", "queued"])
    ]
    seen = walk(
        client,
        "/api/v1/imports",
        {"page_size": 2},
        between_pages=lambda: ImportJob.objects.create(file_path="/x", file_name="n", file_format="csv"),
    )
    assert seen == [job.pk for job in reversed(jobs)]
    succeeded = walk(client, "/api/v1/imports", {"status": "succeeded"})
    assert succeeded == [jobs[3].pk, jobs[1].pk]

    endpoint = webhook_endpoint_create(name="hd", url="http://127.0.0.1:9/hook", events=["ticket.routed"])

    def delivery(status: str = "pending") -> WebhookDelivery:
        return WebhookDelivery.objects.create(
            uuid=uuid.uuid4(),
            endpoint=endpoint,
            event=WebhookEvent.TICKET_ROUTED,
            ticket=ticket_create(subject="s", body="b"),
            body=json.dumps({}),
            status=status,
        )

    deliveries = [delivery(status) for status in ["pending", "failed", "succeeded", "failed"]]
    url = f"/api/v1/webhooks/{endpoint.pk}/deliveries"
    assert walk(client, url, {"page_size": 1}, between_pages=delivery) == [
        item.pk for item in reversed(deliveries)
    ]
    assert walk(client, url, {"status": "failed"}) == [deliveries[3].pk, deliveries[1].pk]
    refused = client.get(url, {"status": "lost"})
    assert refused.status_code == 400 and "status" in error_of(refused)["fields"]


def test_the_schema_documents_the_cursor_page_size_and_filters(client: Any) -> None:
    schema = json.loads(client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content)
    expected = {
        "/api/v1/tickets": {
            "cursor",
            "page_size",
            "status",
            "stage",
            "team",
            "category",
            "priority",
            "channel",
            "external_id",
            "created_after",
            "created_before",
        },
        "/api/v1/imports": {"cursor", "page_size", "status"},
        "/api/v1/webhooks/{id}/deliveries": {"cursor", "page_size", "status", "id"},
    }
    for path, names in expected.items():
        operation = schema["paths"][path]["get"]
        assert {parameter["name"] for parameter in operation["parameters"]} == names, path
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        component = schema["components"]["schemas"][ok["$ref"].rsplit("/", 1)[1]]
        assert set(component["properties"]) == {"next", "previous", "results"}, path
    tickets = {p["name"]: p for p in schema["paths"]["/api/v1/tickets"]["get"]["parameters"]}
    assert "needs_triage" in tickets["status"]["schema"]["enum"]
    assert tickets["created_after"]["schema"]["format"] == "date-time"
    assert tickets["team"]["schema"]["type"] == "integer"
    assert tickets["page_size"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 200}

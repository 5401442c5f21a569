"""The API's asynchronous parts: similar-ticket search in a worker, bulk history imports as jobs."""

from __future__ import annotations

import io
from typing import Any

import pytest

from tests import test_api_fixtures as fixtures
from tests.test_api_fixtures import World, bearer, error_of, session
from tickets.models import Channel, ImportJob, Ticket
from tickets.services.knowledge import knowledge_item
from tickets.services.lifecycle import ticket_create, ticket_resolve

pytestmark = pytest.mark.django_db
world = fixtures.world
fresh_cache = fixtures.fresh_cache

HISTORY_CSV = (
    "id,subject,body,category,resolution\n"
    "H-1,Refund please,I was charged twice for my plan,Invoices,Refunded the second charge\n"
    "H-2,VPN drops,The VPN disconnects every hour,Network,Updated the VPN client\n"
    'H-3,"Password, again",I forgot my password,Accounts,Sent a reset link\n'
    "H-4,,,Accounts,Nothing\n"
)


def upload(name: str, content: str, **fields: str) -> dict[str, Any]:
    file = io.BytesIO(content.encode())
    file.name = name
    return {"file": file, **fields}


# --- search --------------------------------------------------------------------------------------


def test_search_without_a_worker_answers_503_in_time(world: World, settings: Any) -> None:
    settings.API_SEARCH_TIMEOUT_SECONDS = 0.5
    response = bearer(world.tokens["read"]).post("/api/v1/search", {"text": "refund"}, format="json")
    assert response.status_code == 503 and error_of(response)["code"] == "search_unavailable"


def test_search_input_is_checked(world: World) -> None:
    client = bearer(world.tokens["read"])
    for body, field in (
        ({}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "x", "k": 0}, "k"),
        ({"text": "x", "k": "5"}, "k"),
        ({"text": "x", "k": 51}, "k"),
        ({"text": "x", "filters": {}}, "filters"),
    ):
        response = client.post("/api/v1/search", body, format="json")
        assert response.status_code == 400 and field in error_of(response)["fields"], body


@pytest.mark.slow
def test_search_finds_the_similar_resolved_ticket(
    world: World, knowledge_dir: Any, eager_celery: None
) -> None:
    from retrieval.services import kb_upsert

    texts = {
        "Charged twice for my subscription": "Refunded the duplicate payment.",
        "VPN keeps disconnecting": "Reinstalled the VPN client.",
        "Cannot reset my password": "Sent a password reset link.",
    }
    resolved = []
    for subject, resolution in texts.items():
        ticket = ticket_create(subject=subject, body=subject + ", please help.", channel="web")
        Ticket.objects.filter(pk=ticket.pk).update(
            status="routed", team=world.billing, category=world.invoices
        )
        resolved.append(ticket_resolve(ticket_id=ticket.pk, resolution=resolution))
    kb_upsert(items=[knowledge_item(Ticket.objects.get(pk=ticket.pk)) for ticket in resolved])
    response = bearer(world.tokens["read"]).post(
        "/api/v1/search", {"text": "I was billed two times this month", "k": 2}, format="json"
    )
    assert response.status_code == 200, response.content
    hits = response.json()["results"]
    assert len(hits) == 2
    assert hits[0]["ticket_id"] == resolved[0].pk and hits[0]["reference"] == resolved[0].reference
    assert hits[0]["resolution"] == "Refunded the duplicate payment." and hits[0]["team"] == "Billing"
    assert hits[0]["score"] >= hits[1]["score"]


# --- imports -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_import_job_runs_and_reports_progress(
    world: World, knowledge_dir: Any, eager_celery: None, django_capture_on_commit_callbacks: Any
) -> None:
    client = bearer(world.tokens["admin"])
    columns = {"subject_column": "subject", "body_column": "body", "category_column": "category"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/imports",
            upload("history.csv", HISTORY_CSV, resolution_column="resolution", id_column="id", **columns),
            format="multipart",
        )
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    assert response["Location"] == f"/api/v1/imports/{job_id}"
    job = client.get(f"/api/v1/imports/{job_id}").json()
    assert job["status"] == "succeeded", job
    assert (job["total_rows"], job["rows_processed"], job["imported"], job["skipped"]) == (4, 4, 3, 1)
    assert job["progress"] == 1.0 and job["skipped_examples"][0]["line"] == 5
    imported = Ticket.objects.filter(channel=Channel.IMPORT)
    assert imported.count() == 3 and set(imported.values_list("status", flat=True)) == {"resolved"}
    assert client.get("/api/v1/imports").json()["results"][0]["id"] == job_id
    # the same file again adds nothing
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(
            "/api/v1/imports",
            upload("history.csv", HISTORY_CSV, resolution_column="resolution", id_column="id", **columns),
            format="multipart",
        )
    assert client.get(f"/api/v1/imports/{again.json()['id']}").json()["already_present"] == 3
    assert imported.count() == 3


def test_an_import_naming_a_missing_column_fails_with_the_reason(
    world: World, eager_celery: None, django_capture_on_commit_callbacks: Any
) -> None:
    client = bearer(world.tokens["admin"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/imports", upload("h.jsonl", '{"a": 1}\n', text_column="text"), format="multipart"
        )
    assert response.status_code == 202
    job = ImportJob.objects.get(pk=response.json()["id"])
    assert job.status == "succeeded" and job.skipped == 1 and job.imported == 0


def test_bad_imports_are_refused(world: World, settings: Any) -> None:
    client = bearer(world.tokens["admin"])
    assert client.post("/api/v1/imports", {}, format="multipart").status_code == 400
    unknown = client.post("/api/v1/imports", upload("h.txt", "x", text_column="t"), format="multipart")
    assert unknown.status_code == 400 and "format" in error_of(unknown)["fields"]
    no_text = client.post("/api/v1/imports", upload("h.csv", "a\n1\n"), format="multipart")
    assert no_text.status_code == 400
    blank = client.post(
        "/api/v1/imports", upload("h.csv", "a\n", text_column="", subject_column=""), format="multipart"
    )
    assert blank.status_code == 400 and "text_column" in error_of(blank)["fields"]
    extra = client.post(
        "/api/v1/imports", upload("h.csv", "a\n", text_column="a", colour="red"), format="multipart"
    )
    assert extra.status_code == 400 and "colour" in error_of(extra)["fields"]
    as_json = client.post("/api/v1/imports", {"file": "x"}, format="json")
    assert as_json.status_code == 415
    assert (
        bearer(world.tokens["write"])
        .post("/api/v1/imports", upload("h.csv", "a\n", text_column="a"))
        .status_code
        == 403
    )
    assert session(world.agent).get("/api/v1/imports/1").status_code == 403
    assert client.get("/api/v1/imports/999999").status_code == 404
    settings.API_MAX_IMPORT_BYTES = 1024
    big = client.post(
        "/api/v1/imports", upload("h.csv", "a\n" + "x" * 5000, text_column="a"), format="multipart"
    )
    assert big.status_code == 413 and error_of(big)["code"] == "payload_too_large"
    assert not ImportJob.objects.exists()

"""Signed webhooks: emitted once per event, delivered by a real worker to a real local HTTP receiver
that checks every signature, retried with backoff when the receiver fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection, transaction

from tests.conftest import ROOT
from tickets.models import Ticket, WebhookDelivery, WebhookEndpoint
from tickets.services.lifecycle import ticket_create
from tickets.services.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    EVENTS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    backoff_seconds,
    webhook_attempt,
    webhook_emit,
    webhook_endpoint_create,
    webhook_signature,
    webhook_verify,
)


@dataclass
class Receiver:
    """A helpdesk's webhook endpoint: verifies each request, fails the first ``fail_first`` ones."""

    secret: str = ""
    fail_first: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = dict(self.headers.items())
            with state.lock:
                valid = webhook_verify(secret=state.secret, headers=headers, body=body)
                record = {"headers": headers, "body": json.loads(body), "valid": valid}
                state.requests.append(record)
                failing = len(state.requests) <= state.fail_first
                if valid and not failing:
                    state.accepted.append(record)
            code = 401 if not valid else 503 if failing else 200
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"busy" if failing else b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/switchboard"
    yield state
    server.shutdown()
    server.server_close()


def new_ticket(external_id: str = "") -> Ticket:
    return ticket_create(
        subject="Printer on fire", body="It is actually on fire.", channel="api", external_id=external_id
    )


# --- signing -------------------------------------------------------------------------------------


def test_signatures_verify_and_tampering_is_caught() -> None:
    body = b'{"event":"ticket.routed"}'
    now = int(time.time())
    headers = {
        SIGNATURE_HEADER: webhook_signature(secret="whsec_x", timestamp=now, body=body),
        TIMESTAMP_HEADER: str(now),
    }
    assert headers[SIGNATURE_HEADER].startswith("sha256=") and len(headers[SIGNATURE_HEADER]) == 71
    assert webhook_verify(secret="whsec_x", headers=headers, body=body)
    assert not webhook_verify(secret="whsec_y", headers=headers, body=body)
    assert not webhook_verify(secret="whsec_x", headers=headers, body=body + b" ")
    assert not webhook_verify(
        secret="whsec_x", headers={**headers, TIMESTAMP_HEADER: str(now + 1)}, body=body
    )
    old = now - 3600
    stale = {
        SIGNATURE_HEADER: webhook_signature(secret="whsec_x", timestamp=old, body=body),
        TIMESTAMP_HEADER: str(old),
    }
    assert not webhook_verify(secret="whsec_x", headers=stale, body=body)


def test_backoff_doubles_with_jitter_and_a_ceiling(settings: Any) -> None:
    settings.WEBHOOK_RETRY_BASE_SECONDS, settings.WEBHOOK_RETRY_MAX_SECONDS = 5, 60
    for attempt, ceiling in ((1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (9, 60)):
        delays = {backoff_seconds(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1  # jittered


# --- emitting ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_one_delivery_per_subscribed_endpoint_and_none_twice(django_capture_on_commit_callbacks: Any) -> None:
    routed = webhook_endpoint_create(name="a", url="https://a.example.com/h", events=["ticket.routed"])
    webhook_endpoint_create(name="b", url="https://b.example.com/h", events=list(EVENTS))
    webhook_endpoint_create(name="off", url="https://c.example.com/h", events=list(EVENTS), is_active=False)
    ticket = new_ticket("HD-1")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert webhook_emit(event="ticket.routed", ticket_id=ticket.pk, payload={"team": "Billing"}) == 2
        assert webhook_emit(event="ticket.routed", ticket_id=ticket.pk, payload={"team": "Billing"}) == 0
        assert webhook_emit(event="suggestion.ready", ticket_id=ticket.pk, payload={}) == 1
        assert webhook_emit(event="ticket.resolved", ticket_id=ticket.pk, payload={}, occurrence="t1") == 1
        assert webhook_emit(event="ticket.resolved", ticket_id=ticket.pk, payload={}, occurrence="t1") == 0
        assert webhook_emit(event="ticket.resolved", ticket_id=ticket.pk, payload={}, occurrence="t2") == 1
    assert len(callbacks) == 5  # one enqueue per delivery created
    delivery = WebhookDelivery.objects.get(endpoint=routed)
    body = json.loads(delivery.body)
    assert body["event"] == "ticket.routed" and body["id"] == str(delivery.uuid)
    assert body["ticket"] == {
        "id": ticket.pk,
        "reference": ticket.reference,
        "external_id": "HD-1",
        "channel": "api",
    }
    assert body["data"] == {"team": "Billing"}
    with pytest.raises(ValueError, match="unknown webhook event"):
        webhook_emit(event="ticket.exploded", ticket_id=ticket.pk, payload={})


@pytest.mark.django_db
def test_nothing_is_emitted_when_the_callers_transaction_rolls_back(
    django_capture_on_commit_callbacks: Any,
) -> None:
    webhook_endpoint_create(name="a", url="https://a.example.com/h", events=["ticket.routed"])
    ticket = new_ticket()
    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        webhook_emit(event="ticket.routed", ticket_id=ticket.pk, payload={})
        raise RuntimeError("the pipeline stage failed")
    assert not WebhookDelivery.objects.exists() and callbacks == []


# --- one attempt, in this process, against the real receiver -------------------------------------


@pytest.mark.django_db
def test_attempts_are_recorded_and_the_last_one_gives_up(receiver: Receiver, settings: Any) -> None:
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    endpoint = webhook_endpoint_create(name="hd", url=receiver.url, events=["ticket.routed"])
    receiver.secret, receiver.fail_first = endpoint.secret, 99
    ticket = new_ticket()
    webhook_emit(event="ticket.routed", ticket_id=ticket.pk, payload={"x": 1})
    delivery = WebhookDelivery.objects.get()
    first = webhook_attempt(delivery_id=delivery.pk)
    assert first.status == "pending" and first.retry_in is not None and first.retry_in > 0
    assert webhook_attempt(delivery_id=delivery.pk).status == "skipped"  # not due yet
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=delivery.created_at)
    webhook_attempt(delivery_id=delivery.pk)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=delivery.created_at)
    last = webhook_attempt(delivery_id=delivery.pk)
    assert last.status == "failed" and last.retry_in is None
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status_code, delivery.last_response) == (3, 503, "busy")
    assert [item["status_code"] for item in delivery.attempt_log] == [503, 503, 503]
    assert all(record["valid"] for record in receiver.requests)
    assert {record["headers"][DELIVERY_HEADER] for record in receiver.requests} == {str(delivery.uuid)}
    assert webhook_attempt(delivery_id=delivery.pk).status == "skipped"  # given up: never again


@pytest.mark.django_db
def test_an_unreachable_receiver_is_an_error_not_a_crash(settings: Any) -> None:
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    webhook_endpoint_create(name="hd", url="http://127.0.0.1:9/nothing", events=["ticket.routed"])
    webhook_emit(event="ticket.routed", ticket_id=new_ticket().pk, payload={})
    outcome = webhook_attempt(delivery_id=WebhookDelivery.objects.get().pk)
    assert outcome.status == "pending"
    assert "ConnectError" in WebhookDelivery.objects.get().last_error


# --- the real thing: a Celery worker delivering through Redis ------------------------------------


@pytest.fixture
def delivery_worker(transactional_db: Any) -> Iterator[None]:
    """A worker on the default queue, using this test's database, with short retry delays."""
    broker = redis.Redis.from_url(str(settings.CELERY_BROKER_URL))
    broker.delete(settings.CELERY_TASK_DEFAULT_QUEUE)  # nothing left over from other tests
    database = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "WEBHOOK_RETRY_BASE_SECONDS": "0.3",
        "WEBHOOK_RETRY_MAX_SECONDS": "1",
        "DJANGO_SETTINGS_MODULE": "inference_app.settings",
    }
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"), "-A", "inference_app", "worker", "--pool=solo",
            "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "-l", "WARNING", "--without-gossip", "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
    yield
    worker.terminate()
    worker.wait(timeout=30)


def wait_for(condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_worker_delivers_each_event_exactly_once_through_failures(
    receiver: Receiver, delivery_worker: None
) -> None:
    endpoint = webhook_endpoint_create(name="helpdesk", url=receiver.url, events=list(EVENTS))
    receiver.secret, receiver.fail_first = endpoint.secret, 2  # the first two requests get 503
    ticket = new_ticket("ZD-42")
    for _rerun in range(2):  # a pipeline stage that runs twice emits twice
        with transaction.atomic():
            for event in EVENTS:
                webhook_emit(event=event, ticket_id=ticket.pk, payload={"event": event})
    wait_for(lambda: len(receiver.accepted) == len(EVENTS))
    time.sleep(2)  # room for a duplicate to show up, were there one
    assert sorted(record["body"]["event"] for record in receiver.accepted) == sorted(EVENTS)
    assert all(record["valid"] for record in receiver.requests)
    assert len(receiver.requests) == len(EVENTS) + 2
    for record in receiver.accepted:
        headers, body = record["headers"], record["body"]
        assert headers[EVENT_HEADER] == body["event"] and headers[DELIVERY_HEADER] == body["id"]
        assert body["ticket"]["external_id"] == "ZD-42" and body["data"] == {"event": body["event"]}
    deliveries = list(WebhookDelivery.objects.filter(endpoint=endpoint))
    assert len(deliveries) == len(EVENTS)
    assert {delivery.status for delivery in deliveries} == {"succeeded"}
    assert sum(delivery.attempts for delivery in deliveries) == len(EVENTS) + 2
    retried = [delivery for delivery in deliveries if delivery.attempts > 1]
    assert retried and all(delivery.attempt_log[0]["status_code"] == 503 for delivery in retried)
    assert WebhookEndpoint.objects.count() == 1


@pytest.mark.django_db
def test_the_sweeper_re_sends_deliveries_whose_message_was_lost(receiver: Receiver) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from tickets.services.webhooks import webhook_requeue_stale

    broker = redis.Redis.from_url(str(settings.CELERY_BROKER_URL))
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    broker.delete(queue)
    webhook_endpoint_create(name="hd", url=receiver.url, events=list(EVENTS))
    ticket = new_ticket()
    for event in EVENTS:
        webhook_emit(event=event, ticket_id=ticket.pk, payload={})  # on_commit never runs here: "lost"
    long_ago = timezone.now() - timedelta(minutes=10)
    WebhookDelivery.objects.filter(event="ticket.routed").update(next_attempt_at=long_ago)
    WebhookDelivery.objects.filter(event="ticket.resolved").update(
        next_attempt_at=long_ago,
        locked_until=timezone.now() + timedelta(minutes=1),  # being sent now
    )
    WebhookDelivery.objects.filter(event="suggestion.ready").update(
        next_attempt_at=long_ago, status="succeeded"
    )
    assert webhook_requeue_stale() == 1
    assert broker.llen(queue) == 1
    raw = broker.lpop(queue)
    assert isinstance(raw, bytes)
    message = json.loads(raw)
    assert message["headers"]["task"] == "tickets.deliver_webhook"
    assert message["headers"]["argsrepr"] == f"({WebhookDelivery.objects.get(event='ticket.routed').pk},)"

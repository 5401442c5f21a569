"""/metrics: request latency by route template, and state read from PostgreSQL and Redis at scrape time."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from inference_app.celery import ping
from inference_app.metrics import PIPELINE_QUEUES, celery_queue_names
from tests.conftest import ROOT
from tickets.models import (
    ModelCall,
    PipelineStage,
    Suggestion,
    Ticket,
    TicketStatus,
    WebhookDelivery,
    WebhookEndpoint,
)

pytestmark = pytest.mark.django_db


def scrape(client: Client | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = (client or Client()).get("/metrics")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return parse(response.content.decode())


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(autouse=True)
def fresh_metrics(settings: Any) -> None:
    """Each scrape computes the shared metrics anew (the cache would keep an earlier test's)."""
    settings.METRICS_CACHE_SECONDS = 0


@pytest.fixture
def broker(settings: Any) -> Iterator[redis.Redis]:
    """The (private) Redis broker database, emptied before and after."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def make_ticket(status: str, stage: str, *, stage_age: timedelta | None = None) -> Ticket:
    started = timezone.now() - stage_age if stage_age is not None else None
    return Ticket.objects.create(
        subject="Cannot log in",
        body="Password reset mail never arrives.",
        status=status,
        stage=stage,
        stage_started_at=started,
    )


def test_the_pipeline_queues_listed_for_metrics_are_the_pipelines_own() -> None:
    from inference_app.celery import app

    stage_tasks = (
        "tickets.pipeline_input",
        "tickets.pipeline_model",
        "tickets.pipeline_output",
        "tickets.shadow_decide",
    )
    routed = {app.amqp.router.route({}, name)["queue"].name for name in stage_tasks}
    assert routed == set(PIPELINE_QUEUES) == {"ingest", "model", "output", "shadow"}
    assert set(celery_queue_names()) == {*PIPELINE_QUEUES, "switchboard"}


def test_tickets_per_status_and_stage_and_the_oldest_in_each_stage(broker: redis.Redis) -> None:
    for _ in range(3):
        make_ticket(TicketStatus.RECEIVED, PipelineStage.QUEUED, stage_age=timedelta(seconds=5))
    make_ticket(TicketStatus.PROCESSING, PipelineStage.MODEL, stage_age=timedelta(minutes=10))
    make_ticket(TicketStatus.PROCESSING, PipelineStage.MODEL, stage_age=timedelta(seconds=30))
    make_ticket(TicketStatus.ROUTED, PipelineStage.DONE)
    make_ticket(TicketStatus.NEEDS_TRIAGE, PipelineStage.FAILED)

    samples = scrape()
    assert value(samples, "switchboard_tickets", status="received", stage="queued") == 3
    assert value(samples, "switchboard_tickets", status="processing", stage="model") == 2
    assert value(samples, "switchboard_tickets", status="routed", stage="done") == 1
    assert value(samples, "switchboard_tickets", status="needs_triage", stage="failed") == 1
    oldest_model = value(samples, "switchboard_pipeline_oldest_ticket_seconds", stage="model")
    assert 600 <= oldest_model < 660
    assert 5 <= value(samples, "switchboard_pipeline_oldest_ticket_seconds", stage="queued") < 60
    assert value(samples, "switchboard_pipeline_oldest_ticket_seconds", stage="output") == 0
    assert value(samples, "switchboard_metrics_source_up", source="tickets") == 1


def test_model_calls_tokens_latency_and_cost(broker: redis.Redis) -> None:
    ticket = make_ticket(TicketStatus.ROUTED, PipelineStage.DONE)
    for latency_ms, outcome in ((80.0, "ok"), (400.0, "ok"), (1500.0, "ok"), (45000.0, "unavailable")):
        ModelCall.objects.create(
            ticket=ticket,
            purpose="classify",
            backend="openai",
            model_name="smollm2-135m-instruct",
            prompt_tokens=300,
            completion_tokens=20,
            latency_ms=latency_ms,
            outcome=outcome,
            cost_usd=Decimal("0.00010000"),
            energy_wh=0.5,
        )
    ModelCall.objects.create(
        ticket=ticket,
        purpose="classify",
        backend="llamacpp",
        model_name="smollm2",
        prompt_tokens=100,
        completion_tokens=10,
        latency_ms=2000.0,
        outcome="ok",
    )
    samples = scrape()
    labels = {"backend": "openai", "model": "smollm2-135m-instruct"}
    assert value(samples, "switchboard_model_calls_total", purpose="classify", outcome="ok", **labels) == 3
    assert (
        value(samples, "switchboard_model_calls_total", purpose="classify", outcome="unavailable", **labels)
        == 1
    )
    assert value(samples, "switchboard_model_tokens_total", kind="prompt", **labels) == 1200
    assert value(samples, "switchboard_model_tokens_total", kind="completion", **labels) == 80
    assert (
        value(samples, "switchboard_model_tokens_total", backend="llamacpp", model="smollm2", kind="prompt")
        == 100
    )
    histogram = "switchboard_model_call_duration_seconds"
    assert value(samples, f"{histogram}_bucket", le="0.1", **labels) == 1
    assert value(samples, f"{histogram}_bucket", le="0.5", **labels) == 2
    assert value(samples, f"{histogram}_bucket", le="2.0", **labels) == 3
    assert value(samples, f"{histogram}_bucket", le="30.0", **labels) == 3
    assert value(samples, f"{histogram}_bucket", le="+Inf", **labels) == 4
    assert value(samples, f"{histogram}_count", **labels) == 4
    assert value(samples, f"{histogram}_sum", **labels) == pytest.approx(46.98)
    assert value(samples, "switchboard_model_cost_total", **labels) == pytest.approx(0.0004)
    assert value(samples, "switchboard_model_energy_watt_hours_total", **labels) == pytest.approx(2.0)


def test_degraded_suggestions_and_webhook_failures(broker: redis.Redis) -> None:
    ticket = make_ticket(TicketStatus.ROUTED, PipelineStage.DONE)
    Suggestion.objects.create(ticket=ticket, confidence=0.9, degraded=False)
    Suggestion.objects.create(ticket=ticket, confidence=0.4, degraded=True)
    Suggestion.objects.create(ticket=ticket, confidence=0.3, degraded=True, decision="rejected")
    endpoint = WebhookEndpoint.objects.create(name="helpdesk", url="https://helpdesk.example.com/hook")
    rows = [("succeeded", 1), ("succeeded", 3), ("failed", 8), ("pending", 2)]
    for index, (status, attempts) in enumerate(rows):
        WebhookDelivery.objects.create(
            uuid=f"00000000-0000-0000-0000-{index:012d}",
            endpoint=endpoint,
            event="ticket.routed",
            ticket=ticket,
            occurrence=str(index),
            body="{}",
            status=status,
            attempts=attempts,
        )
    samples = scrape()
    assert value(samples, "switchboard_suggestions_total") == 3
    assert value(samples, "switchboard_suggestions_degraded_total") == 2
    assert value(samples, "switchboard_suggestion_decisions", decision="rejected") == 1
    assert value(samples, "switchboard_webhook_deliveries", status="succeeded") == 2
    assert value(samples, "switchboard_webhook_failures_total") == 1
    # 14 attempts, 2 of which succeeded
    assert value(samples, "switchboard_webhook_failed_attempts_total") == 12


def test_queue_depths_are_read_from_redis(broker: redis.Redis) -> None:
    for _ in range(3):
        ping.apply_async(queue="model")
    ping.apply_async(queue="ingest")
    ping.apply_async(queue="ingest", priority=6)  # kombu keeps this priority in a key of its own
    samples = scrape()
    assert value(samples, "switchboard_celery_queue_length", queue="model") == 3
    assert value(samples, "switchboard_celery_queue_length", queue="ingest") == 2
    assert value(samples, "switchboard_celery_queue_length", queue="output") == 0
    assert value(samples, "switchboard_celery_unacked") == 0
    assert value(samples, "switchboard_metrics_source_up", source="broker") == 1


def test_an_unreachable_broker_is_reported_not_fatal(settings: Any, broker: redis.Redis) -> None:
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 0.5
    samples = scrape()
    assert value(samples, "switchboard_metrics_source_up", source="broker") == 0
    assert value(samples, "switchboard_metrics_source_up", source="tickets") == 1
    assert not any(name == "switchboard_celery_queue_length" for name, _ in samples)


def test_request_latency_is_labelled_by_route_template(broker: redis.Redis) -> None:
    client = Client()
    client.get("/admin/tickets/ticket/987654/change/")
    client.get("/no/such/page/5551234")
    samples = scrape(client)
    routes = {dict(labels).get("route") for name, labels in samples if name.startswith("switchboard_http_")}
    assert "admin/tickets/ticket/<path:object_id>/change/" in routes
    assert "<unmatched>" in routes
    assert not any("987654" in route or "5551234" in route for route in routes if route)
    count = value(
        samples,
        "switchboard_http_request_duration_seconds_count",
        method="GET",
        route="admin/tickets/ticket/<path:object_id>/change/",
        status="302",
    )
    assert count >= 1


def test_metrics_token_is_required_when_set(settings: Any, broker: redis.Redis) -> None:
    settings.METRICS_TOKEN = "scrape-me-7f3a"
    client = Client()
    denied = client.get("/metrics")
    assert denied.status_code == 401 and denied["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me-7f3a").status_code == 200


def free_port() -> int:
    return closed_port()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_gunicorn_workers_share_one_view_of_request_metrics(tmp_path: Path) -> None:
    """deploy/gunicorn.conf.py: several worker processes, one scrape that sums them all."""
    port = free_port()
    env = os.environ.copy()
    env.update(
        {
            "PORT": str(port),
            "WEB_CONCURRENCY": "3",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
            "LOG_FORMAT": "json",
        }
    )
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "inference_app.wsgi", "--config", "deploy/gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
        # Overlapping requests, until more than one worker process has answered some.
        sent = 1  # the start-up poll's
        with ThreadPoolExecutor(max_workers=6) as pool:
            for _ in range(20):
                list(
                    pool.map(lambda _: urllib.request.urlopen(f"{base}/healthz", timeout=5).read(), range(12))
                )
                sent += 12
                if len(list((tmp_path / "prom").glob("histogram_*.db"))) >= 2:
                    break
        assert len(list((tmp_path / "prom").glob("histogram_*.db"))) >= 2
        text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    samples = parse(text)
    served = value(
        samples,
        "switchboard_http_request_duration_seconds_count",
        method="GET",
        route="healthz",
        status="200",
    )
    assert served >= sent  # every request, whichever worker took it (a start-up retry may add one)
    # Every line the server wrote, gunicorn's own included, is a JSON object; requests carry their id.
    lines = [json.loads(line) for line in (tmp_path / "gunicorn.log").read_text().splitlines() if line]
    assert any(line["logger"] == "gunicorn.error" for line in lines)
    requests = [line for line in lines if line["logger"] == "switchboard.request"]
    assert all(re.fullmatch(r"[0-9a-f]{32}", line["request_id"]) for line in requests)
    # The summed histogram counts exactly the requests that the worker processes logged.
    assert served == len([line for line in requests if line["path"] == "/healthz"])


def test_every_metric_the_alert_rules_use_is_exported(broker: redis.Redis) -> None:
    """deploy/prometheus/alerts.yml watches series that /metrics really has."""
    import yaml

    ticket = make_ticket(TicketStatus.RECEIVED, PipelineStage.QUEUED)
    ModelCall.objects.create(
        ticket=ticket, purpose="classify", backend="llamacpp", model_name="m", outcome="ok"
    )
    Suggestion.objects.create(ticket=ticket, confidence=0.5, degraded=True)
    Client().get("/healthz")
    exported = {name for name, _ in scrape()}
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {name for expr in expressions for name in re.findall(r"\bswitchboard_\w+", expr)}
    assert len(used) >= 8
    assert used <= exported, used - exported


def test_shared_metrics_are_computed_once_per_cache_period(settings: Any, broker: redis.Redis) -> None:
    """Many web pods scraped within METRICS_CACHE_SECONDS cost one set of queries (the cache is Redis)."""
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from inference_app.metrics import CACHE_KEY

    assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    settings.METRICS_CACHE_SECONDS = 60
    cache.delete(CACHE_KEY)
    make_ticket(TicketStatus.RECEIVED, PipelineStage.QUEUED)
    first = scrape()
    make_ticket(TicketStatus.RECEIVED, PipelineStage.QUEUED)
    with CaptureQueriesContext(connection) as queries:
        cached = scrape()  # another pod, a moment later: from the cache, no query
    assert len(queries) == 0
    assert value(first, "switchboard_tickets", status="received", stage="queued") == 1
    assert value(cached, "switchboard_tickets", status="received", stage="queued") == 1
    cache.delete(CACHE_KEY)  # the period is over
    assert value(scrape(), "switchboard_tickets", status="received", stage="queued") == 2

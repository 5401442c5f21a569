"""Prometheus metrics at ``/metrics``.

Two kinds:

- **Per process, recorded as requests happen**: the request latency histogram (labelled by route
  template, never the raw path). Under gunicorn (``deploy/gunicorn.conf.py`` sets
  ``PROMETHEUS_MULTIPROC_DIR``) every worker writes its samples to that folder and a scrape sums them.
- **Computed at scrape time from PostgreSQL and the broker**, so they are right however many web and
  worker processes run, on however many machines: tickets per status and pipeline stage, the age of
  the oldest ticket in each stage, Celery queue depths, model calls, tokens, latency and cost, degraded
  suggestions and webhook failures. A source that cannot be read is reported in
  ``switchboard_metrics_source_up`` instead of failing the scrape.

``METRICS_TOKEN`` (optional) makes the endpoint want ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# The pipeline's queues (one per stage, as CELERY_TASK_ROUTES sends them) besides the default
# queue, which carries knowledge-base sync, webhooks and API jobs.
PIPELINE_QUEUES = tuple(route["queue"] for route in settings.CELERY_TASK_ROUTES.values())
IN_FLIGHT_STAGES = ("queued", "input", "model", "output")
MODEL_LATENCY_BUCKETS_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
HTTP_LATENCY_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED_ROUTE = "<unmatched>"
# kombu's Redis transport keeps priority levels 3, 6 and 9 of a queue in keys of their own.
_REDIS_PRIORITY_SEPARATOR = "\x06\x16"
_REDIS_PRIORITY_STEPS = (3, 6, 9)

HTTP_REQUEST_SECONDS = Histogram(
    "switchboard_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status code.",
    ["method", "route", "status"],
    buckets=HTTP_LATENCY_BUCKETS_SECONDS,
)


# --- the request latency middleware ----------------------------------------------------------------


class MetricsMiddleware:
    """Times every request into ``switchboard_http_request_duration_seconds``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        HTTP_REQUEST_SECONDS.labels(
            method=request.method if request.method in _KNOWN_METHODS else "other",
            route=route_label(request),
            status=str(response.status_code),
        ).observe(time.perf_counter() - started)
        return response


_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_label(request: HttpRequest) -> str:
    """The URL pattern that answered (``api/v1/tickets/<int:pk>``), so ids never become label values."""
    probe = getattr(request, "probe_route", None)
    if probe:
        return str(probe)
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNMATCHED_ROUTE
    return str(match.route) or str(match.view_name) or UNMATCHED_ROUTE


# --- the endpoint --------------------------------------------------------------------------------


def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token:
        offered = request.headers.get("Authorization", "")
        if not hmac.compare_digest(offered.encode(), f"Bearer {token}".encode()):
            response = HttpResponse("metrics need a bearer token\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)


def scrape_registry() -> CollectorRegistry:
    """This scrape's metrics: the process-recorded ones (summed over gunicorn workers) and the shared ones."""
    registry = CollectorRegistry(auto_describe=False)
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if multiproc_dir and Path(multiproc_dir).is_dir():
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=multiproc_dir)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ProcessMetrics())
    registry.register(SharedStateCollector())
    return registry


class _ProcessMetrics(Collector):
    """This process's own registry (request latency, process and platform metrics)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


# --- metrics computed from the database and the broker ---------------------------------------------


class SharedStateCollector(Collector):
    """Gauges and counters read from PostgreSQL and the broker at scrape time.

    Every web pod reports the same values, so they are computed once per ``METRICS_CACHE_SECONDS``
    and kept in the shared cache (Redis in production): N pods scraped cost one set of queries.
    """

    def collect(self) -> Iterator[Metric]:
        ttl = settings.METRICS_CACHE_SECONDS
        families: list[Metric] | None = cache.get(CACHE_KEY) if ttl > 0 else None
        if families is None:
            families = collect_shared_state()
            if ttl > 0:
                cache.set(CACHE_KEY, families, timeout=ttl)
        yield from families
        yield info_metric()


CACHE_KEY = "switchboard:metrics:shared-state"


def collect_shared_state() -> list[Metric]:
    up = GaugeMetricFamily(
        "switchboard_metrics_source_up",
        "1 when the source behind a group of metrics could be read during this scrape.",
        labels=["source"],
    )
    sources: list[tuple[str, Callable[[], Iterable[Metric]]]] = [
        ("tickets", ticket_metrics),
        ("broker", queue_metrics),
        ("model_calls", model_call_metrics),
        ("suggestions", suggestion_metrics),
        ("webhooks", webhook_metrics),
    ]
    collected: list[Metric] = []
    for name, source in sources:
        try:
            # A savepoint (or a short transaction): one failed query must not abort the others.
            with transaction.atomic():
                families = list(source())
        except Exception:
            logger.warning("metrics source %s could not be read", name, exc_info=True)
            up.add_metric([name], 0)
            continue
        up.add_metric([name], 1)
        collected += families
    collected.append(up)
    return collected


def info_metric() -> Metric:
    info = GaugeMetricFamily(
        "switchboard_info",
        "Always 1; the labels say which model and embedding this deployment uses.",
        labels=["llm_backend", "llm_model", "embedding_model", "environment"],
    )
    info.add_metric(
        [settings.LLM_BACKEND, settings.LLM_MODEL, settings.EMBEDDING_MODEL, settings.DJANGO_ENV], 1
    )
    return info


def ticket_metrics() -> Iterator[Metric]:
    from tickets.models import Ticket

    tickets = GaugeMetricFamily(
        "switchboard_tickets", "Tickets by status and pipeline stage.", labels=["status", "stage"]
    )
    for row in Ticket.objects.order_by().values("status", "stage").annotate(count=Count("id")):
        tickets.add_metric([row["status"], row["stage"]], row["count"])
    yield tickets

    oldest = GaugeMetricFamily(
        "switchboard_pipeline_oldest_ticket_seconds",
        "Age of the ticket that has waited longest in each in-flight pipeline stage (0 when none).",
        labels=["stage"],
    )
    now = timezone.now()
    started = (
        Ticket.objects.order_by()
        .filter(stage__in=IN_FLIGHT_STAGES)
        .values("stage")
        .annotate(since=Min(Coalesce("stage_started_at", "created_at")))
    )
    ages = {row["stage"]: max(0.0, (now - row["since"]).total_seconds()) for row in started}
    for stage in IN_FLIGHT_STAGES:
        oldest.add_metric([stage], ages.get(stage, 0.0))
    yield oldest


def model_call_metrics() -> Iterator[Metric]:
    from tickets.models import ModelCall

    calls = CounterMetricFamily(
        "switchboard_model_calls",
        "Calls to the language model, by backend, model, purpose and outcome.",
        labels=["backend", "model", "purpose", "outcome"],
    )
    for row in (
        ModelCall.objects.order_by()
        .values("backend", "model_name", "purpose", "outcome")
        .annotate(count=Count("id"))
    ):
        calls.add_metric([row["backend"], row["model_name"], row["purpose"], row["outcome"]], row["count"])
    yield calls

    bucket_counts = {
        f"le_{index}": Count("id", filter=Q(latency_ms__lte=bound * 1000.0))
        for index, bound in enumerate(MODEL_LATENCY_BUCKETS_SECONDS)
    }
    rows = list(
        ModelCall.objects.order_by()
        .values("backend", "model_name")
        .annotate(
            count=Count("id"),
            latency_ms_sum=Sum("latency_ms"),
            prompt_sum=Sum("prompt_tokens"),
            completion_sum=Sum("completion_tokens"),
            cost_sum=Sum("cost_usd"),
            energy_sum=Sum("energy_wh"),
            **bucket_counts,
        )
    )
    latency = HistogramMetricFamily(
        "switchboard_model_call_duration_seconds",
        "Latency of language model calls, by backend and model.",
        labels=["backend", "model"],
    )
    tokens = CounterMetricFamily(
        "switchboard_model_tokens",
        "Tokens sent to (prompt) and produced by (completion) the language model.",
        labels=["backend", "model", "kind"],
    )
    cost = CounterMetricFamily(
        "switchboard_model_cost", "Cost of model calls at the configured prices.", labels=["backend", "model"]
    )
    energy = CounterMetricFamily(
        "switchboard_model_energy_watt_hours",
        "Estimated energy of model calls (LLM_WATTS x latency).",
        labels=["backend", "model"],
    )
    for row in rows:
        labels = [row["backend"], row["model_name"]]
        buckets = [
            (_bound(bound), float(row[f"le_{index}"]))
            for index, bound in enumerate(MODEL_LATENCY_BUCKETS_SECONDS)
        ]
        buckets.append(("+Inf", float(row["count"])))
        latency.add_metric(labels, buckets, sum_value=float(row["latency_ms_sum"] or 0.0) / 1000.0)
        tokens.add_metric([*labels, "prompt"], float(row["prompt_sum"] or 0))
        tokens.add_metric([*labels, "completion"], float(row["completion_sum"] or 0))
        cost.add_metric(labels, float(row["cost_sum"] or 0))
        energy.add_metric(labels, float(row["energy_sum"] or 0.0))
    yield from (latency, tokens, cost, energy)


def _bound(seconds: float) -> str:
    return repr(float(seconds))


def suggestion_metrics() -> Iterator[Metric]:
    from tickets.models import Suggestion

    counts = Suggestion.objects.order_by().aggregate(
        total=Count("id"), degraded=Count("id", filter=Q(degraded=True))
    )
    total = CounterMetricFamily("switchboard_suggestions", "Suggestions (decisions) made by the pipeline.")
    total.add_metric([], counts["total"])
    degraded = CounterMetricFamily(
        "switchboard_suggestions_degraded",
        "Suggestions made in degraded mode: without the language model (retrieval alone).",
    )
    degraded.add_metric([], counts["degraded"])
    decisions = GaugeMetricFamily(
        "switchboard_suggestion_decisions", "Suggestions by what agents did with them.", labels=["decision"]
    )
    for row in Suggestion.objects.order_by().values("decision").annotate(count=Count("id")):
        decisions.add_metric([row["decision"]], row["count"])
    yield from (total, degraded, decisions)


def webhook_metrics() -> Iterator[Metric]:
    from tickets.models import WebhookDelivery

    deliveries = GaugeMetricFamily(
        "switchboard_webhook_deliveries", "Webhook deliveries by status.", labels=["status"]
    )
    succeeded = gave_up = attempts = 0
    for row in (
        WebhookDelivery.objects.order_by()
        .values("status")
        .annotate(count=Count("id"), attempts=Sum("attempts"))
    ):
        deliveries.add_metric([row["status"]], row["count"])
        attempts += row["attempts"] or 0
        if row["status"] == WebhookDelivery.Status.SUCCEEDED:
            succeeded = row["count"]
        if row["status"] == WebhookDelivery.Status.FAILED:
            gave_up = row["count"]
    failures = CounterMetricFamily(
        "switchboard_webhook_failures",
        "Webhook deliveries that failed for good (every attempt used).",
    )
    failures.add_metric([], gave_up)
    failed_attempts = CounterMetricFamily(
        "switchboard_webhook_failed_attempts",
        "Webhook attempts that did not succeed (each retry counts).",
    )
    failed_attempts.add_metric([], max(0, attempts - succeeded))
    yield from (deliveries, failures, failed_attempts)


# --- queue depths ----------------------------------------------------------------------------------


def celery_queue_names() -> list[str]:
    """Every queue a Switchboard worker consumes: the default one and the pipeline's."""
    return sorted({settings.CELERY_TASK_DEFAULT_QUEUE, *PIPELINE_QUEUES})


def queue_metrics() -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "switchboard_celery_queue_length", "Messages waiting in each Celery queue.", labels=["queue"]
    )
    unacked = GaugeMetricFamily(
        "switchboard_celery_unacked", "Messages handed to a worker and not yet acknowledged (in progress)."
    )
    lengths, in_progress = queue_lengths(settings.CELERY_BROKER_URL, celery_queue_names())
    for queue, length in lengths.items():
        depth.add_metric([queue], length)
    yield depth
    if in_progress is not None:
        unacked.add_metric([], in_progress)
        yield unacked


def queue_lengths(broker_url: str, queues: list[str]) -> tuple[dict[str, int], int | None]:
    """Messages waiting per queue, and those in progress (Redis only), read from the broker itself."""
    scheme = urlsplit(broker_url).scheme
    if scheme in {"redis", "rediss"}:
        return _redis_queue_lengths(broker_url, queues)
    if scheme == "filesystem":
        return _filesystem_queue_lengths(queues), None
    raise RuntimeError(f"queue depths are read from Redis or the filesystem broker, not {scheme}://")


def _redis_queue_lengths(broker_url: str, queues: list[str]) -> tuple[dict[str, int], int]:
    import redis

    client = redis.Redis.from_url(
        broker_url,
        socket_connect_timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS,
        socket_timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS,
    )
    try:
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(queue)
            for step in _REDIS_PRIORITY_STEPS:
                pipe.llen(f"{queue}{_REDIS_PRIORITY_SEPARATOR}{step}")
        pipe.hlen("unacked")
        results = [int(value) for value in pipe.execute()]
    finally:
        client.close()
    per_queue = 1 + len(_REDIS_PRIORITY_STEPS)
    lengths = {queue: sum(results[i * per_queue : (i + 1) * per_queue]) for i, queue in enumerate(queues)}
    return lengths, results[-1]


def _filesystem_queue_lengths(queues: list[str]) -> dict[str, int]:
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    folder = Path(str(options.get("data_folder_in", settings.BROKER_DIR / "queue")))
    counts = dict.fromkeys(queues, 0)
    for entry in os.scandir(folder):
        queue = entry.name.partition(".")[2].removesuffix(".msg")
        if queue in counts:
            counts[queue] += 1
    return counts

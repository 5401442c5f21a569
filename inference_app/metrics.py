"""Prometheus metrics at ``/metrics``.

Two kinds:

- **Per process, recorded as requests happen**: the request latency histogram (labelled by route
  template, never the raw path). Under gunicorn (``deploy/gunicorn.conf.py`` sets
  ``PROMETHEUS_MULTIPROC_DIR``) every worker writes its samples to that folder and a scrape sums them.
- **Computed at scrape time from PostgreSQL and the broker**, so they are right however many web and
  worker processes run, on however many machines: tickets per status and pipeline stage, the age of
  the oldest ticket in each stage, Celery queue depths, model calls, tokens, latency and cost, degraded
  suggestions and webhook failures. A source that cannot be read is reported in
  ``switchboard_metrics_source_up`` instead of failing the scrape. The sources that read ticket models
  live in ``tickets/metrics.py`` and are added with :func:`register_source` when the tickets app starts.

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
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# The pipeline's queues (one per stage, as CELERY_TASK_ROUTES sends them) besides the default
# queue, which carries knowledge-base sync, webhooks and API jobs.
PIPELINE_QUEUES = tuple(route["queue"] for route in settings.CELERY_TASK_ROUTES.values())
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


Source = Callable[[], Iterable[Metric]]
_SOURCES: dict[str, Source] = {}


def register_source(name: str, source: Source) -> None:
    """Add a group of metrics computed at scrape time; ``name`` labels it in
    ``switchboard_metrics_source_up``. The apps register theirs when Django starts (the tickets app's
    read ticket models: ``tickets/metrics.py``), so this project shell never imports them."""
    _SOURCES[name] = source


def collect_shared_state() -> list[Metric]:
    up = GaugeMetricFamily(
        "switchboard_metrics_source_up",
        "1 when the source behind a group of metrics could be read during this scrape.",
        labels=["source"],
    )
    collected: list[Metric] = []
    for name, source in _SOURCES.items():
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


register_source("broker", queue_metrics)


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

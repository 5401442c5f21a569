"""The metrics read from ticket models at scrape time (``/metrics``): tickets per status and stage, the
age of the oldest ticket in each stage, model calls, tokens, latency and cost, suggestions and webhook
deliveries. :class:`tickets.apps.TicketsConfig` registers them with ``inference_app.metrics``, which
serves them (cached, each source guarded) without importing this app.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from inference_app.metrics import register_source
from tickets.models import ModelCall, Suggestion, Ticket, WebhookDelivery
from tickets.pipeline import stages

MODEL_LATENCY_BUCKETS_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


def register() -> None:
    """Register the sources (called once from ``TicketsConfig.ready``)."""
    register_source("tickets", ticket_metrics)
    register_source("model_calls", model_call_metrics)
    register_source("suggestions", suggestion_metrics)
    register_source("webhooks", webhook_metrics)


def ticket_metrics() -> Iterator[Metric]:
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
        .filter(stage__in=stages.IN_FLIGHT)
        .values("stage")
        .annotate(since=Min(Coalesce("stage_started_at", "created_at")))
    )
    ages = {row["stage"]: max(0.0, (now - row["since"]).total_seconds()) for row in started}
    for stage in stages.IN_FLIGHT:
        oldest.add_metric([stage], ages.get(stage, 0.0))
    yield oldest


def model_call_metrics() -> Iterator[Metric]:
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

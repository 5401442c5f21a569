"""Celery tasks of the retrieval app. Thin: they call services."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from retrieval.label_services import train_label_model


# Fitting on tens of thousands of entries takes minutes: well above the default task time limit.
@shared_task(
    name="retrieval.retrain_label_model",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=3600,
    time_limit=3660,
)
def retrain_label_model() -> dict[str, Any]:
    """Refit the label model on the live knowledge base (scheduled periodically by beat)."""
    summary = train_label_model()
    return {
        "trained": summary.trained,
        "entries": summary.entries,
        "labels": summary.labels,
        "reason": summary.reason,
    }


@shared_task(
    name="retrieval.tune_embeddings",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=3600,
    time_limit=3660,
)
def tune_embeddings() -> dict[str, Any]:
    """Tune the embedding model on the knowledge base and adopt it if it wins on held-out history (the
    current model keeps serving until then). Enqueued on demand, like ``train_classifier
    --tune-embeddings``."""
    from retrieval.embedding_services import tune_embeddings as tune

    summary = tune()
    return {"adopted": summary.adopted, "name": summary.name, "reason": summary.reason}

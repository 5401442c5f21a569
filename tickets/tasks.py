"""Celery tasks of the tickets app. Thin: they take ids and call services.

The pipeline's stage tasks retry only what is transient (the database or the broker briefly gone),
with backoff and jitter; anything else, or too many retries, sends the ticket to human triage with
the error (``tickets.pipeline.flow.fail_ticket``). Each stage is idempotent, so a redelivered message
(acks_late, a killed worker) does no harm. Their names and queues are rows of the stage table
(``tickets/pipeline/stages.py``); the flow enqueues them by name.
"""

from __future__ import annotations

import math
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

from tickets.pipeline import flow as pipeline
from tickets.pipeline.stages import SHADOW_TASK, PipelineStage, spec
from tickets.services.knowledge import sync_ticket
from tickets.services.lifecycle import SYNC_KNOWLEDGE_TASK

TRANSIENT = (OperationalError, InterfaceError, BrokerError, ConnectionError, TimeoutError)


@shared_task(
    name=SYNC_KNOWLEDGE_TASK,
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=8,
)
def sync_ticket_knowledge(ticket_id: int) -> str:
    """Index a resolved ticket, or drop a reopened one, in the knowledge base. Idempotent."""
    return sync_ticket(ticket_id=ticket_id)


@shared_task(
    name="tickets.retrain_answer_ranker",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=3600,
    time_limit=3660,
)
def retrain_answer_ranker() -> dict[str, Any]:
    """Refit the answer ranker on the resolved history (scheduled by beat, beside the label model)."""
    from tickets.suggestions import train_answer_ranker

    summary = train_answer_ranker()
    return {"trained": summary.trained, "history": summary.history, "reason": summary.reason}


@shared_task(name="tickets.refresh_emerging_topics", acks_late=True, ignore_result=True)
def refresh_emerging_topics(days: int | None = None) -> int:
    """Recluster the triage tickets of no known category (scheduled by beat; the admin page asks too)."""
    from tickets.services.emerging_topics import DEFAULT_DAYS
    from tickets.services.emerging_topics import refresh_emerging_topics as refresh

    return len(refresh(days=days or DEFAULT_DAYS))


class PipelineTask(Task[Any, Any]):
    """A stage task: transient errors retry with backoff; a stage that fails for good sends the ticket
    to triage."""

    acks_late = True
    autoretry_for = TRANSIENT
    retry_backoff = 2
    retry_backoff_max = 60
    retry_jitter = True
    max_retries = 5

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        ticket_id = args[0] if args else kwargs.get("ticket_id")
        if ticket_id is not None:
            pipeline.fail_ticket(int(ticket_id), f"{type(exc).__name__}: {exc}")


@shared_task(base=PipelineTask, name=spec(PipelineStage.INPUT).task)
def pipeline_input(ticket_id: int, others: list[int] | None = None) -> None:
    pipeline.run_input(ticket_id, others or ())


@shared_task(base=PipelineTask, name=spec(PipelineStage.MODEL).task)
def pipeline_model(ticket_id: int, others: list[int] | None = None) -> None:
    pipeline.run_model(ticket_id, others or ())


@shared_task(base=PipelineTask, name=spec(PipelineStage.OUTPUT).task)
def pipeline_output(ticket_id: int, others: list[int] | None = None) -> None:
    pipeline.run_output(ticket_id, others or ())


@shared_task(name="tickets.sweep_stuck_tickets", acks_late=True)
def sweep_stuck_tickets() -> int:
    return pipeline.sweep_stuck_tickets()


@shared_task(
    name=SHADOW_TASK,
    acks_late=True,
    ignore_result=True,
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    max_retries=5,
    # it may first wait up to MODEL_SHADOW_MAX_DEFER_SECONDS for the live queues (shadow_yield)
    soft_time_limit=math.ceil(settings.MODEL_SHADOW_MAX_DEFER_SECONDS) + settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=math.ceil(settings.MODEL_SHADOW_MAX_DEFER_SECONDS) + settings.CELERY_TASK_TIME_LIMIT,
)
def shadow_decide(ticket_ids: list[int], decision_model_id: int, queued_at: float | None = None) -> int:
    """A shadow version's decisions of a batch of tickets, stored beside the active ones (never applied),
    once the live queues are empty or the bound is reached. Idempotent."""
    from tickets.pipeline.shadow_yield import yield_to_live_traffic
    from tickets.pipeline.shadowing import run_shadow

    yield_to_live_traffic(queued_at=queued_at)
    return run_shadow(ticket_ids, decision_model_id)


@shared_task(
    name="tickets.retrain_decision_model",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=3600,
    time_limit=3660,
)
def retrain_decision_model() -> dict[str, Any]:
    """The periodic retrain through the registry: a candidate, evaluated, shadowed; promoted by the gate."""
    from tickets.services.model_retrain import retrain_cycle

    return retrain_cycle()


@shared_task(name="tickets.promote_shadowed_models", acks_late=True, ignore_result=True)
def promote_shadowed_models() -> list[int]:
    """Promote the retrained candidates whose shadow period is over and whose gate holds (when auto)."""
    from tickets.services.model_retrain import promote_shadowed

    return promote_shadowed()

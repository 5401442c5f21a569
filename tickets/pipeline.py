"""The ticket pipeline, top to bottom: input processing -> the model -> output processing.

Each stage is a Celery task on its own queue (``ingest``, ``model``, ``output``) that takes ticket
ids. The contract of every stage:

1. **Claim** the ticket with one conditional UPDATE (``stage`` is this stage and nobody holds it, or
   the holder's claim is older than ``PIPELINE_STAGE_TIMEOUT_SECONDS``). No claim: the stage is done
   or in other hands, so the task does nothing. Re-running a finished stage is therefore harmless.
2. **Work** without a transaction open (and, around the model call, without a database connection).
3. **Advance** in one transaction: move ``stage`` on, but only if our claim still holds, and write the
   stage's results and its audit event with it. A worker that lost its claim writes nothing.
4. **Enqueue** the next stage after the commit.

A worker killed mid-stage leaves a stale claim; the sweeper (:func:`sweep_stuck_tickets`, run by beat)
re-enqueues such tickets. A ticket that keeps failing lands in human triage with its error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from inference_app.llm.backends import get_backend, pricing
from inference_app.llm.classify import ModelVerdict, ask_model, draft_reply
from inference_app.llm.decision import decide_category, should_consult_model
from inference_app.llm.types import CallRecord, Neighbour, Taxonomy
from tickets import inputs, routing
from tickets.audit import record_event
from tickets.models import (
    AuditEvent,
    Category,
    ModelCall,
    PipelineStage,
    Suggestion,
    Team,
    Ticket,
    TicketStatus,
)
from tickets.services import ticket_transition
from tickets.webhooks import webhook_emit

logger = logging.getLogger(__name__)

QUEUE_FOR_STAGE = {
    PipelineStage.INPUT: "ingest",
    PipelineStage.MODEL: "model",
    PipelineStage.OUTPUT: "output",
}
IN_PIPELINE = (TicketStatus.RECEIVED, TicketStatus.PROCESSING)
SYSTEM = AuditEvent.ActorType.SYSTEM
ACTOR = "pipeline"


# --- entry point ---------------------------------------------------------------------------------


def enqueue_ticket(ticket_id: int) -> None:
    """Start the pipeline for a saved ticket once the surrounding transaction commits."""
    transaction.on_commit(lambda: enqueue_stage(PipelineStage.INPUT, ticket_id))


def enqueue_stage(stage: str, ticket_id: int) -> None:
    from tickets import tasks

    task = {
        PipelineStage.INPUT: tasks.pipeline_input,
        PipelineStage.MODEL: tasks.pipeline_model,
        PipelineStage.OUTPUT: tasks.pipeline_output,
    }[PipelineStage(stage)]
    task.apply_async((ticket_id,), queue=QUEUE_FOR_STAGE[PipelineStage(stage)])


# --- claims --------------------------------------------------------------------------------------


def _waiting(stage: str) -> Q:
    """Tickets this stage may claim: waiting for it, or held by a claim that has gone stale."""
    stale = timezone.now() - timedelta(seconds=settings.PIPELINE_STAGE_TIMEOUT_SECONDS)
    waiting = Q(stage=stage, stage_started_at__isnull=True) | Q(stage=stage, stage_started_at__lt=stale)
    if stage == PipelineStage.INPUT:
        waiting |= Q(stage=PipelineStage.QUEUED)
    # Only tickets still being processed: never a resolved or imported one.
    return waiting & Q(status__in=IN_PIPELINE)


def claim(stage: str, ticket_ids: Sequence[int]) -> tuple[list[Ticket], Any]:
    """Claim those of ``ticket_ids`` that wait for ``stage``; returns them and the claim's token."""
    token = timezone.now()
    Ticket.objects.filter(_waiting(stage), pk__in=ticket_ids).update(
        stage=stage, stage_started_at=token, pipeline_attempts=F("pipeline_attempts") + 1, updated_at=token
    )
    claimed = Ticket.objects.filter(pk__in=ticket_ids, stage=stage, stage_started_at=token)
    return list(claimed.select_related("category", "team")), token


def waiting_ids(stage: str, *, first: int, limit: int) -> list[int]:
    """``first`` and up to ``limit - 1`` other tickets waiting for ``stage``, to process as one batch."""
    others = (
        Ticket.objects.filter(_waiting(stage)).exclude(pk=first).order_by("pk").values_list("pk", flat=True)
    )
    return [first, *others[: max(0, limit - 1)]]


def advance(ticket: Ticket, token: Any, *, to_stage: str, **fields: Any) -> bool:
    """Move ``ticket`` on from its claimed stage if the claim still holds (in the caller's transaction)."""
    now = timezone.now()
    moved = Ticket.objects.filter(pk=ticket.pk, stage=ticket.stage, stage_started_at=token).update(
        stage=to_stage,
        stage_started_at=None,
        pipeline_attempts=0,
        updated_at=now,
        **fields,
    )
    return moved == 1


def _gave_up(ticket: Ticket) -> bool:
    return ticket.pipeline_attempts > settings.PIPELINE_MAX_ATTEMPTS


# --- stage 1: input processing -------------------------------------------------------------------


def run_input(ticket_id: int) -> None:
    """Normalise, check, flag injection, find duplicates, redact, embed and retrieve, for a batch."""
    started = time.perf_counter()
    tickets, token = claim(
        PipelineStage.INPUT,
        waiting_ids(PipelineStage.INPUT, first=ticket_id, limit=settings.PIPELINE_BATCH_SIZE),
    )
    if not tickets:
        return
    for ticket in [t for t in tickets if _gave_up(t)]:
        fail_ticket(ticket.pk, "input processing failed repeatedly")
    tickets = [t for t in tickets if not _gave_up(t)]
    for ticket in tickets:
        if ticket.status == TicketStatus.RECEIVED:
            ticket_transition(
                ticket_id=ticket.pk, to_status=TicketStatus.PROCESSING, stage="input", actor=ACTOR
            )
    results = inputs.process_batch(tickets)
    per_ticket_ms = (time.perf_counter() - started) * 1000 / max(1, len(tickets))
    for ticket in tickets:
        result = results[ticket.pk]
        with transaction.atomic():
            if not advance(ticket, token, **result.ticket_fields(), to_stage=PipelineStage.MODEL):
                continue
            record_event(
                ticket_id=ticket.pk,
                stage=AuditEvent.Stage.INPUT,
                action="input.invalid" if not result.usable else "input.processed",
                actor_type=SYSTEM,
                actor=ACTOR,
                details={**result.input_details(), "latency_ms": round(per_ticket_ms, 2)},
            )
            if result.usable:
                record_event(
                    ticket_id=ticket.pk,
                    stage=AuditEvent.Stage.RETRIEVAL,
                    action="retrieval.done",
                    actor_type=SYSTEM,
                    actor=ACTOR,
                    details=result.retrieval_details(),
                )
            _after_commit_enqueue(PipelineStage.MODEL, ticket.pk)


# --- stage 2: the model --------------------------------------------------------------------------


def run_model(ticket_id: int) -> None:
    """Decide category, priority and a cited suggestion: retrieval evidence, plus the model where it helps."""
    from retrieval.label_services import decision_policy

    started = time.perf_counter()
    tickets, token = claim(PipelineStage.MODEL, [ticket_id])
    if not tickets:
        return
    ticket = tickets[0]
    if _gave_up(ticket):
        fail_ticket(ticket.pk, "the model stage failed repeatedly")
        return
    context = ticket.pipeline_context
    neighbours = [Neighbour(**item) for item in context.get("neighbours", [])]
    label_probs: dict[str, float] | None = context.get("label_probs")
    taxonomy = current_taxonomy()
    verdict: ModelVerdict | None = None
    draft: ModelVerdict | None = None
    policy = decision_policy()
    base = decide_category(
        neighbours=neighbours,
        label_probs=label_probs,
        model_category=None,
        allowed=taxonomy.categories,
        policy=policy,
    )
    consult = context.get("usable") and (
        settings.PIPELINE_USE_MODEL == "always"
        or (settings.PIPELINE_USE_MODEL == "auto" and should_consult_model(decision=base, policy=policy))
    )
    if consult:
        # No database connection is held while the model thinks (it may take seconds).
        if not connection.in_atomic_block:
            connection.close()
        backend = get_backend()
        verdict = ask_model(
            backend=backend,
            ticket_text=context["text"],
            neighbours=neighbours,
            taxonomy=taxonomy,
            candidates=_candidates(neighbours, label_probs),
            company=settings.COMPANY_NAME,
            samples=settings.LLM_SAMPLES,
            pricing=pricing(),
        )
        if settings.LLM_DRAFT_REPLIES and verdict.ok and neighbours:
            draft = draft_reply(
                backend=backend,
                ticket_text=context["text"],
                neighbours=neighbours,
                company=settings.COMPANY_NAME,
                pricing=pricing(),
            )
    decision = (
        decide_category(
            neighbours=neighbours,
            label_probs=label_probs,
            model_category=verdict.category if verdict.ok else None,
            model_consulted=True,
            allowed=taxonomy.categories,
            policy=policy,
        )
        if verdict is not None
        else base
    )
    resolution, citations = _suggested_resolution(decision.category, neighbours, verdict, draft)
    calls = [*(verdict.calls if verdict else ()), *(draft.calls if draft else ())]
    degraded = verdict is not None and not verdict.ok
    category = Category.objects.filter(name=decision.category).select_related("default_team").first()
    # A ticket that tries to steer the model does not get to pick its own priority through it.
    model_priority = (
        verdict.priority if verdict is not None and verdict.ok and not context.get("injection") else ""
    )
    priority = model_priority or (category.default_priority if category else "")
    with transaction.atomic():
        if not advance(ticket, token, to_stage=PipelineStage.OUTPUT):
            return
        suggestion = Suggestion.objects.create(
            ticket=ticket,
            category=category,
            team=category.default_team if category else None,
            priority=priority,
            confidence=min(1.0, max(0.0, decision.confidence)),
            resolution_text=resolution,
            citations=citations,
            backend=calls[0].backend if calls else "",
            model_name=calls[0].model if calls else "",
            prompt_version=calls[0].prompt_version if calls else "",
            degraded=degraded,
            model_used=verdict is not None and verdict.ok,
            evidence={**decision.evidence, "source": decision.source, "model": _verdict_details(verdict)},
        )
        _record_calls(ticket.pk, calls)
        record_event(
            ticket_id=ticket.pk,
            stage=AuditEvent.Stage.MODEL,
            action="model.degraded" if degraded else "model.decided",
            actor_type=SYSTEM,
            actor=ACTOR,
            details={
                "suggestion_id": suggestion.pk,
                "category": decision.category,
                "priority": priority,
                "confidence": round(suggestion.confidence, 4),
                "source": decision.source,
                "model_consulted": verdict is not None,
                "degraded": degraded,
                "error": verdict.error if verdict is not None else "",
                "backend": suggestion.backend,
                "model": suggestion.model_name,
                "prompt_version": suggestion.prompt_version,
                "prompt_tokens": sum(call.prompt_tokens for call in calls),
                "completion_tokens": sum(call.completion_tokens for call in calls),
                "citations": citations,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        webhook_emit(
            event="suggestion.ready",
            ticket_id=ticket.pk,
            payload={
                "suggestion_id": suggestion.pk,
                "confidence": suggestion.confidence,
                "category": decision.category,
                "team": category.default_team.name if category else None,
                "priority": priority,
                "degraded": degraded,
                "citations": citations,
            },
        )
        _after_commit_enqueue(PipelineStage.OUTPUT, ticket.pk)


def _candidates(neighbours: Sequence[Neighbour], label_probs: dict[str, float] | None) -> list[str]:
    """The categories offered to the model: what retrieval and the classifier found plausible."""
    ranked = sorted((label_probs or {}).items(), key=lambda item: -item[1])
    names = [name for name, _ in ranked[:3]] + [n.category for n in neighbours]
    return list(dict.fromkeys(name for name in names if name))


def _suggested_resolution(
    category: str | None,
    neighbours: Sequence[Neighbour],
    verdict: ModelVerdict | None,
    draft: ModelVerdict | None,
) -> tuple[str, list[dict[str, Any]]]:
    """The suggested reply and the retrieved tickets it rests on (never one that was not retrieved)."""
    by_id = {n.doc_id: n for n in neighbours}
    if draft is not None and draft.draft and draft.draft_citations:
        cited = [by_id[doc_id] for doc_id in draft.draft_citations if doc_id in by_id]
        return draft.draft, [{"ticket_id": n.doc_id, "score": round(n.score, 4)} for n in cited]
    chosen = None
    if verdict is not None and verdict.best_example in by_id:
        chosen = by_id[verdict.best_example]
    if chosen is None or (category and chosen.category != category):
        chosen = next((n for n in neighbours if n.category == category and n.resolution), None)
    if chosen is None:
        return "", []
    supporting = [n for n in neighbours if n is not chosen and n.category == chosen.category][:2]
    cited = [chosen, *supporting]
    return chosen.resolution, [{"ticket_id": n.doc_id, "score": round(n.score, 4)} for n in cited]


def _verdict_details(verdict: ModelVerdict | None) -> dict[str, Any] | None:
    if verdict is None:
        return None
    return {
        "category": verdict.category,
        "priority": verdict.priority,
        "best_example": verdict.best_example,
        "votes": dict(verdict.votes),
        "unavailable": verdict.unavailable,
        "error": verdict.error,
    }


def _record_calls(ticket_id: int, calls: Sequence[CallRecord]) -> None:
    ModelCall.objects.bulk_create(
        ModelCall(
            ticket_id=ticket_id,
            purpose=call.purpose,
            backend=call.backend,
            model_name=call.model,
            prompt_version=call.prompt_version,
            prompt_tokens=call.prompt_tokens,
            completion_tokens=call.completion_tokens,
            latency_ms=call.latency_ms,
            outcome=call.outcome,
            error=call.error,
            cost_usd=call.cost_usd,
            energy_wh=call.energy_wh,
        )
        for call in calls
    )


def current_taxonomy() -> Taxonomy:
    categories = list(Category.objects.select_related("default_team").order_by("name"))
    return Taxonomy(
        categories=tuple(c.name for c in categories),
        teams=tuple(Team.objects.order_by("name").values_list("name", flat=True)),
        team_of_category={c.name: c.default_team.name for c in categories},
    )


# --- stage 3: output processing ------------------------------------------------------------------


def run_output(ticket_id: int) -> None:
    """Route (rules, then the team's threshold), set priority and due time, notify, update status."""
    started = time.perf_counter()
    tickets, token = claim(PipelineStage.OUTPUT, [ticket_id])
    if not tickets:
        return
    ticket = tickets[0]
    if _gave_up(ticket):
        fail_ticket(ticket.pk, "routing failed repeatedly")
        return
    suggestion = ticket.suggestions.select_related("category__default_team").first()
    context = ticket.pipeline_context
    failed_reason = (
        ""
        if context.get("usable")
        else "the input could not be used: " + "; ".join(context.get("problems", []))
    )
    outcome = routing.route(
        ticket=ticket,
        text=context.get("text", ""),
        category=suggestion.category if suggestion else None,
        priority=suggestion.priority if suggestion else "",
        confidence=suggestion.confidence if suggestion else 0.0,
        very_negative=bool(context.get("negative")),
        failed_reason=failed_reason,
    )
    to_status = TicketStatus.NEEDS_TRIAGE if outcome.to_triage else TicketStatus.ROUTED
    with transaction.atomic():
        if not advance(
            ticket,
            token,
            to_stage=PipelineStage.DONE,
            team=outcome.team,
            category=outcome.category,
            priority=outcome.priority,
            due_at=outcome.due_at,
            escalated=outcome.escalated,
            auto_routed=not outcome.to_triage,
        ):
            return
        record_event(
            ticket_id=ticket.pk,
            stage=AuditEvent.Stage.ROUTING,
            action="routing.triage" if outcome.to_triage else "routing.routed",
            actor_type=SYSTEM,
            actor=ACTOR,
            details={
                **outcome.details(),
                "confidence": suggestion.confidence if suggestion else None,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        ticket_transition(ticket_id=ticket.pk, to_status=to_status, stage="routing", actor=ACTOR)
        webhook_emit(
            event=f"ticket.{to_status}",
            ticket_id=ticket.pk,
            payload={
                "status": to_status,
                "team": outcome.team.name if outcome.team else None,
                "category": outcome.category.name if outcome.category else None,
                "priority": outcome.priority,
                "confidence": suggestion.confidence if suggestion else None,
                "auto_routed": not outcome.to_triage,
                "reason": "; ".join(outcome.reasons),
            },
        )


# --- failure and recovery ------------------------------------------------------------------------


def fail_ticket(ticket_id: int, error: str) -> None:
    """Give up on a ticket: it goes to human triage with the error recorded (never lost)."""
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().filter(pk=ticket_id).first()
        if ticket is None or ticket.stage in (PipelineStage.DONE, PipelineStage.FAILED):
            return
        failed_in = ticket.stage
        Ticket.objects.filter(pk=ticket_id).update(
            stage=PipelineStage.FAILED,
            stage_started_at=None,
            pipeline_error=error[:2000],
            updated_at=timezone.now(),
        )
        record_event(
            ticket_id=ticket_id,
            stage=AuditEvent.Stage.SYSTEM,
            action="pipeline.failed",
            actor_type=SYSTEM,
            actor=ACTOR,
            details={"stage": failed_in, "error": error[:2000]},
        )
        if ticket.status in (TicketStatus.RECEIVED, TicketStatus.PROCESSING):
            ticket_transition(
                ticket_id=ticket_id, to_status=TicketStatus.NEEDS_TRIAGE, stage="system", actor=ACTOR
            )
            webhook_emit(
                event="ticket.needs_triage",
                ticket_id=ticket_id,
                payload={"status": TicketStatus.NEEDS_TRIAGE, "auto_routed": False, "reason": error[:500]},
            )


def sweep_stuck_tickets(*, limit: int = 500) -> int:
    """Re-enqueue tickets that wait or sit in a stage for too long (a lost message, a killed worker)."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.PIPELINE_STAGE_TIMEOUT_SECONDS)
    forgotten = now - timedelta(seconds=settings.PIPELINE_REQUEUE_AFTER_SECONDS)
    in_flight = [PipelineStage.QUEUED, PipelineStage.INPUT, PipelineStage.MODEL, PipelineStage.OUTPUT]
    stuck = (
        Ticket.objects.filter(stage__in=in_flight, status__in=IN_PIPELINE)
        .filter(Q(stage_started_at__lt=stale) | Q(stage_started_at__isnull=True, updated_at__lt=forgotten))
        .order_by("updated_at")
        .values_list("pk", "stage")[:limit]
    )
    count = 0
    for ticket_id, stage in stuck:
        stage = PipelineStage.INPUT if stage == PipelineStage.QUEUED else stage
        enqueue_stage(stage, ticket_id)
        count += 1
    if count:
        logger.warning("sweeper re-enqueued %d stuck tickets", count)
    return count


# --- helpers -------------------------------------------------------------------------------------


def _after_commit_enqueue(stage: str, ticket_id: int) -> None:
    transaction.on_commit(lambda: enqueue_stage(stage, ticket_id))


__all__ = [
    "claim",
    "enqueue_ticket",
    "fail_ticket",
    "run_input",
    "run_model",
    "run_output",
    "sweep_stuck_tickets",
]

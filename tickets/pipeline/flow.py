"""The ticket pipeline, top to bottom: input processing -> the model -> output processing.

Each stage is a Celery task on its own queue that takes a ticket id; the stages, their queues, tasks
and order are the table in :mod:`tickets.pipeline.stages`, and the stages' own work is in
:mod:`~tickets.pipeline.input`, :mod:`~tickets.pipeline.model` and :mod:`~tickets.pipeline.output`.
The contract of every stage:

1. **Claim** the ticket, and up to ``PIPELINE_BATCH_SIZE`` others waiting for the same stage, with one
   conditional UPDATE (``stage`` is this stage and nobody holds it, or the holder's claim is older
   than ``PIPELINE_STAGE_TIMEOUT_SECONDS``). No claim: the stage is done or in other hands, so the
   task does nothing. Re-running a finished stage is therefore harmless.
2. **Work** without a transaction open (and, around the model call, without a database connection).
3. **Advance** in one transaction: move ``stage`` (and ``status``) on, but only if our claim still
   holds and nobody changed the ticket's status meanwhile, and write the stage's results and audit
   events with it. A worker that lost its claim writes nothing.
4. **Enqueue** the next stage after the commit.

A stage that fails hands its claims back, so the retry takes them at once; a ticket claimed more
than ``PIPELINE_MAX_ATTEMPTS`` times, or whose stage fails for good, lands in human triage with its
error. A worker killed mid-stage leaves a stale claim, and a broker restart loses messages: the
sweeper (:func:`sweep_stuck_tickets`, run by beat) re-enqueues such tickets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from tickets.audit import record_event, record_events_many
from tickets.models import (
    ALLOWED_TRANSITIONS,
    AuditEvent,
    PipelineStage,
    RoutingRule,
    Suggestion,
    Ticket,
    TicketStatus,
)
from tickets.pipeline import input as inputs
from tickets.pipeline import model as decisions
from tickets.pipeline import output as routing
from tickets.pipeline import screening, shadowing, stages, starter
from tickets.pipeline.claimed_update import update_claimed
from tickets.pipeline.language import unsupported_language_reason
from tickets.services.lifecycle import ticket_transition
from tickets.services.webhooks import webhook_emit, webhook_subscriptions

logger = logging.getLogger(__name__)

IN_PIPELINE = (TicketStatus.RECEIVED, TicketStatus.PROCESSING)
SYSTEM = AuditEvent.ActorType.SYSTEM
ACTOR = "pipeline"


# --- entry point ---------------------------------------------------------------------------------


def enqueue_ticket(ticket_id: int) -> None:
    """Start the pipeline for a saved ticket once the surrounding transaction commits. A broker that
    fails then is logged, not raised: the ticket is saved, and the sweeper starts it later."""
    enqueue_tickets([ticket_id])


def enqueue_tickets(ticket_ids: Sequence[int]) -> None:
    """:func:`enqueue_ticket` for many saved tickets: one message per ``PIPELINE_BATCH_SIZE`` of them,
    since each stage claims and works in batches anyway; with ``PIPELINE_ENQUEUE_LINGER_MS``, together
    with the other requests' tickets of the next few milliseconds (:mod:`tickets.pipeline.starter`)."""
    ids = list(ticket_ids)

    def start_pipeline() -> None:  # a named function: Django logs a robust callback's failure by its name
        starter.start(ids, send=_start_first_stage)

    if ids:
        transaction.on_commit(start_pipeline, robust=True)


def _start_first_stage(ticket_ids: Sequence[int]) -> None:
    enqueue_batches(stages.FIRST, ticket_ids)


def enqueue_stage(stage: str, ticket_id: int, others: Sequence[int] = ()) -> None:
    """Send the ticket (with ``others`` of the same batch) to ``stage``'s task, by the task's name (the
    stage table's), so this module needs no tasks module; it goes to the stage's own queue
    (CELERY_TASK_ROUTES)."""
    args = (ticket_id, list(others)) if others else (ticket_id,)
    current_app.signature(stages.spec(stage).task, args=args).apply_async()


def enqueue_batches(stage: str, ticket_ids: Sequence[int]) -> None:
    """One message per ``PIPELINE_BATCH_SIZE`` of ``ticket_ids`` to ``stage``."""
    size = settings.PIPELINE_BATCH_SIZE
    for start in range(0, len(ticket_ids), size):
        first, *others = ticket_ids[start : start + size]
        enqueue_stage(stage, first, others)


# --- claims --------------------------------------------------------------------------------------


def _waiting(stage: str) -> Q:
    """Tickets this stage may claim: waiting for it, or held by a claim that has gone stale."""
    stale = timezone.now() - timedelta(seconds=settings.PIPELINE_STAGE_TIMEOUT_SECONDS)
    waiting = Q(stage=stage, stage_started_at__isnull=True) | Q(stage=stage, stage_started_at__lt=stale)
    if stage == stages.FIRST:
        waiting |= Q(stage=PipelineStage.QUEUED)
    # Only tickets still being processed: never a resolved or imported one.
    return waiting & Q(status__in=IN_PIPELINE)


def claim(stage: str, ticket_ids: Sequence[int]) -> tuple[list[Ticket], Any]:
    """Claim those of ``ticket_ids`` that wait for ``stage``; returns them and the claim's token."""
    token = timezone.now()
    if not ticket_ids:
        return [], token
    Ticket.objects.filter(_waiting(stage), pk__in=ticket_ids).update(
        stage=stage, stage_started_at=token, pipeline_attempts=F("pipeline_attempts") + 1, updated_at=token
    )
    claimed = Ticket.objects.filter(pk__in=ticket_ids, stage=stage, stage_started_at=token)
    return list(claimed.select_related("category", "team")), token


def waiting_ids(stage: str, *, first: int, limit: int) -> list[int]:
    """``first`` and up to ``limit - 1`` other tickets waiting for ``stage``, to process as one batch;
    none when ``first`` no longer waits (another task's batch took it: one query, then nothing to do)."""
    if not Ticket.objects.filter(_waiting(stage), pk=first).exists():
        return []
    return [first, *_oldest_waiting(stage, exclude=[first], limit=limit - 1)]


def _oldest_waiting(stage: str, *, exclude: Sequence[int], limit: int) -> list[int]:
    if limit <= 0:
        return []
    waiting = Ticket.objects.filter(_waiting(stage)).exclude(pk__in=list(exclude)).order_by("pk")
    return list(waiting.values_list("pk", flat=True)[:limit])


def claim_batch(stage: str, *, first: int, others: Sequence[int] = ()) -> tuple[list[Ticket], Any]:
    """Claim ``first`` and other tickets waiting for ``stage`` (up to PIPELINE_BATCH_SIZE): ``others``
    when the message names its batch (claimed as named, topped up with the oldest waiting ones when
    it is short: the starter's messages carry the tickets of a few milliseconds, and a short batch
    costs its per-batch queries, commit and embedding call for fewer tickets), else the oldest
    waiting ones. A ticket claimed more than PIPELINE_MAX_ATTEMPTS times goes to triage instead of
    being tried again."""
    limit = settings.PIPELINE_BATCH_SIZE
    if others:
        ids = [first, *others][:limit]
        ids += _oldest_waiting(stage, exclude=ids, limit=limit - len(ids))
    else:
        ids = waiting_ids(stage, first=first, limit=limit)
    tickets, token = claim(stage, ids)
    for ticket in tickets:
        if ticket.pipeline_attempts > settings.PIPELINE_MAX_ATTEMPTS:
            fail_ticket(ticket.pk, f"the {stage} stage failed {ticket.pipeline_attempts - 1} times")
    return [t for t in tickets if t.pipeline_attempts <= settings.PIPELINE_MAX_ATTEMPTS], token


def advance(
    ticket: Ticket, token: Any, *, to_stage: str, to_status: str = "", **fields: Any
) -> list[dict[str, Any]]:
    """Move ``ticket`` on from its claimed stage (and to ``to_status``) if the claim still holds and
    nobody changed its status meanwhile; in the caller's transaction. Returns the audit event of the
    status change ([] when the status stays) or raises :class:`Superseded`."""
    now = timezone.now()
    status_fields, status_events = _status_change(ticket, to_status, now)
    fields.update(status_fields)
    moved = Ticket.objects.filter(
        pk=ticket.pk, stage=ticket.stage, stage_started_at=token, status=ticket.status
    ).update(stage=to_stage, stage_started_at=None, pipeline_attempts=0, updated_at=now, **fields)
    if moved != 1:
        raise Superseded(f"ticket {ticket.pk} was taken over or changed while in {ticket.stage}")
    return status_events


class Superseded(Exception):
    """Our claim on a ticket no longer holds (another worker took over, or an agent changed it)."""


def _status_change(ticket: Ticket, to_status: str, now: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The fields and the audit event of moving ``ticket`` to ``to_status`` (none to keep its status);
    raises :class:`Superseded` for a transition its status does not allow."""
    if not to_status or to_status == ticket.status:
        return {}, []
    if to_status not in ALLOWED_TRANSITIONS[TicketStatus(ticket.status)]:
        raise Superseded(f"ticket {ticket.pk} cannot go from {ticket.status} to {to_status}")
    event = _event(
        stages.spec(ticket.stage).audit_stage, f"status.{to_status}", {"from": ticket.status, "to": to_status}
    )
    return {"status": to_status, "status_changed_at": now}, [event]


Move = tuple[Ticket, str, dict[str, Any]]
"""A claimed ticket, the status it goes to ("" to keep it) and the fields its stage sets."""


def advance_batch(moves: Sequence[Move], token: Any, *, to_stage: str) -> dict[int, list[dict[str, Any]]]:
    """:func:`advance` for a stage's batch, in the caller's transaction: on PostgreSQL one UPDATE per
    set of fields changed (usually one for the batch) instead of one per ticket. Returns the audit
    events of the status changes of the tickets that moved; those missing were superseded."""
    if connection.vendor != "postgresql":
        moved: dict[int, list[dict[str, Any]]] = {}
        for ticket, to_status, fields in moves:
            try:
                moved[ticket.pk] = advance(ticket, token, to_stage=to_stage, to_status=to_status, **fields)
            except Superseded:
                continue
        return moved
    now = timezone.now()
    planned: dict[int, list[dict[str, Any]]] = {}
    shapes: dict[tuple[str, ...], list[tuple[Ticket, dict[str, Any]]]] = {}
    for ticket, to_status, fields in moves:
        try:
            status_fields, status_events = _status_change(ticket, to_status, now)
        except Superseded:
            continue  # as advance
        own = {**fields, **status_fields}
        planned[ticket.pk] = status_events
        shapes.setdefault(tuple(sorted(own)), []).append((ticket, own))
    common = {"stage": to_stage, "stage_started_at": None, "pipeline_attempts": 0, "updated_at": now}
    updated: set[int] = set()
    for rows in shapes.values():
        updated |= update_claimed(rows, token=token, set_all=common)
    return {pk: events for pk, events in planned.items() if pk in updated}


@contextmanager
def releasing_on_error(tickets: Sequence[Ticket], token: Any) -> Iterator[None]:
    """Hand the claim on ``tickets`` back if the work fails, so a retry can take them at once instead
    of waiting for the claim to go stale."""
    try:
        yield
    except BaseException:
        try:
            Ticket.objects.filter(pk__in=[t.pk for t in tickets], stage_started_at=token).update(
                stage_started_at=None
            )
        except Exception:  # the database itself is what failed: the claim goes stale instead
            logger.warning("could not release the claim on %d tickets", len(tickets), exc_info=True)
        raise


def _event(stage: str, action: str, details: dict[str, Any]) -> dict[str, Any]:
    return {"stage": stage, "action": action, "actor_type": SYSTEM, "actor": ACTOR, "details": details}


# --- stage 1: input processing -------------------------------------------------------------------


def run_input(ticket_id: int, others: Sequence[int] = ()) -> None:
    """Normalise, check, flag injection, find duplicates, redact, embed and retrieve, for a batch."""
    started = time.perf_counter()
    tickets, token = claim_batch(PipelineStage.INPUT, first=ticket_id, others=others)
    if not tickets:
        return
    with releasing_on_error(tickets, token):
        _finish_input(tickets, token, started)


def _finish_input(tickets: list[Ticket], token: Any, started: float) -> None:
    results = inputs.process_batch(tickets)
    per_ticket_ms = (time.perf_counter() - started) * 1000 / max(1, len(tickets))
    moved: list[int] = []
    events: dict[int, list[dict[str, Any]]] = {}
    with transaction.atomic():  # one commit for the batch
        advanced = advance_batch(
            [(ticket, TicketStatus.PROCESSING, results[ticket.pk].ticket_fields()) for ticket in tickets],
            token,
            to_stage=_next(PipelineStage.INPUT),
        )
        for ticket in tickets:
            result = results[ticket.pk]
            if ticket.pk not in advanced:
                continue
            status_events = advanced[ticket.pk]
            input_event = _event(
                AuditEvent.Stage.INPUT,
                "input.processed" if result.usable else "input.invalid",
                {**result.input_details(), "latency_ms": round(per_ticket_ms, 2)},
            )
            retrieval_event = _event(AuditEvent.Stage.RETRIEVAL, "retrieval.done", result.retrieval_details())
            events[ticket.pk] = [*status_events, input_event, *([retrieval_event] if result.usable else [])]
            moved.append(ticket.pk)
        record_events_many(events_by_ticket=events)
        _after_commit_enqueue(_next(PipelineStage.INPUT), moved)


# --- stage 2: the model --------------------------------------------------------------------------


def run_model(ticket_id: int, others: Sequence[int] = ()) -> None:
    """Decide category, priority and a cited suggestion: retrieval evidence, plus the model where it helps.

    Tickets that retrieval and the classifier decide confidently are done as a batch; of those that
    need the model, this task keeps one and hands the others back to their own tasks, so several
    workers can wait on the model server at once.
    """
    tickets, token = claim_batch(PipelineStage.MODEL, first=ticket_id, others=others)
    if not tickets:
        return
    with releasing_on_error(tickets, token):
        _decide_batch(tickets, token, first=ticket_id)


def _decide_batch(tickets: list[Ticket], token: Any, *, first: int) -> None:
    base = decisions.DecisionSetup.current()
    setups: dict[Any, decisions.DecisionSetup] = {}
    for ticket in tickets:
        version = ticket.pipeline_context.get("decision_model_id")
        if version not in setups:
            setups[version] = base.for_version(version) if version else base
    setup_of = {ticket.pk: setups[ticket.pipeline_context.get("decision_model_id")] for ticket in tickets}
    plans = {ticket.pk: decisions.plan(ticket.pipeline_context, setup_of[ticket.pk]) for ticket in tickets}
    needing_model = [ticket for ticket in tickets if plans[ticket.pk].consult]
    if len(needing_model) > 1:
        keep = next((t for t in needing_model if t.pk == first), needing_model[0])
        handed_back = [t.pk for t in needing_model if t is not keep]
        Ticket.objects.filter(pk__in=handed_back, stage_started_at=token).update(
            stage_started_at=None, pipeline_attempts=F("pipeline_attempts") - 1
        )
        for other in handed_back:
            enqueue_stage(PipelineStage.MODEL, other)
        tickets = [t for t in tickets if t.pk not in handed_back]
    # Those decided without the model first, in one commit; then the one that waits for the model.
    for group in (
        [t for t in tickets if not plans[t.pk].consult],
        [t for t in tickets if plans[t.pk].consult],
    ):
        outcomes = {}
        started = time.perf_counter()
        evidence = decisions.answer_evidence_for(
            [(t.pipeline_context, plans[t.pk], t.text_embedding) for t in group]
        )
        shared_ms = (time.perf_counter() - started) * 1000 / max(1, len(group))  # each ticket's part
        for ticket in group:
            started = time.perf_counter()
            if plans[ticket.pk].consult and not connection.in_atomic_block:
                connection.close()  # no database connection is held while the model thinks
            outcome = decisions.decide(
                ticket.pipeline_context,
                plans[ticket.pk],
                setup_of[ticket.pk],
                ticket_id=ticket.pk,
                evidence=evidence,
            )
            outcomes[ticket.pk] = (outcome, shared_ms + (time.perf_counter() - started) * 1000)
        with transaction.atomic():
            events: dict[int, list[dict[str, Any]]] = {}
            decided: dict[int, tuple[Ticket, Suggestion]] = {}
            moved = _save_decisions(group, token, outcomes, events=events, decided=decided)
            for event in record_events_many(events_by_ticket=events):
                ticket, suggestion = decided[event.ticket_id]
                shadowing.stamp(ticket=ticket, suggestion=suggestion, audit_event=event)
            _after_commit_enqueue(_next(PipelineStage.MODEL), moved)
            shadowing.shadow_after_commit([ticket for ticket in group if ticket.pk in moved])


def _save_decisions(
    group: Sequence[Ticket],
    token: Any,
    outcomes: Mapping[int, tuple[decisions.DecisionOutcome, float]],
    *,
    events: dict[int, list[dict[str, Any]]],
    decided: dict[int, tuple[Ticket, Suggestion]],
) -> list[int]:
    """Save the decisions and move the tickets on (each one's audit event into ``events`` and its
    suggestion into ``decided``, which the caller records and stamps for the batch); returns the ids
    moved, without those whose claim was superseded."""
    advanced = advance_batch([(t, "", {}) for t in group], token, to_stage=_next(PipelineStage.MODEL))
    kept = [t for t in group if t.pk in advanced]
    saved = decisions.save_suggestions([(t, outcomes[t.pk][0]) for t in kept])
    subscriptions = webhook_subscriptions()
    for ticket, suggestion in zip(kept, saved, strict=True):
        outcome, elapsed_ms = outcomes[ticket.pk]
        events[ticket.pk] = [
            _event(
                AuditEvent.Stage.MODEL,
                "model.degraded" if outcome.degraded else "model.decided",
                {
                    "suggestion_id": suggestion.pk,
                    "decision_model_id": ticket.pipeline_context.get("decision_model_id"),
                    **outcome.audit_details(),
                    "latency_ms": round(elapsed_ms, 2),
                },
            )
        ]
        decided[ticket.pk] = (ticket, suggestion)
        webhook_emit(
            event="suggestion.ready",
            ticket_id=ticket.pk,
            payload=outcome.webhook_payload(suggestion),
            subscriptions=subscriptions,
        )
    return [t.pk for t in kept]


# --- stage 3: output processing ------------------------------------------------------------------


def run_output(ticket_id: int, others: Sequence[int] = ()) -> None:
    """Route (rules, then the team's threshold), set priority and due time, notify, update status."""
    tickets, token = claim_batch(PipelineStage.OUTPUT, first=ticket_id, others=others)
    if not tickets:
        return
    suggestions = {
        s.ticket_id: s
        for s in Suggestion.objects.filter(ticket__in=tickets).select_related("category__default_team")
    }
    rules = routing.active_rules()
    minimum = settings.LANGUAGE_MIN_HISTORY_TICKETS
    languages = routing.history_language_counts() if minimum > 0 else {}
    with releasing_on_error(tickets, token), transaction.atomic():  # one commit for the batch
        routed: list[tuple[Ticket, routing.RoutingOutcome, float]] = []
        for ticket in tickets:
            started = time.perf_counter()
            language_reason = unsupported_language_reason(
                language=ticket.language, history_counts=languages, minimum=minimum
            )
            outcome = _route_one(ticket, suggestions.get(ticket.pk), rules, language_reason)
            routed.append((ticket, outcome, time.perf_counter() - started))
        _advance_routed(routed, token, suggestions)


def _route_one(
    ticket: Ticket, suggestion: Suggestion | None, rules: list[RoutingRule], language_reason: str
) -> routing.RoutingOutcome:
    context = ticket.pipeline_context
    problems = "; ".join(context.get("problems", []))
    return routing.route(
        ticket=ticket,
        text=context.get("text", ""),
        category=suggestion.category if suggestion else None,
        priority=suggestion.priority if suggestion else "",
        confidence=suggestion.confidence if suggestion else 0.0,
        very_negative=bool(context.get("negative")),
        failed_reason="" if context.get("usable") else f"the input could not be used: {problems}",
        injection_reason=screening.triage_reason(context),
        language_reason=language_reason,
        rules=rules,
    )


def _status_of(outcome: routing.RoutingOutcome) -> str:
    return TicketStatus.NEEDS_TRIAGE if outcome.to_triage else TicketStatus.ROUTED


def _advance_routed(
    routed: Sequence[tuple[Ticket, routing.RoutingOutcome, float]],
    token: Any,
    suggestions: Mapping[int, Suggestion],
) -> None:
    """Move the routed batch on in the caller's transaction, with its audit events and webhooks."""
    started = time.perf_counter()
    advanced = advance_batch(
        [
            (
                ticket,
                _status_of(outcome),
                {
                    "team": outcome.team,
                    "category": outcome.category,
                    "priority": outcome.priority,
                    "due_at": outcome.due_at,
                    "escalated": outcome.escalated,
                    "auto_routed": not outcome.to_triage,
                },
            )
            for ticket, outcome, _ in routed
        ],
        token,
        to_stage=_next(PipelineStage.OUTPUT),
    )
    shared = (time.perf_counter() - started) / max(1, len(routed))  # each ticket's part of the write
    subscriptions = webhook_subscriptions()
    events: dict[int, list[dict[str, Any]]] = {}
    for ticket, outcome, seconds in routed:
        if ticket.pk not in advanced:
            continue  # superseded
        suggestion = suggestions.get(ticket.pk)
        confidence = suggestion.confidence if suggestion else None
        latency_ms = round((seconds + shared) * 1000, 2)
        routing_event = _event(
            AuditEvent.Stage.ROUTING,
            "routing.triage" if outcome.to_triage else "routing.routed",
            {**outcome.details(), "confidence": confidence, "latency_ms": latency_ms},
        )
        events[ticket.pk] = [routing_event, *advanced[ticket.pk]]
        to_status = _status_of(outcome)
        webhook_emit(
            event=f"ticket.{to_status}",
            ticket_id=ticket.pk,
            payload={
                "status": to_status,
                "team": outcome.team.name if outcome.team else None,
                "category": outcome.category.name if outcome.category else None,
                "priority": outcome.priority,
                "confidence": confidence,
                "auto_routed": not outcome.to_triage,
                "reason": "; ".join(outcome.reasons),
            },
            subscriptions=subscriptions,
        )
    record_events_many(events_by_ticket=events)


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
    stuck = (
        Ticket.objects.filter(stage__in=stages.IN_FLIGHT, status__in=IN_PIPELINE)
        .filter(Q(stage_started_at__lt=stale) | Q(stage_started_at__isnull=True, updated_at__lt=forgotten))
        .order_by("updated_at")
        .values_list("pk", "stage")[:limit]
    )
    by_stage: dict[str, list[int]] = {}
    for ticket_id, stage in stuck:
        by_stage.setdefault(stages.FIRST if stage == PipelineStage.QUEUED else stage, []).append(ticket_id)
    for stage, ids in by_stage.items():  # one message per batch: each stage claims batches
        enqueue_batches(stage, ids)
    count = sum(len(ids) for ids in by_stage.values())
    if count:
        logger.warning("sweeper re-enqueued %d stuck tickets", count)
    return count


# --- helpers -------------------------------------------------------------------------------------


def _next(stage: PipelineStage) -> PipelineStage:
    following = stages.spec(stage).next
    assert following is not None, f"{stage} is the end of the pipeline"
    return following


def _after_commit_enqueue(stage: str, ticket_ids: list[int]) -> None:
    """The batch's tickets that moved on, to ``stage`` after the commit: one message per batch."""
    if ticket_ids:
        transaction.on_commit(lambda: enqueue_batches(stage, ticket_ids))

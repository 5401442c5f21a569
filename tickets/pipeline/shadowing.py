"""Stamping each decision with its version, and shadow candidates deciding live tickets on the side.

After the active (or canary) version decided a ticket, :func:`stamp_and_shadow` records which version
that was (a ``DecisionStamp``, in the decision's transaction) and, once it commits, enqueues one
``tickets.shadow_decide`` task per shadow version on the ``shadow`` queue, for a stable
``MODEL_SHADOW_SHARE`` of tickets. :func:`run_shadow` decides the ticket again with the shadow's label
model and policy, from the evidence the input stage stored, and saves a ``ShadowDecision``: it never
touches the ticket, its suggestion, its audit trail or its webhooks. A label model shadow does not
consult the LLM, so its model cost is zero; its latency is its own.
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction

from tickets.decision_models import DecisionStamp, ShadowDecision
from tickets.models import AuditEvent, Suggestion, Ticket
from tickets.pipeline import stages
from tickets.pipeline.versions import live_versions, ticket_bucket

logger = logging.getLogger(__name__)


def stamp_and_shadow(*, ticket: Ticket, suggestion: Suggestion, audit_event: AuditEvent) -> None:
    """In the decision's transaction: the version's stamp, and the shadow tasks once it commits."""
    context = ticket.pipeline_context or {}
    version = context.get("decision_model_id")
    if version:
        DecisionStamp.objects.create(
            suggestion=suggestion,
            audit_event=audit_event,
            decision_model_id=version,
            canary=bool(context.get("canary")),
        )
    shadows = live_versions().shadows
    if not shadows or not context.get("usable") or ticket_bucket(ticket.pk) >= settings.MODEL_SHADOW_SHARE:
        return
    ticket_id = ticket.pk

    def enqueue_shadows() -> None:
        for shadow in shadows:
            current_app.signature(stages.SHADOW_TASK, args=(ticket_id, shadow.id)).apply_async()

    transaction.on_commit(enqueue_shadows, robust=True)


def run_shadow(ticket_id: int, decision_model_id: int) -> bool:
    """Decide ``ticket_id`` with shadow version ``decision_model_id``; False when there is nothing to do
    (already decided by it, no active decision yet, no evidence, the version unusable)."""
    import numpy as np

    from retrieval.label_versions import predict_with_version
    from tickets.decision_models import DecisionModel
    from tickets.pipeline import model as decisions

    if ShadowDecision.objects.filter(ticket_id=ticket_id, decision_model_id=decision_model_id).exists():
        return False
    ticket = Ticket.objects.filter(pk=ticket_id).first()
    shadow = DecisionModel.objects.filter(pk=decision_model_id).first()
    if ticket is None or shadow is None or not ticket.text_embedding:
        return False
    active = Suggestion.objects.filter(ticket_id=ticket_id).order_by("-created_at", "-pk").first()
    context: dict[str, Any] = dict(ticket.pipeline_context or {})
    started = time.perf_counter()
    vector = np.frombuffer(bytes(ticket.text_embedding), dtype=np.float32)[None, :]
    probs = predict_with_version(
        shadow.artefact_hash, texts=[str(context.get("text") or "")], embeddings=vector
    )
    if probs is None:
        logger.warning(
            "shadow version %d cannot be loaded: ticket %d not shadowed", decision_model_id, ticket_id
        )
        return False
    context["label_probs"] = probs[0]
    setup = decisions.DecisionSetup.current().for_version(decision_model_id)
    decision = decisions.plan(context, setup).base
    category = setup.categories.get(decision.category or "")
    elapsed_ms = (time.perf_counter() - started) * 1000
    try:
        ShadowDecision.objects.create(
            ticket_id=ticket_id,
            decision_model_id=decision_model_id,
            active_suggestion=active,
            category=category,
            team=category.default_team if category else None,
            confidence=min(1.0, max(0.0, decision.confidence)),
            source=decision.source,
            latency_ms=round(elapsed_ms, 3),
            cost_usd=Decimal(0),
        )
    except IntegrityError:  # a redelivered task that ran twice at once: the first one stored it
        return False
    return True

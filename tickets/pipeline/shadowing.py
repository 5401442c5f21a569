"""Stamping each decision with its version, and shadow candidates deciding live tickets on the side.

After the active (or canary) version decided a ticket, :func:`stamp` records which version that was (a
``DecisionStamp``, in the decision's transaction) and, once the batch commits,
:func:`shadow_after_commit` enqueues one ``tickets.shadow_decide`` task per shadow version for the
batch's tickets (a stable ``MODEL_SHADOW_SHARE`` of them) on the ``shadow`` queue; a worker of that
queue alone holds it while live tickets wait (:mod:`tickets.pipeline.shadow_yield`). :func:`run_shadow`
decides them again, as a batch, with the shadow's label model and policy, from the evidence the input
stage stored, and saves ``ShadowDecision`` rows: it never touches the ticket, its suggestion, its audit
trail or its webhooks. A label model shadow does not
consult the LLM, so its model cost is zero; its latency is its own. An LLM shadow
(:mod:`tickets.pipeline.llm_shadow`) asks its own server about the tickets the active path consulted the
model on, its calls accounted apart (``ModelCall.shadow``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from decimal import Decimal

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery

from tickets.decision_models import DecisionModel, DecisionStamp, ShadowDecision
from tickets.models import AuditEvent, Suggestion, Ticket
from tickets.pipeline import stages
from tickets.pipeline.versions import live_versions, ticket_bucket

logger = logging.getLogger(__name__)


def stamp(*, ticket: Ticket, suggestion: Suggestion, audit_event: AuditEvent) -> None:
    """In the decision's transaction: which version made it (nothing without versions)."""
    context = ticket.pipeline_context or {}
    version = context.get("decision_model_id")
    details = audit_event.details if isinstance(audit_event.details, dict) else {}
    llm_version = details.get("llm_model_id")
    if version or llm_version:
        DecisionStamp.objects.create(
            suggestion=suggestion,
            audit_event=audit_event,
            decision_model_id=version or None,
            canary=bool(version and context.get("canary")),
            llm_model_id=llm_version or None,
            llm_canary=bool(llm_version and details.get("llm_canary")),
        )


def shadow_after_commit(tickets: Sequence[Ticket]) -> None:
    """One shadow task per shadow version for the batch's sampled, usable tickets, once it commits."""
    shadows = live_versions().shadows + live_versions(DecisionModel.Kind.LLM).shadows
    share = settings.MODEL_SHADOW_SHARE
    ids = [
        t.pk
        for t in tickets
        if (t.pipeline_context or {}).get("usable") and ticket_bucket(t.pk, "shadow") < share
    ]
    if not shadows or not ids:
        return

    def enqueue_shadows() -> None:
        queued_at = time.time()  # the bound of its wait for the live queues counts from here
        for shadow in shadows:
            current_app.signature(
                stages.SHADOW_TASK, args=(ids, shadow.id), kwargs={"queued_at": queued_at}
            ).apply_async()

    transaction.on_commit(enqueue_shadows, robust=True)


def run_shadow(ticket_ids: Sequence[int], decision_model_id: int) -> int:
    """Decide the tickets with shadow version ``decision_model_id``; how many decisions it stored (those
    it already decided, those without evidence, or all when the version is unusable, are skipped)."""
    shadow = DecisionModel.objects.filter(pk=decision_model_id).only("kind", "artefact_hash").first()
    if shadow is None:
        return 0
    waiting = Ticket.objects.filter(pk__in=ticket_ids).exclude(
        pk__in=ShadowDecision.objects.filter(
            ticket_id__in=ticket_ids, decision_model_id=decision_model_id
        ).values("ticket_id")
    )
    if shadow.kind == DecisionModel.Kind.LLM:
        from tickets.pipeline.llm_shadow import run_llm_shadow

        tickets = list(waiting.order_by("pk"))
        return run_llm_shadow(tickets, shadow, _active_suggestions([t.pk for t in tickets]))
    return _run_label_shadow(waiting, shadow)


def _run_label_shadow(waiting: QuerySet[Ticket], shadow: DecisionModel) -> int:
    """A label model version's decisions: one query for the tickets' evidence and active suggestions,
    one for the decisions (columns the decision needs only; BLAS on one thread, see below)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from retrieval.label_versions import load_version, predict_with_version
    from tickets.pipeline import model as decisions

    latest_suggestion = Suggestion.objects.filter(ticket_id=OuterRef("pk")).order_by("-created_at", "-pk")
    rows = [
        (pk, context or {}, embedding, suggestion)
        for pk, context, embedding, suggestion in waiting.order_by("pk").values_list(
            "pk", "pipeline_context", "text_embedding", Subquery(latest_suggestion.values("pk")[:1])
        )
        if embedding
    ]
    if not rows:
        return 0
    started = time.perf_counter()
    vectors = np.vstack([np.frombuffer(bytes(embedding), dtype=np.float32) for _, _, embedding, _ in rows])
    texts = [str(context.get("text") or "") for _, context, _, _ in rows]
    # A few small matrix products per batch: a second BLAS thread only waits for a core, and on a busy
    # machine its hand-offs cost more CPU than the products themselves.
    with threadpool_limits(limits=1, user_api="blas"):
        probs = predict_with_version(shadow.artefact_hash, texts=texts, embeddings=vectors)
    if probs is None:
        logger.warning("shadow version %d cannot be loaded: %d tickets not shadowed", shadow.pk, len(rows))
        return 0
    model = load_version(shadow.artefact_hash)  # cached: the one predict_with_version used
    setup = decisions.DecisionSetup.current().with_label_model(model)
    decided = [
        (pk, suggestion, decisions.plan({**context, "label_probs": label_probs}, setup).base)
        for (pk, context, _, suggestion), label_probs in zip(rows, probs, strict=True)
    ]
    per_ticket_ms = (time.perf_counter() - started) * 1000 / len(rows)
    created = ShadowDecision.objects.bulk_create(
        [
            ShadowDecision(
                ticket_id=pk,
                decision_model_id=shadow.pk,
                active_suggestion_id=suggestion,
                category=(category := setup.categories.get(decision.category or "")),
                team_id=category.default_team_id if category else None,
                confidence=min(1.0, max(0.0, decision.confidence)),
                source=decision.source,
                latency_ms=round(per_ticket_ms, 3),
                cost_usd=Decimal(0),
            )
            for pk, suggestion, decision in decided
        ],
        ignore_conflicts=True,  # a redelivered task running beside the first: one decision per ticket
    )
    return len(created)


def _active_suggestions(ticket_ids: list[int]) -> dict[int, int]:
    latest: dict[int, int] = {}
    for ticket_id, suggestion_id in (
        Suggestion.objects.filter(ticket_id__in=ticket_ids)
        .order_by("created_at", "pk")
        .values_list("ticket_id", "pk")
    ):
        latest[ticket_id] = suggestion_id
    return latest

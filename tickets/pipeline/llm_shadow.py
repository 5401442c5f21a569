"""An LLM candidate in shadow: it classifies the live tickets the active path sent to the model.

For each ticket of the batch that the active path consulted the model on (a ``classify`` call that is
not a shadow's), :func:`run_llm_shadow` asks the candidate's server, with its model and prompt, the same
question from the evidence the input stage stored, combines its answer with that evidence as the
active path would, and stores a ``ShadowDecision`` (category, confidence, latency, tokens, cost) and
the calls' ``ModelCall`` rows, tagged with the candidate and ``shadow``, so their cost is accounted
apart from the tickets' own. It never touches the ticket, its suggestion, its audit trail or its
webhooks, and it drafts nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.db import transaction

from inference_app.llm.types import CallRecord
from tickets.decision_models import DecisionModel, ShadowDecision
from tickets.models import ModelCall, Ticket
from tickets.pipeline import model as decisions
from tickets.pipeline.llm_versions import version_backend


def consulted_tickets(ticket_ids: Sequence[int]) -> set[int]:
    """Of ``ticket_ids``, those the active path asked the model to classify."""
    return set(
        ModelCall.objects.filter(ticket_id__in=ticket_ids, purpose="classify", shadow=False).values_list(
            "ticket_id", flat=True
        )
    )


def run_llm_shadow(tickets: Sequence[Ticket], shadow: DecisionModel, active: dict[int, int]) -> int:
    """Ask the candidate about ``tickets`` (those the active path consulted the model on); how many
    decisions it stored. ``active`` maps a ticket to its active suggestion."""
    built = version_backend(shadow.pk)
    consulted = consulted_tickets([t.pk for t in tickets])  # one query, not one per ticket
    chosen = [t for t in tickets if t.pk in consulted]
    if built is None or not chosen:
        return 0
    backend, prompt_name = built
    base = decisions.DecisionSetup.current()
    setups: dict[Any, decisions.DecisionSetup] = {}
    rows: list[tuple[ShadowDecision, list[CallRecord]]] = []
    for ticket in chosen:
        context = dict(ticket.pipeline_context or {})
        version = context.get("decision_model_id")
        if version not in setups:
            setups[version] = base.for_version(version) if version else base
        setup = setups[version]
        plan = decisions.plan(context, setup)
        started = time.perf_counter()
        verdict, decision = decisions.classify(
            backend,
            prompt_name=prompt_name,
            ticket_text=str(context.get("text") or ""),
            plan=plan,
            setup=setup,
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        category = setup.categories.get(decision.category or "")
        calls = list(verdict.calls)
        decided = ShadowDecision(
            ticket=ticket,
            decision_model=shadow,
            active_suggestion_id=active.get(ticket.pk),
            category=category,
            team=category.default_team if category else None,
            confidence=min(1.0, max(0.0, decision.confidence)),
            source=decision.source if verdict.ok else f"{decision.source} (model failed)",
            latency_ms=round(elapsed_ms, 3),
            prompt_tokens=sum(call.prompt_tokens for call in calls),
            completion_tokens=sum(call.completion_tokens for call in calls),
            cost_usd=Decimal(str(round(sum(call.cost_usd for call in calls), 8))),
        )
        rows.append((decided, calls))
    with transaction.atomic():
        created = ShadowDecision.objects.bulk_create(
            [decided for decided, _ in rows], ignore_conflicts=True
        )  # a redelivered task beside the first: one decision per ticket; its calls were made, so counted
        ModelCall.objects.bulk_create(
            _shadow_call(decided.ticket, call, shadow) for decided, calls in rows for call in calls
        )
    return len(created)


def _shadow_call(ticket: Ticket, call: CallRecord, shadow: DecisionModel) -> ModelCall:
    return ModelCall.of_call(call, ticket=ticket, decision_model_id=shadow.pk, shadow=True)

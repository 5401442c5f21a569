"""Stage 2 of the pipeline for one ticket: from retrieval evidence (and the model, where it helps) to
a decision and a cited suggestion.

``plan`` makes the decision retrieval and the calibrated classifier support on their own and says
whether the model should be asked; ``decide`` asks it if so and combines; ``save_suggestion``
writes the result and the accounting of every model call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from inference_app.llm.backends import get_backend, pricing
from inference_app.llm.classify import ModelVerdict, ask_model, draft_reply
from inference_app.llm.types import CallRecord, Neighbour, Taxonomy
from tickets.models import Category, ModelCall, Suggestion, Team, Ticket
from tickets.pipeline.policy import (
    CategoryDecision,
    DecisionPolicy,
    decide_category,
    policy_from_stats,
    should_consult_model,
)


@dataclass(frozen=True)
class DecisionSetup:
    """What every decision in a batch shares: the company's labels and the learned policy."""

    taxonomy: Taxonomy
    policy: DecisionPolicy
    categories: Mapping[str, Category]

    @classmethod
    def current(cls) -> DecisionSetup:
        categories = {c.name: c for c in Category.objects.select_related("default_team").order_by("name")}
        taxonomy = Taxonomy(
            categories=tuple(categories),
            teams=tuple(Team.objects.order_by("name").values_list("name", flat=True)),
            team_of_category={name: c.default_team.name for name, c in categories.items()},
        )
        return cls(taxonomy=taxonomy, policy=decision_policy(), categories=categories)


def decision_policy() -> DecisionPolicy:
    """The decision policy the current label model's history statistics support (defaults without one).
    Retrieval trains and serves the label model; what its statistics mean for decisions is decided here."""
    from retrieval.label_services import current_label_model

    weight = settings.LLM_DECISION_WEIGHT
    model = current_label_model()
    if model is None:
        return DecisionPolicy(model_weight=weight)
    return policy_from_stats(model.stats, model_weight=weight)


@dataclass(frozen=True)
class Plan:
    neighbours: list[Neighbour]
    label_probs: dict[str, float] | None
    base: CategoryDecision
    consult: bool


def plan(context: Mapping[str, Any], setup: DecisionSetup) -> Plan:
    neighbours = [Neighbour(**item) for item in context.get("neighbours", [])]
    label_probs: dict[str, float] | None = context.get("label_probs")
    base = decide_category(
        neighbours=neighbours,
        label_probs=label_probs,
        model_category=None,
        allowed=setup.taxonomy.categories,
        policy=setup.policy,
    )
    mode = settings.PIPELINE_USE_MODEL
    consult = bool(context.get("usable")) and (
        mode == "always" or (mode == "auto" and should_consult_model(decision=base, policy=setup.policy))
    )
    return Plan(neighbours=neighbours, label_probs=label_probs, base=base, consult=consult)


@dataclass
class DecisionOutcome:
    decision: CategoryDecision
    category: Category | None
    priority: str
    resolution: str
    citations: list[dict[str, Any]]
    verdict: ModelVerdict | None = None
    calls: list[CallRecord] = field(default_factory=list)

    @property
    def degraded(self) -> bool:
        """The model was wanted but gave no usable answer: decided from retrieval alone."""
        return self.verdict is not None and not self.verdict.ok

    @property
    def model_used(self) -> bool:
        return self.verdict is not None and self.verdict.ok

    def audit_details(self) -> dict[str, Any]:
        first = self.calls[0] if self.calls else None
        return {
            "category": self.decision.category,
            "priority": self.priority,
            "confidence": round(self.decision.confidence, 4),
            "source": self.decision.source,
            "model_consulted": self.verdict is not None,
            "degraded": self.degraded,
            "error": self.verdict.error if self.verdict is not None else "",
            "backend": first.backend if first else "",
            "model": first.model if first else "",
            "prompt_version": first.prompt_version if first else "",
            "prompt_tokens": sum(call.prompt_tokens for call in self.calls),
            "completion_tokens": sum(call.completion_tokens for call in self.calls),
            "citations": self.citations,
        }

    def webhook_payload(self, suggestion: Suggestion) -> dict[str, Any]:
        return {
            "suggestion_id": suggestion.pk,
            "confidence": suggestion.confidence,
            "category": self.decision.category,
            "team": self.category.default_team.name if self.category else None,
            "priority": self.priority,
            "degraded": self.degraded,
            "citations": self.citations,
        }


def decide(context: Mapping[str, Any], plan: Plan, setup: DecisionSetup) -> DecisionOutcome:
    """The decision for one ticket; calls the model when the plan says so (never raises on its failure)."""
    verdict: ModelVerdict | None = None
    draft: ModelVerdict | None = None
    decision = plan.base
    if plan.consult:
        backend = get_backend()
        verdict = ask_model(
            backend=backend,
            ticket_text=context["text"],
            neighbours=plan.neighbours,
            taxonomy=setup.taxonomy,
            candidates=candidates(plan.neighbours, plan.label_probs),
            company=settings.COMPANY_NAME,
            samples=settings.LLM_SAMPLES,
            pricing=pricing(),
        )
        if settings.LLM_DRAFT_REPLIES and verdict.ok and plan.neighbours:
            draft = draft_reply(
                backend=backend,
                ticket_text=context["text"],
                neighbours=plan.neighbours,
                company=settings.COMPANY_NAME,
                pricing=pricing(),
            )
        decision = decide_category(
            neighbours=plan.neighbours,
            label_probs=plan.label_probs,
            model_category=verdict.category if verdict.ok else None,
            model_consulted=True,
            allowed=setup.taxonomy.categories,
            policy=setup.policy,
        )
    category = setup.categories.get(decision.category or "")
    # A ticket that tries to steer the model does not get to pick its own priority through it.
    steered = bool(context.get("injection"))
    model_priority = verdict.priority if verdict is not None and verdict.ok and not steered else None
    resolution, citations = suggested_resolution(decision.category, plan.neighbours, verdict, draft)
    return DecisionOutcome(
        decision=decision,
        category=category,
        priority=model_priority or (category.default_priority if category else ""),
        resolution=resolution,
        citations=citations,
        verdict=verdict,
        calls=[*(verdict.calls if verdict else ()), *(draft.calls if draft else ())],
    )


def candidates(neighbours: Sequence[Neighbour], label_probs: Mapping[str, float] | None) -> list[str]:
    """The categories offered to the model: what retrieval and the classifier found plausible."""
    ranked = sorted((label_probs or {}).items(), key=lambda item: -item[1])
    names = [name for name, _ in ranked[:3]] + [n.category for n in neighbours]
    return list(dict.fromkeys(name for name in names if name))


def suggested_resolution(
    category: str | None,
    neighbours: Sequence[Neighbour],
    verdict: ModelVerdict | None,
    draft: ModelVerdict | None,
) -> tuple[str, list[dict[str, Any]]]:
    """The suggested reply and the retrieved tickets it rests on (never one that was not retrieved).

    A drafted reply cites what the model used; otherwise the suggestion is the resolution of the
    retrieved ticket the model picked, or the most similar one of the decided category.
    """
    by_id = {n.doc_id: n for n in neighbours}
    if draft is not None and draft.draft and draft.draft_citations:
        cited = [by_id[doc_id] for doc_id in draft.draft_citations if doc_id in by_id]
        return draft.draft, _citations(cited)
    chosen = by_id.get(verdict.best_example) if verdict is not None and verdict.best_example else None
    if chosen is None or (category and chosen.category != category):
        chosen = next((n for n in neighbours if n.category == category and n.resolution), None)
    if chosen is None:
        return "", []
    supporting = [n for n in neighbours if n is not chosen and n.category == chosen.category][:2]
    return chosen.resolution, _citations([chosen, *supporting])


def _citations(neighbours: Sequence[Neighbour]) -> list[dict[str, Any]]:
    return [{"ticket_id": n.doc_id, "score": round(n.score, 4)} for n in neighbours]


def save_suggestion(*, ticket: Ticket, outcome: DecisionOutcome) -> Suggestion:
    """The suggestion and the accounting of every model call behind it (in the caller's transaction)."""
    first = outcome.calls[0] if outcome.calls else None
    verdict = outcome.verdict
    suggestion = Suggestion.objects.create(
        ticket=ticket,
        category=outcome.category,
        team=outcome.category.default_team if outcome.category else None,
        priority=outcome.priority,
        confidence=min(1.0, max(0.0, outcome.decision.confidence)),
        resolution_text=outcome.resolution,
        citations=outcome.citations,
        backend=first.backend if first else "",
        model_name=first.model if first else "",
        prompt_version=first.prompt_version if first else "",
        degraded=outcome.degraded,
        model_used=outcome.model_used,
        evidence={
            **outcome.decision.evidence,
            "source": outcome.decision.source,
            "model": None
            if verdict is None
            else {
                "category": verdict.category,
                "priority": verdict.priority,
                "best_example": verdict.best_example,
                "votes": dict(verdict.votes),
                "unavailable": verdict.unavailable,
                "error": verdict.error,
            },
        },
    )
    ModelCall.objects.bulk_create(
        ModelCall(
            ticket=ticket,
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
        for call in outcome.calls
    )
    return suggestion

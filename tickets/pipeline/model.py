"""Stage 2 of the pipeline for one ticket: from retrieval evidence (and the model, where it helps) to
a decision and a cited suggestion.

``plan`` makes the decision retrieval and the calibrated classifier support on their own and says
whether the model should be asked; ``decide`` asks it if so and combines; ``save_suggestions``
writes the result and the accounting of every model call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings

from inference_app.llm.backends import pricing
from inference_app.llm.classify import CLASSIFY_PROMPT, ModelVerdict, ask_model
from inference_app.llm.drafting import DraftOutcome, draft_grounded
from inference_app.llm.types import CallRecord, Neighbour, Taxonomy
from tickets import suggestions
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

    def for_version(self, decision_model_id: int | None) -> DecisionSetup:
        """This setup with the policy of a decision model version's label model (itself without one)."""
        from tickets.pipeline.versions import label_model_of

        return self.with_label_model(label_model_of(decision_model_id))

    def with_label_model(self, model: Any) -> DecisionSetup:
        """This setup with the policy of a loaded label model (itself for None)."""
        if model is None:
            return self
        return replace(self, policy=policy_from_stats(model.stats, model_weight=settings.LLM_DECISION_WEIGHT))


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
    """The model is needed: to classify (``classify``) or to draft the reply (``draft``)."""
    answer_pool: list[Neighbour] = field(default_factory=list)
    """Every retrieved ticket: the answer ranker chooses among more than the decision looks at."""
    classify: bool = False
    draft: bool = False


def plan(context: Mapping[str, Any], setup: DecisionSetup) -> Plan:
    pool = [Neighbour(**item) for item in context.get("neighbours", [])]
    neighbours = pool[: settings.PIPELINE_TOP_K]
    label_probs: dict[str, float] | None = context.get("label_probs")
    base = decide_category(
        neighbours=neighbours,
        label_probs=label_probs,
        model_category=None,
        allowed=setup.taxonomy.categories,
        policy=setup.policy,
    )
    mode = settings.PIPELINE_USE_MODEL
    classify = bool(context.get("usable")) and (
        mode == "always" or (mode == "auto" and should_consult_model(decision=base, policy=setup.policy))
    )
    # Drafting follows LLM_DRAFT_REPLIES alone: PIPELINE_USE_MODEL says when the model classifies.
    draft = bool(context.get("usable")) and bool(pool) and suggestions.drafting_enabled()
    return Plan(
        neighbours=neighbours,
        label_probs=label_probs,
        base=base,
        consult=classify or draft,
        answer_pool=pool,
        classify=classify,
        draft=draft,
    )


@dataclass
class DecisionOutcome:
    decision: CategoryDecision
    category: Category | None
    priority: str
    resolution: str
    citations: list[dict[str, Any]]
    verdict: ModelVerdict | None = None
    calls: list[CallRecord] = field(default_factory=list)
    answer: dict[str, Any] = field(default_factory=dict)
    """The answer ranker's choice: suggestion confidence, abstention and why, drafting (audit details)."""
    llm_model_id: int | None = None
    """The LLM version consulted (None: not consulted, or the settings' backend)."""
    llm_canary: bool = False

    @property
    def suggestion_confidence(self) -> float | None:
        value = self.answer.get("suggestion_confidence")
        return None if value is None else float(value)

    @property
    def abstained(self) -> bool:
        return bool(self.answer.get("abstained"))

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
            "llm_model_id": self.llm_model_id,
            "llm_canary": self.llm_canary,
            "prompt_tokens": sum(call.prompt_tokens for call in self.calls),
            "completion_tokens": sum(call.completion_tokens for call in self.calls),
            "citations": self.citations,
            "suggestion": self.answer,
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
            "suggestion_confidence": self.suggestion_confidence,
            "suggestion_abstained": self.abstained,
        }


def decide(
    context: Mapping[str, Any],
    plan: Plan,
    setup: DecisionSetup,
    *,
    ticket_id: int | None = None,
    evidence: suggestions.AnswerEvidence | None = None,
) -> DecisionOutcome:
    """The decision for one ticket; calls the model when the plan says so (never raises on its failure):
    the LLM version chosen for ``ticket_id`` (:mod:`tickets.pipeline.llm_versions`). ``evidence``: the
    answer ranker's, fetched for the batch (:func:`answer_evidence_for`)."""
    from tickets.pipeline.llm_versions import llm_for

    verdict: ModelVerdict | None = None
    drafted: DraftOutcome | None = None
    decision = plan.base
    llm = llm_for(ticket_id) if plan.consult else None
    backend = llm.backend if llm is not None else None
    if plan.classify and backend is not None:
        verdict, decision = classify(
            backend,
            prompt_name=llm.prompt_name if llm is not None else CLASSIFY_PROMPT,
            ticket_text=context["text"],
            plan=plan,
            setup=setup,
        )
    category = setup.categories.get(decision.category or "")
    # A ticket that tries to steer the model does not get to pick its own priority through it.
    steered = bool(context.get("injection"))
    model_priority = verdict.priority if verdict is not None and verdict.ok and not steered else None
    chosen = suggestions.choose_answer(
        text=_answer_text(context),
        neighbours=plan.answer_pool or plan.neighbours,
        category=decision.category,
        evidence=evidence,
    )
    server_down = verdict is not None and verdict.unavailable
    if plan.draft and backend is not None and chosen.shown is not None and not server_down:
        drafted = draft_grounded(
            backend=backend,
            ticket_text=context["text"],
            candidates=chosen.ranked,
            retrieved_ids=[n.doc_id for n in plan.answer_pool or plan.neighbours],
            language=str(context.get("language") or ""),
            company=settings.COMPANY_NAME,
            pricing=pricing(),
        )
    resolution, citations = suggested_resolution(chosen, drafted)
    called = verdict is not None or drafted is not None
    return DecisionOutcome(
        decision=decision,
        category=category,
        priority=model_priority or (category.default_priority if category else ""),
        resolution=resolution,
        citations=citations,
        verdict=verdict,
        calls=[*(verdict.calls if verdict else ()), *(drafted.calls if drafted else ())],
        answer={
            **chosen.details(),
            "drafted": bool(drafted and drafted.text),
            "draft_fallback": drafted.fallback_reason if drafted else "",
        },
        llm_model_id=llm.decision_model_id if llm is not None and called else None,
        llm_canary=llm is not None and llm.canary and called,
    )


def _answer_text(context: Mapping[str, Any]) -> str:
    return str(context.get("text") or "")


def answer_evidence_for(
    items: Sequence[tuple[Mapping[str, Any], Plan, bytes | memoryview | None]],
) -> suggestions.AnswerEvidence:
    """The answer ranker's evidence for a batch of (context, plan, the ticket's stored embedding: what
    retrieval searched with) in a few queries and at most two embed calls."""
    return suggestions.answer_evidence(
        items=[(_answer_text(context), plan.answer_pool or plan.neighbours) for context, plan, _ in items],
        searched_with={_answer_text(context): vector for context, _, vector in items if vector},
    )


def classify(
    backend: Any, *, prompt_name: str, ticket_text: str, plan: Plan, setup: DecisionSetup
) -> tuple[ModelVerdict, CategoryDecision]:
    """Ask ``backend`` to classify the ticket from the plan's evidence, and the category decided from
    its answer and that evidence (the model's failure leaves the evidence alone to decide)."""
    verdict = ask_model(
        backend=backend,
        ticket_text=ticket_text,
        neighbours=plan.neighbours,
        taxonomy=setup.taxonomy,
        candidates=candidates(plan.neighbours, plan.label_probs),
        company=settings.COMPANY_NAME,
        samples=settings.LLM_SAMPLES,
        pricing=pricing(),
        prompt_name=prompt_name,
    )
    decision = decide_category(
        neighbours=plan.neighbours,
        label_probs=plan.label_probs,
        model_category=verdict.category if verdict.ok else None,
        model_consulted=True,
        allowed=setup.taxonomy.categories,
        policy=setup.policy,
    )
    return verdict, decision


def candidates(neighbours: Sequence[Neighbour], label_probs: Mapping[str, float] | None) -> list[str]:
    """The categories offered to the model: what retrieval and the classifier found plausible."""
    ranked = sorted((label_probs or {}).items(), key=lambda item: -item[1])
    names = [name for name, _ in ranked[:3]] + [n.category for n in neighbours]
    return list(dict.fromkeys(name for name in names if name))


def suggested_resolution(
    chosen: suggestions.ChosenAnswer, drafted: DraftOutcome | None
) -> tuple[str, list[dict[str, Any]]]:
    """The suggested reply and the retrieved tickets it rests on (never one that was not retrieved).

    A grounded draft cites what the model used; otherwise the suggestion is the stored answer the
    answer ranker chose, with up to two other ranked tickets of its category in support. None when the
    ranker abstained (its confidence is below SUGGESTION_MIN_CONFIDENCE) or nothing has an answer.
    """
    shown = chosen.shown
    if shown is None:
        return "", []
    if drafted is not None and drafted.text:
        by_id = {n.doc_id: n for n in chosen.ranked}
        return drafted.text, _citations([by_id[doc_id] for doc_id in drafted.citations if doc_id in by_id])
    supporting = [n for n in chosen.ranked[1:] if n.category == shown.category][:2]
    return shown.resolution, _citations([shown, *supporting])


def _citations(neighbours: Sequence[Neighbour]) -> list[dict[str, Any]]:
    return [{"ticket_id": n.doc_id, "score": round(n.score, 4)} for n in neighbours]


def save_suggestions(items: Sequence[tuple[Ticket, DecisionOutcome]]) -> list[Suggestion]:
    """Each ticket's suggestion and the accounting of every model call behind it, for a batch (in the
    caller's transaction): one INSERT of the suggestions, one of the model calls."""
    suggestions = Suggestion.objects.bulk_create(
        [_suggestion(ticket=ticket, outcome=outcome) for ticket, outcome in items]
    )
    ModelCall.objects.bulk_create(
        ModelCall.of_call(call, ticket=ticket, decision_model_id=outcome.llm_model_id)
        for ticket, outcome in items
        for call in outcome.calls
    )
    return suggestions


def _suggestion(*, ticket: Ticket, outcome: DecisionOutcome) -> Suggestion:
    first = outcome.calls[0] if outcome.calls else None
    verdict = outcome.verdict
    return Suggestion(
        ticket=ticket,
        category=outcome.category,
        team=outcome.category.default_team if outcome.category else None,
        priority=outcome.priority,
        confidence=min(1.0, max(0.0, outcome.decision.confidence)),
        resolution_text=outcome.resolution,
        citations=outcome.citations,
        suggestion_confidence=outcome.suggestion_confidence,
        abstained=outcome.abstained,
        backend=first.backend if first else "",
        model_name=first.model if first else "",
        prompt_version=first.prompt_version if first else "",
        degraded=outcome.degraded,
        model_used=outcome.model_used,
        evidence={
            **outcome.decision.evidence,
            "source": outcome.decision.source,
            "answer": outcome.answer,
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

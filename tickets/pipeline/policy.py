"""The classification decision: retrieval evidence, the learned classifier and the model's choice, combined.

Plain data in, plain data out (no Django). The pipeline and the evaluation call the same functions.

- With a fitted label model (:mod:`retrieval.label_model`), its calibrated probabilities are the base:
  the confidence of a decision then means what it says on the company's history.
- Without one (too little labelled history yet), the base is the similarity-weighted vote of the
  retrieved neighbours, with a confidence shrunk towards doubt by how few neighbours there are.
- The language model's choice, when it was consulted and answered, enters as one more piece of
  evidence: Bayes' rule with a likelihood ratio ``model_weight`` (how much more likely the model is to
  name the true category than any given other one, learned from history by :func:`fit_model_weight`).
  A weak model gets a weight near 1 and can only break near-ties; it never overrides a confident base.
- When the model was wanted but unavailable (``model_category is None`` and ``model_consulted``), the
  decision stands on the base alone and says so (``degraded``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from inference_app.llm.types import Neighbour
from retrieval.novelty import UNKNOWN_KEY

__all__ = [
    "CategoryDecision",
    "DecisionPolicy",
    "decide_category",
    "fit_model_weight",
    "neighbour_votes",
    "should_consult_model",
]

SOURCE_CLASSIFIER = "classifier"
SOURCE_RETRIEVAL = "retrieval"
SOURCE_MODEL = "model"
SOURCE_COMBINED = "combined"
SOURCE_NONE = "none"

FLOOR = 1e-4
"""Probability given to an allowed category the base never saw, so the model's choice can still count."""
MODEL_ALONE_CONFIDENCE = 0.5
"""Confidence of a decision resting on the model alone: below any sensible auto-route threshold."""
EVIDENCE_TOP = 5


@dataclass(frozen=True)
class DecisionPolicy:
    """How much to trust what. Learned from history where possible (see :func:`policy_from_stats`)."""

    consult_below: float = 0.95
    """Consult the model only when the base confidence is below this (it cannot improve the rest)."""
    model_weight: float = 2.0
    """Likelihood ratio of the model's choice; 1.0 ignores the model, larger trusts it more."""
    min_neighbours: int = 3
    """A neighbour vote over fewer neighbours than this is shrunk harder."""


@dataclass(frozen=True)
class CategoryDecision:
    category: str | None
    confidence: float
    source: str
    degraded: bool = False
    probabilities: Mapping[str, float] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)


def neighbour_votes(neighbours: Sequence[Neighbour]) -> dict[str, float]:
    """Share of the (non-negative) neighbour scores per category, largest first."""
    totals: dict[str, float] = {}
    for neighbour in neighbours:
        if neighbour.category:
            totals[neighbour.category] = totals.get(neighbour.category, 0.0) + max(neighbour.score, 0.0)
    weight = sum(totals.values())
    if weight <= 0:  # all scores zero or negative: count heads instead
        for neighbour in neighbours:
            if neighbour.category:
                totals[neighbour.category] = totals.get(neighbour.category, 0.0) + 1.0
        weight = sum(totals.values())
    if weight <= 0:
        return {}
    return dict(sorted(((c, v / weight) for c, v in totals.items()), key=lambda item: -item[1]))


def _neighbour_base(neighbours: Sequence[Neighbour], policy: DecisionPolicy) -> dict[str, float]:
    """Votes shrunk towards doubt: with n neighbours, (n * share + 1/2) / (n + 1) for the leader."""
    votes = neighbour_votes(neighbours)
    if not votes:
        return {}
    n = sum(1 for neighbour in neighbours if neighbour.category)
    strength = n if n >= policy.min_neighbours else n / 2
    return {category: (strength * share) / (strength + 1) for category, share in votes.items()}


def _restrict(probs: Mapping[str, float], allowed: Sequence[str] | None) -> dict[str, float]:
    clean = {str(c): float(p) for c, p in probs.items() if math.isfinite(float(p)) and float(p) > 0}
    if allowed is not None:
        allowed_set = set(allowed)
        clean = {c: p for c, p in clean.items() if c in allowed_set}
    return clean


def decide_category(
    *,
    neighbours: Sequence[Neighbour],
    label_probs: Mapping[str, float] | None,
    model_category: str | None,
    model_consulted: bool = False,
    allowed: Sequence[str] | None = None,
    policy: DecisionPolicy | None = None,
) -> CategoryDecision:
    """The category to route by and how sure we are, with the evidence for the audit trail.

    ``label_probs``: the label model's calibrated probabilities (None without a fitted model).
    ``model_category``: the category the language model chose, or None (not consulted, or unavailable).
    ``model_consulted``: True when the model was asked; with ``model_category`` None that is degraded mode.
    ``allowed``: the company's categories; anything else (from stale neighbours or the model) is ignored.
    """
    policy = policy or DecisionPolicy()
    evidence: dict[str, Any] = {
        "neighbours": [
            {"doc_id": n.doc_id, "category": n.category, "score": round(float(n.score), 4)}
            for n in neighbours[:EVIDENCE_TOP]
        ],
        "model_category": model_category,
        "model_weight": policy.model_weight,
    }
    unknown = 0.0
    if label_probs:
        # The novelty step's "none of these" mass stays doubt: the confidence means "this known one".
        unknown = min(1.0, max(0.0, float(label_probs.get(UNKNOWN_KEY, 0.0))))
        base = _restrict({c: p for c, p in label_probs.items() if c != UNKNOWN_KEY}, allowed)
        base_source = SOURCE_CLASSIFIER
    else:
        base = _restrict(_neighbour_base(neighbours, policy), allowed)
        base_source = SOURCE_RETRIEVAL
    evidence["base_source"] = base_source
    degraded = model_consulted and model_category is None
    if model_category is not None and allowed is not None and model_category not in set(allowed):
        evidence["model_category_rejected"] = True
        model_category = None
    if not base and model_category is None:
        return CategoryDecision(None, 0.0, SOURCE_NONE, degraded=degraded, evidence=evidence)
    if not base:
        assert model_category is not None
        evidence["top"] = {model_category: MODEL_ALONE_CONFIDENCE}
        return CategoryDecision(
            model_category,
            MODEL_ALONE_CONFIDENCE,
            SOURCE_MODEL,
            probabilities={model_category: MODEL_ALONE_CONFIDENCE},
            evidence=evidence,
        )
    mass = sum(base.values())
    # Neighbour votes keep their shrinkage as unassigned mass (doubt); classifier outputs sum to 1.
    probabilities = (
        dict(base)
        if base_source == SOURCE_RETRIEVAL
        else {c: p / mass * (1.0 - unknown) for c, p in base.items()}
    )
    if unknown:
        evidence["unknown_topic"] = round(unknown, 4)
    source = base_source
    if model_category is not None:
        base_top = max(probabilities, key=lambda c: probabilities[c])
        probabilities = combine_with_model(probabilities, model_category, policy.model_weight)
        source = SOURCE_COMBINED
        evidence["model_agrees"] = model_category == base_top
    category = max(probabilities, key=lambda c: (probabilities[c], c))
    confidence = min(1.0, max(0.0, probabilities[category]))
    top = sorted(probabilities.items(), key=lambda item: -item[1])[:EVIDENCE_TOP]
    evidence["top"] = {c: round(p, 4) for c, p in top}
    return CategoryDecision(
        category, confidence, source, degraded=degraded, probabilities=probabilities, evidence=evidence
    )


def combine_with_model(
    probabilities: Mapping[str, float], model_category: str, weight: float
) -> dict[str, float]:
    """Bayes' rule: multiply the odds of the model's choice by ``weight`` and renormalise.

    Unassigned mass (doubt left by a neighbour vote) is kept as doubt, spread over the categories not
    named, so a model agreeing with a thin vote raises the confidence but not to certainty.
    """
    updated = dict(probabilities)
    updated[model_category] = max(updated.get(model_category, 0.0), FLOOR)
    doubt = max(0.0, 1.0 - sum(updated.values()))
    updated[model_category] *= max(weight, 0.0)
    total = sum(updated.values()) + doubt
    return {c: p / total for c, p in updated.items()}


def should_consult_model(
    *, decision: CategoryDecision | None, policy: DecisionPolicy | None = None, model_available: bool = True
) -> bool:
    """Ask the language model only where it can help: the base is unsure (or there is no base), the
    model is worth anything (``model_weight > 1``) and it is available."""
    policy = policy or DecisionPolicy()
    if not model_available or policy.model_weight <= 1.0:
        return False
    if decision is None or decision.category is None:
        return True
    return decision.confidence < policy.consult_below


def policy_from_stats(
    stats: Mapping[str, Any], *, model_weight: float | None = None, default: DecisionPolicy | None = None
) -> DecisionPolicy:
    """The policy a fitted label model's out-of-fold statistics suggest: consult the model below the
    confidence at which 95% of history tickets would be routed correctly (they go to triage otherwise)."""
    default = default or DecisionPolicy()
    threshold = stats.get("oof_threshold_at_precision_95")
    return DecisionPolicy(
        consult_below=float(threshold) if threshold is not None else default.consult_below,
        model_weight=default.model_weight if model_weight is None else float(model_weight),
        min_neighbours=default.min_neighbours,
    )


def fit_model_weight(
    observations: Sequence[tuple[Mapping[str, float], str | None, str]], *, max_weight: float = 1000.0
) -> float:
    """The likelihood ratio that best explains history: ``observations`` are (base probabilities, the
    model's choice, the true category). Maximum likelihood over a log grid; 1.0 when the model adds
    nothing (or there are no usable observations). Never below 1: a model that misleads is ignored."""
    usable = [(probs, choice, truth) for probs, choice, truth in observations if choice is not None and probs]
    if not usable:
        return 1.0
    best_weight, best_ll = 1.0, -math.inf
    steps = 60
    for i in range(steps + 1):
        weight = math.exp(math.log(max_weight) * i / steps)
        ll = 0.0
        for probs, choice, truth in usable:
            assert choice is not None
            posterior = combine_with_model(_normalised(probs), choice, weight)
            ll += math.log(max(posterior.get(truth, 0.0), 1e-9))
        if ll > best_ll + 1e-9:
            best_weight, best_ll = weight, ll
    return best_weight


def _normalised(probs: Mapping[str, float]) -> dict[str, float]:
    total = sum(p for p in probs.values() if p > 0)
    return {c: p / total for c, p in probs.items() if p > 0} if total > 0 else {}

"""The classification decision: neighbour votes, the calibrated classifier, the model's choice."""

from __future__ import annotations

import random

import pytest

from inference_app.llm.types import Neighbour
from tickets.pipeline.policy import (
    CategoryDecision,
    DecisionPolicy,
    decide_category,
    fit_model_weight,
    neighbour_votes,
    policy_from_stats,
    should_consult_model,
)


def hood(*pairs: tuple[str, float]) -> list[Neighbour]:
    return [
        Neighbour(doc_id=i, score=score, category=c, team=f"team-{c}") for i, (c, score) in enumerate(pairs)
    ]


def test_neighbour_votes_weigh_by_similarity() -> None:
    votes = neighbour_votes(hood(("Billing", 0.9), ("Access", 0.5), ("Billing", 0.6)))
    assert list(votes) == ["Billing", "Access"]
    assert votes["Billing"] == pytest.approx(1.5 / 2.0)
    # Negative or zero scores: each neighbour counts once.
    assert neighbour_votes(hood(("A", -0.1), ("B", 0.0), ("A", -0.3))) == pytest.approx(
        {"A": 2 / 3, "B": 1 / 3}
    )
    assert neighbour_votes([]) == {}


def test_retrieval_alone_is_shrunk_towards_doubt() -> None:
    unanimous = decide_category(
        neighbours=hood(*[("Billing", 0.8)] * 5), label_probs=None, model_category=None
    )
    assert unanimous.category == "Billing" and unanimous.source == "retrieval"
    assert unanimous.confidence == pytest.approx(5 / 6)
    lonely = decide_category(neighbours=hood(("Billing", 0.9)), label_probs=None, model_category=None)
    assert lonely.confidence < 0.5, "one neighbour is weak evidence"
    nothing = decide_category(neighbours=[], label_probs=None, model_category=None)
    assert nothing.category is None and nothing.confidence == 0.0 and nothing.source == "none"


def test_classifier_probabilities_are_the_base_and_filtered_to_the_taxonomy() -> None:
    decision = decide_category(
        neighbours=hood(("Access", 0.9)),
        label_probs={"Billing": 0.7, "Access": 0.2, "Retired": 0.1},
        model_category=None,
        allowed=["Billing", "Access"],
    )
    assert decision.category == "Billing" and decision.source == "classifier"
    assert decision.confidence == pytest.approx(0.7 / 0.9)
    assert decision.evidence["neighbours"][0] == {"doc_id": 0, "category": "Access", "score": 0.9}
    assert decision.evidence["top"] == {
        "Billing": pytest.approx(0.7778, abs=1e-4),
        "Access": pytest.approx(0.2222, abs=1e-4),
    }


def test_the_models_choice_breaks_near_ties_but_not_confident_decisions() -> None:
    policy = DecisionPolicy(model_weight=3.0)
    near_tie = decide_category(
        neighbours=[],
        label_probs={"Billing": 0.5, "Access": 0.4, "Sales": 0.1},
        model_category="Access",
        policy=policy,
    )
    assert near_tie.category == "Access" and near_tie.source == "combined"
    assert near_tie.confidence == pytest.approx(1.2 / 1.8)
    assert near_tie.evidence["model_agrees"] is False
    confident = decide_category(
        neighbours=[], label_probs={"Billing": 0.95, "Access": 0.05}, model_category="Access", policy=policy
    )
    assert confident.category == "Billing" and confident.confidence > 0.8
    agreeing = decide_category(
        neighbours=[], label_probs={"Billing": 0.6, "Access": 0.4}, model_category="Billing", policy=policy
    )
    assert agreeing.confidence > 0.6 and agreeing.evidence["model_agrees"] is True


def test_model_outside_taxonomy_is_ignored_and_model_alone_is_unsure() -> None:
    rejected = decide_category(
        neighbours=[],
        label_probs={"Billing": 0.6, "Access": 0.4},
        model_category="Executive",
        allowed=["Billing", "Access"],
    )
    assert rejected.category == "Billing" and rejected.source == "classifier"
    assert rejected.evidence["model_category_rejected"] is True
    alone = decide_category(neighbours=[], label_probs=None, model_category="Access")
    assert alone.category == "Access" and alone.source == "model" and alone.confidence == 0.5


def test_degraded_when_the_model_was_asked_but_did_not_answer() -> None:
    decision = decide_category(
        neighbours=hood(("Billing", 0.8), ("Billing", 0.7), ("Access", 0.2)),
        label_probs=None,
        model_category=None,
        model_consulted=True,
    )
    assert decision.category == "Billing" and decision.degraded and decision.source == "retrieval"


def test_should_consult_model_only_where_it_can_help() -> None:
    policy = DecisionPolicy(consult_below=0.8, model_weight=2.0)
    sure = CategoryDecision("Billing", 0.9, "classifier")
    unsure = CategoryDecision("Billing", 0.5, "classifier")
    assert not should_consult_model(decision=sure, policy=policy)
    assert should_consult_model(decision=unsure, policy=policy)
    assert should_consult_model(decision=None, policy=policy)
    assert not should_consult_model(decision=unsure, policy=policy, model_available=False)
    assert not should_consult_model(
        decision=unsure, policy=DecisionPolicy(consult_below=0.8, model_weight=1.0)
    )
    learned = policy_from_stats({"oof_threshold_at_precision_95": 0.73}, model_weight=4.0)
    assert learned.consult_below == 0.73 and learned.model_weight == 4.0
    assert policy_from_stats({}).consult_below == DecisionPolicy().consult_below


def _observations(model_accuracy: float, seed: int) -> list[tuple[dict[str, float], str | None, str]]:
    """Unsure classifier outputs (right 55% of the time) and a model right ``model_accuracy`` of the time."""
    rng = random.Random(seed)
    labels = ["A", "B", "C", "D"]
    rows: list[tuple[dict[str, float], str | None, str]] = []
    for _ in range(300):
        truth = rng.choice(labels)
        top = truth if rng.random() < 0.55 else rng.choice([x for x in labels if x != truth])
        probs = {x: (0.55 if x == top else 0.15) for x in labels}
        choice = truth if rng.random() < model_accuracy else rng.choice([x for x in labels if x != truth])
        rows.append((probs, choice, truth))
    return rows


def test_model_weight_is_learned_from_history() -> None:
    good = fit_model_weight(_observations(0.85, seed=1))
    useless = fit_model_weight(_observations(0.25, seed=2))  # chance level among 4 labels
    misleading = fit_model_weight(_observations(0.05, seed=3))
    assert good > 5.0
    assert useless < 1.6
    assert misleading == 1.0, "a model that misleads gets no say"
    assert fit_model_weight([]) == 1.0

"""The novelty step with real scikit-learn: tickets of no known category lose their confidence, known ones
keep it; its parameters are plain JSON in the artefact; the decision keeps the unknown mass as doubt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from inference_app.llm.types import Neighbour
from retrieval.label_model import FitOptions, LabelModel
from retrieval.novelty import (
    UNKNOWN_KEY,
    fit_label_model_with_novelty,
    known_scores,
    predict_with_unknown,
    with_unknown,
)
from tickets.pipeline.policy import decide_category

TOPICS = {
    "Billing": ["invoice", "refund", "charged", "payment", "receipt", "vat"],
    "Zugang": ["password", "login", "locked", "account", "reset", "mfa"],
    "Hardware": ["laptop", "screen", "keyboard", "printer", "dock", "battery"],
    "Shipping": ["parcel", "delivery", "courier", "tracking", "address", "package"],
    "Payroll": ["salary", "payslip", "overtime", "bonus", "tax", "wage"],
    "Facilities": ["desk", "heating", "light", "room", "chair", "cleaning"],
    "Security": ["phishing", "virus", "malware", "breach", "spam", "suspicious"],
    "Travel": ["flight", "hotel", "visa", "trip", "booking", "train"],
}
NEW_TOPIC = ["contract", "lawyer", "clause", "signature", "legal", "liability"]
FILLER = ["please", "help", "today", "urgent", "thanks", "hello", "issue", "problem", "again", "team"]
OPTIONS = FitOptions(folds=3, neighbours=5, unknown_groups=3)
DIM = 32


def centroids() -> np.ndarray:
    return np.random.default_rng(99).normal(size=(len(TOPICS) + 1, DIM))


def make(n: int, *, seed: int, topic: int | None = None) -> tuple[list[str], np.ndarray, list[str]]:
    """Texts of topic words and filler; embeddings near the topic's centroid. ``topic=-1``: the topic
    no category covers (its own words, its own centroid)."""
    rng = np.random.default_rng(seed)
    labels = list(TOPICS)
    texts, vectors, truth = [], [], []
    for _ in range(n):
        k = int(rng.integers(len(labels))) if topic is None else topic
        words = NEW_TOPIC if k == -1 else TOPICS[labels[k]]
        chosen = list(rng.choice(words, size=2)) + list(rng.choice(FILLER, size=4))
        rng.shuffle(chosen)
        texts.append(" ".join(chosen))
        vector = centroids()[k] + rng.normal(scale=1.6, size=DIM)
        vectors.append(vector / np.linalg.norm(vector))
        truth.append("(new)" if k == -1 else labels[k])
    return texts, np.asarray(vectors, dtype=np.float32), truth


@pytest.fixture(scope="module")
def fitted() -> LabelModel:
    texts, vectors, labels = make(640, seed=1)
    return fit_label_model_with_novelty(
        texts=texts, embeddings=vectors, labels=labels, embedding_model="fake-32", options=OPTIONS
    )


def test_unknown_topics_lose_confidence_known_ones_keep_it(fitted: LabelModel) -> None:
    assert fitted.novelty is not None
    stats = fitted.stats["novelty"]
    assert stats["groups"] == 3 and stats["unknown_rows"] > 0
    known_texts, known_vectors, known_truth = make(200, seed=5)
    new_texts, new_vectors, _ = make(100, seed=6, topic=-1)
    known_proba = fitted.predict_proba(texts=known_texts, embeddings=known_vectors)
    new_proba = fitted.predict_proba(texts=new_texts, embeddings=new_vectors)
    known = known_scores(fitted, known_proba, known_vectors)
    new = known_scores(fitted, new_proba, new_vectors)
    assert known is not None and new is not None
    # The plain probabilities are confident about the new topic too; the score is not.
    assert float(np.median(new)) < float(np.median(known)) - 0.3
    assert float(np.median(new)) < float(np.median(new_proba.max(axis=1)))
    threshold = stats["threshold_at_precision_95"]
    assert threshold is not None
    assert float(np.mean(new < threshold)) >= 0.8, "most unknown-topic tickets go to triage"
    right = np.asarray([fitted.labels[i] for i in known_proba.argmax(axis=1)]) == np.asarray(known_truth)
    routed = known >= threshold
    assert routed.mean() >= 0.5 and right[routed].mean() >= 0.9


def test_parameters_are_plain_json_and_survive_the_artefact(fitted: LabelModel, tmp_path: Path) -> None:
    assert json.loads(json.dumps(fitted.novelty)) == fitted.novelty
    path = tmp_path / "label_model.bin"
    fitted.save(path)
    loaded = LabelModel.load(path, embedding_model="fake-32", labels=list(TOPICS))
    assert loaded.novelty == fitted.novelty
    texts, vectors, _ = make(10, seed=7, topic=-1)
    assert predict_with_unknown(loaded, texts=texts, embeddings=vectors) == predict_with_unknown(
        fitted, texts=texts, embeddings=vectors
    )
    # Another version of the step is not applied: the plain probabilities come back.
    loaded.novelty = {**(loaded.novelty or {}), "version": 999}
    plain = predict_with_unknown(loaded, texts=texts, embeddings=vectors)
    assert all(UNKNOWN_KEY not in row for row in plain)


def test_too_few_categories_or_groups_skip_the_step() -> None:
    texts, vectors, labels = make(200, seed=2)
    three = [i for i, label in enumerate(labels) if label in ("Billing", "Zugang", "Hardware")]
    model = fit_label_model_with_novelty(
        texts=[texts[i] for i in three],
        embeddings=vectors[three],
        labels=[labels[i] for i in three],
        embedding_model="fake-32",
        options=OPTIONS,
    )
    assert model.novelty is None and "novelty" not in model.stats
    off = fit_label_model_with_novelty(
        texts=texts,
        embeddings=vectors,
        labels=labels,
        embedding_model="fake-32",
        options=FitOptions(folds=3, neighbours=5, unknown_groups=0),
    )
    assert off.novelty is None


def test_a_history_too_small_per_category_skips_the_step() -> None:
    texts, vectors, labels = make(200, seed=2)  # 8 categories, 25 tickets each on average (< 30)
    small = fit_label_model_with_novelty(
        texts=texts, embeddings=vectors, labels=labels, embedding_model="fake-32", options=OPTIONS
    )
    assert small.novelty is None
    enough = fit_label_model_with_novelty(
        texts=texts,
        embeddings=vectors,
        labels=labels,
        embedding_model="fake-32",
        options=FitOptions(folds=3, neighbours=5, unknown_groups=3, unknown_min_per_label=20),
    )
    assert enough.novelty is not None


def test_with_unknown_reshapes_to_a_distribution() -> None:
    lowered = with_unknown({"a": 0.9, "b": 0.08, "c": 0.02}, 0.3)
    assert lowered["a"] == pytest.approx(0.3)
    assert lowered["b"] == pytest.approx(0.08 / 3) and lowered[UNKNOWN_KEY] == pytest.approx(2 / 3)
    # A lowered top stays the top: the others shrink with it.
    close = with_unknown({"a": 0.5, "b": 0.45, "c": 0.05}, 0.2)
    assert max(close, key=lambda c: close[c] if c != UNKNOWN_KEY else -1) == "a"
    assert close["b"] == pytest.approx(0.18)
    raised = with_unknown({"a": 0.5, "b": 0.5}, 0.9)
    assert raised["a"] == pytest.approx(0.9) and raised["b"] == pytest.approx(0.1)
    assert raised[UNKNOWN_KEY] == pytest.approx(0.0, abs=1e-12)
    assert with_unknown({}, 0.5) == {}


def test_decision_keeps_the_unknown_mass_as_doubt() -> None:
    neighbours = [Neighbour(doc_id=1, score=0.9, category="a", team="T", text="x")]
    probs = with_unknown({"a": 0.95, "b": 0.05}, 0.2)
    decision = decide_category(
        neighbours=neighbours, label_probs=probs, model_category=None, allowed=["a", "b"]
    )
    assert decision.category == "a"
    assert decision.confidence == pytest.approx(0.2)
    assert decision.evidence["unknown_topic"] == pytest.approx(0.8 - 0.05 * 0.2 / 0.95, abs=1e-4)
    assert UNKNOWN_KEY not in decision.probabilities
    # The model agreeing raises the confidence, but the doubt keeps it below certainty.
    combined = decide_category(
        neighbours=neighbours, label_probs=probs, model_category="a", allowed=["a", "b"]
    )
    assert 0.2 < combined.confidence < 0.9
    # Without the key, classifier probabilities are normalised as before.
    plain = decide_category(
        neighbours=neighbours, label_probs={"a": 0.6, "b": 0.2}, model_category=None, allowed=["a", "b"]
    )
    assert plain.confidence == pytest.approx(0.75)

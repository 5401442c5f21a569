"""The live label model: trained from knowledge entries in PostgreSQL, saved, reloaded, refused if foreign."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command

from retrieval import label_services
from retrieval.label_model import FitOptions, LabelModel
from retrieval.label_services import (
    current_label_model,
    label_model_path,
    predict_label_probs,
    train_label_model,
)
from retrieval.models import KnowledgeEntry
from retrieval.services import embedder
from tickets.pipeline.model import decision_policy
from tickets.pipeline.policy import DecisionPolicy

pytestmark = pytest.mark.django_db

WORDS = {
    "Billing": "invoice refund charged payment",
    "Access": "password login locked reset",
    "Hardware": "laptop screen keyboard printer",
    "Shipping": "parcel courier tracking delivery",
}


def vector_for(category: str, rng: np.random.Generator) -> np.ndarray:
    centre = np.zeros(384, dtype=np.float32)
    centre[list(WORDS).index(category) * 10] = 3.0
    vector = centre + rng.normal(scale=0.5, size=384).astype(np.float32)
    return vector / np.linalg.norm(vector)


def add_entries(categories: list[str], per_category: int, *, start: int = 0) -> None:
    rng = np.random.default_rng(start)
    model_name = embedder().name
    version = (KnowledgeEntry.objects.order_by("-version").values_list("version", flat=True).first() or 0) + 1
    rows = []
    for i in range(per_category * len(categories)):
        category = categories[i % len(categories)]
        word = WORDS[category].split()[i % 4]
        rows.append(
            KnowledgeEntry(
                doc_id=start + i,
                text=f"ticket {i} about the {word}",
                category=category,
                embedding=vector_for(category, rng).astype("<f4").tobytes(),
                embedding_model=model_name,
                version=version + i,
            )
        )
    KnowledgeEntry.objects.bulk_create(rows)


@pytest.fixture(autouse=True)
def fresh(knowledge_dir: Path) -> None:
    label_services._cache.forget()


def test_too_little_history_means_neighbour_votes(knowledge_dir: Path) -> None:
    add_entries(["Billing"], 30)
    summary = train_label_model()
    assert not summary.trained and "2 categories" in summary.reason
    assert predict_label_probs(texts=["x"], embeddings=np.zeros((1, 384), np.float32)) is None
    assert decision_policy() == DecisionPolicy(model_weight=settings.LLM_DECISION_WEIGHT)
    assert not label_model_path().exists()


def test_train_predict_and_reload_when_the_file_changes(knowledge_dir: Path) -> None:
    add_entries(["Billing", "Access", "Hardware"], 15)
    KnowledgeEntry.objects.create(doc_id=999, text="gone", category="Billing", deleted=True, version=10_000)
    out = io.StringIO()
    call_command("train_classifier", stdout=out)
    assert "Label model saved" in out.getvalue() and "45 entries, 3 categories" in out.getvalue()
    rng = np.random.default_rng(7)
    probs = predict_label_probs(
        texts=["my laptop screen", "refund please"],
        embeddings=np.stack([vector_for("Hardware", rng), vector_for("Billing", rng)]),
    )
    assert probs is not None and max(probs[0], key=probs[0].__getitem__) == "Hardware"
    assert max(probs[1], key=probs[1].__getitem__) == "Billing"
    assert sum(probs[0].values()) == pytest.approx(1.0, abs=1e-3)
    model = current_label_model()
    assert (
        model is not None and decision_policy().consult_below == model.stats["oof_threshold_at_precision_95"]
    )

    # A new category appears; the retrain (e.g. on another worker) replaces the file and it is reloaded.
    add_entries(["Shipping"], 15, start=1000)
    summary = train_label_model()
    assert summary.trained and summary.labels == 4
    label_services._cache.checked_at = 0.0  # as if RELOAD_CHECK_SECONDS had passed
    reloaded = current_label_model()
    assert reloaded is not None and "Shipping" in reloaded.labels


def test_an_artefact_of_another_embedding_model_is_not_used(knowledge_dir: Path) -> None:
    add_entries(["Billing", "Access"], 15)
    texts = list(KnowledgeEntry.objects.values_list("text", flat=True))
    labels = list(KnowledgeEntry.objects.values_list("category", flat=True))
    rng = np.random.default_rng(1)
    vectors = np.stack([vector_for(label, rng) for label in labels])
    from retrieval.label_model import fit_label_model

    foreign = fit_label_model(
        texts=texts,
        embeddings=vectors,
        labels=labels,
        embedding_model="another-model",
        options=FitOptions(folds=3),
    )
    foreign.save(label_model_path())
    assert current_label_model() is None
    assert predict_label_probs(texts=["x"], embeddings=vectors[:1]) is None
    LabelModel.load(label_model_path(), embedding_model="another-model")  # the file itself is fine


def test_retrain_task(knowledge_dir: Path, eager_celery: None) -> None:
    from retrieval.tasks import retrain_label_model

    add_entries(["Billing", "Access"], 15)
    result = retrain_label_model.delay().get()
    assert result == {"trained": True, "entries": 30, "labels": 2, "reason": ""}
    assert label_model_path().is_file()


def test_the_models_weight_comes_from_settings(knowledge_dir: Path, settings: object) -> None:
    settings.LLM_DECISION_WEIGHT = 7.5  # type: ignore[attr-defined]
    assert decision_policy().model_weight == 7.5


class PlantedPayload:
    """Unpickling this creates ``marker``: what a writer of INDEX_DIR could plant for the workers."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


def test_a_planted_or_old_pickled_model_is_never_executed_and_a_retrain_replaces_it(
    knowledge_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import pickle

    from retrieval._storage import write_container

    marker = tmp_path / "executed"
    payload = pickle.dumps(PlantedPayload(marker), protocol=5)
    label_model_path().write_bytes(payload)  # a bare pickle where the model lives
    assert current_label_model() is None
    assert "unusable" in caplog.text and "bad magic" in caplog.text

    # The format this code wrote before (a pickle in the container, format 2): ignored, never unpickled.
    write_container(
        label_model_path(), b"SBLABEL1", {"format_version": 2, "embedding_model": embedder().name}, payload
    )
    label_services._cache.checked_at = 0.0
    caplog.clear()
    assert current_label_model() is None
    assert predict_label_probs(texts=["x"], embeddings=np.zeros((1, 384), np.float32)) is None
    assert "older format" in caplog.text and "never unpickled" in caplog.text
    assert not marker.exists(), "nothing in the planted files ran"

    add_entries(["Billing", "Access"], 15)
    assert train_label_model().trained
    model = current_label_model()
    assert model is not None and set(model.labels) == {"Billing", "Access"}
    assert not marker.exists()

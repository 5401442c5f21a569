"""The tuned embedding model: a real (tiny) fine-tune of the packaged MiniLM, its artefact (format version,
base model, checksum), the refusal of a foreign one with the fallback to the shipped model, and the index
and label model rebuilt on the adopted model."""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval import tuned_embedder
from retrieval.embedding_tuning import TuneOptions, tune
from retrieval.embeddings import get_embedder
from retrieval.model_files import DEFAULT_MODEL, find_model_dir
from retrieval.onnx_embedder import ONNX_INT8_MODEL, TUNED_PREFIX, file_sha256, source_hash
from retrieval.tuned_embedder import (
    CURRENT_FILE,
    MANIFEST,
    MODEL_FILE,
    TUNED_FORMAT_VERSION,
    TunedEmbedderRefused,
    TunedOnnxEmbedder,
    adopt,
    check_tuned,
    resolve_embedding_model,
    save_tuned,
)

TOPICS = {
    "Billing": ("invoice is wrong", "charged twice this month", "refund for my order", "payment failed"),
    "Access": ("cannot log in", "password reset link expired", "account locked", "two-factor code"),
    "Hardware": ("laptop screen flickers", "keyboard keys stuck", "printer jams", "docking station dead"),
}
OPENERS = ("Hello, my ", "Hi team, the ", "Urgent: ", "Good morning, ")


def history() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for label, phrases in TOPICS.items():
        for i in range(16):
            texts.append(f"{OPENERS[i % 4]}{phrases[(i // 4) % 4]} (ticket {i})")
            labels.append(label)
    return texts, labels


def margin(vectors: np.ndarray, labels: list[str]) -> float:
    """Mean cosine within a category minus mean cosine across categories."""
    same = np.equal.outer(np.array(labels), np.array(labels))
    np.fill_diagonal(same, False)
    different = ~np.equal.outer(np.array(labels), np.array(labels))
    cosines = vectors @ vectors.T
    return float(cosines[same].mean() - cosines[different].mean())


@pytest.fixture(autouse=True)
def fresh_resolution() -> Iterator[None]:
    tuned_embedder._resolved.forget()
    yield
    tuned_embedder._resolved.forget()


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private folder for tuned models, used by the resolution and get_embedder."""
    folder = tmp_path / "tuned"
    folder.mkdir()
    monkeypatch.setattr(tuned_embedder, "tuned_root", lambda: folder)
    return folder


def write_manifest(folder: Path, **fields: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MODEL_FILE).write_bytes(b"not really a model")
    manifest = {
        "format_version": TUNED_FORMAT_VERSION,
        "name": folder.name,
        "base_model": DEFAULT_MODEL,
        "base_hash": source_hash(find_model_dir()),
        "size": (folder / MODEL_FILE).stat().st_size,
        "sha256": file_sha256(folder / MODEL_FILE),
    }
    manifest.update(fields)
    (folder / MANIFEST).write_text(json.dumps(manifest))


# --- the artefact, refused when foreign (no model needed) -------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"format_version": 99}, "format 99"),
        ({"base_model": "bert-base-uncased"}, "tuned from 'bert-base-uncased'"),
        ({"base_hash": "0123456789abcdef"}, "not from the installed"),
        ({"name": f"{TUNED_PREFIX}other"}, "holds"),
        ({"size": 3}, "missing or truncated"),
    ],
)
def test_a_foreign_or_damaged_artefact_is_refused(
    root: Path, fields: dict[str, object], message: str
) -> None:
    name = f"{TUNED_PREFIX}abc"
    write_manifest(root / name, **fields)
    with pytest.raises(TunedEmbedderRefused, match=message):
        check_tuned(name, root=root)
    with pytest.raises(TunedEmbedderRefused):
        TunedOnnxEmbedder(name, root=root)


def test_a_sound_manifest_passes_and_a_changed_model_file_fails_its_checksum(root: Path) -> None:
    name = f"{TUNED_PREFIX}abc"
    write_manifest(root / name)
    assert check_tuned(name, root=root) == root / name
    (root / name / MODEL_FILE).write_bytes(b"NOT really a model")  # same size, other bytes
    with pytest.raises(TunedEmbedderRefused, match="checksum"):
        check_tuned(name, root=root)


def test_an_adopted_foreign_artefact_falls_back_to_the_shipped_model(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert resolve_embedding_model(ONNX_INT8_MODEL, use_tuned=True) == ONNX_INT8_MODEL  # nothing adopted
    name = f"{TUNED_PREFIX}abc"
    write_manifest(root / name, base_model="another-model")
    (root / CURRENT_FILE).write_text(json.dumps({"name": name}))
    tuned_embedder._resolved.forget()
    with caplog.at_level(logging.WARNING, logger="retrieval.tuned_embedder"):
        assert resolve_embedding_model(ONNX_INT8_MODEL, use_tuned=True) == ONNX_INT8_MODEL
    assert "another-model" in caplog.text and "using the shipped model" in caplog.text
    with pytest.raises(TunedEmbedderRefused):
        adopt(name, root=root)
    (root / CURRENT_FILE).write_text("{not json")
    tuned_embedder._resolved.forget()
    assert resolve_embedding_model(ONNX_INT8_MODEL, use_tuned=True) == ONNX_INT8_MODEL


# --- a real fine-tune --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """20 SupCon steps on 48 texts with the real MiniLM, exported to int8 ONNX (about a minute)."""
    work = tmp_path_factory.mktemp("tuning")
    texts, labels = history()
    options = TuneOptions(max_steps=20, batch_size=24, per_label=8, learning_rate=1e-4, max_seq_len=32)
    result = tune(
        texts=texts, labels=labels, base_dir=find_model_dir(), target_dir=work / "model", options=options
    )
    assert result.steps == 20 and np.isfinite(result.final_loss)
    name = save_tuned(result.model_dir, root=work / "tuned", stats=result.stats())
    shutil.rmtree(work / "model")
    return work / "tuned", name


@pytest.mark.slow
def test_tuning_changes_the_vectors_and_pulls_categories_together(tuned: tuple[Path, str]) -> None:
    folder, name = tuned
    assert name.startswith(TUNED_PREFIX)
    manifest = json.loads((folder / name / MANIFEST).read_text())
    assert manifest["format_version"] == TUNED_FORMAT_VERSION and manifest["base_model"] == DEFAULT_MODEL
    assert manifest["sha256"].startswith(name.removeprefix(TUNED_PREFIX))
    assert manifest["tuning"]["steps"] == 20
    assert not list(folder.glob(".tuned-*")), "no temporary folder is left behind"
    texts, labels = history()
    before = get_embedder(ONNX_INT8_MODEL).encode(texts)
    after = TunedOnnxEmbedder(name, root=folder).encode(texts)
    assert after.shape == before.shape and np.allclose(np.linalg.norm(after, axis=1), 1.0, atol=1e-4)
    assert float(np.mean(np.sum(before * after, axis=1))) < 0.999
    assert margin(after, labels) > margin(before, labels) + 0.02


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.usefixtures("knowledge_dir")
@pytest.mark.usefixtures("eager_celery")
def test_adopting_rebuilds_the_index_and_label_model_on_the_tuned_model(
    tuned: tuple[Path, str], root: Path, knowledge_dir: Path, django_capture_on_commit_callbacks: Any
) -> None:
    from celery.signals import task_prerun

    from retrieval.embedding_services import ANSWER_RANKER_TASK, adopt_embedder
    from retrieval.label_services import current_label_model
    from retrieval.models import KnowledgeEntry
    from retrieval.services import KBItem, kb_search, kb_upsert, knowledge_base

    folder, name = tuned
    shutil.copytree(folder / name, root / name)
    texts, labels = history()
    kb_upsert(
        items=[
            KBItem(doc_id=i, text=t, category=c) for i, (t, c) in enumerate(zip(texts, labels, strict=True))
        ]
    )
    assert len(knowledge_base(force_sync=True)) == len(texts)
    assert set(KnowledgeEntry.objects.values_list("embedding_model", flat=True)) == {ONNX_INT8_MODEL}
    ran: list[str] = []

    def record(sender: Any = None, **_: Any) -> None:
        ran.append(sender.name)

    task_prerun.connect(record)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            adopt_embedder(name=name)
        assert ran == [ANSWER_RANKER_TASK]  # its answer embeddings were the old model's: refitted
        assert set(KnowledgeEntry.objects.values_list("embedding_model", flat=True)) == {name}
        manifest = json.loads((knowledge_dir / "manifest.json").read_text())
        assert manifest["embedder"]["name"] == name
        assert knowledge_base().embedder.name == name
        label_model = current_label_model()
        assert label_model is not None and label_model.embedding_model == name
        [hit] = kb_search(text="I was charged twice this month", k=1)
        assert hit.category == "Billing"
    finally:
        task_prerun.disconnect(record)
        adopt_embedder(name=None)
    assert set(KnowledgeEntry.objects.values_list("embedding_model", flat=True)) == {ONNX_INT8_MODEL}
    assert knowledge_base().embedder.name == ONNX_INT8_MODEL
    assert json.loads((knowledge_dir / "manifest.json").read_text())["embedder"]["name"] == ONNX_INT8_MODEL


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.usefixtures("knowledge_dir")
def test_train_classifier_tunes_and_adopts_only_a_winner(root: Path, settings: object) -> None:
    import io

    from django.core.management import call_command

    from retrieval.embedding_services import adopt_embedder
    from retrieval.models import KnowledgeEntry
    from retrieval.services import KBItem, embedding_model_name, kb_upsert

    settings.EMBEDDING_TUNING_STEPS = 5  # type: ignore[attr-defined]
    texts, labels = history()
    items = [
        KBItem(doc_id=100 * copy + i, text=f"{text} [{copy}]", category=label)
        for copy in range(3)
        for i, (text, label) in enumerate(zip(texts, labels, strict=True))
    ]
    kb_upsert(items=items)
    out = io.StringIO()
    try:
        call_command("train_classifier", "--tune-embeddings", stdout=out)
        text = out.getvalue()
        shipped, tuned = (float(x) for x in re.findall(r"(?:shipped|tuned) (\d\.\d{4})", text)[:2])
        adopted = tuned > shipped
        assert ("adopted " in text) == adopted, text
        expected = tuned_embedder.adopted_name(root=root) if adopted else ONNX_INT8_MODEL
        assert embedding_model_name() == expected and expected is not None
        assert set(KnowledgeEntry.objects.values_list("embedding_model", flat=True)) == {expected}
        assert "Label model saved" in text
    finally:
        adopt_embedder(name=None)

"""The live label model: trained from the knowledge base, saved under ``INDEX_DIR``, loaded per process.

``train_label_model`` fits :mod:`retrieval.label_model` on every live, labelled knowledge entry (their
stored embeddings; entries of another embedding model are embedded again) and replaces the artefact
atomically. A periodic task runs it (``retrieval.tasks.retrain_label_model``). Every process loads the
current artefact on first use and again when the file changes; a missing, damaged or foreign-model
artefact means "no label model" (decisions then rest on neighbour votes) until the next training. The
artefact is arrays and JSON (:mod:`retrieval.array_artefact`): a file planted in ``INDEX_DIR`` (a
pickle, say) is refused unread, never executed, and an older, pickled label model is ignored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

from retrieval.models import KnowledgeEntry

if TYPE_CHECKING:
    import numpy as np

    from retrieval.label_model import LabelModel, Progress

logger = logging.getLogger(__name__)

LABEL_MODEL_FILE = "label_model.bin"
MIN_ENTRIES = 20
"""Fewer labelled entries than this teach nothing reliable: decisions use neighbour votes instead."""
RELOAD_CHECK_SECONDS = 5.0
TOP_LABELS = 10
"""Labels kept per prediction (the rest carry almost no probability)."""


def label_model_path() -> Path:
    return Path(settings.INDEX_DIR) / LABEL_MODEL_FILE


@dataclass
class TrainSummary:
    trained: bool
    entries: int
    labels: int
    reason: str = ""
    stats: dict[str, Any] = field(default_factory=dict)


def _labelled_entries() -> tuple[list[str], list[str], np.ndarray]:
    """Texts, categories and embeddings (current model) of every live labelled entry, oldest first."""
    texts, labels, vectors, _ = labelled_history()
    return texts, labels, vectors


def labelled_history() -> tuple[list[str], list[str], np.ndarray, list[Any]]:
    """Texts, categories, embeddings (current model) and resolution times of every live labelled
    entry, oldest first (by when it joined the knowledge base)."""
    import numpy as np

    from retrieval.services import embedder

    model = embedder()
    rows = list(
        KnowledgeEntry.objects.filter(deleted=False)
        .exclude(category="")
        .order_by("version")
        .values_list("text", "category", "embedding", "embedding_model", "resolved_at", "updated_at")
    )
    vectors = np.zeros((len(rows), model.dim), dtype=np.float32)
    stale = []
    for index, (_text, _category, blob, model_name, _resolved, _updated) in enumerate(rows):
        if blob and model_name == model.name:
            vectors[index] = np.frombuffer(bytes(blob), dtype="<f4")
        else:
            stale.append(index)
    if stale:
        vectors[stale] = model.encode([rows[index][0] for index in stale])
    times = [row[4] or row[5] for row in rows]  # when resolved; when indexed for an entry without that
    return [row[0] for row in rows], [row[1] for row in rows], vectors, times


def train_label_model(*, progress: Progress | None = None) -> TrainSummary:
    """Fit the label model on the live knowledge base and replace the saved one (atomically)."""
    from retrieval.novelty import fit_label_model_with_novelty
    from retrieval.services import embedder

    texts, labels, vectors = _labelled_entries()
    distinct = len(set(labels))
    if len(texts) < MIN_ENTRIES or distinct < 2:
        reason = (
            f"{len(texts)} labelled entries in {distinct} categories: need at least {MIN_ENTRIES} "
            "in 2 categories; decisions use neighbour votes meanwhile"
        )
        logger.info("label model not trained: %s", reason)
        return TrainSummary(trained=False, entries=len(texts), labels=distinct, reason=reason)
    model = fit_label_model_with_novelty(
        texts=texts, embeddings=vectors, labels=labels, embedding_model=embedder().name, progress=progress
    )
    model.save(label_model_path())
    _cache.forget()
    logger.info(
        "label model trained on %d entries, %d labels: out-of-fold accuracy %.3f, calibration error %.3f",
        len(texts),
        distinct,
        model.stats["oof_accuracy"],
        model.stats["oof_ece"],
    )
    stats = {key: value for key, value in model.stats.items() if key != "class_counts"}
    return TrainSummary(trained=True, entries=len(texts), labels=distinct, stats=stats)


class _Cache:
    """This process's loaded label model and the file state it was loaded from."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.model: LabelModel | None = None
        self.signature: tuple[int, int, int, str] | None = None
        self.checked_at = 0.0

    def forget(self) -> None:
        with self.lock:
            self.model, self.signature, self.checked_at = None, None, 0.0


_cache = _Cache()


def current_label_model() -> LabelModel | None:
    """The saved label model (reloaded when its file changes), or None when there is no usable one."""
    from retrieval.errors import IndexFormatMismatch, IndexLoadError
    from retrieval.label_model import LabelModel
    from retrieval.services import embedder

    with _cache.lock:
        now = time.monotonic()
        if _cache.signature is not None and now - _cache.checked_at < RELOAD_CHECK_SECONDS:
            return _cache.model
        _cache.checked_at = now
        path = label_model_path()
        model_name = embedder().name
        try:
            stat = path.stat()
        except FileNotFoundError:
            _cache.model, _cache.signature = None, (0, 0, 0, model_name)
            return None
        # Another embedding model adopted means another label model, even if the file is the same.
        signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns, model_name)
        if signature == _cache.signature:
            return _cache.model
        try:
            _cache.model = LabelModel.load(path, embedding_model=model_name)
        except IndexFormatMismatch as exc:
            # An older format (format 2 was a pickle) is never deserialised: it waits for a retrain.
            logger.warning(
                "label model at %s is in an older format (%s): ignored, never unpickled; the periodic "
                "retraining replaces it, or run manage.py train_classifier",
                path,
                exc,
            )
            _cache.model = None
        except (IndexLoadError, OSError) as exc:
            logger.warning(
                "label model at %s unusable (%s); retrain it (manage.py train_classifier)", path, exc
            )
            _cache.model = None
        _cache.signature = signature
        return _cache.model


def predict_label_probs(*, texts: Sequence[str], embeddings: np.ndarray) -> list[dict[str, float]] | None:
    """Calibrated category probabilities per text (the top few), or None without a trained model."""
    model = current_label_model()
    if model is None:
        return None
    from retrieval.novelty import predict_with_unknown

    return predict_with_unknown(model, texts=texts, embeddings=embeddings, top=TOP_LABELS)

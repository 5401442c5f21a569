"""Label model versions: every fitted label model kept by its content hash beside the current file.

``INDEX_DIR/label_models/<sha256>.bin`` holds each version ever registered (same artefact format as
the current ``label_model.bin``: arrays and JSON, never a pickle), so the version that was active
before a promotion stays loadable and a roll back is a pointer change. Which version decides a ticket
is the caller's business (``tickets.services.model_registry``): this module saves, loads (cached per
process: a hash names immutable content) and installs a version as the current file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from retrieval._storage import fsync_dir

if TYPE_CHECKING:
    import numpy as np

    from retrieval.label_model import LabelModel

logger = logging.getLogger(__name__)

VERSIONS_DIR = "label_models"
LOADED_VERSIONS = 4
"""Versions kept loaded per process (active, canary, shadow, and the one before)."""


@dataclass(frozen=True)
class SavedVersion:
    sha256: str
    format_version: int
    path: Path


def versions_dir() -> Path:
    return Path(settings.INDEX_DIR) / VERSIONS_DIR


def version_path(sha256: str) -> Path:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a SHA-256: {sha256!r}")
    return versions_dir() / f"{sha256}.bin"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_version(model: LabelModel) -> SavedVersion:
    """Write ``model`` under its content hash (atomically; the same content twice is one file)."""
    from retrieval.label_model import FORMAT_VERSION

    directory = versions_dir()
    directory.mkdir(parents=True, exist_ok=True)
    incoming = directory / f"incoming-{uuid.uuid4().hex}.tmp"
    model.save(incoming)
    sha256 = file_sha256(incoming)
    final = version_path(sha256)
    os.replace(incoming, final)
    fsync_dir(directory)
    return SavedVersion(sha256=sha256, format_version=FORMAT_VERSION, path=final)


def keep_current_as_version() -> SavedVersion | None:
    """The current ``label_model.bin`` (if any) copied in as a version: what was live before versions."""
    from retrieval.label_model import FORMAT_VERSION
    from retrieval.label_services import label_model_path

    current = label_model_path()
    if not current.exists():
        return None
    sha256 = file_sha256(current)
    final = version_path(sha256)
    if not final.exists():
        versions_dir().mkdir(parents=True, exist_ok=True)
        incoming = versions_dir() / f"incoming-{uuid.uuid4().hex}.tmp"
        shutil.copyfile(current, incoming)
        os.replace(incoming, final)
    return SavedVersion(sha256=sha256, format_version=FORMAT_VERSION, path=final)


def install_version(sha256: str) -> None:
    """Make version ``sha256`` the current ``label_model.bin`` too (atomic copy and rename), for the
    readers that do not go through the registry (``manage.py evaluate``, a process without a database)."""
    from retrieval.label_services import _cache, label_model_path

    source = version_path(sha256)
    target = label_model_path()
    incoming = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    shutil.copyfile(source, incoming)
    os.replace(incoming, target)
    fsync_dir(target.parent)
    _cache.forget()


class _Loaded:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.models: OrderedDict[tuple[str, str], LabelModel | None] = OrderedDict()


_loaded = _Loaded()


def load_version(sha256: str) -> LabelModel | None:
    """Version ``sha256`` (loaded once per process and embedding model), or None when missing or
    unusable (logged): a version fitted on vectors of another embedding model (one tuned since) is
    unusable, since its vectors and the new ones do not compare."""
    from retrieval.errors import IndexLoadError
    from retrieval.label_model import LabelModel
    from retrieval.services import embedder

    embedding_model = embedder().name
    key = (sha256, embedding_model)
    with _loaded.lock:
        if key in _loaded.models:
            _loaded.models.move_to_end(key)
            return _loaded.models[key]
        model: LabelModel | None
        try:
            model = LabelModel.load(version_path(sha256), embedding_model=embedding_model)
        except (IndexLoadError, OSError, ValueError) as exc:
            logger.warning("label model version %s unusable (%s)", sha256[:12], exc)
            model = None
        _loaded.models[key] = model
        while len(_loaded.models) > LOADED_VERSIONS:
            _loaded.models.popitem(last=False)
        return model


def predict_with_version(
    sha256: str, *, texts: Sequence[str], embeddings: np.ndarray
) -> list[dict[str, float]] | None:
    """Calibrated category probabilities from version ``sha256`` (None when it cannot be loaded)."""
    from retrieval.label_services import TOP_LABELS
    from retrieval.novelty import predict_with_unknown

    model = load_version(sha256)
    if model is None:
        return None
    return predict_with_unknown(model, texts=texts, embeddings=embeddings, top=TOP_LABELS)


@dataclass
class Candidate:
    """A label model fitted on the older history, with its report on the newest, held-back part."""

    model: LabelModel | None
    entries: int
    labels: int
    held_back: int
    reason: str = ""
    trained_from: object = None
    trained_until: object = None
    report: dict[str, object] | None = None
    held_back_data: tuple[list[str], list[str], np.ndarray] | None = None


def fit_candidate(*, holdout_share: float) -> Candidate:
    """Fit a label model on the knowledge base's older entries; hold the newest ``holdout_share`` back
    and report the candidate's accuracy and calibration on them (the registry compares the active
    version on the same entries). Nothing is saved or installed."""
    from retrieval.label_services import MIN_ENTRIES, labelled_history
    from retrieval.novelty import fit_label_model_with_novelty
    from retrieval.services import embedder

    texts, labels, vectors, resolved = labelled_history()
    held = int(len(texts) * holdout_share)
    cut = len(texts) - held
    train_labels = labels[:cut]
    distinct = len(set(train_labels))
    if cut < MIN_ENTRIES or distinct < 2:
        return Candidate(
            model=None,
            entries=cut,
            labels=distinct,
            held_back=held,
            reason=f"{cut} labelled entries in {distinct} categories after holding {held} back: "
            f"need at least {MIN_ENTRIES} in 2 categories",
        )
    model = fit_label_model_with_novelty(
        texts=texts[:cut], embeddings=vectors[:cut], labels=train_labels, embedding_model=embedder().name
    )
    times = [t for t in resolved[:cut] if t is not None]
    held_back_data = (texts[cut:], labels[cut:], vectors[cut:])
    return Candidate(
        model=model,
        entries=cut,
        labels=distinct,
        held_back=held,
        trained_from=min(times) if times else None,
        trained_until=max(times) if times else None,
        report=holdout_report(model, *held_back_data),
        held_back_data=held_back_data,
    )


def holdout_report(
    model: LabelModel, texts: list[str], labels: list[str], vectors: np.ndarray
) -> dict[str, object]:
    """Accuracy (top label) and expected calibration error of ``model`` on labelled entries."""
    import numpy as np

    from retrieval.calibration import calibration_error
    from retrieval.novelty import predict_with_unknown

    if not texts:
        return {"tickets": 0, "accuracy": None, "ece": None}
    probs = predict_with_unknown(model, texts=texts, embeddings=vectors, top=3)
    best = [max(p.items(), key=lambda item: item[1]) if p else ("", 0.0) for p in probs]
    correct = np.array([label == truth for (label, _), truth in zip(best, labels, strict=True)], dtype=float)
    confidence = np.array([score for _, score in best], dtype=float)
    return {
        "tickets": len(texts),
        "correct": int(correct.sum()),
        "accuracy": round(float(correct.mean()), 4),
        "ece": round(calibration_error(confidence, correct), 4),
        "oof_accuracy": model.stats.get("oof_accuracy"),
        "oof_ece": model.stats.get("oof_ece"),
    }

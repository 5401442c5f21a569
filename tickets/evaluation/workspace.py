"""The evaluation's isolated workspace: history embeddings, a knowledge base and a label model, all under
``DIR/workspace`` and all learned from HISTORY only. Nothing touches the database or the live index.

Each artefact is written atomically and tagged with a fingerprint of the inputs (files, columns,
embedding model, options): a re-run with the same inputs reuses them, a re-run with other inputs
starts over cleanly.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval._storage import atomic_write, atomic_write_json
from retrieval.errors import IndexLoadError
from tickets.evaluation.data import EvalTicket

if TYPE_CHECKING:
    from retrieval.embeddings import Embedder
    from retrieval.knowledge_base import KnowledgeBase
    from retrieval.label_model import FitOptions, LabelModel

WORKSPACE = "workspace"
FINGERPRINT_FILE = "fingerprint.json"
VECTORS_FILE = "history_vectors.npy"
LABEL_MODEL_FILE = "label_model.bin"
TIMINGS_FILE = "timings.json"
EMBED_BATCH = 256

Progress = Callable[[str, int, int], None]


def file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@dataclass
class Workspace:
    directory: Path
    history: list[EvalTicket]
    embedder: Embedder
    kb: KnowledgeBase
    label_model: LabelModel | None
    categories: tuple[str, ...]
    team_of_category: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)


def prepare_directory(output: Path, fingerprint: dict[str, Any]) -> tuple[Path, bool]:
    """``output/workspace``, emptied (with the old results) when its fingerprint differs.

    Returns the folder and whether earlier work can be resumed.
    """
    directory = output / WORKSPACE
    stored = directory / FINGERPRINT_FILE
    try:
        previous = json.loads(stored.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        previous = None
    if previous == fingerprint:
        return directory, True
    if directory.exists():
        shutil.rmtree(directory)
    for old in output.glob("results-*.jsonl"):
        old.unlink()
    directory.mkdir(parents=True)
    atomic_write_json(stored, fingerprint)
    return directory, False


def _timings(directory: Path) -> dict[str, float]:
    try:
        loaded = json.loads((directory / TIMINGS_FILE).read_text(encoding="utf-8"))
        return {str(k): float(v) for k, v in loaded.items()}
    except (FileNotFoundError, ValueError, AttributeError):
        return {}


def history_vectors(
    directory: Path,
    history: Sequence[EvalTicket],
    *,
    model: str,
    dim: int,
    processes: int,
    threads: int,
    progress: Callable[[int], None] | None,
) -> np.ndarray:
    """The history's embeddings: from the workspace if complete, else embedded now (``processes``)."""
    from retrieval.parallel import encode_batches

    path = directory / VECTORS_FILE
    if path.is_file():
        try:
            vectors = np.load(path, allow_pickle=False)
            if vectors.shape == (len(history), dim):
                return np.asarray(vectors, dtype=np.float32)
        except (OSError, ValueError):
            pass  # damaged by an interruption: embed again
    texts = [ticket.text for ticket in history]

    def batches() -> Iterator[list[str]]:
        for start in range(0, len(texts), EMBED_BATCH):
            yield texts[start : start + EMBED_BATCH]

    parts = []
    for vectors in encode_batches(batches(), model=model, processes=processes, threads=threads):
        parts.append(np.asarray(vectors, dtype=np.float32))
        if progress:
            progress(len(vectors))
    matrix = np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)
    buffer = io.BytesIO()
    np.save(buffer, matrix, allow_pickle=False)
    atomic_write(path, [buffer.getbuffer()])
    return matrix


def build_knowledge_base(
    directory: Path, embedder: Embedder, history: Sequence[EvalTicket], vectors: np.ndarray
) -> Any:
    """A knowledge base of the history (ids are row numbers), built in memory from stored vectors."""
    from retrieval.knowledge_base import KBDocument, KnowledgeBase

    docs = [
        KBDocument(id=i, text=ticket.text, category=ticket.category, team=ticket.team)
        for i, ticket in enumerate(history)
    ]
    return KnowledgeBase.build(embedder, directory / "kb", batches=[(docs, vectors)], total=len(docs))


def label_model_for(
    directory: Path,
    history: Sequence[EvalTicket],
    vectors: np.ndarray,
    *,
    embedding_model: str,
    options: FitOptions,
    progress: Progress | None,
) -> LabelModel | None:
    """The label model fitted on the history (reused from the workspace when there); None with fewer
    than two labels."""
    from retrieval.label_model import LabelModel
    from retrieval.novelty import fit_label_model_with_novelty

    path = directory / LABEL_MODEL_FILE
    labels = sorted({ticket.category for ticket in history})
    if len(labels) < 2:
        return None
    if path.is_file():
        try:
            saved = LabelModel.load(path, embedding_model=embedding_model, labels=labels)
        except IndexLoadError:
            saved = None  # damaged or stale: fit again
        if saved is not None and saved.options == options:
            return saved
    # Results computed with another label model would be mixed with this one's: start them over.
    for old in directory.parent.glob("results-*.jsonl"):
        old.unlink()
    model = fit_label_model_with_novelty(
        texts=[ticket.text for ticket in history],
        embeddings=vectors,
        labels=[ticket.category for ticket in history],
        embedding_model=embedding_model,
        options=options,
        progress=progress,
    )
    model.save(path)
    return model


def build_workspace(
    directory: Path,
    history: list[EvalTicket],
    *,
    embedder: Embedder,
    team_map: dict[str, str],
    processes: int,
    threads: int,
    options: FitOptions,
    embed_progress: Callable[[int], None] | None = None,
    fit_progress: Progress | None = None,
) -> Workspace:
    from tickets.evaluation.data import team_of_category

    timings = _timings(directory)
    embedded_before = (directory / VECTORS_FILE).is_file()
    started = time.monotonic()
    vectors = history_vectors(
        directory,
        history,
        model=embedder.name,
        dim=embedder.dim,
        processes=processes,
        threads=threads,
        progress=embed_progress,
    )
    if not embedded_before:
        timings["embed_history_s"] = round(time.monotonic() - started, 2)
    started = time.monotonic()
    kb = build_knowledge_base(directory, embedder, history, vectors)
    timings["build_index_s"] = round(time.monotonic() - started, 2)
    started = time.monotonic()
    label_model = label_model_for(
        directory, history, vectors, embedding_model=embedder.name, options=options, progress=fit_progress
    )
    if label_model is not None:  # the fit's own time, also when it was fitted by an earlier run
        timings["fit_label_model_s"] = float(label_model.stats.get("fit_seconds", 0.0))
    atomic_write_json(directory / TIMINGS_FILE, timings)
    return Workspace(
        directory=directory,
        history=history,
        embedder=embedder,
        kb=kb,
        label_model=label_model,
        categories=tuple(sorted({ticket.category for ticket in history})),
        team_of_category=team_of_category(history, team_map),
        timings=timings,
    )

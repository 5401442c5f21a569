"""Tuning the embedding model on the live knowledge base and adopting it (``train_classifier
--tune-embeddings``).

Routing keeps running on the current model throughout: the tuning, the export and the re-embedding happen
beside it; only at the end are the new vectors written (in place, without new versions, so no process
re-applies them), the tuned model adopted (``current.json``), the index rebuilt and the label model
refitted. Other processes notice the adopted model within seconds and open an index of that model (rebuilt
from the stored vectors, no re-embedding); until then they serve with the old one. Vectors of two models
are never mixed: every entry, index and label model records the embedder's name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

from retrieval.models import KnowledgeEntry

logger = logging.getLogger(__name__)

ANSWER_RANKER_TASK = "tickets.retrain_answer_ranker"
"""The answer ranker is fitted on answer embeddings of one model: refitted (by the task's name, this
package knows nothing of tickets) after another embedder is adopted; until then it serves unlearned."""

MIN_ENTRIES = 100
"""Fewer labelled entries than this are too few to tune on and to measure the tuning with."""
WRITE_CHUNK = 1000


@dataclass
class TuneEmbeddingsSummary:
    adopted: bool
    name: str | None
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)


def tune_options() -> Any:
    from retrieval.embedding_tuning import TuneOptions

    return TuneOptions(
        max_steps=settings.EMBEDDING_TUNING_STEPS,
        max_seconds=settings.EMBEDDING_TUNING_SECONDS,
        threads=settings.SWITCHBOARD_THREADS,
    )


def tune_embeddings(
    *, progress: Callable[[int, int], None] | None = None, refit_label_model: bool = True
) -> TuneEmbeddingsSummary:
    """Tune on the labelled knowledge base; adopt the tuned model only if it beats the shipped one on
    held-out history (then re-embed, rebuild the index and, unless the caller does it next, refit the
    label model on it)."""
    import numpy as np

    from retrieval.embeddings import get_embedder
    from retrieval.tuned_embedder import tuned_root
    from retrieval.tuning_decision import tune_and_decide

    rows = list(
        KnowledgeEntry.objects.filter(deleted=False)
        .exclude(category="")
        .order_by("doc_id")
        .values_list("text", "category", "embedding", "embedding_model")
    )
    if len(rows) < MIN_ENTRIES or len({row[1] for row in rows}) < 2:
        reason = f"{len(rows)} labelled entries: need at least {MIN_ENTRIES} in 2 categories to tune"
        return TuneEmbeddingsSummary(False, None, reason)
    shipped = get_embedder(settings.EMBEDDING_MODEL, threads=settings.SWITCHBOARD_THREADS)
    stored = None  # the shipped model's vectors, when the knowledge base holds them (saves embedding them)
    if all(blob and model == shipped.name for _, _, blob, model in rows):
        stored = np.stack([np.frombuffer(bytes(blob or b""), dtype="<f4") for _, _, blob, _ in rows])
    root = tuned_root()
    root.mkdir(parents=True, exist_ok=True)
    decision = tune_and_decide(
        texts=[row[0] for row in rows],
        labels=[row[1] for row in rows],
        shipped=shipped,
        shipped_vectors=stored,
        root=root,
        options=tune_options(),
        progress=progress,
    )
    if not decision.kept or decision.name is None:
        return TuneEmbeddingsSummary(False, decision.name, decision.reason, decision.figures)
    adopt_embedder(name=decision.name, refit_label_model=refit_label_model)
    return TuneEmbeddingsSummary(True, decision.name, decision.reason, decision.figures)


def adopt_embedder(*, name: str | None, refit_label_model: bool = True) -> None:
    """Switch to embedder ``name`` (None: the shipped one): re-embed the live entries with it, adopt it,
    rebuild the index and refit the label model."""
    from retrieval.embeddings import get_embedder
    from retrieval.label_services import train_label_model
    from retrieval.services import _lock_writers, kb_rebuild
    from retrieval.tuned_embedder import adopt, tuned_root

    model = get_embedder(name or settings.EMBEDDING_MODEL, threads=settings.SWITCHBOARD_THREADS)
    live = list(
        KnowledgeEntry.objects.filter(deleted=False).order_by("pk").values_list("pk", "text", "version")
    )
    for start in range(0, len(live), WRITE_CHUNK):
        chunk = live[start : start + WRITE_CHUNK]
        vectors = model.encode([text for _, text, _ in chunk])
        with transaction.atomic():
            _lock_writers()
            current = dict(
                KnowledgeEntry.objects.filter(pk__in=[pk for pk, _, _ in chunk]).values_list("pk", "version")
            )
            # An entry changed since it was read keeps its own, newer embedding. The answer's embedding
            # was made by the old model: dropped, so it is embedded again when an answer is chosen.
            entries = [
                KnowledgeEntry(
                    pk=pk,
                    embedding=vector.astype("<f4").tobytes(),
                    embedding_model=model.name,
                    answer_embedding=None,
                )
                for (pk, _, version), vector in zip(chunk, vectors, strict=True)
                if current.get(pk) == version
            ]
            KnowledgeEntry.objects.bulk_update(entries, ["embedding", "embedding_model", "answer_embedding"])
    adopt(name, root=tuned_root())
    kb_rebuild()
    if refit_label_model:
        train_label_model()
    transaction.on_commit(_refit_answer_ranker)
    logger.info("embedding model %s adopted: %d entries re-embedded", model.name, len(live))


def _refit_answer_ranker() -> None:
    from celery import current_app

    try:
        current_app.signature(ANSWER_RANKER_TASK).apply_async()
    except Exception:  # the broker is down: the beat's periodic refit catches up
        logger.exception("could not ask for the answer ranker's refit; the periodic retrain will do it")

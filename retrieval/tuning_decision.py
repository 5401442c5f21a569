"""Tune on most of the history, measure on the rest, keep the tuned model only where it wins.

The history is split per category (seeded): the tuning sees ``1 - holdout_share`` of it; the held-out part
is classified against the rest with the shipped and with the tuned vectors (similarity-weighted 5-NN vote,
as the neighbours vote, and a logistic regression, as the label model does). The tuned model is kept when
the mean of the two accuracies beats the shipped model's by more than ``min_gain``. Both figures and the
decision are returned, to be reported. Used by ``evaluate`` and ``train_classifier --tune-embeddings``.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from retrieval.embedding_tuning import TuneOptions
    from retrieval.embeddings import Embedder

logger = logging.getLogger(__name__)

NEIGHBOURS = 5


@dataclass
class TuningDecision:
    kept: bool
    name: str | None
    """The saved tuned artefact (also when not kept, for inspection); None when nothing was tuned."""
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)


def holdout_split(labels: Sequence[str], *, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, held_out)``: ``share`` of each category of >= 2 rows held out (at least 1)."""
    rng = np.random.default_rng(seed)
    array = np.asarray(labels)
    held: list[int] = []
    for label in sorted(set(labels)):
        rows = np.flatnonzero(array == label)
        if len(rows) >= 2:
            held.extend(int(row) for row in rng.permutation(rows)[: max(1, round(share * len(rows)))])
    held_out = np.array(sorted(held), dtype=np.int64)
    train = np.setdiff1d(np.arange(len(labels)), held_out)
    return train, held_out


def knn_accuracy(train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray) -> float:
    """Similarity-weighted vote of the 5 nearest training rows, as the neighbours vote in retrieval."""
    right = 0
    for start in range(0, len(test), 512):
        scores = test[start : start + 512] @ train.T
        top = np.argpartition(-scores, min(NEIGHBOURS, scores.shape[1] - 1), axis=1)[:, :NEIGHBOURS]
        for row, neighbours in enumerate(top):
            votes: dict[str, float] = {}
            for column in neighbours:
                votes[str(train_y[column])] = votes.get(str(train_y[column]), 0.0) + float(
                    scores[row, column]
                )
            right += max(votes, key=lambda label: votes[label]) == test_y[start + row]
    return right / max(1, len(test))


def logistic_accuracy(train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=10.0, max_iter=500).fit(train, train_y)
    return float(np.mean(model.predict(test) == test_y))


def held_out_figures(
    vectors: np.ndarray, labels: np.ndarray, train: np.ndarray, held: np.ndarray
) -> dict[str, float]:
    knn = knn_accuracy(vectors[train], labels[train], vectors[held], labels[held])
    logistic = logistic_accuracy(vectors[train], labels[train], vectors[held], labels[held])
    return {"knn5": round(knn, 4), "logistic": round(logistic, 4), "mean": round((knn + logistic) / 2, 4)}


def keeps(figures: dict[str, Any], min_gain: float) -> bool:
    """The decision: the tuned model's held-out mean accuracy beats the shipped one's by more than
    ``min_gain``."""
    return bool(figures["tuned"]["mean"] > figures["shipped"]["mean"] + min_gain)


def explain(figures: dict[str, Any], min_gain: float) -> str:
    verdict = "beats" if keeps(figures, min_gain) else "does not beat"
    return (
        f"tuned {verdict} shipped on {figures['held_out_tickets']} held-out history tickets (mean of 5-NN "
        f"and logistic accuracy {figures['tuned']['mean']:.4f} vs {figures['shipped']['mean']:.4f}"
        f"{f', needed a gain over {min_gain:g}' if min_gain else ''})"
    )


def tune_and_decide(
    *,
    texts: Sequence[str],
    labels: Sequence[str],
    shipped: Embedder,
    root: Path,
    options: TuneOptions,
    shipped_vectors: np.ndarray | None = None,
    holdout_share: float = 0.2,
    min_gain: float = 0.0,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> TuningDecision:
    """Tune on the training part of the history, save the artefact under ``root``, and decide."""
    from retrieval.embedding_tuning import tune
    from retrieval.model_files import find_model_dir
    from retrieval.tuned_embedder import TunedOnnxEmbedder, save_tuned

    array = np.asarray(labels)
    train, held = holdout_split(labels, share=holdout_share, seed=seed)
    if len(held) == 0 or len(set(array[train])) < 2:
        return TuningDecision(False, None, "too few tickets per category to hold some out")
    started = time.monotonic()
    if shipped_vectors is None:
        shipped_vectors = shipped.encode(list(texts))
    shipped_embed_s = time.monotonic() - started
    with tempfile.TemporaryDirectory(prefix=".tuning-", dir=root if root.is_dir() else None) as work:
        result = tune(
            texts=[texts[row] for row in train],
            labels=[labels[row] for row in train],
            base_dir=find_model_dir(),
            target_dir=Path(work) / "model",
            options=options,
            progress=progress,
        )
        started_export = time.monotonic()
        name = save_tuned(result.model_dir, root=root, stats=result.stats())
        export_s = time.monotonic() - started_export
    tuned = TunedOnnxEmbedder(name, root=root, threads=getattr(shipped, "threads", 1))
    started_embed = time.monotonic()
    tuned_vectors = tuned.encode(list(texts))
    tuned_embed_s = time.monotonic() - started_embed
    before = held_out_figures(np.asarray(shipped_vectors, dtype=np.float32), array, train, held)
    after = held_out_figures(tuned_vectors, array, train, held)
    figures = {
        "held_out_tickets": len(held),
        "tuned_on_tickets": len(train),
        "shipped": before,
        "tuned": after,
        "tuning": result.stats(),
        "seconds": {
            "shipped_embed": round(shipped_embed_s, 1),
            "tune": round(result.seconds, 1),
            "export": round(export_s, 1),
            "tuned_embed": round(tuned_embed_s, 1),
            "total": round(time.monotonic() - started, 1),
        },
    }
    kept, reason = keeps(figures, min_gain), explain(figures, min_gain)
    logger.info("embedding tuning: %s", reason)
    return TuningDecision(kept, name, reason, figures)

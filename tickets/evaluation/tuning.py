"""``evaluate --tune-embeddings``: tune the embedding model on the HISTORY only and keep it only where it
beats the shipped model on held-out history (:mod:`retrieval.tuning_decision`).

The artefact and the decision live in ``DIR/tuning`` (not in the live models' folder, never adopted);
a re-run with the same history and budget reuses them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval._storage import atomic_write_json
from tickets.evaluation.data import EvalTicket

if TYPE_CHECKING:
    from retrieval.embedding_tuning import TuneOptions
    from retrieval.embeddings import Embedder

TUNING_DIR = "tuning"
DECISION_FILE = "decision.json"


def _reuse(path: Path, fingerprint: dict[str, Any], root: Path) -> dict[str, Any] | None:
    from retrieval.tuned_embedder import TunedEmbedderRefused, check_tuned

    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("fingerprint") != fingerprint:
        return None
    if record.get("name"):
        try:
            check_tuned(str(record["name"]), root=root)
        except TunedEmbedderRefused:
            return None
    return record


def choose_embedder(
    output: Path,
    history: Sequence[EvalTicket],
    *,
    shipped: Embedder,
    options: TuneOptions,
    fingerprint: dict[str, Any],
    min_gain: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Embedder, dict[str, Any]]:
    """The embedder the evaluation uses (tuned when kept, else ``shipped``) and the tuning's report.

    The decision is taken from the stored figures each time, so another ``min_gain`` needs no new tuning."""
    from retrieval.embeddings import get_embedder, register_embedder
    from retrieval.tuned_embedder import TunedOnnxEmbedder
    from retrieval.tuning_decision import explain, keeps, tune_and_decide

    root = output / TUNING_DIR
    root.mkdir(parents=True, exist_ok=True)
    fingerprint = {**fingerprint, "options": asdict(options)}
    record = _reuse(root / DECISION_FILE, fingerprint, root)
    if record is None:
        decision = tune_and_decide(
            texts=[ticket.text for ticket in history],
            labels=[ticket.category for ticket in history],
            shipped=shipped,
            root=root,
            options=options,
            progress=progress,
        )
        record = {"fingerprint": fingerprint, "name": decision.name, "figures": decision.figures}
        atomic_write_json(root / DECISION_FILE, record)
    figures = record["figures"]
    kept = bool(record["name"]) and bool(figures) and keeps(figures, min_gain)
    report = {
        "kept": kept,
        "name": record["name"],
        "min_gain": min_gain,
        "reason": explain(figures, min_gain) if figures else "nothing tuned (too few tickets per category)",
        "figures": figures,
    }
    if not kept:
        return shipped, report
    name = str(record["name"])
    threads = int(getattr(shipped, "threads", 1))
    register_embedder(name, lambda count: TunedOnnxEmbedder(name, root=root, threads=count))
    return get_embedder(name, threads=threads), report

"""Which decision model version decides a ticket: the live pointers, read by every worker.

The active, canary and shadow versions of each kind (label model, LLM) are rows of ``DecisionModel``;
each process reads them at most every :data:`POINTER_TTL_SECONDS`, so a promotion or a roll back
reaches every worker within that time without a restart (the artefacts themselves are loaded once
per process, by hash).
A ticket goes to the canary when a stable hash of its id falls below the canary's share: the same
ticket always gets the same version, whichever worker takes it. Without an active version (an install
from before versions), decisions use the current label model file as they always did.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tickets.decision_models import DecisionModel

if TYPE_CHECKING:
    import numpy as np

POINTER_TTL_SECONDS = 3.0
"""How stale a worker's view of the active / canary / shadow versions may be."""


@dataclass(frozen=True)
class VersionRef:
    id: int
    artefact_hash: str


@dataclass(frozen=True)
class LiveVersions:
    active: VersionRef | None = None
    canary: VersionRef | None = None
    canary_share: float = 0.0
    shadows: tuple[VersionRef, ...] = ()


class _Pointers:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value: dict[str, LiveVersions] = {}
        self.read_at: dict[str, float] = {}

    def forget(self) -> None:
        with self.lock:
            self.value, self.read_at = {}, {}


_pointers = _Pointers()


def live_versions(kind: str = DecisionModel.Kind.LABEL_MODEL) -> LiveVersions:
    """The live versions of a kind (label model, LLM), as of at most :data:`POINTER_TTL_SECONDS` ago."""
    with _pointers.lock:
        now = time.monotonic()
        cached = _pointers.value.get(kind)
        if cached is not None and now - _pointers.read_at.get(kind, 0.0) < POINTER_TTL_SECONDS:
            return cached
        rows = list(
            DecisionModel.objects.filter(
                kind=kind,
                state__in=[
                    DecisionModel.State.ACTIVE,
                    DecisionModel.State.CANARY,
                    DecisionModel.State.SHADOW,
                ],
            )
            .order_by("pk")
            .values_list("pk", "artefact_hash", "state", "canary_share")
        )
        active = next(
            (VersionRef(pk, h) for pk, h, state, _ in rows if state == DecisionModel.State.ACTIVE), None
        )
        canary = next(
            ((VersionRef(pk, h), s) for pk, h, state, s in rows if state == DecisionModel.State.CANARY), None
        )
        _pointers.value[kind] = LiveVersions(
            active=active,
            canary=canary[0] if canary and active else None,
            canary_share=canary[1] if canary and active else 0.0,
            shadows=tuple(
                VersionRef(pk, h) for pk, h, state, _ in rows if state == DecisionModel.State.SHADOW
            ),
        )
        _pointers.read_at[kind] = now
        return _pointers.value[kind]


def forget_pointers() -> None:
    """Read the pointers again on next use (this process's own promotions, tests)."""
    _pointers.forget()


def ticket_bucket(ticket_id: int, purpose: str = "canary") -> float:
    """A stable number in [0, 1) for a ticket id: the same in every process and run (another one for
    each ``purpose``, so the shadow sample is not the canary's tickets)."""
    digest = hashlib.sha256(f"switchboard-{purpose}:{ticket_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def version_for(ticket_id: int, live: LiveVersions) -> tuple[VersionRef | None, bool]:
    """The version that decides ``ticket_id`` and whether it is the canary."""
    if live.canary is not None and ticket_bucket(ticket_id) < live.canary_share:
        return live.canary, True
    return live.active, False


def label_probs_for(
    ticket_ids: Sequence[int], texts: list[str], vectors: np.ndarray
) -> tuple[list[dict[str, float] | None], list[dict[str, Any]]]:
    """Each ticket's label probabilities from its version, and what to remember of that choice
    (``{"decision_model_id": ..., "canary": ...}``, empty without versions)."""
    from retrieval.label_services import predict_label_probs
    from retrieval.label_versions import predict_with_version

    live = live_versions()
    if live.active is None:
        legacy = predict_label_probs(texts=texts, embeddings=vectors)
        return (list(legacy) if legacy is not None else [None] * len(texts)), [{} for _ in texts]
    chosen = [version_for(ticket_id, live) for ticket_id in ticket_ids]
    probs: list[dict[str, float] | None] = [None] * len(texts)
    unusable: list[int] = []
    for ref in {ref for ref, _ in chosen if ref is not None}:
        rows = [row for row, (r, _) in enumerate(chosen) if r == ref]
        predicted = predict_with_version(
            ref.artefact_hash, texts=[texts[r] for r in rows], embeddings=vectors[rows]
        )
        if predicted is None:  # the version's artefact is unusable (logged): e.g. fitted before a
            unusable.extend(rows)  # tuned embedder was adopted; the current file decides these
            continue
        for row, value in zip(rows, predicted, strict=True):
            probs[row] = value
    if unusable:
        current = predict_label_probs(texts=[texts[r] for r in unusable], embeddings=vectors[unusable])
        if current is not None:
            for row, value in zip(unusable, current, strict=True):
                probs[row] = value
    marks = [
        {"decision_model_id": ref.id, "canary": canary} if ref and row not in unusable else {}
        for row, (ref, canary) in enumerate(chosen)
    ]
    return probs, marks


def label_model_of(decision_model_id: int | None) -> Any:
    """The loaded label model of a version (None when unknown or unusable)."""
    from retrieval.label_versions import load_version

    if decision_model_id is None:
        return None
    artefact_hash = (
        DecisionModel.objects.filter(pk=decision_model_id).values_list("artefact_hash", flat=True).first()
    )
    return load_version(artefact_hash) if artefact_hash else None

"""Stage 1 of the pipeline on a batch of tickets: everything before the model.

Normalise and check the text, flag prompt-injection attempts, redact personal data (what the model
sees), embed the batch at once, find a near-duplicate among open tickets, and retrieve the most
similar past resolved tickets with the classifier's view of the labels.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from inference_app.llm.redaction import redact
from retrieval.answer_choice import CANDIDATES as ANSWER_CANDIDATES
from tickets.audit import text_fingerprint
from tickets.models import OPEN_STATUSES, Ticket
from tickets.pipeline.screening import screen, taxonomy_labels
from tickets.pipeline.text import normalise, prepare
from tickets.pipeline.versions import label_probs_for
from tickets.services.knowledge import document_text

if TYPE_CHECKING:
    import numpy as np

    from retrieval.knowledge_base import Hit

DUPLICATE_LOOKBACK = timedelta(hours=72)
DUPLICATE_CANDIDATES = 300


@dataclass
class InputResult:
    """What input processing found for one ticket, handed to the model stage."""

    usable: bool
    text: str  # redacted: what the model will see
    problems: list[str]
    language: str
    negative: bool
    injection: list[str]  # the phrases that look like an attempt to steer the model
    redactions: dict[str, int]
    duplicate_of: int | None = None
    duplicate_similarity: float | None = None
    embedding: bytes | None = None
    neighbours: list[dict[str, Any]] = field(default_factory=list)
    label_probs: dict[str, float] | None = None
    text_sha256: str = ""
    injection_details: dict[str, Any] = field(default_factory=dict)  # reasons, spans, policy applied
    version: dict[str, Any] = field(default_factory=dict)  # the decision model version, canary or not

    def ticket_fields(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "validation_errors": self.problems,
            "injection_suspected": bool(self.injection),
            "duplicate_of_id": self.duplicate_of,
            "text_embedding": self.embedding,
            "pipeline_context": {
                "usable": self.usable,
                "text": self.text,
                "problems": self.problems,
                "negative": self.negative,
                "injection": self.injection,
                "injection_reasons": self.injection_details.get("injection_reasons", []),
                "injection_policy": self.injection_details.get("injection_policy", ""),
                "neighbours": self.neighbours,
                "label_probs": self.label_probs,
                "language": self.language,
                **self.version,
            },
        }

    def input_details(self) -> dict[str, Any]:
        return {
            "text_sha256": self.text_sha256,
            "usable": self.usable,
            "problems": self.problems,
            "language": self.language,
            "very_negative": self.negative,
            "prompt_injection": self.injection,
            **self.injection_details,
            "redactions": self.redactions,
            "duplicate_of": self.duplicate_of,
            "duplicate_similarity": self.duplicate_similarity,
        }

    def retrieval_details(self) -> dict[str, Any]:
        return {
            "neighbours": [
                {"ticket_id": n["doc_id"], "score": round(n["score"], 4), "category": n["category"]}
                for n in self.neighbours
            ],
            "label_probs": self.label_probs,
            **self.version,
        }


def process_batch(tickets: Sequence[Ticket]) -> dict[int, InputResult]:
    results: dict[int, InputResult] = {}
    labels = taxonomy_labels()
    for ticket in tickets:
        prepared = prepare(subject=ticket.subject, body=ticket.body)
        screened = screen(prepared.text, labels=labels)
        redacted = redact(screened.evidence_text)
        results[ticket.pk] = InputResult(
            usable=prepared.usable,
            text=redacted.text,
            problems=prepared.problems,
            language=prepared.language,
            negative=prepared.negative,
            injection=list(screened.signal.matches),
            redactions=dict(redacted.counts),
            text_sha256=text_fingerprint(prepared.text),
            injection_details=screened.details(),
        )
    usable = [ticket for ticket in tickets if results[ticket.pk].usable]
    if usable:
        _embed_and_retrieve(usable, results)
    return results


def _embed_and_retrieve(tickets: Sequence[Ticket], results: dict[int, InputResult]) -> None:
    from retrieval.services import embed_texts, kb_search

    texts = [results[ticket.pk].text for ticket in tickets]
    vectors = embed_texts(texts)
    label_probs, versions = label_probs_for([ticket.pk for ticket in tickets], texts, vectors)
    duplicates = _find_duplicates(tickets, vectors)
    hits_of = {
        ticket.pk: kb_search(
            text=results[ticket.pk].text,
            k=max(settings.PIPELINE_TOP_K, ANSWER_CANDIDATES),
            query_vector=vectors[row],
            exclude_ids=[ticket.pk],
        )
        for row, ticket in enumerate(tickets)
    }
    past = Ticket.objects.only("subject", "body", "priority", "resolution").in_bulk(
        {hit.id for hits in hits_of.values() for hit in hits}
    )
    for row, ticket in enumerate(tickets):
        result = results[ticket.pk]
        result.embedding = vectors[row].astype("float32").tobytes()
        result.label_probs = label_probs[row]
        result.version = versions[row]
        result.duplicate_of, result.duplicate_similarity = duplicates.get(ticket.pk, (None, None))
        result.neighbours = [_neighbour(hit, past[hit.id]) for hit in hits_of[ticket.pk] if hit.id in past]


def _neighbour(hit: Hit, past: Ticket) -> dict[str, Any]:
    """A retrieved ticket as the model stage sees it: its personal data redacted too."""
    return {
        "doc_id": hit.id,
        "score": float(hit.dense_score if hit.dense_score is not None else hit.score),
        "category": hit.category or "",
        "team": hit.team or "",
        "text": _redacted(document_text(past.subject, past.body)),
        "priority": past.priority,
        "resolution": _redacted(past.resolution),
        "lexical_score": hit.lexical_score,
    }


@functools.lru_cache(maxsize=8192)
def _redacted(text: str) -> str:
    """A past ticket's text as the model may see it (the same few are retrieved again and again).

    Normalised first, like a new ticket: markup flattened with its blocks apart, entities decoded."""
    return redact(normalise(text)[0]).text


def _find_duplicates(tickets: Sequence[Ticket], vectors: np.ndarray) -> dict[int, tuple[int, float]]:
    """Each ticket's most similar open ticket above the threshold: the same requester's, or a recent one."""
    import numpy as np

    threshold = settings.PIPELINE_DUPLICATE_SIMILARITY
    batch_ids = [ticket.pk for ticket in tickets]
    emails = [ticket.requester_email for ticket in tickets if ticket.requester_email]
    recent = timezone.now() - DUPLICATE_LOOKBACK
    candidates = list(
        Ticket.objects.filter(status__in=OPEN_STATUSES, text_embedding__isnull=False)
        .filter(Q(requester_email__in=emails) | Q(created_at__gte=recent))
        .exclude(pk__in=batch_ids)
        .order_by("-created_at")
        .values_list("pk", "text_embedding")[:DUPLICATE_CANDIDATES]
    )
    ids = [pk for pk, _ in candidates]
    matrix = (
        np.vstack([np.frombuffer(blob, dtype=np.float32) for _, blob in candidates if blob is not None])
        if candidates
        else np.zeros((0, vectors.shape[1]), dtype=np.float32)
    )
    found: dict[int, tuple[int, float]] = {}
    for row, ticket in enumerate(tickets):
        # earlier tickets of the same batch count too
        pool_ids = ids + batch_ids[:row]
        pool = np.vstack([matrix, vectors[:row]]) if row else matrix
        if not pool_ids:
            continue
        similarities = pool @ vectors[row]
        best = int(np.argmax(similarities))
        if float(similarities[best]) >= threshold:
            found[ticket.pk] = (pool_ids[best], float(similarities[best]))
    return found

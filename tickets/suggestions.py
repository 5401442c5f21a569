"""Which stored answer to suggest for a ticket, how sure to be, and learning that from history.

The tickets side of :mod:`retrieval.answer_ranker`: it reads what only the tickets app knows (the past
tickets' answers, agents' feedback on suggestions built on them) and hands it over as plain data. The
same ranking code runs in ``evaluate`` (``tickets.evaluation.suggestions``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone

from inference_app.llm.types import Neighbour
from tickets.models import Feedback, Ticket, TicketStatus

if TYPE_CHECKING:
    import numpy as np

    from retrieval.answer_ranker import AnswerChoice

HISTORY_LIMIT = 5000
"""History tickets (the latest) the ranker learns from: enough for a dozen weights, bounded in time."""


@dataclass(frozen=True)
class ChosenAnswer:
    """The ranker's choice among the retrieved tickets, with the evidence to record."""

    choice: AnswerChoice
    ranked: list[Neighbour]

    @property
    def shown(self) -> Neighbour | None:
        return None if self.choice.abstained or not self.ranked else self.ranked[0]

    def details(self) -> dict[str, Any]:
        return {
            # Only a calibrated confidence is one; the fixed-weight ranker's number is a score.
            "suggestion_confidence": (
                round(self.choice.confidence, 4)
                if self.choice.confidence is not None and self.choice.calibrated
                else None
            ),
            "calibrated": self.choice.calibrated,
            "abstained": self.choice.abstained,
            "threshold": self.choice.threshold,
            "reason": self.choice.reason,
            "ranked": [
                {"ticket_id": r.doc_id, "probability": round(r.probability, 4)}
                for r in self.choice.ranked[:5]
            ],
        }


def feedback_counts(*, doc_ids: Sequence[int]) -> dict[int, tuple[int, int, int]]:
    """(accepted as is, edited, rejected) of the suggestions whose chosen answer was each past ticket's."""
    kinds: dict[str, int] = {Feedback.Kind.ACCEPTED: 0, Feedback.Kind.EDITED: 1, Feedback.Kind.REJECTED: 2}
    counts: dict[int, list[int]] = {}
    rows = Feedback.objects.filter(
        kind__in=list(kinds), suggestion__citations__0__ticket_id__in=list(doc_ids)
    ).values_list("kind", "suggestion__citations")
    for kind, citations in rows:
        doc_id = int(citations[0]["ticket_id"])
        counts.setdefault(doc_id, [0, 0, 0])[kinds[kind]] += 1
    return {doc_id: (c[0], c[1], c[2]) for doc_id, c in counts.items()}


def _ages(doc_ids: Sequence[int]) -> dict[int, float]:
    now = timezone.now()
    rows = Ticket.objects.filter(pk__in=list(doc_ids)).values_list("pk", "resolved_at")
    return {pk: (now - resolved).total_seconds() / 86400 for pk, resolved in rows if resolved is not None}


@dataclass(frozen=True)
class _Hit:
    """A neighbour as :func:`retrieval.answer_choice.candidates_from_hits` reads it."""

    id: int
    score: float
    dense_score: float | None
    lexical_score: float | None
    category: str | None


@dataclass(frozen=True)
class AnswerEvidence:
    """What ranking needs beyond the neighbours, fetched once for a batch of tickets: the candidate
    answers' embeddings, their ages and feedback, and the tickets' query vectors (by text)."""

    vectors: Mapping[int, np.ndarray]
    ages: Mapping[int, float]
    feedback: Mapping[int, tuple[int, int, int]]
    queries: Mapping[str, np.ndarray]


def _with_answer(neighbours: Sequence[Neighbour]) -> list[Neighbour]:
    return [n for n in neighbours if n.resolution.strip()]


def answer_evidence(
    *,
    items: Sequence[tuple[str, Sequence[Neighbour]]],
    searched_with: Mapping[str, bytes | memoryview] | None = None,
) -> AnswerEvidence:
    """The evidence for every (text, neighbours) pair of a batch: three queries and at most two embed
    calls (the answers without a stored embedding, the texts) for the whole batch. ``searched_with``:
    the vector a text was searched with (the ticket's stored embedding), used as its query vector
    rather than embedding it again (the embedder quantises per batch: this is the search's vector)."""
    import numpy as np

    from retrieval.services import embed_texts, kb_answer_vectors

    answers: dict[int, str] = {}
    for _, neighbours in items:
        answers.update({n.doc_id: n.resolution for n in _with_answer(neighbours)})
    ids = list(answers)
    vectors = kb_answer_vectors(doc_ids=ids, answers=answers) if ids else {}
    dimension = next((len(v) for v in vectors.values()), 0)
    queries: dict[str, np.ndarray] = {}
    to_embed: list[str] = []
    for text, neighbours in items:
        # A text is needed only where it has a candidate to rank (as before: no embedding otherwise).
        if not text or text in queries or not any(n.doc_id in vectors for n in _with_answer(neighbours)):
            continue
        stored = np.frombuffer(bytes((searched_with or {}).get(text) or b""), dtype="<f4")
        if len(stored) == dimension:
            queries[text] = stored
        else:
            to_embed.append(text)
    to_embed = list(dict.fromkeys(to_embed))
    if to_embed:
        queries.update(zip(to_embed, embed_texts(to_embed), strict=True))
    return AnswerEvidence(
        vectors=vectors,
        ages=_ages(ids) if ids else {},
        feedback=feedback_counts(doc_ids=ids) if ids else {},
        queries=queries,
    )


def choose_answer(
    *,
    text: str,
    neighbours: Sequence[Neighbour],
    category: str | None,
    evidence: AnswerEvidence | None = None,
) -> ChosenAnswer:
    """Rank the retrieved tickets' answers for a new ticket (its redacted ``text``, as embedded for the
    search) whose decided category is ``category``; ``evidence`` fetched for its batch by
    :func:`answer_evidence` (fetched for this ticket alone without it)."""
    from retrieval.answer_choice import candidates_from_hits
    from retrieval.answer_services import current_answer_ranker

    if evidence is None:
        evidence = answer_evidence(items=[(text, neighbours)])
    with_answer = _with_answer(neighbours)
    hits = [_Hit(n.doc_id, n.score, n.score, n.lexical_score, n.category) for n in with_answer]
    candidates, matrix = candidates_from_hits(
        hits, answer_vectors=evidence.vectors, ages_days=evidence.ages, feedback=evidence.feedback
    )
    query = evidence.queries.get(text) if candidates and text else None
    choice = current_answer_ranker().choose(
        candidates,
        matrix,
        decided_category=category,
        min_confidence=settings.SUGGESTION_MIN_CONFIDENCE,
        query_vector=query,
    )
    by_id = {n.doc_id: n for n in with_answer}
    return ChosenAnswer(choice=choice, ranked=[by_id[r.doc_id] for r in choice.ranked])


@dataclass
class RankerSummary:
    trained: bool
    history: int
    reason: str = ""
    stats: dict[str, Any] | None = None


def train_answer_ranker(
    *, limit: int = HISTORY_LIMIT, draft_beats_stored: bool | None = None
) -> RankerSummary:
    """Fit the answer ranker on the latest resolved tickets with an answer (leave-one-out against the
    live knowledge base) and save it for every process. ``draft_beats_stored`` records what an
    ``evaluate`` run with drafting showed (``LLM_DRAFT_REPLIES=auto`` follows it)."""
    import numpy as np

    from retrieval.answer_choice import CategorySums, learn_answer_map, leave_one_out_queries
    from retrieval.answer_ranker import fit_answer_ranker
    from retrieval.answer_services import current_answer_ranker, save_answer_ranker
    from retrieval.models import KnowledgeEntry
    from retrieval.services import embedder, kb_answer_vectors, knowledge_base

    model = embedder()
    rows = list(
        Ticket.objects.filter(status=TicketStatus.RESOLVED)
        .exclude(resolution="")
        .order_by("-resolved_at", "-pk")
        .values_list("pk", "resolution", "category__name")[:limit]
    )
    entries = dict(
        KnowledgeEntry.objects.filter(
            doc_id__in=[r[0] for r in rows], deleted=False, embedding_model=model.name
        ).values_list("doc_id", "embedding")
    )
    texts = dict(KnowledgeEntry.objects.filter(doc_id__in=list(entries)).values_list("doc_id", "text"))
    rows = [r for r in rows if entries.get(r[0])]
    if len(rows) < 20:
        return RankerSummary(
            False, len(rows), f"{len(rows)} indexed tickets with an answer: need at least 20"
        )
    answers = kb_answer_vectors(doc_ids=[r[0] for r in rows], answers={r[0]: r[1] for r in rows})
    categories = {r[0]: r[2] or "" for r in rows}
    vectors = np.vstack([np.frombuffer(bytes(entries[r[0]] or b""), dtype="<f4") for r in rows])
    doc_ids = [r[0] for r in rows]
    # The recorded category stands in for the decided one (close to it where routing is good).
    decided = [r[2] for r in rows]
    answer_map, predicted = learn_answer_map(
        doc_ids=doc_ids, vectors=vectors, answer_vectors=answers, decided_categories=decided
    )
    queries = leave_one_out_queries(
        knowledge_base(),
        doc_ids=[r[0] for r in rows],
        texts=[texts[r[0]] for r in rows],
        vectors=vectors,
        answer_vectors=answers,
        decided_categories=decided,
        categories=categories,
        ages_days=_ages([r[0] for r in rows]),
        feedback=feedback_counts(doc_ids=[r[0] for r in rows]),
        predicted_answers=predicted,
    )
    ranker = fit_answer_ranker(
        queries,
        embedding_model=model.name,
        centroids=CategorySums(answers, categories).centroids(),
        answer_map=answer_map,
    )
    previous = current_answer_ranker().stats.get("drafting_beats_stored")
    verdict = draft_beats_stored if draft_beats_stored is not None else previous
    if verdict is not None:
        ranker.stats["drafting_beats_stored"] = bool(verdict)
    save_answer_ranker(ranker)
    return RankerSummary(True, len(rows), stats=ranker.stats)


def drafting_enabled() -> bool:
    """LLM_DRAFT_REPLIES: on, off, or auto (on where history showed drafts beat the stored answer)."""
    mode = settings.LLM_DRAFT_REPLIES
    if mode == "auto":
        from retrieval.answer_services import drafting_wins

        return drafting_wins()
    return bool(mode == "on")

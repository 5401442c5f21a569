"""From retrieval hits to answer candidates, and the leave-one-out history the ranker learns from.

One code path for ``evaluate`` (its workspace knowledge base) and production (the live one): both call
:func:`candidates_from_hits` for a new ticket and :func:`leave_one_out_queries` to fit
:mod:`retrieval.answer_ranker`. Plain data in and out; answers are given as their embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from retrieval.answer_map import MIN_ROWS, AnswerMap, cross_fitted, fit_answer_map
from retrieval.answer_ranker import Candidate, TrainingQuery, training_query

CANDIDATES = 20
"""Retrieved tickets whose answers are ranked (the decision itself uses the first PIPELINE_TOP_K): 20
rather than 10 raised the out-of-fold usable share of the top choice on bitext from 77.9% to 79.0%."""


class HitLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def score(self) -> float: ...
    @property
    def dense_score(self) -> float | None: ...
    @property
    def lexical_score(self) -> float | None: ...
    @property
    def category(self) -> str | None: ...


Feedback = tuple[int, int, int]
"""(accepted as is, edited, rejected) counts of suggestions built on one past answer."""


def candidates_from_hits(
    hits: Sequence[HitLike],
    *,
    answer_vectors: Mapping[int, np.ndarray],
    ages_days: Mapping[int, float] | None = None,
    feedback: Mapping[int, Feedback] | None = None,
) -> tuple[list[Candidate], np.ndarray]:
    """The hits that have a stored answer, as candidates, with their answer embeddings (one row each)."""
    candidates: list[Candidate] = []
    rows: list[np.ndarray] = []
    for hit in hits:
        vector = answer_vectors.get(int(hit.id))
        if vector is None:
            continue
        accepted, edited, rejected = (feedback or {}).get(int(hit.id), (0, 0, 0))
        candidates.append(
            Candidate(
                doc_id=int(hit.id),
                dense=float(hit.dense_score if hit.dense_score is not None else hit.score),
                lexical=hit.lexical_score,
                category=hit.category or "",
                age_days=(ages_days or {}).get(int(hit.id)),
                accepted=accepted,
                edited=edited,
                rejected=rejected,
            )
        )
        rows.append(np.asarray(vector, dtype=np.float32))
    matrix = np.vstack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
    return candidates, matrix


class CategorySums:
    """Sums and counts of history answer embeddings per category: each category's mean answer, also
    without one ticket's own answer (leave-one-out)."""

    def __init__(self, answer_vectors: Mapping[int, np.ndarray], categories: Mapping[int, str]) -> None:
        self.sums: dict[str, np.ndarray] = {}
        self.counts: dict[str, int] = {}
        for doc_id, vector in answer_vectors.items():
            category = categories.get(doc_id) or ""
            if category:
                self.sums[category] = self.sums.get(category, 0.0) + np.asarray(vector, dtype=np.float64)
                self.counts[category] = self.counts.get(category, 0) + 1

    def centroid(self, category: str | None, *, without: np.ndarray | None = None) -> np.ndarray | None:
        if not category or category not in self.sums:
            return None
        total, count = self.sums[category], self.counts[category]
        if without is not None:
            total, count = total - without, count - 1
        return None if count < 1 else np.asarray(total / count, dtype=np.float64)

    def centroids(self) -> dict[str, np.ndarray]:
        return {category: self.sums[category] / self.counts[category] for category in self.sums}


def leave_one_out_queries(
    kb: Any,
    *,
    doc_ids: Sequence[int],
    texts: Sequence[str],
    vectors: np.ndarray,
    answer_vectors: Mapping[int, np.ndarray],
    decided_categories: Sequence[str | None],
    categories: Mapping[int, str] | None = None,
    ages_days: Mapping[int, float] | None = None,
    feedback: Mapping[int, Feedback] | None = None,
    predicted_answers: np.ndarray | None = None,
    k: int = CANDIDATES,
    progress: Callable[[int], None] | None = None,
) -> list[TrainingQuery]:
    """For each history ticket with an answer: its neighbours without itself, labelled by whether their
    answer is usable for it. ``decided_categories`` are the categories decided for each ticket out of
    fold (the label model's out-of-fold choice), as a new ticket's would be; ``categories`` are the
    history tickets' recorded categories, whose mean answers (without the ticket's own) feed
    ``answer_to_category``; ``predicted_answers`` (one row per ticket, cross-fitted: see
    :func:`learn_answer_map`) feed ``answer_to_predicted``."""
    sums = CategorySums(answer_vectors, categories or {})
    queries = []
    for row, doc_id in enumerate(doc_ids):
        truth = answer_vectors.get(int(doc_id))
        if truth is None:
            continue
        hits = kb.search(texts[row], k, query_vector=vectors[row], exclude_ids=[int(doc_id)])
        candidates, matrix = candidates_from_hits(
            hits, answer_vectors=answer_vectors, ages_days=ages_days, feedback=feedback
        )
        if candidates:
            queries.append(
                training_query(
                    candidates,
                    matrix,
                    truth,
                    decided_category=decided_categories[row],
                    query_vector=vectors[row],
                    predicted_answer=None if predicted_answers is None else predicted_answers[row],
                    category_centroid=sums.centroid(
                        decided_categories[row],
                        without=truth
                        if (categories or {}).get(int(doc_id)) == decided_categories[row]
                        else None,
                    ),
                )
            )
        if progress:
            progress(1)
    return queries


def learn_answer_map(
    *,
    doc_ids: Sequence[int],
    vectors: np.ndarray,
    answer_vectors: Mapping[int, np.ndarray],
    decided_categories: Sequence[str | None],
) -> tuple[AnswerMap | None, np.ndarray | None]:
    """The ticket-to-answer map fitted on the history tickets with an answer (their embeddings and the
    categories decided for them, as for :func:`leave_one_out_queries`), and each ticket's predicted
    answer from a map fitted without it (cross-fitted: one row per ``doc_ids`` entry); (None, None)
    with too few answers to learn from."""
    rows = [row for row, doc_id in enumerate(doc_ids) if answer_vectors.get(int(doc_id)) is not None]
    if len(rows) < MIN_ROWS:
        return None, None
    tickets = np.asarray(vectors, dtype=np.float64)[rows]
    answers = np.vstack([answer_vectors[int(doc_ids[row])] for row in rows]).astype(np.float64)
    categories = [decided_categories[row] for row in rows]
    predicted = np.zeros((len(doc_ids), answers.shape[1]), dtype=np.float64)
    predicted[rows] = cross_fitted(tickets, answers, categories)
    return fit_answer_map(tickets, answers, categories), predicted

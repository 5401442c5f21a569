"""Suggested resolutions in the evaluation: the answer ranker learned from HISTORY (leave-one-out, the
same code production uses), then for each TEST ticket the chosen answer, its confidence, and how close
it is to the answer really sent (MiniLM cosine, ROUGE-L).

The answer embeddings (history and test) and the fitted ranker are kept in the workspace folder like
the label model, so a resumed run does not redo them.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval._storage import atomic_write
from retrieval.answer_choice import (
    CANDIDATES,
    CategorySums,
    candidates_from_hits,
    learn_answer_map,
    leave_one_out_queries,
)
from retrieval.answer_ranker import AnswerRanker, fit_answer_ranker
from retrieval.errors import IndexLoadError
from tickets.evaluation.data import EvalTicket
from tickets.evaluation.suggestion_metrics import USABLE_SIMILARITY, rouge_l
from tickets.evaluation.workspace import Workspace

if TYPE_CHECKING:
    from inference_app.llm.drafting import DraftOutcome

HISTORY_ANSWERS_FILE = "history_answer_vectors.npy"
TEST_ANSWERS_FILE = "test_answer_vectors.npy"
RANKER_FILE = "answer_ranker.bin"
BATCH = 256
BASELINE_TOP = 5


def _stored(path: Path, rows: int, dim: int) -> np.ndarray | None:
    if path.is_file():
        try:
            stored = np.load(path, allow_pickle=False)
            if stored.shape == (rows, dim):
                return np.asarray(stored, dtype=np.float32)
        except (OSError, ValueError):
            pass  # damaged by an interruption: embed again
    return None


def _save(path: Path, matrix: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, matrix, allow_pickle=False)
    atomic_write(path, [buffer.getbuffer()])


def answer_vectors(
    paths: Sequence[Path],
    answer_lists: Sequence[Sequence[str]],
    embedder: Any,
    *,
    processes: int = 1,
    threads: int = 1,
    progress: Callable[[int], None] | None = None,
) -> list[np.ndarray]:
    """Embeddings of each list of answers (zero rows for empty ones), each from its path when complete.

    Each distinct answer text is embedded once, whichever list and row it is in (templated replies
    repeat), in batches across ``processes`` (one thread each), the longest-first order left to the
    embedder."""
    from retrieval.parallel import encode_batches

    found = [_stored(p, len(a), embedder.dim) for p, a in zip(paths, answer_lists, strict=True)]
    distinct: dict[str, int] = {}
    for stored, answers in zip(found, answer_lists, strict=True):
        if stored is None:
            for text in answers:
                if text.strip():
                    distinct.setdefault(text, len(distinct))
    texts = list(distinct)
    unique = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    batches = [texts[start : start + BATCH] for start in range(0, len(texts), BATCH)]
    done = 0
    embedded = (
        (embedder.encode(batch) for batch in batches)
        if processes <= 1
        else encode_batches(batches, model=embedder.name, processes=processes, threads=threads)
    )
    for vectors in embedded:
        unique[done : done + len(vectors)] = vectors
        done += len(vectors)
        if progress:
            progress(len(vectors))
    results = []
    for stored, answers, path in zip(found, answer_lists, paths, strict=True):
        if stored is None:
            stored = np.zeros((len(answers), embedder.dim), dtype=np.float32)
            rows = [i for i, text in enumerate(answers) if text.strip()]
            stored[rows] = unique[[distinct[answers[i]] for i in rows]]
            _save(path, stored)
        results.append(stored)
    return results


@dataclass
class SuggestionSetup:
    ranker: AnswerRanker
    history_answers: dict[int, np.ndarray]
    test_answers: np.ndarray
    test_answer_texts: list[str]
    min_confidence: float
    timings: dict[str, float]


def prepare(
    ws: Workspace,
    tests: Sequence[EvalTicket],
    *,
    min_confidence: float | None,
    processes: int = 1,
    threads: int = 1,
    progress: Callable[[int], None] | None = None,
) -> SuggestionSetup:
    """Answer embeddings and the ranker fitted on the history (both reused from the workspace)."""
    timings: dict[str, float] = {}
    started = time.monotonic()
    history, test = answer_vectors(
        [ws.directory / HISTORY_ANSWERS_FILE, ws.directory / TEST_ANSWERS_FILE],
        [[t.resolution for t in ws.history], [t.resolution for t in tests]],
        ws.embedder,
        processes=processes,
        threads=threads,
        progress=progress,
    )
    timings["embed_answers_s"] = round(time.monotonic() - started, 2)
    by_row = {i: history[i] for i, ticket in enumerate(ws.history) if ticket.resolution.strip()}
    started = time.monotonic()
    ranker = _ranker(ws, history, by_row)
    timings["fit_answer_ranker_s"] = round(time.monotonic() - started, 2)
    threshold = min_confidence if min_confidence is not None else _default_threshold()
    return SuggestionSetup(ranker, by_row, test, [t.resolution for t in tests], threshold, timings)


def _default_threshold() -> float:
    from django.conf import settings

    return float(settings.SUGGESTION_MIN_CONFIDENCE)


def _ranker(ws: Workspace, history: np.ndarray, by_row: dict[int, np.ndarray]) -> AnswerRanker:
    path = ws.directory / RANKER_FILE
    if path.is_file():
        try:
            return AnswerRanker.load(path, embedding_model=ws.embedder.name)
        except IndexLoadError:
            pass  # damaged or stale: fit again
    vectors = np.load(ws.directory / "history_vectors.npy", allow_pickle=False)
    model = ws.label_model
    if model is not None and model.oof_proba is not None:
        decided: list[str | None] = [model.labels[int(i)] for i in model.oof_proba.argmax(axis=1)]
    else:
        decided = [None] * len(ws.history)
    categories = {i: t.category for i, t in enumerate(ws.history)}
    doc_ids = list(range(len(ws.history)))
    answer_map, predicted = learn_answer_map(
        doc_ids=doc_ids, vectors=vectors, answer_vectors=by_row, decided_categories=decided
    )
    queries = leave_one_out_queries(
        ws.kb,
        doc_ids=doc_ids,
        texts=[t.text for t in ws.history],
        vectors=vectors,
        answer_vectors=by_row,
        decided_categories=decided,
        categories=categories,
        predicted_answers=predicted,
    )
    centroids = CategorySums(by_row, categories).centroids()
    ranker = fit_answer_ranker(
        queries, embedding_model=ws.embedder.name, centroids=centroids, answer_map=answer_map
    )
    ranker.save(path)
    return ranker


def suggest(
    setup: SuggestionSetup,
    ws: Workspace,
    *,
    hits: Sequence[Any],
    decided_category: str | None,
    test_index: int,
    query_vector: np.ndarray,
    draft: Callable[[list[int]], DraftOutcome] | None = None,
) -> dict[str, Any]:
    """The suggestion for one test ticket, as stored in its results line."""
    started = time.perf_counter()
    candidates, matrix = candidates_from_hits(hits[:CANDIDATES], answer_vectors=setup.history_answers)
    choice = setup.ranker.choose(
        candidates,
        matrix,
        decided_category=decided_category,
        min_confidence=setup.min_confidence,
        query_vector=query_vector,
    )
    truth = setup.test_answers[test_index]
    real = float(np.linalg.norm(truth)) > 0
    row: dict[str, Any] = {
        "confidence": choice.confidence,
        "calibrated": choice.calibrated,
        "abstained": choice.abstained,
        "doc_id": choice.best.doc_id if choice.best else None,
        "citations_valid": True,
        "similarity": None,
        "rouge_l": None,
        "baselines": {},
    }
    if choice.best is None or not real:
        row["abstained"] = True
        return row
    sims = {c.doc_id: float(setup.history_answers[c.doc_id] @ truth) for c in candidates}
    row["baselines"] = {
        "nearest_ticket_answer": sims[candidates[0].doc_id],
        "best_of_top5": max(sims[c.doc_id] for c in candidates[:BASELINE_TOP]),
    }
    text = ws.history[choice.best.doc_id].resolution
    similarity = sims[choice.best.doc_id]
    citations = [choice.best.doc_id]
    if draft is not None and not choice.abstained:
        outcome = draft([r.doc_id for r in choice.ranked[:3]])
        row.update(
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            latency_ms=outcome.latency_ms,
            cost_usd=outcome.cost_usd,
            draft_fallback=outcome.fallback_reason,
        )
        if outcome.text:
            row["stored_similarity"] = similarity  # the chosen stored answer the draft replaces
            text, citations = outcome.text, list(outcome.citations)
            similarity = float(ws.embedder.encode([text])[0] @ truth)
            row["drafted"] = True
            row["draft_cut_off"] = outcome.cut_off
    retrieved = {int(hit.id) for hit in hits}
    row.update(
        similarity=similarity,
        usable=similarity >= USABLE_SIMILARITY,
        rouge_l=rouge_l(text, setup.test_answer_texts[test_index]),
        citations=citations,
        citations_valid=set(citations) <= retrieved,
        suggest_ms=(time.perf_counter() - started) * 1000,
    )
    return row


def drafter(
    ws: Workspace, backend: Any, pricing: Any, company: str, prepared: str, found: Sequence[Any]
) -> Callable[[list[int]], DraftOutcome]:
    """Drafting for one test ticket as production does it: the ranked candidates' redacted answers,
    the ticket's language, and only the retrieved tickets citable."""
    from inference_app.llm.drafting import draft_grounded
    from inference_app.llm.redaction import redact
    from inference_app.llm.types import Neighbour
    from tickets.pipeline.language import detect_language

    def draft(ranked_ids: list[int]) -> DraftOutcome:
        candidates = [
            Neighbour(
                doc_id=doc_id,
                score=0.0,
                category=ws.history[doc_id].category,
                team=ws.history[doc_id].team or "",
                text=redact(ws.history[doc_id].text).text,
                resolution=redact(ws.history[doc_id].resolution).text,
            )
            for doc_id in ranked_ids
        ]
        return draft_grounded(
            backend=backend,
            ticket_text=prepared,
            candidates=candidates,
            retrieved_ids=[int(hit.id) for hit in found],
            language=detect_language(prepared),
            company=company,
            pricing=pricing,
        )

    return draft

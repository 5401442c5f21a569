"""Choosing the stored answer to suggest among the retrieved tickets, and how sure to be of it.

For a new ticket, retrieval returns past tickets; each has the answer an agent sent. This module ranks
those answers and gives the top one a calibrated ``suggestion_confidence``: the probability that an
agent would find it usable (its MiniLM cosine to the answer really sent is at least 0.8).

Features of each candidate (plain data in, see :class:`Candidate`):

- ``dense``, ``dense_gap``: the past ticket's cosine to the new one, and its distance to the best one;
- ``lexical``: its BM25 score relative to the best BM25 score among the candidates;
- ``agreement``, ``agreement_mean``: how many of the other candidates' answers say the same (answer
  cosine >= 0.8), weighted by those tickets' similarity, and the weighted mean answer cosine;
- ``rank``: ``1 / (1 + position)`` in the retrieval order;
- ``recency``: ``exp(-age / 1 year)`` of the past ticket (0.5 when unknown);
- ``same_category``: the past ticket has the category decided for the new one;
- ``feedback``: agents' verdicts on suggestions built on that answer, accepted +1, edited +0.5,
  rejected -1, shrunk towards 0: ``score / (count + 1)``;
- ``answer_to_ticket``, ``answer_to_ticket_gap``: the cosine between the answer and the new ticket
  itself (an answer that speaks to this request), and its distance to the best one (0 without the
  ticket's embedding);
- ``answer_to_category``: the answer's cosine to the mean answer of the decided category in history
  (how typical an answer of that category it is);
- ``answer_to_predicted``, ``answer_to_predicted_gap``: the answer's cosine to the answer predicted for
  this ticket by :mod:`retrieval.answer_map` (a ticket-to-answer map learned from history), and its
  distance to the best one (0 without a map).

A logistic regression learns the weights from the company's history by leave-one-out (each history
ticket's neighbours without itself; a candidate is positive when its answer is usable for that ticket);
the top candidate's score is then calibrated (Platt scaling fitted on out-of-fold top choices, so the
reported calibration error is out of fold too); below :data:`MIN_CALIBRATION_QUERIES` history tickets
it stays uncalibrated. The answer map is kept only where it raises the out-of-fold usable share of
the top choice (its features are zero, and the artefact holds no map, otherwise). Feedback is absent
from a history import: while its feature does not vary in the training data its weight is a fixed
prior (:data:`FEEDBACK_PRIOR`), said so in the artefact's stats.

The artefact is one small container file (:mod:`retrieval._storage`): a JSON header with the format
version, the answer embedding model, the weights and the calibration, and the answer map's matrix as
its float32 payload; no pickle. Without one,
:func:`unlearned_ranker` scores with fixed weights and marks its confidence uncalibrated (never used
to abstain). No Django here; scikit-learn loads inside the fitting functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retrieval._storage import read_container, write_container
from retrieval.answer_map import AnswerMap
from retrieval.errors import IndexLoadError

FORMAT_VERSION = 2
MAGIC = b"SBANSWR1"
USABLE_SIMILARITY = 0.8
FEATURES = (
    "dense",
    "dense_gap",
    "lexical",
    "agreement",
    "agreement_mean",
    "rank",
    "recency",
    "same_category",
    "feedback",
    "answer_to_ticket",
    "answer_to_ticket_gap",
    "answer_to_category",
    "answer_to_predicted",
    "answer_to_predicted_gap",
)
FEEDBACK_PRIOR = 2.0
"""Weight of the feedback feature (on its raw -1..1 scale) while history holds no feedback to learn it."""
UNLEARNED_WEIGHTS = {"dense": 4.0, "agreement": 2.0, "same_category": 1.0, "rank": 0.5, "feedback": 2.0}
UNLEARNED_BIAS = -4.0
FOLDS = 5
MIN_CALIBRATION_QUERIES = 500
"""History tickets with an answer needed before the top score is calibrated (and may abstain); with
fewer, the ranker keeps its learned weights but its confidence is a score (uncalibrated, never
abstaining). On bitext, rankers fitted on 100 to 360 history tickets had a held-out calibration error
above 0.05 in 20-60% of 10 random draws (up to 0.105), on 600 and 1,000 in none (at most 0.036); the
demo company's 360 templated history tickets calibrated it to abstain on half its hand-written ones."""


class AnswerRankerStale(IndexLoadError):
    """The saved answer ranker was fitted on another answer embedding model or feature set: refit it."""


@dataclass(frozen=True)
class Candidate:
    """One retrieved past ticket whose stored answer could be suggested."""

    doc_id: int
    dense: float
    lexical: float | None = None
    category: str = ""
    age_days: float | None = None
    accepted: int = 0
    edited: int = 0
    rejected: int = 0


@dataclass(frozen=True)
class RankedAnswer:
    doc_id: int
    score: float
    probability: float


@dataclass(frozen=True)
class AnswerChoice:
    """The candidates' answers best first, and whether the top one may be shown."""

    ranked: list[RankedAnswer]
    confidence: float | None
    calibrated: bool
    abstained: bool
    threshold: float

    @property
    def best(self) -> RankedAnswer | None:
        return self.ranked[0] if self.ranked else None

    @property
    def reason(self) -> str:
        if not self.ranked:
            return "no retrieved ticket has a stored answer"
        if self.abstained:
            return f"suggestion confidence {self.confidence:.2f} is below the threshold {self.threshold:.2f}"
        return ""


def features(
    candidates: Sequence[Candidate],
    answer_vectors: np.ndarray,
    *,
    decided_category: str | None,
    query_vector: np.ndarray | None = None,
    category_centroid: np.ndarray | None = None,
    predicted_answer: np.ndarray | None = None,
) -> np.ndarray:
    """The feature matrix, one row per candidate (columns in :data:`FEATURES` order); ``query_vector``
    is the new ticket's embedding, ``category_centroid`` the mean answer of the decided category,
    ``predicted_answer`` the answer :mod:`retrieval.answer_map` predicts for the ticket."""
    n = len(candidates)
    if n == 0:
        return np.zeros((0, len(FEATURES)), dtype=np.float64)
    vectors = np.asarray(answer_vectors, dtype=np.float64).reshape(n, -1)
    dense = np.asarray([c.dense for c in candidates], dtype=np.float64)
    lexical = np.asarray([c.lexical or 0.0 for c in candidates], dtype=np.float64)
    top_lexical = lexical.max()
    weights = np.clip(dense, 0.0, None)
    similar = vectors @ vectors.T
    np.fill_diagonal(similar, 0.0)
    others = weights.sum() - weights
    safe = np.where(others > 0, others, 1.0)
    agreement = np.where(
        others > 0, ((similar >= USABLE_SIMILARITY) * weights[None, :]).sum(axis=1) / safe, 0.0
    )
    agreement_mean = np.where(others > 0, (similar * weights[None, :]).sum(axis=1) / safe, 0.0)
    to_ticket = (
        vectors @ np.asarray(query_vector, dtype=np.float64).reshape(-1)
        if query_vector is not None
        else np.zeros(n)
    )
    centroid = None if category_centroid is None else np.asarray(category_centroid, dtype=np.float64)
    norm = float(np.linalg.norm(centroid)) if centroid is not None else 0.0
    to_category = vectors @ (centroid / norm) if centroid is not None and norm > 0 else np.zeros(n)
    to_predicted = (
        vectors @ np.asarray(predicted_answer, dtype=np.float64).reshape(-1)
        if predicted_answer is not None
        else np.zeros(n)
    )
    columns = {
        "answer_to_category": to_category,
        "answer_to_predicted": to_predicted,
        "answer_to_predicted_gap": to_predicted - to_predicted.max(),
        "answer_to_ticket": to_ticket,
        "answer_to_ticket_gap": to_ticket - to_ticket.max(),
        "dense": dense,
        "dense_gap": dense - dense.max(),
        "lexical": lexical / top_lexical if top_lexical > 0 else np.zeros(n),
        "agreement": agreement,
        "agreement_mean": agreement_mean,
        "rank": 1.0 / (1.0 + np.arange(n, dtype=np.float64)),
        "recency": np.asarray(
            [0.5 if c.age_days is None else math.exp(-max(c.age_days, 0.0) / 365.0) for c in candidates]
        ),
        "same_category": np.asarray(
            [float(bool(decided_category) and c.category == decided_category) for c in candidates]
        ),
        "feedback": np.asarray(
            [
                (c.accepted + 0.5 * c.edited - c.rejected) / (c.accepted + c.edited + c.rejected + 1)
                for c in candidates
            ]
        ),
    }
    return np.column_stack([columns[name] for name in FEATURES])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -40.0, 40.0))), dtype=np.float64)


@dataclass
class AnswerRanker:
    """Learned (or fixed) weights over :data:`FEATURES` and the calibration of the top score."""

    embedding_model: str
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    calibration: tuple[float, float] | None
    """Platt scaling ``(a, b)``: ``p = sigmoid(a * score + b)``; None when uncalibrated."""
    recommended_threshold: float | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    centroids: dict[str, np.ndarray] = field(default_factory=dict)
    """The mean answer embedding of each category in history (``answer_to_category``)."""
    answer_map: AnswerMap | None = None
    """The ticket-to-answer map learned from history (``answer_to_predicted``)."""

    @property
    def calibrated(self) -> bool:
        return self.calibration is not None

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        return np.asarray(((matrix - self.mean) / self.scale) @ self.weights + self.bias, dtype=np.float64)

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        a, b = self.calibration if self.calibration is not None else (1.0, 0.0)
        return _sigmoid(a * np.asarray(scores, dtype=np.float64) + b)

    def choose(
        self,
        candidates: Sequence[Candidate],
        answer_vectors: np.ndarray,
        *,
        decided_category: str | None,
        min_confidence: float,
        query_vector: np.ndarray | None = None,
    ) -> AnswerChoice:
        """The candidates ranked; abstains when the calibrated confidence of the top one is below
        ``min_confidence`` (an uncalibrated ranker never abstains: its number means nothing)."""
        if not candidates:
            return AnswerChoice([], None, self.calibrated, True, min_confidence)
        matrix = features(
            candidates,
            answer_vectors,
            decided_category=decided_category,
            query_vector=query_vector,
            category_centroid=self.centroids.get(decided_category or ""),
            predicted_answer=(
                self.answer_map.predict(query_vector, [decided_category])
                if self.answer_map is not None and query_vector is not None
                else None
            ),
        )
        scores = self.scores(matrix)
        probabilities = self.probabilities(scores)
        order = np.argsort(-scores, kind="stable")
        ranked = [
            RankedAnswer(candidates[i].doc_id, float(scores[i]), float(probabilities[i])) for i in order
        ]
        confidence = ranked[0].probability
        abstained = self.calibrated and confidence < min_confidence
        return AnswerChoice(ranked, confidence, self.calibrated, abstained, min_confidence)

    # -- persistence ----------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        header = {
            "format_version": FORMAT_VERSION,
            "embedding_model": self.embedding_model,
            "features": list(FEATURES),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "bias": self.bias,
            "calibration": list(self.calibration) if self.calibration is not None else None,
            "recommended_threshold": self.recommended_threshold,
            "stats": self.stats,
            "centroids": {name: vector.round(6).tolist() for name, vector in self.centroids.items()},
            "answer_map_dim": None if self.answer_map is None else int(self.answer_map.bias.shape[0]),
            "answer_map_categories": [] if self.answer_map is None else list(self.answer_map.categories),
        }
        payload = b"" if self.answer_map is None else self.answer_map.to_bytes()
        write_container(Path(path), MAGIC, header, payload)

    @classmethod
    def load(cls, path: Path, *, embedding_model: str) -> AnswerRanker:
        """Raises FileNotFoundError, IndexCorrupt, IndexFormatMismatch or :class:`AnswerRankerStale`."""
        header, payload = read_container(Path(path), MAGIC, format_version=FORMAT_VERSION)
        if header.get("embedding_model") != embedding_model:
            raise AnswerRankerStale(
                f"{path}: fitted on answers embedded by {header.get('embedding_model')!r}, "
                f"now {embedding_model!r}: refit it"
            )
        if header.get("features") != list(FEATURES):
            raise AnswerRankerStale(f"{path}: fitted on other features: refit it")
        calibration = header.get("calibration")
        return cls(
            embedding_model=embedding_model,
            mean=np.asarray(header["mean"], dtype=np.float64),
            scale=np.asarray(header["scale"], dtype=np.float64),
            weights=np.asarray(header["weights"], dtype=np.float64),
            bias=float(header["bias"]),
            calibration=(float(calibration[0]), float(calibration[1])) if calibration else None,
            recommended_threshold=header.get("recommended_threshold"),
            stats=dict(header.get("stats") or {}),
            centroids={
                str(name): np.asarray(vector, dtype=np.float64)
                for name, vector in (header.get("centroids") or {}).items()
            },
            answer_map=(
                AnswerMap.from_bytes(
                    bytes(payload),
                    int(header["answer_map_dim"]),
                    [str(name) for name in header.get("answer_map_categories") or []],
                )
                if header.get("answer_map_dim")
                else None
            ),
        )


def unlearned_ranker(embedding_model: str) -> AnswerRanker:
    """Fixed weights for a company without a fitted ranker: close, agreed-on answers of the decided
    category first; the confidence it gives is not calibrated (and never abstains)."""
    weights = np.asarray([UNLEARNED_WEIGHTS.get(name, 0.0) for name in FEATURES], dtype=np.float64)
    zeros = np.zeros(len(FEATURES), dtype=np.float64)
    return AnswerRanker(
        embedding_model=embedding_model,
        mean=zeros,
        scale=np.ones(len(FEATURES), dtype=np.float64),
        weights=weights,
        bias=UNLEARNED_BIAS,
        calibration=None,
        stats={"learned": False},
    )


# --- learning from history ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingQuery:
    """One history ticket's retrieved candidates (itself excluded) and whether each answer is usable."""

    matrix: np.ndarray
    usable: np.ndarray


def training_query(
    candidates: Sequence[Candidate],
    answer_vectors: np.ndarray,
    true_answer: np.ndarray,
    *,
    decided_category: str | None,
    query_vector: np.ndarray | None = None,
    category_centroid: np.ndarray | None = None,
    predicted_answer: np.ndarray | None = None,
) -> TrainingQuery:
    matrix = features(
        candidates,
        answer_vectors,
        decided_category=decided_category,
        query_vector=query_vector,
        category_centroid=category_centroid,
        predicted_answer=predicted_answer,
    )
    vectors = np.asarray(answer_vectors, dtype=np.float64).reshape(len(candidates), -1)
    similarity = vectors @ np.asarray(true_answer, dtype=np.float64) if len(candidates) else np.zeros(0)
    return TrainingQuery(matrix=matrix, usable=similarity >= USABLE_SIMILARITY)


def _fit_weights(
    queries: Sequence[TrainingQuery], c: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    matrix = np.vstack([q.matrix for q in queries])
    labels = np.concatenate([q.usable for q in queries]).astype(int)
    mean = matrix.mean(axis=0)
    scale = matrix.std(axis=0)
    constant = scale < 1e-9
    scale = np.where(constant, 1.0, scale)
    if labels.min() == labels.max():  # nothing to tell apart: rank by closeness alone
        weights = np.zeros(len(FEATURES))
        weights[FEATURES.index("dense")] = 1.0
        return mean, scale, weights, 0.0
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit((matrix - mean) / scale, labels)
    weights = model.coef_[0].astype(np.float64)
    weights[constant] = 0.0
    feedback = FEATURES.index("feedback")
    if constant[feedback]:  # no feedback in history: a fixed prior on the raw scale
        mean[feedback], scale[feedback], weights[feedback] = 0.0, 1.0, FEEDBACK_PRIOR
    return mean, scale, weights, float(model.intercept_[0])


def _fit_platt(scores: np.ndarray, usable: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    if usable.min() == usable.max():
        return 0.0, float(np.log((usable.mean() + 1e-3) / (1 - usable.mean() + 1e-3)))
    model = LogisticRegression(C=1e6, max_iter=1000)
    model.fit(scores.reshape(-1, 1), usable.astype(int))
    return float(model.coef_[0][0]), float(model.intercept_[0])


def _top(ranker_scores: np.ndarray, query: TrainingQuery) -> tuple[float, bool, bool]:
    """The top candidate's score, whether it is usable, and whether the first-retrieved one is."""
    best = int(np.argmax(ranker_scores))
    return float(ranker_scores[best]), bool(query.usable[best]), bool(query.usable[0])


def _at_coverage(confidence: np.ndarray, usable: np.ndarray) -> list[dict[str, float]]:
    """Usable share among the suggestions shown when only the most confident share is shown (out of
    fold): the trade-off a company picks its SUGGESTION_MIN_CONFIDENCE from."""
    order = np.argsort(-confidence, kind="stable")
    points = []
    for coverage in (1.0, 0.95, 0.9, 0.8, 0.7, 0.5, 0.3):
        cut = max(1, round(coverage * len(order)))
        points.append(
            {
                "coverage": coverage,
                "threshold": round(float(confidence[order[cut - 1]]), 4),
                "usable_precision": round(float(usable[order[:cut]].mean()), 4),
            }
        )
    return points


MAP_FEATURES = ("answer_to_predicted", "answer_to_predicted_gap")
"""The columns the answer map feeds: zero, and the map left out, where it does not win out of fold."""


def _without_map(query: TrainingQuery) -> TrainingQuery:
    matrix = query.matrix.copy()
    matrix[:, [FEATURES.index(name) for name in MAP_FEATURES]] = 0.0
    return TrainingQuery(matrix=matrix, usable=query.usable)


@dataclass(frozen=True)
class _OutOfFold:
    top_score: np.ndarray
    top_usable: np.ndarray
    first_usable: np.ndarray


def _out_of_fold(
    queries: Sequence[TrainingQuery],
    fold_of: np.ndarray,
    folds: int,
    c: float,
    progress: Callable[[], None] | None = None,
) -> _OutOfFold:
    """Each query's top choice scored by the weights fitted on the other folds."""
    top_score = np.zeros(len(queries))
    top_usable = np.zeros(len(queries), dtype=bool)
    first_usable = np.zeros(len(queries), dtype=bool)
    for fold in range(folds):
        train = [q for q, f in zip(queries, fold_of, strict=True) if f != fold]
        mean, scale, weights, bias = _fit_weights(train, c)
        for i in np.flatnonzero(fold_of == fold).tolist():
            scores = ((queries[i].matrix - mean) / scale) @ weights + bias
            top_score[i], top_usable[i], first_usable[i] = _top(scores, queries[i])
        if progress:
            progress()
    return _OutOfFold(top_score, top_usable, first_usable)


def fit_answer_ranker(
    queries: Sequence[TrainingQuery],
    *,
    embedding_model: str,
    centroids: dict[str, np.ndarray] | None = None,
    answer_map: AnswerMap | None = None,
    target_precision: float = 0.95,
    folds: int = FOLDS,
    c: float = 1.0,
    seed: int = 0,
    min_calibration_queries: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AnswerRanker:
    """Learn the weights and the calibration from leave-one-out history queries (see the module doc);
    uncalibrated below ``min_calibration_queries`` (default :data:`MIN_CALIBRATION_QUERIES`).

    With an ``answer_map``, the out-of-fold evaluation runs twice on the same folds, with the map's
    features and with them zeroed: the map is kept only where the top choice is usable more often with
    it (on a small history a map fitted on too few tickets is noise the ranker would trust); otherwise
    the ranker is fitted without its features and saved without a map."""
    from retrieval.calibration import calibration_error, threshold_for_precision

    queries = [q for q in queries if len(q.usable)]
    if len(queries) < 2 * folds:
        raise ValueError(f"{len(queries)} history tickets with answers: need at least {2 * folds}")
    order = np.random.default_rng(seed).permutation(len(queries))
    fold_of = np.empty(len(queries), dtype=int)
    fold_of[order] = np.arange(len(queries)) % folds
    steps = (2 if answer_map is not None else 1) * folds + 1
    done = [0]

    def step() -> None:
        done[0] += 1
        if progress:
            progress(done[0], steps)

    without = [_without_map(q) for q in queries]
    plain = _out_of_fold(without, fold_of, folds, c, step)
    map_stats: dict[str, Any] = {"answer_map_kept": False}
    oof = plain
    if answer_map is not None:
        mapped = _out_of_fold(queries, fold_of, folds, c, step)
        kept = bool(mapped.top_usable.mean() > plain.top_usable.mean())
        map_stats = {
            "answer_map_kept": kept,
            "oof_usable_share_top_with_map": float(mapped.top_usable.mean()),
            "oof_usable_share_top_without_map": float(plain.top_usable.mean()),
        }
        if kept:
            oof = mapped
        else:
            queries, answer_map = without, None
    else:
        queries = without
    top_score, top_usable, first_usable = oof.top_score, oof.top_usable, oof.first_usable
    any_usable = np.asarray([bool(q.usable.any()) for q in queries])
    # Calibration out of fold too: each fold's top scores calibrated by the other folds' fit.
    oof_confidence = np.zeros(len(queries))
    for fold in range(folds):
        inside = fold_of == fold
        a, b = _fit_platt(top_score[~inside], top_usable[~inside])
        oof_confidence[inside] = _sigmoid(a * top_score[inside] + b)
    mean, scale, weights, bias = _fit_weights(queries, c)
    minimum = MIN_CALIBRATION_QUERIES if min_calibration_queries is None else min_calibration_queries
    calibrated = len(queries) >= minimum
    calibration = _fit_platt(top_score, top_usable) if calibrated else None
    threshold, coverage = threshold_for_precision(oof_confidence, top_usable, target_precision)
    step()
    stats = {
        "learned": True,
        "history_queries": len(queries),
        "calibrated": calibrated,
        "min_calibration_queries": minimum,
        "candidates": int(sum(len(q.usable) for q in queries)),
        "oof_usable_share_top": float(top_usable.mean()),
        "oof_usable_share_first_retrieved": float(first_usable.mean()),
        "oof_usable_share_best_possible": float(any_usable.mean()),
        **map_stats,
        "oof_ece": calibration_error(oof_confidence, top_usable),
        "target_precision": target_precision,
        "oof_threshold_at_target_precision": threshold,
        "oof_coverage_at_target_precision": coverage,
        "oof_at_coverage": _at_coverage(oof_confidence, top_usable),
        "feedback_learned": bool(
            np.vstack([q.matrix for q in queries])[:, FEATURES.index("feedback")].std() > 1e-9
        ),
        "weights": dict(zip(FEATURES, (weights / scale).round(4).tolist(), strict=True)),
    }
    return AnswerRanker(
        embedding_model=embedding_model,
        mean=mean,
        scale=scale,
        weights=weights,
        bias=bias,
        calibration=calibration,
        recommended_threshold=threshold if calibrated else None,
        stats=stats,
        centroids=dict(centroids or {}),
        answer_map=answer_map,
    )

"""The answer a ticket is likely to get, predicted from the ticket: a linear map learned from history.

A ridge regression from the ticket's embedding and its decided category (one-hot) to the embedding of
the answer an agent sent (MiniLM, unit vectors), fitted on the company's history. Its prediction is no
text to show: it is a point in answer space that the candidates' stored answers are compared with
(``answer_to_predicted`` in :mod:`retrieval.answer_ranker`), a ticket-to-answer match learned from what
agents answered rather than the raw ticket-to-answer cosine. On bitext, out of fold, the prediction
is usable (cosine >= 0.8 to the real answer) for 93% of history tickets (91% from the ticket alone).

Plain numpy (closed form); the history's own rows get cross-fitted predictions (:func:`cross_fitted`),
so the ranker learns from a feature as noisy as a new ticket's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALPHA = 1.0
"""Ridge penalty (on unit vectors): 0.3, 1 and 3 did alike out of fold on bitext, 10 worse."""
FOLDS = 5
MIN_ROWS = 20


def _inputs(vectors: np.ndarray, categories: Sequence[str | None], known: Sequence[str]) -> np.ndarray:
    """Ticket embeddings with the one-hot of each decided category (zeros for one the map never saw)."""
    matrix = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    index = {name: i for i, name in enumerate(known)}
    onehot = np.zeros((len(matrix), len(known)), dtype=np.float64)
    for row, category in enumerate(categories):
        if category in index:
            onehot[row, index[category]] = 1.0
    return np.hstack([matrix, onehot])


@dataclass(frozen=True)
class AnswerMap:
    """``predicted = normalise([ticket, onehot(category)] @ weights + bias)``."""

    weights: np.ndarray
    bias: np.ndarray
    categories: tuple[str, ...] = ()

    def predict(self, vectors: np.ndarray, categories: Sequence[str | None]) -> np.ndarray:
        """One predicted answer (unit vector) per ticket; a 1-D ticket vector gives a 1-D answer."""
        single = np.asarray(vectors).ndim == 1
        predicted = _inputs(vectors, categories, self.categories) @ self.weights + self.bias
        norms = np.linalg.norm(predicted, axis=1, keepdims=True)
        predicted = predicted / np.where(norms > 0, norms, 1.0)
        return np.asarray(predicted[0] if single else predicted, dtype=np.float64)

    def to_bytes(self) -> bytes:
        return np.vstack([self.weights, self.bias[None, :]]).astype("<f4").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, dim: int, categories: Sequence[str]) -> AnswerMap:
        rows = dim + len(categories) + 1
        matrix = np.frombuffer(data, dtype="<f4")
        if matrix.size != rows * dim:
            raise ValueError(f"answer map of {matrix.size} values, expected {rows * dim}")
        matrix = matrix.reshape(rows, dim).astype(np.float64)
        return cls(weights=matrix[:-1], bias=matrix[-1], categories=tuple(categories))


def fit_answer_map(
    tickets: np.ndarray,
    answers: np.ndarray,
    categories: Sequence[str | None],
    *,
    alpha: float = ALPHA,
) -> AnswerMap:
    """Ridge regression (intercept unpenalised) from tickets and their categories to their answers."""
    known = tuple(sorted({c for c in categories if c}))
    x = _inputs(tickets, categories, known)
    y = np.asarray(answers, dtype=np.float64)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - x_mean, y - y_mean
    weights = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ yc)
    return AnswerMap(weights=weights, bias=y_mean - x_mean @ weights, categories=known)


def cross_fitted(
    tickets: np.ndarray,
    answers: np.ndarray,
    categories: Sequence[str | None],
    *,
    folds: int = FOLDS,
    seed: int = 0,
    alpha: float = ALPHA,
) -> np.ndarray:
    """Each row's predicted answer from a map fitted without that row's fold (what a new ticket gets)."""
    n = len(tickets)
    fold_of = np.empty(n, dtype=int)
    fold_of[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    predicted = np.zeros((n, np.asarray(answers).shape[1]), dtype=np.float64)
    labels = list(categories)
    for fold in range(folds):
        inside = np.flatnonzero(fold_of == fold)
        outside = np.flatnonzero(fold_of != fold)
        fitted = fit_answer_map(tickets[outside], answers[outside], [labels[i] for i in outside], alpha=alpha)
        predicted[inside] = fitted.predict(tickets[inside], [labels[i] for i in inside])
    return predicted

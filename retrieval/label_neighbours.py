"""The label model's two neighbour signals, computed from the history's rows.

- :func:`neighbour_votes`: per label, the similarity-weighted vote share of a query's ``k`` nearest
  history embeddings (MiniLM).
- :class:`NearestByLabel`: per label, the cosine of the query's closest history ticket in character
  n-grams, which finds a rewritten earlier ticket in any language.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def neighbour_votes(
    queries: np.ndarray,
    vectors: np.ndarray,
    labels: np.ndarray,
    n_labels: int,
    k: int,
    *,
    exclude_self: bool,
    chunk: int = 1024,
) -> np.ndarray:
    """Per label, the summed cosine of the query's ``k`` nearest history vectors with that label,
    divided by the summed cosine of all ``k`` (a similarity-weighted vote share)."""
    base = np.asarray(vectors, dtype=np.float32)
    k = max(1, min(k, base.shape[0] - (1 if exclude_self else 0)))
    out = np.zeros((queries.shape[0], n_labels))
    for start in range(0, queries.shape[0], chunk):
        block = np.asarray(queries[start : start + chunk], dtype=np.float32)
        sims = block @ base.T
        if exclude_self:
            rows = np.arange(block.shape[0])
            sims[rows, start + rows] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        weights = np.clip(np.take_along_axis(sims, top, axis=1), 0.0, None).astype(np.float64)
        votes = np.zeros((block.shape[0], n_labels))
        np.add.at(votes, (np.repeat(np.arange(block.shape[0]), k), labels[top].ravel()), weights.ravel())
        out[start : start + block.shape[0]] = votes / np.maximum(votes.sum(axis=1, keepdims=True), 1e-9)
    return out


class NearestByLabel:
    """Per label, the cosine of a query's closest row with that label (0 where none: TF-IDF rows are
    L2-normalised and non-negative). The rows are sorted by label and transposed once, here: a query is
    then one sparse product and one ``maximum.reduceat``."""

    def __init__(self, rows: Any, labels: np.ndarray, n_labels: int) -> None:
        order = np.argsort(labels, kind="stable")
        self.present, self.starts = np.unique(np.asarray(labels)[order], return_index=True)
        self.columns = rows[order].T.tocsr()
        self.position = np.empty(order.size, dtype=np.int64)
        self.position[order] = np.arange(order.size)
        self.n_labels = n_labels

    def scores(self, queries: Any, *, self_offset: int | None = None, chunk: int = 256) -> np.ndarray:
        """``self_offset``: the queries are the history itself and query ``i`` is row ``i - self_offset``
        when that exists; a ticket is never its own nearest."""
        out = np.zeros((queries.shape[0], self.n_labels))
        if self.position.size == 0:
            return out
        for start in range(0, queries.shape[0], chunk):
            sims = (queries[start : start + chunk] @ self.columns).toarray()
            if self_offset is not None:
                own = np.arange(start, start + sims.shape[0]) - self_offset
                inside = (own >= 0) & (own < self.position.size)
                sims[np.flatnonzero(inside), self.position[own[inside]]] = 0.0
            out[start : start + sims.shape[0], self.present] = np.maximum.reduceat(sims, self.starts, axis=1)
        return out


def nearest_by_label(
    queries: Any, rows: Any, labels: np.ndarray, n_labels: int, *, self_offset: int | None = None
) -> np.ndarray:
    """:class:`NearestByLabel` built and asked once."""
    return NearestByLabel(rows, labels, n_labels).scores(queries, self_offset=self_offset)

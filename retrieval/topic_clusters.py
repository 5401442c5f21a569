"""Emerging topics: cluster the embeddings of tickets no known category fits and name each cluster.

Plain data in and out (vectors, texts); no Django. Agglomerative clustering with average linkage and a
cosine distance threshold (no number of clusters to guess); each cluster is named by its distinctive
terms: the TF-IDF weight of the words in the cluster's tickets against the other tickets. scikit-learn
loads inside the functions only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["TopicCluster", "cluster_topics"]

DISTANCE_THRESHOLD = 0.55
"""Average cosine distance under which two groups of tickets merge (MiniLM: same topic ~0.2-0.5)."""
MIN_SIZE = 2
TERMS = 4
WORD = r"(?u)\b[^\W\d_]{3,}\b"
"""Words of three letters or more, no digits."""


@dataclass(frozen=True)
class TopicCluster:
    members: tuple[int, ...]
    """Indexes into the input, the one nearest the cluster's centre first."""
    terms: tuple[str, ...]

    @property
    def name(self) -> str:
        return " / ".join(self.terms)


def _terms(
    texts: Sequence[str], labels: np.ndarray, clusters: Sequence[int], top: int
) -> dict[int, tuple[str, ...]]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    # One document per cluster (and one for the rest): idf favours the words of one cluster only.
    groups = sorted({int(label) for label in labels})
    documents = [" ".join(texts[int(i)] for i in np.flatnonzero(labels == group)) for group in groups]
    vectorizer = TfidfVectorizer(stop_words="english", token_pattern=WORD, sublinear_tf=True)
    try:
        matrix = vectorizer.fit_transform(documents).toarray()
    except ValueError:  # nothing but stop words
        return dict.fromkeys(clusters, ())
    vocabulary = vectorizer.get_feature_names_out()
    named: dict[int, tuple[str, ...]] = {}
    for cluster in clusters:
        row = matrix[groups.index(cluster)]
        order = [i for i in np.argsort(-row, kind="stable") if row[i] > 0][:top]
        named[cluster] = tuple(str(vocabulary[i]) for i in order)
    return named


def cluster_topics(
    vectors: np.ndarray,
    texts: Sequence[str],
    *,
    distance_threshold: float = DISTANCE_THRESHOLD,
    min_size: int = MIN_SIZE,
    terms: int = TERMS,
) -> list[TopicCluster]:
    """Clusters of at least ``min_size`` tickets, largest first; tickets in smaller groups are left out."""
    if len(vectors) != len(texts):
        raise ValueError("one text per vector")
    if len(vectors) < max(2, min_size):
        return []
    from sklearn.cluster import AgglomerativeClustering

    unit = np.asarray(vectors, dtype=np.float32)
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    labels = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance_threshold
    ).fit_predict(unit)
    sizes = np.bincount(labels)
    kept = [int(c) for c in np.argsort(-sizes, kind="stable") if sizes[c] >= min_size]
    named = _terms(texts, labels, kept, terms)
    clusters = []
    for cluster in kept:
        members = np.flatnonzero(labels == cluster)
        centre = unit[members].mean(axis=0)
        order = members[np.argsort(-(unit[members] @ centre), kind="stable")]
        clusters.append(TopicCluster(members=tuple(int(i) for i in order), terms=named[cluster]))
    return clusters

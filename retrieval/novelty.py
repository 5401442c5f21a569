"""Tickets of no known category: a second calibration step that makes the routing confidence mean
"this known category is right", also for tickets of a topic the history never had.

The label model's probabilities are calibrated among the known categories only: a ticket of a new topic
still gets them summing to one, often with a confident winner. This step learns, from the history alone,
how such tickets look to the fitted model: the history's categories are split into groups; for each group
a label model is fitted without it (leave-categories-out) and predicts the hidden group's tickets (all
wrong by construction, the negatives) while its out-of-fold predictions on the other tickets give
positives (right) and further negatives (wrong). A logistic regression over a few signals then gives the
probability that the top category is right:

- the label model's top probability, its margin over the second and the entropy of its probabilities;
- how close the ticket is to the history: the cosine of its nearest history ticket and the mean of its
  ``k`` nearest;
- whether the neighbours agree with the label model: the similarity-weighted share of the ``k`` nearest
  carrying the top category and the cosine of the nearest of them.

The fitted step is a handful of numbers (standardisation, coefficients, intercept) kept as plain lists in
the label model's JSON header: no pickle. :func:`with_unknown` turns a prediction into probabilities
whose top is that score and whose remainder, under the key :data:`UNKNOWN_KEY`, is "none of these";
:func:`tickets.pipeline.policy.decide_category` keeps it as doubt.

No Django; scikit-learn loads inside the fitting function only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from retrieval.label_model import FitOptions, LabelModel

__all__ = [
    "NOVELTY_VERSION",
    "UNKNOWN_KEY",
    "fit_label_model_with_novelty",
    "fit_novelty",
    "known_scores",
    "novelty_features",
    "predict_with_unknown",
    "with_unknown",
]

NOVELTY_VERSION = 1
UNKNOWN_KEY = "(none of these)"
"""The key of the "no known category" mass in a probabilities mapping; not one of the company's
categories, so any ``allowed`` filter drops it from the candidates."""
FEATURES = (
    "top_log_odds",
    "margin",
    "entropy",
    "nearest_cosine",
    "mean_k_cosine",
    "top_vote_share",
    "top_nearest_cosine",
)
MIN_LABELS = 4
"""Fewer categories than this leave too little to hide: no novelty step (the plain probabilities)."""

Progress = Callable[[str, int, int], None]


def novelty_features(
    proba: np.ndarray,
    vectors: np.ndarray,
    base: np.ndarray,
    base_labels: np.ndarray,
    *,
    k: int,
    self_index: np.ndarray | None = None,
    chunk: int = 1024,
) -> np.ndarray:
    """The signals of :data:`FEATURES`, one row per ticket.

    ``proba``: the label model's probabilities (columns = its labels); ``vectors``: the tickets'
    embeddings; ``base`` / ``base_labels``: the history embeddings and label indices (same column
    numbering) to measure closeness against; ``self_index``: per ticket its row in ``base`` to leave out
    (-1 for none), for history tickets scored out-of-fold.
    """
    proba = np.asarray(proba, dtype=np.float64)
    n, n_labels = proba.shape
    out = np.zeros((n, len(FEATURES)))
    if n == 0:
        return out
    order = np.sort(proba, axis=1)
    top_p = np.clip(order[:, -1], 1e-6, 1 - 1e-6)
    second = order[:, -2] if n_labels > 1 else np.zeros(n)
    top = proba.argmax(axis=1)
    entropy = -(np.clip(proba, 1e-12, 1.0) * np.log(np.clip(proba, 1e-12, 1.0))).sum(axis=1)
    out[:, 0] = np.log(top_p / (1 - top_p))
    out[:, 1] = order[:, -1] - second
    out[:, 2] = entropy / math.log(max(n_labels, 2))
    base_f = np.asarray(base, dtype=np.float32)
    k = max(1, min(k, base_f.shape[0] - (1 if self_index is not None else 0)))
    for start in range(0, n, chunk):
        block = np.asarray(vectors[start : start + chunk], dtype=np.float32)
        sims = block @ base_f.T
        if self_index is not None:
            own = np.asarray(self_index[start : start + chunk])
            rows = np.flatnonzero(own >= 0)
            sims[rows, own[rows]] = -np.inf
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        near_sims = np.take_along_axis(sims, nearest, axis=1).astype(np.float64)
        near_labels = base_labels[nearest]
        same = near_labels == top[start : start + chunk, None]
        weights = np.clip(near_sims, 0.0, None)
        rows_slice = slice(start, start + block.shape[0])
        out[rows_slice, 3] = near_sims.max(axis=1)
        out[rows_slice, 4] = near_sims.mean(axis=1)
        out[rows_slice, 5] = (weights * same).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        out[rows_slice, 6] = np.where(same, near_sims, 0.0).max(axis=1)
    return out


def _score(params: dict[str, Any], features: np.ndarray) -> np.ndarray:
    mean = np.asarray(params["mean"], dtype=np.float64)
    scale = np.asarray(params["scale"], dtype=np.float64)
    coef = np.asarray(params["coef"], dtype=np.float64)
    logits = ((features - mean) / scale) @ coef + float(params["intercept"])
    result: np.ndarray = 1.0 / (1.0 + np.exp(-logits))
    return result


def known_scores(model: LabelModel, proba: np.ndarray, embeddings: np.ndarray) -> np.ndarray | None:
    """Per ticket, the probability that the label model's top category is right (None without a fitted
    novelty step, or one of another version)."""
    params = model.novelty
    if not params or params.get("version") != NOVELTY_VERSION:
        return None
    features = novelty_features(
        proba,
        np.asarray(embeddings, dtype=np.float32),
        model.knn_vectors,
        model.knn_labels,
        k=int(params["k"]),
    )
    return _score(params, features)


def with_unknown(probs: dict[str, float], known: float) -> dict[str, float]:
    """``probs`` reshaped so the top category gets ``known`` and the mass no category earns is kept
    under :data:`UNKNOWN_KEY`; the others shrink by one factor, so the top stays the top."""
    if not probs:
        return {}
    top = max(probs, key=lambda c: probs[c])
    p_top = probs[top]
    known = min(1.0, max(0.0, float(known)))
    # One factor for all the others keeps their order below the top (never a new winner).
    factor = min((1.0 - known) / (1.0 - p_top) if p_top < 1.0 else 0.0, known / p_top if p_top > 0 else 0.0)
    reshaped = {c: (known if c == top else p * factor) for c, p in probs.items()}
    reshaped[UNKNOWN_KEY] = max(0.0, 1.0 - sum(reshaped.values()))
    return reshaped


def predict_with_unknown(
    model: LabelModel, *, texts: Sequence[str], embeddings: np.ndarray, top: int | None = None
) -> list[dict[str, float]]:
    """The label model's ``{label: probability}`` per text (the ``top`` largest when given), reshaped by
    :func:`with_unknown` when the model carries a novelty step."""
    proba = model.predict_proba(texts=texts, embeddings=embeddings)
    scores = known_scores(model, proba, embeddings)
    result = []
    for i, row in enumerate(proba):
        keep = row.argsort()[::-1][:top] if top else range(len(row))
        probs = {model.labels[j]: float(row[j]) for j in keep if row[j] > 1e-4}
        result.append(with_unknown(probs, float(scores[i])) if scores is not None else probs)
    return result


# --- fitting ---------------------------------------------------------------------------------------


def fit_novelty(
    *,
    texts: Sequence[str],
    embeddings: np.ndarray,
    labels: Sequence[str],
    model: LabelModel,
    options: FitOptions,
    progress: Progress | None = None,
) -> dict[str, Any] | None:
    """Learn the novelty step by leave-categories-out on the history (see the module's docstring).

    ``model``: the label model fitted on all of it (its out-of-fold probabilities give more positives).
    Returns the JSON-serialisable parameters, or None with too few categories, too few tickets per
    category (``options.unknown_min_per_label``) or no variety in outcomes.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from retrieval.calibration import threshold_for_precision
    from retrieval.label_model import fit_label_model

    started = time.monotonic()
    vectors = np.asarray(embeddings, dtype=np.float32)
    label_set = model.labels
    if len(label_set) < MIN_LABELS or options.unknown_groups < 2 or model.oof_proba is None:
        return None
    if len(labels) < options.unknown_min_per_label * len(label_set):
        return None
    index = {label: i for i, label in enumerate(label_set)}
    y = np.fromiter((index[label] for label in labels), dtype=np.int64, count=len(labels))
    rng = np.random.default_rng(options.seed)
    groups = min(options.unknown_groups, len(label_set) // 2)
    shuffled = rng.permutation(len(label_set))
    parts_x: list[np.ndarray] = []
    parts_y: list[np.ndarray] = []
    k = options.neighbours
    # The full model's own out-of-fold predictions: known tickets as production will see them.
    oof = model.oof_proba.astype(np.float64)
    parts_x.append(
        novelty_features(oof, vectors, vectors, y, k=k, self_index=np.arange(len(y), dtype=np.int64))
    )
    parts_y.append((oof.argmax(axis=1) == y).astype(np.int64))
    refit_options = replace(options, folds=min(options.folds, 3), unknown_groups=0)
    for g in range(groups):
        hidden_labels = shuffled[g::groups]
        hidden = np.isin(y, hidden_labels)
        known_rows = np.flatnonzero(~hidden)
        hidden_rows = np.flatnonzero(hidden)
        if options.unknown_max_rows and known_rows.size > options.unknown_max_rows:
            known_rows = np.sort(rng.choice(known_rows, options.unknown_max_rows, replace=False))
        if options.unknown_max_rows and hidden_rows.size > options.unknown_max_rows // 2:
            hidden_rows = np.sort(rng.choice(hidden_rows, options.unknown_max_rows // 2, replace=False))
        if progress is not None:
            progress(f"unknown topics: history without group {g + 1}/{groups}", g, groups)
        sub = fit_label_model(
            texts=[texts[int(i)] for i in known_rows],
            embeddings=vectors[known_rows],
            labels=[labels[int(i)] for i in known_rows],
            embedding_model=model.embedding_model,
            options=refit_options,
        )
        assert sub.oof_proba is not None
        sub_index = {label: i for i, label in enumerate(sub.labels)}
        sub_y = np.fromiter((sub_index[labels[int(i)]] for i in known_rows), dtype=np.int64)
        sub_oof = sub.oof_proba.astype(np.float64)
        parts_x.append(
            novelty_features(
                sub_oof,
                vectors[known_rows],
                vectors[known_rows],
                sub_y,
                k=k,
                self_index=np.arange(known_rows.size, dtype=np.int64),
            )
        )
        parts_y.append((sub_oof.argmax(axis=1) == sub_y).astype(np.int64))
        hidden_proba = sub.predict_proba(
            texts=[texts[int(i)] for i in hidden_rows], embeddings=vectors[hidden_rows]
        )
        parts_x.append(novelty_features(hidden_proba, vectors[hidden_rows], vectors[known_rows], sub_y, k=k))
        parts_y.append(np.zeros(hidden_rows.size, dtype=np.int64))
    features = np.vstack(parts_x)
    target = np.concatenate(parts_y)
    if target.min() == target.max():
        return None
    scaler = StandardScaler().fit(features)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    regression = LogisticRegression(C=1.0, max_iter=1000).fit((features - scaler.mean_) / scale, target)
    params: dict[str, Any] = {
        "version": NOVELTY_VERSION,
        "features": list(FEATURES),
        "k": k,
        "mean": [float(v) for v in scaler.mean_],
        "scale": [float(v) for v in scale],
        "coef": [float(v) for v in regression.coef_[0]],
        "intercept": float(regression.intercept_[0]),
    }
    scores = _score(params, features)
    threshold, coverage = threshold_for_precision(scores, target, 0.95)
    negatives_hidden = sum(int(part.size) for part in parts_y[2::2])
    params["stats"] = {
        "groups": groups,
        "rows": int(target.size),
        "unknown_rows": negatives_hidden,
        "right_share": float(target.mean()),
        "threshold_at_precision_95": threshold,
        "coverage_at_precision_95": coverage,
        "fit_seconds": round(time.monotonic() - started, 1),
    }
    return params


def fit_label_model_with_novelty(
    *,
    texts: Sequence[str],
    embeddings: np.ndarray,
    labels: Sequence[str],
    embedding_model: str,
    options: FitOptions | None = None,
    progress: Progress | None = None,
) -> LabelModel:
    """:func:`retrieval.label_model.fit_label_model`, then the novelty step (``options.unknown_groups``
    label models fitted without a group of categories each; 0 skips it)."""
    from retrieval.label_model import FitOptions, fit_label_model

    options = options or FitOptions()
    model = fit_label_model(
        texts=texts,
        embeddings=embeddings,
        labels=labels,
        embedding_model=embedding_model,
        options=options,
        progress=progress,
    )
    if options.unknown_groups >= 2:
        model.novelty = fit_novelty(
            texts=[str(t) for t in texts],
            embeddings=embeddings,
            labels=list(labels),
            model=model,
            options=options,
            progress=progress,
        )
        if model.novelty is not None:
            model.stats["novelty"] = model.novelty["stats"]
            model.stats["fit_seconds"] = round(
                float(model.stats.get("fit_seconds", 0.0)) + model.novelty["stats"]["fit_seconds"], 1
            )
    return model

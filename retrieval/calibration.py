"""Calibration measures of a confidence against what was right, shared by the label model, the answer
ranker, the novelty step and the evaluation."""

from __future__ import annotations

import numpy as np


def calibration_error(confidence: np.ndarray, correct: np.ndarray, *, bins: int = 15) -> float:
    """Expected calibration error: the bin-weighted gap between confidence and accuracy."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if confidence.size == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(confidence[mask].mean() - correct[mask].mean())
    return float(total)


def threshold_for_precision(
    confidence: np.ndarray, correct: np.ndarray, precision: float
) -> tuple[float | None, float]:
    """The lowest confidence threshold whose accepted tickets (``confidence >= t``) are at least
    ``precision`` correct, and the share accepted. ``(None, 0.0)`` if no threshold reaches it."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if confidence.size == 0:
        return None, 0.0
    order = np.argsort(-confidence, kind="stable")
    sorted_conf = confidence[order]
    running = np.cumsum(correct[order]) / np.arange(1, confidence.size + 1)
    # Only cut between distinct confidences: a threshold accepts every ticket at or above it.
    last_of_value = np.append(sorted_conf[1:] != sorted_conf[:-1], True)
    ok = np.flatnonzero(last_of_value & (running >= precision))
    if ok.size == 0:
        return None, 0.0
    cut = int(ok[-1])
    return float(sorted_conf[cut]), float((cut + 1) / confidence.size)

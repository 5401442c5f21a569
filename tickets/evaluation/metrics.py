"""Measures of a set of decisions: accuracy, per-class F1, calibration, coverage at a precision, latency.

Plain Python and NumPy on records of one mode's run; no Django.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from retrieval.calibration import calibration_error, threshold_for_precision

RELIABILITY_BINS = 10
TARGET_PRECISION = 0.95


@dataclass(frozen=True)
class Outcome:
    """One test ticket's result in one mode."""

    truth: str
    predicted: str | None
    confidence: float
    team_truth: str | None = None
    team_predicted: str | None = None

    @property
    def correct(self) -> bool:
        return self.predicted == self.truth


def per_class(outcomes: Sequence[Outcome]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per true or predicted label."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for o in outcomes:
        if o.correct:
            tp[o.truth] += 1
        else:
            fn[o.truth] += 1
            if o.predicted is not None:
                fp[o.predicted] += 1
    result = {}
    for label in sorted(set(tp) | set(fp) | set(fn)):
        precision = tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else 0.0
        recall = tp[label] / (tp[label] + fn[label]) if tp[label] + fn[label] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result[label] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": tp[label] + fn[label],
        }
    return result


def macro_f1(classes: Mapping[str, Mapping[str, float]]) -> float:
    """Mean F1 over the labels that occur in the test set."""
    present = [scores["f1"] for scores in classes.values() if scores["support"] > 0]
    return float(np.mean(present)) if present else 0.0


def confusion_pairs(outcomes: Sequence[Outcome], top: int = 10) -> list[dict[str, Any]]:
    """The (true, predicted) mix-ups seen most often."""
    pairs = Counter((o.truth, o.predicted or "(none)") for o in outcomes if not o.correct)
    return [{"truth": t, "predicted": p, "count": n} for (t, p), n in pairs.most_common(top)]


def reliability(outcomes: Sequence[Outcome], bins: int = RELIABILITY_BINS) -> list[dict[str, float]]:
    """Per confidence bin: mean confidence, accuracy and count (the reliability diagram)."""
    rows = []
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [o for o in outcomes if low < o.confidence <= high or (b == 0 and o.confidence <= 0)]
        if inside:
            rows.append(
                {
                    "low": low,
                    "high": high,
                    "confidence": float(np.mean([o.confidence for o in inside])),
                    "accuracy": float(np.mean([o.correct for o in inside])),
                    "count": len(inside),
                }
            )
    return rows


def coverage_curve(outcomes: Sequence[Outcome], points: int = 50) -> list[dict[str, float]]:
    """Precision of the tickets routed automatically against the share routed, best-confidence first."""
    if not outcomes:
        return []
    order = sorted(outcomes, key=lambda o: -o.confidence)
    correct = np.cumsum([o.correct for o in order])
    n = len(order)
    curve = []
    for i in range(1, points + 1):
        cut = max(1, round(n * i / points))
        curve.append(
            {
                "coverage": cut / n,
                "precision": float(correct[cut - 1] / cut),
                "threshold": order[cut - 1].confidence,
            }
        )
    return curve


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0}
    array = np.asarray(values, dtype=np.float64)
    return {"p50": float(np.percentile(array, 50)), "p95": float(np.percentile(array, 95))}


def summarise(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """The quality fields of one mode's report."""
    n = len(outcomes)
    confidence = np.asarray([o.confidence for o in outcomes], dtype=np.float64)
    correct = np.asarray([o.correct for o in outcomes], dtype=bool)
    classes = per_class(outcomes)
    threshold, coverage = threshold_for_precision(confidence, correct, TARGET_PRECISION)
    teams = [o for o in outcomes if o.team_truth]
    return {
        "n": n,
        "accuracy": float(correct.mean()) if n else 0.0,
        "macro_f1": macro_f1(classes),
        "team_accuracy": (
            float(np.mean([o.team_predicted == o.team_truth for o in teams])) if teams else None
        ),
        "ece": calibration_error(confidence, correct),
        "coverage_at_precision_95": coverage,
        "threshold_at_precision_95": threshold,
        "per_class": classes,
        "confusion_pairs": confusion_pairs(outcomes),
        "reliability": reliability(outcomes),
        "coverage_curve": coverage_curve(outcomes),
    }

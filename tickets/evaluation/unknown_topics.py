"""Tickets of topics the history has no category for: leave-categories-out and its figures.

``evaluate --unknown-categories K`` hides K of the history's categories (chosen with a seed, reported):
their history tickets are dropped and their test tickets become unknown-topic tickets, whose only right
outcome is triage. ``--unknown-label NAME`` names a label that marks test rows already out of scope.

Per mode, over the threshold curve (a ticket is routed automatically when its confidence is at least the
threshold): the share of unknown-topic tickets sent to triage, the precision of what is routed
automatically with them mixed in, the share of known tickets routed, and the accuracy counting a known
ticket routed right or an unknown one sent to triage as right.
"""

from __future__ import annotations

import html
import random
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from tickets.evaluation.data import EvalTicket

TARGET_PRECISION = 0.95
TEAM_DEFAULT_THRESHOLD = 0.6
CURVE_POINTS = 50


def hide_categories(
    history: Sequence[EvalTicket], *, count: int, label: str | None, seed: int
) -> tuple[list[EvalTicket], list[str]]:
    """The history without the hidden categories, and the hidden ones (sorted): ``count`` of the
    history's categories drawn with ``seed``, plus ``label`` when given."""
    categories = sorted({ticket.category for ticket in history} - {label})
    if count < 0 or count > len(categories) - 2:
        raise ValueError(
            f"--unknown-categories must leave at least 2 of the {len(categories)} categories known"
        )
    hidden = set(random.Random(seed).sample(categories, count))
    if label:
        hidden.add(label)
    kept = [ticket for ticket in history if ticket.category not in hidden]
    return kept, sorted(hidden)


def learned_threshold(label_model: Any) -> float | None:
    """The routing threshold the history alone supports: the novelty step's at 95% precision (known and
    held-out categories mixed), else the label model's out-of-fold one on known categories."""
    if label_model is None:
        return None
    novelty = label_model.novelty or {}
    value = novelty.get("stats", {}).get("threshold_at_precision_95")
    if value is None:
        value = label_model.stats.get("oof_threshold_at_precision_95")
    return None if value is None else float(value)


def _point(
    confidence: np.ndarray, correct: np.ndarray, unknown: np.ndarray, threshold: float
) -> dict[str, float | None]:
    routed = confidence >= threshold
    known = ~unknown
    n_routed = int(routed.sum())
    right = (routed & correct & known) | (~routed & unknown)
    return {
        "threshold": float(threshold),
        "unknown_to_triage": float((~routed & unknown).sum() / unknown.sum()) if unknown.any() else None,
        "routed_precision": float((routed & correct).sum() / n_routed) if n_routed else None,
        "known_coverage": float((routed & known).sum() / known.sum()) if known.any() else None,
        "known_routed_right": float((routed & known & correct).sum() / known.sum()) if known.any() else None,
        "accuracy": float(right.mean()) if right.size else 0.0,
    }


def unknown_report(
    rows: Sequence[Mapping[str, Any]], hidden: Collection[str], *, learned_threshold: float | None
) -> dict[str, Any]:
    """The unknown-topic figures of one mode's results (see the module's docstring).

    ``learned_threshold``: the threshold learned from the history alone (the novelty step's threshold
    at 95% precision), reported as the operating point the product would pick without the test set.
    """
    hidden_set = set(hidden)
    unknown = np.asarray([row["truth"] in hidden_set for row in rows], dtype=bool)
    confidence = np.asarray(
        [float(row["confidence"]) if row.get("predicted") else -1.0 for row in rows], dtype=np.float64
    )
    correct = np.asarray([row.get("predicted") == row["truth"] for row in rows], dtype=bool)
    report: dict[str, Any] = {
        "hidden_categories": sorted(hidden_set),
        "unknown_tickets": int(unknown.sum()),
        "known_tickets": int((~unknown).sum()),
    }
    if not rows:
        return report
    thresholds = sorted({0.0, *np.linspace(0.0, 1.0, CURVE_POINTS + 1).tolist(), *confidence.tolist()})
    thresholds = [t for t in thresholds if t >= 0.0] + [1.0 + 1e-9]
    points = [_point(confidence, correct, unknown, t) for t in thresholds]
    report["at_team_default"] = _point(confidence, correct, unknown, TEAM_DEFAULT_THRESHOLD)
    if learned_threshold is not None:
        report["at_learned_threshold"] = _point(confidence, correct, unknown, learned_threshold)
    precise = [p for p in points if (p["routed_precision"] or 0.0) >= TARGET_PRECISION]
    report["at_precision_95"] = (
        max(precise, key=lambda p: (p["known_coverage"] or 0.0, -(p["threshold"] or 0.0)))
        if precise
        else None
    )
    report["best_accuracy"] = max(points, key=lambda p: (p["accuracy"], -(p["threshold"] or 0.0)))
    grid = np.linspace(0.0, 1.0, CURVE_POINTS + 1).tolist()
    report["curve"] = [_point(confidence, correct, unknown, t) for t in grid]
    return report


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{100 * value:.1f}%" if value <= 1.0 else f"{value:.3f}"
    return html.escape(str(value))


def unknown_html(modes: Mapping[str, Mapping[str, Any]]) -> str:
    """The unknown-topics section of report.html ("" when no mode has one)."""
    sections = []
    for mode, figures in modes.items():
        unknown = figures.get("unknown_topics")
        if not unknown:
            continue
        rows = []
        for name in ("at_learned_threshold", "at_team_default", "at_precision_95", "best_accuracy"):
            point = unknown.get(name)
            if point:
                cells = "".join(
                    f"<td>{_cell(point[key])}</td>"
                    for key in (
                        "unknown_to_triage",
                        "routed_precision",
                        "known_coverage",
                        "accuracy",
                    )
                )
                rows.append(f"<tr><th>{html.escape(name)}</th><td>{point['threshold']:.3f}</td>{cells}</tr>")
        hidden = ", ".join(html.escape(c) for c in unknown["hidden_categories"])
        sections.append(
            f"<h3>{html.escape(mode)}</h3><p>Hidden categories: {hidden} "
            f"({unknown['unknown_tickets']} unknown-topic, {unknown['known_tickets']} known test tickets)</p>"
            "<table><tr><th>operating point</th><th>threshold</th><th>unknown to triage</th>"
            "<th>routed precision</th><th>known routed</th><th>accuracy</th></tr>"
            f"{''.join(rows)}</table>"
        )
    return f"<h2>Unknown topics</h2>{''.join(sections)}" if sections else ""

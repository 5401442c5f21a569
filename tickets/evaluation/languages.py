"""Figures per language: the test tickets grouped by the language production detects in them
(:func:`tickets.pipeline.language.detect_language`), with how many history tickets share it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from retrieval.label_model import threshold_for_precision
from tickets.evaluation.data import EvalTicket
from tickets.pipeline.language import detect_language

UNDETERMINED = "(undetermined)"


def languages_of(tickets: Sequence[EvalTicket]) -> list[str]:
    return [detect_language(ticket.text) or UNDETERMINED for ticket in tickets]


def language_report(
    rows: Sequence[Mapping[str, Any]], test_languages: Sequence[str], history_languages: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per detected language: test tickets, accuracy, coverage at 95% precision, and the number of
    history tickets in that language (``rows[i]["index"]`` indexes ``test_languages``)."""
    history_counts = Counter(history_languages)
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(test_languages[int(row["index"])], []).append(row)
    report: dict[str, dict[str, Any]] = {}
    for language, members in sorted(groups.items(), key=lambda item: -len(item[1])):
        correct = np.asarray([row.get("predicted") == row["truth"] for row in members], dtype=bool)
        confidence = np.asarray([float(row["confidence"]) for row in members], dtype=np.float64)
        _, coverage = threshold_for_precision(confidence, correct, 0.95)
        report[language] = {
            "n": len(members),
            "accuracy": float(correct.mean()),
            "coverage_at_precision_95": coverage,
            "history_tickets": history_counts.get(language, 0),
        }
    return report

"""Figures per language: the test tickets grouped by the language production detects in them
(:func:`tickets.pipeline.language.detect_language`), with how many history tickets share it."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from retrieval.calibration import threshold_for_precision
from tickets.evaluation.data import EvalTicket
from tickets.pipeline.language import detect_language, unsupported_language_reason

UNDETERMINED = "(undetermined)"


def languages_of(tickets: Sequence[EvalTicket]) -> list[str]:
    return [detect_language(ticket.text) or UNDETERMINED for ticket in tickets]


def language_report(
    rows: Sequence[Mapping[str, Any]],
    test_languages: Sequence[str],
    history_languages: Sequence[str],
    *,
    min_history: int = 0,
) -> dict[str, dict[str, Any]]:
    """Per detected language: test tickets, accuracy, coverage at 95% precision, the number of history
    tickets in that language (``rows[i]["index"]`` indexes ``test_languages``), and whether production
    would send them to triage for their language (fewer than ``min_history`` history tickets: the rule
    of :func:`tickets.pipeline.language.unsupported_language_reason`; the figures above ignore it)."""
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
            "triage_for_language": bool(
                unsupported_language_reason(
                    language="" if language == UNDETERMINED else language,
                    history_counts={k: v for k, v in history_counts.items() if k != UNDETERMINED},
                    minimum=min_history,
                )
            ),
        }
    return report


def language_html(modes: Mapping[str, Mapping[str, Any]]) -> str:
    """The per-language section of report.html ("" when no mode has figures per language)."""
    sections = []
    for mode, figures in modes.items():
        groups = figures.get("per_language") or {}
        rows = "".join(
            f"<tr><th>{html.escape(language)}</th><td>{group['n']}</td><td>{group['accuracy']:.1%}</td>"
            f"<td>{group['coverage_at_precision_95']:.1%}</td><td>{group['history_tickets']}</td>"
            f"<td>{'yes' if group.get('triage_for_language') else 'no'}</td></tr>"
            for language, group in groups.items()
        )
        if rows:
            sections.append(
                f"<h3>{html.escape(mode)}</h3><table><tr><th>language</th><th>test tickets</th>"
                "<th>accuracy</th><th>routable at 95% precision</th><th>history tickets</th>"
                f"<th>to triage for its language</th></tr>{rows}</table>"
            )
    return f"<h2>Per language</h2>{''.join(sections)}" if sections else ""

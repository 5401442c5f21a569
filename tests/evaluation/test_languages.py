"""Figures per language in ``evaluate``'s report, on a case small enough to compute by hand, with the
real language identifier grouping the tickets."""

from __future__ import annotations

from typing import Any

from tickets.evaluation.data import EvalTicket
from tickets.evaluation.languages import UNDETERMINED, language_html, language_report, languages_of


def _ticket(text: str) -> EvalTicket:
    return EvalTicket(line=1, text=text, category="x", team=None, resolution="", priority="")


def test_tickets_are_grouped_by_the_language_production_detects() -> None:
    tickets = [
        _ticket("Ich kann mich seit gestern nicht mehr anmelden, bitte helfen Sie mir"),
        _ticket("I cannot sign in since yesterday, please help me with my account"),
        _ticket("ok"),
    ]
    assert languages_of(tickets) == ["de", "en", UNDETERMINED]


def test_accuracy_coverage_and_history_per_language_by_hand() -> None:
    test_languages = ["en", "en", "en", "en", "de", "de", "de", UNDETERMINED]
    history_languages = ["en"] * 30 + ["de"] * 4 + [UNDETERMINED] * 2
    rows: list[dict[str, Any]] = [
        # en: 3 of 4 right; by confidence 0.9 (right), 0.8 (right), 0.7 (wrong), 0.6 (right)
        {"index": 0, "predicted": "A", "truth": "A", "confidence": 0.9},
        {"index": 1, "predicted": "B", "truth": "B", "confidence": 0.8},
        {"index": 2, "predicted": "A", "truth": "C", "confidence": 0.7},
        {"index": 3, "predicted": "C", "truth": "C", "confidence": 0.6},
        # de: 1 of 3 right, the right one least sure
        {"index": 4, "predicted": "A", "truth": "B", "confidence": 0.9},
        {"index": 5, "predicted": "B", "truth": "B", "confidence": 0.5},
        {"index": 6, "predicted": None, "truth": "A", "confidence": 0.0},
        {"index": 7, "predicted": "A", "truth": "A", "confidence": 0.4},
    ]
    report = language_report(rows, test_languages, history_languages, min_history=5)

    assert list(report) == ["en", "de", UNDETERMINED]  # largest group first
    assert report["en"] == {
        "n": 4,
        "accuracy": 0.75,
        "coverage_at_precision_95": 0.5,  # the top two are right; the third breaks 95%
        "history_tickets": 30,
        "triage_for_language": False,
    }
    assert report["de"] == {
        "n": 3,
        "accuracy": 1 / 3,
        "coverage_at_precision_95": 0.0,  # the surest is wrong: no threshold reaches 95%
        "history_tickets": 4,
        "triage_for_language": True,  # 4 history tickets, fewer than 5
    }
    assert report[UNDETERMINED]["n"] == 1 and report[UNDETERMINED]["accuracy"] == 1.0
    assert report[UNDETERMINED]["triage_for_language"] is False  # the rule never applies to it
    assert language_report(rows, test_languages, history_languages)["de"]["triage_for_language"] is False

    page = language_html({"retrieval": {"per_language": report}})
    assert "<h2>Per language</h2>" in page
    assert "<tr><th>de</th><td>3</td><td>33.3%</td><td>0.0%</td><td>4</td><td>yes</td></tr>" in page
    assert language_html({"retrieval": {}}) == ""

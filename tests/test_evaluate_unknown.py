"""``manage.py evaluate --unknown-categories / --unknown-label``: leave-categories-out end to end, with the
real embedder, knowledge base and label model (and its novelty step)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from django.core.management import CommandError

from tests.test_evaluate import base_args, evaluate, files, tickets, write_csv  # noqa: F401

POINT_KEYS = ("unknown_to_triage", "routed_precision", "known_coverage", "accuracy")


def test_hidden_categories_are_reported_and_counted(files: dict[str, Path]) -> None:  # noqa: F811
    lines = evaluate(*base_args(files), "--unknown-categories", "1", "--unknown-seed", "3")
    hidden_line = next(line for line in lines if line.startswith("hidden categories"))
    report = json.loads((files["output"] / "report.json").read_text())
    mode = report["modes"]["retrieval"]
    unknown = mode["unknown_topics"]
    assert len(unknown["hidden_categories"]) == 1
    hidden = unknown["hidden_categories"][0]
    assert hidden in hidden_line
    assert report["run"]["categories"] == 3, "the hidden category is not in the workspace"
    assert unknown["unknown_tickets"] == 6 and unknown["known_tickets"] == 18
    assert mode["n"] == 18, "the main figures are those of the known tickets"
    for name in ("at_team_default", "best_accuracy"):
        for key in POINT_KEYS:
            value = unknown[name][key]
            assert value is None or 0.0 <= value <= 1.0, (name, key)
    # No ticket of the hidden category can be routed right: at threshold 0 they are all routed, wrong.
    assert unknown["curve"][0]["unknown_to_triage"] == 0.0
    assert unknown["curve"][-1]["unknown_to_triage"] == 1.0
    html = (files["output"] / "report.html").read_text()
    assert "Unknown topics" in html and "Hidden categories" in html
    # Another seed hides another category and starts the workspace over.
    evaluate(*base_args(files), "--unknown-categories", "1", "--unknown-seed", "0")
    again = json.loads((files["output"] / "report.json").read_text())["modes"]["retrieval"]
    assert again["unknown_topics"]["unknown_tickets"] == 6


def test_unknown_label_marks_out_of_scope_rows(files: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    rows = tickets(24, seed=2)
    for row in rows[:5]:
        row["label"] = "oos"
    write_csv(files["test"], rows)
    evaluate(*base_args(files), "--unknown-label", "oos")
    report = json.loads((files["output"] / "report.json").read_text())
    unknown = report["modes"]["retrieval"]["unknown_topics"]
    assert unknown["hidden_categories"] == ["oos"]
    assert unknown["unknown_tickets"] == 5 and unknown["known_tickets"] == 19


def test_hiding_too_many_is_a_clear_error(files: dict[str, Path]) -> None:  # noqa: F811
    with pytest.raises(CommandError, match="at least 2"):
        evaluate(*base_args(files), "--unknown-categories", "3")


@pytest.mark.slow
def test_bitext_leave_categories_out(shared_data: Path, tmp_path: Path) -> None:
    """900 bitext tickets, 5 of 27 intents hidden: the novelty step learned on history sends most
    unknown-topic tickets to triage and keeps what it routes precise."""
    source = shared_data / "bitext-customer-support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    with source.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    random.Random(0).shuffle(rows)
    for name, part in (("history.csv", rows[:900]), ("test.csv", rows[900:1200])):
        with (tmp_path / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(part)
    evaluate(
        "--history", str(tmp_path / "history.csv"), "--test", str(tmp_path / "test.csv"),
        "--output", str(tmp_path / "out"), "--text-column", "instruction", "--label-column", "intent",
        "--team-column", "category", "--modes", "retrieval", "--unknown-categories", "5",
    )  # fmt: skip
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    unknown = report["modes"]["retrieval"]["unknown_topics"]
    assert report["run"]["categories"] == 22 and unknown["unknown_tickets"] > 20
    assert report["run"]["label_model_history_stats"]["novelty"]["groups"] == 4
    learned = unknown["at_learned_threshold"]
    assert learned["unknown_to_triage"] >= 0.6, learned
    assert learned["routed_precision"] >= 0.9, learned
    assert learned["known_coverage"] >= 0.6, learned


GERMAN = (
    "Ich kann mich nicht anmelden, das Passwort ist falsch und ich bitte um Hilfe mit dem Zugang",
    "Die Rechnung ist doppelt und ich möchte, dass Sie mir das Geld für den Monat zurückgeben",
)


def test_figures_per_language_say_what_history_lacks(files: dict[str, Path]) -> None:  # noqa: F811
    rows = tickets(24, seed=2)
    for i, row in enumerate(rows[:6]):
        row["text"] = GERMAN[i % 2]
        row["label"], row["team"] = ("Access", "IT") if i % 2 == 0 else ("Billing <b>&</b>", "Finance")
    write_csv(files["test"], rows)
    evaluate(*base_args(files))
    per_language = json.loads((files["output"] / "report.json").read_text())["modes"]["retrieval"][
        "per_language"
    ]
    assert per_language["de"]["n"] == 6 and per_language["de"]["history_tickets"] == 0
    assert sum(group["n"] for group in per_language.values()) == 24
    for group in per_language.values():
        assert 0.0 <= group["accuracy"] <= 1.0 and 0.0 <= group["coverage_at_precision_95"] <= 1.0

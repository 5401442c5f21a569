"""``evaluate --resolution-column``: the suggestion block of report.json and its section in report.html,
with the real embedder, knowledge base, label model and answer ranker on small CSVs."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db

# Each topic has two ways of answering it; the label text is untrusted and must come out escaped.
TOPICS = {
    "Billing <b>&</b>": (
        ("invoice", "charged twice", "refund", "payment failed"),
        (
            "We refunded the duplicate charge; it shows on your statement within five working days.",
            "The second charge was reversed today, you will see the money back within a week.",
        ),
    ),
    "Access": (
        ("password reset", "cannot log in", "account locked", "sign-in error"),
        (
            "We sent a password reset link and unlocked the account after checking your identity.",
            "Your account is unlocked; use the reset link we e-mailed to choose a new password.",
        ),
    ),
    "Shipping": (
        ("parcel late", "tracking number", "wrong address", "courier lost"),
        (
            "The courier confirmed the parcel is on its way; here is the new delivery date.",
            "We asked the carrier to redeliver the package to the corrected address.",
        ),
    ),
}


def rows(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = list(TOPICS)[i % len(TOPICS)]
        phrases, answers = TOPICS[label]
        out.append(
            {
                "text": f"{rng.choice(('Hello, ', 'Hi, ', ''))}{rng.choice(phrases)} please help #{seed}-{i}",
                "label": label,
                "answer": rng.choice(answers),
            }
        )
    return out


def write(path: Path, data: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label", "answer"])
        writer.writeheader()
        writer.writerows(data)
    return path


def test_evaluate_reports_suggestions_per_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from retrieval import answer_ranker

    monkeypatch.setattr(answer_ranker, "MIN_CALIBRATION_QUERIES", 50)  # 90 history tickets, calibrated
    history, test = write(tmp_path / "h.csv", rows(90, 1)), write(tmp_path / "t.csv", rows(24, 2))
    output = tmp_path / "report"
    args = [
        "--history", str(history), "--test", str(test), "--output", str(output), "--text-column", "text",
        "--label-column", "label", "--resolution-column", "answer", "--modes", "retrieval",
    ]  # fmt: skip
    call_command("evaluate", *args, stdout=io.StringIO())
    report = json.loads((output / "report.json").read_text())
    block = report["modes"]["retrieval"]["suggestion"]
    assert block["n"] == 24
    for key in ("usable_share", "abstained_share", "citation_validity"):
        assert 0.0 <= block[key] <= 1.0, key
    shown = round(block["n"] * (1 - block["abstained_share"]))
    if shown:
        assert block["usable_share"] == pytest.approx(block["usable_precision"] * shown / block["n"])
    assert block["citation_validity"] in (None, 1.0)  # a stored answer cites the retrieved ticket it is
    assert block["similarity_before_abstention"]["n"] == 24 and block["coverage_quality_curve"]
    assert set(block["baselines"]) == {"nearest_ticket_answer", "best_of_top5"}
    ranker = report["run"]["suggestion_ranker"]
    assert ranker["calibrated"] and ranker["history_stats"]["history_queries"] == 90
    assert (output / "workspace" / "answer_ranker.bin").is_file()
    page = (output / "report.html").read_text()
    assert "<h2>Suggested resolutions</h2>" in page and "MiniLM" in page and "<polyline" in page
    assert "Billing <b>&</b>" not in page

    # Resumed with the same inputs: the same figures, nothing recomputed differently.
    call_command("evaluate", *args, stdout=io.StringIO())
    again = json.loads((output / "report.json").read_text())["modes"]["retrieval"]["suggestion"]
    assert again["usable_share"] == block["usable_share"] and again["ece"] == block["ece"]


def test_each_distinct_answer_is_embedded_once_and_the_files_are_reused(tmp_path: Path) -> None:
    """Templated replies repeat: history and test answers are embedded together, each text once, and a
    second call reads the saved files instead of embedding again."""
    from django.conf import settings

    from retrieval.embeddings import get_embedder
    from tickets.evaluation.suggestions import answer_vectors

    embedder = get_embedder(settings.EMBEDDING_MODEL)
    history = [
        "Refunded the duplicate charge.",
        "",
        "Unlocked your account.",
        "Refunded the duplicate charge.",
    ]
    test = ["Unlocked your account.", "A reply seen only in test."]
    paths = [tmp_path / "history.npy", tmp_path / "test.npy"]
    embedded: list[int] = []
    first = answer_vectors(paths, [history, test], embedder, progress=embedded.append)
    assert sum(embedded) == 3  # three distinct non-empty texts
    assert first[0].shape == (4, embedder.dim) and first[1].shape == (2, embedder.dim)
    assert np.allclose(first[0][0], first[0][3]) and np.allclose(first[0][2], first[1][0])
    assert not first[0][1].any()  # no answer, no vector
    # the same text embedded alone (int8 quantisation varies a little with the batch)
    assert float(first[1][1] @ embedder.encode(["A reply seen only in test."])[0]) > 0.98
    embedded.clear()
    again = answer_vectors(paths, [history, test], embedder, progress=embedded.append)
    assert embedded == [] and all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))

"""``manage.py evaluate`` end to end: the real embedder, knowledge base and label model, small CSVs."""

from __future__ import annotations

import csv
import io
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

STAGES = ("input", "embed", "retrieval", "classifier", "model", "decision", "total")
LINE = re.compile(r"^accuracy=(\d\.\d{4}) macro_f1=(\d\.\d{4}) coverage_at_precision_95=(\d\.\d{4})$")
# The label text is the company's and untrusted: it must come out escaped in the HTML report.
TRICKY = "Billing <b>&</b>"
TOPICS = {
    TRICKY: ("invoice", "charged twice", "refund", "receipt", "payment failed"),
    "Access": ("password reset", "cannot log in", "account locked", "two-factor code", "sign-in error"),
    "Hardware": ("laptop screen", "keyboard broken", "printer jam", "docking station", "battery drains"),
    "Shipping": ("parcel late", "tracking number", "wrong address", "courier lost", "delivery date"),
}
TEAMS = {TRICKY: "Finance", "Access": "IT", "Hardware": "IT", "Shipping": "Logistics"}
OPENERS = ("Hello, ", "Hi team, ", "", "Urgent: ", "Good morning. ")
CLOSERS = (" please help.", " thanks!", " what should I do?", "", " since yesterday.")


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label", "team"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def tickets(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = list(TOPICS)[i % len(TOPICS)]
        phrase = rng.choice(TOPICS[label])
        rows.append(
            {
                "text": f"{rng.choice(OPENERS)}{phrase}{rng.choice(CLOSERS)} #{seed}-{i}",
                "label": label,
                "team": TEAMS[label],
            }
        )
    return rows


def evaluate(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("evaluate", *args, stdout=out)
    return out.getvalue().strip().splitlines()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "history": write_csv(tmp_path / "history.csv", tickets(80, seed=1)),
        "test": write_csv(tmp_path / "test.csv", tickets(24, seed=2)),
        "output": tmp_path / "report",
    }


def base_args(files: dict[str, Path]) -> list[str]:
    return [
        "--history", str(files["history"]), "--test", str(files["test"]), "--output", str(files["output"]),
        "--text-column", "text", "--label-column", "label", "--team-column", "team", "--modes", "retrieval",
    ]  # fmt: skip


def check_mode_report(report: dict[str, Any], n: int) -> None:
    assert report["n"] == n
    for key in ("accuracy", "macro_f1", "team_accuracy", "coverage_at_precision_95"):
        assert 0.0 <= report[key] <= 1.0, key
    assert 0.0 <= report["ece"] <= 1.0
    assert 0.0 <= report["retrieval_label_match_at_1"] <= report["retrieval_label_match_at_5"] <= 1.0
    for stage in STAGES:
        latency = report["latency_ms"][stage]
        assert 0.0 <= latency["p50"] <= latency["p95"], stage
    assert report["latency_ms"]["total"]["p50"] > 0
    assert set(report["tokens_per_ticket"]) == {"prompt", "completion"}
    assert report["cost_per_ticket"] >= 0 and report["energy_wh_per_ticket"] >= 0
    for scores in report["per_class"].values():
        assert set(scores) == {"precision", "recall", "f1", "support"}
    assert isinstance(report["confusion_pairs"], list)


def test_retrieval_mode_reports_and_resumes(files: dict[str, Path]) -> None:
    lines = evaluate(*base_args(files))
    match = LINE.match(lines[-1])
    assert match, lines[-1]
    report = json.loads((files["output"] / "report.json").read_text())
    mode = report["modes"]["retrieval"]
    check_mode_report(mode, 24)
    assert float(match.group(1)) == pytest.approx(mode["accuracy"], abs=1e-4)
    # Distinct vocabularies per label: the history teaches them.
    assert mode["accuracy"] >= 0.9 and mode["team_accuracy"] >= 0.9
    assert mode["tokens_per_ticket"] == {"prompt": 0, "completion": 0} and mode["model_consulted_share"] == 0
    assert set(mode["per_class"]) == set(TOPICS)
    html = (files["output"] / "report.html").read_text()
    assert html.count("<svg") == 4 and "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert TRICKY not in html and "Billing &lt;b&gt;&amp;&lt;/b&gt;" in html

    # Interrupted mid-way: two results lost and a torn line. The re-run redoes just those.
    results = files["output"] / "results-retrieval.jsonl"
    kept = results.read_text().splitlines()[:-2]
    results.write_text("\n".join(kept) + '\n{"index": 23, "trunc')
    lines = evaluate(*base_args(files))
    assert "resuming" in lines[1]
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted(row["index"] for row in rows) == list(range(24))
    assert json.loads((files["output"] / "report.json").read_text())["modes"]["retrieval"]["n"] == 24

    # Other inputs: a clean restart, not a mix.
    write_csv(files["test"], tickets(10, seed=3))
    lines = evaluate(*base_args(files))
    assert not any("resuming" in line for line in lines)
    assert json.loads((files["output"] / "report.json").read_text())["modes"]["retrieval"]["n"] == 10


def test_bad_input_is_a_clear_error(files: dict[str, Path], tmp_path: Path) -> None:
    args = base_args(files)
    with pytest.raises(CommandError, match="unknown mode"):
        evaluate(*args[:-1], "retrieval,psychic")
    with pytest.raises(CommandError, match="label column"):
        evaluate(*[a for a in args if a not in ("--label-column", "label")])
    with pytest.raises(CommandError, match="no column 'ticket'"):
        evaluate(*[("ticket" if a == "text" else a) for a in args])
    empty = write_csv(tmp_path / "empty.csv", [])
    with pytest.raises(CommandError, match="no usable labelled rows"):
        evaluate(*[str(empty) if a == str(files["test"]) else a for a in args])


def test_real_history_bounded(shared_data: Path, tmp_path: Path) -> None:
    """A few hundred bitext tickets: 27 intents, the categories as teams."""
    source = shared_data / "bitext-customer-support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    with source.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    random.Random(0).shuffle(rows)
    for name, part in (("history.csv", rows[:400]), ("test.csv", rows[400:500])):
        with (tmp_path / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(part)
    lines = evaluate(
        "--history", str(tmp_path / "history.csv"), "--test", str(tmp_path / "test.csv"),
        "--output", str(tmp_path / "out"), "--text-column", "instruction", "--label-column", "intent",
        "--team-column", "category", "--resolution-column", "response", "--modes", "retrieval",
    )  # fmt: skip
    assert LINE.match(lines[-1]), lines[-1]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    mode = report["modes"]["retrieval"]
    check_mode_report(mode, 100)
    # ~15 examples per intent: well above the 1-NN neighbour, and honest about its confidence.
    assert mode["accuracy"] >= 0.85
    assert mode["accuracy"] >= mode["retrieval_label_match_at_1"]
    assert mode["ece"] <= 0.12
    assert report["run"]["categories"] == 27


def test_model_modes_with_the_model_server_down_are_degraded_not_failed(files: dict[str, Path]) -> None:
    """Nothing listens on port 9: every model call fails, is recorded, and the decision falls back."""
    args = [a for a in base_args(files) if a != "retrieval"]
    args[args.index("--modes") + 1 :] = ["retrieval,model,combined", "--limit", "4", "--model-weight", "1000"]
    lines = evaluate(*args, "--backend", "openai", "--llm-base-url", "http://127.0.0.1:9/v1")
    assert LINE.match(lines[-1]), lines[-1]
    report = json.loads((files["output"] / "report.json").read_text())
    modes = report["modes"]
    assert modes["model"]["degraded_share"] == 1.0 and modes["model"]["accuracy"] == 0.0
    assert modes["model"]["model_consulted_share"] == 1.0
    # Combined mode asked the model only where the label model was unsure, and still decided.
    assert modes["combined"]["accuracy"] == modes["retrieval"]["accuracy"]
    assert modes["combined"]["degraded_share"] == modes["combined"]["model_consulted_share"]
    assert report["run"]["policy"]["model_weight"] == 1000
    assert report["headline_mode"] == "combined"


@pytest.mark.slow
def test_model_mode_with_the_embedded_model(files: dict[str, Path]) -> None:
    """SmolLM2 through llama.cpp on two tickets: tokens and model latency are accounted."""
    args = [a for a in base_args(files) if a != "retrieval"]
    args[args.index("--modes") + 1 :] = ["model", "--limit", "2"]
    lines = evaluate(*args, "--backend", "llamacpp")
    assert LINE.match(lines[-1]), lines[-1]
    mode = json.loads((files["output"] / "report.json").read_text())["modes"]["model"]
    assert mode["n"] == 2 and mode["degraded_share"] == 0.0
    assert mode["tokens_per_ticket"]["prompt"] > 50 and mode["tokens_per_ticket"]["completion"] > 0
    assert mode["latency_ms"]["model"]["p50"] > 0

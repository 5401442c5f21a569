"""``evaluate --tune-embeddings``: tuned on the history only, kept only where it beats the shipped model on
held-out history, both figures and the decision in the report (real MiniLM, a few tuning steps)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from retrieval.onnx_embedder import ONNX_INT8_MODEL, TUNED_PREFIX
from tests.test_evaluate import base_args, evaluate, tickets, write_csv

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def tuning_of(output: Path) -> tuple[dict[str, Any], str]:
    report = json.loads((output / "report.json").read_text())
    return report["run"]["embedding_tuning"], report["run"]["embedding_model"]


def test_the_tuned_model_is_kept_only_where_it_beats_the_shipped_one(tmp_path: Path) -> None:
    files = {
        "history": write_csv(tmp_path / "history.csv", tickets(80, seed=1)),
        "test": write_csv(tmp_path / "test.csv", tickets(12, seed=2)),
        "output": tmp_path / "report",
    }
    tune = ["--tune-embeddings", "--tuning-steps", "4"]
    evaluate(*base_args(files), *tune)
    tuning, model = tuning_of(files["output"])
    figures = tuning["figures"]
    assert figures["held_out_tickets"] == 16 and figures["tuned_on_tickets"] == 64
    assert figures["tuning"]["steps"] == 4
    for side in ("shipped", "tuned"):
        assert set(figures[side]) == {"knn5", "logistic", "mean"}
        assert all(0.0 <= value <= 1.0 for value in figures[side].values())
    assert tuning["kept"] == (figures["tuned"]["mean"] > figures["shipped"]["mean"])
    assert tuning["name"].startswith(TUNED_PREFIX)
    assert model == (tuning["name"] if tuning["kept"] else ONNX_INT8_MODEL)
    assert (files["output"] / "tuning" / tuning["name"] / "manifest.json").is_file()

    # A gain it cannot reach: the shipped model stays (the tuning is reused, not redone).
    lines = evaluate(*base_args(files), *tune, "--tuning-min-gain", "1.0")
    tuning_dropped, model = tuning_of(files["output"])
    assert not tuning_dropped["kept"] and model == ONNX_INT8_MODEL
    assert tuning_dropped["figures"] == figures and "does not beat" in tuning_dropped["reason"]
    assert any("does not beat" in line for line in lines)

    # Any result is enough: the tuned model is used for the whole run.
    evaluate(*base_args(files), *tune, "--tuning-min-gain", "-1.0")
    tuning_kept, model = tuning_of(files["output"])
    assert tuning_kept["kept"] and model == tuning["name"]
    report = json.loads((files["output"] / "report.json").read_text())
    assert report["modes"]["retrieval"]["n"] == 12

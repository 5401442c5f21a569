"""Shipped vs tuned embeddings on a shared data set: k-NN and logistic-regression accuracy on a test split,
and the time of tuning, export and embedding.

    python benchmarks/bench_tuning.py --dataset bitext|it|dstc11 [--history N] [--test N]
        [--steps 300] [--seconds 360] [--frozen-layers 4] [--seq-len 64] [--threads 1]

bitext: the evaluation's 80/20 split (``random.Random(0)``), intent as label. it: the first N rows as history,
the next ones as test (Topic_group). dstc11: the finance file's 1,130 turns (38 intents), shuffled 80/20.
Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("SWITCHBOARD_SHARED_DATA") or ROOT.parent / "shared" / "data")


def load(dataset: str, history: int, test: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    if dataset == "bitext":
        path = DATA / "bitext-customer-support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = [(row["instruction"], row["intent"]) for row in csv.DictReader(handle)]
        random.Random(0).shuffle(rows)
        cut = int(0.8 * len(rows))
        return rows[:cut][:history], rows[cut:][:test]
    if dataset == "it":
        path = DATA / "it-service-tickets" / "all_tickets_processed_improved_v3.csv"
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = [(row["Document"], row["Topic_group"]) for row in csv.DictReader(handle)]
        return rows[:history], rows[history : history + test]
    path = DATA / "dstc11-natcs-intents" / "test-finance" / "test-utterances.jsonl"
    with path.open(encoding="utf-8") as handle:
        rows = [(item["utterance"], item["intent"]) for item in map(json.loads, handle)]
    random.Random(0).shuffle(rows)
    cut = int(0.8 * len(rows))
    return rows[:cut][:history], rows[cut:][:test]


def knn_accuracy(
    train: np.ndarray, train_y: list[str], test: np.ndarray, test_y: list[str], k: int = 5
) -> float:
    scores = test @ train.T
    top = np.argsort(-scores, axis=1)[:, :k]
    right = 0
    for row, neighbours in enumerate(top):
        votes: dict[str, float] = {}
        for column in neighbours:
            votes[train_y[column]] = votes.get(train_y[column], 0.0) + float(scores[row, column])
        right += max(votes, key=lambda label: votes[label]) == test_y[row]
    return right / len(test_y)


def logreg_accuracy(train: np.ndarray, train_y: list[str], test: np.ndarray, test_y: list[str]) -> float:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=10.0, max_iter=1000).fit(train, train_y)
    return float(np.mean(model.predict(test) == np.array(test_y)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", choices=("bitext", "it", "dstc11"), default="bitext")
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--test", type=int, default=2_000)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=360.0)
    parser.add_argument("--frozen-layers", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from retrieval.embedding_tuning import TuneOptions, tune
    from retrieval.model_files import find_model_dir
    from retrieval.onnx_embedder import OnnxInt8Embedder, default_cache_dir
    from retrieval.tuned_embedder import TunedOnnxEmbedder, save_tuned

    history, test = load(args.dataset, args.history, args.test)
    labels = sorted({label for _, label in history})
    print(f"{args.dataset}: {len(history)} history, {len(test)} test, {len(labels)} labels", flush=True)
    h_text, h_y = [t for t, _ in history], [y for _, y in history]
    t_text, t_y = [t for t, _ in test], [y for _, y in test]
    shipped = OnnxInt8Embedder(default_cache_dir(), threads=args.threads)
    cpu_started = time.process_time()
    started = time.monotonic()
    h_ship, t_ship = shipped.encode(h_text), shipped.encode(t_text)
    embed_s = time.monotonic() - started
    with tempfile.TemporaryDirectory(prefix="bench-tuning-") as folder:
        options = TuneOptions(
            max_steps=args.steps,
            max_seconds=args.seconds,
            frozen_layers=args.frozen_layers,
            max_seq_len=args.seq_len,
            threads=args.threads,
        )
        started = time.monotonic()
        result = tune(
            texts=h_text,
            labels=h_y,
            base_dir=find_model_dir(),
            target_dir=Path(folder) / "m",
            options=options,
        )
        name = save_tuned(result.model_dir, root=Path(folder) / "tuned", stats=result.stats())
        tune_s = time.monotonic() - started
        tuned = TunedOnnxEmbedder(name, root=Path(folder) / "tuned", threads=args.threads)
        started = time.monotonic()
        h_tuned, t_tuned = tuned.encode(h_text), tuned.encode(t_text)
        tuned_embed_s = time.monotonic() - started
    figures = {
        "shipped_knn5": knn_accuracy(h_ship, h_y, t_ship, t_y),
        "tuned_knn5": knn_accuracy(h_tuned, h_y, t_tuned, t_y),
        "shipped_logreg": logreg_accuracy(h_ship, h_y, t_ship, t_y),
        "tuned_logreg": logreg_accuracy(h_tuned, h_y, t_tuned, t_y),
        "steps": result.steps,
        "tune_seconds": round(result.seconds, 1),
        "tune_and_export_seconds": round(tune_s, 1),
        "embed_shipped_seconds": round(embed_s, 1),
        "embed_tuned_seconds": round(tuned_embed_s, 1),
        "final_loss": round(result.final_loss, 3),
        "cpu_seconds_total": round(time.process_time() - cpu_started, 1),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

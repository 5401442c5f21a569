"""Embedding backends compared: plain sentence-transformers (fp32 torch) vs the int8 ONNX export.

Run from the repository root:

    .venv/bin/python benchmarks/bench_embeddings.py                 # 1 thread per backend
    .venv/bin/python benchmarks/bench_embeddings.py --threads 2

For each backend it measures, on real ticket texts read from ../shared/data (never copied in):

- batched throughput (sentences/s, and per core = divided by --threads) on the short bitext customer
  support requests (``instruction`` column) and on a sample of it-service-tickets (``Document``, longer);
  the batch-64 figure is the same encode pass that produces the vectors used below;
- single-ticket latency: one text per ``encode`` call, after a warm-up, p50/p95/p99;
- agreement: cosine similarity between the two backends' vectors for the same text (mean, p1, min);
- routing accuracy: 1-NN and 10-NN majority vote over the embeddings on an 80/20 split with a fixed seed,
  label = bitext ``intent`` and it-service ``Topic_group``; the ONNX minus plain difference in points.

The tokenizer's own thread pool is switched off (TOKENIZERS_PARALLELISM=false) so that "one thread" means
one core for both backends.
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import csv
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from retrieval.embeddings import Embedder, SentenceTransformerEmbedder  # noqa: E402
from retrieval.onnx_embedder import OnnxInt8Embedder, default_cache_dir  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
BITEXT = SHARED / "bitext-customer-support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
IT_TICKETS = SHARED / "it-service-tickets" / "all_tickets_processed_improved_v3.csv"
GOAL_PER_CORE = 500.0
GOAL_P95_MS = 10.0
GOAL_ACCURACY_POINTS = 0.5


@dataclass
class Dataset:
    name: str
    texts: list[str]
    labels: list[str]


@dataclass
class BackendResult:
    name: str
    load_s: float = 0.0
    throughput: dict[tuple[str, int], float] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    accuracy: dict[tuple[str, int], float] = field(default_factory=dict)


def read_column_pairs(path: Path, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    if not path.is_file():
        sys.exit(f"Missing dataset {path}: the shared data must sit beside the repository (../shared/data)")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [(row[text_column], row[label_column]) for row in csv.DictReader(handle)]
    return [text for text, _ in rows], [label for _, label in rows]


def load_datasets(it_rows: int, seed: int) -> list[Dataset]:
    """Bitext in full (4.5k short requests) and a fixed random sample of the it-service tickets."""
    texts, labels = read_column_pairs(BITEXT, "instruction", "intent")
    bitext = Dataset("bitext", texts, labels)
    texts, labels = read_column_pairs(IT_TICKETS, "Document", "Topic_group")
    pick = np.random.default_rng(seed).permutation(len(texts))[:it_rows]
    it_tickets = Dataset(f"it-tickets{it_rows // 1000}k", [texts[i] for i in pick], [labels[i] for i in pick])
    return [bitext, it_tickets]


T = TypeVar("T")


def timed(call: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def measure_latency(embedder: Embedder, texts: Sequence[str], runs: int, warmup: int) -> dict[str, float]:
    """One text per call, as a worker embeds a single incoming ticket."""
    for text in texts[:warmup]:
        embedder.encode([text])
    samples = []
    for i in range(runs):
        text = texts[i % len(texts)]
        started = time.perf_counter()
        embedder.encode([text])
        samples.append((time.perf_counter() - started) * 1000)
    p50, p95, p99 = np.percentile(samples, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}


def knn_accuracy(vectors: np.ndarray, labels: Sequence[str], k: int, seed: int) -> float:
    """Accuracy (%) of a k-NN majority vote (cosine; ties go to the nearest label) on an 80/20 split."""
    label_ids = np.unique(np.asarray(labels), return_inverse=True)[1]
    order = np.random.default_rng(seed).permutation(len(labels))
    cut = int(len(order) * 0.8)
    train, test = order[:cut], order[cut:]
    similarity = vectors[test] @ vectors[train].T
    nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    nearest_sims = np.take_along_axis(similarity, nearest, axis=1)
    nearest = np.take_along_axis(nearest, np.argsort(-nearest_sims, axis=1), axis=1)
    neighbour_labels = label_ids[train][nearest]
    predicted = np.array([majority(row) for row in neighbour_labels])
    return float((predicted == label_ids[test]).mean() * 100)


def majority(neighbour_labels: np.ndarray) -> int:
    """Most frequent label; among equally frequent ones, the first seen (neighbours are nearest-first)."""
    values, first_seen, counts = np.unique(neighbour_labels, return_index=True, return_counts=True)
    best = np.flatnonzero(counts == counts.max())
    return int(values[best[np.argmin(first_seen[best])]])


def bench_backend(
    name: str, make: Callable[[], Embedder], datasets: list[Dataset], args: argparse.Namespace
) -> BackendResult:
    result = BackendResult(name)
    embedder, result.load_s = timed(make)
    warm = getattr(embedder, "warmup", None)
    if warm is not None:
        _, load_extra = timed(warm)
        result.load_s += load_extra
    embedder.encode(datasets[0].texts[:256], batch_size=64)  # warm caches and allocators
    for dataset in datasets:
        vectors, seconds = timed(partial(embedder.encode, dataset.texts, batch_size=64))
        result.vectors[dataset.name] = np.asarray(vectors)
        result.throughput[(dataset.name, 64)] = len(dataset.texts) / seconds
        print(f"  {name}: {dataset.name} batch 64: {len(dataset.texts) / seconds:.0f}/s", flush=True)
    short = datasets[0]
    for batch_size in args.batch_sizes:
        if batch_size == 64:
            continue
        _, seconds = timed(partial(embedder.encode, short.texts, batch_size=batch_size))
        result.throughput[(short.name, batch_size)] = len(short.texts) / seconds
        print(f"  {name}: {short.name} batch {batch_size}: {len(short.texts) / seconds:.0f}/s", flush=True)
    sample = np.random.default_rng(args.seed).permutation(len(short.texts))[: args.latency_runs]
    result.latency_ms = measure_latency(embedder, [short.texts[i] for i in sample], args.latency_runs, 20)
    print(f"  {name}: single-ticket latency {result.latency_ms}", flush=True)
    for dataset in datasets:
        for k in (1, 10):
            result.accuracy[(dataset.name, k)] = knn_accuracy(
                result.vectors[dataset.name], dataset.labels, k, args.seed
            )
    return result


def machine_summary() -> str:
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0] if Path("/proc/meminfo").exists() else ""
    total_gib = int(meminfo.split()[1]) / 2**20 if meminfo else float("nan")
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import onnxruntime
    import torch

    return (
        f"machine: nproc={os.cpu_count()} (usable {len(os.sched_getaffinity(0))}), {cpu}, "
        f"memory {total_gib:.1f} GiB; python {platform.python_version()}, torch {torch.__version__}, "
        f"onnxruntime {onnxruntime.__version__}"
    )


def print_report(results: list[BackendResult], datasets: list[Dataset], args: argparse.Namespace) -> None:
    plain, onnx = results
    threads = args.threads
    print("\n" + machine_summary())
    print(f"command: cd {ROOT} && {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"threads per backend: {threads}; sizes: " + ", ".join(f"{d.name}={len(d.texts)}" for d in datasets)
    )
    rows: list[tuple[str, str, str]] = [("", plain.name, onnx.name)]
    rows.append(("load (s, incl. export if any)", f"{plain.load_s:.1f}", f"{onnx.load_s:.1f}"))
    for key in plain.throughput:
        label = f"{key[0]} batch {key[1]}: sent/s (per core)"
        plain_rate, onnx_rate = (r.throughput[key] for r in results)
        rows.append(
            (
                label,
                f"{plain_rate:.0f} ({plain_rate / threads:.0f})",
                f"{onnx_rate:.0f} ({onnx_rate / threads:.0f})",
            )
        )
    for quantile in ("p50", "p95", "p99"):
        plain_ms, onnx_ms = (r.latency_ms[quantile] for r in results)
        rows.append((f"one ticket latency {quantile} (ms)", f"{plain_ms:.2f}", f"{onnx_ms:.2f}"))
    for key in plain.accuracy:
        label = f"{key[0]} {key[1]}-NN accuracy (%)"
        diff = onnx.accuracy[key] - plain.accuracy[key]
        rows.append((label, f"{plain.accuracy[key]:.2f}", f"{onnx.accuracy[key]:.2f} ({diff:+.2f} pts)"))
    for dataset in datasets:
        cosine = (plain.vectors[dataset.name] * onnx.vectors[dataset.name]).sum(axis=1)
        rows.append(
            (
                f"{dataset.name} cosine plain vs onnx",
                "mean / p1 / min",
                f"{cosine.mean():.4f} / {np.percentile(cosine, 1):.4f} / {cosine.min():.4f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print_goals(plain, onnx, datasets[0].name, threads)


def print_goals(plain: BackendResult, onnx: BackendResult, short: str, threads: int) -> None:
    per_core = max(value for (name, _), value in onnx.throughput.items() if name == short) / threads
    worst_drop = max(plain.accuracy[key] - onnx.accuracy[key] for key in plain.accuracy)
    checks = [
        (f">= {GOAL_PER_CORE:.0f} short tickets/s per core", f"{per_core:.0f}", per_core >= GOAL_PER_CORE),
        (
            f"<= {GOAL_P95_MS:.0f} ms p95 one ticket",
            f"{onnx.latency_ms['p95']:.2f}",
            onnx.latency_ms["p95"] <= 10,
        ),
        (
            f"accuracy within {GOAL_ACCURACY_POINTS} pts of plain",
            f"largest drop vs plain {worst_drop:.2f} pts (negative = onnx better everywhere)",
            worst_drop <= GOAL_ACCURACY_POINTS,
        ),
    ]
    print("\ngoals for the ONNX int8 backend:")
    for goal, value, ok in checks:
        print(f"  {'MET ' if ok else 'MISS'}  {goal}: {value}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per backend (default 1)")
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[64, 128], help="batched throughput sizes"
    )
    parser.add_argument("--it-rows", type=int, default=10_000, help="it-service-tickets sample size")
    parser.add_argument("--latency-runs", type=int, default=300, help="single-ticket encodes timed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="ONNX cache (default $SWITCHBOARD_DATA_DIR/models)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    datasets = load_datasets(args.it_rows, args.seed)
    cache_dir = args.cache_dir or default_cache_dir()
    backends: list[tuple[str, Callable[[], Embedder]]] = [
        ("sentence-transformers", lambda: SentenceTransformerEmbedder(threads=args.threads)),
        ("onnx-int8", lambda: OnnxInt8Embedder(cache_dir, threads=args.threads)),
    ]
    results = []
    for name, make in backends:
        print(f"benchmarking {name} ...", flush=True)
        results.append(bench_backend(name, make, datasets, args))
    print_report(results, datasets, args)


if __name__ == "__main__":
    main()

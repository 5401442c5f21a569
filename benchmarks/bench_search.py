"""Vector search at 10k, 100k and 1M stored vectors: build time, memory, latency and recall@10.

Run from the repository root:

    .venv/bin/python benchmarks/bench_search.py                      # synthetic, 10k/100k/1M
    .venv/bin/python benchmarks/bench_search.py --real               # plus real ticket embeddings

Synthetic vectors are drawn around many cluster centres (like topics in a ticket history) and
normalised. ``--real`` embeds the 47,837 it-service-tickets (from ../shared/data, cached under
var/bench) and forces the approximate index on them, since recall on real embeddings is the goal.
Latency is for one query at a time (k=10), one thread, as a worker serves them.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from retrieval.vector_index import DEFAULT_IVF_THRESHOLD, VectorIndex  # noqa: E402

IT_TICKETS = ROOT.parent / "shared" / "data" / "it-service-tickets" / "all_tickets_processed_improved_v3.csv"
CACHE = ROOT / "var" / "bench"


def clustered_vectors(n: int, dim: int, rng: np.random.Generator, clusters: int = 4000) -> np.ndarray:
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    vectors = centres[rng.integers(0, clusters, n)] + 0.9 * rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def exact_top_k(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)  # ground truth only: use every core
    index = faiss.IndexFlatIP(data.shape[1])
    index.add(data)
    _, found = index.search(queries, k)
    faiss.omp_set_num_threads(1)
    return np.asarray(found)


def measure(
    name: str, data: np.ndarray, queries: np.ndarray, *, ivf_threshold: int, k: int = 10
) -> dict[str, object]:
    ids = np.arange(data.shape[0], dtype=np.int64)
    started = time.perf_counter()
    index = VectorIndex.build(ids, data, ivf_threshold=ivf_threshold)
    build_s = time.perf_counter() - started
    latencies = []
    found_ids = []
    for query in queries:
        started = time.perf_counter()
        _, found = index.search(query[None, :], k)
        latencies.append(time.perf_counter() - started)
        found_ids.append(found[0])
    truth = exact_top_k(data, queries, k)
    recall = float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found_ids, truth, strict=True)]))
    ms = np.array(latencies) * 1000
    return {
        "set": name,
        "vectors": data.shape[0],
        "kind": index.kind,
        "nprobe": index.nprobe or "-",
        "build_s": round(build_s, 1),
        "memory_mb": round(index.memory_bytes() / 2**20, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "recall@10": round(recall, 4),
    }


def real_embeddings(limit: int | None) -> np.ndarray:
    from retrieval.model_files import DEFAULT_MODEL
    from retrieval.parallel import encode_batches

    model = os.environ.get("EMBEDDING_MODEL", f"{DEFAULT_MODEL}-onnx-int8")
    CACHE.mkdir(parents=True, exist_ok=True)
    cache = CACHE / f"it-service-tickets-{model}.npy"
    if cache.is_file():
        vectors = np.load(cache)
    else:
        with IT_TICKETS.open(encoding="utf-8", newline="") as handle:
            texts = [row["Document"] for row in csv.DictReader(handle)]
        processes = os.cpu_count() or 1
        print(f"embedding {len(texts)} real tickets with {model} in {processes} processes ...", flush=True)
        started = time.perf_counter()
        batches = [texts[start : start + 512] for start in range(0, len(texts), 512)]
        vectors = np.concatenate(list(encode_batches(batches, model=model, processes=processes)))
        print(
            f"  {len(texts) / (time.perf_counter() - started):.0f} tickets/s (cached in {cache})", flush=True
        )
        np.save(cache, vectors)
    chosen: np.ndarray = vectors[:limit] if limit else vectors
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--real", action="store_true", help="also measure real ticket embeddings")
    args = parser.parse_args()

    rng = np.random.default_rng(7)
    rows = []
    for size in args.sizes:
        data = clustered_vectors(size + args.queries, args.dim, rng)
        stored, queries = data[: -args.queries], data[-args.queries :]
        rows.append(measure(f"synthetic {size:,}", stored, queries, ivf_threshold=DEFAULT_IVF_THRESHOLD))
        print(rows[-1], flush=True)
        del data
    if args.real:
        if not IT_TICKETS.is_file():
            sys.exit(f"--real needs {IT_TICKETS}")
        vectors = real_embeddings(None)
        order = np.random.default_rng(11).permutation(len(vectors))
        queries, data = vectors[order[: args.queries]], vectors[order[args.queries :]]
        rows.append(measure("real it-tickets (IVF forced)", data, queries, ivf_threshold=1_000))
        print(rows[-1], flush=True)
        rows.append(measure("real it-tickets (exact)", data, queries, ivf_threshold=10**9))
        print(rows[-1], flush=True)

    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    print(f"\nmachine: {os.cpu_count()} cores, {memory_gib:.0f} GiB, {cpu}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    if not rows:
        return
    headers = list(rows[0])
    print(" | ".join(headers))
    print(" | ".join("---" for _ in headers))
    for row in rows:
        print(" | ".join(str(row[h]) for h in headers))


if __name__ == "__main__":
    main()

"""Language identification (``tickets.pipeline.language``) against tobi-bueck's ``language`` column.

All three shared files (en, de, es, fr, pt), shuffled with ``random.Random(0)``, the first N rows: accuracy
on the whole ticket and on its first 5 and 3 words (short tickets), the share left undetermined, and the
time per ticket. About 18% of the rows labelled ``de`` are written in English (synthetic data), which
caps every detector's German figure near 0.80.

    python benchmarks/bench_language.py [--rows 2000] [--candidates en,de,... | --candidates all]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("SWITCHBOARD_SHARED_DATA") or ROOT.parent / "shared" / "data")
TOBI = DATA / "tobi-bueck-customer-support-tickets"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument(
        "--candidates", help="Comma-separated codes, or 'all' (default: the shipped default)."
    )
    options = parser.parse_args()
    from tickets.pipeline.language import DEFAULT_CANDIDATES, detect_language

    candidates: tuple[str, ...] = DEFAULT_CANDIDATES
    if options.candidates:
        candidates = () if options.candidates == "all" else tuple(options.candidates.split(","))
    rows: list[tuple[str, str]] = []
    for path in sorted(TOBI.glob("*.csv")):
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle):
                rows.append((f"{row['subject']}\n\n{row['body']}".strip(), row["language"].strip()))
    if not rows:
        sys.exit(f"needs the shared datasets in {DATA}")
    random.Random(0).shuffle(rows)
    rows = rows[: options.rows]
    detect_language("warm the model up with a sentence", candidates=candidates)
    print(f"{len(rows)} tickets, candidates: {','.join(candidates) or 'all 97'}")
    for name, words in (("whole ticket", None), ("first 5 words", 5), ("first 3 words", 3)):
        texts = [(text if words is None else " ".join(text.split()[:words]), truth) for text, truth in rows]
        started = time.perf_counter()
        found = [detect_language(text, candidates=candidates) for text, _ in texts]
        per_ticket_ms = (time.perf_counter() - started) * 1000 / len(texts)
        right = sum(got == truth for got, (_, truth) in zip(found, texts, strict=True))
        per_language: dict[str, list[bool]] = {}
        for got, (_, truth) in zip(found, texts, strict=True):
            per_language.setdefault(truth, []).append(got == truth)
        detail = " ".join(f"{k}={sum(v) / len(v):.3f}" for k, v in sorted(per_language.items()))
        print(
            f"{name:14s} accuracy={right / len(texts):.4f} undetermined={found.count('') / len(texts):.3f} "
            f"{per_ticket_ms:.2f} ms/ticket  {detail}"
        )


if __name__ == "__main__":
    main()

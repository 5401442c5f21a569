"""Redaction and injection screening over every real ticket text in ../shared/data: speed and what they flag.

Run from the repository root:

    .venv/bin/python benchmarks/bench_redaction.py            # all 57k texts, about 2 minutes
    .venv/bin/python benchmarks/bench_redaction.py --limit 5000

Prints chars/s and texts/s of ``redact``, ``detect_injection`` and ``neutralize`` (one thread), how many
placeholders of each kind redaction wrote per data set, and every text flagged as an injection attempt
with the phrases that flagged it. The data sets are ordinary support traffic, already anonymised by their
publishers (``<name>``, ``<tel_num>``), so anything flagged or redacted there beyond the sample e-mail
addresses is a false positive worth reading.
"""

from __future__ import annotations

import argparse
import csv
import shlex
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference_app.llm.injection import detect_injection, neutralize  # noqa: E402
from inference_app.llm.redaction import redact  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SOURCES: tuple[tuple[str, str, Callable[[dict[str, str]], str]], ...] = (
    (
        "tobi-bueck",
        "tobi-bueck-customer-support-tickets/*.csv",
        lambda row: f"{row['subject']}\n{row['body']}",
    ),
    ("it-service", "it-service-tickets/all_tickets_processed_improved_v3.csv", lambda row: row["Document"]),
    (
        "bitext",
        "bitext-customer-support/Bitext_Sample_Customer_Support_Training_Dataset.csv",
        lambda row: row["instruction"],
    ),
)


def load(limit: int | None) -> list[tuple[str, str]]:
    csv.field_size_limit(1 << 30)
    texts: list[tuple[str, str]] = []
    for name, pattern, text_of in SOURCES:
        for path in sorted(SHARED.glob(pattern)):
            with path.open(newline="", encoding="utf-8") as handle:
                texts.extend((name, text_of(row) or "") for row in csv.DictReader(handle))
    return texts[:limit] if limit else texts


def timed(function: Callable[[str], Any], texts: Sequence[str]) -> tuple[list[Any], float]:
    started = time.perf_counter()
    results = [function(text) for text in texts]
    return results, time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=None, help="first N texts only")
    args = parser.parse_args(argv)
    if not SHARED.is_dir():
        sys.exit(f"the shared datasets are not here ({SHARED})")
    labelled = load(args.limit)
    texts = [text for _, text in labelled]
    chars = sum(map(len, texts))
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"{len(texts)} texts, {chars:,} characters, mean {chars / len(texts):.0f} characters")

    redacted, redact_s = timed(redact, texts)
    signals, detect_s = timed(detect_injection, texts)
    _, neutralize_s = timed(neutralize, texts)
    for name, seconds in (("redact", redact_s), ("detect_injection", detect_s), ("neutralize", neutralize_s)):
        print(
            f"{name:>17}: {chars / seconds:>12,.0f} chars/s  {len(texts) / seconds:>9,.0f} texts/s  "
            f"({seconds * 1e6 / len(texts):.0f} µs a text)"
        )

    placeholders: Counter[tuple[str, str]] = Counter()
    for (source, _), result in zip(labelled, redacted, strict=True):
        for kind, count in result.counts.items():
            placeholders[source, kind] += count
    print("placeholders written:", dict(sorted(placeholders.items())) or "none")
    flagged = [
        (source, signal) for (source, _), signal in zip(labelled, signals, strict=True) if signal.suspected
    ]
    print(f"flagged as injection attempts: {len(flagged)} of {len(texts)}")
    for source, signal in flagged:
        print(f"  {source}: {signal.matches}")


if __name__ == "__main__":
    main()

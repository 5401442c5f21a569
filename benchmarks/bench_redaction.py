"""Redaction and injection screening over every real ticket text in ../shared/data: speed and what they flag.

Run from the repository root:

    .venv/bin/python benchmarks/bench_redaction.py            # all 57k texts, a few minutes
    .venv/bin/python benchmarks/bench_redaction.py --limit 5000
    .venv/bin/python benchmarks/bench_redaction.py --per-set 2000 --show 20

Prints chars/s and texts/s of ``prepare`` (markup, quoted-printable), ``redact``, ``detect_injection`` and
``neutralize`` (one thread), per data set how many texts had each kind of placeholder inserted (and how
many placeholders), with ``--show N`` up to N redacted spans of each kind in context, and every text
flagged as an injection attempt with the phrases that flagged it. The data sets are ordinary support
traffic, already anonymised by their publishers (``<name>``, ``<tel_num>``), so anything flagged or
redacted there beyond the sample e-mail addresses is a false positive worth reading; dstc11-natcs holds
spoken requests with made-up account, phone and card numbers, which should be redacted.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
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
from tickets.pipeline.text import prepare  # noqa: E402

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
    ("dstc11-natcs", "dstc11-natcs-intents/*/test-utterances.jsonl", lambda row: row["utterance"]),
)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in handle if line.strip()]
        return list(csv.DictReader(handle))


def load(limit: int | None, per_set: int | None = None, shared: Path = SHARED) -> list[tuple[str, str]]:
    csv.field_size_limit(1 << 30)
    texts: list[tuple[str, str]] = []
    for name, pattern, text_of in SOURCES:
        rows = [row for path in sorted(shared.glob(pattern)) for row in _rows(path)]
        texts.extend((name, text_of(row) or "") for row in rows[:per_set])
    return texts[:limit] if limit else texts


_PLACEHOLDER = re.compile(r"\[([A-Z_]+)\]")


def show_examples(labelled: Sequence[tuple[str, str]], redacted: Sequence[Any], per_kind: int) -> None:
    """Up to ``per_kind`` redacted texts of each kind, the placeholder in context (to read for mistakes)."""
    shown: Counter[str] = Counter()
    for (source, _), result in zip(labelled, redacted, strict=True):
        for match in _PLACEHOLDER.finditer(result.text):
            kind = match.group(1)
            if kind in result.counts and shown[kind] < per_kind:
                shown[kind] += 1
                context = result.text[max(0, match.start() - 50) : match.end() + 30].replace("\n", " ")
                print(f"  {kind:<11} {source:<12} ...{context}...")


def timed(function: Callable[[str], Any], texts: Sequence[str]) -> tuple[list[Any], float]:
    started = time.perf_counter()
    results = [function(text) for text in texts]
    return results, time.perf_counter() - started


def html_shapes(rounds: int = 20) -> None:
    """The shared data sets hold no HTML: time the e-mail shapes of the tests, and count what leaks."""
    from tests.redaction_shapes import SHAPES, leaks

    started = time.perf_counter()
    left = [leaks(redact(prepare(subject=s, body=b).text).text) for _ in range(rounds) for _, s, b in SHAPES]
    seconds = time.perf_counter() - started
    print(
        f"HTML / quoted-printable shapes (tests/redaction_shapes.py): {len(SHAPES)} shapes, prepare + redact "
        f"{seconds * 1e3 / len(left):.3f} ms a text, personal data left in {sum(map(bool, left)) // rounds}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=None, help="first N texts only")
    parser.add_argument("--per-set", type=int, default=None, help="first N texts of each data set")
    parser.add_argument("--show", type=int, default=0, help="print N redacted spans of each kind")
    parser.add_argument("--data", type=Path, default=SHARED, help=f"the shared data sets ({SHARED})")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        sys.exit(f"the shared datasets are not here ({args.data})")
    labelled = load(args.limit, args.per_set, args.data)
    texts = [text for _, text in labelled]
    chars = sum(map(len, texts))
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"{len(texts)} texts, {chars:,} characters, mean {chars / len(texts):.0f} characters")

    prepared, prepare_s = timed(lambda text: prepare(subject="", body=text).text, texts)
    redacted, redact_s = timed(redact, prepared)
    signals, detect_s = timed(detect_injection, texts)
    _, neutralize_s = timed(neutralize, texts)
    timings = (
        ("prepare", prepare_s),
        ("redact", redact_s),
        ("detect_injection", detect_s),
        ("neutralize", neutralize_s),
    )
    for name, seconds in timings:
        print(
            f"{name:>17}: {chars / seconds:>12,.0f} chars/s  {len(texts) / seconds:>9,.0f} texts/s  "
            f"({seconds * 1e6 / len(texts):.0f} µs a text)"
        )

    print(f"prepare + redact: {(prepare_s + redact_s) * 1e3 / len(texts):.3f} ms a text")
    html_shapes()

    sizes = Counter(source for source, _ in labelled)
    placeholders: Counter[tuple[str, str]] = Counter()
    texts_with: Counter[tuple[str, str]] = Counter()
    for (source, _), result in zip(labelled, redacted, strict=True):
        for kind, count in result.counts.items():
            placeholders[source, kind] += count
            texts_with[source, kind] += 1
    print("texts with a placeholder of each kind (placeholders written), per data set:")
    for source, size in sizes.items():
        found = ", ".join(
            f"{kind} {texts_with[s, kind]} ({placeholders[s, kind]})"
            for s, kind in sorted(texts_with)
            if s == source
        )
        print(f"  {source:<12} {size:>6} texts: {found or 'none'}")
    if args.show:
        show_examples(labelled, redacted, args.show)
    flagged = [
        (source, signal) for (source, _), signal in zip(labelled, signals, strict=True) if signal.suspected
    ]
    print(f"flagged as injection attempts: {len(flagged)} of {len(texts)}")
    for source, signal in flagged:
        print(f"  {source}: {signal.matches}")


if __name__ == "__main__":
    main()

"""Prompt-injection detection: recall on the written suite, false flags on every shared real ticket, speed.

Run from the repository root:

    .venv/bin/python benchmarks/bench_injection.py               # the suite and all 60k shared texts
    .venv/bin/python benchmarks/bench_injection.py --limit 5000  # the first 5000 shared texts only
    .venv/bin/python benchmarks/bench_injection.py --show 20     # print 20 flagged real texts

Prints the share of the suite's injection attempts (tests/data/injection_suite.jsonl) that are flagged,
its benign hard negatives that are flagged, and the share of the real tickets in ../shared/data that
are flagged, with the time per text (one thread). Each real data set is screened with its own label
names as the company's taxonomy (tobi-bueck's queues, it-service's topic groups, bitext's categories,
dstc11's intents), which is what a company importing that history would pass: those names appearing in
ordinary text must not count as orders. The real texts are ordinary support traffic, so every flag
there is a false flag.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference_app.llm.injection import detect_injection  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SUITE = ROOT / "tests" / "data" / "injection_suite.jsonl"
SUITE_LABELS = ROOT / "tests" / "data" / "injection_suite_labels.json"


def real_texts(shared: Path) -> Iterator[tuple[str, str, str]]:
    """(data set, text, label) for every shared real ticket."""
    csv.field_size_limit(1 << 30)
    sources = (
        ("tobi-bueck", "tobi-bueck-customer-support-tickets/*.csv", ("subject", "body"), "queue"),
        ("it-service", "it-service-tickets/*.csv", ("Document",), "Topic_group"),
        ("bitext", "bitext-customer-support/*.csv", ("instruction",), "category"),
    )
    for name, pattern, text_columns, label_column in sources:
        for path in sorted(shared.glob(pattern)):
            with path.open(newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    text = "\n".join(row[column] or "" for column in text_columns)
                    yield name, text, row[label_column] or ""
    for path in sorted(shared.glob("dstc11-natcs-intents/*/*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                yield "dstc11", row["utterance"], row.get("intent") or ""


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=None, help="first N shared texts only")
    parser.add_argument("--data", type=Path, default=SHARED, help=f"the shared data sets (default {SHARED})")
    parser.add_argument("--show", type=int, default=10, help="flagged real texts to print")
    args = parser.parse_args(argv)
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")

    cases = [json.loads(line) for line in SUITE.read_text(encoding="utf-8").splitlines() if line.strip()]
    labels = json.loads(SUITE_LABELS.read_text(encoding="utf-8"))
    names = [*labels["categories"], *labels["teams"]]
    attempts = [case for case in cases if case["kind"] == "injection"]
    benign = [case for case in cases if case["kind"] == "benign"]
    caught = [case for case in attempts if detect_injection(case["text"], labels=names).suspected]
    false_suite = [case for case in benign if detect_injection(case["text"], labels=names).suspected]
    print(f"suite recall: {len(caught)}/{len(attempts)} = {len(caught) / len(attempts):.1%}")
    for case in attempts:
        if case not in caught:
            print(f"  missed {case['id']} ({case['lang']}, {case['style']}): {case['injected'][:100]!r}")
    print(f"suite benign negatives flagged: {len(false_suite)}/{len(benign)}")
    for case in false_suite:
        print(f"  flagged {case['id']}: {case['text'][:100]!r}")

    if not args.data.is_dir():
        sys.exit(f"the shared datasets are not here ({args.data}); pass --data")
    rows = list(real_texts(args.data))
    rows = rows[: args.limit] if args.limit else rows
    labels_of: dict[str, tuple[str, ...]] = {}
    for source, _, label in rows:
        labels_of.setdefault(source, ())
        if label and label not in labels_of[source]:
            labels_of[source] = (*labels_of[source], label)
    flagged: list[tuple[str, str, tuple[str, ...]]] = []
    started = time.perf_counter()
    for source, text, _ in rows:
        signal = detect_injection(text, labels=labels_of[source])
        if signal.suspected:
            flagged.append((source, text, signal.reasons))
    seconds = time.perf_counter() - started
    print(
        f"real tickets flagged: {len(flagged)}/{len(rows)} = {len(flagged) / len(rows):.3%} "
        f"({', '.join(f'{name}: {len(labels)} labels' for name, labels in labels_of.items())})"
    )
    print(f"time: {seconds:.1f} s, {seconds * 1e6 / len(rows):.0f} µs a text (one thread)")
    for source, text, reasons in flagged[: args.show]:
        print(f"  {source} {list(reasons)}: {' '.join(text.split())[:160]!r}")


if __name__ == "__main__":
    main()

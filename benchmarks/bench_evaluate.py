"""The evaluation on the shared datasets, with the splits the project's goals name, and its time.

bitext: 80/20 split (Python ``random.Random(0).shuffle``), intent as the label, category as the team.
tobi-bueck (``tobi``): the en + de files in name order, the same 80/20 shuffle (3,242 history / 811 test;
the issue's figures use the first 800 test rows: ``-- --limit 800``), queue as the label, ``answer`` as the
resolution (evaluation only: the data set is non-commercial).
it-service-tickets: the first 20,000 rows as history, the next 5,000 as test, Topic_group as the label
(``--small``: 10,000 history / 3,000 test, the size of the 15-minute goal).

    python benchmarks/bench_evaluate.py [--dataset bitext|tobi|it|both] [--small] [--modes retrieval]
        [--processes 2] [--output DIR] [--routing-only] [-- extra evaluate options, e.g. --limit 20]

Prints each run's last line and the figures of its report.json. Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# A git worktree elsewhere names the folder in SWITCHBOARD_SHARED_DATA.
DATA = Path(os.environ.get("SWITCHBOARD_SHARED_DATA") or ROOT.parent / "shared" / "data")
BITEXT = DATA / "bitext-customer-support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
IT = DATA / "it-service-tickets" / "all_tickets_processed_improved_v3.csv"
TOBI = DATA / "tobi-bueck-customer-support-tickets"


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def splits(dataset: str, folder: Path, small: bool) -> tuple[Path, Path, list[str]]:
    if dataset == "bitext":
        rows = read(BITEXT)
        random.Random(0).shuffle(rows)
        cut = int(0.8 * len(rows))
        columns = ["--text-column", "instruction", "--label-column", "intent", "--team-column", "category"]
        columns += ["--resolution-column", "response"]
        return (
            write(folder / "bitext_history.csv", rows[:cut]),
            write(folder / "bitext_test.csv", rows[cut:]),
            columns,
        )
    if dataset == "tobi":
        rows = [
            row for path in sorted(TOBI.glob("*.csv")) if "lang3-4k" not in path.name for row in read(path)
        ]
        rows = [{k: row[k] for k in ("subject", "body", "answer", "queue")} for row in rows]
        rows = [row for row in rows if row["body"].strip() and row["answer"].strip()]
        random.Random(0).shuffle(rows)
        cut = int(0.8 * len(rows))
        columns = ["--subject-column", "subject", "--body-column", "body", "--label-column", "queue"]
        columns += ["--resolution-column", "answer"]
        return (
            write(folder / "tobi_history.csv", rows[:cut]),
            write(folder / "tobi_test.csv", rows[cut:]),
            columns,
        )
    rows = read(IT)
    history, test = (10_000, 3_000) if small else (20_000, 5_000)
    return (
        write(folder / "it_history.csv", rows[:history]),
        write(folder / "it_test.csv", rows[history : history + test]),
        ["--text-column", "Document", "--label-column", "Topic_group"],
    )


POINT_KEYS = ("threshold", "unknown_to_triage", "routed_precision", "known_coverage", "accuracy")


def print_unknown_and_languages(figures: dict[str, Any]) -> None:
    """The leave-categories-out figures (``-- --unknown-categories K``) and those per language."""
    unknown = figures.get("unknown_topics")
    if unknown:
        print(f"   hidden: {', '.join(unknown['hidden_categories'])} ({unknown['unknown_tickets']} tickets)")
        for name in ("at_learned_threshold", "at_team_default", "at_precision_95", "best_accuracy"):
            point = unknown.get(name)
            if point:
                values = " ".join(f"{key}={point[key] or 0:.3f}" for key in POINT_KEYS)
                print(f"   {name}: {values}")
    for language, group in (figures.get("per_language") or {}).items():
        print(
            f"   language {language}: n={group['n']} accuracy={group['accuracy']:.4f} "
            f"coverage@p95={group['coverage_at_precision_95']:.4f} history={group['history_tickets']} "
            f"triage_for_language={group.get('triage_for_language', False)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", choices=("bitext", "tobi", "it", "both"), default="both")
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--modes", default="retrieval")
    parser.add_argument("--processes", default="2")
    parser.add_argument("--output", type=Path, help="Keep the reports here (default: a temporary folder).")
    parser.add_argument(
        "--routing-only", action="store_true", help="Leave suggested resolutions out (no answer embedding)."
    )
    parser.add_argument("extra", nargs="*")
    options = parser.parse_args()
    if not BITEXT.is_file() or not IT.is_file() or not TOBI.is_dir():
        sys.exit(f"needs the shared datasets in {DATA}")
    with tempfile.TemporaryDirectory() as tmp:
        base = options.output or Path(tmp)
        for dataset in ("bitext", "it") if options.dataset == "both" else (options.dataset,):
            folder = base / dataset
            folder.mkdir(parents=True, exist_ok=True)
            history, test, columns = splits(dataset, folder, options.small)
            if options.routing_only and "--resolution-column" in columns:
                at = columns.index("--resolution-column")
                columns = columns[:at] + columns[at + 2 :]
            command = [
                sys.executable,
                "manage.py",
                "evaluate",
                "--history",
                str(history),
                "--test",
                str(test),
            ]
            command += ["--output", str(folder / "report"), *columns, "--modes", options.modes]
            command += ["--processes", options.processes, *options.extra]
            started = time.monotonic()
            result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
            wall = time.monotonic() - started
            if result.returncode != 0:
                sys.exit(result.stderr[-2000:])
            print(f"== {dataset}: {result.stdout.strip().splitlines()[-1]}  (wall {wall:.0f} s)")
            report = json.loads((folder / "report" / "report.json").read_text())
            print(f"   timings: {report['run']['timings_s']}")
            for mode, figures in report["modes"].items():
                latency = figures["latency_ms"]["total"]
                print(
                    f"   {mode}: n={figures['n']} accuracy={figures['accuracy']:.4f} "
                    f"macro_f1={figures['macro_f1']:.4f} ece={figures['ece']:.4f} "
                    f"coverage@p95={figures['coverage_at_precision_95']:.4f} "
                    f"match@1={figures['retrieval_label_match_at_1']:.4f} "
                    f"latency p50/p95={latency['p50']:.0f}/{latency['p95']:.0f} ms "
                    f"tokens={figures['tokens_per_ticket']['prompt']:.0f}+{figures['tokens_per_ticket']['completion']:.0f}"
                )
                print_unknown_and_languages(figures)
                if figures.get("suggestion"):
                    print(f"   {mode} suggestion: {suggestion_line(figures['suggestion'])}")
            if report["run"].get("suggestion_ranker"):
                print(f"   answer ranker: {report['run']['suggestion_ranker']}")


def suggestion_line(block: dict[str, Any]) -> str:
    def f(value: object) -> str:
        return "n/a" if value is None else f"{float(value):.3f}"  # type: ignore[arg-type]

    drafting = block["drafting"]
    baselines = {
        name: (round(v["mean"], 3), round(v["usable_share"], 3)) if v else None
        for name, v in block["baselines"].items()
    }
    return (
        f"usable_share={f(block['usable_share'])} usable_precision={f(block['usable_precision'])} "
        f"abstained={f(block['abstained_share'])} similarity={f(block['similarity']['mean'])} "
        f"p10={f(block['similarity']['p10'])} "
        f"before_abstaining={f(block['similarity_before_abstention']['mean'])} "
        f"rouge_l={f(block['rouge_l'])} ece={f(block['ece'])} "
        f"citations_valid={f(block['citation_validity'])} baselines={baselines} "
        f"drafts={drafting['drafted']}/{drafting['asked']} fallbacks={drafting['fallbacks']} "
        f"draft_tokens={f(drafting['prompt_tokens_per_ticket'])}"
        f"+{f(drafting['completion_tokens_per_ticket'])} "
        f"draft_ms={f(drafting['latency_ms_per_ticket'])}"
    )


if __name__ == "__main__":
    main()

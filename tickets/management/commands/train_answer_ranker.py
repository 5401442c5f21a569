"""``python manage.py train_answer_ranker``: learn which stored answer to suggest, and how sure to be."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from retrieval.answer_services import answer_ranker_path
from tickets.suggestions import HISTORY_LIMIT, train_answer_ranker


class Command(BaseCommand):
    help = (
        "Fit the answer ranker and its suggestion confidence on the resolved tickets with an answer "
        "(leave-one-out against the knowledge base) and replace the saved one atomically."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=HISTORY_LIMIT, help="Latest resolved tickets used.")
        parser.add_argument(
            "--draft-verdict",
            choices=("beats", "loses"),
            help="Record what `evaluate --draft-replies` showed: drafts beat (or lose to) the chosen stored "
            "answer on history. LLM_DRAFT_REPLIES=auto drafts only after 'beats'.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verdict = options["draft_verdict"]
        summary = train_answer_ranker(
            limit=options["limit"], draft_beats_stored=None if verdict is None else verdict == "beats"
        )
        if not summary.trained:
            self.stdout.write(self.style.WARNING(f"Not trained: {summary.reason}"))
            return
        stats = summary.stats or {}
        threshold = stats.get("oof_threshold_at_target_precision")
        self.stdout.write(
            self.style.SUCCESS(
                f"Answer ranker saved to {answer_ranker_path()}: {summary.history} tickets; out of fold the "
                f"chosen answer is usable for {stats['oof_usable_share_top']:.1%} (first retrieved: "
                f"{stats['oof_usable_share_first_retrieved']:.1%}), "
                f"calibration error {stats['oof_ece']:.3f}; "
                f"usable precision 95% needs confidence >= {threshold if threshold is not None else 'n/a'}."
            )
        )
        if "answer_map_kept" in stats:
            self.stdout.write(
                f"Answer map {'kept' if stats['answer_map_kept'] else 'left out'}: out of fold usable "
                f"{stats.get('oof_usable_share_top_with_map', 0):.1%} with it, "
                f"{stats.get('oof_usable_share_top_without_map', 0):.1%} without."
            )
        if not stats.get("calibrated", True):
            self.stdout.write(
                self.style.WARNING(
                    f"Not calibrated: {summary.history} history tickets, fewer than "
                    f"{stats['min_calibration_queries']} to calibrate on; suggestions are shown marked "
                    "uncalibrated and never abstain."
                )
            )

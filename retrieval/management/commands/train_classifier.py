"""``python manage.py train_classifier``: fit the label model on the knowledge base and save it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from retrieval.label_services import label_model_path, train_label_model


class Command(BaseCommand):
    help = (
        "Fit the calibrated label model on every labelled knowledge entry and replace the saved one "
        "atomically. Workers pick it up within seconds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--tune-embeddings",
            action="store_true",
            help="First tune the embedding model on the labelled knowledge base (budget: "
            "EMBEDDING_TUNING_SECONDS / _STEPS) and adopt it only if it beats the shipped model on held-out "
            "history; the index and the label model are then rebuilt on it. Routing goes on meanwhile.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["tune_embeddings"]:
            self._tune()
        bar: tqdm[Any] | None = None

        def progress(step: str, done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = tqdm(total=total, desc="training the label model", unit=" steps", disable=None)
            bar.set_postfix_str(step)
            bar.update(done - bar.n)

        summary = train_label_model(progress=progress)
        if bar is not None:
            bar.close()
        if not summary.trained:
            self.stdout.write(self.style.WARNING(f"Not trained: {summary.reason}"))
            return
        stats = summary.stats
        self.stdout.write(
            self.style.SUCCESS(
                f"Label model saved to {label_model_path()}: {summary.entries} entries, {summary.labels} "
                f"categories; out-of-fold accuracy {stats['oof_accuracy']:.3f}, calibration error "
                f"{stats['oof_ece']:.3f}, {stats['oof_coverage_at_precision_95']:.1%} routable at 95% "
                f"precision (confidence >= {stats['oof_threshold_at_precision_95'] or 1:.2f})."
            )
        )

    def _tune(self) -> None:
        from retrieval.embedding_services import tune_embeddings

        if not settings.TUNED_EMBEDDINGS:
            raise CommandError("TUNED_EMBEDDINGS is false: a tuned embedding model would not be used")
        with tqdm(desc="tuning the embedding model", unit=" steps", disable=None) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            summary = tune_embeddings(progress=progress, refit_label_model=False)  # fitted below
        figures = summary.figures
        if figures:
            self.stdout.write(
                f"held-out history ({figures['held_out_tickets']} tickets), mean of 5-NN and logistic "
                f"accuracy: shipped {figures['shipped']['mean']:.4f}, tuned {figures['tuned']['mean']:.4f}; "
                f"tuning {figures['tuning']['steps']} steps in {figures['seconds']['tune']:.0f} s"
            )
        style = self.style.SUCCESS if summary.adopted else self.style.WARNING
        verdict = f"adopted {summary.name}" if summary.adopted else "kept the current embedding model"
        self.stdout.write(style(f"{verdict}: {summary.reason}"))

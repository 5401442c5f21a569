"""``python manage.py train_classifier``: fit the label model on the knowledge base and save it."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from tqdm import tqdm

from retrieval.label_services import label_model_path, train_label_model


class Command(BaseCommand):
    help = (
        "Fit the calibrated label model on every labelled knowledge entry and replace the saved one "
        "atomically. Workers pick it up within seconds."
    )

    def handle(self, *args: Any, **options: Any) -> None:
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

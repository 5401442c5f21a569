"""Importing a company's resolved history: tickets, their first audit event and knowledge-base entries.

Rows are written in batches, each batch in one transaction (tickets, audit events and the knowledge
base together), so an interrupted import keeps every batch it finished and a re-run skips them:
identity is (channel ``import``, the row's external id).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from retrieval.parallel import encode_batches
from retrieval.services import embedding_model_name, kb_upsert
from tickets.audit import first_event, text_fingerprint
from tickets.bulk_insert import insert_all
from tickets.models import AuditEvent, Category, Channel, PipelineStage, Team, Ticket, TicketStatus
from tickets.pipeline.text import prepare
from tickets.services.history_files import ColumnMap, HistoryRow, ImportFileError, SkippedRow, read_history
from tickets.services.knowledge import document_text, knowledge_item

if TYPE_CHECKING:
    import numpy as np


@dataclass
class ImportSummary:
    rows: int = 0
    imported: int = 0
    already_present: int = 0
    skipped: list[SkippedRow] = field(default_factory=list)
    categories_created: list[str] = field(default_factory=list)
    teams_created: list[str] = field(default_factory=list)
    error: str | None = None


class _Labels:
    """Finds or creates the teams and categories the history names, remembering what it made."""

    def __init__(self, summary: ImportSummary, team_map: dict[str, str]) -> None:
        self.summary = summary
        self.team_map = team_map
        self.teams = {team.name: team for team in Team.objects.all()}
        self.categories = {category.name: category for category in Category.objects.all()}

    def team(self, name: str) -> Team:
        if name not in self.teams:
            self.teams[name], created = Team.objects.get_or_create(name=name)
            if created:
                self.summary.teams_created.append(name)
        return self.teams[name]

    def resolve(self, row: HistoryRow) -> tuple[Category | None, Team | None]:
        mapped_team = self.team_map.get(row.category or "") or row.team
        if not row.category:
            return None, self.team(mapped_team) if mapped_team else None
        category = self.categories.get(row.category)
        if category is None:
            default_team = self.team(mapped_team or row.category)
            category, created = Category.objects.get_or_create(
                name=row.category, defaults={"default_team": default_team}
            )
            self.categories[row.category] = category
            if created:
                self.summary.categories_created.append(row.category)
        team = self.team(mapped_team) if mapped_team else category.default_team
        return category, team


def _drop_known(rows: Sequence[HistoryRow], seen: set[str], summary: ImportSummary) -> list[HistoryRow]:
    """The rows neither in the database already nor earlier in this file."""
    wanted = {row.external_id for row in rows}
    present = set(
        Ticket.objects.filter(channel=Channel.IMPORT, external_id__in=wanted).values_list(
            "external_id", flat=True
        )
    )
    fresh = []
    for row in rows:
        if row.external_id in present or row.external_id in seen:
            summary.already_present += 1
        else:
            seen.add(row.external_id)
            fresh.append(row)
    return fresh


def _write_batch(
    rows: Sequence[HistoryRow],
    vectors: np.ndarray | None,
    labels: _Labels,
    summary: ImportSummary,
    model: str,
) -> None:
    """Tickets, their first audit events and their knowledge entries, in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        tickets = []
        for row in rows:
            category, team = labels.resolve(row)
            created = row.created_at or now
            tickets.append(
                Ticket(
                    subject=row.subject,
                    body=row.body,
                    channel=Channel.IMPORT,
                    external_id=row.external_id,
                    status=TicketStatus.RESOLVED,
                    stage=PipelineStage.DONE,
                    category=category,
                    team=team,
                    priority=row.priority or (category.default_priority if category else ""),
                    resolution=row.resolution,
                    language=prepare(subject=row.subject, body=row.body).language,
                    created_at=created,
                    status_changed_at=created,
                    resolved_at=created,
                )
            )
        insert_all(tickets)
        insert_all(
            [
                first_event(
                    ticket_id=ticket.pk,
                    stage=AuditEvent.Stage.INTAKE,
                    action="ticket.imported",
                    actor="import_tickets",
                    details={
                        "external_id": ticket.external_id,
                        "line": row.line,
                        "body_sha256": text_fingerprint(ticket.body),
                        "category": ticket.category.name if ticket.category else None,
                        "status": TicketStatus.RESOLVED,
                    },
                )
                for ticket, row in zip(tickets, rows, strict=True)
            ]
        )
        if vectors is not None:
            kb_upsert(
                items=[knowledge_item(ticket) for ticket in tickets], vectors=vectors, embedding_model=model
            )
    summary.imported += len(tickets)


def history_import(
    *,
    path: Path,
    columns: ColumnMap,
    source: str,
    file_format: str | None = None,
    team_map: dict[str, str] | None = None,
    limit: int | None = None,
    batch_size: int = 512,
    index: bool = True,
    processes: int = 1,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import resolved history from ``path``.

    Three stages overlap: this process reads the file and drops rows it already has, ``processes``
    worker processes embed the new rows, and this process writes each embedded batch. A malformed
    file stops the import with ``summary.error`` set; every batch written before that stays.
    """
    summary = ImportSummary()
    labels = _Labels(summary, team_map or {})
    seen: set[str] = set()
    # Batches read but not written yet, with the number of file rows each stands for (progress).
    in_flight: deque[tuple[list[HistoryRow], int]] = deque()

    def new_batches() -> Iterator[list[str]]:
        batch: list[HistoryRow] = []
        consumed = 0
        try:
            for item in read_history(path, columns=columns, source=source, file_format=file_format):
                if limit is not None and summary.rows >= limit:
                    break
                summary.rows += 1
                consumed += 1
                if isinstance(item, SkippedRow):
                    summary.skipped.append(item)
                    continue
                batch.append(item)
                if len(batch) >= batch_size:
                    in_flight.append((_drop_known(batch, seen, summary), consumed))
                    yield [document_text(row.subject, row.body) for row in in_flight[-1][0]]
                    batch, consumed = [], 0
        except ImportFileError as exc:
            summary.error = str(exc)
        in_flight.append((_drop_known(batch, seen, summary), consumed))
        yield [document_text(row.subject, row.body) for row in in_flight[-1][0]]

    texts = new_batches()
    model = embedding_model_name()  # the adopted tuned model if any: vectors are recorded under its name
    vector_batches: Iterable[np.ndarray | None] = (
        encode_batches(texts, model=model, processes=processes, threads=settings.SWITCHBOARD_THREADS)
        if index
        else (None for _ in texts)
    )
    for vectors in vector_batches:
        rows, consumed = in_flight.popleft()
        if rows:
            _write_batch(rows, vectors, labels, summary, model)
        if progress and consumed:
            progress(consumed)
    return summary

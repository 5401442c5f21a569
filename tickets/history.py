"""Importing a company's resolved history: tickets, their first audit event and knowledge-base entries.

Rows are written in batches, each batch in one transaction (tickets, audit events and the knowledge
base together), so an interrupted import keeps every batch it finished and a re-run skips them:
identity is (channel ``import``, the row's external id).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from retrieval.services import KBItem, embed_texts, kb_upsert
from tickets.audit import first_event, text_fingerprint
from tickets.importer import ColumnMap, HistoryRow, ImportFileError, SkippedRow, read_history
from tickets.knowledge import document_text
from tickets.models import AuditEvent, Category, Channel, Team, Ticket, TicketStatus


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


def _write_batch(rows: Sequence[HistoryRow], labels: _Labels, summary: ImportSummary, index: bool) -> None:
    wanted = {row.external_id for row in rows}
    present = set(
        Ticket.objects.filter(channel=Channel.IMPORT, external_id__in=wanted).values_list(
            "external_id", flat=True
        )
    )
    fresh: dict[str, HistoryRow] = {}
    for row in rows:
        if row.external_id in present or row.external_id in fresh:
            summary.already_present += 1
        else:
            fresh[row.external_id] = row
    if not fresh:
        return
    new_rows = list(fresh.values())
    texts = [document_text(row.subject, row.body) for row in new_rows]
    vectors = embed_texts(texts) if index else None  # the slow part, outside the transaction
    now = timezone.now()
    with transaction.atomic():
        tickets = []
        for row in new_rows:
            category, team = labels.resolve(row)
            created = row.created_at or now
            tickets.append(
                Ticket(
                    subject=row.subject,
                    body=row.body,
                    channel=Channel.IMPORT,
                    external_id=row.external_id,
                    status=TicketStatus.RESOLVED,
                    category=category,
                    team=team,
                    priority=row.priority or (category.default_priority if category else ""),
                    resolution=row.resolution,
                    created_at=created,
                    status_changed_at=created,
                    resolved_at=created,
                )
            )
        Ticket.objects.bulk_create(tickets)
        AuditEvent.objects.bulk_create(
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
                for ticket, row in zip(tickets, new_rows, strict=True)
            ]
        )
        if index:
            kb_upsert(
                items=[
                    KBItem(
                        doc_id=ticket.pk,
                        text=text,
                        category=ticket.category.name if ticket.category else "",
                        team=ticket.team.name if ticket.team else "",
                        resolved_at=ticket.resolved_at,
                    )
                    for ticket, text in zip(tickets, texts, strict=True)
                ],
                vectors=vectors,
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
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import resolved history from ``path``. A malformed file stops the import with ``summary.error``
    set; every batch written before that stays."""
    summary = ImportSummary()
    labels = _Labels(summary, team_map or {})
    batch: list[HistoryRow] = []
    consumed = 0  # rows read since the last progress report

    def flush() -> None:
        nonlocal batch, consumed
        if batch:
            _write_batch(batch, labels, summary, index)
        if progress and consumed:
            progress(consumed)
        batch, consumed = [], 0

    try:
        for item in read_history(path, columns=columns, source=source, file_format=file_format):
            if limit is not None and summary.rows >= limit:
                break
            summary.rows += 1
            consumed += 1
            if isinstance(item, SkippedRow):
                summary.skipped.append(item)
            else:
                batch.append(item)
            if len(batch) >= batch_size:
                flush()
    except ImportFileError as exc:
        summary.error = str(exc)
    flush()
    return summary

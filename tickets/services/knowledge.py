"""What a ticket contributes to the knowledge base, and finding similar resolved tickets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from retrieval.models import KnowledgeEntry
from retrieval.services import KBItem, kb_remove, kb_search, kb_upsert
from tickets.models import Ticket, TicketStatus


def document_text(subject: str, body: str) -> str:
    """The text that stands for a ticket in the knowledge base."""
    return body if body.startswith(subject) else f"{subject}\n{body}"


def knowledge_item(ticket: Ticket) -> KBItem:
    return KBItem(
        doc_id=ticket.pk,
        text=document_text(ticket.subject, ticket.body),
        category=ticket.category.name if ticket.category else "",
        team=ticket.team.name if ticket.team else "",
        resolved_at=ticket.resolved_at,
        answer=ticket.resolution,
    )


def sync_ticket(*, ticket_id: int) -> str:
    """Make the knowledge base agree with the ticket: in it when resolved, out of it otherwise."""
    ticket = Ticket.objects.select_related("category", "team").filter(pk=ticket_id).first()
    if ticket is not None and ticket.status == TicketStatus.RESOLVED:
        kb_upsert(items=[knowledge_item(ticket)])
        return "indexed"
    kb_remove(doc_ids=[ticket_id])
    return "removed"


def index_missing_resolved(*, batch_size: int = 256) -> int:
    """Add every resolved ticket the knowledge base lacks (idempotent). Returns how many were added."""
    indexed = KnowledgeEntry.objects.filter(deleted=False).values("doc_id")
    missing = (
        Ticket.objects.filter(status=TicketStatus.RESOLVED)
        .exclude(pk__in=indexed)
        .select_related("category", "team")
        .order_by("pk")
    )
    added = 0
    batch: list[Ticket] = []
    for ticket in missing.iterator(chunk_size=batch_size):
        batch.append(ticket)
        if len(batch) == batch_size:
            added += kb_upsert(items=[knowledge_item(item) for item in batch])
            batch = []
    if batch:
        added += kb_upsert(items=[knowledge_item(item) for item in batch])
    return added


@dataclass(frozen=True)
class SimilarTicket:
    ticket_id: int
    reference: str
    subject: str
    resolution: str
    category: str | None
    team: str | None
    score: float
    similarity: float | None


def similar_resolved_tickets(
    *,
    text: str,
    k: int = 5,
    category: str | None = None,
    team: str | None = None,
    resolved_after: datetime | None = None,
    exclude_ids: tuple[int, ...] = (),
) -> list[SimilarTicket]:
    """The ``k`` past resolved tickets most similar to ``text``, with their resolutions, best first."""
    hits = kb_search(
        text=text, k=k, category=category, team=team, resolved_after=resolved_after, exclude_ids=exclude_ids
    )
    tickets = Ticket.objects.in_bulk([hit.id for hit in hits])
    return [
        SimilarTicket(
            ticket_id=hit.id,
            reference=tickets[hit.id].reference,
            subject=tickets[hit.id].subject,
            resolution=tickets[hit.id].resolution,
            category=hit.category,
            team=hit.team,
            score=hit.score,
            similarity=hit.dense_score,
        )
        for hit in hits
        if hit.id in tickets
    ]

"""Read-side queries for the dashboard: queues, their counts, and one ticket's page.

Every function starts from a queryset the caller already limited to what the user may see
(``tickets.permissions.visible_tickets``), so a filter here can never widen access.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Case, Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone

from tickets.models import OPEN_STATUSES, AuditEvent, Priority, Suggestion, Team, Ticket, TicketStatus
from tickets.permissions import is_admin, team_ids, triage_filter

DUE_SOON = timedelta(hours=4)
PRIORITY_RANK = {Priority.LOW: 1, Priority.NORMAL: 2, Priority.HIGH: 3, Priority.URGENT: 4}


@dataclass(frozen=True)
class Queue:
    key: str
    label: str
    count: int = 0


def user_queues(user: Any) -> list[Queue]:
    """The queues ``user`` can pick: all she may see, triage, hers, and one per team of hers."""
    teams = Team.objects.order_by("name") if is_admin(user) else Team.objects.filter(pk__in=team_ids(user))
    return [
        Queue("all", "All I can see"),
        Queue("triage", "Triage"),
        Queue("mine", "Assigned to me"),
        *(Queue(f"team-{team.pk}", team.name) for team in teams.order_by("name")),
    ]


def _queue_filter(key: str, user: Any) -> Q:
    if key == "triage":
        return triage_filter()
    if key == "mine":
        return Q(assignee_id=user.pk)
    if key.startswith("team-"):
        return Q(team_id=int(key.removeprefix("team-")))
    return Q()


def queue_counts(*, user: Any, tickets: QuerySet[Ticket]) -> list[Queue]:
    """Each of the user's queues with its number of open tickets, in one query."""
    queues = user_queues(user)
    counts = tickets.filter(status__in=OPEN_STATUSES).aggregate(
        **{queue.key: Count("pk", filter=_queue_filter(queue.key, user)) for queue in queues}
    )
    return [Queue(queue.key, queue.label, counts[queue.key]) for queue in queues]


def with_latest_suggestion(tickets: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """Annotate ``confidence`` (latest suggestion's) and ``priority_rank`` for sorting and filtering."""
    latest = Suggestion.objects.filter(ticket_id=OuterRef("pk")).order_by("-created_at", "-id")
    return tickets.annotate(
        confidence=Subquery(latest.values("confidence")[:1]),
        priority_rank=Case(
            *(When(priority=value, then=Value(rank)) for value, rank in PRIORITY_RANK.items()),
            default=Value(0),
            output_field=IntegerField(),
        ),
    )


@dataclass
class QueueQuery:
    """A dashboard query: the queue and its filters, as the filter form cleaned them."""

    queue: str = "all"
    q: str = ""
    status: str = "open"
    priority: str = ""
    category_id: int | None = None
    confidence: tuple[float, float] | None = None
    language: str = ""
    due_soon: bool = False
    order_by: tuple[str, ...] = ("-created_at", "-id")
    now: datetime = field(default_factory=timezone.now)


def queue_tickets(*, user: Any, tickets: QuerySet[Ticket], query: QueueQuery) -> QuerySet[Ticket]:
    """The tickets of one queue, filtered, searched and sorted."""
    result = with_latest_suggestion(tickets.filter(_queue_filter(query.queue, user)))
    if query.status == "open":
        result = result.filter(status__in=OPEN_STATUSES)
    elif query.status:
        result = result.filter(status=query.status)
    if query.priority:
        result = result.filter(priority=query.priority)
    if query.category_id is not None:
        result = result.filter(category_id=query.category_id)
    if query.confidence is not None:
        low, high = query.confidence
        result = result.filter(Q(confidence__gte=low) & Q(confidence__lt=high))
    if query.language:
        result = result.filter(language__iexact=query.language)
    if query.due_soon:
        result = result.filter(due_at__lte=query.now + DUE_SOON, status__in=OPEN_STATUSES)
    if query.q:
        text = query.q.strip()
        result = result.filter(
            Q(reference__iexact=text)
            | Q(subject__icontains=text)
            | Q(body__icontains=text)
            | Q(requester_email__icontains=text)
        )
    ordering = [
        F(name[1:]).desc(nulls_last=True) if name.startswith("-") else F(name).asc(nulls_last=True)
        for name in query.order_by
    ]
    return result.select_related("team", "category", "assignee").order_by(*ordering)


@dataclass(frozen=True)
class CitedTicket:
    ticket_id: int
    score: float
    reference: str
    subject: str
    resolution: str
    category: str
    team: str


def cited_tickets(suggestion: Suggestion | None) -> list[CitedTicket]:
    """The past tickets a suggestion cites, best first, each with its resolution."""
    if suggestion is None or not suggestion.citations:
        return []
    wanted: list[tuple[int, float]] = []
    for item in suggestion.citations:
        try:
            wanted.append((int(item["ticket_id"]), float(item.get("score", 0.0))))
        except (KeyError, TypeError, ValueError):
            continue
    return _scored_tickets(wanted)


def similar_tickets(suggestion: Suggestion | None) -> list[CitedTicket]:
    """The past tickets retrieval found for a suggestion's ticket, best first (shown when it abstained)."""
    if suggestion is None or not isinstance(suggestion.evidence, dict):
        return []
    wanted: list[tuple[int, float]] = []
    for item in suggestion.evidence.get("neighbours") or []:
        try:
            wanted.append((int(item["doc_id"]), float(item.get("score", 0.0))))
        except (KeyError, TypeError, ValueError):
            continue
    first_seen: dict[int, float] = {}
    for ticket_id, score in wanted:
        first_seen.setdefault(ticket_id, score)  # a ticket split into chunks is retrieved more than once
    return _scored_tickets(list(first_seen.items()))


def _scored_tickets(wanted: list[tuple[int, float]]) -> list[CitedTicket]:
    found = Ticket.objects.select_related("team", "category").in_bulk([ticket_id for ticket_id, _ in wanted])
    cited: list[CitedTicket] = []
    for ticket_id, score in wanted:
        ticket = found.get(ticket_id)
        if ticket is None:
            continue
        cited.append(
            CitedTicket(
                ticket_id=ticket_id,
                score=score,
                reference=ticket.reference,
                subject=ticket.subject,
                resolution=ticket.resolution,
                category=ticket.category.name if ticket.category else "",
                team=ticket.team.name if ticket.team else "",
            )
        )
    return cited


def audit_timeline(ticket: Ticket) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(ticket_id=ticket.pk).order_by("sequence")


def is_in_triage(ticket: Ticket) -> bool:
    return ticket.status == TicketStatus.NEEDS_TRIAGE


def triage_reasons(ticket: Ticket) -> list[str]:
    """Why routing last sent the ticket to triage (its ``routing.triage`` audit event), while it is there."""
    if ticket.status != TicketStatus.NEEDS_TRIAGE:
        return []
    event = (
        AuditEvent.objects.filter(ticket_id=ticket.pk, action="routing.triage").order_by("-sequence").first()
    )
    reasons = (event.details or {}).get("reasons") if event is not None else None
    return [str(reason) for reason in reasons] if isinstance(reasons, list) else []

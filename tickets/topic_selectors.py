"""Reads of the stored emerging topics (``tickets.topic_models``), for the admin page and the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import F, Prefetch
from django.utils import timezone

from tickets.models import OPEN_STATUSES
from tickets.topic_models import EmergingTopic, EmergingTopicMember

EXAMPLES = 3


@dataclass(frozen=True)
class TopicExample:
    ticket_id: int
    reference: str
    subject: str


@dataclass(frozen=True)
class TopicRow:
    id: int
    suggested_name: str
    terms: list[str]
    size: int
    open_tickets: int
    recent: int
    earlier: int
    window_days: int
    computed_at: datetime
    examples: list[TopicExample]
    category: str | None

    @property
    def growth(self) -> float | None:
        """Tickets in the window's second half per ticket in its first half (None: none before)."""
        return round(self.recent / self.earlier, 3) if self.earlier else None


def emerging_topics_list(*, days: int) -> list[TopicRow]:
    """The clusters computed in the last ``days`` days, the ones still open to action first."""
    since = timezone.now() - timedelta(days=days)
    members = EmergingTopicMember.objects.select_related("ticket").only(
        "topic_id", "rank", "ticket__reference", "ticket__subject", "ticket__status"
    )
    topics = (
        EmergingTopic.objects.filter(computed_at__gte=since)
        .select_related("category")
        .prefetch_related(Prefetch("members", queryset=members.order_by("rank")))
        .order_by(F("category_id").asc(nulls_first=True), "-computed_at", "-size", "pk")
    )
    rows = []
    for topic in topics:
        tickets = [member.ticket for member in topic.members.all()]
        rows.append(
            TopicRow(
                id=topic.pk,
                suggested_name=topic.suggested_name,
                terms=[str(term) for term in topic.terms],
                size=topic.size,
                open_tickets=sum(ticket.status in OPEN_STATUSES for ticket in tickets),
                recent=topic.recent,
                earlier=topic.earlier,
                window_days=topic.window_days,
                computed_at=topic.computed_at,
                examples=[TopicExample(t.pk, t.reference, t.subject) for t in tickets[:EXAMPLES]],
                category=topic.category.name if topic.category else None,
            )
        )
    return rows


def emerging_topic(*, topic_id: int) -> EmergingTopic | None:
    return EmergingTopic.objects.filter(pk=topic_id).first()

"""Emerging topics: tickets sent to triage as of no known category, clustered, and the one action on a
cluster (create its category and re-route its open tickets).

Which tickets: created in the last ``days`` days whose routing decision put at least
:data:`UNKNOWN_SHARE` of its probability on "none of these" (the novelty step's mass, kept by
:func:`tickets.pipeline.policy.decide_category` as ``evidence["unknown_topic"]`` on the suggestion) and
that are still waiting in triage. Their embeddings are the ones the input stage stored
(``Ticket.text_embedding``); :func:`refresh_emerging_topics` runs in the worker (task
:data:`REFRESH_TASK`, also scheduled by beat), the web process only reads the stored clusters.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import numpy as np
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from retrieval.topic_clusters import cluster_topics
from tickets.audit import record_event
from tickets.models import AuditEvent, Category, Suggestion, Team, Ticket, TicketStatus
from tickets.permissions import is_admin
from tickets.services.agent_actions import ACTIONABLE_STATUSES, ticket_reassign
from tickets.services.lifecycle import InvalidTransition
from tickets.topic_models import EmergingTopic, EmergingTopicMember

REFRESH_TASK = "tickets.refresh_emerging_topics"
DEFAULT_DAYS = 14
UNKNOWN_SHARE = 0.5
MAX_TICKETS = 2000
TEXT_CHARS = 2000


def unknown_topic_tickets(*, days: int, now: Any = None) -> list[Ticket]:
    """The window's triage tickets whose latest decision said "likely none of the known categories"."""
    since = (now or timezone.now()) - timedelta(days=days)
    tickets = list(
        Ticket.objects.filter(
            status=TicketStatus.NEEDS_TRIAGE, created_at__gte=since, text_embedding__isnull=False
        ).order_by("-created_at")[:MAX_TICKETS]
    )
    latest: dict[int, Any] = {}
    for ticket_id, evidence in (
        Suggestion.objects.filter(ticket__in=tickets)
        .order_by("created_at", "pk")
        .values_list("ticket_id", "evidence")
    ):
        latest[ticket_id] = evidence

    def unknown(ticket: Ticket) -> float:
        evidence = latest.get(ticket.pk)
        value = evidence.get("unknown_topic") if isinstance(evidence, dict) else None
        return float(value) if isinstance(value, (int, float)) else 0.0

    return [ticket for ticket in tickets if unknown(ticket) >= UNKNOWN_SHARE]


def refresh_emerging_topics(*, days: int = DEFAULT_DAYS) -> list[EmergingTopic]:
    """Recompute the clusters of the last ``days`` days; the clusters nobody acted on are replaced."""
    if days < 1:
        raise ValueError("days must be at least 1")
    now = timezone.now()
    found = [
        (t, bytes(t.text_embedding)) for t in unknown_topic_tickets(days=days, now=now) if t.text_embedding
    ]
    sizes = Counter(len(blob) for _, blob in found)
    if len(sizes) > 1:  # the embedder changed within the window: the commonest size, one vector space
        common = sizes.most_common(1)[0][0]
        found = [(t, blob) for t, blob in found if len(blob) == common]
    tickets = [t for t, _ in found]
    vectors = (
        np.vstack([np.frombuffer(blob, dtype=np.float32) for _, blob in found])
        if found
        else np.zeros((0, 1), dtype=np.float32)
    )
    texts = [f"{t.subject}\n{t.body}"[:TEXT_CHARS] for t in tickets]
    clusters = cluster_topics(vectors, texts)
    half = now - timedelta(days=days / 2)
    with transaction.atomic():
        EmergingTopic.objects.filter(category__isnull=True).delete()
        topics = []
        for cluster in clusters:
            members = [tickets[i] for i in cluster.members]
            recent = sum(t.created_at >= half for t in members)
            topic = EmergingTopic.objects.create(
                suggested_name=(cluster.name or "(no distinctive words)")[:200],
                terms=list(cluster.terms),
                size=len(members),
                recent=recent,
                earlier=len(members) - recent,
                window_days=days,
                computed_at=now,
            )
            EmergingTopicMember.objects.bulk_create(
                EmergingTopicMember(topic=topic, ticket=t, rank=rank) for rank, t in enumerate(members)
            )
            topics.append(topic)
    return topics


def topic_create_category(
    *, topic_id: int, name: str, team_id: int, reason: str = "", user: Any, actor: str
) -> tuple[Category, int]:
    """Create the category (with its team) a cluster suggests and re-route the cluster's open tickets
    to it through the agents' reassign action (each audited). Admins only. Returns the category and
    how many tickets moved; a resolved member joins the history under the category it was resolved
    with, the re-routed ones under the new one once resolved (the resolve path indexes them)."""
    if not is_admin(user):
        raise PermissionDenied("Only admins create categories.")
    name = " ".join(name.split())
    reason = reason.strip()[:500]
    errors: dict[str, list[str]] = {}
    if not name:
        errors["name"] = ["Give the category a name."]
    elif len(name) > 100:
        errors["name"] = ["At most 100 characters."]
    elif Category.objects.filter(name__iexact=name).exists():
        errors["name"] = [f"A category {name!r} exists already."]
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        errors["team"] = [f"No team {team_id}."]
    if errors:
        raise ValidationError(errors)
    assert team is not None
    why = reason or f"emerging topic {topic_id}"
    with transaction.atomic():
        topic = EmergingTopic.objects.select_for_update().filter(pk=topic_id).first()
        if topic is None:
            raise ValidationError({"topic": [f"No emerging topic {topic_id}."]})
        if topic.category_id is not None:
            raise ValidationError({"topic": ["A category was already created from this topic."]})
        category = Category.objects.create(
            name=name, default_team=team, description=f"From emerging topic: {', '.join(topic.terms)}"[:1000]
        )
        topic.category = category
        topic.created_by = user
        topic.save(update_fields=["category", "created_by"])
        details = {
            "topic": topic.pk,
            "suggested_name": topic.suggested_name,
            "category": category.pk,
            "category_name": category.name,
            "team": team.pk,
            "reason": why,
        }
        moved = 0
        for member in topic.members.select_related("ticket"):
            record_event(
                ticket_id=member.ticket_id,
                stage=AuditEvent.Stage.AGENT,
                action="topic.category_created",
                actor_type=AuditEvent.ActorType.AGENT,
                actor=actor,
                details=details,
            )
            if member.ticket.status not in ACTIONABLE_STATUSES:
                continue
            try:
                ticket_reassign(
                    ticket_id=member.ticket_id,
                    team_id=team.pk,
                    category_id=category.pk,
                    reason=f"new category {category.name!r} from emerging topic {topic.pk}: {why}"[:500],
                    user=user,
                    actor=actor,
                    actor_type=AuditEvent.ActorType.AGENT,
                )
            except InvalidTransition:  # resolved or closed since the page was drawn: left as it is
                continue
            moved += 1
    return category, moved

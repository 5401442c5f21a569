"""Small builders for the tests: real rows through real services."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from tickets.models import (
    AuditEvent,
    Category,
    Channel,
    PipelineStage,
    Suggestion,
    Team,
    TeamMembership,
    Ticket,
    TicketStatus,
)
from tickets.services.lifecycle import ticket_create, ticket_transition

PASSWORD = "correct horse battery staple"


def make_team(name: str, *, threshold: float = 0.6) -> Team:
    return Team.objects.create(name=name, auto_route_threshold=threshold)


def make_category(name: str, team: Team, *, sla_hours: int = 24, priority: str = "normal") -> Category:
    return Category.objects.create(
        name=name, default_team=team, sla_hours=sla_hours, default_priority=priority
    )


def make_resolved_history(history: dict[str, tuple[str, str, list[tuple[str, str]]]]) -> dict[str, Category]:
    """A resolved, indexed history: {category: (team, resolution, [(subject, body), ...])}.

    Needs the ``knowledge_dir`` fixture (a private index)."""
    from tickets.services.knowledge import index_missing_resolved

    categories: dict[str, Category] = {}
    for name, (team_name, resolution, examples) in history.items():
        team, _ = Team.objects.get_or_create(name=team_name, defaults={"auto_route_threshold": 0.5})
        category = Category.objects.create(name=name, default_team=team, sla_hours=24)
        categories[name] = category
        for number, (subject, body) in enumerate(examples):
            Ticket.objects.create(
                subject=subject,
                body=body,
                channel=Channel.IMPORT,
                external_id=f"{name}-{number}",
                status=TicketStatus.RESOLVED,
                stage=PipelineStage.DONE,
                category=category,
                team=team,
                priority="normal",
                resolution=resolution,
            )
    index_missing_resolved()
    return categories


def make_user(username: str, *, teams: dict[Team, str] | None = None, superuser: bool = False) -> Any:
    users = get_user_model()
    if superuser:
        user: Any = users.objects.create_superuser(username, f"{username}@example.com", PASSWORD)
    else:
        user = users.objects.create_user(username, f"{username}@example.com", PASSWORD)
    for team, role in (teams or {}).items():
        TeamMembership.objects.create(team=team, user=user, role=role)
    return user


def make_ticket(
    *,
    subject: str = "Card declined",
    body: str = "My card was declined twice at checkout.",
    status: str = TicketStatus.ROUTED,
    team: Team | None = None,
    category: Category | None = None,
    priority: str = "normal",
    email: str = "ana@example.com",
) -> Ticket:
    """A ticket moved through the life cycle by the services, as the pipeline would."""
    ticket = ticket_create(subject=subject, body=body, requester_email=email)
    if status == TicketStatus.RECEIVED:
        return ticket
    ticket_transition(ticket_id=ticket.pk, to_status=TicketStatus.PROCESSING, stage=AuditEvent.Stage.INPUT)
    if status == TicketStatus.PROCESSING:
        return Ticket.objects.get(pk=ticket.pk)
    to_status = TicketStatus.NEEDS_TRIAGE if status == TicketStatus.NEEDS_TRIAGE else TicketStatus.ROUTED
    ticket_transition(
        ticket_id=ticket.pk,
        to_status=to_status,
        stage=AuditEvent.Stage.ROUTING,
        team=team,
        category=category,
        priority=priority,
        auto_routed=to_status == TicketStatus.ROUTED,
    )
    if status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        ticket_transition(
            ticket_id=ticket.pk, to_status=status, stage=AuditEvent.Stage.AGENT, resolution="Done it."
        )
    return Ticket.objects.get(pk=ticket.pk)


def make_suggestion(
    ticket: Ticket,
    *,
    team: Team | None = None,
    category: Category | None = None,
    confidence: float = 0.8,
    text: str = "Ask the customer to retry with 3-D Secure enabled.",
    citations: list[dict[str, Any]] | None = None,
    priority: str = "normal",
    suggestion_confidence: float | None = None,
    abstained: bool = False,
    evidence: dict[str, Any] | None = None,
) -> Suggestion:
    return Suggestion.objects.create(
        suggestion_confidence=suggestion_confidence,
        abstained=abstained,
        evidence=evidence or {},
        ticket=ticket,
        team=team,
        category=category,
        priority=priority,
        confidence=confidence,
        resolution_text=text,
        citations=citations or [],
        backend="llamacpp",
        model_name="smollm2-135m-instruct",
        model_used=True,
    )

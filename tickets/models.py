"""Switchboard's domain: teams, categories, tickets, the model's suggestions and the audit trail."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    members: models.ManyToManyField[Any, Any] = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="TeamMembership", related_name="teams", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TeamMembership(models.Model):
    class Role(models.TextChoices):
        AGENT = "agent", "Agent"
        LEAD = "lead", "Team lead"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.AGENT)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="unique_team_member")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class Category(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    default_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="categories")
    default_priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    sla_hours = models.PositiveIntegerField(
        default=24, validators=[MinValueValidator(1)], help_text="Hours from arrival to the due time."
    )

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class TicketStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSING = "processing", "Processing"
    ROUTED = "routed", "Routed"
    NEEDS_TRIAGE = "needs_triage", "Needs triage"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


# The life cycle. A status may move only to the ones listed; services enforce it with a conditional
# UPDATE, so two workers racing for one ticket cannot both win.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    TicketStatus.RECEIVED: frozenset(
        {TicketStatus.PROCESSING, TicketStatus.NEEDS_TRIAGE, TicketStatus.CLOSED}
    ),
    TicketStatus.PROCESSING: frozenset(
        {TicketStatus.ROUTED, TicketStatus.NEEDS_TRIAGE, TicketStatus.RECEIVED, TicketStatus.CLOSED}
    ),
    TicketStatus.ROUTED: frozenset({TicketStatus.NEEDS_TRIAGE, TicketStatus.RESOLVED, TicketStatus.CLOSED}),
    TicketStatus.NEEDS_TRIAGE: frozenset({TicketStatus.ROUTED, TicketStatus.RESOLVED, TicketStatus.CLOSED}),
    TicketStatus.RESOLVED: frozenset({TicketStatus.CLOSED, TicketStatus.ROUTED}),
    TicketStatus.CLOSED: frozenset({TicketStatus.ROUTED}),
}
OPEN_STATUSES = frozenset(
    {TicketStatus.RECEIVED, TicketStatus.PROCESSING, TicketStatus.ROUTED, TicketStatus.NEEDS_TRIAGE}
)


class Channel(models.TextChoices):
    WEB = "web", "Web form"
    API = "api", "REST API"
    EMAIL = "email", "E-mail"
    IMPORT = "import", "Imported history"
    DEMO = "demo", "Demo data"


def new_reference() -> str:
    """A short public reference a requester can quote, like ``SB-7KQ2-M9XD``."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread
    code = "".join(secrets.choice(alphabet) for _ in range(8))
    return f"SB-{code[:4]}-{code[4:]}"


def new_status_token() -> str:
    return secrets.token_urlsafe(24)


class Ticket(models.Model):
    reference = models.CharField(max_length=16, unique=True, default=new_reference, editable=False)
    status_token = models.CharField(max_length=40, unique=True, default=new_status_token, editable=False)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    requester_email = models.EmailField(blank=True)
    requester_name = models.CharField(max_length=200, blank=True)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.WEB)
    external_id = models.CharField(
        max_length=200, blank=True, default="", help_text="The ticket's id in the helpdesk it came from."
    )
    status = models.CharField(
        max_length=20, choices=TicketStatus.choices, default=TicketStatus.RECEIVED, db_index=True
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets")
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    priority = models.CharField(max_length=10, choices=Priority.choices, blank=True, default="")
    language = models.CharField(max_length=12, blank=True, default="")
    resolution = models.TextField(
        blank=True, help_text="How the ticket was resolved (joins the knowledge base)."
    )
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tickets",
    )
    due_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    status_changed_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"],
                condition=~models.Q(external_id=""),
                name="unique_external_id_per_channel",
            ),
        ]
        indexes = [models.Index(fields=["status", "status_changed_at"], name="ticket_status_age")]

    def __str__(self) -> str:
        return f"{self.reference} {self.subject[:60]}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class Suggestion(models.Model):
    """What the model proposed for a ticket: a classification and a grounded, cited resolution."""

    class Decision(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted as is"
        EDITED = "edited", "Edited, then used"
        REJECTED = "rejected", "Rejected"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="suggestions")
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    priority = models.CharField(max_length=10, choices=Priority.choices, blank=True, default="")
    confidence = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    resolution_text = models.TextField(blank=True)
    citations = models.JSONField(
        default=list,
        blank=True,
        help_text='Cited past tickets, best first: [{"ticket_id": 12, "score": 0.83}, ...]',
    )
    backend = models.CharField(max_length=40, blank=True)
    model_name = models.CharField(max_length=200, blank=True)
    prompt_version = models.CharField(max_length=40, blank=True)
    degraded = models.BooleanField(default=False, help_text="Made without the model (retrieval alone).")
    decision = models.CharField(max_length=10, choices=Decision.choices, default=Decision.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(confidence__gte=0.0) & models.Q(confidence__lte=1.0),
                name="suggestion_confidence_0_1",
            ),
        ]

    def __str__(self) -> str:
        return f"Suggestion for {self.ticket_id} ({self.confidence:.2f})"

    @property
    def cited_ticket_ids(self) -> list[int]:
        return [int(item["ticket_id"]) for item in self.citations]


class AuditEvent(models.Model):
    """One step in a ticket's history. Append-only: rows are never updated or deleted.

    Each event carries the hash of the ticket's previous event, so a change to any past row breaks
    the chain (see ``tickets.audit``).
    """

    class Stage(models.TextChoices):
        INTAKE = "intake", "Intake"
        INPUT = "input", "Input processing"
        RETRIEVAL = "retrieval", "Retrieval"
        MODEL = "model", "Model"
        ROUTING = "routing", "Routing"
        NOTIFY = "notify", "Notification"
        AGENT = "agent", "Agent action"
        SYSTEM = "system", "System"

    class ActorType(models.TextChoices):
        SYSTEM = "system", "System"
        AGENT = "agent", "Agent"
        API_CLIENT = "api_client", "API client"
        REQUESTER = "requester", "Requester"

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="audit_events")
    sequence = models.PositiveIntegerField(help_text="1 for the ticket's first event, then 2, 3, ...")
    stage = models.CharField(max_length=12, choices=Stage.choices)
    action = models.CharField(max_length=60, help_text='What happened, e.g. "ticket.created".')
    actor_type = models.CharField(max_length=12, choices=ActorType.choices)
    actor = models.CharField(max_length=200, blank=True, help_text="Who: a username, a token name, a worker.")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["ticket_id", "sequence"]
        constraints = [models.UniqueConstraint(fields=["ticket", "sequence"], name="unique_audit_sequence")]

    def __str__(self) -> str:
        return f"{self.ticket_id}#{self.sequence} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise PermissionError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("audit events are append-only")

"""Switchboard's domain: teams, categories, tickets, the model's suggestions and the audit trail."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from tickets.model_calls import ModelCall as ModelCall  # re-exported: its own module (size)
from tickets.pipeline import stages
from tickets.pipeline.stages import PipelineStage as PipelineStage  # re-exported: the models use it


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    auto_route_threshold = models.FloatField(
        default=0.6,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Tickets for this team are routed automatically when the decision's confidence is at "
        "least this; below it they go to human triage.",
    )
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
    # The pipeline's progress. A stage is claimed by a conditional UPDATE of ``stage``; the sweeper
    # re-enqueues tickets whose ``stage_started_at`` is too old.
    stage = models.CharField(
        max_length=10, choices=stages.CHOICES, default=PipelineStage.QUEUED, db_index=True
    )
    stage_started_at = models.DateTimeField(null=True, blank=True)
    pipeline_attempts = models.PositiveSmallIntegerField(default=0)
    pipeline_context = models.JSONField(
        default=dict, blank=True, help_text="What one stage hands to the next: redacted text, neighbours, ..."
    )
    pipeline_error = models.TextField(blank=True, help_text="Why the pipeline gave up, if it did.")
    validation_errors = models.JSONField(
        default=list, blank=True, help_text="Problems found in the input, e.g. invalid characters removed."
    )
    text_embedding = models.BinaryField(
        null=True, blank=True, editable=False, help_text="float32 embedding, for near-duplicate detection."
    )
    injection_suspected = models.BooleanField(
        default=False, help_text="The text looks like an attempt to steer the model."
    )
    escalated = models.BooleanField(default=False)
    auto_routed = models.BooleanField(
        default=False, help_text="Routed by the pipeline without a person (confidence above threshold)."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"],
                condition=~models.Q(external_id=""),
                name="unique_external_id_per_channel",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "status_changed_at"], name="ticket_status_age"),
            models.Index(fields=["stage", "stage_started_at"], name="ticket_stage_age"),
        ]

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
    suggestion_confidence = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Calibrated chance that the suggested answer is usable; empty when uncalibrated or none.",
    )
    abstained = models.BooleanField(
        default=False,
        help_text="No answer was good enough to suggest (confidence below the company's threshold).",
    )
    backend = models.CharField(max_length=40, blank=True)
    model_name = models.CharField(max_length=200, blank=True)
    prompt_version = models.CharField(max_length=40, blank=True)
    degraded = models.BooleanField(default=False, help_text="Made without the model (retrieval alone).")
    model_used = models.BooleanField(default=False, help_text="The language model took part in it.")
    evidence = models.JSONField(
        default=dict, blank=True, help_text="How the decision was reached: neighbour votes, model choice, ..."
    )
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
        # analytics read stage latencies over a time window
        indexes = [models.Index(fields=["created_at"], name="audit_created_at")]

    def __str__(self) -> str:
        return f"{self.ticket_id}#{self.sequence} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise PermissionError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("audit events are append-only")


class RoutingRule(models.Model):
    """An admin's routing rule, applied in ``position`` order after the model's decision.

    A rule matches when every condition it sets holds (an empty condition matches anything). Its
    actions override the decision; ``stop`` ends the evaluation of later rules.
    """

    name = models.CharField(max_length=100, unique=True)
    position = models.PositiveIntegerField(default=100, help_text="Lower runs first.")
    is_active = models.BooleanField(default=True)
    # conditions
    match_category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    match_keywords = models.CharField(
        max_length=500, blank=True, help_text="Comma-separated words or phrases; any one in the text matches."
    )
    match_requesters = models.CharField(
        max_length=1000,
        blank=True,
        help_text="Comma-separated e-mail addresses or @domains (VIP customers, for instance).",
    )
    match_channel = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    match_priority = models.CharField(max_length=10, choices=Priority.choices, blank=True)
    # actions
    set_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    set_priority = models.CharField(max_length=10, choices=Priority.choices, blank=True)
    escalate = models.BooleanField(default=False)
    force_triage = models.BooleanField(default=False, help_text="Send matching tickets to human triage.")
    stop = models.BooleanField(default=True, help_text="Apply no later rule after this one.")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class Feedback(models.Model):
    """What an agent did with the pipeline's decision: the ground truth for routing and suggestions."""

    class Kind(models.TextChoices):
        ACCEPTED = "accepted", "Suggestion accepted"
        EDITED = "edited", "Suggestion edited"
        REJECTED = "rejected", "Suggestion rejected"
        REASSIGNED = "reassigned", "Reassigned"
        PRIORITY = "priority", "Priority changed"
        RESOLVED = "resolved", "Resolved"
        REOPENED = "reopened", "Reopened"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="feedback")
    suggestion = models.ForeignKey(
        Suggestion, null=True, blank=True, on_delete=models.SET_NULL, related_name="feedback"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=200, blank=True, help_text="A username or an API token's name.")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    routing_correct = models.BooleanField(
        null=True, blank=True, help_text="Was the team the pipeline chose right? Unknown when empty."
    )
    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} on {self.ticket_id}"


# --- the REST API: tokens, idempotency keys, webhooks, import jobs (tickets.api, tickets.services) ---


class ApiToken(models.Model):
    """A helpdesk integration's credential. Only the SHA-256 of the secret is kept
    (``tickets.services.api_tokens``)."""

    class Scope(models.TextChoices):
        READ = "read", "Read tickets, audit trails and analytics"
        WRITE = "write", "Create and update tickets, post feedback, search"
        ADMIN = "admin", "Webhooks, imports and tokens"

    name = models.CharField(max_length=100, unique=True, help_text="The integration, e.g. zendesk-prod.")
    prefix = models.CharField(max_length=12, help_text="The secret's first characters, to recognise it.")
    secret_sha256 = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list, help_text='Any of "read", "write", "admin".')
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per minute; empty: API_RATE_LIMIT_PER_MINUTE."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}...)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IdempotencyKey(models.Model):
    """A POST's Idempotency-Key and the answer it got, so a retried request gets the same answer."""

    client = models.CharField(max_length=60, help_text='Who sent it: "token:<id>" or "user:<id>".')
    key = models.CharField(max_length=200)
    request_sha256 = models.CharField(max_length=64)
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    response_status = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "key"], name="unique_idempotency_key")]

    def __str__(self) -> str:
        return f"{self.client} {self.key}"


class WebhookEvent(models.TextChoices):
    TICKET_ROUTED = "ticket.routed", "Ticket routed"
    TICKET_NEEDS_TRIAGE = "ticket.needs_triage", "Ticket needs triage"
    TICKET_RESOLVED = "ticket.resolved", "Ticket resolved"
    SUGGESTION_READY = "suggestion.ready", "Suggestion ready"


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookEndpoint(models.Model):
    """A URL that gets a signed POST for each event it subscribed to (``tickets.services.webhooks``)."""

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500)
    secret = models.CharField(
        max_length=100, default=new_webhook_secret, help_text="Signs every delivery (HMAC-SHA256)."
    )
    events = models.JSONField(default=list, help_text='The events it wants, e.g. ["ticket.routed"].')
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One event for one endpoint: at most one per (endpoint, event, ticket, occurrence)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Delivered"
        FAILED = "failed", "Gave up"

    uuid = models.UUIDField(unique=True, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40, choices=WebhookEvent.choices)
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="webhook_deliveries")
    occurrence = models.CharField(
        max_length=40, blank=True, default="", help_text="Tells apart repeats of one event (resolved twice)."
    )
    body = models.TextField(help_text="The exact JSON sent (what the signature covers, with the timestamp).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_response = models.TextField(blank=True, help_text="The start of the receiver's last answer.")
    last_error = models.TextField(blank=True)
    attempt_log = models.JSONField(default=list, blank=True, help_text="Every attempt: time, code, error.")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event", "ticket", "occurrence"], name="unique_webhook_delivery"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} #{self.ticket_id} -> {self.endpoint_id} ({self.status})"


class ImportJob(models.Model):
    """A bulk import of history sent through the API, run by a worker
    (``tickets.services.history_import``)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Finished"
        FAILED = "failed", "Failed"

    file_path = models.CharField(max_length=500)
    file_name = models.CharField(max_length=200)
    file_format = models.CharField(max_length=10)
    columns = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total_rows = models.PositiveIntegerField(default=0, help_text="Records in the file (an estimate).")
    rows_processed = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    already_present = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    skipped_examples = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"import {self.pk} {self.file_name} ({self.status})"

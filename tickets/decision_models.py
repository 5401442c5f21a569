"""Decision models as versioned records: what made each decision, and its lifecycle.

A :class:`DecisionModel` is one version of something that decides tickets (a label model artefact,
a tuned embedder, an LLM endpoint + model + prompt version, a decision policy): its artefact's hash and
format version, the history window it was trained on, its ``evaluate`` report, who made it, and where
it is in its lifecycle (candidate -> shadow -> canary -> active -> retired). The services in
:mod:`tickets.services.model_registry` move it; every move is a :class:`DecisionModelEvent` (who, why).

:class:`DecisionStamp` ties a suggestion (and the audit event of its decision) to the version that
made it, a foreign key analytics groups by; :class:`ShadowDecision` is what a shadow candidate would
have decided, stored beside the active decision and never applied.

Loaded with the app's models (``TicketsConfig.import_models``); foreign keys to other models name them
as strings, so this module imports no app code.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class DecisionModel(models.Model):
    class Kind(models.TextChoices):
        LABEL_MODEL = "label_model", "Label model"
        TUNED_EMBEDDER = "tuned_embedder", "Tuned embedder"
        LLM = "llm", "LLM endpoint"
        POLICY = "policy", "Decision policy"

    class State(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        SHADOW = "shadow", "Shadow"
        CANARY = "canary", "Canary"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.LABEL_MODEL)
    artefact_hash = models.CharField(
        max_length=64,
        blank=True,
        help_text="SHA-256 of the artefact file (label models: its versioned copy).",
    )
    format_version = models.PositiveIntegerField(default=0)
    config = models.JSONField(
        default=dict, blank=True, help_text="LLM: endpoint, model, prompt version; policy: its parameters."
    )
    trained_from = models.DateTimeField(null=True, blank=True, help_text="The training history's first day.")
    trained_until = models.DateTimeField(null=True, blank=True, help_text="The training history's last day.")
    training_entries = models.PositiveIntegerField(default=0)
    evaluation = models.JSONField(
        default=dict, blank=True, help_text="The evaluate report on held-back recent history."
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.CANDIDATE, db_index=True)
    canary_share = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    replaced = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The active version this one replaced when promoted (what a roll back restores).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_name = models.CharField(max_length=200, blank=True, help_text='"beat" for the retrain.')
    created_at = models.DateTimeField(auto_now_add=True)
    state_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"], condition=models.Q(state="active"), name="one_active_decision_model_per_kind"
            ),
            models.CheckConstraint(
                condition=models.Q(canary_share__gte=0.0, canary_share__lte=1.0), name="canary_share_0_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_state_display()})"


class DecisionModelEvent(models.Model):
    """One move in a decision model's lifecycle (append-only): who, why, from and to which state."""

    decision_model = models.ForeignKey(DecisionModel, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=30, help_text='e.g. "model.registered", "model.promoted".')
    from_state = models.CharField(max_length=10, blank=True)
    to_state = models.CharField(max_length=10, blank=True)
    actor = models.CharField(max_length=200, help_text="A username, an API token's name or the beat.")
    reason = models.TextField(blank=True)
    override = models.BooleanField(default=False, help_text="Promoted although the gate failed.")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.action} {self.decision_model_id} by {self.actor}"


class DecisionStamp(models.Model):
    """Which decision model version made a suggestion (and the audit event of that decision)."""

    suggestion = models.OneToOneField("tickets.Suggestion", on_delete=models.CASCADE, related_name="stamp")
    audit_event = models.OneToOneField(
        "tickets.AuditEvent", null=True, blank=True, on_delete=models.PROTECT, related_name="stamp"
    )
    decision_model = models.ForeignKey(
        DecisionModel,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="stamps",
        help_text="The label model version (empty: the current file, before versions).",
    )
    canary = models.BooleanField(default=False, help_text="Decided by the canary, not the active version.")
    llm_model = models.ForeignKey(
        DecisionModel,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="llm_stamps",
        help_text="The LLM version consulted (empty: not consulted, or the settings' backend).",
    )
    llm_canary = models.BooleanField(default=False, help_text="The LLM consulted was the canary.")

    def __str__(self) -> str:
        return f"suggestion {self.suggestion_id}: model {self.decision_model_id}, LLM {self.llm_model_id}"


class ShadowDecision(models.Model):
    """What a shadow candidate decided for a live ticket, beside the active decision; never applied."""

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="shadow_decisions")
    decision_model = models.ForeignKey(
        DecisionModel, on_delete=models.PROTECT, related_name="shadow_decisions"
    )
    active_suggestion = models.ForeignKey(
        "tickets.Suggestion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    category = models.ForeignKey(
        "tickets.Category", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey(
        "tickets.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    confidence = models.FloatField(default=0.0)
    source = models.CharField(max_length=40, blank=True)
    latency_ms = models.FloatField(default=0.0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "decision_model"], name="one_shadow_decision_per_model")
        ]

    def __str__(self) -> str:
        return f"shadow {self.decision_model_id} on ticket {self.ticket_id}"

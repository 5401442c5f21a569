"""The accounting of every call to a language model (tokens, latency, outcome, cost, energy).

Its own module (``tickets.models`` re-exports it); foreign keys name other models as strings, so this
module imports no app code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models
from django.utils import timezone

if TYPE_CHECKING:
    from inference_app.llm.types import CallRecord


class ModelCall(models.Model):
    """One call to a language model, accounted for: tokens, latency, outcome, cost and energy."""

    class Outcome(models.TextChoices):
        OK = "ok", "OK"
        INVALID = "invalid", "Invalid output"
        UNAVAILABLE = "unavailable", "Backend unavailable"
        ERROR = "error", "Error"

    ticket = models.ForeignKey(
        "tickets.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="model_calls"
    )
    purpose = models.CharField(max_length=30, help_text='e.g. "classify", "draft".')
    backend = models.CharField(max_length=40)
    model_name = models.CharField(max_length=200)
    prompt_version = models.CharField(max_length=40, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField(default=0.0)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    error = models.TextField(blank=True)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    energy_wh = models.FloatField(default=0.0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    decision_model = models.ForeignKey(
        "tickets.DecisionModel",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="model_calls",
        help_text="The LLM version called (empty: the settings' backend).",
    )
    shadow = models.BooleanField(
        default=False, help_text="A shadow candidate's call: never part of a ticket's decision or cost."
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.purpose} {self.backend}/{self.model_name} {self.outcome}"

    @classmethod
    def of_call(
        cls, call: CallRecord, *, ticket: Any, decision_model_id: int | None, shadow: bool = False
    ) -> ModelCall:
        """The unsaved row accounting for ``call`` (what the model layer measured) on ``ticket``."""
        return cls(
            ticket=ticket,
            purpose=call.purpose,
            backend=call.backend,
            model_name=call.model,
            prompt_version=call.prompt_version,
            prompt_tokens=call.prompt_tokens,
            completion_tokens=call.completion_tokens,
            latency_ms=call.latency_ms,
            outcome=call.outcome,
            error=call.error,
            cost_usd=call.cost_usd,
            energy_wh=call.energy_wh,
            decision_model_id=decision_model_id,
            shadow=shadow,
        )

"""Emerging topics: clusters of tickets no known category fits, computed by the worker
(``tickets.refresh_emerging_topics``) and read by the admin page and the API. Loaded with the app's
models (``TicketsConfig.import_models``); the foreign keys name their models as strings, so this
module imports no app code."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class EmergingTopic(models.Model):
    suggested_name = models.CharField(max_length=200)
    terms = models.JSONField(
        default=list, blank=True, help_text="The cluster's distinctive terms, best first."
    )
    size = models.PositiveIntegerField()
    recent = models.PositiveIntegerField(help_text="Members from the window's second half.")
    earlier = models.PositiveIntegerField(help_text="Members from the window's first half.")
    window_days = models.PositiveIntegerField()
    computed_at = models.DateTimeField(db_index=True)
    category = models.ForeignKey(
        "tickets.Category", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-computed_at", "-size", "pk"]

    def __str__(self) -> str:
        return f"{self.suggested_name} ({self.size})"


class EmergingTopicMember(models.Model):
    topic = models.ForeignKey(EmergingTopic, on_delete=models.CASCADE, related_name="members")
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="+")
    rank = models.PositiveIntegerField(help_text="0 for the ticket nearest the cluster's centre.")

    class Meta:
        ordering = ["rank"]
        constraints = [models.UniqueConstraint(fields=["topic", "ticket"], name="uniq_topic_ticket")]

    def __str__(self) -> str:
        return f"topic {self.topic_id}: ticket {self.ticket_id}"

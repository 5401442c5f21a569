"""Django admin for the records the pipeline and the agents leave: model calls (tokens, latency, cost)
and feedback (the ground truth for routing). Records are evidence: the admin shows, searches and
filters them but can neither add, change nor delete one. Registered from ``tickets/admin.py``."""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from tickets.decision_models import DecisionModel, DecisionModelEvent, ShadowDecision
from tickets.models import Feedback, ModelCall

M = TypeVar("M", bound=Model)


class RecordAdmin(admin.ModelAdmin[M]):
    """View only: no add, change or delete (Django then shows every field read-only)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ModelCall)
class ModelCallAdmin(RecordAdmin[ModelCall]):
    list_display = [
        "created_at",
        "purpose",
        "backend",
        "model_name",
        "outcome",
        "prompt_tokens",
        "completion_tokens",
        "latency_ms",
        "cost_usd",
        "decision_model",
        "shadow",
        "ticket",
    ]
    list_filter = ["outcome", "purpose", "backend", "model_name", "shadow", "decision_model"]
    search_fields = ["ticket__reference", "model_name", "prompt_version", "error"]
    list_select_related = ["ticket", "decision_model"]
    date_hierarchy = "created_at"


@admin.register(Feedback)
class FeedbackAdmin(RecordAdmin[Feedback]):
    list_display = ["created_at", "ticket", "kind", "routing_correct", "actor"]
    list_filter = ["kind", "routing_correct"]
    search_fields = ["ticket__reference", "actor", "reason"]
    list_select_related = ["ticket"]
    date_hierarchy = "created_at"


# Decision model versions move through tickets.services.model_registry (the /models/ pages, the API):
# here they are evidence too, view only.
@admin.register(DecisionModel)
class DecisionModelAdmin(RecordAdmin[DecisionModel]):
    list_display = ["created_at", "name", "kind", "state", "canary_share", "artefact_hash", "created_by_name"]
    list_filter = ["kind", "state"]
    search_fields = ["name", "artefact_hash"]


@admin.register(DecisionModelEvent)
class DecisionModelEventAdmin(RecordAdmin[DecisionModelEvent]):
    list_display = ["created_at", "decision_model", "action", "from_state", "to_state", "actor", "override"]
    list_filter = ["action", "override"]
    search_fields = ["actor", "reason"]
    list_select_related = ["decision_model"]


@admin.register(ShadowDecision)
class ShadowDecisionAdmin(RecordAdmin[ShadowDecision]):
    list_display = ["created_at", "ticket", "decision_model", "category", "team", "confidence", "latency_ms"]
    list_filter = ["decision_model"]
    search_fields = ["ticket__reference"]
    list_select_related = ["ticket", "decision_model", "category", "team"]

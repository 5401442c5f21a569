from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from tickets.models import AuditEvent, Category, RoutingRule, Suggestion, Team, TeamMembership, Ticket


class TeamMembershipInline(admin.TabularInline[TeamMembership, Team]):
    model = TeamMembership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin[Team]):
    list_display = ["name", "description", "auto_route_threshold"]
    list_editable = ["auto_route_threshold"]
    search_fields = ["name"]
    inlines = [TeamMembershipInline]


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin[Category]):
    list_display = ["name", "default_team", "default_priority", "sla_hours"]
    list_filter = ["default_team", "default_priority"]
    search_fields = ["name", "description"]


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin[RoutingRule]):
    list_display = [
        "name",
        "position",
        "is_active",
        "match_category",
        "set_team",
        "set_priority",
        "force_triage",
    ]
    list_editable = ["position", "is_active"]
    list_filter = ["is_active", "force_triage", "escalate"]
    search_fields = ["name", "match_keywords", "match_requesters"]
    fieldsets = [
        (None, {"fields": ["name", "position", "is_active", "stop"]}),
        (
            "When",
            {
                "fields": [
                    "match_category",
                    "match_keywords",
                    "match_requesters",
                    "match_channel",
                    "match_priority",
                ]
            },
        ),
        ("Then", {"fields": ["set_team", "set_priority", "escalate", "force_triage"]}),
    ]


class SuggestionInline(admin.StackedInline[Suggestion, Ticket]):
    model = Suggestion
    extra = 0
    can_delete = False
    readonly_fields = [field.name for field in Suggestion._meta.fields]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin[Ticket]):
    list_display = ["reference", "subject", "status", "team", "category", "priority", "channel", "created_at"]
    list_filter = ["status", "team", "category", "priority", "channel"]
    search_fields = ["reference", "subject", "body", "requester_email", "external_id"]
    readonly_fields = ["reference", "status_token", "created_at", "updated_at", "status_changed_at"]
    raw_id_fields = ["duplicate_of", "assignee"]
    date_hierarchy = "created_at"
    inlines = [SuggestionInline]


@admin.register(Suggestion)
class SuggestionAdmin(admin.ModelAdmin[Suggestion]):
    list_display = [
        "ticket",
        "category",
        "team",
        "priority",
        "confidence",
        "decision",
        "degraded",
        "created_at",
    ]
    list_filter = ["decision", "degraded", "backend"]
    raw_id_fields = ["ticket"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    """Read-only: the audit trail is append-only."""

    list_display = ["ticket", "sequence", "stage", "action", "actor_type", "actor", "created_at"]
    list_filter = ["stage", "actor_type", "action"]
    search_fields = ["ticket__reference", "action", "actor"]
    list_select_related = ["ticket"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# The records (model calls, feedback), view only; the REST API's objects: tokens, webhook endpoints
# and deliveries, import jobs.
from tickets import admin_records  # noqa: E402, F401
from tickets.api import admin as api_admin  # noqa: E402, F401

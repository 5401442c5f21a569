"""Django admin for the API's objects: tokens (the secret shown once), webhook endpoints and their
deliveries, import jobs. Registered from ``tickets/admin.py``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from tickets.models import ApiToken, ImportJob, WebhookDelivery, WebhookEndpoint, WebhookEvent
from tickets.services.api_tokens import token_create, token_forget_cached, token_revoke


class ApiTokenForm(forms.ModelForm[ApiToken]):
    scopes = forms.MultipleChoiceField(choices=ApiToken.Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiToken
        fields = ["name", "scopes", "rate_limit_per_minute"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    form = ApiTokenForm
    list_display = ["name", "prefix", "scopes", "rate_limit_per_minute", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            token_forget_cached(obj)
            return
        token, secret = token_create(
            name=obj.name,
            scopes=obj.scopes,
            created_by=request.user,
            rate_limit_per_minute=obj.rate_limit_per_minute,
        )
        obj.pk = token.pk
        obj.secret_sha256, obj.prefix, obj.created_at = token.secret_sha256, token.prefix, token.created_at
        messages.warning(
            request, f"The token for {token.name} is {secret} -- copy it now, it is not shown again."
        )

    def delete_model(self, request: HttpRequest, obj: ApiToken) -> None:
        token_forget_cached(obj)
        super().delete_model(request, obj)

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset:
            token_revoke(token_id=token.pk)
        messages.success(request, f"Revoked {queryset.count()} token(s).")


class WebhookEndpointForm(forms.ModelForm[WebhookEndpoint]):
    url = forms.URLField(max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "events", "is_active", "secret"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin[WebhookEndpoint]):
    form = WebhookEndpointForm
    list_display = ["name", "url", "events", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "url"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin[WebhookDelivery]):
    """Read-only: what was sent, when, and what the receiver answered."""

    list_display = [
        "uuid",
        "endpoint",
        "event",
        "ticket",
        "status",
        "attempts",
        "last_status_code",
        "created_at",
    ]
    list_filter = ["status", "event", "endpoint"]
    raw_id_fields = ["ticket"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in WebhookDelivery._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin[ImportJob]):
    list_display = ["id", "file_name", "status", "rows_processed", "imported", "skipped", "created_at"]
    list_filter = ["status"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in ImportJob._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

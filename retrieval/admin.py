"""Django admin for the knowledge base, view only: entries are written by the services that keep it
in step with resolved tickets (each change bumps ``version``, which the search index follows), so an
edit here would put the index out of step."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from retrieval.models import KnowledgeEntry


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(admin.ModelAdmin[KnowledgeEntry]):
    list_display = ["doc_id", "category", "team", "resolved_at", "deleted", "version", "updated_at"]
    list_filter = ["deleted", "team", "category", "embedding_model"]
    search_fields = ["=doc_id", "text", "category", "team"]
    exclude = ["embedding"]  # raw float32 bytes: nothing to read

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

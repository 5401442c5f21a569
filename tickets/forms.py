"""Forms of the web UI: they parse and check input; tickets.services does the work."""

from __future__ import annotations

from typing import Any

from django import forms

from tickets.models import Category, Priority, Team, TicketStatus
from tickets.services.agent_actions import MAX_REASON_CHARS, MAX_TEXT_CHARS
from tickets.services.lifecycle import MAX_BODY_CHARS, MAX_SUBJECT_CHARS

MAX_ATTACHMENTS = 5
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class AttachmentsField(forms.FileField):
    """Several files; only their names, sizes and types are kept (in the audit trail), not the content."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(**kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        files = [file for file in (data if isinstance(data, list | tuple) else [data]) if file]
        if len(files) > MAX_ATTACHMENTS:
            raise forms.ValidationError(f"At most {MAX_ATTACHMENTS} files.")
        for file in files:
            super().clean(file, initial)
            if file.size > MAX_ATTACHMENT_BYTES:
                raise forms.ValidationError(f"{file.name} is larger than {MAX_ATTACHMENT_BYTES // 2**20} MB.")
        return files


class SubmitTicketForm(forms.Form):
    subject = forms.CharField(
        max_length=MAX_SUBJECT_CHARS, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    body = forms.CharField(
        label="Description",
        max_length=MAX_BODY_CHARS,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="What happened, what you expected, and any error message.",
    )
    email = forms.EmailField(
        label="Your e-mail", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    category_hint = forms.ModelChoiceField(
        label="Category (optional)",
        queryset=Category.objects.order_by("name"),
        required=False,
        empty_label="I'm not sure",
        help_text="A hint only: the ticket is routed by what it says.",
    )
    attachments = AttachmentsField(
        label="Attachments (optional)",
        required=False,
        help_text=f"Up to {MAX_ATTACHMENTS} files of at most {MAX_ATTACHMENT_BYTES // 2**20} MB; "
        "we note their names and sizes with your ticket.",
    )


QUEUE_SORTS = {
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
    "due": ("due_at", "id"),
    "priority": ("-priority_rank", "-created_at"),
    "confidence": ("confidence", "-created_at"),
}
CONFIDENCE_BANDS = {"low": (0.0, 0.5), "medium": (0.5, 0.8), "high": (0.8, 1.01)}


class QueueFilterForm(forms.Form):
    """The dashboard's filters, from the query string. Bad values become form errors, not 500s."""

    queue = forms.CharField(required=False, max_length=40)
    q = forms.CharField(label="Search", required=False, max_length=200)
    status = forms.ChoiceField(
        required=False,
        choices=[("open", "Open"), ("", "Any status"), *TicketStatus.choices],
        initial="open",
    )
    priority = forms.ChoiceField(required=False, choices=[("", "Any priority"), *Priority.choices])
    category = forms.ModelChoiceField(
        required=False, queryset=Category.objects.order_by("name"), empty_label="Any category"
    )
    confidence = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any confidence"),
            ("low", "Low (< 50%)"),
            ("medium", "Medium (50-80%)"),
            ("high", "High (>= 80%)"),
        ],
    )
    language = forms.CharField(required=False, max_length=12)
    due_soon = forms.BooleanField(label="Due within 4 hours or overdue", required=False)
    sort = forms.ChoiceField(
        required=False,
        choices=[
            ("newest", "Newest first"),
            ("oldest", "Oldest first"),
            ("due", "Due soonest"),
            ("priority", "Highest priority"),
            ("confidence", "Lowest confidence"),
        ],
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)


class SuggestionForm(forms.Form):
    suggestion_id = forms.IntegerField(widget=forms.HiddenInput)


class EditSuggestionForm(SuggestionForm):
    resolution_text = forms.CharField(
        label="Edited reply", max_length=MAX_TEXT_CHARS, widget=forms.Textarea(attrs={"rows": 6})
    )


class RejectSuggestionForm(SuggestionForm):
    reason = forms.CharField(label="Why is it wrong?", max_length=MAX_REASON_CHARS)


class ReassignForm(forms.Form):
    team = forms.ModelChoiceField(
        queryset=Team.objects.order_by("name"), required=False, empty_label="(keep)"
    )
    category = forms.ModelChoiceField(
        queryset=Category.objects.order_by("name"), required=False, empty_label="(keep)"
    )
    reason = forms.CharField(required=False, max_length=MAX_REASON_CHARS)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors and data.get("team") is None and data.get("category") is None:
            raise forms.ValidationError("Choose a team or a category.")
        return data


class PriorityForm(forms.Form):
    priority = forms.ChoiceField(choices=Priority.choices)


class ResolveForm(forms.Form):
    resolution = forms.CharField(
        label="Final resolution",
        max_length=MAX_TEXT_CHARS,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Sent to the requester; the ticket then joins the knowledge base.",
    )


class ReopenForm(forms.Form):
    reason = forms.CharField(required=False, max_length=MAX_REASON_CHARS)


class EmptyForm(forms.Form):
    """Actions that take no input (assign to me)."""


class TopicCategoryForm(forms.Form):
    """An emerging topic's one action: its category, with the team that will own it."""

    name = forms.CharField(max_length=100, help_text="Prefilled with the cluster's distinctive terms.")
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"))
    reason = forms.CharField(required=False, max_length=500)


class ModelPromoteForm(forms.Form):
    """Move a decision model version on: shadow, canary (a share of tickets) or active."""

    to = forms.ChoiceField(choices=[("shadow", "Shadow"), ("canary", "Canary"), ("active", "Active")])
    canary_share = forms.FloatField(
        required=False, min_value=0.001, max_value=1.0, help_text="Canary only: the share of tickets (0-1)."
    )
    reason = forms.CharField(required=False, max_length=2000, help_text="Why (kept in the model's history).")
    override = forms.BooleanField(
        required=False, help_text="Promote although it is worse on history than the active version."
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("override") and not str(data.get("reason") or "").strip():
            self.add_error("reason", "An override needs a reason.")
        return data


class ModelRollBackForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("label_model", "Label model"), ("llm", "LLM endpoint")],
        initial="label_model",
        required=False,
    )
    reason = forms.CharField(required=False, max_length=2000)

"""The query-string filters of the API's list endpoints (django-filter FilterSets).

The parameter names are the API's contract: they are the ones GET /tickets took before it paged with
a cursor. Like every other input of the API, a parameter nobody knows is refused (400) and named,
so a typo never silently returns everything.
"""

from __future__ import annotations

import datetime
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.rest_framework import DjangoFilterBackend

from tickets.models import Channel, ImportJob, Priority, Ticket, TicketStatus, WebhookDelivery
from tickets.pipeline import stages

MAX_ID = 2**63 - 1
#: Read by the paginator, not by a filter (tickets.api.pagination).
PAGINATION_PARAMETERS = frozenset({"cursor", "page_size"})


class UtcDateTimeField(django_filters.fields.IsoDateTimeField):  # type: ignore[misc]
    """An ISO 8601 time, turned into UTC before it reaches the database: PostgreSQL refuses offsets past
    +-15:59 (an error, not an empty page), and a time that leaves the calendar in UTC is a 400."""

    def to_python(self, value: Any) -> Any:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(datetime.UTC)
        except (OverflowError, ValueError):
            raise ValidationError(
                "Enter a date and time within the years 1 to 9999.", code="invalid"
            ) from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):  # type: ignore[misc]
    field_class = UtcDateTimeField


class IdFilter(django_filters.Filter):  # type: ignore[misc]  # django-filter is untyped
    """An exact match on a positive 64-bit id (a team's, a category's)."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class StrictFilterSet(django_filters.FilterSet):  # type: ignore[misc]
    """A FilterSet that refuses blank values and parameters that neither it nor the paginator know."""

    def is_valid(self) -> bool:
        valid = bool(super().is_valid())
        refused: dict[str, str] = {}
        for name in sorted(set(self.data) - set(self.filters) - PAGINATION_PARAMETERS):
            refused[name] = (
                "Unknown field: pages are cursors, follow the answer's next link."
                if name == "page"
                else "Unknown field."
            )
        for name in sorted(set(self.data) & set(self.filters)):
            # django-filter reads a blank value as "no filter"; the API refuses it, as it always has.
            if not str(self.data.get(name)).strip():
                refused[name] = "This field may not be blank."
        for name, message in refused.items():
            self.form.errors[name] = self.form.error_class([ValidationError(message, code="invalid")])
        return valid and not refused


class StrictFilterBackend(DjangoFilterBackend):  # type: ignore[misc]
    """DjangoFilterBackend: an invalid filter is a 400 in the API's error format (never ignored)."""

    raise_exception = True


class TicketFilter(StrictFilterSet):
    status = django_filters.ChoiceFilter(choices=TicketStatus.choices)
    stage = django_filters.ChoiceFilter(choices=stages.CHOICES)
    team = IdFilter(field_name="team", help_text="Team id.")
    category = IdFilter(field_name="category", help_text="Category id.")
    priority = django_filters.ChoiceFilter(choices=Priority.choices)
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    external_id = django_filters.CharFilter(max_length=200, help_text="The ticket's id in your helpdesk.")
    created_after = UtcDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="ISO 8601, inclusive."
    )
    created_before = UtcDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="ISO 8601, exclusive."
    )

    class Meta:
        model = Ticket
        fields: list[str] = []


class ImportJobFilter(StrictFilterSet):
    status = django_filters.ChoiceFilter(choices=ImportJob.Status.choices)

    class Meta:
        model = ImportJob
        fields: list[str] = []


class WebhookDeliveryFilter(StrictFilterSet):
    status = django_filters.ChoiceFilter(choices=WebhookDelivery.Status.choices)

    class Meta:
        model = WebhookDelivery
        fields: list[str] = []

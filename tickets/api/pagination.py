"""Cursor pagination for the API's list endpoints (newest first).

Offsets skip or repeat rows while new ones arrive: a ticket created between two page fetches shifts
every later row by one. A cursor remembers where the last page ended (its ``created_at``, with an
offset among rows that share it, the ``id`` breaking ties in the order), so later pages neither skip
nor repeat a row however many arrive. Clients follow ``next`` / ``previous``; ``page_size`` stays.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import Model, QuerySet
from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from tickets.api.filters import StrictFilterBackend, StrictFilterSet

MAX_PAGE_SIZE = 200


class CreatedCursorPagination(CursorPagination):
    """Newest first by ``created_at`` then ``id``; a bad ``page_size`` or ``cursor`` is a 400."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    page_size_query_description = f"Results per page, 1 to {MAX_PAGE_SIZE} (default 50)."
    cursor_query_description = "Where a page starts: copy it from the previous answer's next or previous."
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
            raise ValidationError({"page_size": [f"An integer from 1 to {MAX_PAGE_SIZE}."]})
        return int(raw)

    def decode_cursor(self, request: Request) -> Cursor | None:
        """Ours, or a 400: the position must be an aware ISO 8601 time (we wrote a ``created_at``)."""
        try:
            cursor: Cursor | None = super().decode_cursor(request)
            if cursor is None or cursor.position is None:
                return cursor
            position = str(cursor.position)  # a string (DRF's stubs say int)
            moment = parse_datetime(position) if position.isprintable() else None
            if moment is None or moment.tzinfo is None:
                raise ValueError(position)
        except (NotFound, ValueError):
            raise ValidationError({"cursor": ["Invalid cursor."]}) from None
        normalised: Any = moment.isoformat()
        return Cursor(offset=cursor.offset, reverse=cursor.reverse, position=normalised)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}
        return parameters


class CursorListMixin(APIView):
    """For an API view whose GET lists rows: filter them with ``filterset_class`` (django-filter),
    then page them with a cursor. drf-spectacular documents both from these attributes."""

    pagination_class: ClassVar[type[CreatedCursorPagination]] = CreatedCursorPagination
    filter_backends: ClassVar[list[type[StrictFilterBackend]]] = [StrictFilterBackend]
    filterset_class: ClassVar[type[StrictFilterSet]]

    def get_queryset(self) -> QuerySet[Any]:
        """No rows: tells drf-spectacular the model the filters apply to (the view lists its own)."""
        return self.filterset_class._meta.model._default_manager.none()  # type: ignore[no-any-return]

    def cursor_page(self, queryset: QuerySet[Any], serializer_class: type[BaseSerializer[Any]]) -> Response:
        for backend in self.filter_backends:
            queryset = backend().filter_queryset(self.request, queryset, self)
        paginator = self.pagination_class()
        rows: list[Model] | None = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator.get_paginated_response(serializer_class(rows, many=True).data)

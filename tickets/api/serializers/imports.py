"""Request and response shapes of /imports (bulk history imports)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tickets.api.serializers.fields import StrictSerializer
from tickets.models import ImportJob


class ImportCreateSerializer(StrictSerializer):
    """multipart/form-data: the file and which columns hold what (like ``import_tickets``).

    An empty column field counts as not given (HTML forms and some clients send every field)."""

    file = serializers.FileField()
    format = serializers.ChoiceField(choices=[("csv", "csv"), ("jsonl", "jsonl")], required=False)
    text_column = serializers.CharField(required=False, max_length=100, allow_blank=True)
    subject_column = serializers.CharField(required=False, max_length=100, allow_blank=True)
    body_column = serializers.CharField(required=False, max_length=100, allow_blank=True)
    category_column = serializers.CharField(required=False, max_length=100, allow_blank=True)
    team_column = serializers.CharField(required=False, max_length=100, allow_blank=True)
    priority_column = serializers.CharField(required=False, max_length=100, allow_blank=True)
    resolution_column = serializers.CharField(required=False, max_length=100, allow_blank=True)
    created_column = serializers.CharField(required=False, max_length=100, allow_blank=True)
    id_column = serializers.CharField(required=False, max_length=100, allow_blank=True)


class ImportJobSerializer(serializers.ModelSerializer[ImportJob]):
    progress = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "status",
            "file_name",
            "file_format",
            "columns",
            "total_rows",
            "rows_processed",
            "progress",
            "imported",
            "already_present",
            "skipped",
            "skipped_examples",
            "error",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]

    @extend_schema_field(OpenApiTypes.FLOAT)
    def get_progress(self, obj: ImportJob) -> float:
        if obj.status in (ImportJob.Status.SUCCEEDED, ImportJob.Status.FAILED):
            return 1.0
        return round(min(1.0, obj.rows_processed / obj.total_rows), 4) if obj.total_rows else 0.0

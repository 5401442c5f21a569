"""/imports: upload resolved history; a worker imports it; the job shows progress."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import parsers, status
from rest_framework.request import Request
from rest_framework.response import Response

from tickets.api.filters import ImportJobFilter
from tickets.api.pagination import CursorListMixin
from tickets.api.permissions import AdminScope
from tickets.api.selectors import import_job, import_jobs
from tickets.api.serializers.imports import ImportCreateSerializer, ImportJobSerializer
from tickets.api.views.base import ID_PARAM, ApiView
from tickets.services.import_jobs import import_job_create, import_options


class ImportCollectionView(CursorListMixin, ApiView):
    permission_classes = [AdminScope]
    parser_classes = [parsers.MultiPartParser]
    max_body_bytes_setting = "API_MAX_IMPORT_BYTES"
    filterset_class = ImportJobFilter

    @extend_schema(operation_id="imports_list", responses={200: ImportJobSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return self.cursor_page(import_jobs(), ImportJobSerializer)

    @extend_schema(
        operation_id="imports_create",
        request={"multipart/form-data": ImportCreateSerializer},
        responses={202: ImportJobSerializer},
        summary="Upload resolved history (CSV or JSONL); a worker imports it; poll the job",
    )
    def post(self, request: Request) -> Response:
        data = self.data(
            ImportCreateSerializer,
            {key: request.data.get(key) for key in request.data}
            | {key: request.FILES.get(key) for key in request.FILES},
        )
        upload = data["file"]
        name = str(upload.name or "upload")
        file_format, columns = import_options(
            file_name=name,
            file_format=data.get("format"),
            options={key: value for key, value in data.items() if key.endswith("_column")},
        )
        with transaction.atomic():
            job = import_job_create(
                upload=upload,
                file_name=name,
                file_format=file_format,
                columns=columns,
                created_by=self.principal.actor,
            )
        return Response(
            ImportJobSerializer(job).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/api/v1/imports/{job.pk}"},
        )


class ImportDetailView(ApiView):
    permission_classes = [AdminScope]

    @extend_schema(
        operation_id="imports_retrieve", parameters=[ID_PARAM], responses={200: ImportJobSerializer}
    )
    def get(self, request: Request, id: int) -> Response:
        return Response(ImportJobSerializer(import_job(id)).data)

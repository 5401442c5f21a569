"""The benchmark-only URLconf (``benchmarks/reference_settings.py``): the project's URLs plus
``POST /bench/reference``, the yardstick of ``benchmarks/bench_api.py``: a bare Django view that parses
the same JSON as ``POST /api/v1/tickets`` and does one INSERT. Never mounted by the project's settings."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from inference_app.urls import urlpatterns as project_urlpatterns
from tickets.models import Channel, Ticket


@csrf_exempt
def reference(request: HttpRequest) -> HttpResponse:
    data = json.loads(request.body)
    if not isinstance(data, dict) or not isinstance(data.get("subject"), str):
        return JsonResponse({"error": "bad request"}, status=400)
    now = timezone.now()
    ticket = Ticket.objects.create(
        subject=data["subject"],
        body=data.get("body", ""),
        requester_email=data.get("requester_email", ""),
        channel=Channel.API,
        external_id=data.get("external_id", ""),
        created_at=now,
        status_changed_at=now,
    )
    return JsonResponse({"id": ticket.pk, "reference": ticket.reference}, status=201)


urlpatterns = [path("bench/reference", reference), *project_urlpatterns]

"""Liveness: the process answers HTTP. Readiness checks come with deployment."""

from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})

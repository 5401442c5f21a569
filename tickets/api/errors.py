"""One error format for every API answer that is not a success, 404/405/415/500 included:

    {"error": {"code": "validation_error", "message": "...", "fields": {"subject": ["..."]}}}

``code`` is machine-readable and stable; ``message`` is for people; ``fields`` names the inputs at
fault (empty when none). Unexpected exceptions are logged with their traceback and answered as a bare
``server_error``: nothing of the stack reaches the client.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from tickets.services.lifecycle import InvalidTransition

logger = logging.getLogger("tickets.api")


class ApiError(exceptions.APIException):
    """An error with its own code and status, raised by views and services of the API."""

    def __init__(
        self, *, status_code: int, code: str, message: str, fields: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.fields = fields or {}


class PayloadTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            code="payload_too_large",
            message=f"The request body is larger than {limit} bytes.",
        )


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


_DEFAULT_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error details as {"field" or "field.sub": ["message", ...]}."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = "non_field_errors" if key in ("non_field_errors", "__all__") and not prefix else str(key)
            out.update(_flatten(value, f"{prefix}.{name}" if prefix else name))
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        out = {}
        for index, item in enumerate(detail):
            out.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return out
    return {prefix or "non_field_errors": [str(detail)]}


def _from_api_exception(exc: exceptions.APIException) -> tuple[int, dict[str, Any]]:
    code = _DEFAULT_CODES.get(exc.status_code, "error")
    if isinstance(exc, ApiError):
        return exc.status_code, error_body(exc.error_code, str(exc.detail), exc.fields)
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        return exc.status_code, error_body("validation_error", "The request is not valid.", fields)
    if isinstance(exc, exceptions.Throttled):
        return exc.status_code, error_body(code, "Too many requests; retry after the Retry-After seconds.")
    if isinstance(exc, exceptions.ParseError):
        return exc.status_code, error_body("malformed_request", str(exc.detail))
    return exc.status_code, error_body(code, str(exc.detail))


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's exception handler for the API views: every error in the one format."""
    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        status_code, body = 404, error_body("not_found", "No such resource (or not visible to you).")
    elif isinstance(exc, DjangoPermissionDenied):
        status_code, body = 403, error_body("permission_denied", "You may not do this.")
    elif isinstance(exc, DjangoValidationError):
        fields = _flatten(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
        status_code, body = 400, error_body("validation_error", "The request is not valid.", fields)
    elif isinstance(exc, InvalidTransition):
        status_code, body = 409, error_body("invalid_transition", str(exc))
    elif isinstance(exc, exceptions.APIException):
        status_code, body = _from_api_exception(exc)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        if getattr(exc, "wait", None) is not None:
            headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))  # type: ignore[attr-defined]
    else:
        request = context.get("request")
        logger.exception("API error on %s %s", getattr(request, "method", "?"), getattr(request, "path", "?"))
        status_code, body = 500, error_body("server_error", "Something went wrong on our side.")
    set_rollback()
    return Response(body, status=status_code, headers=headers)


@csrf_exempt  # it changes nothing; a CSRF failure must not turn this JSON 404 into an HTML 403
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """The answer for any /api/v1/ path that matches no endpoint."""
    return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."), status=404)

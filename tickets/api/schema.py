"""OpenAPI details drf-spectacular cannot guess: the two authentications and the error answers.

Every operation documents the errors any request may get (400, 401, 403, 404, 405, 406, 413, 415,
429, 500) in the one error format, so a client (and the schemathesis run) can hold us to it.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

COMMON_ERRORS = {
    "400": "The request is not valid (fields says which inputs and why).",
    "401": "No credentials, or an unknown or revoked token.",
    "403": "The credentials lack the scope or role for this.",
    "404": "No such resource, or not visible to the caller.",
    "405": "The method is not allowed here.",
    "406": "Only application/json answers are offered.",
    "413": "The request body is too large.",
    "415": "The body's content type is not accepted here.",
    "429": "Rate limit exceeded; retry after Retry-After seconds.",
    "500": "Something went wrong on the server (no details are given).",
}


class BearerTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "tickets.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "description": "An API token: sb_..."}


class SessionScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "tickets.api.authentication.SessionAuthentication"
    name = "sessionCookie"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Postprocessing hook: the Error component and the common error answers on every operation."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(
        "Error",
        {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "fields": {
                            "type": "object",
                            "additionalProperties": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                    "required": ["code", "message", "fields"],
                }
            },
            "required": ["error"],
        },
    )
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for code, description in COMMON_ERRORS.items():
                operation["responses"].setdefault(
                    code, {"description": description, "content": error_content}
                )
            for code, response in operation["responses"].items():
                if str(code).isdigit() and int(code) >= 400:
                    response["content"] = error_content
    return result

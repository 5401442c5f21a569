"""The ``suggestion.ready`` webhook's ``data`` as a component of the OpenAPI schema.

The schema is OpenAPI 3.0 (3.1's ``webhooks`` section would change every nullable field), so the
payload is published as the component ``SuggestionReadyWebhookData`` for receivers to validate against;
``tickets.pipeline.model.DecisionOutcome.webhook_payload`` builds it (tests/pipeline/test_suggestions.py
holds the two equal).
"""

from __future__ import annotations

from typing import Any

_NULLABLE_STRING = {"type": "string", "nullable": True}

SUGGESTION_READY_DATA: dict[str, Any] = {
    "type": "object",
    "description": "The `data` of a `suggestion.ready` delivery.",
    "required": [
        "suggestion_id",
        "confidence",
        "category",
        "team",
        "priority",
        "degraded",
        "citations",
        "suggestion_confidence",
        "suggestion_abstained",
    ],
    "properties": {
        "suggestion_id": {"type": "integer"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1, "description": "Routing confidence."},
        "category": _NULLABLE_STRING,
        "team": _NULLABLE_STRING,
        "priority": {"type": "string"},
        "degraded": {"type": "boolean", "description": "Decided without the language model."},
        "citations": {
            "type": "array",
            "description": "The retrieved tickets the reply rests on; empty when abstained.",
            "items": {
                "type": "object",
                "required": ["ticket_id", "score"],
                "properties": {"ticket_id": {"type": "integer"}, "score": {"type": "number"}},
            },
        },
        "suggestion_confidence": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "nullable": True,
            "description": "Calibrated chance that the suggested reply is usable; null when uncalibrated.",
        },
        "suggestion_abstained": {
            "type": "boolean",
            "description": "No reply was good enough (below SUGGESTION_MIN_CONFIDENCE): none is suggested.",
        },
    },
}


def add_webhook_payloads(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """drf-spectacular post-processing hook: publish the webhook payload components."""
    result.setdefault("components", {}).setdefault("schemas", {})["SuggestionReadyWebhookData"] = (
        SUGGESTION_READY_DATA
    )
    return result

"""Which LLM a ticket's model consultation goes to: the active LLM version, the canary by the ticket's
stable hash (:func:`tickets.pipeline.versions.version_for`), or the settings' backend when no LLM
version is active (as before versions). A version's backend is built from its configuration once per
process and kept by version id; the live pointers are read with the same TTL as the label model's, so
a promotion or a roll back reaches every worker without a restart.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from inference_app.llm.backends import build_backend, check_llm_config, get_backend
from inference_app.llm.classify import CLASSIFY_PROMPT
from inference_app.llm.types import ChatBackend
from tickets.decision_models import DecisionModel
from tickets.pipeline.versions import live_versions, version_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LlmChoice:
    backend: ChatBackend
    prompt_name: str
    decision_model_id: int | None = None
    """The LLM version (None: the settings' backend)."""
    canary: bool = False


_backends: dict[int, tuple[ChatBackend, str]] = {}
_lock = threading.Lock()


def llm_for(ticket_id: int | None) -> LlmChoice:
    """The LLM that decides ``ticket_id`` (the active version's without a ticket id)."""
    live = live_versions(DecisionModel.Kind.LLM)
    ref, canary = version_for(ticket_id, live) if ticket_id is not None else (live.active, False)
    built = version_backend(ref.id) if ref is not None else None
    if ref is None or built is None:
        return LlmChoice(backend=get_backend(), prompt_name=CLASSIFY_PROMPT)
    return LlmChoice(backend=built[0], prompt_name=built[1], decision_model_id=ref.id, canary=canary)


def version_backend(decision_model_id: int) -> tuple[ChatBackend, str] | None:
    """An LLM version's backend and classification prompt (None when it is not an LLM version or its
    configuration no longer checks out, logged)."""
    with _lock:
        cached = _backends.get(decision_model_id)
    if cached is not None:
        return cached
    config = (
        DecisionModel.objects.filter(pk=decision_model_id, kind=DecisionModel.Kind.LLM)
        .values_list("config", flat=True)
        .first()
    )
    if config is None:
        return None
    try:
        checked = check_llm_config(config)
    except ValueError as exc:
        logger.warning("LLM version %d has an unusable configuration: %s", decision_model_id, exc)
        return None
    with _lock:
        return _backends.setdefault(decision_model_id, (build_backend(checked), checked.prompt_version))

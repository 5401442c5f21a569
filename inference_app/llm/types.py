"""Plain data exchanged with the model layer, and its errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Message = Mapping[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}


class ModelError(Exception):
    """A call to the language model did not produce a usable answer.

    What the failed call cost, where the backend knows it: ``latency_ms`` (the time it spent, retries
    included) and the tokens of an answer that came back unusable (set by :meth:`with_usage`)."""

    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def with_usage(
        self, *, latency_ms: float | None = None, prompt_tokens: int = 0, completion_tokens: int = 0
    ) -> ModelError:
        """This error, carrying the cost of the call that produced it (returned, for ``raise``)."""
        if latency_ms is not None:
            self.latency_ms = float(latency_ms)
        self.prompt_tokens, self.completion_tokens = int(prompt_tokens), int(completion_tokens)
        return self


class ModelUnavailable(ModelError):
    """The backend could not be reached or kept failing (connection refused, timeouts, 429, 5xx, or the
    circuit breaker is open). Transient: the caller may fall back (degraded mode) and try again later."""


class ModelRequestRejected(ModelError):
    """The backend refused the request itself (4xx other than 429): retrying the same call won't help."""


class ModelResponseInvalid(ModelError):
    """The backend answered, but not with JSON matching the schema (or with values outside the allowed
    labels). ``raw`` holds what it said, for the record."""

    def __init__(self, message: str, *, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


@dataclass(frozen=True)
class ChatResult:
    """One completed chat call."""

    content: str  # the model's text (JSON, when a schema was given)
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    backend: str  # "openai" | "llamacpp"
    model: str  # the model's name as the backend reports it


class ChatBackend(Protocol):
    """A chat model that can be held to a JSON schema (``openai_backend``, ``llamacpp_backend``)."""

    name: str  # "openai" | "llamacpp"
    model: str

    def chat_json(
        self,
        *,
        messages: Sequence[Message],
        schema: Mapping[str, Any],
        max_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> ChatResult:
        """Complete ``messages`` with output constrained to JSON matching ``schema``.

        Raises ModelUnavailable, ModelRequestRejected or ModelResponseInvalid (content not JSON).
        """
        ...


@dataclass(frozen=True)
class CallRecord:
    """The accounting of one model call, successful or not (persisted by the caller as a ModelCall)."""

    purpose: str  # "classify" | "draft" | ...
    backend: str
    model: str
    prompt_version: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    outcome: str  # "ok" | "invalid" | "unavailable" | "error"
    error: str = ""
    cost_usd: float = 0.0
    energy_wh: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Neighbour:
    """A retrieved past resolved ticket: the evidence retrieval contributes to a decision."""

    doc_id: int  # the past ticket's id
    score: float  # similarity, higher is closer
    category: str
    team: str
    text: str = ""  # redacted text, as shown to the model
    priority: str = ""
    resolution: str = ""
    lexical_score: float | None = None  # BM25 score, where the search used it


@dataclass(frozen=True)
class Taxonomy:
    """The company's own labels: the only values a decision may take."""

    categories: tuple[str, ...]
    teams: tuple[str, ...]
    priorities: tuple[str, ...] = ("low", "normal", "high", "urgent")
    team_of_category: Mapping[str, str] = field(default_factory=dict)

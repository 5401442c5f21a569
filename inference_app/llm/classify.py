"""The model's part of a decision: ask the LLM to classify a ticket and pick (or draft) a resolution.

The ticket and the retrieved past tickets go to the model as untrusted data (see the prompt files);
its answer is held to a JSON schema whose values can only be the company's own labels and the ids of
the retrieved tickets, and is checked again here. Nothing in this module raises on a model failure:
:func:`ask_model` returns a :class:`ModelVerdict` that says what went wrong, with the accounting of
every call made, so the caller can fall back to retrieval alone (degraded mode).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from inference_app.llm.draft_output import MIN_REPLY_CHARS, cut_off_reply
from inference_app.llm.injection import neutralize
from inference_app.llm.prompts import load_prompt
from inference_app.llm.types import (
    CallRecord,
    ChatBackend,
    ChatResult,
    ModelError,
    ModelRequestRejected,
    ModelResponseInvalid,
    ModelUnavailable,
    Neighbour,
    Taxonomy,
)

CLASSIFY_PROMPT = "classify-v1"
DRAFT_PROMPT = "draft-v1"
MAX_TICKET_CHARS = 1500
MAX_EXAMPLE_CHARS = 500
MAX_RESOLUTION_CHARS = 300
NO_EXAMPLE = "none"


@dataclass(frozen=True)
class Pricing:
    """What a call costs: prices per million tokens and the power drawn while it runs."""

    prompt_per_mtok: float = 0.0
    completion_per_mtok: float = 0.0
    watts: float = 0.0

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt_per_mtok + completion_tokens * self.completion_per_mtok) / 1e6

    def energy_wh(self, latency_ms: float) -> float:
        return self.watts * latency_ms / 3_600_000


@dataclass(frozen=True)
class ModelVerdict:
    """The model's answer, or why there is none."""

    category: str | None = None
    priority: str | None = None
    best_example: int | None = None  # doc_id of the retrieved ticket whose resolution applies
    draft: str = ""  # a reply the model wrote (draft mode), "" otherwise
    draft_citations: tuple[int, ...] = ()
    draft_cut_off: bool = False  # the token budget cut the reply: kept up to its last complete sentence
    votes: Mapping[str, int] = field(default_factory=dict)
    calls: tuple[CallRecord, ...] = ()
    unavailable: bool = False  # the backend could not be reached: degraded mode
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.category is not None


def render_examples(neighbours: Sequence[Neighbour]) -> str:
    blocks = []
    for number, neighbour in enumerate(neighbours, start=1):
        text = neutralize(_clip(neighbour.text, MAX_EXAMPLE_CHARS))
        resolution = neutralize(_clip(neighbour.resolution, MAX_RESOLUTION_CHARS))
        blocks.append(
            f'<example id="E{number}" category="{neighbour.category}">\n{text}\n'
            f"Resolution: {resolution or '(none recorded)'}\n</example>"
        )
    return "\n".join(blocks) or "(none)"


def classification_schema(
    *, categories: Sequence[str], priorities: Sequence[str], example_ids: Sequence[str]
) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "category": {"type": "string", "enum": list(categories)},
            "priority": {"type": "string", "enum": list(priorities)},
            "best_example": {"type": "string", "enum": [*example_ids, NO_EXAMPLE]},
        },
        "required": ["category", "priority", "best_example"],
        "additionalProperties": False,
    }


def ask_model(
    *,
    backend: ChatBackend,
    ticket_text: str,
    neighbours: Sequence[Neighbour],
    taxonomy: Taxonomy,
    candidates: Sequence[str] = (),
    company: str = "the company",
    samples: int = 1,
    pricing: Pricing = Pricing(),
    max_tokens: int = 48,
    prompt_name: str = CLASSIFY_PROMPT,
) -> ModelVerdict:
    """Classify ``ticket_text`` (already redacted) with the retrieved ``neighbours`` as examples.

    ``candidates`` narrows the categories offered (a small model does better choosing among the
    labels retrieval found than among all of them); empty means every category. With ``samples`` > 1
    the model answers that many times at a non-zero temperature and the majority wins.
    """
    categories = [c for c in candidates if c in taxonomy.categories] or list(taxonomy.categories)
    example_ids = [f"E{n}" for n in range(1, len(neighbours) + 1)]
    prompt = load_prompt(prompt_name)
    messages = prompt.messages(
        company=company,
        categories=", ".join(f'"{c}"' for c in categories),
        priorities=", ".join(f'"{p}"' for p in taxonomy.priorities),
        examples=render_examples(neighbours),
        ticket=neutralize(_clip(ticket_text, MAX_TICKET_CHARS)),
    )
    schema = classification_schema(
        categories=categories, priorities=taxonomy.priorities, example_ids=example_ids
    )
    calls: list[CallRecord] = []
    answers: list[dict[str, str]] = []
    errors: list[str] = []
    unavailable = False
    for sample in range(max(1, samples)):
        temperature, seed = (0.0, None) if samples <= 1 else (0.7, 1000 + sample)
        try:
            result = _timed_chat(
                backend,
                messages=messages,
                schema=schema,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=seed,
            )
        except ModelError as error:
            calls.append(_failed_call(backend, prompt.version, error, pricing))
            errors.append(str(error))
            if isinstance(error, ModelUnavailable):
                unavailable = True
                break  # the backend is down: more samples would only wait for it again
            continue
        try:
            answers.append(_check_answer(result.content, categories, taxonomy.priorities, example_ids))
        except ModelResponseInvalid as error:
            calls.append(_call(result, prompt.version, pricing, outcome="invalid", error=str(error)))
            errors.append(str(error))
            continue
        calls.append(_call(result, prompt.version, pricing))
    if not answers:
        return ModelVerdict(calls=tuple(calls), unavailable=unavailable, error="; ".join(errors)[:500])
    votes = Counter(answer["category"] for answer in answers)
    category = votes.most_common(1)[0][0]
    agreeing = [answer for answer in answers if answer["category"] == category]
    priority = Counter(answer["priority"] for answer in agreeing).most_common(1)[0][0]
    best = Counter(answer["best_example"] for answer in agreeing).most_common(1)[0][0]
    return ModelVerdict(
        category=category,
        priority=priority,
        best_example=None if best == NO_EXAMPLE else neighbours[example_ids.index(best)].doc_id,
        votes=dict(votes),
        calls=tuple(calls),
        error="; ".join(errors)[:500],
    )


DRAFT_SCHEMA_MAX_CHARS = 1200
REPLY_FIRST_PROMPTS = frozenset({"draft-v1", "draft-v2"})  # their JSON has the reply before the citations


def draft_reply(
    *,
    backend: ChatBackend,
    ticket_text: str,
    neighbours: Sequence[Neighbour],
    company: str = "the company",
    pricing: Pricing = Pricing(),
    max_tokens: int = 400,
    prompt_name: str = DRAFT_PROMPT,
    language: str = "",
) -> ModelVerdict:
    """Ask a capable model to write a reply from the retrieved resolutions, citing the ones it used."""
    example_ids = [f"E{n}" for n in range(1, len(neighbours) + 1)]
    prompt = load_prompt(prompt_name)
    messages = prompt.messages(
        company=company,
        language=language or "the language the customer wrote in",
        examples=render_examples(neighbours),
        ticket=neutralize(_clip(ticket_text, MAX_TICKET_CHARS)),
    )
    # No maxLength: llama.cpp expands it into a grammar rule per character and crashes (segfault) on
    # 1,200 of them; max_tokens bounds the reply, clipped below. From draft-v3 the citations come first
    # (the grammar / guided decoding keeps the schema's order), so a reply cut off by max_tokens still
    # has them and is kept up to its last complete sentence (draft_output.cut_off_reply).
    fields: dict[str, dict[str, Any]] = {
        "reply": {"type": "string"},
        "cited": {"type": "array", "items": {"type": "string", "enum": example_ids or [NO_EXAMPLE]}},
    }
    if prompt_name not in REPLY_FIRST_PROMPTS:
        # A draft citing nothing is never shown (drafting.py), so the model must cite one of those shown:
        # asked to choose its citations first, SmolLM2 chose none on most tickets.
        fields["cited"] |= {"minItems": 1, "maxItems": max(1, len(example_ids))}
    order = ["reply", "cited"] if prompt_name in REPLY_FIRST_PROMPTS else ["cited", "reply"]
    schema = {
        "type": "object",
        "properties": {key: fields[key] for key in order},
        "required": order,
        "additionalProperties": False,
    }
    cut_off = False
    try:
        result = _timed_chat(backend, messages=messages, schema=schema, max_tokens=max_tokens)
        content = result.content
    except ModelResponseInvalid as error:
        salvaged = cut_off_reply(error.raw) if order[0] == "cited" else None
        if salvaged is None:
            call = _failed_call(backend, prompt.version, error, pricing, purpose="draft")
            return ModelVerdict(calls=(call,), error=str(error))
        result = _result_of(backend, error)
        content, cut_off = json.dumps({"reply": salvaged[0], "cited": salvaged[1]}), salvaged[2]
    except ModelError as error:
        call = _failed_call(backend, prompt.version, error, pricing, purpose="draft")
        return ModelVerdict(calls=(call,), unavailable=isinstance(error, ModelUnavailable), error=str(error))
    try:
        answer = json.loads(content)
        reply = str(answer["reply"]).strip()[:DRAFT_SCHEMA_MAX_CHARS]
        cited = [str(item) for item in answer["cited"]]
    except (ValueError, KeyError, TypeError) as error:
        call = _call(result, prompt.version, pricing, outcome="invalid", error=str(error), purpose="draft")
        return ModelVerdict(calls=(call,), error=f"draft is not the expected JSON: {error}")
    unknown = [item for item in cited if item not in example_ids]
    if unknown or len(reply) < MIN_REPLY_CHARS:
        reason = f"cites tickets that were not retrieved: {unknown}" if unknown else "reply too short"
        call = _call(result, prompt.version, pricing, outcome="invalid", error=reason, purpose="draft")
        return ModelVerdict(calls=(call,), error=reason)
    citations = tuple(dict.fromkeys(neighbours[example_ids.index(item)].doc_id for item in cited))
    call = _call(result, prompt.version, pricing, purpose="draft")
    if cut_off:
        call = replace(call, extra={"cut_off": True})
    return ModelVerdict(draft=reply, draft_citations=citations, calls=(call,), draft_cut_off=cut_off)


def _result_of(backend: ChatBackend, error: ModelError) -> ChatResult:
    """The accounting of a call that answered, though not with complete JSON (for :func:`_call`)."""
    return ChatResult(
        content="",
        prompt_tokens=error.prompt_tokens,
        completion_tokens=error.completion_tokens,
        latency_ms=error.latency_ms,
        backend=backend.name,
        model=backend.model,
    )


def _check_answer(
    content: str, categories: Sequence[str], priorities: Sequence[str], example_ids: Sequence[str]
) -> dict[str, str]:
    """The parsed answer, or ModelResponseInvalid when it is not JSON or a value is not allowed."""
    try:
        answer = json.loads(content)
    except ValueError as error:
        raise ModelResponseInvalid(f"not JSON: {error}", raw=content) from error
    if not isinstance(answer, dict):
        raise ModelResponseInvalid("not a JSON object", raw=content)
    allowed = {
        "category": categories,
        "priority": priorities,
        "best_example": [*example_ids, NO_EXAMPLE],
    }
    checked: dict[str, str] = {}
    for key, values in allowed.items():
        value = answer.get(key)
        if value not in values:
            raise ModelResponseInvalid(f"{key}={value!r} is not one of the allowed values", raw=content)
        checked[key] = str(value)
    return checked


def _timed_chat(backend: ChatBackend, **request: Any) -> ChatResult:
    """``backend.chat_json(**request)``; a failure carries the time it took when the backend did not
    say (a timeout, a refusal, an open circuit), so a failed call is not recorded as free."""
    started = time.perf_counter()
    try:
        return backend.chat_json(**request)
    except ModelError as error:
        if not error.latency_ms:
            error.latency_ms = (time.perf_counter() - started) * 1000
        raise


def _call(
    result: ChatResult,
    prompt_version: str,
    pricing: Pricing,
    *,
    outcome: str = "ok",
    error: str = "",
    purpose: str = "classify",
) -> CallRecord:
    return CallRecord(
        purpose=purpose,
        backend=result.backend,
        model=result.model,
        prompt_version=prompt_version,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        latency_ms=result.latency_ms,
        outcome=outcome,
        error=error[:500],
        cost_usd=pricing.cost_usd(result.prompt_tokens, result.completion_tokens),
        energy_wh=pricing.energy_wh(result.latency_ms),
    )


def _failed_call(
    backend: ChatBackend,
    prompt_version: str,
    error: ModelError,
    pricing: Pricing,
    *,
    purpose: str = "classify",
) -> CallRecord:
    outcome = {
        ModelUnavailable: "unavailable",
        ModelResponseInvalid: "invalid",
        ModelRequestRejected: "error",
    }.get(type(error), "error")
    latency_ms = float(error.latency_ms)
    return CallRecord(
        purpose=purpose,
        backend=backend.name,
        model=backend.model,
        prompt_version=prompt_version,
        prompt_tokens=error.prompt_tokens,
        completion_tokens=error.completion_tokens,
        latency_ms=latency_ms,
        outcome=outcome,
        error=str(error)[:500],
        cost_usd=pricing.cost_usd(error.prompt_tokens, error.completion_tokens),
        energy_wh=pricing.energy_wh(latency_ms),
    )


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

"""No personal data in what the model receives, for every HTML / quoted-printable e-mail shape and every
backend: the messages are read where they leave this process (the HTTP body the openai backend sends
to a real local server; the arguments the real llama.cpp model is called with)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from inference_app.llm.circuit import CircuitBreaker
from inference_app.llm.classify import ask_model, draft_reply
from inference_app.llm.llamacpp_backend import LlamaCppBackend
from inference_app.llm.openai_backend import OpenAIBackend
from inference_app.llm.redaction import redact
from inference_app.llm.types import Neighbour, Taxonomy
from tests.redaction_shapes import SHAPES, leaks
from tests.scripted_http import ScriptedServer, completion, scripted_server
from tickets.pipeline.text import normalise, prepare

TAXONOMY = Taxonomy(
    categories=("Refund", "Callback"),
    teams=("Billing", "Support"),
    team_of_category={"Refund": "Billing", "Callback": "Support"},
)
SHAPE_IDS = [name for name, _, _ in SHAPES]


def model_input(subject: str, body: str) -> tuple[str, list[Neighbour]]:
    """The ticket text and one retrieved example as the input stage builds them (tickets.pipeline.input)."""
    prepared = prepare(subject=subject, body=body)
    assert leaks(prepared.text), "the shape carries personal data before redaction"
    neighbour = Neighbour(
        doc_id=7,
        score=0.8,
        category="Refund",
        team="Billing",
        text=redact(normalise(f"{subject}\n{body}")[0]).text,
        resolution=redact(normalise("Refunded to " + body)[0]).text,
    )
    return redact(prepared.text).text, [neighbour]


def sent_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(str(message["content"]) for message in messages)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    yield from scripted_server()


@pytest.mark.parametrize(("name", "subject", "body"), SHAPES, ids=SHAPE_IDS)
def test_the_openai_backend_sends_no_personal_data(
    server: ScriptedServer, name: str, subject: str, body: str
) -> None:
    text, neighbours = model_input(subject, body)
    server.script(
        completion('{"category": "Refund", "priority": "normal", "best_example": "E1"}'),
        completion('{"reply": "We refunded you in full today.", "cited": ["E1"]}'),
    )
    backend = OpenAIBackend(
        base_url=server.base_url, model="m", timeout=5.0, max_retries=0, breaker=CircuitBreaker()
    )

    verdict = ask_model(backend=backend, ticket_text=text, neighbours=neighbours, taxonomy=TAXONOMY)
    draft = draft_reply(backend=backend, ticket_text=text, neighbours=neighbours)

    assert verdict.category == "Refund" and draft.draft == "We refunded you in full today."
    classify_request, draft_request = server.received
    for request in (classify_request, draft_request):
        prompt = sent_text(request.body["messages"])
        assert leaks(prompt) == [], prompt
        # the placeholders reached the model instead (the ticket is not just dropped)
        assert any(placeholder in prompt for placeholder in ("[CARD]", "[PHONE]", "[EMAIL]", "[IBAN]"))


@pytest.fixture(scope="module")
def llamacpp() -> LlamaCppBackend:
    return LlamaCppBackend(n_threads=1)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "subject", "body"), SHAPES[::3], ids=SHAPE_IDS[::3])
def test_the_real_llamacpp_model_is_called_with_no_personal_data(
    llamacpp: LlamaCppBackend, monkeypatch: pytest.MonkeyPatch, name: str, subject: str, body: str
) -> None:
    text, neighbours = model_input(subject, body)
    llama = llamacpp.llama()
    real_call = llama.create_chat_completion
    calls: list[dict[str, Any]] = []

    def recording(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_call(**kwargs)

    monkeypatch.setattr(llama, "create_chat_completion", recording)

    verdict = ask_model(backend=llamacpp, ticket_text=text, neighbours=neighbours, taxonomy=TAXONOMY)

    [call] = calls
    prompt = sent_text(call["messages"])
    assert leaks(prompt) == [], prompt
    assert "[CARD]" in prompt or "[PHONE]" in prompt or "[EMAIL]" in prompt or "[IBAN]" in prompt
    # the model really ran on that prompt
    [record] = verdict.calls
    assert (record.backend, record.outcome) == ("llamacpp", "ok") and record.prompt_tokens > 100
    assert verdict.category in TAXONOMY.categories

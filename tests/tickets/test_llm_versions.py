"""LLM versions: registration checks their configuration; the model stage asks the active version's
server (or the canary's, by the ticket's hash; the settings' backend without a version), and after a
roll back the previous one; a shadow LLM asks its own server without touching the ticket, its calls
accounted apart. Against real HTTP servers that answer from a script (tests/scripted_http.py), on
PostgreSQL with the real embedder and label model; tasks run eagerly here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from inference_app.llm.backends import get_backend
from tests.model_factories import lifecycle_history
from tests.scripted_http import ScriptedServer, completion
from tickets.analytics import model_cost
from tickets.decision_models import DecisionModel, DecisionStamp, ShadowDecision
from tickets.model_comparison import model_comparison
from tickets.models import Category, Feedback, ModelCall, Suggestion, Ticket, WebhookDelivery, WebhookEndpoint
from tickets.pipeline.versions import forget_pointers, ticket_bucket
from tickets.services.api_tokens import token_create
from tickets.services.model_registry import LifecycleError, model_promote, model_register, model_roll_back
from tickets.services.submission import ticket_submit

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]

VPN_ANSWER = '{"category": "VPN", "priority": "high", "best_example": "none"}'


@pytest.fixture
def history(db: Any, knowledge_dir: Any, settings: Any) -> Iterator[dict[str, Category]]:
    settings.PIPELINE_USE_MODEL = "always"
    settings.LLM_DRAFT_REPLIES = "off"
    settings.LLM_MAX_RETRIES = 0
    settings.LLM_PRICE_PROMPT_PER_MTOK = 1000.0
    settings.LLM_PRICE_COMPLETION_PER_MTOK = 2000.0
    forget_pointers()
    yield lifecycle_history()
    forget_pointers()


def _server(replies: int) -> ScriptedServer:
    server = ScriptedServer().start()
    server.script(*[completion(VPN_ANSWER, prompt_tokens=40, completion_tokens=5) for _ in range(replies)])
    return server


@pytest.fixture
def servers() -> Iterator[list[ScriptedServer]]:
    started = [_server(20) for _ in range(3)]
    yield started
    for server in started:
        server.stop()


def _llm(server: ScriptedServer, model: str, accuracy: float = 0.9) -> DecisionModel:
    return model_register(
        name=model,
        kind="llm",
        actor="tester",
        config={"backend": "openai", "base_url": server.base_url, "model": model, "api_key_env": "SB_KEY"},
        evaluation={"accuracy": accuracy},
    )


def _submit(capture: Any, subject: str, body: str = "The VPN tunnel drops from my home office.") -> Ticket:
    with capture(execute=True):
        ticket = ticket_submit(subject=subject, body=body)
    return Ticket.objects.get(pk=ticket.pk)


def _asked(server: ScriptedServer) -> list[tuple[str, str]]:
    """(model name, user message) of each request the server received."""
    return [(r.body["model"], r.body["messages"][-1]["content"]) for r in server.received]


def _subjects_asked(server: ScriptedServer, subjects: set[str]) -> set[str]:
    asked = [text.split("<ticket>")[-1] for _, text in _asked(server)]
    return {s for s in subjects if any(re.search(re.escape(s) + r"(?!\d)", text) for text in asked)}


def test_registration_checks_the_configuration_and_keeps_no_key(db: Any) -> None:
    openai = {"backend": "openai", "base_url": "http://vllm:8000/v1", "model": "m"}
    bad: dict[str, dict[str, Any]] = {
        "must be an http": {**openai, "base_url": "vllm:8000"},
        "must be an http(s) address": {**openai, "base_url": "ftp://vllm/v1"},
        "unknown prompt version": {**openai, "prompt_version": "classify-v9"},
        "no API key in the configuration": {**openai, "api_key": "sk-1"},
        "unknown configuration keys: temperature": {**openai, "temperature": "0"},
        "backend must be one of": {"backend": "bedrock", "model": "m"},
        "the model's name": {"backend": "llamacpp", "model": ""},
        "not an environment variable name": {"backend": "llamacpp", "model": "m", "api_key_env": "my key"},
        "takes no URL": {"backend": "llamacpp", "model": "m", "base_url": "http://v/v1"},
    }
    for message, config in bad.items():
        with pytest.raises(LifecycleError, match=re.escape(message)):
            model_register(name="bad", kind="llm", actor="tester", config=config)
    assert not DecisionModel.objects.exists()

    good = model_register(
        name="vllm qwen",
        kind="llm",
        actor="tester",
        config={**openai, "base_url": "http://vllm:8000/v1/", "model": "qwen", "api_key_env": "SB_KEY"},
    )
    assert good.config == {
        "backend": "openai",
        "base_url": "http://vllm:8000/v1",
        "model": "qwen",
        "prompt_version": "classify-v1",
        "api_key_env": "SB_KEY",
    }

    _, admin = token_create(name="ops", scopes=["read", "write", "admin"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {admin}")
    refused = api.post(
        "/api/v1/models",
        {"name": "x", "config": {"backend": "openai", "base_url": "http://", "model": "m"}},
        format="json",
    )
    assert refused.status_code == 400 and "base_url" in refused.json()["error"]["message"]
    made = api.post(
        "/api/v1/models",
        {"name": "embedded", "config": {"backend": "llamacpp", "model": "smollm2"}, "reason": "baseline"},
        format="json",
    )
    assert made.status_code == 201 and made.json()["kind"] == "llm" and made.json()["state"] == "candidate"


def test_the_model_stage_asks_the_active_version_and_after_roll_back_the_previous_one(
    history: dict[str, Category],
    servers: list[ScriptedServer],
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings_server, server_a, server_b = servers
    settings.LLM_BACKEND, settings.LLM_BASE_URL, settings.LLM_MODEL = (
        "openai",
        settings_server.base_url,
        "base",
    )
    get_backend.cache_clear()
    try:
        before = _submit(django_capture_on_commit_callbacks, "VPN before versions")
    finally:
        get_backend.cache_clear()
    assert _asked(settings_server)[0][0] == "base"  # no LLM version: the settings' backend, as before
    assert ModelCall.objects.get(ticket=before).decision_model_id is None
    assert not DecisionStamp.objects.filter(suggestion__ticket=before).exists()

    a, b = _llm(server_a, "model-a"), _llm(server_b, "model-b")
    model_promote(decision_model_id=a.pk, to="active", actor="alice", reason="first")
    first = _submit(django_capture_on_commit_callbacks, "VPN first")
    model_promote(decision_model_id=b.pk, to="active", actor="alice", reason="bigger model")
    second = _submit(django_capture_on_commit_callbacks, "VPN second")
    restored = model_roll_back(kind="llm", actor="bob", reason="too slow")
    third = _submit(django_capture_on_commit_callbacks, "VPN third")

    assert restored.pk == a.pk
    assert [(model, "VPN first" in text or "VPN third" in text) for model, text in _asked(server_a)] == [
        ("model-a", True),
        ("model-a", True),
    ]
    assert len(_asked(server_b)) == 1 and _asked(server_b)[0][0] == "model-b"
    assert "VPN second" in _asked(server_b)[0][1]
    for ticket, version in ((first, a), (second, b), (third, a)):
        call = ModelCall.objects.get(ticket=ticket)
        assert (call.decision_model_id, call.shadow) == (version.pk, False)
        stamp = DecisionStamp.objects.get(suggestion__ticket=ticket)
        assert (stamp.llm_model_id, stamp.llm_canary) == (version.pk, False)
        assert stamp.audit_event is not None and stamp.audit_event.details["llm_model_id"] == version.pk
    assert len(_asked(settings_server)) == 1  # nothing more went to the settings' backend


def test_the_canary_llm_gets_its_tickets_by_the_ticket_hash(
    history: dict[str, Category], servers: list[ScriptedServer], django_capture_on_commit_callbacks: Any
) -> None:
    _, server_a, server_b = servers
    a, b = _llm(server_a, "model-a"), _llm(server_b, "model-b")
    model_promote(decision_model_id=a.pk, to="active", actor="alice")
    model_promote(decision_model_id=b.pk, to="canary", canary_share=0.5, actor="alice", reason="half")
    tickets = [_submit(django_capture_on_commit_callbacks, f"VPN canary {n}") for n in range(10)]

    to_canary = {t.subject for t in tickets if ticket_bucket(t.pk) < 0.5}
    assert 0 < len(to_canary) < len(tickets)  # both sides get tickets (these ids split)
    subjects = {t.subject for t in tickets}
    assert _subjects_asked(server_b, subjects) == to_canary
    assert _subjects_asked(server_a, subjects) == subjects - to_canary
    assert {model for model, _ in _asked(server_b)} == {"model-b"}
    for ticket in tickets:
        canary = ticket.subject in to_canary
        stamp = DecisionStamp.objects.get(suggestion__ticket=ticket)
        assert (stamp.llm_model_id, stamp.llm_canary) == ((b if canary else a).pk, canary)
    # The comparison counts the candidate's own canary decisions (agents judged every ticket here).
    for ticket in tickets:
        Feedback.objects.create(ticket=ticket, suggestion=ticket.suggestions.get(), kind="accepted")
    canary_figure = model_comparison(candidate=b).canary
    assert (canary_figure.tickets, canary_figure.successes) == (len(to_canary), len(to_canary))
    assert model_comparison(candidate=a).canary.tickets == 0


def test_a_shadow_llm_asks_its_server_without_touching_the_ticket_and_its_cost_is_apart(
    history: dict[str, Category],
    servers: list[ScriptedServer],
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.MODEL_SHADOW_SHARE = 1.0
    _, server_a, server_b = servers
    a, b = _llm(server_a, "model-a"), _llm(server_b, "model-b")
    model_promote(decision_model_id=a.pk, to="active", actor="alice")
    model_promote(decision_model_id=b.pk, to="shadow", actor="alice", reason="compare")
    WebhookEndpoint.objects.create(name="crm", url="https://crm.example/hook", events=["suggestion.ready"])
    server_b.replies.clear()
    server_b.script(completion('{"category": "Refund", "priority": "low", "best_example": "none"}'))

    ticket = _submit(django_capture_on_commit_callbacks, "VPN shadowed")

    assert [model for model, _ in _asked(server_b)] == ["model-b"] and "VPN shadowed" in _asked(server_b)[0][
        1
    ]
    shadowed = ShadowDecision.objects.get(ticket=ticket, decision_model=b)
    suggestion = Suggestion.objects.get(ticket=ticket)
    assert shadowed.active_suggestion_id == suggestion.pk
    assert (shadowed.prompt_tokens, shadowed.completion_tokens) == (42, 7)  # the scripted reply's usage
    assert shadowed.cost_usd == Decimal("0.056") and shadowed.latency_ms > 0  # 42 x 1000 + 7 x 2000 per 1e6
    shadow_call = ModelCall.objects.get(ticket=ticket, shadow=True)
    assert shadow_call.decision_model_id == b.pk
    assert shadow_call.cost_usd == shadowed.cost_usd
    # The ticket, its suggestion, its trail and its notifications are the active version's alone.
    ticket.refresh_from_db()
    assert ticket.category == history["VPN"] and suggestion.category == history["VPN"]
    assert shadowed.category is not None and shadowed.category.name in ("Refund", "VPN")
    assert Suggestion.objects.filter(ticket=ticket).count() == 1
    assert WebhookDelivery.objects.filter(ticket=ticket, event="suggestion.ready").count() == 1
    # Analytics count the ticket's own call only; the comparison shows each side's per-ticket cost.
    overall, _ = model_cost(
        tickets=Ticket.objects.all(), since=timezone.now() - timedelta(hours=1), until=timezone.now()
    )
    active_call = ModelCall.objects.get(ticket=ticket, shadow=False)
    assert overall.calls == 1 and overall.cost_usd == active_call.cost_usd == Decimal("0.05")
    comparison = model_comparison(candidate=b)
    assert comparison.paired_tickets == 1
    assert comparison.candidate.cost_usd.value == pytest.approx(0.056)
    assert comparison.active.cost_usd.value == pytest.approx(0.05)
    assert comparison.candidate.latency_ms.value == pytest.approx(shadow_call.latency_ms)
    # A ticket the active path did not send to the model is not sent to the candidate either.
    settings.PIPELINE_USE_MODEL = "never"
    quiet = _submit(django_capture_on_commit_callbacks, "VPN decided by retrieval")
    assert len(server_b.received) == 1 and not ShadowDecision.objects.filter(ticket=quiet).exists()
    # Running the shadow task again asks nothing more (idempotent).
    from tickets.pipeline.shadowing import run_shadow

    assert run_shadow([ticket.pk], b.pk) == 0 and len(server_b.received) == 1


def test_an_embedded_llm_version_answers_through_llama_cpp(
    history: dict[str, Category], django_capture_on_commit_callbacks: Any
) -> None:
    """The real embedded model (llama.cpp, SmolLM2) as an LLM version: its calls carry its name."""
    version = model_register(
        name="embedded", kind="llm", actor="tester", config={"backend": "llamacpp", "model": "smollm2-v"}
    )
    model_promote(decision_model_id=version.pk, to="active", actor="alice", reason="the embedded model")
    ticket = _submit(django_capture_on_commit_callbacks, "VPN embedded")
    call = ModelCall.objects.get(ticket=ticket)
    assert (call.backend, call.model_name, call.decision_model_id) == ("llamacpp", "smollm2-v", version.pk)
    assert call.prompt_tokens > 100 and call.prompt_version.startswith("classify-v1+")
    assert DecisionStamp.objects.get(suggestion__ticket=ticket).llm_model_id == version.pk


def test_the_page_shows_an_llm_version_and_rolls_back_the_llm(db: Any) -> None:
    from django.test import Client

    from tests.ui_factories import PASSWORD, make_user

    def embedded(name: str) -> DecisionModel:
        config = {"backend": "llamacpp", "model": name, "api_key_env": "UNUSED_KEY"}
        return model_register(name=name, kind="llm", actor="t", config=config, evaluation={"accuracy": 0.8})

    a, b = embedded("small-a"), embedded("small-b")
    model_promote(decision_model_id=a.pk, to="active", actor="alice")
    model_promote(decision_model_id=b.pk, to="active", actor="alice")
    make_user("root", superuser=True)
    client = Client()
    client.login(username="root", password=PASSWORD)
    page = client.get(f"/models/{b.pk}/").content.decode()
    assert 'id="llm-config"' in page and "small-b" in page and "$UNUSED_KEY" in page
    assert "Model-call latency per ticket" in page
    client.post("/models/roll-back/", {"kind": "llm", "reason": "worse answers"})
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.state, b.state) == ("active", "retired")
    forget_pointers()

"""Promotion and roll back of the LLM version on two real Celery workers while tickets flow: every
worker's model calls go to the new version's server within 10 s, and no ticket is lost or decided
twice. The two LLM servers are real HTTP servers in this process that answer from a script."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.conftest import worker_environment
from tests.pipeline.test_model_switch import SWITCH_WITHIN, _feed
from tests.pipeline.test_worker import Worker, _all_final, _assert_processed_exactly_once, _wait_for
from tests.scripted_http import ScriptedServer, completion
from tickets.decision_models import DecisionModel, DecisionStamp
from tickets.models import Category, ModelCall
from tickets.services.model_registry import model_promote, model_register, model_roll_back

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ANSWER = '{"category": "VPN", "priority": "high", "best_example": "none"}'


@pytest.fixture
def servers() -> Iterator[list[ScriptedServer]]:
    started = [ScriptedServer().start() for _ in range(2)]
    for server in started:
        server.script(*[completion(ANSWER) for _ in range(400)])
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def workers(history: dict[str, Category], knowledge_dir: Path, tmp_path: Path) -> Iterator[list[Worker]]:
    env = worker_environment(
        knowledge_dir,
        PIPELINE_USE_MODEL="always",
        LLM_DRAFT_REPLIES="off",
        LLM_MAX_RETRIES="0",
        PIPELINE_BATCH_SIZE="2",
    )
    started = [Worker(env, tmp_path / f"worker-{n}.log", beat=False) for n in range(2)]
    yield started
    for worker in started:
        worker.stop()


def _llm(server: ScriptedServer, name: str) -> DecisionModel:
    return model_register(
        name=name,
        kind="llm",
        actor="tester",
        config={"backend": "openai", "base_url": server.base_url, "model": name},
        evaluation={"accuracy": 0.9},
    )


def _calls(ids: list[int]) -> list[tuple[datetime, int | None]]:
    return list(ModelCall.objects.filter(ticket_id__in=ids).values_list("created_at", "decision_model_id"))


def _last_use_after(switch: datetime, version: int, until: datetime, ids: list[int]) -> timedelta:
    late = [when - switch for when, used in _calls(ids) if used == version and switch < when < until]
    return max(late, default=timedelta(0))


def test_an_llm_promotion_and_roll_back_reach_every_worker_within_10_s_losing_nothing(
    history: dict[str, Category], servers: list[ScriptedServer], workers: list[Worker], tmp_path: Path
) -> None:
    server_a, server_b = servers
    a, b = _llm(server_a, "model-a"), _llm(server_b, "model-b")
    model_promote(decision_model_id=a.pk, to="active", actor="alice", reason="first")
    ids: list[int] = []
    _feed(ids, 12)  # both workers warm, asking model-a

    promoted_at = timezone.now()
    model_promote(decision_model_id=b.pk, to="active", actor="alice", reason="bigger model")
    _feed(ids, 14)
    rolled_back_at = timezone.now()
    model_roll_back(kind="llm", actor="bob", reason="too slow")
    _feed(ids, 14)

    _wait_for(lambda: _all_final(ids), timeout=180, what="every ticket routed", logs=tmp_path)
    _assert_processed_exactly_once(ids)  # 0 lost, 0 decided twice
    assert ModelCall.objects.filter(ticket_id__in=ids).count() == len(ids)  # one classification each
    assert DecisionStamp.objects.filter(
        suggestion__ticket_id__in=ids, llm_model__isnull=False
    ).count() == len(ids)

    calls = _calls(ids)
    assert any(version == b.pk for when, version in calls if promoted_at < when < rolled_back_at)
    assert {body["model"] for body in (r.body for r in server_b.received)} == {"model-b"}
    after_promotion = _last_use_after(promoted_at, a.pk, rolled_back_at, ids)
    after_roll_back = _last_use_after(rolled_back_at, b.pk, timezone.now(), ids)
    assert after_promotion < SWITCH_WITHIN and after_roll_back < SWITCH_WITHIN
    assert any(version == a.pk for when, version in calls if when > rolled_back_at + SWITCH_WITHIN)
    print(
        f"previous LLM version last called {after_promotion.total_seconds():.2f} s after the promotion, "
        f"{after_roll_back.total_seconds():.2f} s after the roll back ({len(ids)} tickets)"
    )

"""Shadow work yields to live traffic (tickets/pipeline/shadow_yield.py), on real Redis and PostgreSQL:
a worker that consumes only the shadow queue holds a shadow decision while a live stage queue has
messages waiting, decides once it is empty, or after MODEL_SHADOW_MAX_DEFER_SECONDS under a sustained
backlog; nothing is lost or decided twice. The wait itself in this process (a worker's queue selection
set by hand), then on real Celery workers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from inference_app.celery import app
from tests.conftest import worker_environment
from tests.model_factories import label_version, lifecycle_history
from tests.pipeline.test_worker import Worker, _wait_for
from tickets.decision_models import ShadowDecision
from tickets.models import PipelineStage, Ticket
from tickets.pipeline.shadow_yield import live_backlog, yield_to_live_traffic
from tickets.pipeline.stages import SHADOW_QUEUE, SHADOW_TASK
from tickets.pipeline.versions import forget_pointers
from tickets.services.model_registry import model_promote
from tickets.services.submission import ticket_submit

LIVE_QUEUE = "model"


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(LIVE_QUEUE, SHADOW_QUEUE)
    yield client
    client.delete(LIVE_QUEUE, SHADOW_QUEUE)
    client.close()


@contextmanager
def consuming(*names: str) -> Iterator[None]:
    """This process, seen by the shadow task as a worker started with ``-Q <names>``."""
    queues: Any = app.amqp.queues
    previous = queues._consume_from
    queues.select(list(names))
    try:
        yield
    finally:
        queues._consume_from = previous


def test_the_wait_ends_when_the_live_queues_empty(broker: redis.Redis, settings: Any) -> None:
    settings.MODEL_SHADOW_MAX_DEFER_SECONDS = 60
    broker.rpush(LIVE_QUEUE, b"a live message waiting")
    assert live_backlog() == 1
    emptied = threading.Timer(1.5, broker.delete, args=(LIVE_QUEUE,))
    emptied.start()
    with consuming(SHADOW_QUEUE):
        waited = yield_to_live_traffic(queued_at=time.time())
    emptied.join()
    assert 1.5 <= waited < 5 and live_backlog() == 0


def test_under_a_sustained_backlog_the_wait_ends_at_the_bound(broker: redis.Redis, settings: Any) -> None:
    settings.MODEL_SHADOW_MAX_DEFER_SECONDS = 2
    broker.rpush(LIVE_QUEUE, b"a live message waiting")
    queued_at = time.time()
    with consuming(SHADOW_QUEUE):
        assert 2 - 0.05 <= yield_to_live_traffic(queued_at=queued_at) < 4
        # The bound counts from when the decision was queued: one queued long ago does not wait.
        assert yield_to_live_traffic(queued_at=queued_at - 60) < 0.05


def test_no_wait_with_a_bound_of_0_outside_a_shadow_only_worker_or_without_a_backlog(
    broker: redis.Redis, settings: Any
) -> None:
    settings.MODEL_SHADOW_MAX_DEFER_SECONDS = 60
    broker.rpush(LIVE_QUEUE, b"a live message waiting")
    # Outside a worker Celery reports every queue; a worker of shadow and another queue must not hold
    # that queue's tasks up either.
    assert yield_to_live_traffic(queued_at=time.time()) == 0
    with consuming("switchboard", SHADOW_QUEUE):
        assert yield_to_live_traffic(queued_at=time.time()) == 0
    with consuming(SHADOW_QUEUE):
        settings.MODEL_SHADOW_MAX_DEFER_SECONDS = 0
        assert yield_to_live_traffic(queued_at=time.time()) == 0
        settings.MODEL_SHADOW_MAX_DEFER_SECONDS = 60
        broker.delete(LIVE_QUEUE)
        assert yield_to_live_traffic(queued_at=time.time()) < 0.1  # one look at the queues


# --- on real workers --------------------------------------------------------------------------------


@pytest.fixture
def decided(knowledge_dir: Path, broker: redis.Redis) -> Iterator[tuple[list[int], int]]:
    """Four tickets decided by an active version (in this process), and a shadow candidate that has not
    decided them yet: (ticket ids, shadow version id)."""
    forget_pointers()
    lifecycle_history()
    active = label_version(holdout_share=0.1, name="active", accuracy=0.9)
    model_promote(decision_model_id=active.pk, to="active", actor="tester")
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        ids = [
            ticket_submit(subject=subject, body=body).pk
            for subject, body in [
                ("VPN gone", "The VPN tunnel drops from my home office."),
                ("Refund", "You charged my card twice for one order, please refund one."),
                ("Locked out", "My account is locked after three wrong passwords."),
                ("VPN token", "The VPN keeps rejecting my token."),
            ]
        ]
    finally:
        app.conf.task_always_eager = previous
    assert Ticket.objects.filter(pk__in=ids, stage=PipelineStage.DONE).count() == len(ids)
    shadow = label_version(holdout_share=0.2, name="shadow", accuracy=0.9)
    model_promote(decision_model_id=shadow.pk, to="shadow", actor="tester", reason="compare")
    assert not ShadowDecision.objects.exists()
    yield ids, shadow.pk
    forget_pointers()


def _start_shadow_worker(knowledge_dir: Path, tmp_path: Path, bound: str) -> Worker:
    env = worker_environment(knowledge_dir, PIPELINE_USE_MODEL="never", MODEL_SHADOW_MAX_DEFER_SECONDS=bound)
    worker = Worker(env, tmp_path / "shadow-worker.log", beat=False, queues=SHADOW_QUEUE)
    _wait_for(lambda: bool(app.control.ping(timeout=0.5)), timeout=120, what="the shadow worker")
    return worker


def _send_shadow(ids: list[int], shadow_id: int) -> float:
    queued_at = time.time()
    app.signature(SHADOW_TASK, args=(ids, shadow_id), kwargs={"queued_at": queued_at}).apply_async()
    return queued_at


def _decided_at(ids: list[int]) -> list[datetime]:
    return list(ShadowDecision.objects.filter(ticket_id__in=ids).values_list("created_at", flat=True))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_shadow_worker_decides_once_the_live_queue_empties_and_nothing_twice(
    decided: tuple[list[int], int],
    knowledge_dir: Path,
    broker: redis.Redis,
    tmp_path: Path,
) -> None:
    ids, shadow_id = decided
    worker = _start_shadow_worker(knowledge_dir, tmp_path, bound="120")
    try:
        broker.rpush(LIVE_QUEUE, b"a live message waiting")
        _send_shadow(ids[:2], shadow_id)
        _send_shadow(ids, shadow_id)  # overlapping, as a redelivery would be
        # The worker has taken the first task (one message left on the shadow queue) and holds it.
        _wait_for(lambda: broker.llen(SHADOW_QUEUE) < 2, timeout=30, what="the worker to take a task")
        time.sleep(3)
        assert not ShadowDecision.objects.exists()
        emptied = datetime.now(UTC)
        broker.delete(LIVE_QUEUE)
        _wait_for(lambda: len(_decided_at(ids)) == len(ids), timeout=60, what="the shadow decisions")
        time.sleep(1)  # the second task has run too
        assert broker.llen(SHADOW_QUEUE) == 0
        assert all(when >= emptied for when in _decided_at(ids))
        rows = ShadowDecision.objects.filter(ticket_id__in=ids).values_list("ticket_id", "decision_model_id")
        assert sorted(rows) == sorted((ticket_id, shadow_id) for ticket_id in ids)  # each once
        assert all(row.category for row in ShadowDecision.objects.select_related("category"))
    finally:
        worker.stop()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_under_a_sustained_backlog_a_shadow_worker_decides_at_the_bound(
    decided: tuple[list[int], int], knowledge_dir: Path, broker: redis.Redis, tmp_path: Path
) -> None:
    ids, shadow_id = decided
    worker = _start_shadow_worker(knowledge_dir, tmp_path, bound="3")
    try:
        broker.rpush(LIVE_QUEUE, b"a live message waiting")
        queued_at = _send_shadow(ids, shadow_id)
        _wait_for(lambda: len(_decided_at(ids)) == len(ids), timeout=60, what="the shadow decisions")
        assert broker.llen(LIVE_QUEUE) == 1  # still waiting: the shadow decided anyway
        assert all(when.timestamp() - queued_at >= 3 for when in _decided_at(ids))
    finally:
        worker.stop()


def test_the_shadow_task_s_time_limits_cover_its_wait() -> None:
    task: Any = app.tasks[SHADOW_TASK]
    bound = settings.MODEL_SHADOW_MAX_DEFER_SECONDS
    assert task.soft_time_limit >= bound + settings.CELERY_TASK_SOFT_TIME_LIMIT
    assert task.time_limit >= bound + settings.CELERY_TASK_TIME_LIMIT
    assert task.time_limit < settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]

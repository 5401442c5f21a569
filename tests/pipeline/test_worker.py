"""The pipeline on real Celery workers, Redis and PostgreSQL, including the faults it must survive:
a worker killed with SIGKILL mid-stage and a broker restart that loses every queued message."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from tests.conftest import ROOT, worker_environment
from tickets.audit import verify_chain
from tickets.models import AuditEvent, Category, PipelineStage, Suggestion, Ticket, TicketStatus
from tickets.pipeline.stages import worker_queues
from tickets.services.lifecycle import ticket_create
from tickets.services.submission import ticket_submit

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FINAL = (TicketStatus.ROUTED, TicketStatus.NEEDS_TRIAGE)
TEXTS = [
    ("VPN gone", "The VPN tunnel cannot be established from my home office since this morning."),
    ("Refund", "You charged my credit card twice for the same order, please refund one payment."),
    ("Locked out", "My account is locked after I typed a wrong password three times."),
    ("VPN token", "The VPN keeps rejecting my token even though it is typed correctly."),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Worker:
    """A Celery worker (solo pool, all pipeline queues or ``queues``, optionally the beat sweeper), as a
    process group."""

    def __init__(self, env: dict[str, str], log: Path, *, beat: bool, queues: str = "") -> None:
        command = [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "inference_app",
            "worker",
            "--pool=solo",
            "-Q",
            queues or ",".join(worker_queues(settings.CELERY_TASK_DEFAULT_QUEUE)),
            "-l",
            "INFO",
        ]
        if beat:
            command += ["-B", "-s", str(log.with_suffix(".beat"))]
        self.log = log.open("w")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def worker_env(company: dict[str, Category], knowledge_dir: Path, tmp_path: Path) -> dict[str, str]:
    """What a worker needs to share this test's database, broker and knowledge base."""
    return worker_environment(knowledge_dir, PIPELINE_USE_MODEL="never")


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def start(env: dict[str, str], *, beat: bool = False) -> Worker:
        worker = Worker(env, tmp_path / f"worker-{len(workers)}.log", beat=beat)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def _wait_for(condition: Callable[[], bool], *, timeout: float, what: str, logs: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    states = list(
        Ticket.objects.exclude(status="resolved").values_list("pk", "status", "stage", "stage_started_at")
    )
    detail = "".join(path.read_text()[-3000:] for path in sorted(logs.glob("*.log"))) if logs else ""
    raise AssertionError(f"timed out waiting for {what}; tickets: {states}\n{detail}")


def _all_final(ids: list[int]) -> bool:
    failed = list(
        Ticket.objects.filter(pk__in=ids, stage=PipelineStage.FAILED).values_list("pk", "pipeline_error")
    )
    assert not failed, f"tickets the pipeline gave up on: {failed}"
    return Ticket.objects.filter(pk__in=ids, status__in=FINAL, stage=PipelineStage.DONE).count() == len(ids)


def _assert_processed_exactly_once(ids: list[int]) -> None:
    for ticket_id in ids:
        assert Suggestion.objects.filter(ticket_id=ticket_id).count() == 1
        routing = AuditEvent.objects.filter(ticket_id=ticket_id, action__startswith="routing.")
        assert routing.count() == 1, list(routing.values_list("action", flat=True))
        assert list(verify_chain(AuditEvent.objects.filter(ticket_id=ticket_id).order_by("sequence"))) == []


def test_submitted_tickets_are_routed_by_a_real_worker(
    worker_env: dict[str, str], start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    start_worker(worker_env)
    ids = [ticket_submit(subject=subject, body=body).pk for subject, body in TEXTS]
    _wait_for(lambda: _all_final(ids), timeout=120, what="tickets to be routed", logs=tmp_path)
    _assert_processed_exactly_once(ids)
    vpn = Ticket.objects.get(pk=ids[0])
    assert vpn.category is not None and vpn.category.name == "VPN"
    assert list(vpn.audit_events.values_list("stage", flat=True)) == [
        "intake",
        "input",
        "input",
        "retrieval",
        "model",
        "routing",
        "routing",
    ]


def test_a_worker_killed_mid_stage_loses_nothing(
    worker_env: dict[str, str], start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    env = {
        **worker_env,
        # the real embedded model makes the model stage long enough to be caught in it
        "PIPELINE_USE_MODEL": "always",
        "LLM_BACKEND": "llamacpp",
        "PIPELINE_SWEEP_SECONDS": "1",
        "PIPELINE_REQUEUE_AFTER_SECONDS": "2",
        "PIPELINE_STAGE_TIMEOUT_SECONDS": "15",
    }
    first = start_worker(env, beat=True)
    ids = [
        ticket_create(subject=subject, body=body).pk for subject, body in TEXTS
    ]  # the sweeper picks them up
    in_model = Ticket.objects.filter(pk__in=ids, stage=PipelineStage.MODEL, stage_started_at__isnull=False)
    _wait_for(in_model.exists, timeout=180, what="a ticket in the model stage", logs=tmp_path)
    first.kill()
    killed_in_model = list(in_model.values_list("pk", flat=True))
    assert killed_in_model  # the claim of the dead worker is still there

    start_worker(env, beat=True)
    _wait_for(lambda: _all_final(ids), timeout=240, what="every ticket to reach a final state", logs=tmp_path)
    _assert_processed_exactly_once(ids)
    taken_over = Ticket.objects.get(pk=killed_in_model[0])
    assert taken_over.pipeline_attempts == 0 and taken_over.stage == PipelineStage.DONE


@pytest.fixture
def private_redis() -> Iterator[tuple[str, Callable[[], None]]]:
    """A Redis of our own that the test may restart (the machine's shared one stays untouched)."""
    port = _free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    state: dict[str, Any] = {}

    def start() -> None:
        state["process"] = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=port)
        _wait_for(lambda: _pings(client), timeout=20, what="redis to start")

    def restart() -> None:
        state["process"].kill()
        state["process"].wait(timeout=10)
        start()

    start()
    yield f"redis://127.0.0.1:{port}/0", restart
    state["process"].kill()
    state["process"].wait(timeout=10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_a_broker_restart_that_loses_every_message_loses_no_ticket(
    worker_env: dict[str, str],
    start_worker: Callable[..., Worker],
    private_redis: tuple[str, Callable[[], None]],
    tmp_path: Path,
) -> None:
    url, restart_redis = private_redis
    env = {
        **worker_env,
        "CELERY_BROKER_URL": url,
        "REDIS_URL": url,
        "PIPELINE_SWEEP_SECONDS": "1",
        "PIPELINE_REQUEUE_AFTER_SECONDS": "3",
    }
    start_worker(env, beat=True)
    before = [ticket_create(subject=subject, body=body).pk for subject, body in TEXTS[:2]]
    _wait_for(lambda: _all_final(before), timeout=120, what="the first tickets", logs=tmp_path)
    restart_redis()  # queues, results and beat's state are gone
    after = [ticket_create(subject=subject, body=body).pk for subject, body in TEXTS[2:]]
    _wait_for(lambda: _all_final(after), timeout=180, what="tickets after the restart", logs=tmp_path)
    _assert_processed_exactly_once(before + after)

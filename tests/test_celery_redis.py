"""A real Celery worker consuming from the real Redis broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.conf import settings

from inference_app.celery import app, ping
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_redis_answers() -> None:
    broker_url = str(settings.CELERY_BROKER_URL)
    assert broker_url.startswith("redis://")
    assert redis.Redis.from_url(broker_url).ping()


def test_a_worker_runs_a_task_sent_through_redis() -> None:
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "inference_app",
            "worker",
            "--pool=solo",
            "-l",
            "WARNING",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    try:
        assert ping.delay().get(timeout=60) == "pong"
        assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_publishes_reuse_one_redis_client_per_channel() -> None:
    """kombu's own channel builds a redis.Redis per publish; ours (inference_app/redis_broker.py) keeps
    one, and the messages still arrive."""
    from inference_app.redis_broker import Channel

    broker = redis.Redis.from_url(str(settings.CELERY_BROKER_URL))
    queue = "test-redis-broker-reuse"
    broker.delete(queue)
    try:
        with app.producer_or_acquire() as producer:
            assert isinstance(producer.channel, Channel)
            clients = []
            for number in range(3):
                producer.publish({"n": number}, routing_key=queue, exchange="", declare=[])
                with producer.channel.conn_or_acquire() as client:
                    clients.append(client)
        assert clients[0] is clients[1] is clients[2]
        assert broker.llen(queue) == 3
    finally:
        broker.delete(queue)

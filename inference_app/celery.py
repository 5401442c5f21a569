"""The Celery application. Workers start with ``celery -A inference_app worker``."""

from __future__ import annotations

import os

from celery import Celery

from inference_app.logging import install_celery_context

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inference_app.settings")

app = Celery("switchboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# A task's log lines carry the request id of the web request that enqueued it, and its ticket id.
install_celery_context()


@app.task(name="switchboard.ping", ignore_result=False)
def ping() -> str:
    """Answers ``pong``: lets health checks and tests prove a worker consumes from the broker."""
    return "pong"

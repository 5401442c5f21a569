"""The Celery application. Workers start with ``celery -A inference_app worker``."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inference_app.settings")

app = Celery("switchboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="switchboard.ping", ignore_result=False)
def ping() -> str:
    """Answers ``pong``: lets health checks and tests prove a worker consumes from the broker."""
    return "pong"

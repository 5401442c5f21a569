"""``python manage.py pipeline_queues``: the ``--queues`` list of a worker that runs the whole pipeline.

Read from the stage table (``tickets/pipeline/stages.py``) and the default queue, so scripts that start
workers (``scripts/demo.sh``) never spell the queues out: ``celery ... worker -Q "$(manage.py
pipeline_queues)"``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from tickets.pipeline.stages import worker_queues


class Command(BaseCommand):
    help = "Print the comma-separated Celery queues a worker needs to run every pipeline stage."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(",".join(worker_queues(settings.CELERY_TASK_DEFAULT_QUEUE)))

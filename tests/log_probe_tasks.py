"""A task for tests/test_logging.py, loaded into a real worker with ``celery worker --include``."""

from __future__ import annotations

import logging

from inference_app.celery import app

logger = logging.getLogger("tests.log_probe")


@app.task(name="tests.log_probe", ignore_result=False)
def log_probe(ticket_id: int, note: str = "") -> str:
    logger.info("probe task ran %s", note)
    return f"logged {ticket_id}"

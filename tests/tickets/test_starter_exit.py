"""The starter thread's send in flight when the process exits is not lost: the exit handler's flush
waits for it (the thread is a daemon, stopped only after the exit handlers run). Seen as whole
batches missing from the broker after ``manage.py load_demo`` before this."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from tickets.pipeline import starter


def test_the_exit_flush_waits_for_the_send_in_flight(settings: Any) -> None:
    settings.PIPELINE_ENQUEUE_LINGER_MS = 1
    settings.CELERY_TASK_ALWAYS_EAGER = False
    in_send = threading.Event()
    sent: list[list[int]] = []

    def slow_send(ids: Sequence[int]) -> None:
        in_send.set()
        time.sleep(0.3)  # a broker round trip on a busy machine
        sent.append(list(ids))

    starter.start([1, 2, 3], slow_send)
    assert in_send.wait(5)  # the thread has taken the ids and is publishing them
    starter.flush()  # what the exit handler does
    assert sent == [[1, 2, 3]]

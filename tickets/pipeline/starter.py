"""Starting the pipeline for new tickets: one broker message per batch, not per request.

A web process answers many single creates a second; publishing a Celery message for each costs more
CPU than the INSERTs and a broker round trip in the request. With ``PIPELINE_ENQUEUE_LINGER_MS`` > 0,
a committed ticket's id is handed to a thread of this process, which waits that long for others and
sends them as one message per ``PIPELINE_BATCH_SIZE`` (the stages claim and work in batches anyway).

No ticket is lost this way: it is committed before its id is handed over, in stage ``queued``. If the
broker fails when the thread publishes, or the process dies before it does, the sweeper
(``flow.sweep_stuck_tickets``) finds the ticket waiting and enqueues it, exactly as when the broker
is down at commit. With 0 (the test suite, eager Celery) the message is sent at once, in the request.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence

from django.conf import settings

logger = logging.getLogger(__name__)

Send = Callable[[Sequence[int]], None]

_lock = threading.Lock()
_wake = threading.Condition(_lock)
_sending = threading.Lock()
_pending: list[int] = []
_send: Send | None = None
_thread_pid = 0


def start(ticket_ids: Sequence[int], send: Send) -> None:
    """Have ``send`` (which publishes the first stage's messages) called with ``ticket_ids``: now, or
    from this process's starter thread within ``PIPELINE_ENQUEUE_LINGER_MS``, with others."""
    linger_ms = settings.PIPELINE_ENQUEUE_LINGER_MS
    if linger_ms <= 0 or settings.CELERY_TASK_ALWAYS_EAGER:
        send(ticket_ids)
        return
    global _send, _thread_pid
    with _wake:
        _send = send
        _pending.extend(ticket_ids)
        if _thread_pid != os.getpid():  # none yet in this process (or only the parent's, before a fork)
            _thread_pid = os.getpid()
            threading.Thread(
                target=_run, args=(linger_ms / 1000,), name="pipeline-starter", daemon=True
            ).start()
        _wake.notify()


def flush() -> None:
    """Send what is pending now (at exit, and for tests). One flush at a time: the one at exit waits for
    the thread's send in flight (the thread is a daemon, stopped after the exit handlers run)."""
    with _sending:
        with _wake:
            ids, send = list(_pending), _send
            _pending.clear()
        if ids and send is not None:
            _send_logged(send, ids)


def _run(linger_seconds: float) -> None:
    while True:
        with _wake:
            while not _pending:
                _wake.wait()
        time.sleep(linger_seconds)  # let the tickets of the next few requests join
        flush()


def _send_logged(send: Send, ids: list[int]) -> None:
    try:
        send(ids)
    except Exception:  # the broker is down: the tickets wait in stage queued for the sweeper
        logger.exception("could not start the pipeline for %d tickets; the sweeper will", len(ids))


atexit.register(flush)
